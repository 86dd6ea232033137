//! The JWT-bearer grant against a local token endpoint that verifies the signed assertion, and
//! the register client sending the token, reusing it until it expires, retrying an endpoint
//! that is briefly unavailable and stopping at one that refuses the grant.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use ingest::client::FregClient;
use ingest::config::{Maskinporten, Source};
use ingest::error::ErrorKind;
use ingest::maskinporten::TokenSource;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};

const KEY: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/test-maskinporten-key.pem"
);
const PUBLIC: &str = include_str!("fixtures/test-maskinporten-key.pub.pem");

#[derive(serde::Deserialize)]
struct Claims {
    iss: String,
    scope: String,
    exp: i64,
    iat: i64,
}

/// How the local token endpoint behaves, and what it was asked.
struct Endpoint {
    /// Requests received, answered or not.
    requests: AtomicUsize,
    /// Tokens issued.
    issued: AtomicUsize,
    /// Requests still to be answered 503 before tokens are issued.
    unavailable: AtomicUsize,
    /// `expires_in` of the tokens issued.
    expires_in: u64,
}

impl Endpoint {
    fn new(expires_in: u64) -> Arc<Self> {
        Arc::new(Self {
            requests: AtomicUsize::new(0),
            issued: AtomicUsize::new(0),
            unavailable: AtomicUsize::new(0),
            expires_in,
        })
    }
}

async fn token(State(endpoint): State<Arc<Endpoint>>, body: String) -> (StatusCode, String) {
    endpoint.requests.fetch_add(1, Ordering::SeqCst);
    if endpoint
        .unavailable
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
    {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "{\"error\":\"temporarily_unavailable\"}".into(),
        );
    }
    let form: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(body.as_bytes())
            .into_owned()
            .collect();
    if form.get("grant_type").map(String::as_str)
        != Some("urn:ietf:params:oauth:grant-type:jwt-bearer")
    {
        return (
            StatusCode::BAD_REQUEST,
            "{\"error\":\"unsupported_grant_type\"}".into(),
        );
    }
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&["https://maskinporten.test/"]);
    let key = DecodingKey::from_rsa_pem(PUBLIC.as_bytes()).unwrap();
    let claims = match jsonwebtoken::decode::<Claims>(
        form.get("assertion").map_or("", String::as_str),
        &key,
        &validation,
    ) {
        Ok(t) => t.claims,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                format!("{{\"error\":\"invalid_grant\",\"error_description\":\"{e}\"}}"),
            );
        }
    };
    if claims.iss != "regsync-test-client"
        || claims.scope != "folkeregister:deling/offentligmedhjemmel"
        || claims.exp - claims.iat > 120
    {
        return (
            StatusCode::BAD_REQUEST,
            "{\"error\":\"invalid_grant\"}".into(),
        );
    }
    let n = endpoint.issued.fetch_add(1, Ordering::SeqCst) + 1;
    (
        StatusCode::OK,
        format!(
            "{{\"access_token\":\"token-{n}\",\"token_type\":\"Bearer\",\"expires_in\":{},\"scope\":\"{}\"}}",
            endpoint.expires_in, claims.scope
        ),
    )
}

async fn head(headers: HeaderMap) -> (StatusCode, String) {
    match headers.get("authorization").and_then(|v| v.to_str().ok()) {
        Some(v) if v.starts_with("Bearer token-") => (StatusCode::OK, "42".into()),
        _ => (StatusCode::UNAUTHORIZED, "{\"kode\":\"FREG-401\"}".into()),
    }
}

fn source(base: &str, key_file: &str) -> Source {
    Source {
        register: "freg".into(),
        base_url: base.into(),
        rights_package_path: Some("/api".into()),
        api_path: None,
        address_file: None,
        kommuner: Vec::new(),
        request_timeout: Duration::from_secs(5),
        max_tries: 2,
        maskinporten: Some(Maskinporten {
            token_url: format!("{base}/token"),
            audience: "https://maskinporten.test/".into(),
            client_id: "regsync-test-client".into(),
            scope: "folkeregister:deling/offentligmedhjemmel".into(),
            key_file: key_file.into(),
            key_id: None,
        }),
    }
}

/// Serves the token endpoint and the register's head on `127.0.0.1:0`; returns the base URL.
async fn serve(endpoint: Arc<Endpoint>) -> String {
    let app = Router::new()
        .route("/token", post(token))
        .route("/api/v1/hendelser/siste/sekvensnummer", get(head))
        .with_state(endpoint);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

#[tokio::test]
async fn token_is_requested_once_and_sent_as_bearer() {
    let endpoint = Endpoint::new(120);
    let base = serve(endpoint.clone()).await;

    let client = FregClient::new(&source(&base, KEY)).unwrap();
    assert_eq!(client.head().await.unwrap(), 42);
    assert_eq!(client.head().await.unwrap(), 42);
    assert_eq!(
        endpoint.issued.load(Ordering::SeqCst),
        1,
        "the token is reused until it expires"
    );

    let debug = format!("{:?}", source(&base, KEY));
    assert!(
        !debug.contains("test-maskinporten-key"),
        "the key file stays out of logs: {debug}"
    );
}

#[tokio::test]
async fn a_bad_key_file_is_named() {
    let err = FregClient::new(&source("http://127.0.0.1:9", "/nonexistent/key.pem")).unwrap_err();
    assert!(err.to_string().contains("/nonexistent/key.pem"), "{err}");
}

#[tokio::test]
async fn an_unavailable_token_endpoint_is_retried() {
    let endpoint = Endpoint::new(120);
    endpoint.unavailable.store(1, Ordering::SeqCst);
    let base = serve(endpoint.clone()).await;

    let client = FregClient::new(&source(&base, KEY)).unwrap();
    assert_eq!(client.head().await.unwrap(), 42);
    assert_eq!(
        endpoint.requests.load(Ordering::SeqCst),
        2,
        "one 503, one token"
    );
    assert_eq!(endpoint.issued.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn an_unreachable_token_endpoint_is_retryable() {
    let mut config = source("http://127.0.0.1:9", KEY).maskinporten.unwrap();
    config.token_url = "http://127.0.0.1:9/token".into();
    let tokens = TokenSource::new(config, reqwest::Client::new()).unwrap();
    let err = tokens.token().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Retryable, "{err}");
    assert!(
        err.to_string().contains("http://127.0.0.1:9/token"),
        "{err}"
    );
}

#[tokio::test]
async fn a_huge_expires_in_does_not_overflow_the_clock() {
    let endpoint = Endpoint::new(u64::MAX);
    let base = serve(endpoint.clone()).await;

    let client = FregClient::new(&source(&base, KEY)).unwrap();
    assert_eq!(client.head().await.unwrap(), 42);
    assert_eq!(client.head().await.unwrap(), 42);
    assert_eq!(
        endpoint.issued.load(Ordering::SeqCst),
        1,
        "the token is used"
    );
}

#[tokio::test]
async fn a_zero_expires_in_does_not_fetch_a_token_per_request() {
    let endpoint = Endpoint::new(0);
    let base = serve(endpoint.clone()).await;

    let client = FregClient::new(&source(&base, KEY)).unwrap();
    for _ in 0..3 {
        assert_eq!(client.head().await.unwrap(), 42);
    }
    assert_eq!(endpoint.issued.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_refused_grant_stops_at_once_naming_the_token_url() {
    let endpoint = Endpoint::new(120);
    let base = serve(endpoint.clone()).await;
    let mut unknown = source(&base, KEY);
    if let Some(m) = unknown.maskinporten.as_mut() {
        m.client_id = "a-client-maskinporten-does-not-know".into();
    }
    unknown.max_tries = 5;

    let client = FregClient::new(&unknown).unwrap();
    let err = client.head().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Fatal, "{err}");
    let text = err.to_string();
    assert!(
        text.contains(&format!("{base}/token")) && text.contains("invalid_grant"),
        "{text}"
    );
    assert_eq!(
        endpoint.requests.load(Ordering::SeqCst),
        1,
        "a refused grant is not retried"
    );
}
