//! What the register answers by configuration: a feed that keeps only its newest entries (406 or
//! a later start for older positions, 404 for their event documents, 406 for extracts at them)
//! and extract batches with either or both arrays.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use simulator::{BASE, Config, ExpiredFeed, ExtractIds};
use tokio_util::sync::CancellationToken;

/// A simulator whose change stream has ended, so its head stays put.
struct Sim {
    base: String,
    head: i64,
    stop: CancellationToken,
    http: reqwest::Client,
}

impl Sim {
    async fn start(config: Config) -> Self {
        let stop = CancellationToken::new();
        let max = config.max_events.map_or(0, |m| m as i64);
        let running = simulator::start(config, "127.0.0.1:0", stop.clone())
            .await
            .unwrap();
        let head = || running.shared.world.read().unwrap().head();
        for _ in 0..600 {
            if head() >= max {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(head() >= max, "the stream reached {max} entries");
        Self {
            base: format!("{}{BASE}", running.url()),
            head: head(),
            stop,
            http: reqwest::Client::new(),
        }
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap()
        };
        (status, body)
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

fn config(retain_events: Option<u64>, expired_feed: ExpiredFeed) -> Config {
    Config {
        persons: 2_000,
        seed: 31,
        events_per_sec: 5_000.0,
        max_events: Some(1_500),
        retain_events,
        expired_feed,
        ..Config::default()
    }
}

fn seqs(page: &Value) -> Vec<i64> {
    page.as_array()
        .unwrap()
        .iter()
        .map(|e| e["sekvensnummer"].as_i64().unwrap())
        .collect()
}

fn assert_expired(status: StatusCode, body: &Value, asked: i64, oldest: i64) {
    assert_eq!(status, StatusCode::NOT_ACCEPTABLE, "{body}");
    assert_eq!(body["kode"], "FREG-406");
    assert_eq!(body["feilkode"], "FREG-406");
    assert_eq!(body["httpStatus"], 406);
    let message = body["feilmelding"].as_str().unwrap();
    assert!(
        message.contains(&format!("{asked} er eldre enn oppbevaringstiden"))
            && message.contains(&oldest.to_string()),
        "{message}"
    );
    assert_eq!(body["melding"], body["feilmelding"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_feed_position_older_than_the_retention_answers_406() {
    let sim = Sim::start(config(Some(500), ExpiredFeed::NotAcceptable)).await;
    let oldest = sim.head - 499;
    for asked in [0, 1, oldest - 1] {
        let (status, body) = sim.get(&format!("/v1/hendelser/feed?seq={asked}")).await;
        assert_expired(status, &body, asked, oldest);
    }
    let (status, page) = sim.get(&format!("/v1/hendelser/feed?seq={oldest}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(seqs(&page), (oldest..=sim.head).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_event_documents_answer_404_and_extracts_at_expired_positions_406() {
    let sim = Sim::start(config(Some(500), ExpiredFeed::NotAcceptable)).await;
    let oldest = sim.head - 499;
    let (status, _) = sim.get(&format!("/v1/hendelser/{:032x}", oldest - 1)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, event) = sim.get(&format!("/v1/hendelser/{oldest:032x}")).await;
    assert_eq!(status, StatusCode::OK, "{event}");

    let (status, body) = sim
        .get(&format!(
            "/v1/uttrekk/komplett?feedsekvensnr={}",
            oldest - 1
        ))
        .await;
    assert_expired(status, &body, oldest - 1, oldest);
    for query in [format!("?feedsekvensnr={oldest}"), String::new()] {
        let (status, job) = sim.get(&format!("/v1/uttrekk/komplett{query}")).await;
        assert_eq!(status, StatusCode::OK, "{job}");
        assert!(job["jobbId"].is_string(), "{job}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_expired_feed_gone_the_page_starts_at_the_oldest_entry_kept() {
    let sim = Sim::start(config(Some(500), ExpiredFeed::Gone)).await;
    let oldest = sim.head - 499;
    for asked in [1, oldest - 1, oldest] {
        let (status, page) = sim.get(&format!("/v1/hendelser/feed?seq={asked}")).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert_eq!(seqs(&page), (oldest..=sim.head).collect::<Vec<_>>());
    }
    let (_, page) = sim
        .get(&format!("/v1/hendelser/feed?seq={}", oldest + 10))
        .await;
    assert_eq!(seqs(&page)[0], oldest + 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_expires_without_a_limit_or_below_it() {
    for retain in [None, Some(1_000_000)] {
        let sim = Sim::start(config(retain, ExpiredFeed::NotAcceptable)).await;
        let (status, page) = sim.get("/v1/hendelser/feed?seq=1").await;
        assert_eq!(status, StatusCode::OK, "{retain:?}: {page}");
        assert_eq!(seqs(&page), (1..=1000).collect::<Vec<_>>());
        let (status, _) = sim.get(&format!("/v1/hendelser/{:032x}", 1)).await;
        assert_eq!(status, StatusCode::OK);
        let (status, _) = sim.get("/v1/uttrekk/komplett?feedsekvensnr=1").await;
        assert_eq!(status, StatusCode::OK);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extract_batches_carry_the_configured_arrays() {
    for (extract_ids, ids, documents) in [
        (ExtractIds::Both, true, true),
        (ExtractIds::Ids, true, false),
        (ExtractIds::Documents, false, true),
    ] {
        let sim = Sim::start(Config {
            persons: 1_500,
            seed: 5,
            events_per_sec: 0.0,
            extract_ids,
            ..Config::default()
        })
        .await;
        let (_, job) = sim.get("/v1/uttrekk/komplett").await;
        let job = job["jobbId"].as_str().unwrap().to_owned();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut persons = 0;
        for n in 0.. {
            let (status, batch) = sim.get(&format!("/v1/uttrekk/{job}/batch/{n}")).await;
            assert_eq!(status, StatusCode::OK, "{batch}");
            let batch = batch.as_object().unwrap();
            if batch.is_empty() {
                break;
            }
            assert_eq!(
                batch.contains_key("foedselsEllerDNummer"),
                ids,
                "{extract_ids:?}"
            );
            assert_eq!(
                batch.contains_key("dokumentidentifikator"),
                documents,
                "{extract_ids:?}"
            );
            persons += batch.values().next().unwrap().as_array().unwrap().len();
        }
        assert_eq!(persons, 1_500, "{extract_ids:?}: every person once");
    }
}
