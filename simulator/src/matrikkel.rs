//! The property register (Matrikkelen) as the simulator keeps it: addresses (vegadresser and
//! matrikkeladresser), the cadastral units (matrikkelenheter) they stand on, and the change log
//! ([`Change`]) in which every later change to either is one entry with its own id.
//!
//! The register is built from the population's and the business register's addresses the first
//! time it is asked for (so a large population does not pay for it unless it is used), with an
//! empty log. From then on:
//! - an address a person moves to or a business registers at that the register lacks is
//!   created (`Nyoppretting`), with its cadastral unit if that is new too, so the three
//!   registers' joins hold;
//! - the register changes on its own ([`Registry::step`]): new addresses on existing streets
//!   (house numbers from 500, which no person's address has), a moved representation point or a
//!   new postal place (`Oppdatering`), such new addresses deleted again (`Sletting`), cadastral
//!   units divided off, changed and expired.
//!
//! Change ids are one sequence across all domain classes, as in the real log, so one class's
//! changes have gaps between them.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Duration, NaiveDate, Utc};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::kommuner;
use crate::person::Residence;

/// The first change id (the real log's ids are large).
pub const FIRST_CHANGE_ID: i64 = 7_000_000_001;

/// An address's identity: kommune, street (none: a matrikkeladresse), number, letter.
pub type Key = (String, Option<String>, u16, Option<char>);

/// FNV-1a of a text: stable numbers derived from an address.
pub fn stable(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The hash of an address's identity; `generation` tells apart an address the register made
/// anew at an identity it had before (0: the first).
fn key_hash(key: &Key, generation: u64) -> u64 {
    stable(&format!(
        "{}|{:?}|{}|{:?}|{generation}",
        key.0, key.1, key.2, key.3
    ))
}

/// The register's id of the address at `key` (its first one): what the population register's
/// documents give as `adresseIdentifikatorFraMatrikkelen`.
pub fn address_id(key: &Key) -> u64 {
    id_of(key_hash(key, 0))
}

/// Fifteen digits of the hash: no two of a national register's 2.6 million addresses share one
/// (the register's own ids are numbers too).
fn id_of(h: u64) -> u64 {
    100_000_000_000_000 + h % 900_000_000_000_000
}

/// The cadastral unit (gårdsnummer, bruksnummer) the address at `key` stands on.
pub fn cadastre(key: &Key) -> (i64, i64) {
    let h = key_hash(key, 0);
    match &key.1 {
        Some(_) => ((1 + h % 300) as i64, (1 + (h >> 8) % 50) as i64),
        None => (i64::from(key.2), (1 + (h >> 8) % 50) as i64),
    }
}

/// A street's code within its kommune (`adressekode`).
pub fn street_code(kommune: &str, street: &str) -> u64 {
    1000 + stable(&format!("{kommune}|{street}")) % 9000
}

/// What a change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Created.
    Nyoppretting,
    /// Changed.
    Oppdatering,
    /// Deleted.
    Sletting,
}

impl Kind {
    /// As the log names it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Nyoppretting => "Nyoppretting",
            Self::Oppdatering => "Oppdatering",
            Self::Sletting => "Sletting",
        }
    }
}

/// The domain classes the simulated log holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    /// A street address.
    Vegadresse,
    /// An address by cadastral number only.
    Matrikkeladresse,
    /// A cadastral unit.
    Matrikkelenhet,
}

impl Class {
    /// As the log names it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Vegadresse => "Vegadresse",
            Self::Matrikkeladresse => "Matrikkeladresse",
            Self::Matrikkelenhet => "Matrikkelenhet",
        }
    }

    /// The class a name denotes.
    pub fn parse(name: &str) -> Option<Self> {
        [
            Self::Vegadresse,
            Self::Matrikkeladresse,
            Self::Matrikkelenhet,
        ]
        .into_iter()
        .find(|c| c.as_str().eq_ignore_ascii_case(name.trim()))
    }
}

/// An address.
#[derive(Debug, Clone, PartialEq)]
pub struct Address {
    /// `adresseId`.
    pub id: u64,
    /// Its identity.
    pub key: Key,
    /// Postcode.
    pub postcode: String,
    /// Postal place.
    pub place: String,
    /// Gårdsnummer.
    pub gnr: i64,
    /// Bruksnummer.
    pub bnr: i64,
    /// Representation point, EPSG:4258, six decimals.
    pub north: f64,
    /// See `north`.
    pub east: f64,
    /// Last changed.
    pub updated: DateTime<Utc>,
    /// Deleted.
    pub removed: bool,
    /// Created by the register itself (no person or business is there): may be deleted.
    pub orphan: bool,
}

impl Address {
    /// The street's code within the kommune (`adressekode`); none for a matrikkeladresse.
    pub fn street_code(&self) -> Option<u64> {
        let (kommune, street, _, _) = &self.key;
        street.as_ref().map(|s| street_code(kommune, s))
    }

    /// The cadastral unit it stands on (`festenummer` and `seksjonsnummer` 0).
    pub fn unit_number(&self) -> (String, i64, i64) {
        (self.key.0.clone(), self.gnr, self.bnr)
    }
}

/// A cadastral unit (matrikkelenhet).
#[derive(Debug, Clone, PartialEq)]
pub struct CadastralUnit {
    /// `matrikkelenhetId`.
    pub id: u64,
    /// Kommunenummer.
    pub kommune: String,
    /// Gårdsnummer.
    pub gnr: i64,
    /// Bruksnummer.
    pub bnr: i64,
    /// `matrikkelenhetstype`.
    pub kind: &'static str,
    /// `bruksnavn`.
    pub name: Option<String>,
    /// Area in m².
    pub area: f64,
    /// `etableringsdato`.
    pub established: NaiveDate,
    /// Last changed.
    pub updated: DateTime<Utc>,
    /// Expired (`utgatt`): deleted from the log's view.
    pub removed: bool,
}

/// One entry of the change log.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// The change id.
    pub id: i64,
    /// What it did.
    pub kind: Kind,
    /// The changed object's class.
    pub class: Class,
    /// The changed object's id.
    pub object: u64,
    /// The object's kommune (for `kommunefilter`).
    pub kommune: String,
    /// When.
    pub at: DateTime<Utc>,
}

/// A page of the log.
#[derive(Debug)]
pub struct Page<'a> {
    /// The changes, in id order.
    pub changes: Vec<&'a Change>,
    /// The last id the page examined (the next cursor).
    pub last_examined: i64,
    /// Whether the log was read to its end.
    pub all_found: bool,
}

/// The most entries one request examines: a narrow filter answers with fewer changes and
/// `alleEndringerFunnet` false rather than reading the whole log.
const MAX_EXAMINED: usize = 50_000;

const UNIT_KINDS: [&str; 3] = ["Grunneiendom", "Grunneiendom", "Festegrunn"];
const FARM_NAMES: [&str; 6] = ["Nordre", "Søndre", "Haugen", "Bakken", "Lia", "Moen"];

/// The property register.
#[derive(Debug)]
pub struct Registry {
    addresses: HashMap<u64, Address>,
    by_key: HashMap<Key, u64>,
    address_ids: Vec<u64>,
    units: BTreeMap<u64, CadastralUnit>,
    unit_by_number: HashMap<(String, i64, i64), u64>,
    unit_ids: Vec<u64>,
    log: Vec<Change>,
    rng: SmallRng,
    next_orphan: u64,
}

impl Registry {
    /// The register holding `residences` (and their cadastral units), with an empty log.
    pub fn new<'a>(
        seed: u64,
        residences: impl IntoIterator<Item = &'a Residence>,
        now: DateTime<Utc>,
    ) -> Self {
        let mut out = Self {
            addresses: HashMap::new(),
            by_key: HashMap::new(),
            address_ids: Vec::new(),
            units: BTreeMap::new(),
            unit_by_number: HashMap::new(),
            unit_ids: Vec::new(),
            log: Vec::new(),
            rng: SmallRng::seed_from_u64(seed ^ 0x3A7E),
            next_orphan: 0,
        };
        for r in residences {
            out.add(r, false, now, false);
        }
        out
    }

    /// The newest change id (`findSisteEndringId`); before any change, the one before the first.
    pub fn head(&self) -> i64 {
        self.log.last().map_or(FIRST_CHANGE_ID - 1, |c| c.id)
    }

    /// Every address, deleted ones included.
    pub fn addresses(&self) -> impl Iterator<Item = &Address> {
        self.address_ids.iter().map(|id| &self.addresses[id])
    }

    /// An address by id.
    pub fn address(&self, id: u64) -> Option<&Address> {
        self.addresses.get(&id)
    }

    /// A cadastral unit by id.
    pub fn unit(&self, id: u64) -> Option<&CadastralUnit> {
        self.units.get(&id)
    }

    /// The cadastral units that are not expired, with ids after `after`, in id order, at most
    /// `max` (the bulk download's pages).
    pub fn units_after(&self, after: u64, max: usize) -> Vec<&CadastralUnit> {
        self.units
            .range(after.saturating_add(1)..)
            .map(|(_, u)| u)
            .filter(|u| !u.removed)
            .take(max)
            .collect()
    }

    /// The log after `after`: at most `max` changes of `classes` in `kommuner` (empty: all).
    pub fn changes_after(
        &self,
        after: i64,
        classes: &[Class],
        kommuner: &[String],
        max: usize,
    ) -> Page<'_> {
        let start = self.log.partition_point(|c| c.id <= after);
        let mut changes = Vec::new();
        let mut last_examined =
            after.max(self.log.get(start.wrapping_sub(1)).map_or(after, |c| c.id));
        for (examined, c) in self.log[start..].iter().enumerate() {
            if changes.len() == max || examined == MAX_EXAMINED {
                return Page {
                    changes,
                    last_examined,
                    all_found: false,
                };
            }
            last_examined = c.id;
            if classes.contains(&c.class) && (kommuner.is_empty() || kommuner.contains(&c.kommune))
            {
                changes.push(c);
            }
        }
        Page {
            changes,
            last_examined,
            all_found: true,
        }
    }

    /// Logs a change.
    fn log(&mut self, kind: Kind, class: Class, object: u64, kommune: &str, at: DateTime<Utc>) {
        let id = self.head() + 1 + i64::from(self.rng.random_range(0..3u8));
        // Times never go back, as ids do not.
        let at = self.log.last().map_or(at, |c| c.at.max(at));
        self.log.push(Change {
            id,
            kind,
            class,
            object,
            kommune: kommune.to_owned(),
            at,
        });
    }

    /// Adds the address at `r` unless the register has one with its identity (logging it when
    /// `logged`), and its cadastral unit. Returns its id.
    fn add(&mut self, r: &Residence, orphan: bool, at: DateTime<Utc>, logged: bool) -> u64 {
        let key: Key = (r.kommune.clone(), r.street.clone(), r.number, r.letter);
        if let Some(id) = self.by_key.get(&key) {
            return *id;
        }
        let h = key_hash(&key, if orphan { self.next_orphan } else { 0 });
        let id = id_of(h);
        let round = |x: f64| (x * 1e6).round() / 1e6;
        let (gnr, bnr) = cadastre(&key);
        let address = Address {
            id,
            key: key.clone(),
            postcode: r.postcode.clone(),
            place: r.place.clone(),
            gnr,
            bnr,
            north: round(58.0 + (h % 1_000_000) as f64 / 1_000_000.0 * 12.0),
            east: round(5.0 + ((h >> 20) % 1_000_000) as f64 / 1_000_000.0 * 25.0),
            updated: if logged {
                at
            } else {
                DateTime::from_timestamp(1_577_836_800, 0).unwrap_or(at)
            },
            removed: false,
            orphan,
        };
        let class = address_class(&address);
        self.add_unit(&r.kommune, gnr, bnr, at, logged);
        self.by_key.insert(key, id);
        self.addresses.insert(id, address);
        self.address_ids.push(id);
        if logged {
            self.log(Kind::Nyoppretting, class, id, &r.kommune, at);
        }
        id
    }

    fn add_unit(&mut self, kommune: &str, gnr: i64, bnr: i64, at: DateTime<Utc>, logged: bool) {
        let number = (kommune.to_owned(), gnr, bnr);
        if self.unit_by_number.contains_key(&number) {
            return;
        }
        let h = stable(&format!("{kommune}|{gnr}|{bnr}"));
        let id = 10_000_000 + h % 90_000_000_000;
        let unit = CadastralUnit {
            id,
            kommune: kommune.to_owned(),
            gnr,
            bnr,
            kind: UNIT_KINDS[(h % 3) as usize],
            name: h
                .is_multiple_of(4)
                .then(|| FARM_NAMES[((h >> 4) % 6) as usize].to_owned()),
            area: ((h >> 12) % 500_000) as f64 / 100.0 + 150.0,
            established: NaiveDate::from_ymd_opt(1950, 1, 1).unwrap_or_default()
                + Duration::days(((h >> 24) % 27_000) as i64),
            updated: at,
            removed: false,
        };
        self.unit_by_number.insert(number, id);
        self.units.insert(id, unit);
        self.unit_ids.push(id);
        if logged {
            self.log(Kind::Nyoppretting, Class::Matrikkelenhet, id, kommune, at);
        }
    }

    /// An address a person now lives at or a business is registered at: created if the
    /// register lacks it.
    pub fn observe(&mut self, r: &Residence, at: DateTime<Utc>) {
        self.add(r, false, at, true);
    }

    /// A random address that is not deleted (a few draws; `None` if none was found).
    fn pick_address(&mut self, orphan_only: bool) -> Option<u64> {
        (0..32).find_map(|_| {
            let id = *self
                .address_ids
                .get(self.rng.random_range(0..self.address_ids.len().max(1)))?;
            let a = &self.addresses[&id];
            (!a.removed && (a.orphan || !orphan_only)).then_some(id)
        })
    }

    fn pick_unit(&mut self) -> Option<u64> {
        (0..32).find_map(|_| {
            let id = *self
                .unit_ids
                .get(self.rng.random_range(0..self.unit_ids.len().max(1)))?;
            (!self.units[&id].removed).then_some(id)
        })
    }

    /// One change the register makes on its own.
    pub fn step(&mut self, at: DateTime<Utc>) {
        let roll = self.rng.random_range(0..100);
        match roll {
            0..=29 => {
                // A new address on the street of an existing one.
                let Some(base) = self.pick_address(false) else {
                    return;
                };
                let b = self.addresses[&base].clone();
                self.next_orphan += 1;
                let r = Residence {
                    kommune: b.key.0.clone(),
                    street: b.key.1.clone(),
                    number: 500 + (self.next_orphan % 9_000) as u16,
                    letter: None,
                    postcode: b.postcode.clone(),
                    place: b.place.clone(),
                    from: at,
                    to: None,
                };
                self.add(&r, true, at, true);
            }
            30..=64 => {
                let Some(id) = self.pick_address(false) else {
                    return;
                };
                let moved = self.rng.random_bool(0.7);
                let step = f64::from(self.rng.random_range(-500..500i32)) / 1e6;
                let a = self.addresses.get_mut(&id).expect("picked");
                if moved {
                    a.north = ((a.north + step) * 1e6).round() / 1e6;
                } else if let Some(i) = kommuner::index_of(&a.key.0) {
                    // A postal place renamed (as in a merger of post offices).
                    let k = &kommuner::KOMMUNER[i];
                    a.place = format!(
                        "{} {}",
                        k.name.to_uppercase(),
                        ["NORD", "SØR", "SENTRUM"][(id % 3) as usize]
                    );
                }
                a.updated = at;
                let (class, kommune) = (address_class(a), a.key.0.clone());
                self.log(Kind::Oppdatering, class, id, &kommune, at);
            }
            65..=79 => {
                let Some(id) = self.pick_address(true) else {
                    return;
                };
                let a = self.addresses.get_mut(&id).expect("picked");
                a.removed = true;
                a.updated = at;
                let (class, kommune) = (address_class(a), a.key.0.clone());
                self.log(Kind::Sletting, class, id, &kommune, at);
            }
            80..=92 => {
                let Some(id) = self.pick_unit() else {
                    return;
                };
                let area = f64::from(self.rng.random_range(15_000..5_000_000u32)) / 100.0;
                let u = self.units.get_mut(&id).expect("picked");
                u.area = area;
                u.updated = at;
                let kommune = u.kommune.clone();
                self.log(Kind::Oppdatering, Class::Matrikkelenhet, id, &kommune, at);
            }
            _ => {
                // A unit divided off an existing farm, or an empty one expiring.
                let Some(id) = self.pick_unit() else {
                    return;
                };
                let u = self.units[&id].clone();
                // Addresses stand on bruksnummer under 100; units divided off have 100 and up,
                // so only those can expire with no address left on them.
                let used = u.bnr < 100;
                if used || self.rng.random_bool(0.6) {
                    self.next_orphan += 1;
                    let bnr = 100 + (self.next_orphan % 5_000) as i64;
                    self.add_unit(&u.kommune, u.gnr, bnr, at, true);
                } else {
                    let unit = self.units.get_mut(&id).expect("picked");
                    unit.removed = true;
                    unit.updated = at;
                    self.log(Kind::Sletting, Class::Matrikkelenhet, id, &u.kommune, at);
                }
            }
        }
    }
}

/// The class of an address.
pub fn address_class(a: &Address) -> Class {
    if a.key.1.is_some() {
        Class::Vegadresse
    } else {
        Class::Matrikkeladresse
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn residence(kommune: &str, street: Option<&str>, number: u16) -> Residence {
        Residence {
            kommune: kommune.into(),
            street: street.map(str::to_owned),
            number,
            letter: None,
            postcode: "7500".into(),
            place: "STJØRDAL".into(),
            from: Utc::now(),
            to: None,
        }
    }

    #[test]
    fn the_log_grows_with_ids_and_times_that_never_go_back_and_deletes_only_what_nobody_uses() {
        let now = Utc::now();
        let start = [
            residence("5035", Some("Torget"), 1),
            residence("5035", None, 12),
            residence("0301", Some("Storgata"), 3),
        ];
        let mut r = Registry::new(1, &start, now);
        assert_eq!(r.head(), FIRST_CHANGE_ID - 1);
        let used: Vec<u64> = r.addresses().map(|a| a.id).collect();
        for i in 0..2_000 {
            r.step(now + Duration::seconds(i));
        }
        r.observe(&residence("5035", Some("Torget"), 2), now);
        assert!(
            r.log
                .windows(2)
                .all(|w| w[0].id < w[1].id && w[0].at <= w[1].at)
        );
        for id in used {
            assert!(
                !r.address(id).unwrap().removed,
                "an address in use is never deleted"
            );
        }
        let kinds = |k: Kind| r.log.iter().filter(|c| c.kind == k).count();
        assert!(
            kinds(Kind::Nyoppretting) > 0
                && kinds(Kind::Oppdatering) > 0
                && kinds(Kind::Sletting) > 0
        );
        // A filtered page examines past what it returns.
        let page = r.changes_after(0, &[Class::Matrikkeladresse], &["0301".into()], 10);
        assert!(page.all_found);
        assert_eq!(page.last_examined, r.head());
        let all = r.changes_after(
            0,
            &[
                Class::Vegadresse,
                Class::Matrikkeladresse,
                Class::Matrikkelenhet,
            ],
            &[],
            10,
        );
        assert_eq!(all.changes.len(), 10);
        assert!(!all.all_found);
        assert_eq!(all.last_examined, all.changes[9].id);
        let rest = r.changes_after(all.last_examined, &[Class::Vegadresse], &[], 1_000_000);
        assert!(rest.changes.iter().all(|c| c.id > all.last_examined));
    }
}
