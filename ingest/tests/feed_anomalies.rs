//! The worker against a register that misbehaves in ways a simulator built from the same
//! assumptions would not: retention (406 for old sequence numbers), pages of old entries, a
//! register behind the lake, holes in the feed, a 200 that is not an answer, malformed entries,
//! extract batches with only identity numbers or with an error; and a lake that a stopped
//! maintenance left without tombstones. Each test runs the real worker over HTTP against a
//! small local register whose answers it scripts.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{Datelike, NaiveDate};
use deltalake::datafusion::prelude::SessionContext;
use ingest::{IngestError, Pipeline, RunOptions};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

/// A feed page answer: status and body.
type FeedAnswer = (StatusCode, Value);

/// How the scripted register answers.
#[derive(Default)]
struct Script {
    /// `siste/sekvensnummer`, one per call (the last repeats).
    heads: Vec<i64>,
    /// The feed page for `seq`, by the number of feed calls so far.
    feed: Option<Box<dyn Fn(i64, usize) -> FeedAnswer + Send + Sync>>,
    /// Extract batches in order (the end, `{}`, is added).
    batches: Vec<Value>,
    /// Lookups answered with a 200 that is not an answer before the real ones.
    not_answers: usize,
    /// Document ids answered with the register's error instead of the document.
    failing_documents: Vec<String>,
}

#[derive(Default)]
struct Seen {
    feed: Vec<i64>,
    heads: usize,
    lookups: usize,
}

struct Register {
    script: Script,
    seen: Mutex<Seen>,
}

type Shared = State<Arc<Register>>;

/// A valid test identity number (month + 80) for person `n`.
fn test_id(n: usize) -> String {
    let birth = NaiveDate::from_ymd_opt(1990 + (n % 20) as i32, 1 + (n % 12) as u32, 10).unwrap();
    for individual in 100..500 {
        let nine = format!(
            "{:02}{:02}{:02}{individual:03}",
            birth.day(),
            birth.month() + 80,
            birth.year() % 100
        );
        if let Some(id) = transform::ident::complete(&nine) {
            return id;
        }
    }
    panic!("no test id for {n}");
}

/// A minimal person document; the document id is `d<n>`.
fn document(n: usize) -> Value {
    json!({
        "identifikasjonsnummer": [{"foedselsEllerDNummer": test_id(n), "erGjeldende": true}],
        "foedsel": [{"foedselsdato": format!("{}-01-10", 1990 + n % 20), "erGjeldende": true}],
        "navn": [{"fornavn": "Test", "etternavn": format!("Person{n}"), "erGjeldende": true}],
        "status": [{"status": "bosatt", "erGjeldende": true}],
        "bostedsadresse": [{"vegadresse": {"adressenavn": "Prøvevegen", "kommunenummer": "5035"}, "erGjeldende": true}]
    })
}

fn entry(seq: i64) -> Value {
    let n = seq as usize % 50;
    json!({"sekvensnummer": seq, "hendelse": {
        "folkeregisteridentifikator": test_id(n), "hendelsetype": "endringINavn",
        "persondokument": format!("d{n}")}})
}

fn entries(seqs: impl IntoIterator<Item = i64>) -> FeedAnswer {
    (
        StatusCode::OK,
        Value::Array(seqs.into_iter().map(entry).collect()),
    )
}

#[derive(serde::Deserialize)]
struct Seq {
    seq: i64,
}

async fn feed(State(r): Shared, Query(q): Query<Seq>) -> Response {
    let calls = {
        let mut seen = r.seen.lock().unwrap();
        seen.feed.push(q.seq);
        seen.feed.len() - 1
    };
    let (status, body) = r
        .script
        .feed
        .as_ref()
        .map_or_else(|| (StatusCode::OK, json!([])), |f| f(q.seq, calls));
    (status, Json(body)).into_response()
}

async fn head(State(r): Shared) -> Response {
    let mut seen = r.seen.lock().unwrap();
    let i = seen.heads.min(r.script.heads.len().saturating_sub(1));
    seen.heads += 1;
    Json(r.script.heads.get(i).copied().unwrap_or(0)).into_response()
}

async fn extract() -> Response {
    Json(json!({"jobbId": "jobb-1"})).into_response()
}

async fn batch(State(r): Shared, Path((_, n)): Path<(String, usize)>) -> Response {
    Json(
        r.script
            .batches
            .get(n)
            .cloned()
            .unwrap_or_else(|| json!({})),
    )
    .into_response()
}

/// Answers each key asked for: `d<n>` document ids, or identity numbers of persons 0..50.
async fn lookup(State(r): Shared, Json(body): Json<Value>) -> Response {
    let calls = {
        let mut seen = r.seen.lock().unwrap();
        seen.lookups += 1;
        seen.lookups
    };
    if calls <= r.script.not_answers {
        return Json(json!({"melding": "Tjenesten er under vedlikehold"})).into_response();
    }
    let by_id: HashMap<String, usize> = (0..50).map(|n| (test_id(n), n)).collect();
    let mut answers = Vec::new();
    for key in body["dokumentidentifikator"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let key = key.as_str().unwrap();
        let n: usize = key.trim_start_matches('d').parse().unwrap();
        if r.script.failing_documents.iter().any(|d| d == key) {
            answers.push(json!({"dokumentidentifikator": key, "feilmelding": "Intern feil"}));
            continue;
        }
        answers.push(json!({"dokumentidentifikator": key, "foedselsEllerDNummer": test_id(n), "folkeregisterperson": document(n)}));
    }
    for key in body["foedselsEllerDNummer"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let key = key.as_str().unwrap();
        answers.push(
            json!({"foedselsEllerDNummer": key, "folkeregisterperson": document(by_id[key])}),
        );
    }
    Json(json!({"oppslag": answers})).into_response()
}

/// Starts the scripted register; returns its base URL.
async fn serve(script: Script) -> (String, Arc<Register>) {
    let register = Arc::new(Register {
        script,
        seen: Mutex::new(Seen::default()),
    });
    let api = Router::new()
        .route("/v1/hendelser/feed", get(feed))
        .route("/v1/hendelser/siste/sekvensnummer", get(head))
        .route("/v1/uttrekk/komplett", get(extract))
        .route("/v1/uttrekk/{jobb}/batch/{n}", get(batch))
        .route("/v1/personer/bulkoppslag", post(lookup))
        .route("/v1/personer/bulkoppslag/arkiv", post(lookup))
        .with_state(register.clone());
    let app = Router::new().nest("/api", api);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), register)
}

fn pipeline(url: &str, worker_extra: &str) -> Pipeline {
    let text = format!(
        r#"name = "anomalies"
[source]
register = "freg"
base_url = "{url}"
rights_package_path = "/api"
request_timeout = "5s"
max_tries = 3
[lake]
url = "memory://"
[worker]
batch_events = 100
seed_batch_persons = 1000
fetch_concurrency = 2
poll_interval = "50ms"
{worker_extra}
"#
    );
    Pipeline::parse(&text, |_| None).unwrap()
}

async fn run(
    url: &str,
    lake: &std::path::Path,
    worker_extra: &str,
) -> Result<ingest::worker::Report, IngestError> {
    let options = RunOptions {
        lake: Some(lake.to_str().unwrap().to_owned()),
        until_caught_up: true,
        kafka: None,
    };
    tokio::time::timeout(
        Duration::from_secs(60),
        ingest::run(
            pipeline(url, worker_extra),
            options,
            CancellationToken::new(),
        ),
    )
    .await
    .expect("the worker ends by itself, no endless loop")
}

/// Rows of a query over the lake's tables, as JSON objects.
async fn rows(lake: &std::path::Path, sql: &str) -> Vec<Value> {
    let ctx = SessionContext::new();
    for table in ["person", "person_history", "person_event", "dead_letter"] {
        let url = url::Url::from_directory_path(lake.join(table)).unwrap();
        let delta = deltalake::open_table(url).await.unwrap();
        ctx.register_table(table, delta.table_provider().await.unwrap())
            .unwrap();
    }
    let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
    let mut buf = Vec::new();
    let mut w = arrow::json::LineDelimitedWriter::new(&mut buf);
    for b in &batches {
        w.write(b).unwrap();
    }
    w.finish().unwrap();
    String::from_utf8(buf)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn seen_feed(r: &Register) -> Vec<i64> {
    r.seen.lock().unwrap().feed.clone()
}

#[tokio::test]
async fn a_seeded_lake_follows_from_the_extract_and_never_asks_for_older_entries() {
    // The register keeps the last 1000 entries: anything before 4001 answers 406.
    let (url, register) = serve(Script {
        heads: vec![5000, 5002],
        feed: Some(Box::new(|seq, _| {
            if seq < 4001 {
                (
                    StatusCode::NOT_ACCEPTABLE,
                    json!({"feilkode": "FREG-406", "feilmelding": "sekvensnummer er eldre enn 36 måneder"}),
                )
            } else {
                entries(seq..=5002)
            }
        })),
        batches: vec![json!({"dokumentidentifikator": ["d1", "d2", "d3"]})],
        ..Script::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let report = run(&url, dir.path(), "").await.unwrap();
    assert_eq!(report.seeded, 3);
    assert_eq!(
        seen_feed(&register).first(),
        Some(&5001),
        "{:?}",
        seen_feed(&register)
    );
    assert!(seen_feed(&register).iter().all(|s| *s > 5000));
    let events = rows(
        dir.path(),
        "SELECT sequence FROM person_event ORDER BY sequence",
    )
    .await;
    assert_eq!(
        events,
        vec![json!({"sequence": 5001}), json!({"sequence": 5002})]
    );
}

#[tokio::test]
async fn a_tombstone_retention_left_at_zero_is_restored_when_the_worker_starts() {
    let (url, _) = serve(Script {
        heads: vec![5000, 5002],
        feed: Some(Box::new(|seq, _| entries(seq..=5002))),
        batches: vec![json!({"dokumentidentifikator": ["d1", "d2", "d3"]})],
        ..Script::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    run(&url, dir.path(), "").await.unwrap();
    // A worker stopped between the two property commits of the after-seed maintenance.
    let person = url::Url::from_directory_path(dir.path().join("person")).unwrap();
    let retention = |t: &deltalake::DeltaTable| {
        t.snapshot()
            .unwrap()
            .table_config()
            .deleted_file_retention_duration
    };
    let zeroed = deltalake::open_table(person.clone())
        .await
        .unwrap()
        .set_tbl_properties()
        .with_properties(
            [(
                "delta.deletedFileRetentionDuration".to_owned(),
                "interval 0 seconds".to_owned(),
            )]
            .into_iter()
            .collect(),
        )
        .await
        .unwrap();
    assert_eq!(retention(&zeroed), Some(Duration::ZERO));
    run(&url, dir.path(), "").await.unwrap();
    let restored = deltalake::open_table(person.clone()).await.unwrap();
    assert_eq!(
        retention(&restored),
        Some(Duration::from_secs(7 * 24 * 3600)),
        "the default maintenance.vacuum_retention"
    );
    // A start with nothing at zero commits nothing.
    run(&url, dir.path(), "").await.unwrap();
    let again = deltalake::open_table(person).await.unwrap();
    assert_eq!(again.version(), restored.version());
}

#[tokio::test]
async fn a_lake_older_than_the_retention_says_it_must_be_seeded_again_when_reseeding_is_off() {
    let (url, _) = serve(Script {
        heads: vec![10, 5000],
        feed: Some(Box::new(|seq, _| {
            if seq < 4001 {
                (StatusCode::NOT_ACCEPTABLE, json!({"feilkode": "FREG-406"}))
            } else {
                entries(seq..=5000)
            }
        })),
        ..Script::default()
    })
    .await;
    // Seeded at 10 (the register's head then); the register has since deleted 11..4000.
    let dir = tempfile::tempdir().unwrap();
    let err = run(&url, dir.path(), "reseed_on_expiry = false")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("seeded again") && err.contains("11"), "{err}");
}

#[tokio::test]
async fn a_page_of_old_entries_stops_with_a_clear_error_instead_of_looping() {
    let (url, register) = serve(Script {
        heads: vec![2000],
        feed: Some(Box::new(|_, _| entries(1..=1000))),
        ..Script::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let err = run(&url, dir.path(), "").await.unwrap_err().to_string();
    assert!(err.contains("does not honour the position"), "{err}");
    assert!(
        seen_feed(&register).len() < 5,
        "no tight loop: {:?}",
        seen_feed(&register).len()
    );
}

#[tokio::test]
async fn a_register_behind_the_lake_stops_the_worker() {
    // Seeded at 100; then the register answers as if restored from a backup at 40.
    let (url, _) = serve(Script {
        heads: vec![100, 40],
        ..Script::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let err = run(&url, dir.path(), "").await.unwrap_err().to_string();
    assert!(
        err.contains("behind the lake's position 100") && err.contains("40"),
        "{err}"
    );
}

#[tokio::test]
async fn a_hole_that_does_not_fill_stops_the_worker_naming_the_range() {
    let (url, _) = serve(Script {
        heads: vec![10, 15],
        feed: Some(Box::new(|seq, _| {
            entries([11, 12, 15].into_iter().filter(|s| *s >= seq))
        })),
        ..Script::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let err = run(&url, dir.path(), r#"gap_timeout = "300ms""#)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("13..=14") && err.contains("missing"), "{err}");
    // What came before the hole is committed; nothing after it.
    let events = rows(
        dir.path(),
        "SELECT sequence FROM person_event ORDER BY sequence",
    )
    .await;
    assert_eq!(
        events,
        vec![json!({"sequence": 11}), json!({"sequence": 12})]
    );
}

#[tokio::test]
async fn a_hole_is_recorded_and_skipped_when_configured() {
    let (url, _) = serve(Script {
        heads: vec![10, 15],
        feed: Some(Box::new(|seq, _| {
            entries([11, 12, 15].into_iter().filter(|s| *s >= seq))
        })),
        ..Script::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    run(
        &url,
        dir.path(),
        "gap_timeout = \"200ms\"\nskip_gaps = true",
    )
    .await
    .unwrap();
    let events = rows(
        dir.path(),
        "SELECT sequence FROM person_event ORDER BY sequence",
    )
    .await;
    assert_eq!(events.len(), 3, "{events:?}");
    let dead = rows(dir.path(), "SELECT reason FROM dead_letter").await;
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert!(
        dead[0]["reason"].as_str().unwrap().contains("13..=14"),
        "{dead:?}"
    );
}

#[tokio::test]
async fn a_hole_that_fills_is_waited_for_and_nothing_is_skipped() {
    // The first answer lacks 13 and 14 (numbered, not yet visible); later ones have them.
    let (url, _) = serve(Script {
        heads: vec![10, 15],
        feed: Some(Box::new(|seq, call| {
            let all: Vec<i64> = if call == 0 {
                vec![11, 12, 15]
            } else {
                (11..=15).collect()
            };
            entries(all.into_iter().filter(|s| *s >= seq))
        })),
        ..Script::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    run(&url, dir.path(), r#"gap_timeout = "30s""#)
        .await
        .unwrap();
    let events = rows(
        dir.path(),
        "SELECT sequence FROM person_event ORDER BY sequence",
    )
    .await;
    let got: Vec<i64> = events
        .iter()
        .map(|e| e["sequence"].as_i64().unwrap())
        .collect();
    assert_eq!(got, vec![11, 12, 13, 14, 15]);
}

#[tokio::test]
async fn a_200_that_is_not_an_answer_is_retried_and_loses_nothing() {
    let (url, _) = serve(Script {
        heads: vec![10, 14],
        feed: Some(Box::new(|seq, _| entries((11..=14).filter(|s| *s >= seq)))),
        batches: vec![json!({"dokumentidentifikator": ["d1", "d2"]})],
        not_answers: 2,
        ..Script::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let report = run(&url, dir.path(), "").await.unwrap();
    assert_eq!(report.seeded, 2, "the seed's persons are not lost");
    let outcomes = rows(
        dir.path(),
        "SELECT outcome, count(*) AS n FROM person_event GROUP BY outcome",
    )
    .await;
    assert_eq!(outcomes, vec![json!({"outcome": "applied", "n": 4})]);
    assert!(
        rows(dir.path(), "SELECT * FROM dead_letter")
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn a_malformed_feed_entry_is_dead_lettered_and_the_feed_goes_on() {
    let (url, _) = serve(Script {
        heads: vec![10, 13],
        feed: Some(Box::new(|seq, _| {
            let mut page: Vec<Value> = (11..=13).filter(|s| *s >= seq).map(entry).collect();
            for e in &mut page {
                if e["sekvensnummer"] == 12 {
                    e["hendelse"]
                        .as_object_mut()
                        .unwrap()
                        .remove("hendelsetype");
                }
            }
            (StatusCode::OK, Value::Array(page))
        })),
        ..Script::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    run(&url, dir.path(), "").await.unwrap();
    // A second run starts after the entry: it does not stop on it again.
    run(&url, dir.path(), "").await.unwrap();
    let events = rows(
        dir.path(),
        "SELECT sequence, outcome FROM person_event ORDER BY sequence",
    )
    .await;
    assert_eq!(
        events,
        vec![
            json!({"sequence": 11, "outcome": "applied"}),
            json!({"sequence": 12, "outcome": "dead_lettered"}),
            json!({"sequence": 13, "outcome": "applied"}),
        ]
    );
    let dead = rows(
        dir.path(),
        "SELECT cursor, reason, payload FROM dead_letter",
    )
    .await;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0]["cursor"], "sequence=12");
    assert!(dead[0]["reason"].as_str().unwrap().contains("hendelsetype"));
}

#[tokio::test]
async fn an_entry_whose_document_cannot_be_read_withholds_the_persons_address() {
    // Persons 11 and 12 are seeded with an address; entry 12's document is answered with an
    // error. The change might have been a protection: person 12's address is withheld
    // everywhere (protection `ukjent`) until a later document is read.
    let (url, _) = serve(Script {
        heads: vec![10, 12],
        batches: vec![json!({"foedselsEllerDNummer": [test_id(11), test_id(12)]})],
        feed: Some(Box::new(|seq, _| entries((11..=12).filter(|s| *s >= seq)))),
        failing_documents: vec!["d12".into()],
        ..Script::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    run(&url, dir.path(), "").await.unwrap();
    let state = rows(
        dir.path(),
        "SELECT person_id, address_protection, street_name, municipality_number, last_sequence \
         FROM person ORDER BY person_id",
    )
    .await;
    let by_id = |n: usize| {
        state
            .iter()
            .find(|r| r["person_id"] == test_id(n))
            .cloned()
            .unwrap_or_else(|| panic!("person {n} in {state:?}"))
    };
    assert_eq!(by_id(11)["street_name"], "Prøvevegen", "{state:?}");
    let withheld = by_id(12);
    assert_eq!(withheld["address_protection"], "ukjent", "{withheld}");
    assert!(
        withheld.get("street_name").is_none() && withheld.get("municipality_number").is_none(),
        "{withheld}"
    );
    assert_eq!(
        withheld["last_sequence"], 12,
        "republished as changed: {withheld}"
    );
    let versions = rows(
        dir.path(),
        &format!(
            "SELECT street_name, valid_to FROM person_history WHERE person_id = '{}'",
            test_id(12)
        ),
    )
    .await;
    assert!(!versions.is_empty());
    assert!(
        versions.iter().all(|v| v.get("street_name").is_none()),
        "no version keeps the address: {versions:?}"
    );
    assert!(
        versions.iter().any(|v| v.get("valid_to").is_none()),
        "the open version stays open: {versions:?}"
    );
    let events = rows(
        dir.path(),
        "SELECT sequence, outcome FROM person_event ORDER BY sequence",
    )
    .await;
    assert_eq!(
        events[1],
        json!({"sequence": 12, "outcome": "dead_lettered"})
    );
}

#[tokio::test]
async fn extract_batches_with_only_identity_numbers_seed_every_person() {
    let ids: Vec<String> = (0..5).map(test_id).collect();
    let (url, _) = serve(Script {
        heads: vec![10],
        batches: vec![
            json!({"foedselsEllerDNummer": ids[..3]}),
            json!({"foedselsEllerDNummer": ids[3..], "dokumentidentifikator": []}),
        ],
        ..Script::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let report = run(&url, dir.path(), "").await.unwrap();
    assert_eq!(report.seeded, 5);
    assert_eq!(
        rows(dir.path(), "SELECT person_id FROM person").await.len(),
        5
    );
}

#[tokio::test]
async fn an_extract_batch_with_an_error_fails_the_seed() {
    let (url, _) = serve(Script {
        heads: vec![10],
        batches: vec![
            json!({"dokumentidentifikator": ["d1"]}),
            json!({"feilmelding": "uttrekket feilet"}),
        ],
        ..Script::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let err = run(&url, dir.path(), "").await.unwrap_err().to_string();
    assert!(
        err.contains("uttrekket feilet") && err.contains("batch/1"),
        "{err}"
    );
}
