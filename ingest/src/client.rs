//! The population register's HTTP API, with retries.
//!
//! Transient failures (connection errors, 429, 5xx, cut-off or unreadable bodies, a 200 that is
//! not an answer, an extract batch not ready yet) are retried with jittered exponential backoff
//! that honours `Retry-After` (up to [`MAX_RETRY_AFTER`]); anything else is returned at once
//! with the URL and status. URLs in errors and logs never show credentials.

use std::sync::Arc;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use reqwest::{Method, StatusCode, header};
use serde::Deserialize;
use serde_json::json;
use tracing::warn;
use transform::freg::feed::{self, Lookup, LookupKey, Page};

use crate::IngestError;
use crate::config::Source;
use crate::maskinporten::TokenSource;

const SOURCE: &str = "freg";

/// The longest `Retry-After` honoured: a register asking for more is waited for this long.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

/// How long an extract batch that is not ready yet (404) is waited for.
const EXTRACT_WAIT: Duration = Duration::from_secs(3600);

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

/// A feed poll's answer.
#[derive(Debug)]
pub enum FeedPage {
    /// Nothing new since the given ETag.
    NotModified,
    /// Entries from the asked sequence number, and the page's ETag.
    Entries(Page, Option<String>),
}

/// A response's `Retry-After` in seconds, at most [`MAX_RETRY_AFTER`].
pub fn retry_after(headers: &header::HeaderMap) -> Option<Duration> {
    headers
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|s| Duration::from_secs(s).min(MAX_RETRY_AFTER))
}

/// One batch of an extract job: the persons it names, by whichever key the register gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExtractBatch {
    /// The document versions at the extract's sequence number (`bulkoppslag/arkiv`).
    Documents(Vec<String>),
    /// Identity numbers only (`bulkoppslag`, the latest versions).
    Persons(Vec<String>),
}

#[derive(Debug, Default, Deserialize)]
struct ExtractBody {
    #[serde(rename = "foedselsEllerDNummer", default)]
    ids: Option<Vec<String>>,
    #[serde(default)]
    dokumentidentifikator: Option<Vec<String>>,
    #[serde(default)]
    feilmelding: Option<serde_json::Value>,
    #[serde(flatten)]
    other: serde_json::Map<String, serde_json::Value>,
}

/// Reads an extract batch: `None` after the last (`{}`), an error for a batch that reports an
/// error or is not a batch at all. Where a batch carries both keys, the one that names every
/// person is used.
pub fn parse_extract_batch(body: &[u8]) -> Result<Option<ExtractBatch>, String> {
    // Only `{}` ends the extract: a batch that names its keys but no person is not an end.
    let raw: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(body).map_err(|e| e.to_string())?;
    if raw.is_empty() {
        return Ok(None);
    }
    let b: ExtractBody =
        serde_json::from_value(serde_json::Value::Object(raw)).map_err(|e| e.to_string())?;
    if let Some(error) = b.feilmelding.filter(|e| !e.is_null()) {
        let shown: String = error.to_string().chars().take(300).collect();
        return Err(format!(
            "the register reports an error for this batch: {shown}"
        ));
    }
    let ids = b.ids.unwrap_or_default();
    let docs = b.dokumentidentifikator.unwrap_or_default();
    if !docs.is_empty() && docs.len() >= ids.len() {
        return Ok(Some(ExtractBatch::Documents(docs)));
    }
    if !ids.is_empty() {
        return Ok(Some(ExtractBatch::Persons(ids)));
    }
    let keys: Vec<&String> = b.other.keys().take(5).collect();
    Err(format!(
        "not an extract batch: it names no person (no foedselsEllerDNummer or dokumentidentifikator; other keys {keys:?}); only {{}} ends an extract"
    ))
}

/// The register client.
#[derive(Debug, Clone)]
pub struct FregClient {
    http: reqwest::Client,
    base: String,
    /// `base` without credentials, for errors and logs.
    shown: String,
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
            source.rights_package_path.trim_end_matches('/')
        );
        Ok(Self {
            http,
            shown: redact(&base),
            base,
            max_tries: source.max_tries,
            tokens,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn shown(&self, path: &str) -> String {
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
                source_name: SOURCE,
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
    async fn call<T>(
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

    fn backoff(&self) -> ExponentialBuilder {
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
    async fn call_with<T>(
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
                    tracing::debug!(source = SOURCE, url = %shown, wait_ms = wait.as_millis() as u64, "not ready, waiting");
                } else {
                    crate::metrics::register(SOURCE).retried(&a.error.cause());
                    warn!(source = SOURCE, url = %shown, wait_ms = wait.as_millis() as u64, error = %a.error, "request failed, backing off");
                }
            })
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
        let url = self.shown("/v1/hendelser/siste/sekvensnummer");
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
        let url = self.shown(&path);
        let result = self
            .call(Method::GET, &path, None, etag, |status, headers, b| {
                if status == StatusCode::NOT_MODIFIED {
                    return Ok(FeedPage::NotModified);
                }
                let page = feed::parse_page(b, seq)
                    .map_err(|e| Self::unreadable(url.clone(), e.to_string()))?;
                let etag = headers
                    .get(header::ETAG)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                Ok(FeedPage::Entries(page, etag))
            })
            .await;
        match result {
            Err(IngestError::Request {
                status: Some(406),
                reason,
                ..
            }) => Err(IngestError::Expired {
                source_name: SOURCE,
                sequence: seq,
                reason: format!(
                    "the lake must be seeded again from the bulk extract (worker.reseed_on_expiry does it in place; {reason})"
                ),
            }),
            other => other,
        }
    }

    async fn lookups(
        &self,
        path: &str,
        body: serde_json::Value,
        asked: &[String],
        key: LookupKey,
    ) -> Result<Vec<Lookup>, IngestError> {
        let url = self.shown(path);
        self.call(Method::POST, path, Some(body), None, |_, _, b| {
            feed::parse_lookups(b, asked, key)
                .map_err(|e| Self::unreadable(url.clone(), e.to_string()))
        })
        .await
    }

    /// The exact document versions (`bulkoppslag/arkiv`), at most 1000 per call. The answer
    /// accounts for every document asked for, or the call fails.
    pub async fn archive(&self, document_ids: &[String]) -> Result<Vec<Lookup>, IngestError> {
        self.lookups(
            "/v1/personer/bulkoppslag/arkiv",
            json!({ "dokumentidentifikator": document_ids }),
            document_ids,
            LookupKey::Document,
        )
        .await
    }

    /// The latest documents of persons (`bulkoppslag`), at most 1000 per call. The answer
    /// accounts for every person asked for, or the call fails.
    pub async fn persons(&self, ids: &[String]) -> Result<Vec<Lookup>, IngestError> {
        self.lookups(
            "/v1/personer/bulkoppslag",
            json!({ "foedselsEllerDNummer": ids }),
            ids,
            LookupKey::Person,
        )
        .await
    }

    /// Lookups by whichever key an extract batch or a feed entry gave.
    pub async fn lookup(
        &self,
        keys: &[String],
        key: LookupKey,
    ) -> Result<Vec<Lookup>, IngestError> {
        match key {
            LookupKey::Document => self.archive(keys).await,
            LookupKey::Person => self.persons(keys).await,
        }
    }

    /// Starts a complete extract at a feed sequence number; returns the job id.
    pub async fn extract(&self, seq: i64) -> Result<String, IngestError> {
        let path = format!("/v1/uttrekk/komplett?feedsekvensnr={seq}");
        let url = self.shown(&path);
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
    /// waited for, up to an hour, under the same retry policy as every other failure of this
    /// request.
    pub async fn extract_batch(
        &self,
        job: &str,
        n: u64,
    ) -> Result<Option<ExtractBatch>, IngestError> {
        let path = format!("/v1/uttrekk/{job}/batch/{n}");
        let url = self.shown(&path);
        let backoff = self.backoff().with_total_delay(Some(EXTRACT_WAIT));
        self.call_with(
            Method::GET,
            &path,
            None,
            None,
            backoff,
            &[404],
            |_, _, b| {
                parse_extract_batch(b).map_err(|reason| Self::unreadable(url.clone(), reason))
            },
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_never_show_in_a_url() {
        let shown = redact("https://user:s3cret@register.example/api/v1/feed?seq=1");
        assert!(
            !shown.contains("s3cret") && !shown.contains("user"),
            "{shown}"
        );
        assert_eq!(redact("http://127.0.0.1:8088/x"), "http://127.0.0.1:8088/x");
    }

    #[test]
    fn a_huge_retry_after_is_capped() {
        let mut headers = header::HeaderMap::new();
        headers.insert(header::RETRY_AFTER, "99999999999".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(MAX_RETRY_AFTER));
        headers.insert(header::RETRY_AFTER, "3".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(3)));
        headers.insert(header::RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(retry_after(&headers), None);
    }

    #[test]
    fn extract_batches_by_either_key_and_errors_are_errors() {
        let docs = parse_extract_batch(
            br#"{"foedselsEllerDNummer": ["a"], "dokumentidentifikator": ["d"]}"#,
        );
        assert_eq!(docs, Ok(Some(ExtractBatch::Documents(vec!["d".into()]))));
        let ids = parse_extract_batch(br#"{"foedselsEllerDNummer": ["a", "b"]}"#);
        assert_eq!(
            ids,
            Ok(Some(ExtractBatch::Persons(vec!["a".into(), "b".into()])))
        );
        assert_eq!(parse_extract_batch(b"{}"), Ok(None));
        let failed = parse_extract_batch(br#"{"feilmelding": "intern feil"}"#).unwrap_err();
        assert!(failed.contains("intern feil"), "{failed}");
        let maintenance = parse_extract_batch(br#"{"melding": "vedlikehold"}"#).unwrap_err();
        assert!(
            maintenance.contains("not an extract batch"),
            "{maintenance}"
        );
        assert!(parse_extract_batch(b"[1]").is_err());
        // A batch that names no person in the middle of an extract is not its end.
        for empty in [
            &br#"{"foedselsEllerDNummer": []}"#[..],
            br#"{"foedselsEllerDNummer": null}"#,
            br#"{"feilmelding": null}"#,
        ] {
            assert!(parse_extract_batch(empty).is_err(), "{empty:?}");
        }
    }
}
