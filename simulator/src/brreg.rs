//! The business register (Enhetsregisteret): synthetic units (enheter and underenheter) at the
//! population's addresses, their two updates lists (separate id sequences, all four kinds of
//! change plus `Ukjent`), and their rendering in the register's JSON shapes.
//!
//! Organisation numbers pass the mod-11 check digit; names are drawn from lists. Deterministic
//! for a seed.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::{Map, Value, json};

use crate::kommuner;
use crate::person::Residence;
use crate::world::World;

/// The first `oppdateringsid` of each list: the real lists are far from 1.
pub const FIRST_UPDATE_ID: i64 = 14_000_001;

const FORMS: &[(&str, &str)] = &[
    ("AS", "Aksjeselskap"),
    ("ENK", "Enkeltpersonforetak"),
    ("DA", "Selskap med delt ansvar"),
    ("SA", "Samvirkeforetak"),
    ("STI", "Stiftelse"),
];
const INDUSTRIES: &[(&str, &str)] = &[
    ("62.010", "Programmeringstjenester"),
    ("41.200", "Oppføring av bygninger"),
    (
        "47.111",
        "Butikkhandel med bredt vareutvalg med hovedvekt på nærings- og nytelsesmidler",
    ),
    ("56.101", "Drift av restauranter og kafeer"),
    ("69.201", "Regnskap og bokføring"),
    ("86.211", "Allmenn legetjeneste"),
    ("01.410", "Melkeproduksjon på storfe"),
    ("43.210", "Elektrisk installasjonsarbeid"),
];
const NAME_ENDS: &[&str] = &[
    "Bygg", "Data", "Regnskap", "Handel", "Kafé", "Elektro", "Gård",
];

/// Which list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum List {
    /// `enheter`.
    Enheter,
    /// `underenheter`.
    Underenheter,
}

impl List {
    /// The register's path segment of the list (`enheter`, `underenheter`).
    pub fn path(self) -> &'static str {
        match self {
            Self::Enheter => "enheter",
            Self::Underenheter => "underenheter",
        }
    }
}

/// A unit as the simulator knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Unit {
    /// Organisation number.
    pub number: String,
    /// Which list it is in.
    pub list: List,
    /// Name.
    pub name: String,
    /// Organisation form code (underenheter: `BEDR`).
    pub form: &'static str,
    /// Index into the industry list.
    pub industry: usize,
    /// Employees (`None`: not registered).
    pub employees: Option<i64>,
    /// The parent enhet (underenheter).
    pub parent: Option<String>,
    /// Where it is.
    pub address: Residence,
    /// Registered.
    pub registered: NaiveDate,
    /// Bankrupt.
    pub bankrupt: bool,
    /// Deleted (`Sletting`).
    pub deleted: Option<NaiveDate>,
    /// Removed from the open data (`Fjernet`): not served any more.
    pub removed: bool,
}

/// One update of a list.
#[derive(Debug, Clone, PartialEq)]
pub struct UpdateRecord {
    /// `oppdateringsid`.
    pub id: i64,
    /// `dato`.
    pub at: DateTime<Utc>,
    /// The unit (index into [`Units::units`]).
    pub unit: usize,
    /// `endringstype`.
    pub change: &'static str,
}

/// The business register.
#[derive(Debug)]
pub struct Units {
    /// Every unit ever registered.
    pub units: Vec<Unit>,
    /// The two updates lists, in id order.
    pub enheter: Vec<UpdateRecord>,
    /// See `enheter`.
    pub underenheter: Vec<UpdateRecord>,
    by_number: std::collections::HashMap<String, usize>,
    rng: SmallRng,
    next_number: [u64; 2],
    latest: Option<usize>,
}

/// The next valid organisation number at or after `from` (first digit kept).
fn next_valid(from: &mut u64) -> String {
    loop {
        let base = *from;
        *from += 1;
        let digits: Vec<u32> = format!("{base:08}")
            .chars()
            .filter_map(|c| c.to_digit(10))
            .collect();
        let mut first = [0u32; 8];
        first.copy_from_slice(&digits[..8]);
        if let Some(k) = transform::orgnr::check_digit(&first) {
            return format!("{base:08}{k}");
        }
    }
}

impl Units {
    /// `count` enheter and about 0.6 × `count` underenheter at addresses of the population's
    /// persons, each registered with one `Ny` update, at `now`.
    pub fn new(count: u32, seed: u64, world: &World, now: DateTime<Utc>) -> Self {
        let mut out = Self {
            units: Vec::new(),
            enheter: Vec::new(),
            underenheter: Vec::new(),
            by_number: std::collections::HashMap::new(),
            rng: SmallRng::seed_from_u64(seed ^ 0xB2E6),
            next_number: [91_000_000, 81_000_000],
            latest: None,
        };
        for _ in 0..count {
            out.register(List::Enheter, world, now);
        }
        for _ in 0..(count * 3 / 5) {
            out.register(List::Underenheter, world, now);
        }
        out
    }

    fn list_mut(&mut self, list: List) -> &mut Vec<UpdateRecord> {
        match list {
            List::Enheter => &mut self.enheter,
            List::Underenheter => &mut self.underenheter,
        }
    }

    /// The unit of the newest update, if it is still served.
    pub fn latest(&self) -> Option<&Unit> {
        self.latest
            .and_then(|i| self.units.get(i))
            .filter(|u| !u.removed)
    }

    /// A list's updates.
    pub fn list(&self, list: List) -> &[UpdateRecord] {
        match list {
            List::Enheter => &self.enheter,
            List::Underenheter => &self.underenheter,
        }
    }

    fn record(&mut self, unit: usize, change: &'static str, at: DateTime<Utc>) {
        self.latest = Some(unit);
        let list = self.units[unit].list;
        let updates = self.list_mut(list);
        let id = updates.last().map_or(FIRST_UPDATE_ID, |u| u.id + 1);
        // Times never go back within a list, as ids do not.
        let at = updates.last().map_or(at, |u| u.at.max(at));
        updates.push(UpdateRecord {
            id,
            at,
            unit,
            change,
        });
    }

    /// The current street address of one of the population's unprotected persons, else a new
    /// one: a unit's address is never taken from a protected person nor from a past residence.
    /// (Others may still share a protected person's address, as households and buildings do:
    /// withholding protected residents is the views' work, not the data's.)
    fn address(&mut self, world: &World, now: DateTime<Utc>) -> Residence {
        let persons = world.persons_at(world.head()).max(1);
        let person = self.rng.random_range(0..persons);
        world
            .current(person)
            .filter(|p| p.protection.eq_ignore_ascii_case("ugradert"))
            .and_then(|p| p.residences.last().cloned())
            .filter(|r| r.street.is_some() && r.to.is_none())
            .unwrap_or_else(|| {
                let kommune = kommuner::draw(self.rng.random());
                crate::population::Population::residence(&mut self.rng, kommune, now)
            })
    }

    fn register(&mut self, list: List, world: &World, now: DateTime<Utc>) -> usize {
        let slot = usize::from(list == List::Underenheter);
        let number = next_valid(&mut self.next_number[slot]);
        let address = self.address(world, now);
        let (form, parent) = match list {
            List::Enheter => (FORMS[self.rng.random_range(0..FORMS.len())].0, None),
            List::Underenheter => {
                let parent = self
                    .pick(List::Enheter)
                    .map(|i| self.units[i].number.clone());
                ("BEDR", parent)
            }
        };
        let stem = address
            .street
            .clone()
            .unwrap_or_else(|| address.place.clone());
        let name = format!(
            "{} {}{}",
            stem.split_whitespace().next().unwrap_or("Nord"),
            NAME_ENDS[self.rng.random_range(0..NAME_ENDS.len())],
            if form == "AS" { " AS" } else { "" }
        );
        let days = self.rng.random_range(0..15_000);
        let unit = Unit {
            number,
            list,
            name,
            form,
            industry: self.rng.random_range(0..INDUSTRIES.len()),
            employees: self
                .rng
                .random_bool(0.8)
                .then(|| self.rng.random_range(0..250)),
            parent,
            address,
            registered: now.date_naive() - Duration::days(days),
            bankrupt: false,
            deleted: None,
            removed: false,
        };
        self.units.push(unit);
        let index = self.units.len() - 1;
        self.by_number
            .insert(self.units[index].number.clone(), index);
        self.record(index, "Ny", now);
        index
    }

    /// One change in one of the lists: a new unit, a change of an existing one (employees,
    /// address, bankruptcy), a deletion, a removal, or an `Ukjent` update.
    pub fn step(&mut self, world: &World, now: DateTime<Utc>) {
        let list = if self.rng.random_bool(0.6) {
            List::Enheter
        } else {
            List::Underenheter
        };
        let roll = self.rng.random_range(0..100);
        let picked = self.pick(list);
        let Some(unit) = picked.filter(|_| roll >= 10) else {
            self.register(list, world, now);
            return;
        };
        let change = match roll {
            10..=69 => {
                match self.rng.random_range(0..3) {
                    0 => self.units[unit].employees = Some(self.rng.random_range(0..250)),
                    1 => self.units[unit].address = self.address(world, now),
                    _ => self.units[unit].bankrupt = true,
                }
                "Endring"
            }
            70..=84 if self.units[unit].deleted.is_none() => {
                self.units[unit].deleted = Some(now.date_naive());
                "Sletting"
            }
            85..=92 => {
                self.units[unit].removed = true;
                "Fjernet"
            }
            _ => "Ukjent",
        };
        self.record(unit, change, now);
    }

    /// A random unit of the list that is still served and not deleted (a few draws, so that a step costs the
    /// same at any register size; `None` if none was found).
    fn pick(&mut self, list: List) -> Option<usize> {
        (0..32).find_map(|_| {
            let i = self.rng.random_range(0..self.units.len().max(1));
            self.units
                .get(i)
                .filter(|u| u.list == list && !u.removed && u.deleted.is_none())
                .map(|_| i)
        })
    }

    /// A unit by organisation number, in a list.
    pub fn find(&self, list: List, number: &str) -> Option<&Unit> {
        self.by_number
            .get(number)
            .map(|i| &self.units[*i])
            .filter(|u| u.list == list)
    }
}

/// A unit's document, as the register renders it: its `Enhet` or `Underenhet` shape, or once
/// deleted the fewer attributes of its `SlettetEnhet` or `SlettetUnderenhet` shape (the
/// register answers a deleted unit with 200 and name, form and `slettedato`). `base` is the
/// API's URL, for the links.
pub fn document(unit: &Unit, base: &str) -> Value {
    match unit.deleted {
        Some(deleted) => deleted_document(unit, deleted, base),
        None => current_document(unit, base),
    }
}

/// The 410 answer for a unit removed from the open data (`GoneEnhet`, `GoneUnderenhet`): its
/// number and `slettedato`, its deletion date if it has one, else `today`.
pub fn gone(unit: &Unit, base: &str, today: NaiveDate) -> Value {
    json!({
        "organisasjonsnummer": unit.number,
        "slettedato": day(unit.deleted.unwrap_or(today)),
        "_links": {"self": {"href": self_href(unit, base)}}
    })
}

/// A date as the register writes it (`yyyy-MM-dd`).
fn day(date: NaiveDate) -> String {
    date.format("%Y-%m-%d").to_string()
}

/// The unit's own link.
fn self_href(unit: &Unit, base: &str) -> String {
    format!("{base}/{}/{}", unit.list.path(), unit.number)
}

/// `organisasjonsform`: code, description and link.
fn form(unit: &Unit, base: &str) -> Value {
    let description = FORMS.iter().find(|(c, _)| *c == unit.form).map_or(
        "Underenhet til næringsdrivende og offentlig forvaltning",
        |(_, d)| d,
    );
    json!({
        "kode": unit.form,
        "beskrivelse": description,
        "_links": {"self": {"href": format!("{base}/organisasjonsformer/{}", unit.form)}}
    })
}

/// The unit's street address (`forretningsadresse` or `beliggenhetsadresse`).
fn address(a: &Residence) -> Value {
    let line = match (&a.street, a.letter) {
        (Some(s), Some(l)) => format!("{s} {}{l}", a.number),
        (Some(s), None) => format!("{s} {}", a.number),
        (None, _) => format!("Gnr {}", a.number),
    };
    let kommune = kommuner::index_of(&a.kommune).map_or("", |i| kommuner::KOMMUNER[i].name);
    json!({
        "land": "Norge", "landkode": "NO", "postnummer": a.postcode, "poststed": a.place,
        "adresse": [line], "kommune": kommune.to_uppercase(), "kommunenummer": a.kommune
    })
}

/// `SlettetEnhet` / `SlettetUnderenhet`. Both say `"respons_klasse": "SlettetEnhet"`: the
/// spec's `SlettetUnderenhet` allows only that value, and its discriminator maps it so.
fn deleted_document(unit: &Unit, deleted: NaiveDate, base: &str) -> Value {
    json!({
        "respons_klasse": "SlettetEnhet",
        "organisasjonsnummer": unit.number,
        "navn": unit.name,
        "organisasjonsform": form(unit, base),
        "slettedato": day(deleted),
        "_links": {"self": {"href": self_href(unit, base)}}
    })
}

/// The members of an object built with `json!` (none for anything else).
fn members(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(o) => o,
        _ => Map::new(),
    }
}

/// A unit not deleted, as `Enhet` or `Underenhet`: the attributes both have, then those of its
/// kind.
fn current_document(unit: &Unit, base: &str) -> Value {
    let (code, description) = INDUSTRIES[unit.industry];
    let address_key = match unit.list {
        List::Enheter => "forretningsadresse",
        List::Underenheter => "beliggenhetsadresse",
    };
    let mut links = json!({"self": {"href": self_href(unit, base)}});
    if let Some(parent) = &unit.parent {
        links["overordnetEnhet"] = json!({"href": format!("{base}/enheter/{parent}")});
    }
    let mut doc = members(json!({
        "organisasjonsnummer": unit.number,
        "navn": unit.name,
        "organisasjonsform": form(unit, base),
        "registreringsdatoEnhetsregisteret": day(unit.registered),
        "registrertIMvaregisteret": unit.employees.is_some_and(|e| e > 2),
        "naeringskode1": {"beskrivelse": description, "kode": code},
        "harRegistrertAntallAnsatte": unit.employees.is_some(),
        address_key: address(&unit.address),
        "_links": links
    }));
    if let Some(e) = unit.employees {
        doc.insert("antallAnsatte".into(), json!(e));
    }
    if let Some(parent) = &unit.parent {
        doc.insert("overordnetEnhet".into(), json!(parent));
    }
    doc.extend(match unit.list {
        List::Enheter => enhet_attributes(unit),
        List::Underenheter => underenhet_attributes(unit),
    });
    Value::Object(doc)
}

/// What only an `Enhet` has: every attribute the spec requires of it, with the values of an
/// ordinary unit (no endorsements, not being wound up, registered where its form must be).
fn enhet_attributes(unit: &Unit) -> Map<String, Value> {
    // Companies are in the Register of Business Enterprises; a sole proprietorship must be
    // from more than five employees.
    let in_business_register = match unit.form {
        "AS" | "DA" | "SA" => true,
        "ENK" => unit.employees.is_some_and(|e| e > 5),
        _ => false,
    };
    members(json!({
        "respons_klasse": "Enhet",
        "maalform": "Bokmål",
        "stiftelsesdato": day(unit.registered),
        "konkurs": unit.bankrupt,
        "underAvvikling": false,
        "underTvangsavviklingEllerTvangsopplosning": false,
        "registrertIForetaksregisteret": in_business_register,
        "registrertIStiftelsesregisteret": unit.form == "STI",
        "registrertIFrivillighetsregisteret": false,
        "paategninger": []
    }))
}

/// What only an `Underenhet` has.
fn underenhet_attributes(unit: &Unit) -> Map<String, Value> {
    members(json!({
        "respons_klasse": "Underenhet",
        "oppstartsdato": day(unit.registered)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_sit_at_current_street_addresses_with_valid_numbers_and_parents() {
        let mut world = World::new(3000, 5);
        let mut rng = SmallRng::seed_from_u64(9);
        let now = Utc::now();
        for _ in 0..400 {
            crate::events::step(&mut world, &mut rng, now);
        }
        let mut units = Units::new(150, 5, &world, now);
        for _ in 0..600 {
            units.step(&world, now);
        }
        for u in &units.units {
            let digits: Vec<u32> = u.number.chars().filter_map(|c| c.to_digit(10)).collect();
            let mut first = [0u32; 8];
            first.copy_from_slice(&digits[..8]);
            assert_eq!(
                transform::orgnr::check_digit(&first),
                Some(digits[8]),
                "{}",
                u.number
            );
            assert!(u.address.street.is_some() && u.address.to.is_none());
            if u.list == List::Underenheter {
                assert!(u.parent.is_some(), "{} has a parent", u.number);
            }
        }
        for list in [List::Enheter, List::Underenheter] {
            let updates = units.list(list);
            assert!(
                updates
                    .windows(2)
                    .all(|w| w[1].id == w[0].id + 1 && w[1].at >= w[0].at)
            );
        }
    }

    fn keys(doc: &Value) -> Vec<&str> {
        let mut keys: Vec<&str> = doc
            .as_object()
            .map(|o| o.keys().map(String::as_str).collect())
            .unwrap_or_default();
        keys.sort_unstable();
        keys
    }

    #[test]
    fn a_deleted_unit_has_the_fewer_attributes_and_a_removed_one_only_its_number_and_date() {
        let world = World::new(200, 3);
        let now = Utc::now();
        let units = Units::new(10, 3, &world, now);
        let base = "https://data.brreg.no/enhetsregisteret/api";
        for list in [List::Enheter, List::Underenheter] {
            let mut unit = units
                .units
                .iter()
                .find(|u| u.list == list)
                .cloned()
                .expect("a unit of each list");
            let current = document(&unit, base);
            assert!(current.get("slettedato").is_none(), "{current}");
            let expected = if list == List::Enheter {
                "Enhet"
            } else {
                "Underenhet"
            };
            assert_eq!(current["respons_klasse"], expected);
            assert!(current["beliggenhetsadresse"].is_object() || list == List::Enheter);
            assert!(current["forretningsadresse"].is_object() || list == List::Underenheter);

            let deleted = NaiveDate::from_ymd_opt(2024, 3, 9).expect("a date");
            unit.deleted = Some(deleted);
            let doc = document(&unit, base);
            assert_eq!(
                keys(&doc),
                [
                    "_links",
                    "navn",
                    "organisasjonsform",
                    "organisasjonsnummer",
                    "respons_klasse",
                    "slettedato"
                ]
            );
            assert_eq!(doc["respons_klasse"], "SlettetEnhet");
            assert_eq!(doc["slettedato"], "2024-03-09");

            let today = NaiveDate::from_ymd_opt(2025, 1, 2).expect("a date");
            assert_eq!(gone(&unit, base, today)["slettedato"], "2024-03-09");
            unit.deleted = None;
            let answer = gone(&unit, base, today);
            assert_eq!(
                keys(&answer),
                ["_links", "organisasjonsnummer", "slettedato"]
            );
            assert_eq!(answer["slettedato"], "2025-01-02");
        }
    }
}
