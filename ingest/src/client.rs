//! The population register's HTTP API, with retries.
//!
//! Transient failures (connection errors, 429, 5xx, cut-off or unreadable bodies, an extract
//! batch not ready yet) are retried with jittered exponential backoff that honours
//! `Retry-After`; anything else is returned at once with the URL and status.

use std::sync::Arc;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use reqwest::{Method, StatusCode, header};
use serde::Deserialize;
use serde_json::json;
use tracing::warn;
use transform::freg::feed::{self, FeedEntry, Lookup};

use crate::IngestError;
use crate::config::Source;
use crate::maskinporten::TokenSource;

const SOURCE: &str = "freg";

/// A failed attempt, with what the retry policy needs.
#[derive(Debug)]
struct Attempt {
    error: IngestError,
    retry_after: Option<Duration>,
}

/// A feed poll's answer.
#[derive(Debug)]
pub enum FeedPage {
    /// Nothing new since the given ETag.
    NotModified,
    /// Entries from the asked sequence number, and the page's ETag.
    Entries(Vec<FeedEntry>, Option<String>),
}

/// One batch of an extract job.
#[derive(Debug, Default, Deserialize)]
pub struct ExtractBatch {
    /// Identity numbers.
    #[serde(rename = "foedselsEllerDNummer", default)]
    pub ids: Vec<String>,
    /// The document versions at the extract's sequence number.
    #[serde(default)]
    pub dokumentidentifikator: Vec<String>,
}

/// The register client.
#[derive(Debug, Clone)]
pub struct FregClient {
    http: reqwest::Client,
    base: String,
    max_tries: usize,
    tokens: Option<Arc<TokenSource>>,
}

impl FregClient {
    /// A client for a source.
    pub fn new(source: &Source) -> Result<Self, IngestError> {
        let http = reqwest::Client::builder()
            .timeout(source.request_timeout)
            .user_agent(concat!("regsync/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| IngestError::Request {
                source_name: SOURCE,
                method: "-",
                url: source.base_url.clone(),
                status: None,
                reason: e.to_string(),
            })?;
        let tokens = match &source.maskinporten {
            Some(m) => Some(Arc::new(TokenSource::new(m.clone(), http.clone())?)),
            None => None,
        };
        Ok(Self {
            http,
            base: format!(
                "{}{}",
                source.base_url.trim_end_matches('/'),
                source.rights_package_path.trim_end_matches('/')
            ),
            max_tries: source.max_tries,
            tokens,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// One attempt: send, read the whole body, classify the failure.
    async fn attempt(
        &self,
        method: &Method,
        url: &str,
        body: Option<&serde_json::Value>,
        etag: Option<&str>,
    ) -> Result<(StatusCode, header::HeaderMap, Vec<u8>), Attempt> {
        let fail = |status: Option<u16>, reason: String, retry_after| Attempt {
            error: IngestError::Request {
                source_name: SOURCE,
                method: if *method == Method::GET {
                    "GET"
                } else {
                    "POST"
                },
                url: url.to_owned(),
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
                error,
                retry_after: None,
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
        let retry_after = headers
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
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
    /// cut-off body), and is retried the same way.
    async fn call<T>(
        &self,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
        etag: Option<&str>,
        parse: impl Fn(StatusCode, &header::HeaderMap, &[u8]) -> Result<T, IngestError>,
    ) -> Result<T, IngestError> {
        let url = self.url(path);
        let backoff = ExponentialBuilder::default()
            .with_jitter()
            .with_min_delay(Duration::from_millis(100))
            .with_max_delay(Duration::from_secs(20))
            .with_max_times(self.max_tries.saturating_sub(1));
        let op = || async {
            let (status, headers, bytes) = self.attempt(&method, &url, body.as_ref(), etag).await?;
            parse(status, &headers, &bytes).map_err(|error| Attempt {
                error,
                retry_after: None,
            })
        };
        op.retry(backoff)
            .when(|a: &Attempt| a.error.kind() == transform::ErrorKind::Retryable)
            .adjust(|a: &Attempt, wait| wait.map(|w| a.retry_after.map_or(w, |r| r.max(w))))
            .notify(|a: &Attempt, wait| warn!(source = SOURCE, url = %url, wait_ms = wait.as_millis() as u64, error = %a.error, "request failed, backing off"))
            .await
            .map_err(|a| a.error)
    }

    fn unreadable(url: String, reason: String) -> IngestError {
        IngestError::Response {
            source_name: SOURCE,
            url,
            reason,
        }
    }

    /// The latest feed sequence number.
    pub async fn head(&self) -> Result<i64, IngestError> {
        let url = self.url("/v1/hendelser/siste/sekvensnummer");
        self.call(
            Method::GET,
            "/v1/hendelser/siste/sekvensnummer",
            None,
            None,
            |_, _, b| {
                // A bare number, or `{"sekvensnummer": n}` as the schema also allows.
                let v: serde_json::Value = serde_json::from_slice(b)
                    .map_err(|e| Self::unreadable(url.clone(), e.to_string()))?;
                v.as_i64()
                    .or_else(|| v.get("sekvensnummer").and_then(serde_json::Value::as_i64))
                    .ok_or_else(|| {
                        Self::unreadable(url.clone(), format!("not a sequence number: {v}"))
                    })
            },
        )
        .await
    }

    /// A feed page from `seq` (inclusive).
    pub async fn feed(&self, seq: i64, etag: Option<&str>) -> Result<FeedPage, IngestError> {
        let path = format!("/v1/hendelser/feed?seq={seq}");
        let url = self.url(&path);
        let result = self
            .call(Method::GET, &path, None, etag, |status, headers, b| {
                if status == StatusCode::NOT_MODIFIED {
                    return Ok(FeedPage::NotModified);
                }
                let entries = feed::parse_page(b)
                    .map_err(|e| Self::unreadable(url.clone(), e.to_string()))?;
                let etag = headers
                    .get(header::ETAG)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                Ok(FeedPage::Entries(entries, etag))
            })
            .await;
        match result {
            Err(IngestError::Request { status: Some(406), .. }) => Err(IngestError::Feed {
                source_name: SOURCE,
                sequence: seq,
                reason: "the register no longer has this part of the feed (events are deleted after 36 months): the lake must be seeded again from the bulk extract into an empty location".into(),
            }),
            other => other,
        }
    }

    async fn lookups(
        &self,
        path: &str,
        body: serde_json::Value,
    ) -> Result<Vec<Lookup>, IngestError> {
        let url = self.url(path);
        self.call(Method::POST, path, Some(body), None, |_, _, b| {
            feed::parse_lookups(b).map_err(|e| Self::unreadable(url.clone(), e.to_string()))
        })
        .await
    }

    /// The exact document versions (`bulkoppslag/arkiv`), at most 1000 per call.
    pub async fn archive(&self, document_ids: &[String]) -> Result<Vec<Lookup>, IngestError> {
        self.lookups(
            "/v1/personer/bulkoppslag/arkiv",
            json!({ "dokumentidentifikator": document_ids }),
        )
        .await
    }

    /// The latest documents of persons (`bulkoppslag`), at most 1000 per call.
    pub async fn persons(&self, ids: &[String]) -> Result<Vec<Lookup>, IngestError> {
        self.lookups(
            "/v1/personer/bulkoppslag",
            json!({ "foedselsEllerDNummer": ids }),
        )
        .await
    }

    /// Starts a complete extract at a feed sequence number; returns the job id.
    pub async fn extract(&self, seq: i64) -> Result<String, IngestError> {
        let path = format!("/v1/uttrekk/komplett?feedsekvensnr={seq}");
        let url = self.url(&path);
        self.call(Method::GET, &path, None, None, |_, _, b| {
            let v: serde_json::Value = serde_json::from_slice(b)
                .map_err(|e| Self::unreadable(url.clone(), e.to_string()))?;
            v.get("jobbId")
                .and_then(|j| j.as_str())
                .map(str::to_owned)
                .ok_or_else(|| Self::unreadable(url.clone(), format!("no jobbId in {v}")))
        })
        .await
    }

    /// Batch `n` of an extract job; `None` after the last. A batch not ready yet (404) is
    /// waited for.
    pub async fn extract_batch(
        &self,
        job: &str,
        n: u64,
    ) -> Result<Option<ExtractBatch>, IngestError> {
        let path = format!("/v1/uttrekk/{job}/batch/{n}");
        let url = self.url(&path);
        let not_ready = |e: IngestError| match e {
            IngestError::Request {
                status: Some(404),
                source_name,
                method,
                url,
                reason,
            } => IngestError::Request {
                source_name,
                method,
                url,
                status: Some(503),
                reason: format!("extract batch not ready: {reason}"),
            },
            other => other,
        };
        let mut tries = 0;
        loop {
            let got = self
                .call(Method::GET, &path, None, None, |_, _, b| {
                    let batch: ExtractBatch = serde_json::from_slice(b)
                        .map_err(|e| Self::unreadable(url.clone(), e.to_string()))?;
                    Ok(
                        (!batch.ids.is_empty() || !batch.dokumentidentifikator.is_empty())
                            .then_some(batch),
                    )
                })
                .await
                .map_err(not_ready);
            match got {
                Err(e) if e.kind() == transform::ErrorKind::Retryable && tries < self.max_tries => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(250 * tries as u64)).await;
                }
                other => return other,
            }
        }
    }
}
