//! The deterministic synthetic population: households drawn from a seed, persons addressable by
//! index and by identity number without keeping their documents in memory.
//!
//! Each person costs a few bytes of [`Core`]; the full [`PersonState`] of an unchanged person is
//! recomputed from its household's seed when asked for.

use std::collections::HashMap;

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::kommuner::{self, KOMMUNER};
use crate::names;
use crate::person::{PersonState, Residence};

/// The date the base population describes; events happen after it.
pub fn reference_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0)
        .single()
        .expect("a valid time")
}

/// What the simulator keeps for every person.
#[derive(Debug, Clone, Copy)]
pub struct Core {
    /// The household the person belongs to (base persons), or `u32::MAX` for persons created by
    /// events.
    pub household: u32,
    /// Slot within the household: 0 head, 1 partner, 2.. children.
    pub slot: u8,
    /// Identity number, as a number.
    pub id: u64,
}

/// A household's shape, drawn once at start.
#[derive(Debug, Clone, Copy)]
struct Household {
    first: u32,
    head_age: u16,
    partner: bool,
    children: u8,
    d_number: bool,
}

/// Assigns unique identity numbers: a per-birth-date counter of individual numbers.
#[derive(Debug, Default)]
pub struct IdAllocator {
    next: HashMap<NaiveDate, u16>,
}

impl IdAllocator {
    /// The next free synthetic (month + 80) number for a birth date; D-numbers add 40 to the day.
    pub fn allocate(&mut self, birth: NaiveDate, d_number: bool) -> String {
        let lo: u16 = match birth.year() {
            y if y >= 2000 => 500,
            y if y < 1900 => 500,
            _ => 0,
        };
        let counter = self.next.entry(birth).or_insert(lo);
        // Past the century's block the counter goes on into the other block: still unique, as
        // the synthetic scheme is checked only for its check digits.
        while *counter < lo + 1000 {
            let individual = *counter % 1000;
            *counter += 1;
            let day = birth.day() + if d_number { 40 } else { 0 };
            let nine = format!(
                "{:02}{:02}{:02}{:03}",
                day,
                birth.month() + 80,
                birth.year() % 100,
                individual
            );
            if let Some(id) = transform::ident::complete(&nine) {
                return id;
            }
        }
        // Every number of that date is taken: the person gets the next day's.
        self.allocate(birth + Duration::days(1), d_number)
    }
}

/// The base population.
#[derive(Debug)]
pub struct Population {
    seed: u64,
    households: Vec<Household>,
    /// Every person, base ones first, then those created by events.
    pub cores: Vec<Core>,
    /// Identity number to index.
    pub by_id: HashMap<u64, u32>,
    /// Number of base persons.
    pub base_len: u32,
    /// Allocator shared with events (births, immigration).
    pub ids: IdAllocator,
}

fn household_rng(seed: u64, h: u32) -> SmallRng {
    SmallRng::seed_from_u64(seed ^ (u64::from(h).wrapping_mul(0x9E37_79B9_7F4A_7C15)))
}

/// Draws an adult's age from a rough Norwegian age pyramid (18..100).
fn adult_age(rng: &mut SmallRng) -> u16 {
    let band: u32 = rng.random_range(0..100);
    match band {
        0..=17 => rng.random_range(18..30),
        18..=52 => rng.random_range(30..50),
        53..=80 => rng.random_range(50..68),
        81..=95 => rng.random_range(68..82),
        _ => rng.random_range(82..100),
    }
}

fn birth_date(rng: &mut SmallRng, age: u16) -> NaiveDate {
    let year = reference_time().year() - 1 - i32::from(age);
    let day = rng.random_range(0..365);
    NaiveDate::from_ymd_opt(year, 1, 1).expect("a valid date") + Duration::days(day)
}

impl Population {
    /// Draws `persons` persons from `seed`.
    pub fn new(persons: u32, seed: u64) -> Self {
        let mut households = Vec::new();
        let mut cores = Vec::with_capacity(persons as usize);
        let mut ids = IdAllocator::default();
        let mut h = 0u32;
        while (cores.len() as u32) < persons {
            let mut rng = household_rng(seed, h);
            let head_age = adult_age(&mut rng);
            let d_number = rng.random_bool(0.02);
            let partner = !d_number && rng.random_bool(if head_age < 25 { 0.3 } else { 0.62 });
            let children = if d_number || !(22..62).contains(&head_age) {
                0
            } else {
                [0u8, 0, 1, 1, 2, 2, 2, 3, 3, 4][rng.random_range(0..10)]
            };
            let first = cores.len() as u32;
            let size = (1 + u32::from(partner) + u32::from(children)).min(persons - first);
            let hh = Household {
                first,
                head_age,
                partner,
                children,
                d_number,
            };
            for slot in 0..size as u8 {
                let (birth, _, _) = Self::member_basics(seed, h, &hh, slot);
                let id = ids.allocate(birth, d_number);
                cores.push(Core {
                    household: h,
                    slot,
                    id: id.parse().expect("digits"),
                });
            }
            households.push(hh);
            h += 1;
        }
        let by_id = cores
            .iter()
            .enumerate()
            .map(|(i, c)| (c.id, i as u32))
            .collect();
        Self {
            seed,
            households,
            base_len: cores.len() as u32,
            cores,
            by_id,
            ids,
        }
    }

    /// Birth date, sex and age of a household member, from the household's own random stream.
    fn member_basics(seed: u64, h: u32, hh: &Household, slot: u8) -> (NaiveDate, bool, u16) {
        let mut rng = household_rng(seed, h.wrapping_add(0x5151_0000));
        let head_birth = birth_date(&mut rng, hh.head_age);
        let head_female = rng.random_bool(0.52);
        let partner_age = (i32::from(hh.head_age) + rng.random_range(-4..=4)).max(18) as u16;
        let partner_birth = birth_date(&mut rng, partner_age);
        match slot {
            0 => (head_birth, head_female, hh.head_age),
            1 => (partner_birth, !head_female, partner_age),
            n => {
                let mut crng = household_rng(seed, h.wrapping_add(0x7777_0000 + u32::from(n)));
                let max = hh.head_age.saturating_sub(20).max(1);
                let age = hh
                    .head_age
                    .saturating_sub(crng.random_range(20..42))
                    .min(max.min(24));
                (birth_date(&mut crng, age), crng.random_bool(0.49), age)
            }
        }
    }

    /// Identity number of a person by index.
    pub fn id_of(&self, idx: u32) -> String {
        format!("{:011}", self.cores[idx as usize].id)
    }

    /// The index of an identity number.
    pub fn index_of(&self, id: &str) -> Option<u32> {
        id.parse::<u64>()
            .ok()
            .and_then(|n| self.by_id.get(&n).copied())
    }

    /// A random residence in the given kommune.
    pub fn residence(rng: &mut SmallRng, kommune: usize, from: DateTime<Utc>) -> Residence {
        let k = &KOMMUNER[kommune];
        let matrikkel = rng.random_bool(0.05);
        let street = (!matrikkel).then(|| {
            format!(
                "{}{}",
                names::STREET_STEM[rng.random_range(0..names::STREET_STEM.len())],
                names::STREET_END[rng.random_range(0..names::STREET_END.len())]
            )
        });
        Residence {
            kommune: k.number.to_owned(),
            street,
            number: rng.random_range(1..180),
            letter: rng
                .random_bool(0.1)
                .then(|| ['A', 'B', 'C'][rng.random_range(0..3)]),
            postcode: format!("{:04}", k.postcode_base + rng.random_range(0..20)),
            place: k.name.to_uppercase(),
            from,
            to: None,
        }
    }

    /// The full base state of a base person.
    pub fn base_state(&self, idx: u32) -> PersonState {
        let core = self.cores[idx as usize];
        let hh = self.households[core.household as usize];
        let members = |slot: u8| {
            let i = hh.first + u32::from(slot);
            (i < self.base_len && self.cores[i as usize].household == core.household)
                .then(|| self.id_of(i))
        };
        let (birth, female, age) = Self::member_basics(self.seed, core.household, &hh, core.slot);
        let mut hrng = household_rng(self.seed, core.household.wrapping_add(0x3333_0000));
        let family = names::FAMILY[hrng.random_range(0..names::FAMILY.len())].to_owned();
        let kommune = kommuner::draw(hrng.random());
        let protection = match hrng.random_range(0..10_000) {
            0..=9 => "strengtFortrolig",
            10..=39 => "fortrolig",
            40..=44 => "klientadresse",
            _ => "ugradert",
        };
        let moved_years = hrng
            .random_range(0..20)
            .min(i64::from(age.max(1)) - 1)
            .max(0);
        let moved =
            reference_time() - Duration::days(moved_years * 365 + hrng.random_range(1..365));
        let current = Self::residence(
            &mut hrng,
            kommune,
            moved.max(birth.and_hms_opt(0, 0, 0).expect("midnight").and_utc()),
        );
        let mut residences = Vec::new();
        if hrng.random_bool(0.4)
            && current.from
                > birth.and_hms_opt(0, 0, 0).expect("midnight").and_utc() + Duration::days(400)
        {
            let earlier_from = current.from - Duration::days(hrng.random_range(200..3000));
            let k = kommuner::draw(hrng.random());
            let mut earlier = Self::residence(&mut hrng, k, earlier_from);
            earlier.to = Some(current.from);
            residences.push(earlier);
        }
        residences.push(current);
        let mut prng = household_rng(self.seed, idx.wrapping_add(0x1111_0000));
        let given_list = if female { names::FEMALE } else { names::MALE };
        let given = given_list[prng.random_range(0..given_list.len())].to_owned();
        let middle = prng
            .random_bool(0.15)
            .then(|| names::FAMILY[prng.random_range(0..names::FAMILY.len())].to_owned());
        let born_at = birth.and_hms_opt(0, 0, 0).expect("midnight").and_utc();
        let mut statuses = vec![("bosatt".to_owned(), born_at)];
        let mut death = None;
        let mut emigrated = None;
        let roll: u32 = prng.random_range(0..1000);
        if hh.d_number {
            statuses = vec![("ikkeBosatt".to_owned(), born_at)];
            residences.clear();
        } else if roll < 10 + u32::from(age / 10) {
            let d = reference_time() - Duration::days(prng.random_range(1..2000));
            statuses.push(("doed".to_owned(), d));
            death = Some(d.date_naive());
        } else if roll < 40 && age >= 18 {
            let d = reference_time() - Duration::days(prng.random_range(1..2000));
            if let Some(r) = residences.last_mut() {
                r.to = Some(d.max(r.from));
            }
            statuses.push(("utflyttet".to_owned(), d));
            emigrated = Some((
                names::COUNTRIES[prng.random_range(0..names::COUNTRIES.len())].to_owned(),
                d.date_naive(),
            ));
        }
        let is_child = core.slot >= 2;
        let (mother, father) = if is_child {
            let head_female = Self::member_basics(self.seed, core.household, &hh, 0).1;
            let (head, partner) = (members(0), members(1));
            if head_female {
                (head, partner)
            } else {
                (partner, head)
            }
        } else {
            (None, None)
        };
        let spouse = match core.slot {
            0 if hh.partner => members(1),
            1 => members(0),
            _ => None,
        };
        let children = if core.slot < 2 {
            (2..2 + hh.children).filter_map(members).collect()
        } else {
            Vec::new()
        };
        PersonState {
            id: self.id_of(idx),
            d_number: hh.d_number,
            birth,
            birth_kommune: (!hh.d_number).then(|| KOMMUNER[kommune].number.to_owned()),
            female,
            given,
            middle,
            family,
            earlier_names: Vec::new(),
            statuses,
            death,
            residences,
            protection: protection.to_owned(),
            citizenship: if hh.d_number {
                names::COUNTRIES[prng.random_range(0..names::COUNTRIES.len())].to_owned()
            } else {
                "NOR".to_owned()
            },
            marital: if spouse.is_some() { "gift" } else { "ugift" }.to_owned(),
            spouse,
            mother,
            father,
            children,
            emigrated,
            immigrated: hh.d_number.then(|| {
                (
                    "POL".to_owned(),
                    reference_time().date_naive() - Duration::days(100),
                )
            }),
        }
    }

    /// Adds a person created by an event; returns its index.
    pub fn push_new(&mut self, birth: NaiveDate, d_number: bool) -> (u32, String) {
        let id = self.ids.allocate(birth, d_number);
        let n: u64 = id.parse().expect("digits");
        let idx = self.cores.len() as u32;
        self.cores.push(Core {
            household: u32::MAX,
            slot: 0,
            id: n,
        });
        self.by_id.insert(n, idx);
        (idx, id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_valid() {
        let a = Population::new(2_000, 7);
        let b = Population::new(2_000, 7);
        assert_eq!(a.base_len, 2_000);
        for i in (0..2_000).step_by(37) {
            let (sa, sb) = (a.base_state(i), b.base_state(i));
            assert_eq!(sa, sb);
            assert!(transform::ident::validate(&sa.id).is_ok(), "{}", sa.id);
            assert_eq!(a.index_of(&sa.id), Some(i));
        }
        assert_eq!(a.by_id.len(), 2_000, "identity numbers are unique");
    }
}
