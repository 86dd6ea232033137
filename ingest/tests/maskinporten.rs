//! The JWT-bearer grant against a local token endpoint that verifies the signed assertion, and
//! the register client sending the token and reusing it until it expires.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use ingest::client::FregClient;
use ingest::config::{Maskinporten, Source};
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

async fn token(State(calls): State<Arc<AtomicUsize>>, body: String) -> (StatusCode, String) {
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
    let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
    (
        StatusCode::OK,
        format!(
            "{{\"access_token\":\"token-{n}\",\"token_type\":\"Bearer\",\"expires_in\":120,\"scope\":\"{}\"}}",
            claims.scope
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
        rights_package_path: "/api".into(),
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

#[tokio::test]
async fn token_is_requested_once_and_sent_as_bearer() {
    let calls = Arc::new(AtomicUsize::new(0));
    let app = Router::new()
        .route("/token", post(token))
        .route("/api/v1/hendelser/siste/sekvensnummer", get(head))
        .with_state(calls.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let client = FregClient::new(&source(&base, KEY)).unwrap();
    assert_eq!(client.head().await.unwrap(), 42);
    assert_eq!(client.head().await.unwrap(), 42);
    assert_eq!(
        calls.load(Ordering::SeqCst),
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
