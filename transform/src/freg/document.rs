//! A person document (`Folkeregisterperson`) to the canonical [`Person`].
//!
//! Every element is an array of versions with `erGjeldende` marking the current one; `doedsfall`
//! and `falskIdentitet` may be an object or an array. Unknown fields are ignored and unknown
//! enum values kept. Grading values come in two spellings (`strengtFortrolig`,
//! `STRENGT_FORTROLIG`) and are compared without case and underscores.

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value;

use crate::TransformError;
use crate::ident;
use crate::model::{Address, Person};
use schemas::tables::protection;

/// The versions of an element: an array, or a single object (as `doedsfall` may be).
pub(crate) fn versions<'a>(doc: &'a Value, element: &str) -> Vec<&'a Value> {
    match doc.get(element) {
        Some(Value::Array(items)) => items.iter().filter(|v| v.is_object()).collect(),
        Some(v @ Value::Object(_)) => vec![v],
        _ => Vec::new(),
    }
}

/// The current version of an element: the one with `erGjeldende: true`, else the only one
/// that does not say `erGjeldende: false`.
pub(crate) fn current<'a>(doc: &'a Value, element: &str) -> Option<&'a Value> {
    let all = versions(doc, element);
    all.iter()
        .find(|v| v.get("erGjeldende").and_then(Value::as_bool) == Some(true))
        .or_else(|| all.iter().find(|v| v.get("erGjeldende").is_none()))
        .copied()
}

/// A string field; numbers are accepted as text (registers are not consistent).
pub(crate) fn text(v: &Value, field: &str) -> Option<String> {
    match v.get(field)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

pub(crate) fn date(v: &Value, field: &str) -> Option<NaiveDate> {
    let s = text(v, field)?;
    NaiveDate::parse_from_str(s.get(..10)?, "%Y-%m-%d").ok()
}

pub(crate) fn timestamp(v: &Value, field: &str) -> Option<DateTime<Utc>> {
    let s = text(v, field)?;
    DateTime::parse_from_rfc3339(&s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// `strengtFortrolig`, `STRENGT_FORTROLIG` -> `strengt_fortrolig`; unknown values kept as given.
pub fn protection_level(raw: &str) -> String {
    let folded: String = raw
        .chars()
        .filter(|c| *c != '_')
        .collect::<String>()
        .to_lowercase();
    match folded.as_str() {
        "ugradert" => protection::UNGRADED.to_owned(),
        "klientadresse" => protection::CLIENT_ADDRESS.to_owned(),
        "fortrolig" => protection::CONFIDENTIAL.to_owned(),
        "strengtfortrolig" => protection::STRICTLY_CONFIDENTIAL.to_owned(),
        _ => raw.to_owned(),
    }
}

/// The flattened residence address of one `bostedsadresse` version.
pub(crate) fn residence(entry: &Value) -> Address {
    let postal = |a: &Value| {
        let nested = a.get("poststed");
        let code = nested
            .and_then(|p| text(p, "postnummer"))
            .or_else(|| text(a, "postnummer"));
        let place = nested
            .and_then(|p| text(p, "poststedsnavn"))
            .or_else(|| text(a, "poststedsnavn"));
        (code, place)
    };
    let mut out = Address {
        moved_in_date: date(entry, "flyttedato"),
        ..Address::default()
    };
    if let Some(a) = entry.get("vegadresse").filter(|a| a.is_object()) {
        let number = a.get("adressenummer");
        out.municipality_number = text(a, "kommunenummer");
        out.street_name = text(a, "adressenavn");
        out.house_number = number
            .and_then(|n| text(n, "husnummer"))
            .or_else(|| text(a, "husnummer"));
        out.house_letter = number
            .and_then(|n| text(n, "husbokstav"))
            .or_else(|| text(a, "husbokstav"));
        (out.postal_code, out.postal_place) = postal(a);
    } else if let Some(a) = entry.get("matrikkeladresse").filter(|a| a.is_object()) {
        out.municipality_number = a
            .get("matrikkelnummer")
            .and_then(|m| text(m, "kommunenummer"))
            .or_else(|| text(a, "kommunenummer"));
        out.street_name = text(a, "adressetilleggsnavn");
        (out.postal_code, out.postal_place) = postal(a);
    } else if let Some(a) = entry.get("ukjentBosted").filter(|a| a.is_object()) {
        out.municipality_number = text(a, "bostedskommune");
    }
    out
}

/// The identity number in use: the current `identifikasjonsnummer`, else the one asked for.
fn identity(doc: &Value, requested: Option<&str>) -> Result<(String, String), TransformError> {
    let entry = current(doc, "identifikasjonsnummer");
    let id = entry
        .and_then(|e| text(e, "foedselsEllerDNummer"))
        .or_else(|| requested.map(str::to_owned))
        .ok_or(TransformError::MissingField {
            person_id: String::new(),
            field: "identifikasjonsnummer",
        })?;
    let kind = ident::validate(&id)?;
    let id_type = entry
        .and_then(|e| text(e, "identifikatortype"))
        .unwrap_or_else(|| kind.as_register_str().to_owned());
    Ok((id, id_type))
}

/// The related person with the given role (`mor`, `far`, `medmor`, ...).
fn relative(doc: &Value, role: &str) -> Option<String> {
    versions(doc, "familierelasjon")
        .into_iter()
        .filter(|r| r.get("erGjeldende").and_then(Value::as_bool) != Some(false))
        .find(|r| text(r, "relatertPersonsRolle").as_deref() == Some(role))
        .and_then(|r| text(r, "relatertPerson"))
}

/// Normalises a person document. `requested` is the id it was fetched by, used where the
/// document does not name its own.
pub fn normalise(doc: &Value, requested: Option<&str>) -> Result<Person, TransformError> {
    if !doc.is_object() {
        return Err(TransformError::Malformed {
            what: "person document",
            reason: "not a JSON object".into(),
        });
    }
    let (person_id, id_type) = identity(doc, requested)?;
    let birth = current(doc, "foedsel");
    let birth_date = birth.and_then(|b| date(b, "foedselsdato"));
    let birth_year = birth_date
        .map(|d| chrono::Datelike::year(&d))
        .or_else(|| {
            birth
                .and_then(|b| text(b, "foedselsaar"))
                .and_then(|y| y.parse().ok())
        })
        .unwrap_or(0);
    let name = current(doc, "navn");
    let protection = current(doc, "adressebeskyttelse")
        .and_then(|p| text(p, "graderingsnivaa"))
        .map(|g| protection_level(&g))
        .unwrap_or_else(|| protection::UNGRADED.to_owned());
    let address = if withholds_address(&protection) {
        Address::default()
    } else {
        current(doc, "bostedsadresse")
            .map(residence)
            .unwrap_or_default()
    };
    let spouse = current(doc, "sivilstand")
        .and_then(|s| text(s, "relatertVedSivilstand"))
        .or_else(|| relative(doc, "ektefelleEllerPartner"));
    let emigrated = current(doc, "utflytting").filter(|_| {
        current(doc, "status")
            .and_then(|s| text(s, "status"))
            .as_deref()
            == Some("utflyttet")
    });
    Ok(Person {
        person_id,
        id_type,
        birth_date,
        birth_year,
        sex: current(doc, "kjoenn")
            .and_then(|k| text(k, "kjoenn"))
            .map(|s| s.to_lowercase()),
        given_name: name.and_then(|n| text(n, "fornavn")),
        middle_name: name.and_then(|n| text(n, "mellomnavn")),
        family_name: name.and_then(|n| text(n, "etternavn")),
        status: current(doc, "status").and_then(|s| text(s, "status")),
        address,
        address_protection: protection,
        death_date: current(doc, "doedsfall").and_then(|d| date(d, "doedsdato")),
        citizenship: current(doc, "statsborgerskap").and_then(|s| text(s, "statsborgerskap")),
        marital_status: current(doc, "sivilstand").and_then(|s| text(s, "sivilstand")),
        spouse_id: spouse,
        mother_id: relative(doc, "mor"),
        father_id: relative(doc, "far"),
        co_mother_id: relative(doc, "medmor"),
        emigrated_to: emigrated.and_then(|u| text(u, "tilflyttingsland")),
        immigrated_from: current(doc, "innflytting").and_then(|i| text(i, "fraflyttingsland")),
    })
}

/// Whether a protection level withholds every address and the municipality. Unknown levels are
/// treated as the strictest: an address is never kept on a guess.
pub fn withholds_address(level: &str) -> bool {
    !matches!(
        level,
        protection::UNGRADED | protection::CLIENT_ADDRESS | protection::CONFIDENTIAL
    )
}

/// Parses raw JSON bytes and normalises them.
pub fn normalise_bytes(raw: &[u8], requested: Option<&str>) -> Result<Person, TransformError> {
    let doc: Value = serde_json::from_slice(raw).map_err(|e| TransformError::Malformed {
        what: "person document",
        reason: e.to_string(),
    })?;
    normalise(&doc, requested)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grading_spellings_fold() {
        assert_eq!(protection_level("STRENGT_FORTROLIG"), "strengt_fortrolig");
        assert_eq!(protection_level("strengtFortrolig"), "strengt_fortrolig");
        assert_eq!(protection_level("UGRADERT"), "ugradert");
        assert_eq!(protection_level("hemmelig"), "hemmelig");
        assert!(withholds_address("hemmelig"));
        assert!(!withholds_address("fortrolig"));
    }

    #[test]
    fn not_an_object_is_malformed() {
        assert!(normalise(&serde_json::json!([1, 2]), None).is_err());
        assert!(normalise_bytes(b"{\"navn\": [", None).is_err());
    }

    proptest::proptest! {
        #[test]
        fn never_panics_on_arbitrary_bytes(raw in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            let _ = normalise_bytes(&raw, Some("03851598730"));
        }
    }
}
