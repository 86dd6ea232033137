//! A register's HTTP API, with retries.
//!
//! Transient failures (connection errors, 429, 5xx, cut-off or unreadable bodies, a 200 that is
//! not an answer) are retried with jittered exponential backoff that honours `Retry-After` (up
//! to [`MAX_RETRY_AFTER`]); anything else is returned at once with the URL and status. URLs in
//! errors and logs never show credentials.

use std::sync::Arc;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use reqwest::{Method, StatusCode, header};
use tracing::warn;

use crate::IngestError;
use crate::config::Source;
use crate::maskinporten::TokenSource;

/// The longest `Retry-After` honoured: a register asking for more is waited for this long.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

/// A URL as it may be shown: without user name and password.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if !u.username().is_empty() || u.password().is_some() => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.to_string()
        }
        Ok(_) => url.to_owned(),
        Err(_) => "<unparseable URL>".to_owned(),
    }
}

/// A failed attempt, with what the retry policy needs.
#[derive(Debug)]
struct Attempt {
    error: IngestError,
    retry_after: Option<Duration>,
}

/// A response's `Retry-After` in seconds, at most [`MAX_RETRY_AFTER`].
pub fn retry_after(headers: &header::HeaderMap) -> Option<Duration> {
    headers
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|s| Duration::from_secs(s).min(MAX_RETRY_AFTER))
}

/// A register's HTTP API: requests with retries, errors naming the register and the URL.
#[derive(Debug, Clone)]
pub struct Http {
    http: reqwest::Client,
    source_name: &'static str,
    base: String,
    /// `base` without credentials, for errors and logs.
    shown: String,
    max_tries: usize,
    tokens: Option<Arc<TokenSource>>,
}

impl Http {
    /// A client for a source's `base_url` + `path`, with its timeout, tries and token grant.
    pub fn new(
        source_name: &'static str,
        source: &Source,
        path: &str,
    ) -> Result<Self, IngestError> {
        let http = reqwest::Client::builder()
            .timeout(source.request_timeout)
            .user_agent(concat!("regsync/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| IngestError::Request {
                source_name,
                method: "-",
                url: redact(&source.base_url),
                status: None,
                reason: e.to_string(),
            })?;
        let tokens = match &source.maskinporten {
            Some(m) => Some(Arc::new(TokenSource::new(m.clone(), http.clone())?)),
            None => None,
        };
        let base = format!(
            "{}{}",
            source.base_url.trim_end_matches('/'),
            path.trim_end_matches('/')
        );
        Ok(Self {
            http,
            source_name,
            shown: redact(&base),
            base,
            max_tries: source.max_tries,
            tokens,
        })
    }

    /// The HTTP client, for a request the retry policy does not fit (a streamed download).
    pub fn client(&self) -> &reqwest::Client {
        &self.http
    }

    /// The URL of a path under the base.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The URL of a path as it may be shown (no credentials).
    pub fn shown(&self, path: &str) -> String {
        format!("{}{path}", self.shown)
    }

    /// One attempt: send, read the whole body, classify the failure.
    async fn attempt(
        &self,
        method: &Method,
        (url, shown): (&str, &str),
        body: Option<&serde_json::Value>,
        etag: Option<&str>,
    ) -> Result<(StatusCode, header::HeaderMap, Vec<u8>), Attempt> {
        let fail = |status: Option<u16>, reason: String, retry_after| Attempt {
            error: IngestError::Request {
                source_name: self.source_name,
                method: if *method == Method::GET {
                    "GET"
                } else {
                    "POST"
                },
                url: shown.to_owned(),
                status,
                reason,
            },
            retry_after,
        };
        let mut req = self
            .http
            .request(method.clone(), url)
            .header(header::ACCEPT, "application/json");
        if let Some(tokens) = &self.tokens {
            let token = tokens.token().await.map_err(|error| Attempt {
                retry_after: error.retry_after(),
                error,
            })?;
            req = req.bearer_auth(token.secret());
        }
        if let Some(body) = body {
            req = req.json(body);
        }
        if let Some(etag) = etag {
            req = req.header(header::IF_NONE_MATCH, etag);
        }
        let response = req
            .send()
            .await
            .map_err(|e| fail(None, e.without_url().to_string(), None))?;
        let status = response.status();
        let headers = response.headers().clone();
        let retry_after = retry_after(&headers);
        let bytes = response.bytes().await.map_err(|e| {
            fail(
                Some(status.as_u16()),
                format!("reading body: {}", e.without_url()),
                None,
            )
        })?;
        if status.is_success() || status == StatusCode::NOT_MODIFIED {
            return Ok((status, headers, bytes.to_vec()));
        }
        let text: String = String::from_utf8_lossy(&bytes).chars().take(300).collect();
        Err(fail(
            Some(status.as_u16()),
            format!("HTTP {status}: {text}"),
            retry_after,
        ))
    }

    /// Sends with retries; `parse` turning a body into a value may itself fail transiently (a
    /// cut-off body, a 200 that is not an answer), and is retried the same way.
    pub async fn call<T>(
        &self,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
        etag: Option<&str>,
        parse: impl Fn(StatusCode, &header::HeaderMap, &[u8]) -> Result<T, IngestError>,
    ) -> Result<T, IngestError> {
        self.call_with(method, path, body, etag, self.backoff(), &[], parse)
            .await
    }

    /// The retry policy's backoff.
    pub fn backoff(&self) -> ExponentialBuilder {
        ExponentialBuilder::default()
            .without_max_times()
            .with_jitter()
            .with_min_delay(Duration::from_millis(100))
            .with_max_delay(Duration::from_secs(20))
    }

    /// [`Self::call`] with its own backoff; `also_retry` are statuses this request waits out
    /// besides the transient failures (an extract batch's 404 "not ready yet"), for as long as
    /// the backoff allows. Transient failures are tried `max_tries` times in all.
    #[allow(clippy::too_many_arguments)]
    pub async fn call_with<T>(
        &self,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
        etag: Option<&str>,
        backoff: ExponentialBuilder,
        also_retry: &[u16],
        parse: impl Fn(StatusCode, &header::HeaderMap, &[u8]) -> Result<T, IngestError>,
    ) -> Result<T, IngestError> {
        let (url, shown) = (self.url(path), self.shown(path));
        let op = || async {
            let (status, headers, bytes) = self
                .attempt(&method, (&url, &shown), body.as_ref(), etag)
                .await?;
            parse(status, &headers, &bytes).map_err(|error| Attempt {
                error,
                retry_after: None,
            })
        };
        let failures = std::sync::atomic::AtomicUsize::new(0);
        let retryable = |a: &Attempt| {
            if matches!(a.error, IngestError::Request { status: Some(s), .. } if also_retry.contains(&s))
            {
                return true;
            }
            let failed = failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            a.error.kind() == transform::ErrorKind::Retryable && failed < self.max_tries
        };
        op.retry(backoff)
            .when(retryable)
            .adjust(|a: &Attempt, wait| wait.map(|w| a.retry_after.map_or(w, |r| r.max(w))))
            .notify(|a: &Attempt, wait| {
                let waited_out = matches!(a.error, IngestError::Request { status: Some(s), .. } if also_retry.contains(&s));
                if waited_out {
                    // Expected (an extract batch not ready yet): not a warning.
                    tracing::debug!(source = self.source_name, url = %shown, wait_ms = wait.as_millis() as u64, "not ready, waiting");
                } else {
                    crate::metrics::register(self.source_name).retried(&a.error.cause());
                    warn!(source = self.source_name, url = %shown, wait_ms = wait.as_millis() as u64, error = %a.error, "request failed, backing off");
                }
            })
            .await
            .map_err(|a| a.error)
    }

    /// A response that is not the answer asked for.
    pub fn unreadable(&self, url: String, reason: String) -> IngestError {
        IngestError::Response {
            source_name: self.source_name,
            url,
            reason,
        }
    }
}
