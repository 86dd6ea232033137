//! The live stream of register changes: births, deaths, moves, name changes, marriages,
//! emigration, immigration, protection changes, and events regsync does not interpret.

use chrono::{DateTime, Duration, Utc};
use rand::Rng;
use rand::rngs::SmallRng;

use crate::kommuner;
use crate::names;
use crate::person::PersonState;
use crate::population::Population;
use crate::world::World;

/// Applies one random change to the world at time `at`; returns the sequence numbers written.
pub fn step(world: &mut World, rng: &mut SmallRng, at: DateTime<Utc>) -> Vec<i64> {
    let roll: u32 = rng.random_range(0..100);
    for _ in 0..20 {
        let person = rng.random_range(0..world.population.cores.len() as u32);
        let Some(state) = world.current(person) else {
            continue;
        };
        let alive_resident = state.status() == "bosatt";
        let written = match roll {
            0..=29 if alive_resident => moved(world, rng, person, state, at, false),
            30..=44 if alive_resident => moved(world, rng, person, state, at, true),
            45..=51 if alive_resident => renamed(world, rng, person, state, at),
            52..=61
                if alive_resident
                    && state.female
                    && state.age_at(at) >= 20
                    && state.age_at(at) <= 45 =>
            {
                born(world, rng, person, state, at)
            }
            62..=68 if alive_resident && state.age_at(at) >= 60 => {
                died(world, rng, person, state, at)
            }
            69..=74 if alive_resident && state.age_at(at) >= 18 && state.spouse.is_none() => {
                married(world, rng, person, state, at)
            }
            75..=79 if alive_resident && state.age_at(at) >= 18 => {
                emigrated(world, rng, person, state, at)
            }
            80..=86 => immigrated(world, rng, at),
            87..=89 if alive_resident => protected(world, rng, person, state, at),
            90..=99 => {
                // An event regsync keeps but does not interpret: the document is unchanged.
                vec![world.record(person, state, "endringIVergemaal", at)]
            }
            _ => continue,
        };
        return written;
    }
    Vec::new()
}

impl PersonState {
    /// Age in whole years at a time.
    pub fn age_at(&self, at: DateTime<Utc>) -> i64 {
        (at.date_naive() - self.birth).num_days() / 365
    }
}

fn moved(
    world: &mut World,
    rng: &mut SmallRng,
    person: u32,
    mut s: PersonState,
    at: DateTime<Utc>,
    other_kommune: bool,
) -> Vec<i64> {
    let kommune = match (other_kommune, s.residence()) {
        (false, Some(r)) => kommuner::index_of(&r.kommune).unwrap_or(0),
        _ => kommuner::draw(rng.random()),
    };
    s.end_residence(at);
    s.residences.push(Population::residence(rng, kommune, at));
    vec![world.record(person, s, "endringIBostedsadresse", at)]
}

fn renamed(
    world: &mut World,
    rng: &mut SmallRng,
    person: u32,
    mut s: PersonState,
    at: DateTime<Utc>,
) -> Vec<i64> {
    let from = s.statuses.first().map_or(at, |(_, t)| *t);
    s.earlier_names
        .push((s.given.clone(), s.family.clone(), from, at));
    s.family = names::FAMILY[rng.random_range(0..names::FAMILY.len())].to_owned();
    vec![world.record(person, s, "endringINavn", at)]
}

fn born(
    world: &mut World,
    rng: &mut SmallRng,
    mother: u32,
    mut m: PersonState,
    at: DateTime<Utc>,
) -> Vec<i64> {
    let birth = at.date_naive();
    let (child, id) = world.population.push_new(birth, false);
    let female = rng.random_bool(0.49);
    let given = if female { names::FEMALE } else { names::MALE };
    let mut residence = m
        .residence()
        .cloned()
        .unwrap_or_else(|| Population::residence(rng, 0, at));
    residence.from = at;
    residence.to = None;
    let given = given[rng.random_range(0..given.len())].to_owned();
    let mut baby = PersonState::newcomer(
        id.clone(),
        birth,
        female,
        given,
        m.family.clone(),
        residence,
        at,
    );
    baby.birth_kommune = baby.residences.first().map(|r| r.kommune.clone());
    baby.protection.clone_from(&m.protection);
    baby.mother = Some(m.id.clone());
    baby.father.clone_from(&m.spouse);
    let first = world.record(child, baby, "personErOpprettet", at);
    m.children.push(id);
    let second = world.record(mother, m, "endringIFamilierelasjon", at);
    vec![first, second]
}

fn died(
    world: &mut World,
    _rng: &mut SmallRng,
    person: u32,
    mut s: PersonState,
    at: DateTime<Utc>,
) -> Vec<i64> {
    s.statuses.push(("doed".to_owned(), at));
    s.death = Some(at.date_naive());
    vec![world.record(person, s, "personErDoed", at)]
}

fn married(
    world: &mut World,
    rng: &mut SmallRng,
    person: u32,
    mut s: PersonState,
    at: DateTime<Utc>,
) -> Vec<i64> {
    for _ in 0..20 {
        let other = rng.random_range(0..world.population.cores.len() as u32);
        let Some(mut o) = world.current(other) else {
            continue;
        };
        if other == person || o.status() != "bosatt" || o.spouse.is_some() || o.age_at(at) < 18 {
            continue;
        }
        s.spouse = Some(o.id.clone());
        o.spouse = Some(s.id.clone());
        s.marital = "gift".to_owned();
        o.marital = "gift".to_owned();
        let first = world.record(person, s, "endringISivilstand", at);
        let second = world.record(other, o, "endringISivilstand", at);
        return vec![first, second];
    }
    Vec::new()
}

fn emigrated(
    world: &mut World,
    rng: &mut SmallRng,
    person: u32,
    mut s: PersonState,
    at: DateTime<Utc>,
) -> Vec<i64> {
    s.end_residence(at);
    s.statuses.push(("utflyttet".to_owned(), at));
    s.emigrated = Some((
        names::COUNTRIES[rng.random_range(0..names::COUNTRIES.len())].to_owned(),
        at.date_naive(),
    ));
    vec![world.record(person, s, "endringIUtflytting", at)]
}

fn immigrated(world: &mut World, rng: &mut SmallRng, at: DateTime<Utc>) -> Vec<i64> {
    let age = rng.random_range(18..60);
    let birth = at.date_naive() - Duration::days(age * 365 + rng.random_range(0..365));
    let (person, id) = world.population.push_new(birth, false);
    let female = rng.random_bool(0.5);
    let given = if female { names::FEMALE } else { names::MALE };
    let country = names::COUNTRIES[rng.random_range(0..names::COUNTRIES.len())].to_owned();
    let kommune = kommuner::draw(rng.random());
    let residence = Population::residence(rng, kommune, at);
    let given = given[rng.random_range(0..given.len())].to_owned();
    let family = names::FAMILY[rng.random_range(0..names::FAMILY.len())].to_owned();
    let mut s = PersonState::newcomer(id, birth, female, given, family, residence, at);
    s.citizenship.clone_from(&country);
    s.immigrated = Some((country, at.date_naive()));
    vec![world.record(person, s, "endringIInnflytting", at)]
}

fn protected(
    world: &mut World,
    rng: &mut SmallRng,
    person: u32,
    mut s: PersonState,
    at: DateTime<Utc>,
) -> Vec<i64> {
    // The spec's spelling; the upper-case spelling of migrated data is covered by golden tests.
    s.protection = match rng.random_range(0..6) {
        0 | 1 => "strengtFortrolig",
        2 | 3 => "fortrolig",
        4 => "klientadresse",
        _ => "ugradert",
    }
    .to_owned();
    vec![world.record(person, s, "endringIAdressebeskyttelse", at)]
}
