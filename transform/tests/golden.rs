//! Golden tests: person documents in the register's shapes and with its quirks (nested house
//! numbers and postcodes, upper-case grading, death as object or array, unknown fields and
//! values, D-numbers, strengt fortrolig without a residence address) to canonical rows.

use std::collections::HashMap;

use chrono::{NaiveDate, TimeZone, Utc};
use transform::freg::batch::{document_key, plan};
use transform::freg::feed::{Item, Lookup, parse_page, read_page};
use transform::freg::{normalise, versions};
use transform::{ErrorKind, Person, encode};

fn fixture(name: &str) -> serde_json::Value {
    let path = format!("{}/tests/fixtures/freg/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn person(name: &str) -> Person {
    normalise(&fixture(name), None).unwrap_or_else(|e| panic!("{name}: {e}"))
}

const ALL_VALID: &[&str] = &[
    "person-vegadresse-history.json",
    "person-strengt-fortrolig.json",
    "person-fortrolig-matrikkeladresse.json",
    "person-doed-object.json",
    "person-doed-array-flat-address.json",
    "person-dnummer.json",
    "person-klientadresse-utflyttet.json",
    "person-barn-stjordal.json",
];

#[test]
fn nested_vegadresse_with_unknown_fields() {
    let p = person("person-vegadresse-history.json");
    assert_eq!(p.person_id, "11888500016");
    assert_eq!(p.birth_date, NaiveDate::from_ymd_opt(1985, 8, 11));
    assert_eq!(p.address.municipality_number.as_deref(), Some("5035"));
    assert_eq!(p.address.street_name.as_deref(), Some("Kjøpmannsgata"));
    assert_eq!(p.address.house_number.as_deref(), Some("12"));
    assert_eq!(p.address.house_letter.as_deref(), Some("B"));
    assert_eq!(p.address.postal_code.as_deref(), Some("7500"));
    assert_eq!(p.spouse_id.as_deref(), Some("03889200099"));
    assert_eq!(p.marital_status.as_deref(), Some("gift"));
    insta::assert_debug_snapshot!(p);
}

#[test]
fn strengt_fortrolig_withholds_every_address_whatever_the_spelling() {
    let p = person("person-strengt-fortrolig.json");
    assert_eq!(p.address_protection, "strengt_fortrolig");
    assert_eq!(p.address, Default::default(), "no address, no kommune");
    let doc = fixture("person-strengt-fortrolig.json");
    let history = versions::from_document(&p, &doc, 7);
    assert!(
        history
            .iter()
            .all(|v| v.person.address == Default::default()),
        "no address in any version"
    );
}

#[test]
fn fortrolig_keeps_the_matrikkeladresse_marked() {
    let p = person("person-fortrolig-matrikkeladresse.json");
    assert_eq!(p.address_protection, "fortrolig");
    assert_eq!(p.address.municipality_number.as_deref(), Some("3422"));
    assert_eq!(p.address.postal_place.as_deref(), Some("RENA"));
    assert!(!p.address_is_open());
    assert_eq!(p.marital_status.as_deref(), Some("enkeEllerEnkemann"));
}

#[test]
fn death_as_object_or_array() {
    let a = person("person-doed-object.json");
    let b = person("person-doed-array-flat-address.json");
    assert_eq!(a.death_date, NaiveDate::from_ymd_opt(2024, 11, 1));
    assert_eq!(b.death_date, NaiveDate::from_ymd_opt(2023, 5, 17));
    assert_eq!(
        (a.status.as_deref(), b.status.as_deref()),
        (Some("doed"), Some("doed"))
    );
    // Flat house number (a number, not text) and postcode; upper-case sex; only a birth year.
    assert_eq!(b.address.house_number.as_deref(), Some("3"));
    assert_eq!(b.address.postal_code.as_deref(), Some("5003"));
    assert_eq!(b.sex.as_deref(), Some("kvinne"));
    assert_eq!((b.birth_date, b.birth_year), (None, 1960));
}

#[test]
fn d_number_without_residence() {
    let p = person("person-dnummer.json");
    assert_eq!(p.id_type, "dNummer");
    assert_eq!(p.status.as_deref(), Some("ikkeBosatt"));
    assert_eq!(p.address.municipality_number, None);
    assert_eq!(p.citizenship.as_deref(), Some("POL"));
    assert_eq!(
        p.marital_status.as_deref(),
        Some("uoppgitt"),
        "values are kept as the register writes them"
    );
}

#[test]
fn klientadresse_and_emigration() {
    let p = person("person-klientadresse-utflyttet.json");
    assert_eq!(p.address_protection, "klientadresse");
    assert_eq!(p.emigrated_to.as_deref(), Some("SWE"));
    assert_eq!(
        p.address.municipality_number, None,
        "the residence ended at emigration"
    );
}

#[test]
fn child_with_parents() {
    let p = person("person-barn-stjordal.json");
    assert_eq!(p.mother_id.as_deref(), Some("03889200099"));
    assert_eq!(p.father_id.as_deref(), Some("11888500016"));
}

#[test]
fn bad_check_digit_is_bad_data() {
    let err = normalise(&fixture("person-bad-check-digit.json"), None).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BadData);
    assert!(err.to_string().contains("11888500017"), "{err}");
}

#[test]
fn history_from_the_document_answers_past_dates() {
    let doc = fixture("person-vegadresse-history.json");
    let p = normalise(&doc, None).unwrap();
    let v = versions::from_document(&p, &doc, 7);
    let at = |y, m, d| Utc.with_ymd_and_hms(y, m, d, 12, 0, 0).unwrap();
    let in_force = |t| {
        v.iter()
            .find(|x| x.valid_from <= t && x.valid_to.is_none_or(|u| u > t))
            .map(|x| x.person.address.municipality_number.clone())
    };
    assert_eq!(
        in_force(at(2018, 1, 1)),
        Some(Some("5001".into())),
        "Trondheim before the move"
    );
    assert_eq!(
        in_force(at(2022, 1, 1)),
        Some(Some("5035".into())),
        "Stjørdal after it"
    );
    assert_eq!(
        in_force(at(1990, 1, 1)),
        Some(None),
        "born, no known residence yet"
    );
    assert_eq!(
        v.iter().filter(|x| x.valid_to.is_none()).count(),
        1,
        "one open version"
    );
    insta::assert_debug_snapshot!(
        v.iter()
            .map(|x| (
                x.valid_from,
                x.valid_to,
                x.person.address.municipality_number.clone(),
                x.person.status.clone()
            ))
            .collect::<Vec<_>>()
    );

    let emigrated = fixture("person-klientadresse-utflyttet.json");
    let e = normalise(&emigrated, None).unwrap();
    let ev = versions::from_document(&e, &emigrated, 7);
    let status_at = |t| {
        ev.iter()
            .find(|x| x.valid_from <= t && x.valid_to.is_none_or(|u| u > t))
            .and_then(|x| x.person.status.clone())
    };
    assert_eq!(status_at(at(2021, 1, 1)).as_deref(), Some("bosatt"));
    assert_eq!(status_at(at(2025, 1, 1)).as_deref(), Some("utflyttet"));
}

#[test]
fn person_rows_as_arrow() {
    let rows: Vec<(Person, i64)> = ALL_VALID
        .iter()
        .enumerate()
        .map(|(i, f)| (person(f), i as i64 + 1))
        .collect();
    let batch = encode::persons(&rows, Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()).unwrap();
    insta::assert_snapshot!(
        arrow::util::pretty::pretty_format_batches(&[batch])
            .unwrap()
            .to_string()
    );
}

fn fixture_page() -> Vec<Item> {
    let page = parse_page(
        &std::fs::read(format!(
            "{}/tests/fixtures/freg/feed-page.json",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap(),
        1,
    )
    .unwrap();
    read_page(page, 1).items
}

fn entry(item: &Item) -> &transform::freg::FeedEntry {
    match item {
        Item::Entry(e) => e,
        Item::Bad(b) => panic!("a bad entry in the fixture: {b:?}"),
    }
}

#[test]
fn feed_batch_plan_dead_letters_and_keeps_unknown_event_types() {
    let page = fixture_page();
    let lookup = |name: &str, key: &str| {
        let raw = serde_json::to_string(&fixture(name)).unwrap();
        Lookup {
            id: None,
            dokumentidentifikator: Some(key.into()),
            folkeregisterperson: Some(serde_json::value::RawValue::from_string(raw).unwrap()),
            feilmelding: None,
        }
    };
    let mut docs = HashMap::new();
    let key = |i: usize| document_key(entry(&page[i]));
    docs.insert(key(0), lookup("person-vegadresse-history.json", &key(0)));
    docs.insert(key(1), lookup("person-bad-check-digit.json", &key(1)));
    // The third entry has no persondokument and no answer: dead-lettered, the batch goes on.
    let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    let planned = plan(&page, &[], &docs, 0, now);
    let outcomes: Vec<_> = planned
        .events
        .iter()
        .map(|e| (e.sequence, e.event_type.as_str(), e.outcome.as_str()))
        .collect();
    assert_eq!(
        outcomes,
        vec![
            (1, "endringIIdentitetsgrunnlag", "applied"),
            (2, "enHendelsestypeRegisteretInnfoerteIAar", "dead_lettered"),
            (3, "endringIAdressebeskyttelse", "dead_lettered")
        ]
    );
    assert_eq!(planned.dead_letters.len(), 2);
    assert!(
        planned.dead_letters[0].reason.contains("check digit"),
        "{:?}",
        planned.dead_letters[0]
    );
    assert_eq!(planned.dead_letters[0].cursor, "sequence=2");
    let replay: serde_json::Value = serde_json::from_str(&planned.dead_letters[0].replay).unwrap();
    assert_eq!(replay["sekvensnummer"], "2");
    assert_eq!(replay["persondokument"], key(1).as_str());
    assert_eq!(replay["element"], "identifikasjonsnummer");
    assert!(
        !planned.dead_letters[0].replay.contains("adressenavn"),
        "the document's content is not kept: {}",
        planned.dead_letters[0].replay
    );
    assert_eq!(planned.persons.len(), 1);
    // Replay after sequence 1: that entry is skipped.
    assert_eq!(plan(&page, &[], &docs, 1, now).events.len(), 2);
}

#[test]
fn messages_validate_against_the_topic_schemas_and_withhold_protected_addresses() {
    use schemas::topics::{FREG_EVENT, FREG_PERSON};
    let rows: Vec<(Person, i64)> = ALL_VALID
        .iter()
        .enumerate()
        .map(|(i, f)| (person(f), i as i64 + 1))
        .collect();
    let batch = encode::persons(&rows, Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()).unwrap();
    let schema: serde_json::Value = serde_json::from_str(FREG_PERSON.schema).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let messages = transform::messages::person_messages(&FREG_PERSON, &batch, false).unwrap();
    assert_eq!(messages.len(), rows.len());
    for (m, (p, seq)) in messages.iter().zip(&rows) {
        let value: serde_json::Value = serde_json::from_slice(m.value.as_ref().unwrap()).unwrap();
        assert!(
            validator.is_valid(&value),
            "{value}: {:?}",
            validator
                .iter_errors(&value)
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
        );
        assert_eq!(m.key, p.person_id);
        assert_eq!(m.sequence, *seq);
        assert!(
            m.headers
                .iter()
                .any(|(k, v)| *k == "ce_sequence" && v == &seq.to_string())
        );
        assert!(
            m.headers
                .iter()
                .any(|(k, v)| *k == "ce_subject" && v == &p.person_id)
        );
        // Without confidential access no message tells who is protected: no address field,
        // no municipality, no level, for anyone.
        for column in schemas::tables::ADDRESS_COLUMNS
            .iter()
            .chain(&["address_protection"])
        {
            assert!(
                value.get(*column).is_none(),
                "{column} in a message without confidential access: {value}"
            );
        }
    }
    let with_confidential =
        transform::messages::person_messages(&FREG_PERSON, &batch, true).unwrap();
    let strict: serde_json::Value =
        serde_json::from_slice(with_confidential[1].value.as_ref().unwrap()).unwrap();
    assert_eq!(strict["address_protection"], "strengt_fortrolig");
    for (m, (p, _)) in with_confidential.iter().zip(&rows) {
        let value: serde_json::Value = serde_json::from_slice(m.value.as_ref().unwrap()).unwrap();
        assert!(validator.is_valid(&value), "{value}");
        if p.address_protection != "ugradert" {
            assert!(
                value["street_name"].is_null()
                    && value["postal_code"].is_null()
                    && value["house_number"].is_null(),
                "protected address in a message: {value}"
            );
        }
        if p.address_protection == "strengt_fortrolig" {
            assert!(value["municipality_number"].is_null(), "{value}");
        }
    }

    let planned = plan(
        &fixture_page(),
        &[],
        &HashMap::new(),
        0,
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
    );
    let events = encode::events(
        &planned.events,
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
    )
    .unwrap();
    let schema: serde_json::Value = serde_json::from_str(FREG_EVENT.schema).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    for m in transform::messages::event_messages(&FREG_EVENT, &events, false).unwrap() {
        let value: serde_json::Value = serde_json::from_slice(m.value.as_ref().unwrap()).unwrap();
        assert!(validator.is_valid(&value), "{value}");
    }
}
