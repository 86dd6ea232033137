//! The property register over HTTP, under [`MATRIKKEL_BASE`].
//!
//! The real register's change log is a SOAP service (`EndringsloggServiceWS.findEndringer`,
//! behind an agreement and a system user). The simulator serves a JSON mirror of it: the same
//! operations, parameters and answer fields, as JSON instead of SOAP/XML.
//! - `GET /endringer?id=&domainklasse=&kommunefilter=&returnerBobler=&maksAntall=`:
//!   `findEndringer`. `domainklasse` may list several classes (comma-separated) where the SOAP
//!   call takes one; `kommunefilter` is comma-separated kommunenumre. The answer has
//!   `endringList` (`id`, `endringstype`, `domainklasse`, `endretBubbleId`,
//!   `endringstidspunkt`), `bobler` (the changed objects' current state when
//!   `returnerBobler=Alltid`; a deleted object has none), `alleEndringerFunnet` and
//!   `sisteEndringIdProsessert`, the next `id`: with a filter it passes changes it left out.
//! - `GET /endringer/sisteEndringId`: `findSisteEndringId`.
//! - `GET /nedlastning/matrikkelenheter?etterId=&maksAntall=&kommunefilter=`: the initial load
//!   of cadastral units, `NedlastningService.findIdsEtterId` and `StoreService.getObjects` in
//!   one call: the units with ids after `etterId`, in id order, as bubbles.
//! - `GET /matrikkelenAdresse.csv`: the address file (today's column set, semicolon-separated,
//!   `dd.MM.yyyy HH:mm:ss` dates), plain where the real one comes zipped.
//!
//! Bubbles carry the address file's fields by its column names (the SOAP bubbles reference
//! `Veg`, `Kommune` and `Postnummeromrade` objects by id instead). Errors answer as a SOAP fault
//! would, as JSON: `{"faultcode", "faultstring"}`.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::kommuner;
use crate::matrikkel::{Address, CadastralUnit, Class, Registry, address_class};
use crate::server::Shared;

/// Where the property register's routes are.
pub const MATRIKKEL_BASE: &str = "/matrikkel/v1";

/// Where the address file is served (full path).
pub const ADDRESS_FILE: &str = "/matrikkel/v1/matrikkelenAdresse.csv";

/// The most changes or units one request answers.
pub const MAX_PAGE: usize = 10_000;

/// The file's header (today's column set, as far as the columns this file fills).
const HEADER: &str = "lokalId;kommunenummer;kommunenavn;adressetype;adressetilleggsnavn;adressetilleggsnavnKilde;adressekode;adressenavn;nummer;bokstav;gardsnummer;bruksnummer;festenummer;undernummer;adresseTekst;adresseTekstUtenAdressetilleggsnavn;EPSG-kode;Nord;Øst;postnummer;poststed;oppdateringsdato;datauttaksdato;adresseId;uuidAdresse";

/// The register's routes (their faults are added by the server).
pub fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/endringer", get(changes))
        .route("/endringer/sisteEndringId", get(head))
        .route("/nedlastning/matrikkelenheter", get(units))
}

/// The fault body: a SOAP fault as JSON.
pub fn fault(status: StatusCode, message: &str) -> Response {
    let code = if status.is_client_error() {
        "soap:Client"
    } else {
        "soap:Server"
    };
    (
        status,
        axum::Json(json!({ "faultcode": code, "faultstring": message })),
    )
        .into_response()
}

/// Norwegian local time as the register writes it (UTC+1; summer time is not modelled).
fn local(at: DateTime<Utc>) -> NaiveDateTime {
    let t = (at + Duration::hours(1)).naive_utc();
    t - Duration::nanoseconds(i64::from(t.and_utc().timestamp_subsec_nanos()))
}

/// The text fields of an address the file and the bubbles share.
struct Fields<'a> {
    kind: &'static str,
    code: String,
    street: &'a str,
    number: String,
    letter: String,
    text: String,
    kommune_name: String,
}

fn fields(a: &Address) -> Fields<'_> {
    let (kommune, street, number, letter) = &a.key;
    let letter = letter.map(String::from).unwrap_or_default();
    let kommune_name = kommuner::index_of(kommune)
        .map_or("", |i| kommuner::KOMMUNER[i].name)
        .to_uppercase();
    match street {
        Some(s) => Fields {
            kind: "vegadresse",
            code: a.street_code().map(|c| c.to_string()).unwrap_or_default(),
            street: s,
            number: number.to_string(),
            text: format!("{s} {number}{letter}"),
            letter,
            kommune_name,
        },
        None => Fields {
            kind: "matrikkeladresse",
            code: String::new(),
            street: "",
            number: String::new(),
            text: format!("{}/{}", a.gnr, a.bnr),
            letter,
            kommune_name,
        },
    }
}

/// One line of the address file.
fn line(a: &Address, taken: &str) -> String {
    let f = fields(a);
    let id = a.id;
    format!(
        "{id}-lokal;{};{};{};;;{};{};{};{};{};{};0;0;{};{};4258;{:.6};{:.6};{};{};{};{taken};{id};00000000-0000-4000-8000-{:012}",
        a.key.0,
        f.kommune_name,
        f.kind,
        f.code,
        f.street,
        f.number,
        f.letter,
        a.gnr,
        a.bnr,
        f.text,
        f.text,
        a.north,
        a.east,
        a.postcode,
        a.place,
        local(a.updated).format("%d.%m.%Y %H:%M:%S"),
        id % 1_000_000_000_000
    )
}

/// An address as a bubble.
fn address_bubble(a: &Address) -> Value {
    let f = fields(a);
    let number = |s: &str| s.parse::<i64>().ok();
    json!({
        "id": a.id,
        "domainklasse": address_class(a).as_str(),
        "lokalId": format!("{}-lokal", a.id),
        "kommunenummer": a.key.0,
        "kommunenavn": f.kommune_name,
        "adressetype": f.kind,
        "adressekode": number(&f.code),
        "adressenavn": Some(f.street).filter(|s| !s.is_empty()),
        "nummer": number(&f.number),
        "bokstav": Some(f.letter).filter(|s| !s.is_empty()),
        "gardsnummer": a.gnr,
        "bruksnummer": a.bnr,
        "festenummer": 0,
        "undernummer": 0,
        "adresseTekst": f.text,
        "postnummer": a.postcode,
        "poststed": a.place,
        "representasjonspunkt": { "epsg": 4258, "nord": a.north, "øst": a.east },
        "oppdateringsdato": local(a.updated).format("%Y-%m-%dT%H:%M:%S").to_string(),
    })
}

/// A cadastral unit as a bubble.
fn unit_bubble(u: &CadastralUnit) -> Value {
    json!({
        "id": u.id,
        "domainklasse": "Matrikkelenhet",
        "kommunenummer": u.kommune,
        "matrikkelnummer": {
            "gardsnummer": u.gnr, "bruksnummer": u.bnr, "festenummer": 0, "seksjonsnummer": 0
        },
        "matrikkelenhetstype": u.kind,
        "bruksnavn": u.name,
        "etableringsdato": u.established.to_string(),
        "historiskOppgittAreal": u.area,
        "tinglyst": true,
        "utgatt": u.removed,
        "oppdateringsdato": local(u.updated).format("%Y-%m-%dT%H:%M:%S").to_string(),
    })
}

/// `GET /matrikkel/v1/matrikkelenAdresse.csv`: every address that is not deleted.
pub async fn addresses(State(shared): State<Arc<Shared>>) -> Response {
    let taken = local(Utc::now()).format("%d.%m.%Y %H:%M:%S").to_string();
    let out = shared.property(|registry| {
        let mut live: Vec<&Address> = registry.addresses().filter(|a| !a.removed).collect();
        live.sort_unstable_by_key(|a| a.id);
        let mut out = String::with_capacity(live.len() * 200 + HEADER.len());
        out.push_str(HEADER);
        out.push('\n');
        for a in live {
            out.push_str(&line(a, &taken));
            out.push('\n');
        }
        out
    });
    ([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], out).into_response()
}

#[derive(Deserialize)]
struct ChangesQuery {
    id: Option<String>,
    domainklasse: Option<String>,
    kommunefilter: Option<String>,
    #[serde(rename = "returnerBobler")]
    returner_bobler: Option<String>,
    #[serde(rename = "maksAntall")]
    maks_antall: Option<String>,
}

/// A comma-separated list, each item trimmed, empty items left out.
fn list(text: Option<&str>) -> Vec<String> {
    text.unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// `maksAntall`, 1 to [`MAX_PAGE`], default 1000.
fn max_count(text: Option<&str>) -> Result<usize, String> {
    match text {
        None => Ok(1000),
        Some(t) => t
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_PAGE).contains(n))
            .ok_or_else(|| format!("maksAntall må være 1 til {MAX_PAGE}, ikke {t}")),
    }
}

/// `findEndringer`.
async fn changes(State(shared): State<Arc<Shared>>, Query(q): Query<ChangesQuery>) -> Response {
    let after = match q.id.as_deref().map_or(Ok(0), str::parse::<i64>) {
        Ok(id) => id,
        Err(_) => return fault(StatusCode::BAD_REQUEST, "id må være et tall"),
    };
    let mut classes = Vec::new();
    for name in list(q.domainklasse.as_deref()) {
        match Class::parse(&name) {
            Some(c) => classes.push(c),
            None => {
                return fault(
                    StatusCode::BAD_REQUEST,
                    &format!("ukjent domainklasse {name}"),
                );
            }
        }
    }
    if classes.is_empty() {
        return fault(StatusCode::BAD_REQUEST, "domainklasse mangler");
    }
    let max = match max_count(q.maks_antall.as_deref()) {
        Ok(n) => n,
        Err(e) => return fault(StatusCode::BAD_REQUEST, &e),
    };
    let kommuner = list(q.kommunefilter.as_deref());
    let bubbles = q
        .returner_bobler
        .as_deref()
        .is_some_and(|b| b.eq_ignore_ascii_case("Alltid"));
    if let Some(r) = shared.faults.maintenance() {
        return r;
    }
    let body = shared.property(|registry| {
        let page = registry.changes_after(after, &classes, &kommuner, max);
        let mut entries: Vec<Value> = page
            .changes
            .iter()
            .map(|c| {
                json!({
                    "id": c.id,
                    "endringstype": c.kind.as_str(),
                    "domainklasse": c.class.as_str(),
                    "endretBubbleId": c.object,
                    "endringstidspunkt": c.at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                })
            })
            .collect();
        if let Some(i) = shared.faults.repeat(entries.len()) {
            entries.insert(i + 1, entries[i].clone());
        }
        let mut objects = Vec::new();
        if bubbles {
            let mut seen = std::collections::HashSet::new();
            for c in &page.changes {
                if seen.insert((c.class, c.object)) {
                    objects.extend(bubble(registry, c.class, c.object));
                }
            }
        }
        json!({
            "endringList": entries,
            "bobler": objects,
            "alleEndringerFunnet": page.all_found,
            "sisteEndringIdProsessert": page.last_examined,
        })
    });
    axum::Json(body).into_response()
}

/// An object's current state, if it is not deleted.
fn bubble(registry: &Registry, class: Class, id: u64) -> Option<Value> {
    match class {
        Class::Matrikkelenhet => registry.unit(id).filter(|u| !u.removed).map(unit_bubble),
        _ => registry
            .address(id)
            .filter(|a| !a.removed)
            .map(address_bubble),
    }
}

/// `findSisteEndringId`.
async fn head(State(shared): State<Arc<Shared>>) -> Response {
    let head = shared.property(Registry::head);
    axum::Json(json!({ "sisteEndringId": head })).into_response()
}

#[derive(Deserialize)]
struct UnitsQuery {
    #[serde(rename = "etterId")]
    etter_id: Option<String>,
    #[serde(rename = "maksAntall")]
    maks_antall: Option<String>,
    kommunefilter: Option<String>,
}

/// The initial load of cadastral units.
async fn units(State(shared): State<Arc<Shared>>, Query(q): Query<UnitsQuery>) -> Response {
    let Ok(after) = q.etter_id.as_deref().map_or(Ok(0), str::parse::<u64>) else {
        return fault(StatusCode::BAD_REQUEST, "etterId må være et tall");
    };
    let max = match max_count(q.maks_antall.as_deref()) {
        Ok(n) => n,
        Err(e) => return fault(StatusCode::BAD_REQUEST, &e),
    };
    let kommuner = list(q.kommunefilter.as_deref());
    if let Some(r) = shared.faults.maintenance() {
        return r;
    }
    let body = shared.property(|registry| {
        // Filtered after paging by id, as the real download pages its ids: a page may hold
        // fewer than asked and still not be the last.
        let page = registry.units_after(after, max);
        let last = page.last().map(|u| u.id);
        let objects: Vec<Value> = page
            .into_iter()
            .filter(|u| kommuner.is_empty() || kommuner.contains(&u.kommune))
            .map(unit_bubble)
            .collect();
        json!({ "bobler": objects, "sisteId": last, "alleFunnet": last.is_none() })
    });
    axum::Json(body).into_response()
}
