//! Maskinporten: the OAuth2 JWT-bearer grant the real register requires, with the token reused
//! until shortly before it expires. Neither the key nor the token is ever logged.

use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use crate::IngestError;
use crate::config::Maskinporten;

/// A token is renewed this long before it expires.
const RENEW_BEFORE: Duration = Duration::from_secs(30);

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

    /// A valid token: the cached one, or a new one.
    pub async fn token(&self) -> Result<AccessToken, IngestError> {
        let mut cached = self.cached.lock().await;
        if let Some((token, valid_until)) = cached.as_ref()
            && Instant::now() + RENEW_BEFORE < *valid_until
        {
            return Ok(token.clone());
        }
        let (token, lifetime) = self.request().await?;
        *cached = Some((token.clone(), Instant::now() + lifetime));
        tracing::info!(client_id = %self.config.client_id, scope = %self.config.scope, expires_in_s = lifetime.as_secs(), "maskinporten token obtained");
        Ok(token)
    }

    async fn request(&self) -> Result<(AccessToken, Duration), IngestError> {
        let c = &self.config;
        let err = |reason: String| IngestError::Token {
            token_url: c.token_url.clone(),
            reason,
        };
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
            .map_err(|e| err(e.without_url().to_string()))?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            return Err(err(format!(
                "HTTP {status}: {}",
                body.chars().take(300).collect::<String>()
            )));
        }
        let parsed: TokenResponse = response
            .json()
            .await
            .map_err(|e| err(format!("unreadable token response: {}", e.without_url())))?;
        Ok((
            AccessToken(parsed.access_token),
            Duration::from_secs(parsed.expires_in),
        ))
    }
}
