//! Versions of a person for `person_history`.
//!
//! A seeded person's history comes from the document itself: every change of residence or of
//! status starts a version (the register's `gyldighetstidspunkt`), so a lake seeded today still
//! answers "who lived in Stjørdal on 1 March 2021". After the seed, each feed event that changes a
//! person starts a version at the event's `ajourholdstidspunkt`.

use std::collections::HashMap;

use super::document::{residence, text, timestamp, versions, withholds_address};
use crate::json::Node;
use crate::model::{Person, PersonVersion};
use chrono::{DateTime, NaiveTime, Utc};

/// The start of a day, in UTC.
fn day_start(d: chrono::NaiveDate) -> DateTime<Utc> {
    d.and_time(NaiveTime::MIN).and_utc()
}

/// The element version in force at `at`: the latest whose `gyldighetstidspunkt` is not after it.
/// An element version with its validity: (from, until, version).
type Dated<'a, N> = (DateTime<Utc>, Option<DateTime<Utc>>, &'a N);

/// The element version in force at `at`: the latest that began by then and had not ended.
fn in_force<'a, N: Node>(entries: &[Dated<'a, N>], at: DateTime<Utc>) -> Option<&'a N> {
    entries
        .iter()
        .filter(|(from, until, _)| *from <= at && until.is_none_or(|u| u > at))
        .max_by_key(|(from, _, _)| *from)
        .map(|(_, _, v)| *v)
}

fn dated<'a, N: Node>(doc: &'a N, element: &str) -> Vec<Dated<'a, N>> {
    versions(doc, element)
        .into_iter()
        .filter_map(|v| {
            let from = timestamp(v, "gyldighetstidspunkt")
                .or_else(|| timestamp(v, "ajourholdstidspunkt"))?;
            Some((from, timestamp(v, "opphoerstidspunkt"), v))
        })
        .collect()
}

/// The versions of a seeded person: one per change of residence or status in the document's own
/// history, the last one open. `person` is the document's normalised current state.
pub fn from_document<N: Node>(person: &Person, doc: &N, sequence: i64) -> Vec<PersonVersion> {
    let born = person.birth_date.map(day_start);
    let residences = if withholds_address(&person.address_protection) {
        Vec::new()
    } else {
        dated(doc, "bostedsadresse")
    };
    let statuses = dated(doc, "status");
    let mut starts: Vec<DateTime<Utc>> = residences
        .iter()
        .chain(&statuses)
        .flat_map(|(from, until, _)| std::iter::once(*from).chain(*until))
        .collect();
    starts.extend(born);
    starts.sort();
    starts.dedup();
    // Nothing is known before birth; a document without dates gets one version from birth (or
    // from the beginning of time when even that is unknown).
    let first = born.unwrap_or(DateTime::<Utc>::MIN_UTC);
    starts.retain(|t| *t >= first);
    if starts.is_empty() {
        starts.push(first);
    }
    let mut out: Vec<PersonVersion> = Vec::with_capacity(starts.len());
    let last = starts.len() - 1;
    for (i, from) in starts.iter().enumerate() {
        let mut state = person.clone();
        if i < last {
            state.address = in_force(&residences, *from)
                .map(residence)
                .unwrap_or_default();
            state.status = in_force(&statuses, *from).and_then(|s| text(s, "status"));
        }
        if out.last().is_some_and(|prev| prev.person == state) {
            continue;
        }
        if let Some(prev) = out.last_mut() {
            prev.valid_to = Some(*from);
        }
        out.push(PersonVersion {
            person: state,
            sequence,
            valid_from: *from,
            valid_to: None,
        });
    }
    out
}

/// Chains feed versions: within each person, in the given order, a version ends where the next
/// begins. The last version of each person stays open.
pub fn chain(mut versions: Vec<PersonVersion>) -> Vec<PersonVersion> {
    let mut next_start: HashMap<String, DateTime<Utc>> = HashMap::new();
    for v in versions.iter_mut().rev() {
        v.valid_to = next_start.get(&v.person.person_id).copied();
        next_start.insert(v.person.person_id.clone(), v.valid_from);
    }
    versions
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn version(id: &str, day: u32) -> PersonVersion {
        PersonVersion {
            person: Person {
                person_id: id.into(),
                ..Person::default()
            },
            sequence: i64::from(day),
            valid_from: Utc.with_ymd_and_hms(2024, 1, day, 0, 0, 0).unwrap(),
            valid_to: None,
        }
    }

    #[test]
    fn chain_closes_all_but_the_last_version_of_each_person() {
        let out = chain(vec![version("a", 1), version("b", 2), version("a", 3)]);
        assert_eq!(out[0].valid_to, Some(out[2].valid_from));
        assert_eq!(out[1].valid_to, None);
        assert_eq!(out[2].valid_to, None);
    }
}
