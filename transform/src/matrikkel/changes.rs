//! A page of the property register's change log (`findEndringer`, as its JSON mirror) and the
//! objects it returns (bubbles), read into typed changes, addresses and cadastral units. Pure.
//!
//! The page's cursor is `sisteEndringIdProsessert`: with a `kommunefilter` the register passes
//! over changes it leaves out, so the cursor can be beyond the last change returned, and change
//! ids have gaps (one sequence across all domain classes). A page without the cursor, or a SOAP
//! fault in a 200, is an error, never an empty page. An entry without a usable id is
//! [`Unplaced`]; an entry whose object id or change type cannot be read is rejected with the
//! reason, in its place.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde_json::Value;

use super::addresses::Address;
use crate::TransformError;
use crate::fields::{code, integer, text, timestamp};

/// What a change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeType {
    /// `Nyoppretting`.
    Created,
    /// `Oppdatering`.
    Updated,
    /// `Sletting`.
    Deleted,
}

impl ChangeType {
    /// As the log names it.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Created => "Nyoppretting",
            Self::Updated => "Oppdatering",
            Self::Deleted => "Sletting",
        }
    }

    fn parse(name: &str) -> Option<Self> {
        match name {
            "Nyoppretting" => Some(Self::Created),
            "Oppdatering" => Some(Self::Updated),
            "Sletting" => Some(Self::Deleted),
            _ => None,
        }
    }
}

/// The kinds of object regsync keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ObjectKind {
    /// `Vegadresse` or `Matrikkeladresse`.
    Address,
    /// `Matrikkelenhet`.
    CadastralUnit,
    /// Any other domain class: logged, not kept.
    Other,
}

impl ObjectKind {
    /// The kind of a domain class.
    pub fn of(class: &str) -> Self {
        match class {
            "Vegadresse" | "Matrikkeladresse" => Self::Address,
            "Matrikkelenhet" => Self::CadastralUnit,
            _ => Self::Other,
        }
    }
}

/// The domain classes regsync asks for.
pub const CLASSES: &[&str] = &["Vegadresse", "Matrikkeladresse", "Matrikkelenhet"];

/// One entry of the log.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// Its id.
    pub id: i64,
    /// What it did (`None` when rejected for it).
    pub change: Option<ChangeType>,
    /// `endringstype` as given.
    pub change_name: String,
    /// `domainklasse`.
    pub class: String,
    /// `endretBubbleId`, as text.
    pub object_id: String,
    /// `endringstidspunkt`.
    pub at: Option<DateTime<Utc>>,
    /// Why it cannot be applied, if so.
    pub rejected: Option<String>,
}

impl Change {
    /// The kind of object it changed.
    pub fn kind(&self) -> ObjectKind {
        ObjectKind::of(&self.class)
    }
}

/// An entry without a usable id: it cannot be placed in the log.
#[derive(Debug, Clone, PartialEq)]
pub struct Unplaced {
    /// Where it was in the page (`endringList[3]`).
    pub place: String,
    /// Its object id, if readable.
    pub object_id: Option<String>,
    /// Why.
    pub reason: String,
}

/// One page of the log.
#[derive(Debug, Clone, Default)]
pub struct ChangePage {
    /// The placed entries, in page order.
    pub changes: Vec<Change>,
    /// Entries without a usable id.
    pub unplaced: Vec<Unplaced>,
    /// The returned objects by kind and id.
    pub bubbles: HashMap<(ObjectKind, String), Value>,
    /// `alleEndringerFunnet`: the log was read to its end.
    pub all_found: bool,
    /// `sisteEndringIdProsessert`: the next cursor.
    pub last_processed: i64,
}

fn malformed(reason: String) -> TransformError {
    TransformError::Malformed {
        what: "matrikkel change log page",
        reason,
    }
}

/// An id that may come as a number or as text.
fn id_text(v: &Value, field: &str) -> Option<String> {
    text(v, field).filter(|s| s.bytes().all(|b| b.is_ascii_digit()))
}

/// Reads a page of `findEndringer`.
pub fn read_changes(body: &[u8]) -> Result<ChangePage, TransformError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| malformed(e.to_string()))?;
    let Some(object) = value.as_object() else {
        return Err(malformed("the answer is not an object".into()));
    };
    if let Some(fault) = object.get("faultstring") {
        return Err(malformed(format!("a fault in a 200 answer: {fault}")));
    }
    let last_processed = integer(&value, "sisteEndringIdProsessert").ok_or_else(|| {
        let keys: Vec<&String> = object.keys().take(6).collect();
        malformed(format!(
            "no sisteEndringIdProsessert (the answer has {keys:?}): not a page of the change log"
        ))
    })?;
    let all_found = value
        .get("alleEndringerFunnet")
        .and_then(Value::as_bool)
        .ok_or_else(|| malformed("no alleEndringerFunnet".into()))?;
    let entries = match value.get("endringList") {
        None | Some(Value::Null) => &[][..],
        Some(Value::Array(a)) => a.as_slice(),
        Some(other) => return Err(malformed(format!("endringList is not a list: {other}"))),
    };
    let mut page = ChangePage {
        all_found,
        last_processed,
        ..ChangePage::default()
    };
    for (i, entry) in entries.iter().enumerate() {
        let object_id = id_text(entry, "endretBubbleId");
        let Some(id) = integer(entry, "id").filter(|id| *id > 0) else {
            page.unplaced.push(Unplaced {
                place: format!("endringList[{i}]"),
                object_id,
                reason: format!("an entry without a usable id: {}", short(entry)),
            });
            continue;
        };
        let change_name = text(entry, "endringstype").unwrap_or_default();
        let change = ChangeType::parse(&change_name);
        let class = text(entry, "domainklasse").unwrap_or_default();
        let rejected = if object_id.is_none() {
            Some(format!("change {id} has no usable endretBubbleId"))
        } else if change.is_none() {
            Some(format!("change {id} has endringstype {change_name:?}"))
        } else {
            None
        };
        page.changes.push(Change {
            id,
            change,
            change_name,
            class,
            object_id: object_id.unwrap_or_default(),
            at: timestamp(entry, "endringstidspunkt"),
            rejected,
        });
    }
    if let Some(Value::Array(bubbles)) = value.get("bobler") {
        for b in bubbles {
            let class = text(b, "domainklasse").unwrap_or_default();
            if let Some(id) = id_text(b, "id") {
                page.bubbles.insert((ObjectKind::of(&class), id), b.clone());
            }
        }
    }
    Ok(page)
}

/// A value, shortened for an error message.
fn short(v: &Value) -> String {
    let s = v.to_string();
    s.chars().take(120).collect()
}

fn bad_object(what: &'static str, reason: String) -> TransformError {
    TransformError::Malformed { what, reason }
}

/// A local time as the register writes it (`yyyy-MM-ddTHH:mm:ss`, fractions allowed).
fn local_time(v: &Value, field: &str) -> Result<Option<NaiveDateTime>, String> {
    let Some(s) = text(v, field) else {
        return Ok(None);
    };
    NaiveDateTime::parse_from_str(&s, "%Y-%m-%dT%H:%M:%S%.f")
        .map(Some)
        .map_err(|_| format!("{field} {s:?} is not yyyy-MM-ddTHH:mm:ss"))
}

/// A kommunenummer: four digits (a lost leading zero restored).
fn kommune(v: &Value) -> Result<String, String> {
    code(v, "kommunenummer", 4)
        .filter(|k| k.len() == 4 && k.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| {
            format!(
                "kommunenummer {} is not four digits",
                v.get("kommunenummer").unwrap_or(&Value::Null)
            )
        })
}

/// An address bubble (`Vegadresse`, `Matrikkeladresse`), checked to be `id`.
pub fn read_address_bubble(v: &Value, id: &str) -> Result<Address, TransformError> {
    let bad = |reason: String| bad_object("matrikkel address", format!("address {id}: {reason}"));
    let got = id_text(v, "id").unwrap_or_default();
    if got != id {
        return Err(bad(format!("the register answered with object {got:?}")));
    }
    let point = v.get("representasjonspunkt").unwrap_or(&Value::Null);
    let coordinate = |field: &str| -> Result<Option<f64>, TransformError> {
        match point.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => Ok(n.as_f64()),
            Some(other) => Err(bad(format!("{field} {other} is not a coordinate"))),
        }
    };
    Ok(Address {
        address_id: id.to_owned(),
        local_id: text(v, "lokalId"),
        municipality_number: kommune(v).map_err(bad)?,
        municipality_name: text(v, "kommunenavn"),
        address_type: text(v, "adressetype"),
        street_code: integer(v, "adressekode"),
        street_name: text(v, "adressenavn"),
        house_number: text(v, "nummer"),
        house_letter: text(v, "bokstav"),
        gnr: integer(v, "gardsnummer"),
        bnr: integer(v, "bruksnummer"),
        fnr: integer(v, "festenummer"),
        snr: integer(v, "undernummer"),
        address_text: text(v, "adresseTekst"),
        postal_code: code(v, "postnummer", 4),
        postal_place: text(v, "poststed"),
        epsg: integer(point, "epsg"),
        north: coordinate("nord")?,
        east: coordinate("øst")?,
        updated_local: local_time(v, "oppdateringsdato").map_err(bad)?,
    })
}

/// A cadastral unit (matrikkelenhet), as the register gives it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CadastralUnit {
    /// Its id.
    pub unit_id: String,
    /// `kommunenummer`.
    pub municipality_number: String,
    /// `matrikkelnummer.gardsnummer`.
    pub gnr: Option<i64>,
    /// `bruksnummer`.
    pub bnr: Option<i64>,
    /// `festenummer`.
    pub fnr: Option<i64>,
    /// `seksjonsnummer`.
    pub snr: Option<i64>,
    /// `matrikkelenhetstype` (Grunneiendom, Festegrunn, Eierseksjon, ...).
    pub unit_type: Option<String>,
    /// `bruksnavn`.
    pub farm_name: Option<String>,
    /// `historiskOppgittAreal`, m².
    pub area: Option<f64>,
    /// `etableringsdato`.
    pub established_date: Option<NaiveDate>,
    /// `tinglyst`.
    pub registered_in_land_register: Option<bool>,
    /// `oppdateringsdato`, local time.
    pub updated_local: Option<NaiveDateTime>,
}

/// A cadastral unit bubble, checked to be `id`.
pub fn read_unit_bubble(v: &Value, id: &str) -> Result<CadastralUnit, TransformError> {
    let bad = |reason: String| {
        bad_object(
            "matrikkel cadastral unit",
            format!("cadastral unit {id}: {reason}"),
        )
    };
    let got = id_text(v, "id").unwrap_or_default();
    if got != id {
        return Err(bad(format!("the register answered with object {got:?}")));
    }
    let number = v.get("matrikkelnummer").unwrap_or(&Value::Null);
    let gnr = integer(number, "gardsnummer");
    let bnr = integer(number, "bruksnummer");
    if gnr.is_none() || bnr.is_none() {
        return Err(bad(
            "no matrikkelnummer with gardsnummer and bruksnummer".into()
        ));
    }
    let established_date = match text(v, "etableringsdato") {
        None => None,
        Some(s) => Some(
            s.get(..10)
                .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
                .ok_or_else(|| bad(format!("etableringsdato {s:?} is not a date")))?,
        ),
    };
    Ok(CadastralUnit {
        unit_id: id.to_owned(),
        municipality_number: kommune(v).map_err(bad)?,
        gnr,
        bnr,
        fnr: integer(number, "festenummer"),
        snr: integer(number, "seksjonsnummer"),
        unit_type: text(v, "matrikkelenhetstype"),
        farm_name: text(v, "bruksnavn"),
        area: v.get("historiskOppgittAreal").and_then(Value::as_f64),
        established_date,
        registered_in_land_register: v.get("tinglyst").and_then(Value::as_bool),
        updated_local: local_time(v, "oppdateringsdato").map_err(bad)?,
    })
}

/// A page of the initial load of cadastral units: the units (or why each could not be read,
/// with its id if known), and the last id the page covers (`sisteId`; none: the end).
pub type UnitsPage = (
    Vec<Result<CadastralUnit, (Option<String>, TransformError)>>,
    Option<u64>,
);

/// Reads a page of the cadastral units' initial load.
pub fn read_units_page(body: &[u8]) -> Result<UnitsPage, TransformError> {
    let what = "matrikkel cadastral unit download";
    let value: Value = serde_json::from_slice(body).map_err(|e| bad_object(what, e.to_string()))?;
    if let Some(fault) = value.get("faultstring") {
        return Err(bad_object(
            what,
            format!("a fault in a 200 answer: {fault}"),
        ));
    }
    let Some(Value::Array(bubbles)) = value.get("bobler") else {
        return Err(bad_object(
            what,
            format!("no bobler list in {}", short(&value)),
        ));
    };
    let last = match value.get("sisteId") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .ok_or_else(|| bad_object(what, format!("sisteId {v} is not an id")))?,
        ),
    };
    let units = bubbles
        .iter()
        .map(|b| match id_text(b, "id") {
            Some(id) => read_unit_bubble(b, &id).map_err(|e| (Some(id), e)),
            None => Err((
                None,
                bad_object(what, format!("a unit without an id: {}", short(b))),
            )),
        })
        .collect();
    Ok((units, last))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_without_its_cursor_or_with_a_fault_is_an_error_and_odd_entries_are_kept_apart() {
        assert!(read_changes(br#"{"melding":"Tjenesten er under vedlikehold"}"#).is_err());
        assert!(read_changes(br#"{"faultcode":"soap:Server","faultstring":"x","sisteEndringIdProsessert":1,"alleEndringerFunnet":true}"#).is_err());
        assert!(read_changes(b"[]").is_err());
        let page = read_changes(
            br#"{"endringList":[
                {"id":11,"endringstype":"Oppdatering","domainklasse":"Vegadresse","endretBubbleId":5,"endringstidspunkt":"2026-01-01T10:00:00.000Z"},
                {"endringstype":"Sletting","domainklasse":"Vegadresse","endretBubbleId":6},
                {"id":"14","endringstype":"Flytting","domainklasse":"Matrikkelenhet","endretBubbleId":"7"},
                {"id":15,"endringstype":"Sletting","domainklasse":"Bygning"}
            ],"bobler":[{"id":5,"domainklasse":"Vegadresse"}],
            "alleEndringerFunnet":false,"sisteEndringIdProsessert":20}"#,
        )
        .unwrap();
        assert_eq!(page.last_processed, 20);
        assert!(!page.all_found);
        assert_eq!(page.changes.len(), 3);
        assert_eq!(page.unplaced.len(), 1);
        assert_eq!(page.unplaced[0].object_id.as_deref(), Some("6"));
        assert!(page.changes[0].rejected.is_none());
        assert_eq!(page.changes[0].kind(), ObjectKind::Address);
        assert!(
            page.changes[1]
                .rejected
                .as_deref()
                .unwrap()
                .contains("Flytting")
        );
        assert!(
            page.changes[2]
                .rejected
                .as_deref()
                .unwrap()
                .contains("endretBubbleId")
        );
        assert!(
            page.bubbles
                .contains_key(&(ObjectKind::Address, "5".into()))
        );
    }

    #[test]
    fn bubbles_read_into_the_canonical_model_and_must_be_the_object_asked_for() {
        let v: Value = serde_json::from_str(
            r#"{"id":101,"domainklasse":"Vegadresse","kommunenummer":301,"adressekode":1234,
            "adressenavn":"Torget","nummer":4,"bokstav":"B","gardsnummer":1,"bruksnummer":2,
            "postnummer":150,"poststed":"OSLO","representasjonspunkt":{"epsg":4258,"nord":59.9,"øst":10.7},
            "oppdateringsdato":"2026-01-01T10:00:00"}"#,
        )
        .unwrap();
        let a = read_address_bubble(&v, "101").unwrap();
        assert_eq!(a.municipality_number, "0301");
        assert_eq!(a.postal_code.as_deref(), Some("0150"));
        assert_eq!(a.house_number.as_deref(), Some("4"));
        assert_eq!(a.north, Some(59.9));
        assert!(read_address_bubble(&v, "102").is_err());
        let mut bad = v.clone();
        bad["kommunenummer"] = Value::from("Oslo");
        assert!(
            read_address_bubble(&bad, "101")
                .unwrap_err()
                .to_string()
                .contains("kommunenummer")
        );
        let u: Value = serde_json::from_str(
            r#"{"id":9,"kommunenummer":"5035","matrikkelnummer":{"gardsnummer":3,"bruksnummer":4},
            "matrikkelenhetstype":"Grunneiendom","etableringsdato":"1999-02-03","historiskOppgittAreal":812.5}"#,
        )
        .unwrap();
        let unit = read_unit_bubble(&u, "9").unwrap();
        assert_eq!(
            (unit.gnr, unit.bnr, unit.area),
            (Some(3), Some(4), Some(812.5))
        );
        let (units, last) = read_units_page(
            br#"{"bobler":[{"id":9,"kommunenummer":"5035","matrikkelnummer":{}}],"sisteId":9}"#,
        )
        .unwrap();
        assert_eq!(last, Some(9));
        assert_eq!(units[0].as_ref().unwrap_err().0.as_deref(), Some("9"));
    }
}
