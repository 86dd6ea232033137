//! Answer faults under `faults > 0`, seen over HTTP among the transport faults: 200 answers that
//! are not the answer, feed pages with an entry not yet visible, extract batches with ids only.

use std::collections::BTreeSet;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use simulator::faults::MAINTENANCE;
use simulator::{BASE, Config};
use tokio_util::sync::CancellationToken;

/// A request that can be sent again.
type Request<'a> = Box<dyn Fn() -> reqwest::RequestBuilder + 'a>;

/// Requests each test may make before it gives up looking for a fault.
const TRIES: usize = 400;

/// What one request got.
#[derive(Debug)]
enum Answer {
    /// A transport fault: 429/500/503 or a body cut off.
    Failed,
    /// 200 with the maintenance body.
    Maintenance,
    /// 200 with a JSON answer, and its ETag.
    Ok(Value, Option<String>),
}

async fn answer(request: reqwest::RequestBuilder) -> Answer {
    let response = request.send().await.unwrap();
    let status = response.status();
    let etag = response
        .headers()
        .get("etag")
        .map(|v| v.to_str().unwrap().to_owned());
    let text = response.text().await.unwrap_or_default();
    if status != StatusCode::OK {
        assert!(
            [429, 500, 503].contains(&status.as_u16()),
            "{status}: {text}"
        );
        return Answer::Failed;
    }
    match serde_json::from_str::<Value>(&text) {
        Err(_) => Answer::Failed,
        Ok(v) if v == json!({ "melding": MAINTENANCE }) => Answer::Maintenance,
        Ok(v) => Answer::Ok(v, etag),
    }
}

/// A simulator with faults on and 1 500 feed entries, its base URL and its stop token.
async fn start() -> (String, CancellationToken) {
    let stop = CancellationToken::new();
    let sim = simulator::start(
        Config {
            persons: 2_000,
            seed: 41,
            events_per_sec: 5_000.0,
            max_events: Some(1_500),
            faults: 0.5,
            ..Config::default()
        },
        "127.0.0.1:0",
        stop.clone(),
    )
    .await
    .unwrap();
    for _ in 0..600 {
        if sim.shared.world.read().unwrap().head() >= 1_500 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (format!("{}{BASE}", sim.url()), stop)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_feed_page_sometimes_holds_an_entry_back_and_serves_it_next_time() {
    let (base, stop) = start().await;
    let http = reqwest::Client::new();
    let (mut held_back, mut pages_after) = (BTreeSet::new(), 0);
    for _ in 0..TRIES {
        let Answer::Ok(page, etag) =
            answer(http.get(format!("{base}/v1/hendelser/feed?seq=1"))).await
        else {
            continue;
        };
        let seen: BTreeSet<i64> = page
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["sekvensnummer"].as_i64().unwrap())
            .collect();
        assert_eq!(seen.first(), Some(&1), "the first entry is always there");
        assert_eq!(seen.last(), Some(&1000), "the last entry is always there");
        for seq in &held_back {
            assert!(seen.contains(seq), "{seq} was held back twice");
        }
        if !held_back.is_empty() {
            pages_after += 1;
        }
        let missing: Vec<i64> = (1..=1000).filter(|s| !seen.contains(s)).collect();
        assert!(
            missing.len() <= 1,
            "at most one entry in flight: {missing:?}"
        );
        assert_eq!(
            etag.is_none(),
            !missing.is_empty(),
            "a page with a gap carries no ETag, a whole one does"
        );
        held_back.extend(missing);
        if pages_after >= 3 {
            break;
        }
    }
    assert!(
        !held_back.is_empty() && pages_after >= 3,
        "an entry held back ({held_back:?}) and served on {pages_after} later pages"
    );
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookups_batches_and_the_feed_sometimes_answer_200_under_maintenance() {
    let (base, stop) = start().await;
    let http = reqwest::Client::new();
    let job = ok(|| http.get(format!("{base}/v1/uttrekk/komplett"))).await;
    let job = job["jobbId"].as_str().unwrap().to_owned();
    let page = ok(|| http.get(format!("{base}/v1/hendelser/feed?seq=1"))).await;
    let id = page[0]["hendelse"]["folkeregisteridentifikator"].clone();
    let document = page[0]["hendelse"]["persondokument"].clone();
    tokio::time::sleep(Duration::from_millis(300)).await;

    let calls: [(&str, Request, &str); 4] = [
        (
            "feed",
            Box::new(|| http.get(format!("{base}/v1/hendelser/feed?seq=1"))),
            "",
        ),
        (
            "bulkoppslag",
            Box::new(|| {
                http.post(format!("{base}/v1/personer/bulkoppslag"))
                    .json(&json!({ "foedselsEllerDNummer": [id] }))
            }),
            "oppslag",
        ),
        (
            "bulkoppslag/arkiv",
            Box::new(|| {
                http.post(format!("{base}/v1/personer/bulkoppslag/arkiv"))
                    .json(&json!({ "dokumentidentifikator": [document] }))
            }),
            "oppslag",
        ),
        (
            "batch",
            Box::new(|| http.get(format!("{base}/v1/uttrekk/{job}/batch/0"))),
            "foedselsEllerDNummer",
        ),
    ];
    for (name, request, key) in calls {
        let mut maintenance = false;
        for _ in 0..TRIES {
            match answer(request()).await {
                Answer::Maintenance => {
                    maintenance = true;
                    break;
                }
                Answer::Ok(v, _) if key.is_empty() => assert!(v.is_array(), "{name}: {v}"),
                Answer::Ok(v, _) => assert!(v.get(key).is_some(), "{name}: {v}"),
                Answer::Failed => {}
            }
        }
        assert!(maintenance, "{name} answered 200 under maintenance");
    }
    stop.cancel();
}

/// The first real answer to `request`, retried past faults.
async fn ok(request: impl Fn() -> reqwest::RequestBuilder) -> Value {
    for _ in 0..TRIES {
        if let Answer::Ok(v, _) = answer(request()).await {
            return v;
        }
    }
    panic!("no answer in {TRIES} tries");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extract_batches_sometimes_carry_ids_only() {
    let (base, stop) = start().await;
    let http = reqwest::Client::new();
    let job = ok(|| http.get(format!("{base}/v1/uttrekk/komplett"))).await;
    let job = job["jobbId"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (mut ids_only, mut both) = (0, 0);
    for _ in 0..TRIES {
        let Answer::Ok(batch, _) =
            answer(http.get(format!("{base}/v1/uttrekk/{job}/batch/1"))).await
        else {
            continue;
        };
        let ids = batch["foedselsEllerDNummer"].as_array().unwrap();
        assert_eq!(ids.len(), 1000, "{batch}");
        match batch.get("dokumentidentifikator") {
            None => ids_only += 1,
            Some(docs) => {
                assert_eq!(docs.as_array().unwrap().len(), 1000);
                both += 1;
            }
        }
        if ids_only > 0 && both > 0 {
            break;
        }
    }
    assert!(ids_only > 0 && both > 0, "ids only {ids_only}, both {both}");
    stop.cancel();
}
