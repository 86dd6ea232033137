//! A unit document of the business register (`Enhet` or `Underenhet`) to the canonical
//! [`BusinessUnit`].
//!
//! Optional fields are optional in earnest: `antallAnsatte` is absent when
//! `harRegistrertAntallAnsatte` is false, an enhet has a `forretningsadresse` and an underenhet a
//! `beliggenhetsadresse` (either may be missing, then the `postadresse` is taken), and there is
//! no top-level kommunenummer. Unknown fields are ignored.

use chrono::NaiveDate;
use serde_json::Value;

use crate::TransformError;
use crate::fields::{code, date, integer, text};
use crate::orgnr;

/// Which of the register's two kinds of unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnitKind {
    /// `enheter`: legal units.
    Enhet,
    /// `underenheter`: places of business, each under an enhet.
    Underenhet,
}

impl UnitKind {
    /// The address a unit is found at, in order of preference.
    fn addresses(self) -> [&'static str; 2] {
        match self {
            Self::Enhet => ["forretningsadresse", "postadresse"],
            Self::Underenhet => ["beliggenhetsadresse", "postadresse"],
        }
    }

    /// The register's path segment and name (`enheter`, `underenheter`).
    pub fn path(self) -> &'static str {
        match self {
            Self::Enhet => "enheter",
            Self::Underenhet => "underenheter",
        }
    }
}

/// A unit's normalised state.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BusinessUnit {
    /// Organisation number (nine digits, valid check digit).
    pub organization_number: String,
    /// Name.
    pub name: Option<String>,
    /// Organisation form code (`AS`, `ENK`, `BEDR`, ...).
    pub organization_form: Option<String>,
    /// Main industry code (`naeringskode1.kode`, e.g. `71.112`).
    pub industry_code: Option<String>,
    /// Employees, when the register has them.
    pub employees: Option<i64>,
    /// The parent unit (`overordnetEnhet`).
    pub parent_organization_number: Option<String>,
    /// The address lines, joined by newlines.
    pub address_lines: Option<String>,
    /// Kommunenummer of the address.
    pub municipality_number: Option<String>,
    /// Postnummer of the address.
    pub postal_code: Option<String>,
    /// Poststed of the address.
    pub postal_place: Option<String>,
    /// `registreringsdatoEnhetsregisteret`.
    pub registered_date: Option<NaiveDate>,
    /// `stiftelsesdato` (enhet) or `oppstartsdato` (underenhet).
    pub started_date: Option<NaiveDate>,
    /// `nedleggelsesdato` (underenhet).
    pub closed_date: Option<NaiveDate>,
    /// `konkurs`.
    pub bankrupt: Option<bool>,
    /// `underAvvikling`.
    pub under_liquidation: Option<bool>,
    /// `slettedato`: deleted from the register.
    pub deleted_date: Option<NaiveDate>,
}

/// A boolean field; `"true"`/`"false"` as text are accepted.
fn flag(v: &Value, field: &str) -> Option<bool> {
    match v.get(field)? {
        Value::Bool(b) => Some(*b),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// The code of a coded element (`{"kode": ..., "beskrivelse": ...}`), or the element as text.
fn coded(v: &Value, field: &str) -> Option<String> {
    match v.get(field)? {
        o @ Value::Object(_) => text(o, "kode"),
        _ => text(v, field),
    }
}

/// Normalises one unit document. An invalid or missing organisation number is an error (the
/// record goes to `dead_letter`); every other field is optional.
pub fn normalise(doc: &Value, kind: UnitKind) -> Result<BusinessUnit, TransformError> {
    if !doc.is_object() {
        return Err(TransformError::Malformed {
            what: "unit document",
            reason: format!("expected a JSON object, got {}", kind_of(doc)),
        });
    }
    let number = text(doc, "organisasjonsnummer").ok_or_else(|| TransformError::Malformed {
        what: "unit document",
        reason: "no organisasjonsnummer".into(),
    })?;
    orgnr::validate(&number)?;
    let address = kind
        .addresses()
        .iter()
        .find_map(|a| doc.get(*a).filter(|v| v.is_object()));
    let lines = address
        .and_then(|a| a.get("adresse"))
        .and_then(Value::as_array)
        .map(|lines| {
            lines
                .iter()
                .filter_map(Value::as_str)
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>()
                .join("\n")
        })
        .filter(|l| !l.is_empty());
    let employees = integer(doc, "antallAnsatte");
    let started = match kind {
        UnitKind::Enhet => date(doc, "stiftelsesdato"),
        UnitKind::Underenhet => date(doc, "oppstartsdato"),
    };
    Ok(BusinessUnit {
        organization_number: number,
        name: text(doc, "navn"),
        organization_form: coded(doc, "organisasjonsform"),
        industry_code: coded(doc, "naeringskode1"),
        employees: employees.filter(|_| flag(doc, "harRegistrertAntallAnsatte") != Some(false)),
        parent_organization_number: text(doc, "overordnetEnhet"),
        address_lines: lines,
        municipality_number: address.and_then(|a| code(a, "kommunenummer", 4)),
        postal_code: address.and_then(|a| code(a, "postnummer", 4)),
        postal_place: address.and_then(|a| text(a, "poststed")),
        registered_date: date(doc, "registreringsdatoEnhetsregisteret"),
        started_date: started,
        closed_date: date(doc, "nedleggelsesdato"),
        bankrupt: flag(doc, "konkurs"),
        under_liquidation: flag(doc, "underAvvikling"),
        deleted_date: date(doc, "slettedato"),
    })
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
