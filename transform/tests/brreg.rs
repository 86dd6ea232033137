//! Golden tests for the business register: unit documents in the register's shapes (codes as
//! numbers, missing employees, only a postal address, deleted units) to canonical units, an
//! updates page with every kind of change and bad entries, and a batch's plan.

use std::collections::HashMap;

use chrono::{NaiveDate, TimeZone, Utc};
use schemas::business::{BUSINESS_UNIT, BUSINESS_UNIT_HISTORY, BUSINESS_UPDATE};
use schemas::tables::{DEAD_LETTER, PERSON};
use serde_json::Value;
use transform::brreg::plan::{Fetched, list_tables, plan};
use transform::brreg::{ChangeType, UnitKind, normalise, read_updates};
use transform::change::{Change, Plan};
use transform::model::Outcome;

fn fixture_text(name: &str) -> String {
    let path = format!("{}/tests/fixtures/brreg/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap()
}

fn fixture(name: &str) -> Value {
    serde_json::from_str(&fixture_text(name)).unwrap()
}

fn day(y: i32, m: u32, d: u32) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(y, m, d)
}

#[test]
fn an_enhet_takes_its_business_address_and_every_coded_field() {
    let u = normalise(&fixture("enhet-as.json"), UnitKind::Enhet).unwrap();
    assert_eq!(u.organization_number, "910000012");
    assert_eq!(u.name.as_deref(), Some("FJORDDATA AS"));
    assert_eq!(u.organization_form.as_deref(), Some("AS"));
    assert_eq!(u.industry_code.as_deref(), Some("62.010"));
    assert_eq!(u.employees, Some(12));
    assert_eq!(u.address_lines.as_deref(), Some("Kjøpmannsgata 12"));
    assert_eq!(u.municipality_number.as_deref(), Some("5035"));
    assert_eq!(
        u.postal_code.as_deref(),
        Some("7500"),
        "not the postal address"
    );
    assert_eq!(u.registered_date, day(2015, 3, 2));
    assert_eq!(u.started_date, day(2015, 2, 20));
    assert_eq!(u.bankrupt, Some(false));
    assert_eq!(u.deleted_date, None);
}

#[test]
fn optional_fields_are_absent_and_codes_keep_their_zeros() {
    let u = normalise(&fixture("enhet-enk-uten-ansatte.json"), UnitKind::Enhet).unwrap();
    assert_eq!(u.organization_number, "910000020", "a number as text");
    assert_eq!(u.employees, None);
    assert_eq!(u.municipality_number.as_deref(), Some("0301"));
    assert_eq!(u.postal_code.as_deref(), Some("0150"));
    assert_eq!(u.address_lines.as_deref(), Some("Postboks 1 Sentrum"));
    assert_eq!(u.bankrupt, Some(false), "\"false\" as text");
    let gone = normalise(&fixture("enhet-slettet.json"), UnitKind::Enhet).unwrap();
    assert_eq!(gone.deleted_date, day(2024, 5, 31));
    assert_eq!(gone.bankrupt, Some(true));
    assert_eq!(gone.under_liquidation, Some(true));
    assert_eq!(gone.employees, Some(0), "zero employees is not none");
}

#[test]
fn an_underenhet_takes_its_location_and_its_parent() {
    let u = normalise(&fixture("underenhet-bedr.json"), UnitKind::Underenhet).unwrap();
    assert_eq!(u.parent_organization_number.as_deref(), Some("910000012"));
    assert_eq!(u.postal_place.as_deref(), Some("HELL"));
    assert_eq!(u.started_date, day(2018, 9, 1));
    // Read as an enhet it has no business address: the postal one would be taken, and it has
    // none either.
    let as_enhet = normalise(&fixture("underenhet-bedr.json"), UnitKind::Enhet).unwrap();
    assert_eq!(as_enhet.municipality_number, None);
}

#[test]
fn invalid_and_odd_unit_documents_are_errors_naming_why() {
    for (doc, expected) in [
        (r#"{"organisasjonsnummer": "123456789"}"#, "check digit"),
        (r#"{"navn": "X"}"#, "organisasjonsnummer"),
        (r#"[]"#, "an array"),
        (r#"{"organisasjonsnummer": "91000001"}"#, "nine digits"),
    ] {
        let v: Value = serde_json::from_str(doc).unwrap();
        let e = normalise(&v, UnitKind::Enhet).unwrap_err().to_string();
        assert!(e.contains(expected), "{doc}: {e}");
    }
}

#[test]
fn an_updates_page_places_every_update_and_keeps_the_bad_ones() {
    let page = read_updates(
        fixture_text("oppdateringer-enheter.json").as_bytes(),
        UnitKind::Enhet,
    )
    .unwrap();
    let ids: Vec<i64> = page.updates.iter().map(|u| u.id).collect();
    assert_eq!(ids, [101, 102, 103, 104, 105, 106, 107]);
    assert_eq!(page.unplaced.len(), 1, "the update without an id");
    assert_eq!(
        page.unplaced[0].organization_number.as_deref(),
        Some("910000063")
    );
    assert_eq!(page.updates[3].change, ChangeType::Removed);
    assert_eq!(page.updates[6].change, ChangeType::Other("Ukjent".into()));
    assert!(
        page.updates[4]
            .rejected
            .as_deref()
            .is_some_and(|r| r.contains("check digit"))
    );
    assert_eq!(page.total_pages, Some(1));
    let empty = read_updates(
        fixture_text("oppdateringer-tom.json").as_bytes(),
        UnitKind::Enhet,
    )
    .unwrap();
    assert!(empty.updates.is_empty() && empty.unplaced.is_empty());
}

#[test]
fn an_error_in_a_200_or_the_other_lists_page_is_never_an_empty_page() {
    for body in [
        r#"{"timestamp": "2024-06-03T04:00:00Z", "status": 500, "error": "Internal Server Error"}"#,
        r#"[]"#,
        "<html>maintenance</html>",
        r#"{"_embedded": {"oppdaterteUnderenheter": []}, "page": {"totalPages": 0}}"#,
    ] {
        let e = read_updates(body.as_bytes(), UnitKind::Enhet);
        assert!(e.is_err(), "{body}: {e:?}");
    }
}

fn documents() -> HashMap<String, Fetched> {
    let mut docs = HashMap::new();
    for name in [
        "enhet-as.json",
        "enhet-enk-uten-ansatte.json",
        "enhet-slettet.json",
    ] {
        let doc = fixture(name);
        let number = doc["organisasjonsnummer"].to_string().replace('"', "");
        docs.insert(number, Fetched::Document(doc));
    }
    docs.insert("910000055".into(), Fetched::Gone);
    docs
}

#[test]
fn a_batch_writes_each_units_last_state_removes_what_left_and_logs_every_update_once() {
    let page = read_updates(
        fixture_text("oppdateringer-enheter.json").as_bytes(),
        UnitKind::Enhet,
    )
    .unwrap();
    let now = Utc.with_ymd_and_hms(2024, 6, 3, 5, 0, 0).unwrap();
    let planned = plan(
        UnitKind::Enhet,
        &page.updates,
        &page.unplaced,
        &documents(),
        0,
        now,
    );
    let states: Vec<(&str, i64)> = planned
        .states
        .iter()
        .map(|(u, id)| (u.organization_number.as_str(), *id))
        .collect();
    assert_eq!(
        states,
        [("910000020", 102), ("910000039", 103), ("910000012", 106)],
        "one state per unit, from its last update; a Sletting keeps the unit"
    );
    let removed: Vec<&str> = planned
        .removals
        .iter()
        .map(|(u, _)| u.organization_number.as_str())
        .collect();
    assert_eq!(removed, ["910000047", "910000055"], "Fjernet, and gone");
    assert_eq!(planned.inserts.len(), 3);
    assert_eq!(planned.closes.len(), 5, "every unit written or removed");
    let outcomes: Vec<(i64, Outcome)> = planned
        .updates
        .iter()
        .map(|r| (r.update.id, r.outcome))
        .collect();
    assert_eq!(outcomes.len(), 7, "every placed update once");
    assert_eq!(outcomes[4], (105, Outcome::DeadLettered));
    let removals: Vec<i64> = outcomes
        .iter()
        .filter(|(_, o)| *o == Outcome::Removed)
        .map(|(id, _)| *id)
        .collect();
    let removing: Vec<i64> = page
        .updates
        .iter()
        .filter(|u| ["910000047", "910000055"].contains(&u.organization_number.as_str()))
        .map(|u| u.id)
        .collect();
    assert_eq!(removals, removing, "the updates that removed a unit say so");
    assert!(
        outcomes
            .iter()
            .filter(|(id, _)| *id != 105 && !removals.contains(id))
            .all(|(_, o)| *o == Outcome::Applied)
    );
    let dead: Vec<&str> = planned
        .dead_letters
        .iter()
        .map(|d| d.cursor.as_str())
        .collect();
    assert_eq!(
        dead,
        ["oppdateringsid=105", "_embedded.oppdaterteEnheter[5]"],
        "the invalid number and the update without an id"
    );
    assert!(
        planned
            .dead_letters
            .iter()
            .all(|d| d.source == "brreg.enheter")
    );

    // Every table of the list gets its changes in its schema; another register's table is a bug.
    for table in list_tables(UnitKind::Enhet) {
        let changes = planned.changes(table, now).unwrap();
        for c in &changes {
            assert_eq!(c.rows().schema(), table.schema, "{}", table.name);
        }
        let rows: usize = changes.iter().map(|c| c.rows().num_rows()).sum();
        let expected = if std::ptr::eq(table, &*BUSINESS_UNIT) {
            5
        } else if std::ptr::eq(table, &*BUSINESS_UNIT_HISTORY) {
            8
        } else if std::ptr::eq(table, &*BUSINESS_UPDATE) {
            7
        } else {
            assert!(std::ptr::eq(table, &*DEAD_LETTER));
            2
        };
        assert_eq!(rows, expected, "{}", table.name);
    }
    assert!(matches!(
        planned.changes(&BUSINESS_UNIT, now).unwrap()[0],
        Change::Remove(_)
    ));
    assert!(planned.changes(&PERSON, now).is_err());
}

#[test]
fn a_batch_after_a_position_takes_only_the_updates_after_it() {
    let page = read_updates(
        fixture_text("oppdateringer-enheter.json").as_bytes(),
        UnitKind::Enhet,
    )
    .unwrap();
    let now = Utc.with_ymd_and_hms(2024, 6, 3, 5, 0, 0).unwrap();
    let planned = plan(UnitKind::Enhet, &page.updates, &[], &documents(), 104, now);
    let ids: Vec<i64> = planned.updates.iter().map(|r| r.update.id).collect();
    assert_eq!(ids, [105, 106, 107]);
    assert_eq!(planned.states.len(), 1);
    // A document naming another unit is not taken for the one asked.
    let mut wrong = documents();
    wrong.insert(
        "910000012".into(),
        Fetched::Document(fixture("enhet-slettet.json")),
    );
    let planned = plan(UnitKind::Enhet, &page.updates, &[], &wrong, 105, now);
    assert!(planned.states.is_empty());
    assert!(planned.dead_letters[0].reason.contains("910000039"));
}

#[test]
fn an_update_id_repeated_is_taken_once_and_a_different_one_is_dead_lettered() {
    let page = read_updates(
        fixture_text("oppdateringer-enheter.json").as_bytes(),
        UnitKind::Enhet,
    )
    .unwrap();
    let now = Utc.with_ymd_and_hms(2024, 6, 3, 5, 0, 0).unwrap();
    let mut updates = page.updates.clone();
    updates.push(page.updates[0].clone());
    let mut other = page.updates[1].clone();
    other.id = 101;
    updates.push(other);
    let planned = plan(UnitKind::Enhet, &updates, &[], &documents(), 0, now);
    let ids: Vec<i64> = planned.updates.iter().map(|r| r.update.id).collect();
    assert_eq!(ids, [101, 102, 103, 104, 105, 106, 107], "each id once");
    assert!(
        planned
            .dead_letters
            .iter()
            .any(|d| d.cursor == "oppdateringsid=101" && d.reason.contains("second, different")),
        "{:?}",
        planned.dead_letters
    );
}
