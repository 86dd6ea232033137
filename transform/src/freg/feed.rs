//! Feed entries and lookup envelopes, as the register's OpenAPI names them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::TransformError;

/// One entry of `GET /v1/hendelser/feed`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeedEntry {
    /// Strictly increasing position in the feed.
    pub sekvensnummer: i64,
    /// The event.
    pub hendelse: Event,
}

/// The event of a feed entry (note: the feed spells `hendelsetype`, event documents
/// `hendelsestype`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// The person's identity number.
    pub folkeregisteridentifikator: String,
    /// Event type; the list is open.
    pub hendelsetype: String,
    /// The event document's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hendelsesdokument: Option<String>,
    /// The id of the person document version the event produced (omitted by some packages).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persondokument: Option<String>,
    /// When the register recorded the event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ajourholdstidspunkt: Option<DateTime<Utc>>,
}

/// Parses a feed page. A page that is not a JSON array of entries is malformed as a whole.
pub fn parse_page(body: &[u8]) -> Result<Vec<FeedEntry>, TransformError> {
    serde_json::from_slice(body).map_err(|e| TransformError::Malformed {
        what: "feed page",
        reason: e.to_string(),
    })
}

/// One answer of `POST /v1/personer/bulkoppslag` (and, in regsync's reading, of
/// `bulkoppslag/arkiv`, which carries `dokumentidentifikator` as well).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Lookup {
    /// The identity number asked for.
    #[serde(rename = "foedselsEllerDNummer", default)]
    pub id: Option<String>,
    /// The document version asked for (archive lookups).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dokumentidentifikator: Option<String>,
    /// The document, kept raw so that a bad one can be dead-lettered as it came.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub folkeregisterperson: Option<Box<serde_json::value::RawValue>>,
    /// Why the person could not be returned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feilmelding: Option<serde_json::Value>,
}

/// The bulk-lookup envelope `{"oppslag": [...]}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LookupResponse {
    /// The answers.
    #[serde(default)]
    pub oppslag: Vec<Lookup>,
}

/// Parses a bulk-lookup response.
pub fn parse_lookups(body: &[u8]) -> Result<Vec<Lookup>, TransformError> {
    serde_json::from_slice::<LookupResponse>(body)
        .map(|r| r.oppslag)
        .map_err(|e| TransformError::Malformed {
            what: "bulk lookup response",
            reason: e.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_example_page() {
        let page = parse_page(include_bytes!("../../tests/fixtures/freg/feed-page.json")).unwrap();
        assert_eq!(page.len(), 3);
        assert_eq!(page[0].sekvensnummer, 1);
        assert_eq!(page[0].hendelse.hendelsetype, "endringIIdentitetsgrunnlag");
        assert!(page[2].hendelse.persondokument.is_none());
    }

    #[test]
    fn a_cut_off_page_is_malformed() {
        let err = parse_page(br#"[{"sekvensnummer": 1, "hendelse": {"#).unwrap_err();
        assert!(err.to_string().contains("feed page"), "{err}");
    }
}
