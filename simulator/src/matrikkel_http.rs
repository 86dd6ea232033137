//! The property register's address file (`matrikkelenAdresse.csv`, today's column set,
//! semicolon-separated, `dd.MM.yyyy HH:mm:ss` dates) at `/matrikkel/v1/matrikkelenAdresse.csv`:
//! every address a person of the population lives at now and every business unit is at, so
//! that the three registers' joins work. The real file comes zipped from Kartverket's download service; this one is plain.
//! Ids, street codes and coordinates are derived from the address itself, so they are stable
//! between downloads.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use crate::kommuner;
use crate::person::Residence;
use crate::server::Shared;

/// Where the address file is served.
pub const ADDRESS_FILE: &str = "/matrikkel/v1/matrikkelenAdresse.csv";

/// The file's header (today's column set, as far as the columns this file fills).
const HEADER: &str = "lokalId;kommunenummer;kommunenavn;adressetype;adressetilleggsnavn;adressetilleggsnavnKilde;adressekode;adressenavn;nummer;bokstav;gardsnummer;bruksnummer;festenummer;undernummer;adresseTekst;adresseTekstUtenAdressetilleggsnavn;EPSG-kode;Nord;Øst;postnummer;poststed;oppdateringsdato;datauttaksdato;adresseId;uuidAdresse";

/// FNV-1a of a text: stable numbers derived from an address.
fn stable(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// An address's identity: kommune, street (none: a matrikkeladresse), number, letter.
type Key = (String, Option<String>, u16, Option<char>);

/// One line of the file.
fn line(key: &Key, r: &Residence, taken: &str) -> String {
    let (kommune, street, number, letter) = key;
    let name = kommuner::index_of(kommune).map_or("", |i| kommuner::KOMMUNER[i].name);
    let h = stable(&format!("{kommune}|{street:?}|{number}|{letter:?}"));
    // Fifteen digits of the hash: no two of a national register's 2.6 million addresses share
    // one (the register's own ids are numbers too).
    let id = 100_000_000_000_000 + h % 900_000_000_000_000;
    let letter = letter.map(String::from).unwrap_or_default();
    let north = 58.0 + (h % 1_000_000) as f64 / 1_000_000.0 * 12.0;
    let east = 5.0 + ((h >> 20) % 1_000_000) as f64 / 1_000_000.0 * 25.0;
    let (kind, code, street_name, nr, gnr, text) = match street {
        Some(s) => (
            "vegadresse",
            (1000 + stable(&format!("{kommune}|{s}")) % 9000).to_string(),
            s.clone(),
            number.to_string(),
            (1 + h % 300).to_string(),
            format!("{s} {number}{letter}"),
        ),
        None => (
            "matrikkeladresse",
            String::new(),
            String::new(),
            String::new(),
            number.to_string(),
            format!("{number}/{}", 1 + h % 50),
        ),
    };
    let bnr = 1 + (h >> 8) % 50;
    format!(
        "{id}-lokal;{kommune};{};{kind};;;{code};{street_name};{nr};{letter};{gnr};{bnr};0;0;{text};{text};4258;{north:.6};{east:.6};{};{};01.01.2020 00:00:00;{taken};{id};00000000-0000-4000-8000-{:012}",
        name.to_uppercase(),
        r.postcode,
        r.place,
        id % 1_000_000_000_000
    )
}

/// `GET /matrikkel/v1/matrikkelenAdresse.csv`.
pub async fn addresses(State(shared): State<Arc<Shared>>) -> Response {
    let taken = chrono::Utc::now().format("%d.%m.%Y %H:%M:%S").to_string();
    let mut found: BTreeMap<Key, Residence> = BTreeMap::new();
    let mut add = |r: &Residence| {
        let key = (r.kommune.clone(), r.street.clone(), r.number, r.letter);
        found.entry(key).or_insert_with(|| r.clone());
    };
    {
        let world = shared.read();
        for i in 0..world.population.cores.len() as u32 {
            if let Some(p) = world.current(i) {
                p.residence().into_iter().for_each(&mut add);
            }
        }
    }
    for unit in shared.units().units.iter().filter(|u| !u.removed) {
        add(&unit.address);
    }
    let mut out = String::with_capacity(found.len() * 200 + HEADER.len());
    out.push_str(HEADER);
    out.push('\n');
    for (key, r) in &found {
        out.push_str(&line(key, r, &taken));
        out.push('\n');
    }
    ([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], out).into_response()
}
