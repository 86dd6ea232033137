//! Every kind of response the simulator serves validates against the schemas of the register's
//! published OpenAPI (v1.5, "offentlig med hjemmel"), kept as a JSON fixture.

use std::time::Duration;

use serde_json::{Value, json};
use simulator::{BASE, Config};
use tokio_util::sync::CancellationToken;

const SCHEMAS: &str = include_str!("fixtures/freg-openapi-v1.5-schemas.json");
const P: &str = "folkeregisteret.tilgjengeliggjoering.";

fn validate(name: &str, value: &Value) {
    let mut root: Value = serde_json::from_str(SCHEMAS).unwrap();
    root["$ref"] = json!(format!("#/components/schemas/{name}"));
    let validator = jsonschema::validator_for(&root).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(value)
        .take(5)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{name}: {errors:?}\n{}",
        serde_json::to_string(value)
            .unwrap()
            .chars()
            .take(600)
            .collect::<String>()
    );
}

#[test]
fn the_schemas_reject_what_the_spec_does_not_allow() {
    let mut root: Value = serde_json::from_str(SCHEMAS).unwrap();
    root["$ref"] = json!(format!(
        "#/components/schemas/{P}person.v1.Folkeregisterperson"
    ));
    let validator = jsonschema::validator_for(&root).unwrap();
    assert!(validator.is_valid(&json!({ "kjoenn": [{ "kjoenn": "kvinne" }] })));
    assert!(
        !validator.is_valid(&json!({ "kjoenn": [{ "kjoenn": "ukjent" }] })),
        "enum"
    );
    assert!(
        !validator.is_valid(
            &json!({ "adressebeskyttelse": [{ "graderingsnivaa": "STRENGT_FORTROLIG" }] })
        ),
        "spelling"
    );
    assert!(
        !validator.is_valid(&json!({ "doedsfall": [{ "doedsdato": "2024-01-01" }] })),
        "doedsfall is an object in the spec"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_validate_against_the_published_spec() {
    let stop = CancellationToken::new();
    let config = Config {
        persons: 3_000,
        seed: 77,
        events_per_sec: 2_000.0,
        max_events: Some(1_500),
        faults: 0.0,
        ..Config::default()
    };
    let sim = simulator::start(config, "127.0.0.1:0", stop.clone())
        .await
        .unwrap();
    let base = format!("{}{BASE}", sim.url());
    let http = reqwest::Client::new();
    let get = |path: String| {
        let http = http.clone();
        let url = format!("{base}{path}");
        async move {
            http.get(&url)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    tokio::time::sleep(Duration::from_secs(2)).await;

    let head = get("/v1/hendelser/siste/sekvensnummer".into()).await;
    assert!(head.as_i64().unwrap() >= 1_500, "{head}");

    let page = get("/v1/hendelser/feed?seq=1".into()).await;
    let entries = page.as_array().unwrap();
    assert_eq!(entries.len(), 1000, "pages of 1000");
    for e in entries {
        validate(
            "ske.folkeregister.rettighetspakke.hendelser.LagretHendelseMedDokumentIdentifikatorer",
            e,
        );
    }
    let event = get(format!(
        "/v1/hendelser/{}",
        entries[0]["hendelse"]["hendelsesdokument"]
            .as_str()
            .unwrap()
    ))
    .await;
    validate(&format!("{P}hendelse.v1.DokumentForHendelse"), &event);

    // Persons of every kind: the first 3 000 base persons and everyone the events touched.
    let mut ids: Vec<String> = entries
        .iter()
        .map(|e| {
            e["hendelse"]["folkeregisteridentifikator"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let job = get("/v1/uttrekk/komplett".into()).await;
    validate(&format!("{P}uttrekk.v1.response.UttrekkJobbResponse"), &job);
    let job = job["jobbId"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut docs = Vec::new();
    for n in 0.. {
        let batch = get(format!("/v1/uttrekk/{job}/batch/{n}")).await;
        if batch.as_object().is_some_and(|o| o.is_empty()) {
            break;
        }
        validate(
            &format!("{P}uttrekk.v1.response.UttrekkDataResponse"),
            &batch,
        );
        ids.extend(
            batch["foedselsEllerDNummer"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_owned()),
        );
        docs.extend(
            batch["dokumentidentifikator"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_owned()),
        );
    }
    assert!(ids.len() >= 3_000);
    ids.sort();
    ids.dedup();
    for chunk in ids.chunks(1000) {
        let answer: Value = http
            .post(format!("{base}/v1/personer/bulkoppslag"))
            .json(&json!({ "foedselsEllerDNummer": chunk }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        validate(
            &format!("{P}person.v1.bulk.response.PersonBulkoppslagResponse"),
            &answer,
        );
        for o in answer["oppslag"].as_array().unwrap() {
            validate(
                &format!("{P}person.v1.Folkeregisterperson"),
                &o["folkeregisterperson"],
            );
        }
    }
    for chunk in docs.chunks(1000) {
        let answer: Value = http
            .post(format!("{base}/v1/personer/bulkoppslag/arkiv"))
            .json(&json!({ "dokumentidentifikator": chunk }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        validate(
            &format!("{P}person.v1.bulk.response.PersonBulkoppslagResponse"),
            &answer,
        );
    }
    let one = get(format!("/v1/personer/{}", ids[0])).await;
    validate(&format!("{P}person.v1.Folkeregisterperson"), &one);

    let custom: Value = http
        .post(format!("{base}/v1/uttrekk/tilpasset"))
        .json(&json!({ "personstatustyper": ["bosatt"], "kommunenummer": { "bostedskommunenummer": "0301" }, "foedselsaarFraOgMed": "1980", "foedselsaarTilOgMed": "2000" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    validate(
        &format!("{P}uttrekk.v1.response.UttrekkJobbResponse"),
        &custom,
    );
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_expired_position_answer_validates_against_the_error_schema() {
    let stop = CancellationToken::new();
    let config = Config {
        persons: 1_000,
        seed: 78,
        events_per_sec: 5_000.0,
        max_events: Some(300),
        retain_events: Some(100),
        ..Config::default()
    };
    let sim = simulator::start(config, "127.0.0.1:0", stop.clone())
        .await
        .unwrap();
    while sim.shared.world.read().unwrap().head() < 300 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let base = format!("{}{BASE}", sim.url());
    for path in [
        "/v1/hendelser/feed?seq=1",
        "/v1/uttrekk/komplett?feedsekvensnr=1",
    ] {
        let response = reqwest::get(format!("{base}{path}")).await.unwrap();
        assert_eq!(response.status(), 406, "{path}");
        let body: Value = response.json().await.unwrap();
        validate(
            "ske.folkeregister.exception.javaxrs.FolkeregisterFeilmelding",
            &body,
        );
    }
    stop.cancel();
}
