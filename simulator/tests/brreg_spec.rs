//! Every kind of answer the business register simulator gives validates against the schemas of
//! Enhetsregisteret's published OpenAPI (2.0.0), kept as a JSON fixture (an exact copy): updates
//! pages and their entries, search pages and the units in them, single units in the register,
//! deleted (200 with fewer attributes) and removed (410), the bulk download's units, and the
//! error bodies, its own and those of injected faults.

use std::collections::{BTreeSet, HashMap};
use std::io::Read;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use simulator::brreg::{List, Unit};
use simulator::brreg_http::BRREG_BASE;
use simulator::{BASE, Config, Running};
use tokio_util::sync::CancellationToken;

const SPEC: &str = include_str!("fixtures/brreg-enhetsregisteret-2.0.0.openapi.json");

/// The register's API URL in the links it writes.
const LINK_BASE: &str = "https://data.brreg.no/enhetsregisteret/api";

/// OpenAPI 3.0 says a value may be null with `nullable: true` beside its `type`; JSON Schema
/// has no `nullable` (a validator ignores it), so each such `type: X` becomes
/// `type: [X, "null"]`, and the spec allows in JSON Schema the nulls it allows in OpenAPI.
fn allow_nulls(schema: &mut Value) {
    match schema {
        Value::Object(o) => {
            if o.get("nullable") == Some(&Value::Bool(true))
                && let Some(Value::String(t)) = o.get("type").cloned()
            {
                o.insert("type".into(), json!([t, "null"]));
            }
            o.values_mut().for_each(allow_nulls);
        }
        Value::Array(a) => a.iter_mut().for_each(allow_nulls),
        _ => {}
    }
}

fn truncated(value: &Value) -> String {
    value.to_string().chars().take(600).collect()
}

/// The published spec as one JSON Schema document, and validators of its component schemas.
///
/// Beside `nullable` (see [`allow_nulls`]) the spec uses `discriminator`, which JSON Schema
/// does not know either: only a single unit's 200 answer has one, and [`Spec::unit_schema`]
/// picks the schema by it as a client does. `example` is an annotation.
struct Spec {
    root: Value,
    validators: HashMap<String, jsonschema::Validator>,
}

impl Spec {
    fn load() -> Self {
        let mut root: Value = serde_json::from_str(SPEC).unwrap();
        allow_nulls(&mut root);
        Self {
            root,
            validators: HashMap::new(),
        }
    }

    fn validator(&mut self, name: &str) -> &jsonschema::Validator {
        let root = &self.root;
        self.validators.entry(name.to_owned()).or_insert_with(|| {
            let mut schema = root.clone();
            schema["$ref"] = json!(format!("#/components/schemas/{name}"));
            jsonschema::validator_for(&schema).unwrap()
        })
    }

    fn is_valid(&mut self, name: &str, value: &Value) -> bool {
        self.validator(name).is_valid(value)
    }

    fn validate(&mut self, name: &str, value: &Value) {
        let errors: Vec<String> = self
            .validator(name)
            .iter_errors(value)
            .take(5)
            .map(|e| format!("{e} at {}", e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "{name}: {errors:?}\n{}",
            truncated(value)
        );
    }

    /// The schema of a single unit's 200 answer as the spec's `discriminator` on
    /// `respons_klasse` picks it (`Enhet` or `SlettetEnhet`, `Underenhet` or
    /// `SlettetUnderenhet`); for an answer without `respons_klasse`, the schema it refers to.
    fn unit_schema(&self, list: &str, answer: &Value) -> String {
        let parameter = match list {
            "enheter" => "enhetorgnr",
            _ => "underenhetorgnr",
        };
        // A JSON pointer writes each `/` in a key as `~1`.
        let path = format!("{BRREG_BASE}/{list}/{{{parameter}}}").replace('/', "~1");
        let pointer = format!("/paths/{path}/get/responses/200/content/application~1json/schema");
        let schema = self.root.pointer(&pointer).unwrap();
        let target = answer["respons_klasse"]
            .as_str()
            .and_then(|k| schema["discriminator"]["mapping"][k].as_str())
            .or(schema["$ref"].as_str())
            .unwrap();
        target
            .trim_start_matches("#/components/schemas/")
            .to_owned()
    }
}

/// A list and the names of its shapes in the spec.
struct Kind {
    list: List,
    path: &'static str,
    unit: &'static str,
    deleted: &'static str,
    gone: &'static str,
    search: &'static str,
    updates: &'static str,
    update: &'static str,
    updates_key: &'static str,
}

const KINDS: [Kind; 2] = [
    Kind {
        list: List::Enheter,
        path: "enheter",
        unit: "Enhet",
        deleted: "SlettetEnhet",
        gone: "GoneEnhet",
        search: "Enheter",
        updates: "OppdateringerEnheter",
        update: "OppdateringerEnhet",
        updates_key: "oppdaterteEnheter",
    },
    Kind {
        list: List::Underenheter,
        path: "underenheter",
        unit: "Underenhet",
        deleted: "SlettetUnderenhet",
        gone: "GoneUnderenhet",
        search: "Underenheter",
        updates: "OppdateringerUnderenheter",
        update: "OppdateringerUnderenhet",
        updates_key: "oppdaterteUnderenheter",
    },
];

/// A number that passes the check digit and that the simulator never gives (its enheter start
/// at 91, its underenheter at 81).
const UNKNOWN: &str = "123456785";

/// Up to three organisation numbers of a list's units in each state.
struct States {
    /// In the register.
    current: Vec<String>,
    /// Deleted (`Sletting`).
    deleted: Vec<String>,
    /// Removed from the open data (`Fjernet`).
    removed: Vec<String>,
}

fn states(sim: &Running, list: List) -> States {
    let units = sim.shared.brreg.read().unwrap();
    let pick = |keep: fn(&Unit) -> bool| -> Vec<String> {
        units
            .units
            .iter()
            .filter(|u| u.list == list && keep(u))
            .take(3)
            .map(|u| u.number.clone())
            .collect()
    };
    let states = States {
        current: pick(|u| !u.removed && u.deleted.is_none()),
        deleted: pick(|u| !u.removed && u.deleted.is_some()),
        removed: pick(|u| u.removed),
    };
    assert!(
        !states.current.is_empty() && !states.deleted.is_empty() && !states.removed.is_empty(),
        "{list:?}: units in every state"
    );
    states
}

/// GETs `url`, asserting the status, and its JSON body.
async fn get(http: &reqwest::Client, url: &str, status: StatusCode) -> Value {
    let response = http.get(url).send().await.unwrap();
    assert_eq!(response.status(), status, "{url}");
    response.json().await.unwrap()
}

/// An updates page from the list's start, as a whole and entry by entry, with every kind of
/// change; a page past the head (no `_embedded`); a later page from a time, whose links keep
/// the query asked.
async fn check_updates(http: &reqwest::Client, base: &str, spec: &mut Spec, kind: &Kind) {
    let query = "oppdateringsid=1&size=1000";
    let url = format!("{base}/oppdateringer/{}?{query}", kind.path);
    let page = get(http, &url, StatusCode::OK).await;
    spec.validate(kind.updates, &page);
    assert_eq!(
        page["_links"]["self"]["href"],
        format!("{LINK_BASE}/oppdateringer/{}?{query}", kind.path)
    );
    let entries = page["_embedded"][kind.updates_key].as_array().unwrap();
    for entry in entries {
        spec.validate(kind.update, entry);
    }
    let changes: BTreeSet<&str> = entries
        .iter()
        .filter_map(|e| e["endringstype"].as_str())
        .collect();
    for change in ["Ny", "Endring", "Sletting", "Fjernet", "Ukjent"] {
        assert!(changes.contains(change), "{}: no {change}", kind.path);
    }

    let url = format!(
        "{base}/oppdateringer/{}?oppdateringsid=999999999",
        kind.path
    );
    let empty = get(http, &url, StatusCode::OK).await;
    assert!(empty.get("_embedded").is_none(), "{empty}");
    spec.validate(kind.updates, &empty);

    let since = "dato=2000-01-01T00:00:00.000Z";
    let url = format!("{base}/oppdateringer/{}?{since}&size=50&page=1", kind.path);
    let later = get(http, &url, StatusCode::OK).await;
    spec.validate(kind.updates, &later);
    let links = &later["_links"];
    assert_eq!(
        links["next"]["href"],
        format!(
            "{LINK_BASE}/oppdateringer/{}?{since}&page=2&size=50",
            kind.path
        )
    );
    assert_eq!(
        links["prev"]["href"],
        format!(
            "{LINK_BASE}/oppdateringer/{}?{since}&page=0&size=50",
            kind.path
        )
    );
}

/// A search by numbers in every state and one never registered: the page and each unit in it
/// validate, and it holds exactly the units in the register.
async fn check_search(
    http: &reqwest::Client,
    base: &str,
    spec: &mut Spec,
    kind: &Kind,
    states: &States,
) {
    let asked: Vec<&str> = states
        .current
        .iter()
        .chain(&states.deleted)
        .chain(&states.removed)
        .map(String::as_str)
        .chain([UNKNOWN])
        .collect();
    let query = format!("organisasjonsnummer={}&size=100", asked.join(","));
    let page = get(
        http,
        &format!("{base}/{}?{query}", kind.path),
        StatusCode::OK,
    )
    .await;
    spec.validate(kind.search, &page);
    assert_eq!(
        page["_links"]["self"]["href"],
        format!("{LINK_BASE}/{}?{query}", kind.path)
    );
    let found = page["_embedded"][kind.path].as_array().unwrap();
    for unit in found {
        spec.validate(kind.unit, unit);
    }
    let numbers: BTreeSet<&str> = found
        .iter()
        .filter_map(|u| u["organisasjonsnummer"].as_str())
        .collect();
    let current: BTreeSet<&str> = states.current.iter().map(String::as_str).collect();
    assert_eq!(numbers, current, "{}: the units in the register", kind.path);
    assert_eq!(page["page"]["totalElements"], current.len());
}

/// Single units: in the register (200, `Enhet`), deleted (200, `SlettetEnhet`), removed (410,
/// `GoneEnhet`), never registered (404; the spec gives that answer no body, the simulator the
/// register's error body, `InternalServerError`).
async fn check_units(
    http: &reqwest::Client,
    base: &str,
    spec: &mut Spec,
    kind: &Kind,
    states: &States,
) {
    for (numbers, schema) in [
        (&states.current, kind.unit),
        (&states.deleted, kind.deleted),
    ] {
        for number in numbers {
            let url = format!("{base}/{}/{number}", kind.path);
            let answer = get(http, &url, StatusCode::OK).await;
            assert_eq!(spec.unit_schema(kind.path, &answer), schema, "{answer}");
            spec.validate(schema, &answer);
        }
    }
    for number in &states.removed {
        let url = format!("{base}/{}/{number}", kind.path);
        let answer = get(http, &url, StatusCode::GONE).await;
        spec.validate(kind.gone, &answer);
    }
    let url = format!("{base}/{}/{UNKNOWN}", kind.path);
    let answer = get(http, &url, StatusCode::NOT_FOUND).await;
    spec.validate("InternalServerError", &answer);
}

/// The bulk download, which the spec does not describe: every unit the list serves, each in the
/// shape of its single answer (deleted ones too).
async fn check_download(
    http: &reqwest::Client,
    base: &str,
    spec: &mut Spec,
    kind: &Kind,
    sim: &Running,
) {
    let url = format!("{base}/{}/lastned", kind.path);
    let response = http.get(&url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{url}");
    let gz = response.bytes().await.unwrap();
    let mut text = String::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_string(&mut text)
        .unwrap();
    let units: Vec<Value> = serde_json::from_str(&text).unwrap();
    let mut deleted = 0;
    for unit in &units {
        let schema = spec.unit_schema(kind.path, unit);
        deleted += usize::from(schema == kind.deleted);
        spec.validate(&schema, unit);
    }
    let served = sim
        .shared
        .brreg
        .read()
        .unwrap()
        .units
        .iter()
        .filter(|u| u.list == kind.list && !u.removed)
        .count();
    assert_eq!(units.len(), served, "{}", kind.path);
    assert!(deleted > 0, "{}: deleted units downloaded", kind.path);
}

/// Bad parameters answer the spec's `BadRequest`; a list that does not exist 404 with the
/// register's error body.
async fn check_errors(http: &reqwest::Client, base: &str, spec: &mut Spec) {
    for path in [
        "/oppdateringer/enheter?size=10001",
        "/oppdateringer/underenheter?dato=yesterday",
        "/enheter?size=many",
    ] {
        let answer = get(http, &format!("{base}{path}"), StatusCode::BAD_REQUEST).await;
        spec.validate("BadRequest", &answer);
    }
    let answer = get(
        http,
        &format!("{base}/oppdateringer/personer"),
        StatusCode::NOT_FOUND,
    )
    .await;
    spec.validate("InternalServerError", &answer);
    assert_eq!(
        answer["path"],
        format!("{BRREG_BASE}/oppdateringer/personer")
    );
}

#[test]
fn the_spec_rejects_what_it_does_not_allow() {
    let mut spec = Spec::load();
    let form = json!({ "kode": "AS", "beskrivelse": "Aksjeselskap" });
    let enhet = json!({
        "organisasjonsnummer": "910000012",
        "navn": "Nord Bygg AS",
        "organisasjonsform": form,
        "registreringsdatoEnhetsregisteret": "2020-01-01",
        "registrertIMvaregisteret": true,
        "registrertIForetaksregisteret": true,
        "registrertIFrivillighetsregisteret": false,
        "registrertIStiftelsesregisteret": false,
        "maalform": "Bokmål",
        "konkurs": false,
        "underAvvikling": false,
        "underTvangsavviklingEllerTvangsopplosning": false,
        "harRegistrertAntallAnsatte": false,
        "paategninger": []
    });
    let with = |key: &str, value: Value| {
        let mut e = enhet.clone();
        e[key] = value;
        e
    };
    assert!(spec.is_valid("Enhet", &enhet));
    assert!(
        spec.is_valid("Enhet", &with("hjemmeside", Value::Null)),
        "nullable"
    );
    assert!(
        !spec.is_valid("Enhet", &with("navn", Value::Null)),
        "not nullable"
    );
    let mut without = enhet.clone();
    without.as_object_mut().unwrap().remove("maalform");
    assert!(!spec.is_valid("Enhet", &without), "required");
    assert!(
        !spec.is_valid("Enhet", &with("slettedato", json!("2024-03-09"))),
        "no slettedato on an Enhet"
    );
    assert!(
        !spec.is_valid("Enhet", &with("konkurs", json!("false"))),
        "type"
    );
    assert!(
        !spec.is_valid("Enhet", &with("respons_klasse", json!("Underenhet"))),
        "enum"
    );

    let deleted = json!({
        "organisasjonsnummer": "910000012",
        "navn": "Nord Bygg AS",
        "organisasjonsform": form,
        "slettedato": "2024-03-09"
    });
    assert!(spec.is_valid("SlettetEnhet", &deleted));
    let mut more = deleted.clone();
    more["antallAnsatte"] = json!(3);
    assert!(!spec.is_valid("SlettetEnhet", &more), "fewer attributes");

    let update = json!({
        "oppdateringsid": 1,
        "dato": "2024-01-01T00:00:00.000Z",
        "organisasjonsnummer": "910000012",
        "endringstype": "Ny",
        "_links": { "enhet": { "href": format!("{LINK_BASE}/enheter/910000012") } }
    });
    assert!(spec.is_valid("OppdateringerEnhet", &update));
    let mut linked = update.clone();
    linked["_links"] = json!({ "self": { "href": format!("{LINK_BASE}/enheter/910000012") } });
    assert!(
        !spec.is_valid("OppdateringerEnhet", &linked),
        "the link is named after the kind"
    );

    let freg = json!({
        "kode": "FREG-500",
        "melding": "intern feil",
        "feilkode": "FREG-500",
        "feilmelding": "intern feil",
        "httpStatus": 500
    });
    assert!(!spec.is_valid("InternalServerError", &freg));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn business_register_answers_validate_against_the_published_spec() {
    let stop = CancellationToken::new();
    let config = Config {
        persons: 3_000,
        seed: 83,
        events_per_sec: 5_000.0,
        max_events: Some(3_000),
        faults: 0.0,
        ..Config::default()
    };
    let sim = simulator::start(config, "127.0.0.1:0", stop.clone())
        .await
        .unwrap();
    // Changes stop at `max_events` (about a second): from then on the register holds still.
    for _ in 0..500 {
        if sim.shared.world.read().unwrap().head() >= 3_000 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(sim.shared.world.read().unwrap().head() >= 3_000);
    let base = format!("{}{BRREG_BASE}", sim.url());
    let http = reqwest::Client::new();
    let mut spec = Spec::load();
    for kind in &KINDS {
        let states = states(&sim, kind.list);
        check_updates(&http, &base, &mut spec, kind).await;
        check_search(&http, &base, &mut spec, kind, &states).await;
        check_units(&http, &base, &mut spec, kind, &states).await;
        check_download(&http, &base, &mut spec, kind, &sim).await;
    }
    check_errors(&http, &base, &mut spec).await;
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_faults_answer_in_the_error_body_of_the_register_asked() {
    let stop = CancellationToken::new();
    let config = Config {
        persons: 1_000,
        seed: 84,
        events_per_sec: 0.0,
        faults: 1.0,
        ..Config::default()
    };
    let sim = simulator::start(config, "127.0.0.1:0", stop.clone())
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let mut spec = Spec::load();
    let business = format!("{}{BRREG_BASE}/oppdateringer/enheter?size=5", sim.url());
    let population = format!("{}{BASE}/v1/hendelser/siste/sekvensnummer", sim.url());
    let (mut business_errors, mut population_errors) = (0, 0);
    for _ in 0..40 {
        if business_errors >= 2 && population_errors >= 2 {
            break;
        }
        for url in [&business, &population] {
            let response = http.get(url).send().await.unwrap();
            // Faults that are not errors (a delay, a body cut off) are not looked at.
            if !matches!(response.status().as_u16(), 429 | 500 | 503) {
                continue;
            }
            let body: Value = response.json().await.unwrap();
            if url == &business {
                spec.validate("InternalServerError", &body);
                assert_eq!(body["path"], format!("{BRREG_BASE}/oppdateringer/enheter"));
                business_errors += 1;
            } else {
                assert!(
                    body["feilkode"]
                        .as_str()
                        .is_some_and(|c| c.starts_with("FREG-")),
                    "{body}"
                );
                population_errors += 1;
            }
        }
    }
    assert!(
        business_errors > 0 && population_errors > 0,
        "{business_errors} business and {population_errors} population register errors"
    );
    stop.cancel();
}
