//! Feed entries and lookup envelopes, as the register's OpenAPI names them, and the reading of
//! a feed page against the consumer's own position.
//!
//! Every field of a feed entry is optional in the published schema. An entry that cannot be
//! placed or applied (no `sekvensnummer` that is a whole number, no `hendelsetype`, no person
//! id) is a [`BadEntry`]: it is dead-lettered with what an operator needs to replay it, and the
//! rest of the page goes on.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::TransformError;

/// One entry of `GET /v1/hendelser/feed`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeedEntry {
    /// Strictly increasing position in the feed.
    pub sekvensnummer: i64,
    /// The event.
    pub hendelse: Event,
}

/// The event of a feed entry (note: the feed spells `hendelsetype`, event documents
/// `hendelsestype`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// The person's identity number.
    pub folkeregisteridentifikator: String,
    /// Event type; the list is open.
    pub hendelsetype: String,
    /// The event document's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hendelsesdokument: Option<String>,
    /// The id of the person document version the event produced (omitted by some packages).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persondokument: Option<String>,
    /// When the register recorded the event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ajourholdstidspunkt: Option<DateTime<Utc>>,
}

/// A feed entry that cannot be applied, with what could be read of it. It holds identifiers
/// only: a feed entry carries no address.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BadEntry {
    /// Its sequence number, when it has one that is a whole number.
    pub sequence: Option<i64>,
    /// The person id, if given.
    pub person_id: Option<String>,
    /// The event type, if given.
    pub event_type: Option<String>,
    /// The event document id, if given.
    pub event_document_id: Option<String>,
    /// The person document id, if given.
    pub person_document_id: Option<String>,
    /// The sequence number the page it came in was asked for at.
    pub page: i64,
    /// Where it stood: `seq=N entry=i` (the page asked for and its index in the page).
    pub place: String,
    /// Why it cannot be applied.
    pub reason: String,
}

/// A parsed feed page: the entries that can be applied and those that cannot, in page order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Page {
    /// Entries that can be applied.
    pub entries: Vec<FeedEntry>,
    /// Entries that cannot.
    pub bad: Vec<BadEntry>,
}

impl Page {
    /// Entries in the page, good and bad.
    pub fn len(&self) -> usize {
        self.entries.len() + self.bad.len()
    }

    /// Whether the page holds no entry at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A whole number, also when the register writes it as a string of digits.
fn whole(v: Option<&Value>) -> Option<i64> {
    match v? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn string(v: Option<&Value>) -> Option<String> {
    v.and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// Reads one entry; `place` says where it stood in the page.
fn read_entry(v: &Value, page: i64, place: String) -> Result<FeedEntry, Box<BadEntry>> {
    let event = v.get("hendelse").filter(|e| e.is_object());
    let field = |name: &str| string(event.and_then(|e| e.get(name)));
    let mut bad = BadEntry {
        sequence: whole(v.get("sekvensnummer")),
        person_id: field("folkeregisteridentifikator"),
        event_type: field("hendelsetype"),
        event_document_id: field("hendelsesdokument"),
        person_document_id: field("persondokument"),
        page,
        place,
        reason: String::new(),
    };
    let missing: Vec<&str> = [
        ("sekvensnummer (a whole number)", bad.sequence.is_none()),
        ("hendelse", event.is_none()),
        ("hendelsetype", event.is_some() && bad.event_type.is_none()),
        (
            "folkeregisteridentifikator",
            event.is_some() && bad.person_id.is_none(),
        ),
    ]
    .into_iter()
    .filter_map(|(name, absent)| absent.then_some(name))
    .collect();
    if !missing.is_empty() {
        bad.reason = format!("feed entry without {}", missing.join(", "));
        return Err(Box::new(bad));
    }
    let at = event.and_then(|e| e.get("ajourholdstidspunkt"));
    let occurred = match at {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => match DateTime::parse_from_rfc3339(s) {
            Ok(t) => Some(t.with_timezone(&Utc)),
            Err(e) => {
                bad.reason = format!("feed entry with an unreadable ajourholdstidspunkt: {e}");
                return Err(Box::new(bad));
            }
        },
        Some(_) => {
            bad.reason = "feed entry with an ajourholdstidspunkt that is not a string".into();
            return Err(Box::new(bad));
        }
    };
    Ok(FeedEntry {
        sekvensnummer: bad.sequence.unwrap_or_default(),
        hendelse: Event {
            folkeregisteridentifikator: bad.person_id.take().unwrap_or_default(),
            hendelsetype: bad.event_type.take().unwrap_or_default(),
            hendelsesdokument: bad.event_document_id.take(),
            persondokument: bad.person_document_id.take(),
            ajourholdstidspunkt: occurred,
        },
    })
}

/// Parses a feed page asked for at `seq`. A body that is not a JSON array is malformed as a
/// whole (a cut-off body, or a 200 that is not an answer); an entry that cannot be read is a
/// [`BadEntry`] and the others are kept.
pub fn parse_page(body: &[u8], seq: i64) -> Result<Page, TransformError> {
    let items: Vec<Value> = match serde_json::from_slice(body) {
        Ok(Value::Array(items)) => items,
        Ok(other) => {
            let shown: String = other.to_string().chars().take(120).collect();
            return Err(TransformError::Malformed {
                what: "feed page",
                reason: format!("not a list of entries: {shown}"),
            });
        }
        Err(e) => {
            return Err(TransformError::Malformed {
                what: "feed page",
                reason: e.to_string(),
            });
        }
    };
    let mut page = Page::default();
    for (i, item) in items.iter().enumerate() {
        match read_entry(item, seq, format!("seq={seq} entry={i}")) {
            Ok(entry) => page.entries.push(entry),
            Err(bad) => page.bad.push(*bad),
        }
    }
    Ok(page)
}

/// One position of the feed as read from a page: an entry to apply, or one to dead-letter.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    /// An entry to apply.
    Entry(FeedEntry),
    /// An entry that has a sequence number but cannot be applied.
    Bad(BadEntry),
}

impl Item {
    /// Its sequence number.
    pub fn sequence(&self) -> i64 {
        match self {
            Self::Entry(e) => e.sekvensnummer,
            Self::Bad(b) => b.sequence.unwrap_or_default(),
        }
    }
}

/// What a page says about the feed after the consumer's position.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Reading {
    /// The positions `next, next + 1, ...` without a hole, in order, each once.
    pub items: Vec<Item>,
    /// Entries without a usable sequence number: they cannot be placed in the feed.
    pub unplaced: Vec<BadEntry>,
    /// Entries seen more than once in the page (the repeats were dropped).
    pub repeats: usize,
    /// Entries before `next` (already taken; dropped).
    pub old: usize,
    /// Sequence numbers missing after the taken items: `(first, last)` missing, inclusive, when
    /// the page goes on after a hole.
    pub gap: Option<(i64, i64)>,
    /// The page held entries, but every one was before `next`: the register went backwards or
    /// does not honour the position asked for.
    pub all_old: Option<(i64, i64)>,
}

impl Reading {
    /// The position after the taken items.
    pub fn next(&self, next: i64) -> i64 {
        self.items.last().map_or(next, |i| i.sequence() + 1)
    }
}

/// Reads a page against the position `next` (the first sequence number not taken yet): drops
/// repeats and what was already taken, orders by sequence number, and takes the positions from
/// `next` up to the first hole. Nothing after a hole is taken, so no sequence number is skipped
/// by accident: the caller decides what a hole means (wait for it, or stop).
pub fn read_page(page: Page, next: i64) -> Reading {
    let mut out = Reading::default();
    let total = page.len();
    let mut by_seq: BTreeMap<i64, Item> = BTreeMap::new();
    let (mut lowest, mut highest) = (i64::MAX, i64::MIN);
    let mut sequenced = 0;
    let mut place = |seq: i64, item: Item, out: &mut Reading| {
        lowest = lowest.min(seq);
        highest = highest.max(seq);
        if seq < next {
            out.old += 1;
            return;
        }
        match (by_seq.get(&seq), item) {
            // A good entry wins over a bad one at the same position.
            (Some(Item::Bad(_)), item @ Item::Entry(_)) => {
                by_seq.insert(seq, item);
                out.repeats += 1;
            }
            // Two different entries for one position: the first is taken, the second cannot
            // be placed and is never dropped silently (it is dead-lettered, its person withheld).
            (Some(Item::Entry(first)), Item::Entry(second)) if *first != second => {
                let e = &second.hendelse;
                out.unplaced.push(BadEntry {
                    sequence: None,
                    person_id: Some(e.folkeregisteridentifikator.clone()),
                    event_type: Some(e.hendelsetype.clone()),
                    event_document_id: e.hendelsesdokument.clone(),
                    person_document_id: e.persondokument.clone(),
                    page: next,
                    place: format!("seq={next} sequence={seq} (second entry)"),
                    reason: format!(
                        "a second, different entry for sequence {seq}: the register gave two \
                         (the first is taken)"
                    ),
                });
            }
            (Some(_), _) => out.repeats += 1,
            (None, item) => {
                by_seq.insert(seq, item);
            }
        }
    };
    for entry in page.entries {
        sequenced += 1;
        let seq = entry.sekvensnummer;
        place(seq, Item::Entry(entry), &mut out);
    }
    for bad in page.bad {
        match bad.sequence {
            Some(seq) => {
                sequenced += 1;
                place(seq, Item::Bad(bad), &mut out);
            }
            None => out.unplaced.push(bad),
        }
    }
    if sequenced > 0 && out.old == sequenced {
        out.all_old = Some((lowest, highest));
    }
    let mut expected = next;
    let mut rest = by_seq.into_iter().peekable();
    while let Some((seq, _)) = rest.peek() {
        if *seq != expected {
            out.gap = Some((expected, *seq - 1));
            break;
        }
        let (_, item) = rest.next().expect("peeked");
        out.items.push(item);
        expected += 1;
    }
    debug_assert!(out.items.len() + out.old + out.repeats + out.unplaced.len() <= total);
    out
}

/// One answer of `POST /v1/personer/bulkoppslag` (and, in regsync's reading, of
/// `bulkoppslag/arkiv`, which carries `dokumentidentifikator` as well).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Lookup {
    /// The identity number asked for.
    #[serde(rename = "foedselsEllerDNummer", default)]
    pub id: Option<String>,
    /// The document version asked for (archive lookups).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dokumentidentifikator: Option<String>,
    /// The document, kept raw until it is normalised.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub folkeregisterperson: Option<Box<serde_json::value::RawValue>>,
    /// Why the person could not be returned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feilmelding: Option<serde_json::Value>,
}

/// The bulk-lookup envelope `{"oppslag": [...]}`. `oppslag` is required: a 200 without it (a
/// service under maintenance answering `{"melding": ...}`) is not an answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LookupResponse {
    /// The answers.
    pub oppslag: Vec<Lookup>,
}

/// What a bulk lookup was asked by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LookupKey {
    /// `bulkoppslag`: identity numbers.
    Person,
    /// `bulkoppslag/arkiv`: document ids.
    Document,
}

impl LookupKey {
    /// The key an answer carries.
    pub fn of<'a>(&self, lookup: &'a Lookup) -> Option<&'a str> {
        match self {
            Self::Person => lookup.id.as_deref(),
            Self::Document => lookup.dokumentidentifikator.as_deref(),
        }
    }
}

/// Parses a bulk-lookup response to the keys `asked`, and checks that it answers every one of
/// them (with a document or a `feilmelding`). An answer that leaves some out is not an answer:
/// the request fails and is retried, and no asked-for record is lost.
pub fn parse_lookups(
    body: &[u8],
    asked: &[String],
    key: LookupKey,
) -> Result<Vec<Lookup>, TransformError> {
    let answers = serde_json::from_slice::<LookupResponse>(body)
        .map(|r| r.oppslag)
        .map_err(|e| TransformError::Malformed {
            what: "bulk lookup response",
            reason: e.to_string(),
        })?;
    // An answer is a document or a `feilmelding`; an entry with neither answers nothing.
    let answered: std::collections::HashSet<&str> = answers
        .iter()
        .filter(|l| {
            l.folkeregisterperson
                .as_ref()
                .is_some_and(|d| d.get().trim() != "null")
                || l.feilmelding.as_ref().is_some_and(|f| !f.is_null())
        })
        .filter_map(|l| key.of(l))
        .collect();
    let missing: Vec<&String> = asked
        .iter()
        .filter(|k| !answered.contains(k.as_str()))
        .collect();
    if let Some(first) = missing.first() {
        return Err(TransformError::Malformed {
            what: "bulk lookup response",
            reason: format!(
                "answers {} of {} keys asked for; {} without an answer, the first {first}",
                asked.len() - missing.len(),
                asked.len(),
                missing.len()
            ),
        });
    }
    Ok(answers)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(seq: i64) -> Value {
        serde_json::json!({"sekvensnummer": seq, "hendelse": {
            "folkeregisteridentifikator": "03889200099", "hendelsetype": "endringINavn"}})
    }

    fn page(items: &[Value]) -> Page {
        parse_page(&serde_json::to_vec(items).unwrap(), 1).unwrap()
    }

    fn seqs(r: &Reading) -> Vec<i64> {
        r.items.iter().map(Item::sequence).collect()
    }

    #[test]
    fn parses_the_documented_example_page() {
        let page = parse_page(
            include_bytes!("../../tests/fixtures/freg/feed-page.json"),
            1,
        )
        .unwrap();
        assert_eq!(page.entries.len(), 3);
        assert_eq!(page.entries[0].sekvensnummer, 1);
        assert_eq!(
            page.entries[0].hendelse.hendelsetype,
            "endringIIdentitetsgrunnlag"
        );
        assert!(page.entries[2].hendelse.persondokument.is_none());
    }

    #[test]
    fn a_cut_off_page_is_malformed() {
        let err = parse_page(br#"[{"sekvensnummer": 1, "hendelse": {"#, 1).unwrap_err();
        assert!(err.to_string().contains("feed page"), "{err}");
    }

    #[test]
    fn a_200_that_is_not_a_page_is_malformed() {
        let err = parse_page(br#"{"melding": "vedlikehold"}"#, 1).unwrap_err();
        assert!(err.to_string().contains("not a list of entries"), "{err}");
    }

    #[test]
    fn one_malformed_entry_does_not_reject_the_page() {
        let mut no_type = entry(2);
        no_type["hendelse"]
            .as_object_mut()
            .unwrap()
            .remove("hendelsetype");
        let mut no_id = entry(3);
        no_id["hendelse"]
            .as_object_mut()
            .unwrap()
            .remove("folkeregisteridentifikator");
        let mut odd_seq = entry(0);
        odd_seq["sekvensnummer"] = Value::from(4.5);
        let as_text = serde_json::json!({"sekvensnummer": "5", "hendelse": entry(5)["hendelse"]});
        let page = page(&[entry(1), no_type, no_id, odd_seq, as_text]);
        assert_eq!(
            page.entries
                .iter()
                .map(|e| e.sekvensnummer)
                .collect::<Vec<_>>(),
            vec![1, 5]
        );
        assert_eq!(page.bad.len(), 3);
        assert_eq!(page.bad[0].sequence, Some(2));
        assert!(
            page.bad[0].reason.contains("hendelsetype"),
            "{:?}",
            page.bad[0]
        );
        assert!(page.bad[1].reason.contains("folkeregisteridentifikator"));
        assert_eq!(page.bad[2].sequence, None);
        assert_eq!(page.bad[2].place, "seq=1 entry=3");
        // The bad entries with a sequence number hold their place; the other cannot be placed.
        let r = read_page(page, 1);
        assert_eq!(seqs(&r), vec![1, 2, 3]);
        assert_eq!(r.gap, Some((4, 4)));
        assert_eq!(r.unplaced.len(), 1);
    }

    #[test]
    fn repeats_and_disorder_are_taken_once_in_order() {
        let r = read_page(page(&[entry(3), entry(2), entry(3), entry(1), entry(4)]), 2);
        assert_eq!(seqs(&r), vec![2, 3, 4]);
        assert_eq!((r.repeats, r.old, r.gap, r.all_old), (1, 1, None, None));
        assert_eq!(r.next(2), 5);
    }

    #[test]
    fn a_second_different_entry_for_a_position_is_never_dropped_silently() {
        let mut other = entry(3);
        other["hendelse"]["folkeregisteridentifikator"] = Value::from("01010112345");
        let r = read_page(page(&[entry(2), entry(3), other, entry(3)]), 2);
        assert_eq!(seqs(&r), vec![2, 3], "the first entry is taken");
        assert_eq!(r.repeats, 1, "the identical repeat is a repeat");
        assert_eq!(r.unplaced.len(), 1, "the different one cannot be placed");
        let second = &r.unplaced[0];
        assert_eq!(second.person_id.as_deref(), Some("01010112345"));
        assert!(second.reason.contains("sequence 3"), "{second:?}");
    }

    #[test]
    fn a_hole_stops_the_taking_and_is_named() {
        let r = read_page(page(&[entry(5), entry(6), entry(9), entry(10)]), 5);
        assert_eq!(seqs(&r), vec![5, 6]);
        assert_eq!(r.gap, Some((7, 8)));
        let at_start = read_page(page(&[entry(9), entry(10)]), 5);
        assert!(at_start.items.is_empty());
        assert_eq!(at_start.gap, Some((5, 8)));
    }

    #[test]
    fn a_page_of_old_entries_is_named_as_such() {
        let r = read_page(page(&[entry(1), entry(2), entry(3)]), 10);
        assert_eq!(r.all_old, Some((1, 3)));
        assert!(r.items.is_empty() && r.gap.is_none());
        assert_eq!(read_page(Page::default(), 10).all_old, None);
    }

    #[test]
    fn a_lookup_answer_must_account_for_every_key() {
        let asked = vec!["a".to_owned(), "b".to_owned()];
        let maintenance = parse_lookups(
            br#"{"melding": "vedlikehold"}"#,
            &asked,
            LookupKey::Document,
        );
        assert!(maintenance.is_err());
        let short = parse_lookups(
            br#"{"oppslag": [{"dokumentidentifikator": "a", "feilmelding": {"x": 1}}]}"#,
            &asked,
            LookupKey::Document,
        )
        .unwrap_err();
        assert!(short.to_string().contains("answers 1 of 2"), "{short}");
        let whole = parse_lookups(
            br#"{"oppslag": [{"dokumentidentifikator": "a", "folkeregisterperson": {}}, {"dokumentidentifikator": "b", "feilmelding": "ukjent"}]}"#,
            &asked,
            LookupKey::Document,
        )
        .unwrap();
        assert_eq!(whole.len(), 2);
        assert!(parse_lookups(br#"{"oppslag": []}"#, &[], LookupKey::Person).is_ok());
        // Naming the key without a document or a feilmelding is no answer.
        for empty in [
            &br#"{"oppslag": [{"dokumentidentifikator": "a", "feilmelding": {}}, {"dokumentidentifikator": "b"}]}"#[..],
            br#"{"oppslag": [{"dokumentidentifikator": "a", "feilmelding": {}}, {"dokumentidentifikator": "b", "folkeregisterperson": null}]}"#,
        ] {
            assert!(parse_lookups(empty, &asked, LookupKey::Document).is_err());
        }
    }
}
