//! The business register's open API (Enhetsregisteret, no authentication): the two updates
//! lists, units by organisation number, and the gzipped bulk download, over [`Http`].

use std::collections::HashMap;

use chrono::{DateTime, SecondsFormat, Utc};
use reqwest::Method;
use serde_json::Value;
use transform::brreg::plan::Fetched;
use transform::brreg::{UnitKind, UpdatesPage, read_updates};

use crate::IngestError;
use crate::config::Source;
use crate::http::Http;
use crate::stream::Download;

pub(crate) const SOURCE: &str = "brreg";

/// The API's path when the pipeline does not give one.
pub const DEFAULT_API_PATH: &str = "/enhetsregisteret/api";

/// The bulk file's media type: a gzipped JSON array of every unit.
const GZIP_JSON: &str = "application/vnd.brreg.enhetsregisteret.enhet.v2+gzip;charset=UTF-8";

/// Organisation numbers per request for units by list (`?organisasjonsnummer=a,b,...`).
pub const UNITS_PER_REQUEST: usize = 100;

/// Where an updates list is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum From {
    /// After this `oppdateringsid`.
    After(i64),
    /// From this time (`dato`): the first read after a seed.
    Since(DateTime<Utc>),
}

/// The register client.
#[derive(Debug, Clone)]
pub struct BrregClient {
    http: Http,
    /// The longest pause between two chunks of a download.
    idle_timeout: std::time::Duration,
}

impl BrregClient {
    /// A client for the source's base URL and API path.
    pub fn new(source: &Source) -> Result<Self, IngestError> {
        let path = source.api_path.as_deref().unwrap_or(DEFAULT_API_PATH);
        Ok(Self {
            http: Http::new(SOURCE, source, path)?,
            idle_timeout: source.request_timeout,
        })
    }

    /// The API's base URL as it may be shown.
    pub fn shown(&self) -> String {
        self.http.shown("")
    }

    /// A page of an updates list, in id order.
    pub async fn updates(
        &self,
        kind: UnitKind,
        from: From,
        size: usize,
    ) -> Result<UpdatesPage, IngestError> {
        let at = match from {
            From::After(id) => format!("oppdateringsid={}", id + 1),
            From::Since(t) => format!("dato={}", t.to_rfc3339_opts(SecondsFormat::Millis, true)),
        };
        let path = format!(
            "/oppdateringer/{}?{at}&size={size}&page=0&sort=id,ASC",
            kind.path()
        );
        let url = self.http.shown(&path);
        self.http
            .call(Method::GET, &path, None, None, |_, _, b| {
                read_updates(b, kind).map_err(|e| self.http.unreadable(url.clone(), e.to_string()))
            })
            .await
    }

    /// The current documents of units, by organisation number, as a document or as gone (410);
    /// a number the register does not know (404) is left out.
    pub async fn units(
        &self,
        kind: UnitKind,
        numbers: &[String],
    ) -> Result<HashMap<String, Fetched>, IngestError> {
        let mut out = HashMap::with_capacity(numbers.len());
        for chunk in numbers.chunks(UNITS_PER_REQUEST) {
            let path = format!(
                "/{}?organisasjonsnummer={}&size={}",
                kind.path(),
                chunk.join(","),
                chunk.len()
            );
            let url = self.http.shown(&path);
            let list = kind.path();
            let found: Vec<Value> = self
                .http
                .call(Method::GET, &path, None, None, |_, _, b| {
                    units_page(b, list).map_err(|reason| self.http.unreadable(url.clone(), reason))
                })
                .await?;
            for doc in found {
                if let Some(n) = doc.get("organisasjonsnummer").and_then(Value::as_str)
                    && chunk.iter().any(|c| c == n)
                {
                    out.insert(n.to_owned(), Fetched::Document(doc));
                }
            }
            // The search leaves out units it does not serve: asked one by one, they are
            // gone (410) or unknown (404).
            let missing: Vec<&String> = chunk.iter().filter(|n| !out.contains_key(*n)).collect();
            for number in missing {
                if let Some(fetched) = self.unit(kind, number).await? {
                    out.insert(number.clone(), fetched);
                }
            }
        }
        Ok(out)
    }

    /// One unit's current document (a deleted unit's has fewer attributes), gone (410: removed
    /// from the open data, copies delete it), or `None` when the register does not know the
    /// number (404: the update is dead-lettered, the unit's state left as it was; a 404 may be
    /// a gateway's or a unit not published yet, never a reason to delete).
    pub async fn unit(&self, kind: UnitKind, number: &str) -> Result<Option<Fetched>, IngestError> {
        let path = format!("/{}/{number}", kind.path());
        let url = self.http.shown(&path);
        let result = self
            .http
            .call(Method::GET, &path, None, None, |_, _, b| {
                unit_document(b).map_err(|reason| self.http.unreadable(url.clone(), reason))
            })
            .await;
        match result {
            Ok(doc) => Ok(Some(Fetched::Document(doc))),
            Err(IngestError::Request {
                status: Some(410), ..
            }) => Ok(Some(Fetched::Gone)),
            Err(IngestError::Request {
                status: Some(404), ..
            }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Starts the bulk download of a list (`/enheter/lastned`), gzipped, as it arrives.
    pub async fn download(&self, kind: UnitKind) -> Result<Download, IngestError> {
        let path = format!("/{}/lastned", kind.path());
        crate::stream::get(
            self.http.client(),
            SOURCE,
            &self.http.url(&path),
            GZIP_JSON,
            self.idle_timeout,
        )
        .await
    }
}

/// A single unit's answer: an object naming its organisation number (an error object in a
/// 200, or anything else, is unreadable and retried).
fn unit_document(body: &[u8]) -> Result<Value, String> {
    let doc: Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    if doc
        .get("organisasjonsnummer")
        .and_then(Value::as_str)
        .is_none()
    {
        let shown: String = doc.to_string().chars().take(200).collect();
        return Err(format!("not a unit (no organisasjonsnummer): {shown}"));
    }
    Ok(doc)
}

/// The units of a search answer (`_embedded.<list>`); none when it has no `_embedded`.
fn units_page(body: &[u8], list: &str) -> Result<Vec<Value>, String> {
    let page: Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let Some(object) = page.as_object() else {
        return Err("not a JSON object".into());
    };
    match object.get("_embedded") {
        None if object.contains_key("page") || object.contains_key("_links") => Ok(Vec::new()),
        None => Err(format!(
            "neither _embedded nor page in the answer (keys: {})",
            object.keys().cloned().collect::<Vec<_>>().join(", ")
        )),
        Some(embedded) => match embedded.get(list) {
            Some(Value::Array(units)) => Ok(units.clone()),
            _ => Err(format!("_embedded has no array {list}")),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_single_unit_answer_must_name_its_number() {
        assert!(unit_document(br#"{"organisasjonsnummer": "910000012", "navn": "X"}"#).is_ok());
        assert!(unit_document(br#"{"status": 503, "error": "Service Unavailable"}"#).is_err());
        assert!(unit_document(b"[]").is_err());
    }

    #[test]
    fn a_search_answer_without_units_is_empty_and_an_error_object_is_an_error() {
        assert_eq!(
            units_page(br#"{"page": {"totalElements": 0}}"#, "enheter"),
            Ok(vec![])
        );
        assert!(units_page(br#"{"status": 500, "error": "x"}"#, "enheter").is_err());
        assert!(units_page(br#"{"_embedded": {"underenheter": []}}"#, "enheter").is_err());
        let one = units_page(
            br#"{"_embedded": {"enheter": [{"organisasjonsnummer": "910000012"}]}}"#,
            "enheter",
        )
        .unwrap();
        assert_eq!(one.len(), 1);
    }
}
