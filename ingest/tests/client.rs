//! The register client's retry policy against a local fake register over real HTTP: one policy
//! per request (a failing request is tried `max_tries` times, never more), `Retry-After` waited
//! out, a refusal not retried, an extract batch that is not ready waited for without using up
//! the tries of real failures; and the lake's error classes.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use ingest::client::FregClient;
use ingest::config::Source;
use transform::ErrorKind;

/// Answers in order (the last repeats), counting requests.
#[derive(Default)]
struct Fake {
    answers: Vec<(u16, Option<u64>, &'static str)>,
    calls: AtomicUsize,
}

async fn answer(State(fake): State<Arc<Fake>>) -> impl IntoResponse {
    let n = fake.calls.fetch_add(1, Ordering::SeqCst);
    let (status, retry_after, body) = fake.answers[n.min(fake.answers.len() - 1)];
    let mut headers = HeaderMap::new();
    if let Some(s) = retry_after {
        headers.insert("retry-after", s.to_string().parse().unwrap());
    }
    (StatusCode::from_u16(status).unwrap(), headers, body)
}

async fn serve(answers: Vec<(u16, Option<u64>, &'static str)>) -> (FregClient, Arc<Fake>) {
    let fake = Arc::new(Fake {
        answers,
        calls: AtomicUsize::new(0),
    });
    let app = Router::new()
        .route("/api/v1/hendelser/siste/sekvensnummer", get(answer))
        .route("/api/v1/uttrekk/{job}/batch/{n}", get(answer))
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let client = FregClient::new(&Source {
        register: "freg".into(),
        base_url: base,
        rights_package_path: Some("/api".into()),
        api_path: None,
        address_file: None,
        kommuner: Vec::new(),
        request_timeout: Duration::from_secs(5),
        max_tries: 3,
        maskinporten: None,
    })
    .unwrap();
    (client, fake)
}

#[tokio::test]
async fn retry_after_is_waited_out() {
    let (client, fake) = serve(vec![(429, Some(2), "slow down"), (200, None, "4711")]).await;
    let started = Instant::now();
    assert_eq!(client.head().await.unwrap(), 4711);
    assert_eq!(fake.calls.load(Ordering::SeqCst), 2);
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "the register asked for 2 s"
    );
}

#[tokio::test]
async fn a_failing_request_is_tried_max_tries_times_and_named() {
    let (client, fake) = serve(vec![(503, None, "down")]).await;
    let err = client.head().await.unwrap_err();
    assert_eq!(
        fake.calls.load(Ordering::SeqCst),
        3,
        "max_tries = 3, no more"
    );
    let text = err.to_string();
    assert!(
        text.contains("503") && text.contains("/v1/hendelser/siste/sekvensnummer"),
        "{text}"
    );
    assert_eq!(err.kind(), ErrorKind::Retryable, "a restart may succeed");
}

#[tokio::test]
async fn a_refusal_is_not_retried() {
    let (client, fake) = serve(vec![(400, None, "bad request"), (200, None, "1")]).await;
    let err = client.head().await.unwrap_err();
    assert_eq!(fake.calls.load(Ordering::SeqCst), 1);
    assert_eq!(err.kind(), ErrorKind::Fatal);
}

#[tokio::test]
async fn an_extract_batch_not_ready_is_waited_for_and_real_failures_keep_their_limit() {
    // Not ready five times (more than max_tries), then the end of the extract.
    let (client, fake) = serve(vec![
        (404, None, "not ready"),
        (404, None, "not ready"),
        (404, None, "not ready"),
        (404, None, "not ready"),
        (404, None, "not ready"),
        (200, None, "{}"),
    ])
    .await;
    assert!(client.extract_batch("job", 0).await.unwrap().is_none());
    assert_eq!(fake.calls.load(Ordering::SeqCst), 6);
    // A batch that fails for real is tried max_tries times under the same one policy.
    let (client, fake) = serve(vec![(503, None, "down")]).await;
    assert!(client.extract_batch("job", 0).await.is_err());
    assert_eq!(fake.calls.load(Ordering::SeqCst), 3);
}

#[test]
fn lake_errors_are_classified() {
    use deltalake::DeltaTableError;
    use ingest::lake::is_transient;
    let store = |e| DeltaTableError::ObjectStore { source: e };
    assert!(is_transient(&store(deltalake::ObjectStoreError::Generic {
        store: "S3",
        source: "connection reset".into(),
    })));
    assert!(!is_transient(&store(
        deltalake::ObjectStoreError::NotFound {
            path: "lake/person/_delta_log/00000000000000000001.json".into(),
            source: "no such key".into(),
        }
    )));
    assert!(!is_transient(&store(
        deltalake::ObjectStoreError::PermissionDenied {
            path: "lake".into(),
            source: "denied".into(),
        }
    )));
    assert!(is_transient(&DeltaTableError::VersionAlreadyExists(4)));
    assert!(!is_transient(&DeltaTableError::Generic("a bug".into())));
}
