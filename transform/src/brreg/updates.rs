//! A page of the business register's updates list (`GET /oppdateringer/enheter` or
//! `/oppdateringer/underenheter`, HAL): each update's id (`oppdateringsid`, one sequence per
//! list), time, organisation number and kind of change.
//!
//! No `_embedded` means nothing changed. An update without a usable id cannot be placed in the
//! list and is returned apart; an update with an id but an invalid organisation number takes
//! its place and is dead-lettered, so the list's position moves past it. A body that is not a
//! page (an error object in a 200) is an error, never an empty page.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::unit::UnitKind;
use crate::TransformError;
use crate::fields::{integer, text, timestamp};
use crate::orgnr;

/// What an update says happened to a unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeType {
    /// `Ny`: registered.
    New,
    /// `Endring`: changed.
    Changed,
    /// `Sletting`: deleted in the register (the unit may still be read, with `slettedato`).
    Deleted,
    /// `Fjernet`: removed from the open data; copies must delete it too.
    Removed,
    /// `Ukjent`, or a value this version does not know (kept as given): the unit is read again.
    Other(String),
}

impl ChangeType {
    fn parse(raw: &str) -> Self {
        match raw {
            "Ny" => Self::New,
            "Endring" => Self::Changed,
            "Sletting" => Self::Deleted,
            "Fjernet" => Self::Removed,
            other => Self::Other(other.to_owned()),
        }
    }

    /// The register's word.
    pub fn as_str(&self) -> &str {
        match self {
            Self::New => "Ny",
            Self::Changed => "Endring",
            Self::Deleted => "Sletting",
            Self::Removed => "Fjernet",
            Self::Other(s) => s,
        }
    }
}

/// One update.
#[derive(Debug, Clone, PartialEq)]
pub struct Update {
    /// `oppdateringsid`.
    pub id: i64,
    /// `dato`.
    pub at: Option<DateTime<Utc>>,
    /// `organisasjonsnummer`.
    pub organization_number: String,
    /// `endringstype`.
    pub change: ChangeType,
    /// Why the update cannot be applied (an invalid organisation number), if so.
    pub rejected: Option<String>,
}

/// An update that cannot be placed in the list (no usable id).
#[derive(Debug, Clone, PartialEq)]
pub struct Unplaced {
    /// Where in the page (`_embedded.oppdaterteEnheter[3]`).
    pub place: String,
    /// The organisation number, if it had one.
    pub organization_number: Option<String>,
    /// Why.
    pub reason: String,
}

/// A page of updates.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UpdatesPage {
    /// Updates with an id, in the page's order.
    pub updates: Vec<Update>,
    /// Updates without a usable id.
    pub unplaced: Vec<Unplaced>,
    /// `page.totalPages`, when given.
    pub total_pages: Option<i64>,
}

/// The `_embedded` key of a list's updates.
pub fn embedded_key(kind: UnitKind) -> &'static str {
    match kind {
        UnitKind::Enhet => "oppdaterteEnheter",
        UnitKind::Underenhet => "oppdaterteUnderenheter",
    }
}

/// Reads a page of updates.
pub fn read_updates(body: &[u8], kind: UnitKind) -> Result<UpdatesPage, TransformError> {
    let malformed = |reason: String| TransformError::Malformed {
        what: "updates page",
        reason,
    };
    let page: Value = serde_json::from_slice(body).map_err(|e| malformed(e.to_string()))?;
    let Some(object) = page.as_object() else {
        return Err(malformed("not a JSON object".into()));
    };
    let key = embedded_key(kind);
    let total_pages = page
        .get("page")
        .and_then(|p| p.get("totalPages"))
        .and_then(Value::as_i64);
    let items = match object.get("_embedded") {
        None if object.contains_key("page") || object.contains_key("_links") => {
            return Ok(UpdatesPage {
                total_pages,
                ..UpdatesPage::default()
            });
        }
        None => {
            let keys: Vec<&str> = object.keys().map(String::as_str).collect();
            return Err(malformed(format!(
                "neither _embedded nor page in the answer (keys: {})",
                keys.join(", ")
            )));
        }
        Some(embedded) => match embedded.get(key) {
            Some(Value::Array(items)) => items,
            Some(_) => return Err(malformed(format!("_embedded.{key} is not an array"))),
            None => {
                return Err(malformed(format!(
                    "_embedded has no {key} (a list of the other kind of unit?)"
                )));
            }
        },
    };
    let mut out = UpdatesPage {
        total_pages,
        ..UpdatesPage::default()
    };
    for (i, item) in items.iter().enumerate() {
        let place = format!("_embedded.{key}[{i}]");
        let number = text(item, "organisasjonsnummer");
        let id = integer(item, "oppdateringsid");
        let Some(id) = id.filter(|id| *id > 0) else {
            out.unplaced.push(Unplaced {
                place,
                organization_number: number,
                reason: "no usable oppdateringsid".into(),
            });
            continue;
        };
        let change = ChangeType::parse(text(item, "endringstype").as_deref().unwrap_or("Ukjent"));
        let rejected = match &number {
            None => Some("no organisasjonsnummer".to_owned()),
            Some(n) => orgnr::validate(n).err().map(|e| e.to_string()),
        };
        out.updates.push(Update {
            id,
            at: timestamp(item, "dato"),
            organization_number: number.unwrap_or_default(),
            change,
            rejected,
        });
    }
    Ok(out)
}
