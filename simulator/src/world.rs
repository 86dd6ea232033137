//! The simulated register: the base population, every version that events produced, and the
//! feed. Documents are rendered on request; only changed persons' states are kept.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};

use crate::person::PersonState;
use crate::population::Population;

/// One feed entry.
#[derive(Debug, Clone)]
pub struct FeedEvent {
    /// Sequence number, from 1.
    pub seq: i64,
    /// The person's index.
    pub person: u32,
    /// The person document version the event produced.
    pub version: u32,
    /// `hendelsetype`.
    pub event_type: &'static str,
    /// When it happened.
    pub at: DateTime<Utc>,
}

/// A changed person's versions after the base one: (sequence, state).
type Versions = Vec<(i64, PersonState)>;

/// The whole simulated register.
#[derive(Debug)]
pub struct World {
    /// The base population.
    pub population: Population,
    /// Versions produced by events, per person index.
    pub changes: HashMap<u32, Versions>,
    /// The feed, in sequence order.
    pub feed: Vec<FeedEvent>,
}

/// A document identifier: the person's index and version, as 32 hex characters.
pub fn document_id(person: u32, version: u32) -> String {
    format!("{person:016x}{version:016x}")
}

/// Parses a document identifier.
pub fn parse_document_id(id: &str) -> Option<(u32, u32)> {
    if id.len() != 32 {
        return None;
    }
    let person = u64::from_str_radix(&id[..16], 16).ok()?;
    let version = u64::from_str_radix(&id[16..], 16).ok()?;
    Some((u32::try_from(person).ok()?, u32::try_from(version).ok()?))
}

impl World {
    /// A world of `persons` base persons drawn from `seed`, with an empty feed.
    pub fn new(persons: u32, seed: u64) -> Self {
        Self {
            population: Population::new(persons, seed),
            changes: HashMap::new(),
            feed: Vec::new(),
        }
    }

    /// The latest sequence number (0 before any event).
    pub fn head(&self) -> i64 {
        self.feed.last().map_or(0, |e| e.seq)
    }

    /// The oldest sequence number still served when the register keeps only the newest
    /// `retain` entries, or `None` while nothing has been deleted (no limit, or `head <= retain`).
    /// The entries stay in memory for truth queries; the register's paths treat older ones as
    /// deleted.
    pub fn oldest_retained(&self, retain: Option<u64>) -> Option<i64> {
        let keep = i64::try_from(retain?).unwrap_or(i64::MAX);
        let head = self.head();
        (head > keep).then(|| head - keep + 1)
    }

    /// A person's state at a version (0 is the base; persons created by events start at 1).
    pub fn state(&self, person: u32, version: u32) -> Option<PersonState> {
        if version == 0 {
            return (person < self.population.base_len).then(|| self.population.base_state(person));
        }
        self.changes
            .get(&person)?
            .get(version as usize - 1)
            .map(|(_, s)| s.clone())
    }

    /// The latest version of a person.
    pub fn latest_version(&self, person: u32) -> u32 {
        self.changes.get(&person).map_or(0, |v| v.len() as u32)
    }

    /// The version of a person in force at sequence `seq`, or `None` if it did not exist yet.
    pub fn version_at(&self, person: u32, seq: i64) -> Option<u32> {
        let changed = self
            .changes
            .get(&person)
            .map_or(0, |v| v.partition_point(|(s, _)| *s <= seq) as u32);
        if changed == 0 && person >= self.population.base_len {
            return None;
        }
        Some(changed)
    }

    /// The number of persons that existed at `seq` (persons are numbered in order of creation).
    pub fn persons_at(&self, seq: i64) -> u32 {
        let born_after = self
            .feed
            .iter()
            .rev()
            .take_while(|e| e.seq > seq)
            .filter(|e| e.version == 1 && e.person >= self.population.base_len)
            .count();
        self.population.cores.len() as u32 - born_after as u32
    }

    /// Records a new version of a person, produced by a new feed entry.
    pub fn record(
        &mut self,
        person: u32,
        state: PersonState,
        event_type: &'static str,
        at: DateTime<Utc>,
    ) -> i64 {
        let seq = self.head() + 1;
        let versions = self.changes.entry(person).or_default();
        versions.push((seq, state));
        let version = versions.len() as u32;
        self.feed.push(FeedEvent {
            seq,
            person,
            version,
            event_type,
            at,
        });
        seq
    }

    /// The current state of every person, for truth checks: (index, state).
    pub fn current(&self, person: u32) -> Option<PersonState> {
        self.state(person, self.latest_version(person))
    }

    /// Who a cohort list should hold: persons whose residence kommune and status match, born in
    /// the range, now (`as_of: None`) or on a date. Strengt fortrolig persons count (the list
    /// holds them without an address).
    pub fn cohort(
        &self,
        kommune: &str,
        from: NaiveDate,
        to: NaiveDate,
        status: Option<&str>,
        as_of: Option<DateTime<Utc>>,
    ) -> Vec<String> {
        let mut out = Vec::new();
        for person in 0..self.population.cores.len() as u32 {
            let Some(state) = self.current(person) else {
                continue;
            };
            if state.birth < from || state.birth > to {
                continue;
            }
            let state = match as_of {
                None => state,
                Some(at) => {
                    // The version in force at that time: the last change by then, else the base.
                    let changed = self.changes.get(&person).and_then(|vs| {
                        vs.iter()
                            .rev()
                            .find(|(seq, _)| self.feed[*seq as usize - 1].at <= at)
                            .map(|(_, s)| s.clone())
                    });
                    match changed {
                        Some(s) => s,
                        None if person < self.population.base_len => {
                            self.population.base_state(person)
                        }
                        None => continue,
                    }
                }
            };
            // The register withholds a strengt fortrolig person's kommune; so does the lake, in
            // every version once the person is protected.
            if state.strictly_protected()
                || self.current(person).is_some_and(|c| c.strictly_protected())
            {
                continue;
            }
            let at = as_of.unwrap_or(DateTime::<Utc>::MAX_UTC);
            let place = if as_of.is_some() {
                state.residence_at(at)
            } else {
                state.residence()
            };
            let st = if as_of.is_some() {
                state.status_at(at)
            } else {
                Some(state.status())
            };
            if place.is_some_and(|r| r.kommune == kommune) && status.is_none_or(|s| st == Some(s)) {
                out.push(state.id.clone());
            }
        }
        out.sort();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn world_with(entries: usize) -> World {
        let mut world = World::new(20, 5);
        let state = world.current(0).expect("a base person");
        for _ in 0..entries {
            world.record(0, state.clone(), "endringIVergemaal", Utc::now());
        }
        world
    }

    #[test]
    fn nothing_is_deleted_without_a_limit_or_below_it() {
        assert_eq!(world_with(0).oldest_retained(Some(10)), None);
        assert_eq!(world_with(10).oldest_retained(Some(10)), None);
        assert_eq!(world_with(25).oldest_retained(None), None);
    }

    #[test]
    fn the_newest_n_entries_are_retained() {
        let world = world_with(25);
        assert_eq!(world.head(), 25);
        assert_eq!(world.oldest_retained(Some(10)), Some(16));
        assert_eq!(world.oldest_retained(Some(24)), Some(2));
        assert_eq!(world.oldest_retained(Some(1)), Some(25));
    }
}
