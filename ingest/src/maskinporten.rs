//! Maskinporten: the OAuth2 JWT-bearer grant the real register requires, with the token reused
//! until shortly before it expires. Neither the key nor the token is ever logged.

use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::{StatusCode, header};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use crate::IngestError;
use crate::config::Maskinporten;
use crate::error::ErrorKind;

/// A token is renewed this long before it expires (or at half its lifetime, if that is sooner).
const RENEW_BEFORE: Duration = Duration::from_secs(30);

/// A shorter `expires_in` counts as this long, so that a zero or tiny one does not make every
/// request fetch a new token.
const MIN_LIFETIME: Duration = Duration::from_secs(10);

/// A longer `expires_in` counts as this long (a huge one would overflow the clock).
const MAX_LIFETIME: Duration = Duration::from_secs(3600);

/// A longer `Retry-After` from the token endpoint counts as this long.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

/// How long a token with this `expires_in` is reused before a new one is fetched.
fn reuse_for(expires_in: u64) -> Duration {
    let lifetime = Duration::from_secs(expires_in).clamp(MIN_LIFETIME, MAX_LIFETIME);
    lifetime - RENEW_BEFORE.min(lifetime / 2)
}

#[derive(Serialize)]
struct Claims<'a> {
    aud: &'a str,
    iss: &'a str,
    scope: &'a str,
    iat: i64,
    exp: i64,
    jti: String,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    expires_in: u64,
}

/// An access token. Its `Debug` does not show it.
#[derive(Clone)]
pub struct AccessToken(String);

impl AccessToken {
    /// The bearer value.
    pub fn secret(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AccessToken(<redacted>)")
    }
}

/// Gets and caches Maskinporten tokens.
pub struct TokenSource {
    config: Maskinporten,
    key: EncodingKey,
    http: reqwest::Client,
    /// The token and when to renew it.
    cached: Mutex<Option<(AccessToken, Instant)>>,
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSource")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl TokenSource {
    /// Reads the signing key.
    pub fn new(config: Maskinporten, http: reqwest::Client) -> Result<Self, IngestError> {
        let err = |reason: String| IngestError::Token {
            token_url: config.token_url.clone(),
            reason,
            kind: ErrorKind::Fatal,
            retry_after: None,
        };
        let pem = std::fs::read(&config.key_file).map_err(|e| {
            err(format!(
                "reading key file {}: {e}",
                config.key_file.display()
            ))
        })?;
        let key = EncodingKey::from_rsa_pem(&pem).map_err(|e| {
            err(format!(
                "key file {} is not an RSA PEM key: {e}",
                config.key_file.display()
            ))
        })?;
        Ok(Self {
            config,
            key,
            http,
            cached: Mutex::new(None),
        })
    }

    /// A valid token: the cached one, or a new one. A failure to get one is `Retryable` when
    /// the endpoint may answer later (no connection, 429, 5xx, an unreadable answer) and `Fatal`
    /// when it refused the grant (other 4xx) or the assertion cannot be signed.
    pub async fn token(&self) -> Result<AccessToken, IngestError> {
        let mut cached = self.cached.lock().await;
        if let Some((token, renew_at)) = cached.as_ref()
            && Instant::now() < *renew_at
        {
            return Ok(token.clone());
        }
        let (token, expires_in) = self.request().await?;
        let reuse = reuse_for(expires_in);
        if !(MIN_LIFETIME.as_secs()..=MAX_LIFETIME.as_secs()).contains(&expires_in) {
            tracing::warn!(client_id = %self.config.client_id, expires_in_s = expires_in, reuse_s = reuse.as_secs(), "maskinporten token lifetime out of range, clamped");
        }
        let now = Instant::now();
        *cached = Some((token.clone(), now.checked_add(reuse).unwrap_or(now)));
        tracing::info!(client_id = %self.config.client_id, scope = %self.config.scope, expires_in_s = expires_in, "maskinporten token obtained");
        Ok(token)
    }

    /// One token request: the token and its `expires_in` as sent.
    async fn request(&self) -> Result<(AccessToken, u64), IngestError> {
        let c = &self.config;
        let fail =
            |kind: ErrorKind, reason: String, retry_after: Option<Duration>| IngestError::Token {
                token_url: c.token_url.clone(),
                reason,
                kind,
                retry_after,
            };
        let err = |reason: String| fail(ErrorKind::Fatal, reason, None);
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            aud: &c.audience,
            iss: &c.client_id,
            scope: &c.scope,
            iat: now,
            exp: now + 110,
            jti: format!("{:032x}", rand::random::<u128>()),
        };
        let mut header = Header::new(Algorithm::RS256);
        header.kid.clone_from(&c.key_id);
        let assertion = jsonwebtoken::encode(&header, &claims, &self.key)
            .map_err(|e| err(format!("signing the assertion: {e}")))?;
        let response = self
            .http
            .post(&c.token_url)
            .form(&[
                ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                ("assertion", assertion.as_str()),
            ])
            .send()
            .await
            .map_err(|e| {
                let kind = if e.is_builder() {
                    ErrorKind::Fatal
                } else {
                    ErrorKind::Retryable
                };
                fail(kind, e.without_url().to_string(), None)
            })?;
        let status = response.status();
        if !status.is_success() {
            let retry_after = response
                .headers()
                .get(header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(|s| Duration::from_secs(s).min(MAX_RETRY_AFTER));
            let kind = if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
                ErrorKind::Retryable
            } else {
                ErrorKind::Fatal
            };
            let body = response.text().await.unwrap_or_default();
            return Err(fail(
                kind,
                format!(
                    "HTTP {status}: {}",
                    body.chars().take(300).collect::<String>()
                ),
                retry_after,
            ));
        }
        let parsed: TokenResponse = response.json().await.map_err(|e| {
            fail(
                ErrorKind::Retryable,
                format!("unreadable token response: {}", e.without_url()),
                None,
            )
        })?;
        Ok((AccessToken(parsed.access_token), parsed.expires_in))
    }
}
