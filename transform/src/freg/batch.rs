//! Planning a batch: feed entries and the documents fetched for them, to the rows of each
//! table. Pure: the worker does the fetching and the writing.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::feed::{FeedEntry, Lookup};
use super::{document, versions};
use crate::model::{DeadLetter, EventRow, Person, PersonVersion};

/// The rows a batch produces.
#[derive(Debug, Default)]
pub struct Planned {
    /// `person` rows: each person's last state in the batch, with the sequence that produced it.
    pub persons: Vec<(Person, i64)>,
    /// New `person_history` versions, chained.
    pub inserts: Vec<PersonVersion>,
    /// Per person in the batch, the first new version: the open version before it ends there.
    pub closes: Vec<PersonVersion>,
    /// Like `closes`, for persons now strengt fortrolig: every earlier address is withheld too.
    pub scrubs: Vec<PersonVersion>,
    /// `person_event` rows.
    pub events: Vec<EventRow>,
    /// Rejected records.
    pub dead_letters: Vec<DeadLetter>,
}

/// The key a feed entry's document is fetched by: its document version, else the person.
pub fn document_key(entry: &FeedEntry) -> String {
    entry
        .hendelse
        .persondokument
        .clone()
        .unwrap_or_else(|| entry.hendelse.folkeregisteridentifikator.clone())
}

fn event_row(entry: &FeedEntry, outcome: &'static str) -> EventRow {
    let e = &entry.hendelse;
    EventRow {
        sequence: entry.sekvensnummer,
        event_type: e.hendelsetype.clone(),
        person_id: e.folkeregisteridentifikator.clone(),
        occurred_at: e.ajourholdstidspunkt,
        event_document_id: e.hendelsesdokument.clone(),
        person_document_id: e.persondokument.clone(),
        outcome,
    }
}

/// Plans the rows for feed entries after `after` (entries at or before it are skipped: that table
/// has them). Entries at or before `seed_sequence` are already in the seeded state: they are
/// recorded as events only. `docs` maps [`document_key`] to the lookup answer.
pub fn plan(
    entries: &[FeedEntry],
    docs: &HashMap<String, Lookup>,
    after: i64,
    seed_sequence: i64,
    now: DateTime<Utc>,
) -> Planned {
    let mut out = Planned::default();
    let mut new_versions = Vec::new();
    for entry in entries.iter().filter(|e| e.sekvensnummer > after) {
        if entry.sekvensnummer <= seed_sequence {
            out.events.push(event_row(entry, "in_extract"));
            continue;
        }
        let key = document_key(entry);
        let reject = |reason: String, payload: String| DeadLetter {
            source: "freg.feed".into(),
            cursor: format!("sequence={}", entry.sekvensnummer),
            record_id: Some(entry.hendelse.folkeregisteridentifikator.clone()),
            reason,
            payload,
        };
        let lookup = docs.get(&key);
        let result = match lookup.and_then(|l| l.folkeregisterperson.as_ref()) {
            Some(raw) => document::normalise_bytes(
                raw.get().as_bytes(),
                Some(&entry.hendelse.folkeregisteridentifikator),
            )
            .map_err(|e| reject(e.to_string(), raw.get().to_owned())),
            None => Err(reject(
                format!(
                    "the register returned no document for {key}: {}",
                    lookup
                        .and_then(|l| l.feilmelding.as_ref())
                        .map_or("no answer".into(), ToString::to_string)
                ),
                serde_json::to_string(&entry).unwrap_or_default(),
            )),
        };
        match result {
            Ok(person) => {
                out.events.push(event_row(entry, "applied"));
                new_versions.push(PersonVersion {
                    person,
                    sequence: entry.sekvensnummer,
                    valid_from: entry.hendelse.ajourholdstidspunkt.unwrap_or(now),
                    valid_to: None,
                });
            }
            Err(dead) => {
                out.events.push(event_row(entry, "dead_lettered"));
                out.dead_letters.push(dead);
            }
        }
    }
    let chained = versions::chain(new_versions);
    let mut first: HashMap<&str, &PersonVersion> = HashMap::new();
    let mut last: HashMap<&str, &PersonVersion> = HashMap::new();
    for v in &chained {
        first.entry(v.person.person_id.as_str()).or_insert(v);
        last.insert(v.person.person_id.as_str(), v);
    }
    let mut people: Vec<&str> = last.keys().copied().collect();
    people.sort_unstable();
    for id in people {
        let (f, l) = (first[id], last[id]);
        out.persons.push((l.person.clone(), l.sequence));
        let mut ends = f.clone();
        ends.person.birth_year = l.person.birth_year;
        ends.valid_to = Some(f.valid_from);
        if document::withholds_address(&l.person.address_protection) {
            out.scrubs.push(ends);
        } else {
            out.closes.push(ends);
        }
    }
    out.inserts = chained;
    out
}

/// The rows of seeding from extract lookups: current state, and versions from each document's
/// own history. `cursor` says where in the extract (for dead letters).
pub fn plan_seed(lookups: &[Lookup], seed_sequence: i64, cursor: &str) -> Planned {
    let mut out = Planned::default();
    for lookup in lookups {
        let reject = |reason: String, payload: String| DeadLetter {
            source: "freg.seed".into(),
            cursor: cursor.to_owned(),
            record_id: lookup
                .id
                .clone()
                .or_else(|| lookup.dokumentidentifikator.clone()),
            reason,
            payload,
        };
        let Some(raw) = lookup.folkeregisterperson.as_ref() else {
            out.dead_letters.push(reject(
                format!(
                    "the register returned no document: {}",
                    lookup
                        .feilmelding
                        .as_ref()
                        .map_or("no answer".into(), ToString::to_string)
                ),
                serde_json::to_string(lookup).unwrap_or_default(),
            ));
            continue;
        };
        let parsed = serde_json::from_str::<serde_json::Value>(raw.get())
            .map_err(|e| e.to_string())
            .and_then(|doc| {
                document::normalise(&doc, lookup.id.as_deref())
                    .map(|p| (p, doc))
                    .map_err(|e| e.to_string())
            });
        match parsed {
            Ok((person, doc)) => {
                out.inserts
                    .extend(versions::from_document(&person, &doc, seed_sequence));
                out.persons.push((person, seed_sequence));
            }
            Err(reason) => out.dead_letters.push(reject(reason, raw.get().to_owned())),
        }
    }
    out
}
