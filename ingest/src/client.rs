//! The population register's HTTP API (Folkeregisteret, a rights package's endpoints): its feed,
//! bulk lookups and extract jobs, over [`Http`] (retries, `Retry-After`, redacted URLs). An
//! extract batch not ready yet is waited for.

use std::time::Duration;

use reqwest::{Method, StatusCode, header};
use serde::Deserialize;
use serde_json::json;
use transform::freg::feed::{self, Lookup, LookupKey, Page};

use crate::IngestError;
use crate::config::Source;
use crate::http::Http;

const SOURCE: &str = "freg";

/// How long an extract batch that is not ready yet (404) is waited for.
const EXTRACT_WAIT: Duration = Duration::from_secs(3600);

/// A feed poll's answer.
#[derive(Debug)]
pub enum FeedPage {
    /// Nothing new since the given ETag.
    NotModified,
    /// Entries from the asked sequence number, and the page's ETag.
    Entries(Page, Option<String>),
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
    http: Http,
}

impl FregClient {
    /// A client for a source: its base URL and rights package.
    pub fn new(source: &Source) -> Result<Self, IngestError> {
        let path = source.rights_package_path.as_deref().ok_or_else(|| IngestError::Config {
            path: "source.rights_package_path".into(),
            reason: "the population register needs its rights package's path (e.g. /folkeregisteret/offentlig-med-hjemmel/api)".into(),
        })?;
        Ok(Self {
            http: Http::new(SOURCE, source, path)?,
        })
    }

    /// The latest feed sequence number.
    pub async fn head(&self) -> Result<i64, IngestError> {
        let url = self.http.shown("/v1/hendelser/siste/sekvensnummer");
        self.http
            .call(
                Method::GET,
                "/v1/hendelser/siste/sekvensnummer",
                None,
                None,
                |_, _, b| {
                    // A bare number, or `{"sekvensnummer": n}` as the schema also allows.
                    let v: serde_json::Value = serde_json::from_slice(b)
                        .map_err(|e| self.http.unreadable(url.clone(), e.to_string()))?;
                    v.as_i64()
                        .or_else(|| v.get("sekvensnummer").and_then(serde_json::Value::as_i64))
                        .ok_or_else(|| {
                            self.http
                                .unreadable(url.clone(), format!("not a sequence number: {v}"))
                        })
                },
            )
            .await
    }

    /// A feed page from `seq` (inclusive).
    pub async fn feed(&self, seq: i64, etag: Option<&str>) -> Result<FeedPage, IngestError> {
        let path = format!("/v1/hendelser/feed?seq={seq}");
        let url = self.http.shown(&path);
        let result = self
            .http
            .call(Method::GET, &path, None, etag, |status, headers, b| {
                if status == StatusCode::NOT_MODIFIED {
                    return Ok(FeedPage::NotModified);
                }
                let page = feed::parse_page(b, seq)
                    .map_err(|e| self.http.unreadable(url.clone(), e.to_string()))?;
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
        let url = self.http.shown(path);
        self.http
            .call(Method::POST, path, Some(body), None, |_, _, b| {
                feed::parse_lookups(b, asked, key)
                    .map_err(|e| self.http.unreadable(url.clone(), e.to_string()))
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
        let url = self.http.shown(&path);
        self.http
            .call(Method::GET, &path, None, None, |_, _, b| {
                let v: serde_json::Value = serde_json::from_slice(b)
                    .map_err(|e| self.http.unreadable(url.clone(), e.to_string()))?;
                v.get("jobbId")
                    .and_then(|j| j.as_str())
                    .map(str::to_owned)
                    .ok_or_else(|| {
                        self.http
                            .unreadable(url.clone(), format!("no jobbId in {v}"))
                    })
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
        let url = self.http.shown(&path);
        let backoff = self.http.backoff().with_total_delay(Some(EXTRACT_WAIT));
        self.http
            .call_with(
                Method::GET,
                &path,
                None,
                None,
                backoff,
                &[404],
                |_, _, b| {
                    parse_extract_batch(b)
                        .map_err(|reason| self.http.unreadable(url.clone(), reason))
                },
            )
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::{MAX_RETRY_AFTER, redact, retry_after};
    use reqwest::header;
    use std::time::Duration;

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
