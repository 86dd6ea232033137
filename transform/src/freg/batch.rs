//! Planning a batch: feed entries and the documents fetched for them, to the rows of each
//! table. Pure: the worker does the fetching and the writing.
//!
//! Two rules hold for every plan, whatever the batch holds:
//! - every sequence number after the table's position gets exactly one `person_event` row
//!   (`applied` or `dead_lettered`);
//! - a person whose last state in the batch withholds the address (strengt fortrolig, or a
//!   protection that could not be read) gets no address in any version the batch inserts, and
//!   every earlier version is scrubbed ([`Planned::scrubs`]);
//! - a person whose last entry in the batch cannot be applied (a bad entry, an error answer, a
//!   document that does not normalise) fails closed: the change may have been a protection, so
//!   the address is withheld (protection `ukjent`) until a later document is read, through the
//!   batch's own last state or, without one, [`Planned::withholds`].

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::feed::{BadEntry, FeedEntry, Item, Lookup};
use super::{document, versions};
use crate::json::Doc;
use crate::model::{Address, DeadLetter, EventRow, Outcome, Person, PersonVersion};

/// The rows a batch produces.
#[derive(Debug, Default)]
pub struct Planned {
    /// `person` rows: each person's last state in the batch, with the sequence that produced it.
    pub persons: Vec<(Person, i64)>,
    /// New `person_history` versions, chained.
    pub inserts: Vec<PersonVersion>,
    /// Per person in the batch, the first new version: the open version before it ends there.
    pub closes: Vec<PersonVersion>,
    /// Like `closes`, for persons now withheld: every earlier address is withheld too.
    pub scrubs: Vec<PersonVersion>,
    /// Persons with no state in the batch whose last entry could not be applied: the lake's
    /// rows of each get their address withheld (protection `ukjent`) in every version.
    pub withholds: Vec<Withhold>,
    /// `person_event` rows.
    pub events: Vec<EventRow>,
    /// Rejected records.
    pub dead_letters: Vec<DeadLetter>,
}

/// A person whose address is withheld because an entry for it could not be applied.
#[derive(Debug, Clone, PartialEq)]
pub struct Withhold {
    /// The person id the entry named.
    pub person_id: String,
    /// The entry's sequence number.
    pub sequence: i64,
}

impl Withhold {
    /// The state row that stands for the withholding: the id, protection `ukjent`, nothing else.
    pub fn person(&self) -> Person {
        Person {
            person_id: self.person_id.clone(),
            address_protection: schemas::tables::protection::UNREADABLE.to_owned(),
            ..Person::default()
        }
    }
}

/// The key a feed entry's document is fetched by: its document version, else the person.
pub fn document_key(entry: &FeedEntry) -> String {
    entry
        .hendelse
        .persondokument
        .clone()
        .unwrap_or_else(|| entry.hendelse.folkeregisteridentifikator.clone())
}

fn event_row(entry: &FeedEntry, outcome: Outcome) -> EventRow {
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

/// What an operator needs to replay a record, as a JSON object: identifiers and the failing
/// element, never the content of a document (which may hold a protected address).
pub fn replay(fields: &[(&str, Option<&str>)]) -> String {
    let object: Map<String, Value> = fields
        .iter()
        .filter_map(|(k, v)| v.map(|v| ((*k).to_owned(), Value::from(v))))
        .collect();
    Value::Object(object).to_string()
}

/// At most 300 characters of a register's error text.
fn brief(v: Option<&Value>) -> String {
    v.map_or_else(
        || "no answer".to_owned(),
        |v| v.to_string().chars().take(300).collect(),
    )
}

fn bad_entry_letter(bad: &BadEntry) -> DeadLetter {
    let sequence = bad.sequence.map(|s| s.to_string());
    DeadLetter {
        source: "freg.feed".into(),
        cursor: bad
            .sequence
            .map_or_else(|| bad.place.clone(), |s| format!("sequence={s}")),
        record_id: bad.person_id.clone(),
        reason: bad.reason.clone(),
        replay: replay(&[
            ("sekvensnummer", sequence.as_deref()),
            ("place", Some(&bad.place)),
            ("folkeregisteridentifikator", bad.person_id.as_deref()),
            ("hendelsetype", bad.event_type.as_deref()),
            ("hendelsesdokument", bad.event_document_id.as_deref()),
            ("persondokument", bad.person_document_id.as_deref()),
        ]),
    }
}

/// Plans the rows for the feed positions after `after` (positions at or before it are
/// skipped: that table has them). `unplaced` are entries without a usable sequence number,
/// dead-lettered by a table whose position is before the page they came in. `docs` maps
/// [`document_key`] to the lookup answer.
pub fn plan(
    items: &[Item],
    unplaced: &[BadEntry],
    docs: &HashMap<String, Lookup>,
    after: i64,
    now: DateTime<Utc>,
) -> Planned {
    let mut out = Planned::default();
    let mut new_versions = Vec::new();
    // Per person id, the last entry that could not be applied.
    let mut failed: HashMap<String, i64> = HashMap::new();
    // Feed ids whose document named the person by another (current) id.
    let mut aliases: HashMap<String, String> = HashMap::new();
    let unplaced: Vec<&BadEntry> = unplaced.iter().filter(|b| b.page > after).collect();
    out.dead_letters
        .extend(unplaced.iter().map(|b| bad_entry_letter(b)));
    // An entry that cannot be placed may have changed its person, at an unknown position: the
    // person's address is withheld (fail closed) at the batch's last position.
    let batch_last = items.iter().map(Item::sequence).max().unwrap_or(after);
    let mut unplaced_persons: Vec<String> = unplaced
        .iter()
        .filter_map(|b| b.person_id.as_deref())
        .map(str::trim)
        .filter(|id| !id.is_empty())
        .map(str::to_owned)
        .collect();
    unplaced_persons.dedup();
    for item in items.iter().filter(|i| i.sequence() > after) {
        let entry = match item {
            Item::Entry(entry) => entry,
            Item::Bad(bad) => {
                out.events.push(EventRow {
                    sequence: item.sequence(),
                    event_type: bad.event_type.clone().unwrap_or_default(),
                    person_id: bad.person_id.clone().unwrap_or_default(),
                    occurred_at: None,
                    event_document_id: bad.event_document_id.clone(),
                    person_document_id: bad.person_document_id.clone(),
                    outcome: Outcome::DeadLettered,
                });
                out.dead_letters.push(bad_entry_letter(bad));
                if let Some(id) = bad.person_id.as_deref().filter(|id| !id.trim().is_empty()) {
                    failed.insert(id.trim().to_owned(), item.sequence());
                }
                continue;
            }
        };
        let key = document_key(entry);
        let e = &entry.hendelse;
        let sequence = entry.sekvensnummer.to_string();
        let reject = |reason: String, element: Option<&str>| DeadLetter {
            source: "freg.feed".into(),
            cursor: format!("sequence={}", entry.sekvensnummer),
            record_id: Some(e.folkeregisteridentifikator.clone()),
            reason,
            replay: replay(&[
                ("sekvensnummer", Some(&sequence)),
                (
                    "folkeregisteridentifikator",
                    Some(&e.folkeregisteridentifikator),
                ),
                ("hendelsetype", Some(&e.hendelsetype)),
                ("hendelsesdokument", e.hendelsesdokument.as_deref()),
                ("persondokument", e.persondokument.as_deref()),
                ("element", element),
            ]),
        };
        let lookup = docs.get(&key);
        let result = match lookup.and_then(|l| l.folkeregisterperson.as_ref()) {
            Some(raw) => {
                document::normalise_bytes(raw.get().as_bytes(), Some(&e.folkeregisteridentifikator))
                    .map_err(|err| reject(err.to_string(), err.element()))
            }
            None => Err(reject(
                format!(
                    "the register returned no document for {key}: {}",
                    brief(lookup.and_then(|l| l.feilmelding.as_ref()))
                ),
                None,
            )),
        };
        match result {
            Ok(person) => {
                out.events.push(event_row(entry, Outcome::Applied));
                if person.person_id != e.folkeregisteridentifikator.trim() {
                    aliases.insert(
                        e.folkeregisteridentifikator.trim().to_owned(),
                        person.person_id.clone(),
                    );
                }
                new_versions.push(PersonVersion {
                    person,
                    sequence: entry.sekvensnummer,
                    valid_from: e.ajourholdstidspunkt.unwrap_or(now),
                    valid_to: None,
                });
            }
            Err(dead) => {
                out.events.push(event_row(entry, Outcome::DeadLettered));
                out.dead_letters.push(dead);
                failed.insert(
                    e.folkeregisteridentifikator.trim().to_owned(),
                    entry.sekvensnummer,
                );
            }
        }
    }
    for id in unplaced_persons {
        // After every version the batch has of the person.
        failed.insert(id, i64::MAX);
    }
    // A failure under the feed's id also counts for the id its documents carry.
    let aliased: Vec<(String, i64)> = failed
        .iter()
        .filter_map(|(id, seq)| aliases.get(id).map(|current| (current.clone(), *seq)))
        .collect();
    for (current, seq) in aliased {
        let at = failed.entry(current).or_insert(seq);
        *at = (*at).max(seq);
    }
    let mut chained = versions::chain(new_versions);
    fail_closed(&mut chained, &failed, batch_last, &mut out.withholds);
    let mut first: HashMap<&str, &PersonVersion> = HashMap::new();
    let mut last: HashMap<&str, &PersonVersion> = HashMap::new();
    for v in &chained {
        first.entry(v.person.person_id.as_str()).or_insert(v);
        last.insert(v.person.person_id.as_str(), v);
    }
    let mut people: Vec<&str> = last.keys().copied().collect();
    people.sort_unstable();
    let mut withheld: HashSet<String> = HashSet::new();
    for id in people {
        let (f, l) = (first[id], last[id]);
        out.persons.push((l.person.clone(), l.sequence));
        let mut ends = f.clone();
        ends.person.birth_year = l.person.birth_year;
        ends.valid_to = Some(f.valid_from);
        if document::withholds_address(&l.person.address_protection) {
            withheld.insert(id.to_owned());
            ends.person.address = Address::default();
            out.scrubs.push(ends);
        } else {
            out.closes.push(ends);
        }
    }
    // A person withheld now keeps no address in the versions this batch inserts either.
    for v in chained
        .iter_mut()
        .filter(|v| withheld.contains(&v.person.person_id))
    {
        v.person.address = Address::default();
    }
    out.inserts = chained;
    out
}

/// Withholds the address of every person in `failed` whose failed entry came after the batch's
/// last version of it (that version's protection becomes `ukjent`), and lists the ones without
/// a version in `withholds` (at the failed entry's sequence, at most `batch_last`).
fn fail_closed(
    chained: &mut [PersonVersion],
    failed: &HashMap<String, i64>,
    batch_last: i64,
    withholds: &mut Vec<Withhold>,
) {
    if failed.is_empty() {
        return;
    }
    let mut last: HashMap<&str, i64> = HashMap::new();
    for v in chained.iter() {
        let seq = last
            .entry(v.person.person_id.as_str())
            .or_insert(v.sequence);
        *seq = (*seq).max(v.sequence);
    }
    let last: HashMap<String, i64> = last.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    for v in chained.iter_mut() {
        let id = v.person.person_id.as_str();
        if last.get(id) == Some(&v.sequence) && failed.get(id).is_some_and(|f| *f > v.sequence) {
            v.person.address_protection = schemas::tables::protection::UNREADABLE.to_owned();
            v.person.address = Address::default();
        }
    }
    let mut without: Vec<Withhold> = failed
        .iter()
        .filter(|(id, _)| !last.contains_key(id.as_str()))
        .map(|(id, sequence)| Withhold {
            person_id: id.clone(),
            sequence: (*sequence).min(batch_last),
        })
        .collect();
    without.sort_by(|a, b| a.person_id.cmp(&b.person_id));
    withholds.extend(without);
}

/// The rows of seeding from extract lookups: current state, and versions from each document's
/// own history. `cursor` says where in the extract (for dead letters).
pub fn plan_seed(lookups: &[Lookup], seed_sequence: i64, cursor: &str) -> Planned {
    let mut out = Planned::default();
    for lookup in lookups {
        let reject = |reason: String, element: Option<&str>| DeadLetter {
            source: "freg.seed".into(),
            cursor: cursor.to_owned(),
            record_id: lookup
                .id
                .clone()
                .or_else(|| lookup.dokumentidentifikator.clone()),
            reason,
            replay: replay(&[
                ("foedselsEllerDNummer", lookup.id.as_deref()),
                (
                    "dokumentidentifikator",
                    lookup.dokumentidentifikator.as_deref(),
                ),
                ("element", element),
            ]),
        };
        // A person the extract names but whose document cannot be read keeps nothing it may
        // have had in the lake (a re-seed): its address is withheld, as for a feed entry.
        let withhold = |out: &mut Planned| {
            if let Some(id) = lookup.id.as_deref().filter(|id| !id.trim().is_empty()) {
                out.withholds.push(Withhold {
                    person_id: id.trim().to_owned(),
                    sequence: seed_sequence,
                });
            }
        };
        let Some(raw) = lookup.folkeregisterperson.as_ref() else {
            withhold(&mut out);
            out.dead_letters.push(reject(
                format!(
                    "the register returned no document: {}",
                    brief(lookup.feilmelding.as_ref())
                ),
                None,
            ));
            continue;
        };
        let parsed = Doc::parse(raw.get().as_bytes())
            .map_err(|e| (e.to_string(), Some("folkeregisterperson")))
            .and_then(|doc| {
                document::normalise(&doc, lookup.id.as_deref())
                    .map(|p| (p, doc))
                    .map_err(|e| (e.to_string(), e.element()))
            });
        match parsed {
            Ok((person, doc)) => {
                out.inserts
                    .extend(versions::from_document(&person, &doc, seed_sequence));
                out.persons.push((person, seed_sequence));
            }
            Err((reason, element)) => {
                withhold(&mut out);
                out.dead_letters.push(reject(reason, element));
            }
        }
    }
    // One withhold per person, none for a person read after all (named twice): the lake writer
    // refuses a key changed twice.
    let read: HashSet<&str> = out
        .persons
        .iter()
        .map(|(p, _)| p.person_id.as_str())
        .collect();
    let mut seen = HashSet::new();
    let withholds = std::mem::take(&mut out.withholds);
    out.withholds = withholds
        .into_iter()
        .filter(|w| !read.contains(w.person_id.as_str()) && seen.insert(w.person_id.clone()))
        .collect();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::freg::feed::{Event, FeedEntry};
    use chrono::TimeZone;
    use serde_json::json;

    const ID: &str = "11888500016";

    fn entry(seq: i64) -> Item {
        Item::Entry(FeedEntry {
            sekvensnummer: seq,
            hendelse: Event {
                folkeregisteridentifikator: ID.into(),
                hendelsetype: "endringIBostedsadresse".into(),
                hendelsesdokument: None,
                persondokument: Some(format!("d{seq}")),
                ajourholdstidspunkt: Some(
                    Utc.with_ymd_and_hms(2026, 1, seq as u32, 0, 0, 0).unwrap(),
                ),
            },
        })
    }

    fn lookup(seq: i64, street: &str, grading: &str) -> (String, Lookup) {
        let doc = json!({
            "identifikasjonsnummer": [{"foedselsEllerDNummer": ID, "erGjeldende": true}],
            "bostedsadresse": [{"vegadresse": {"adressenavn": street, "kommunenummer": "5035"}, "erGjeldende": true}],
            "adressebeskyttelse": [{"graderingsnivaa": grading, "erGjeldende": true}]
        });
        let key = format!("d{seq}");
        let raw = serde_json::value::RawValue::from_string(doc.to_string()).unwrap();
        (
            key.clone(),
            Lookup {
                id: Some(ID.into()),
                dokumentidentifikator: Some(key),
                folkeregisterperson: Some(raw),
                feilmelding: None,
            },
        )
    }

    #[test]
    fn a_move_and_strengt_fortrolig_in_one_batch_leave_no_address_in_any_version() {
        let docs: HashMap<String, Lookup> = [
            lookup(1, "Forrigevegen", "ugradert"),
            lookup(2, "Nyvegen", "ugradert"),
            lookup(3, "Nyvegen", "strengtFortrolig"),
        ]
        .into_iter()
        .collect();
        let items = [entry(1), entry(2), entry(3)];
        let planned = plan(&items, &[], &docs, 0, Utc::now());
        assert_eq!(planned.inserts.len(), 3);
        for v in &planned.inserts {
            assert_eq!(
                v.person.address,
                Address::default(),
                "version {}",
                v.sequence
            );
        }
        assert_eq!(
            planned.scrubs.len(),
            1,
            "the versions already in the lake are scrubbed"
        );
        assert!(planned.closes.is_empty());
        // Protected first, then lifted within the batch: only what is known now is kept.
        let docs: HashMap<String, Lookup> = [
            lookup(1, "Forrigevegen", "strengtFortrolig"),
            lookup(2, "Nyvegen", "ugradert"),
        ]
        .into_iter()
        .collect();
        let planned = plan(&items[..2], &[], &docs, 0, Utc::now());
        assert_eq!(planned.inserts[0].person.address, Address::default());
        assert_eq!(
            planned.inserts[1].person.address.street_name.as_deref(),
            Some("Nyvegen")
        );
    }

    /// A lookup answered with an error instead of a document.
    fn error_answer(seq: i64) -> (String, Lookup) {
        let key = format!("d{seq}");
        (
            key.clone(),
            Lookup {
                id: Some(ID.into()),
                dokumentidentifikator: Some(key),
                folkeregisterperson: None,
                feilmelding: Some(json!("intern feil")),
            },
        )
    }

    #[test]
    fn an_entry_that_cannot_be_applied_withholds_the_address_until_a_later_document() {
        let now = Utc::now();
        // Applied, then an entry that fails: the last state is withheld, in every version.
        let docs: HashMap<String, Lookup> =
            [lookup(1, "Forrigevegen", "ugradert"), error_answer(2)]
                .into_iter()
                .collect();
        let planned = plan(&[entry(1), entry(2)], &[], &docs, 0, now);
        assert_eq!(planned.persons.len(), 1);
        let (state, _) = &planned.persons[0];
        assert_eq!(state.address_protection, "ukjent");
        assert_eq!(state.address, Address::default());
        assert!(
            planned
                .inserts
                .iter()
                .all(|v| v.person.address == Address::default())
        );
        assert_eq!(planned.scrubs.len(), 1, "earlier versions are scrubbed");
        assert!(planned.withholds.is_empty());
        // Only the failing entry: the lake's rows are withheld.
        let planned = plan(&[entry(2)], &[], &docs, 0, now);
        assert!(planned.persons.is_empty() && planned.inserts.is_empty());
        assert_eq!(
            planned.withholds,
            vec![Withhold {
                person_id: ID.into(),
                sequence: 2
            }]
        );
        assert_eq!(planned.withholds[0].person().address_protection, "ukjent");
        // A bad entry naming the person counts the same.
        let bad = Item::Bad(BadEntry {
            sequence: Some(3),
            person_id: Some(ID.into()),
            page: 1,
            place: "seq=1 entry=2".into(),
            reason: "no ajourholdstidspunkt time zone".into(),
            ..BadEntry::default()
        });
        let planned = plan(&[entry(1), bad], &[], &docs, 0, now);
        assert_eq!(planned.persons[0].0.address_protection, "ukjent");
        // An entry that cannot be placed (no usable sequence number, or a second entry for a
        // position) withholds its person at the batch's last position.
        let unplaced = BadEntry {
            sequence: None,
            person_id: Some(ID.into()),
            page: 1,
            place: "seq=1 entry=9".into(),
            reason: "sekvensnummer 4.5".into(),
            ..BadEntry::default()
        };
        let planned = plan(&[entry(1)], std::slice::from_ref(&unplaced), &docs, 0, now);
        assert_eq!(planned.persons[0].0.address_protection, "ukjent");
        let planned = plan(&[], std::slice::from_ref(&unplaced), &docs, 0, now);
        assert_eq!(planned.withholds.len(), 1);
        assert_eq!(
            planned.withholds[0].sequence, 0,
            "no position beyond the batch"
        );
        // A later document that is read restores the person.
        let docs: HashMap<String, Lookup> = [error_answer(1), lookup(2, "Nyvegen", "ugradert")]
            .into_iter()
            .collect();
        let planned = plan(&[entry(1), entry(2)], &[], &docs, 0, now);
        assert!(planned.withholds.is_empty());
        assert_eq!(planned.persons[0].0.address_protection, "ugradert");
        assert_eq!(
            planned.persons[0].0.address.street_name.as_deref(),
            Some("Nyvegen")
        );
    }

    #[test]
    fn a_failure_under_the_feeds_id_withholds_the_id_the_documents_carry() {
        // The feed names the person by an old id; its document by the current one.
        let current = (100..500)
            .find_map(|i| crate::ident::complete(&format!("118885{i:03}")))
            .filter(|id| id != ID)
            .unwrap();
        let doc = json!({
            "identifikasjonsnummer": [{"foedselsEllerDNummer": current, "erGjeldende": true}],
            "bostedsadresse": [{"vegadresse": {"adressenavn": "Gamlevegen", "kommunenummer": "5035"}, "erGjeldende": true}]
        });
        let raw = serde_json::value::RawValue::from_string(doc.to_string()).unwrap();
        let first = Lookup {
            id: Some(ID.into()),
            dokumentidentifikator: Some("d1".into()),
            folkeregisterperson: Some(raw),
            feilmelding: None,
        };
        let docs: HashMap<String, Lookup> = [("d1".to_owned(), first), error_answer(2)]
            .into_iter()
            .collect();
        let planned = plan(&[entry(1), entry(2)], &[], &docs, 0, Utc::now());
        let (state, _) = &planned.persons[0];
        assert_eq!(state.person_id, current);
        assert_eq!(state.address_protection, "ukjent", "{state:?}");
        assert!(
            planned
                .inserts
                .iter()
                .all(|v| v.person.address == Address::default())
        );
    }

    #[test]
    fn a_seed_withholds_each_unreadable_person_once_and_never_one_it_read() {
        let (_, good) = lookup(1, "Storgata", "ugradert");
        let (_, bad) = error_answer(2);
        let planned = plan_seed(
            &[bad.clone(), good, bad.clone()],
            9,
            "extract=j batches=0..1",
        );
        assert!(planned.withholds.is_empty(), "{:?}", planned.withholds);
        let planned = plan_seed(&[bad.clone(), bad], 9, "extract=j batches=0..1");
        assert_eq!(planned.withholds.len(), 1);
    }

    #[test]
    fn a_dead_letter_never_holds_the_document_of_a_protected_person() {
        // A strengt fortrolig person's document that cannot be normalised (a bad check digit).
        let doc = json!({
            "identifikasjonsnummer": [{"foedselsEllerDNummer": "11888500017", "erGjeldende": true}],
            "bostedsadresse": [{"vegadresse": {"adressenavn": "Skjultvegen", "kommunenummer": "5035"}, "erGjeldende": true}],
            "adressebeskyttelse": [{"graderingsnivaa": "strengtFortrolig", "erGjeldende": true}]
        });
        let raw = serde_json::value::RawValue::from_string(doc.to_string()).unwrap();
        let lookup = Lookup {
            id: Some("11888500017".into()),
            dokumentidentifikator: Some("d1".into()),
            folkeregisterperson: Some(raw),
            feilmelding: None,
        };
        let docs: HashMap<String, Lookup> =
            [("d1".to_owned(), lookup.clone())].into_iter().collect();
        let from_feed = plan(&[entry(1)], &[], &docs, 0, Utc::now());
        let from_seed = plan_seed(&[lookup], 7, "extract=j batches=0..1");
        for dead in from_feed.dead_letters.iter().chain(&from_seed.dead_letters) {
            let all = format!("{dead:?}");
            assert!(
                !all.contains("Skjultvegen") && !all.contains("5035"),
                "{all}"
            );
            let replay: Value = serde_json::from_str(&dead.replay).unwrap();
            assert_eq!(replay["element"], "identifikasjonsnummer", "{replay}");
        }
        assert_eq!(
            from_feed.dead_letters.len() + from_seed.dead_letters.len(),
            2
        );
    }

    #[test]
    fn a_bad_entry_holds_its_place_in_person_event() {
        let bad = BadEntry {
            sequence: Some(2),
            person_id: Some(ID.into()),
            page: 1,
            place: "seq=1 entry=1".into(),
            reason: "feed entry without hendelsetype".into(),
            ..BadEntry::default()
        };
        let unplaced = BadEntry {
            page: 1,
            place: "seq=1 entry=2".into(),
            reason: "feed entry without sekvensnummer (a whole number)".into(),
            ..BadEntry::default()
        };
        let docs: HashMap<String, Lookup> = [lookup(1, "Vegen", "ugradert")].into_iter().collect();
        let items = [entry(1), Item::Bad(bad)];
        let planned = plan(
            &items,
            std::slice::from_ref(&unplaced),
            &docs,
            0,
            Utc::now(),
        );
        let outcomes: Vec<(i64, Outcome)> = planned
            .events
            .iter()
            .map(|e| (e.sequence, e.outcome))
            .collect();
        assert_eq!(
            outcomes,
            vec![(1, Outcome::Applied), (2, Outcome::DeadLettered)]
        );
        assert_eq!(planned.dead_letters.len(), 2);
        assert_eq!(planned.dead_letters[1].cursor, "sequence=2");
        assert_eq!(planned.dead_letters[0].cursor, "seq=1 entry=2");
        // A table already past the page records neither again.
        let later = plan(
            &items,
            std::slice::from_ref(&unplaced),
            &docs,
            2,
            Utc::now(),
        );
        assert!(later.events.is_empty() && later.dead_letters.is_empty());
    }
}
