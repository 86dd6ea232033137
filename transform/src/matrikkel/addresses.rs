//! The address bulk file (`matrikkelenAdresse.csv`, semicolon-separated, a header line): one
//! address per line, read by column name so that today's column set (`lokalId`, ...,
//! `adresseId`, `uuidAdresse`, more columns after) and the 2019 one (`lokalid`, no
//! `adresseId`) both read. Dates are `dd.MM.yyyy HH:mm:ss`, Norwegian local time, kept as given.
//!
//! An address's id is `adresseId` where the file has it, else its `lokalId`. A line that cannot
//! be read (no id, a kommunenummer that is not four digits, a number or coordinate that is not
//! one, a date in another form) is an error naming the column and the value, so it can go to
//! `dead_letter` while the rest of the file goes on.

use chrono::NaiveDateTime;
use csv::StringRecord;

use crate::TransformError;

/// An address, as the register's file gives it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Address {
    /// `adresseId`, else `lokalId`.
    pub address_id: String,
    /// `lokalId`.
    pub local_id: Option<String>,
    /// `kommunenummer` (four digits, leading zeros kept).
    pub municipality_number: String,
    /// `kommunenavn`.
    pub municipality_name: Option<String>,
    /// `adressetype`: `vegadresse` or `matrikkeladresse`.
    pub address_type: Option<String>,
    /// `adressekode`: the street's code within the kommune.
    pub street_code: Option<i64>,
    /// `adressenavn`.
    pub street_name: Option<String>,
    /// `nummer`.
    pub house_number: Option<String>,
    /// `bokstav`.
    pub house_letter: Option<String>,
    /// `gardsnummer`.
    pub gnr: Option<i64>,
    /// `bruksnummer`.
    pub bnr: Option<i64>,
    /// `festenummer`.
    pub fnr: Option<i64>,
    /// `undernummer`.
    pub snr: Option<i64>,
    /// `adresseTekst`.
    pub address_text: Option<String>,
    /// `postnummer`.
    pub postal_code: Option<String>,
    /// `poststed`.
    pub postal_place: Option<String>,
    /// `EPSG-kode` of the coordinates.
    pub epsg: Option<i64>,
    /// `Nord`.
    pub north: Option<f64>,
    /// `Øst`.
    pub east: Option<f64>,
    /// `oppdateringsdato`, local time.
    pub updated_local: Option<NaiveDateTime>,
}

/// Where each column is in a file, from its header.
#[derive(Debug, Clone)]
pub struct Columns {
    index: Vec<(Column, usize)>,
}

/// The columns read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Column {
    AddressId,
    LocalId,
    Kommune,
    KommuneName,
    Type,
    StreetCode,
    StreetName,
    Number,
    Letter,
    Gnr,
    Bnr,
    Fnr,
    Snr,
    Text,
    Epsg,
    North,
    East,
    PostalCode,
    PostalPlace,
    Updated,
    Taken,
}

/// Header names (compared without case) of each column.
const NAMES: &[(Column, &str)] = &[
    (Column::AddressId, "adresseid"),
    (Column::LocalId, "lokalid"),
    (Column::Kommune, "kommunenummer"),
    (Column::KommuneName, "kommunenavn"),
    (Column::Type, "adressetype"),
    (Column::StreetCode, "adressekode"),
    (Column::StreetName, "adressenavn"),
    (Column::Number, "nummer"),
    (Column::Letter, "bokstav"),
    (Column::Gnr, "gardsnummer"),
    (Column::Bnr, "bruksnummer"),
    (Column::Fnr, "festenummer"),
    (Column::Snr, "undernummer"),
    (Column::Text, "adressetekst"),
    (Column::Epsg, "epsg-kode"),
    (Column::North, "nord"),
    (Column::East, "øst"),
    (Column::PostalCode, "postnummer"),
    (Column::PostalPlace, "poststed"),
    (Column::Updated, "oppdateringsdato"),
    (Column::Taken, "datauttaksdato"),
];

fn malformed(reason: String) -> TransformError {
    TransformError::Malformed {
        what: "matrikkel address file",
        reason,
    }
}

impl Columns {
    /// Reads the header line's names. A file without `kommunenummer`, or without both
    /// `adresseId` and `lokalId`, is not an address file.
    pub fn from_header(header: &StringRecord) -> Result<Self, TransformError> {
        let mut index = Vec::new();
        for (i, name) in header.iter().enumerate() {
            // A byte-order mark before the first name is not part of it.
            let name = name.trim_start_matches('\u{feff}').trim().to_lowercase();
            if let Some((column, _)) = NAMES.iter().find(|(_, n)| *n == name) {
                index.push((*column, i));
            }
        }
        let has = |c: Column| index.iter().any(|(x, _)| *x == c);
        if !has(Column::Kommune) || !(has(Column::AddressId) || has(Column::LocalId)) {
            let names: Vec<&str> = header.iter().take(8).collect();
            return Err(malformed(format!(
                "the header has no kommunenummer or no adresseId/lokalId (it starts {names:?})"
            )));
        }
        Ok(Self { index })
    }

    /// The line's `datauttaksdato` (when the file's data was taken, local time), if it has one
    /// that reads.
    pub fn taken(&self, record: &StringRecord) -> Option<NaiveDateTime> {
        let v = self.get(record, Column::Taken)?;
        NaiveDateTime::parse_from_str(v, "%d.%m.%Y %H:%M:%S").ok()
    }

    /// Whether the file has `adresseId` (today's column set), the id the change log names.
    pub fn has_address_id(&self) -> bool {
        self.index.iter().any(|(c, _)| *c == Column::AddressId)
    }

    /// The line's `kommunenummer` as given.
    pub fn kommune<'a>(&self, record: &'a StringRecord) -> Option<&'a str> {
        self.get(record, Column::Kommune)
    }

    fn get<'a>(&self, record: &'a StringRecord, column: Column) -> Option<&'a str> {
        let (_, i) = self.index.iter().find(|(c, _)| *c == column)?;
        record.get(*i).map(str::trim).filter(|v| !v.is_empty())
    }
}

fn name_of(column: Column) -> &'static str {
    NAMES
        .iter()
        .find(|(c, _)| *c == column)
        .map_or("?", |(_, n)| n)
}

/// Reads one line of the file.
pub fn read_address(columns: &Columns, record: &StringRecord) -> Result<Address, TransformError> {
    let text = |c: Column| columns.get(record, c).map(str::to_owned);
    let integer = |c: Column| -> Result<Option<i64>, TransformError> {
        columns
            .get(record, c)
            .map(|v| {
                v.parse::<i64>()
                    .map_err(|_| malformed(format!("{} {v:?} is not a whole number", name_of(c))))
            })
            .transpose()
    };
    let decimal = |c: Column| -> Result<Option<f64>, TransformError> {
        columns
            .get(record, c)
            .map(|v| {
                v.replace(',', ".")
                    .parse::<f64>()
                    .ok()
                    .filter(|x| x.is_finite())
                    .ok_or_else(|| malformed(format!("{} {v:?} is not a coordinate", name_of(c))))
            })
            .transpose()
    };
    let local_id = text(Column::LocalId);
    let address_id = text(Column::AddressId)
        .or_else(|| local_id.clone())
        .ok_or_else(|| malformed("a line without adresseId or lokalId".into()))?;
    let kommune = text(Column::Kommune).unwrap_or_default();
    // A kommunenummer read as a number by some tool loses its leading zero: kept at four.
    let kommune = if (3..=4).contains(&kommune.len()) && kommune.chars().all(|c| c.is_ascii_digit())
    {
        format!("{kommune:0>4}")
    } else {
        return Err(malformed(format!(
            "address {address_id}: kommunenummer {kommune:?} is not four digits"
        )));
    };
    let updated_local = columns
        .get(record, Column::Updated)
        .map(|v| {
            NaiveDateTime::parse_from_str(v, "%d.%m.%Y %H:%M:%S").map_err(|_| {
                malformed(format!(
                    "address {address_id}: oppdateringsdato {v:?} is not dd.MM.yyyy HH:mm:ss"
                ))
            })
        })
        .transpose()?;
    Ok(Address {
        address_id,
        local_id,
        municipality_number: kommune,
        municipality_name: text(Column::KommuneName),
        address_type: text(Column::Type),
        street_code: integer(Column::StreetCode)?,
        street_name: text(Column::StreetName),
        house_number: text(Column::Number),
        house_letter: text(Column::Letter),
        gnr: integer(Column::Gnr)?,
        bnr: integer(Column::Bnr)?,
        fnr: integer(Column::Fnr)?,
        snr: integer(Column::Snr)?,
        address_text: text(Column::Text),
        postal_code: text(Column::PostalCode).map(|p| format!("{p:0>4}")),
        postal_place: text(Column::PostalPlace),
        epsg: integer(Column::Epsg)?,
        north: decimal(Column::North)?,
        east: decimal(Column::East)?,
        updated_local,
    })
}
