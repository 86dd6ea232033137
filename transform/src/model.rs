//! The canonical rows regsync writes to the lake.

use chrono::{DateTime, NaiveDate, Utc};

/// A person's normalised state, as of one document version.
///
/// Coded values keep the register's words. For a strengt fortrolig person every address field and
/// the municipality are `None`, whatever the document held.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Person {
    /// Fødselsnummer or D-nummer in use.
    pub person_id: String,
    /// `foedselsnummer` or `dNummer`.
    pub id_type: String,
    /// Date of birth.
    pub birth_date: Option<NaiveDate>,
    /// Year of birth (from the date, or `foedselsaar` when only the year is known; 0 if unknown).
    pub birth_year: i32,
    /// `kvinne` / `mann`.
    pub sex: Option<String>,
    /// Given name(s).
    pub given_name: Option<String>,
    /// Middle name.
    pub middle_name: Option<String>,
    /// Family name.
    pub family_name: Option<String>,
    /// `bosatt`, `doed`, `utflyttet`, ...
    pub status: Option<String>,
    /// Residence address.
    pub address: Address,
    /// `ugradert`, `klientadresse`, `fortrolig`, `strengt_fortrolig`, or an unknown value as given.
    pub address_protection: String,
    /// Date of death.
    pub death_date: Option<NaiveDate>,
    /// Current citizenship (ISO alpha-3).
    pub citizenship: Option<String>,
    /// `ugift`, `gift`, `skilt`, ...
    pub marital_status: Option<String>,
    /// Spouse or partner.
    pub spouse_id: Option<String>,
    /// Mother.
    pub mother_id: Option<String>,
    /// Father.
    pub father_id: Option<String>,
    /// Co-mother (`medmor`).
    pub co_mother_id: Option<String>,
    /// Country emigrated to, while emigrated.
    pub emigrated_to: Option<String>,
    /// Country immigrated from, on the latest immigration.
    pub immigrated_from: Option<String>,
}

/// A residence address (bostedsadresse), flattened.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Address {
    /// Kommunenummer of residence.
    pub municipality_number: Option<String>,
    /// Street (vegadresse) name.
    pub street_name: Option<String>,
    /// House number.
    pub house_number: Option<String>,
    /// House letter.
    pub house_letter: Option<String>,
    /// Postcode.
    pub postal_code: Option<String>,
    /// Postal place.
    pub postal_place: Option<String>,
    /// Date moved in.
    pub moved_in_date: Option<NaiveDate>,
    /// `adressekode`: the street's code within the kommune (the property register's too).
    pub street_code: Option<i64>,
    /// `adresseIdentifikatorFraMatrikkelen`: the property register's address id.
    pub matrikkel_address_id: Option<String>,
    /// `bruksenhetsnummer`: the dwelling (flat) at the address (`H0101`).
    pub dwelling_unit: Option<String>,
}

impl Person {
    /// Whether the address may appear in an output that is not cleared for protected addresses.
    pub fn address_is_open(&self) -> bool {
        self.address_protection == schemas::tables::protection::UNGRADED
    }
}

/// One version of a person, valid from `valid_from` until `valid_to` (`None`: still current).
#[derive(Debug, Clone, PartialEq)]
pub struct PersonVersion {
    /// The state.
    pub person: Person,
    /// The feed sequence number that produced this version (the extract's for a seeded one).
    pub sequence: i64,
    /// When this version became valid.
    pub valid_from: DateTime<Utc>,
    /// When it stopped being valid.
    pub valid_to: Option<DateTime<Utc>>,
}

/// One feed entry, as written to `person_event`.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRow {
    /// Feed sequence number.
    pub sequence: i64,
    /// `hendelsetype` as the register spells it (unknown types are kept).
    pub event_type: String,
    /// The person the event concerns.
    pub person_id: String,
    /// `ajourholdstidspunkt`.
    pub occurred_at: Option<DateTime<Utc>>,
    /// `hendelsesdokument`.
    pub event_document_id: Option<String>,
    /// `persondokument`.
    pub person_document_id: Option<String>,
    /// What became of it.
    pub outcome: Outcome,
}

/// What became of a feed entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Its document was normalised and written.
    Applied,
    /// It went to `dead_letter` with the reason.
    DeadLettered,
    /// The entity left current state (a business unit the register removed).
    Removed,
    /// Kept in the log only: a change of a kind of object regsync does not keep.
    Ignored,
}

impl Outcome {
    /// As written in `person_event.outcome`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Applied => "applied",
            Self::DeadLettered => "dead_lettered",
            Self::Removed => "removed",
            Self::Ignored => "ignored",
        }
    }
}

/// A record that could not be normalised. It never holds the record's content (a document may
/// hold a protected address): only what an operator needs to replay it.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    /// Which source it came from (`freg.feed`, `freg.seed`).
    pub source: String,
    /// Where in the source (`sequence=123`, `batch=4`).
    pub cursor: String,
    /// The record's identifier, where known.
    pub record_id: Option<String>,
    /// Why it was rejected.
    pub reason: String,
    /// What is needed to replay the record, as a JSON object: its identifiers (sequence number,
    /// person id, document id) and the failing element (written to the `payload` column).
    pub replay: String,
}
