//! The lake writer against a temporary lake: a MERGE of `person` moves a person whose birth year
//! was corrected (never two rows), and the history MERGE closes, scrubs and inserts versions.

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use ingest::lake::Lake;
use schemas::cursor::FREG_FEED;
use schemas::tables::{PERSON, PERSON_HISTORY};
use serde_json::Value;
use transform::encode;
use transform::model::{Address, Person, PersonVersion};

fn person(id: &str, born: &str, street: Option<&str>) -> Person {
    let birth = NaiveDate::parse_from_str(born, "%Y-%m-%d").unwrap();
    Person {
        person_id: id.to_owned(),
        id_type: "foedselsnummer".into(),
        birth_date: Some(birth),
        birth_year: birth.format("%Y").to_string().parse().unwrap(),
        status: Some("bosatt".into()),
        address_protection: if street.is_some() {
            "ugradert".into()
        } else {
            "strengtFortrolig".into()
        },
        address: Address {
            municipality_number: street.map(|_| "5035".to_owned()),
            street_name: street.map(str::to_owned),
            house_number: street.map(|_| "1".to_owned()),
            ..Address::default()
        },
        ..Person::default()
    }
}

fn at(day: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 1, day, 12, 0, 0).unwrap()
}

fn version(p: Person, sequence: i64, from: u32, to: Option<u32>) -> PersonVersion {
    PersonVersion {
        person: p,
        sequence,
        valid_from: at(from),
        valid_to: to.map(at),
    }
}

async fn rows(lake: &Lake, table: &'static schemas::tables::Table, sql: &str) -> Vec<Value> {
    let ctx = lake.session(&[table]).await.unwrap();
    let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
    let mut buf = Vec::new();
    let mut writer = arrow::json::LineDelimitedWriter::new(&mut buf);
    for b in &batches {
        writer.write(b).unwrap();
    }
    writer.finish().unwrap();
    String::from_utf8(buf)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

async fn temporary_lake() -> (tempfile::TempDir, Lake) {
    let dir = tempfile::tempdir().unwrap();
    let url = url::Url::from_directory_path(dir.path()).unwrap();
    let lake = Lake::open(&url).await.unwrap();
    (dir, lake)
}

#[tokio::test]
async fn a_corrected_birth_date_moves_the_person_to_its_partition_and_never_twice() {
    let (_dir, mut lake) = temporary_lake().await;
    let a = person("01019012345", "1990-01-01", Some("Storgata"));
    let b = person("02029112345", "1991-02-02", Some("Kirkegata"));
    let rows1 = encode::persons(&[(a.clone(), 1), (b, 1)], at(1)).unwrap();
    let none = encode::persons(&[], at(1)).unwrap();
    lake.upsert_persons(rows1, none.clone(), &[(FREG_FEED, 1)])
        .await
        .unwrap();
    // The register corrects a's birth date to 1991: a batch holding only the 1991 partition.
    let corrected = person("01019012345", "1991-03-03", Some("Storgata"));
    let rows2 = encode::persons(&[(corrected, 2)], at(2)).unwrap();
    lake.upsert_persons(rows2, none, &[(FREG_FEED, 2)])
        .await
        .unwrap();
    lake.refresh().await.unwrap();
    let found = rows(
        &lake,
        &PERSON,
        "SELECT person_id, birth_year, CAST(birth_date AS VARCHAR) AS born FROM person ORDER BY person_id",
    )
    .await;
    assert_eq!(found.len(), 2, "one row per person: {found:?}");
    assert_eq!(found[0]["person_id"], "01019012345");
    assert_eq!(found[0]["birth_year"], 1991);
    assert_eq!(found[0]["born"], "1991-03-03");
    assert_eq!(
        lake.position(&PERSON, FREG_FEED).await.unwrap(),
        Some(2),
        "the position is committed with the rows"
    );
}

#[tokio::test]
async fn history_closes_the_open_version_and_a_scrub_withholds_every_address() {
    let (_dir, mut lake) = temporary_lake().await;
    let empty = encode::history(&[], at(1)).unwrap();
    let a1 = person("01019012345", "1990-01-01", Some("Storgata"));
    let b1 = person("02029112345", "1991-02-02", Some("Kirkegata"));
    let inserts =
        encode::history(&[version(a1, 1, 1, None), version(b1, 1, 1, None)], at(1)).unwrap();
    lake.apply_history(
        empty.clone(),
        empty.clone(),
        empty.clone(),
        inserts,
        &[(FREG_FEED, 1)],
    )
    .await
    .unwrap();
    // a moves (its open version ends, a new one opens); b's birth year was corrected and it
    // moves too: the close must find the version in the old partition.
    let a2 = person("01019012345", "1990-01-01", Some("Nygata"));
    let b2 = person("02029112345", "1992-02-02", Some("Fjordveien"));
    let closes = encode::history(
        &[
            version(a2.clone(), 2, 1, Some(3)),
            version(b2.clone(), 2, 1, Some(3)),
        ],
        at(3),
    )
    .unwrap();
    let inserts =
        encode::history(&[version(a2, 2, 3, None), version(b2, 2, 3, None)], at(3)).unwrap();
    lake.apply_history(
        closes,
        empty.clone(),
        empty.clone(),
        inserts,
        &[(FREG_FEED, 2)],
    )
    .await
    .unwrap();
    // a becomes strengt fortrolig: every one of its versions loses its address.
    let hidden = person("01019012345", "1990-01-01", None);
    let scrubs = encode::history(&[version(hidden.clone(), 3, 3, Some(5))], at(5)).unwrap();
    let inserts = encode::history(&[version(hidden, 3, 5, None)], at(5)).unwrap();
    lake.apply_history(
        empty.clone(),
        scrubs,
        empty.clone(),
        inserts,
        &[(FREG_FEED, 3)],
    )
    .await
    .unwrap();
    lake.refresh().await.unwrap();
    let versions = rows(
        &lake,
        &PERSON_HISTORY,
        "SELECT person_id, sequence, street_name, municipality_number, valid_to IS NULL AS open \
         FROM person_history ORDER BY person_id, sequence",
    )
    .await;
    let of =
        |id: &str| -> Vec<&Value> { versions.iter().filter(|v| v["person_id"] == id).collect() };
    let a = of("01019012345");
    assert_eq!(a.len(), 3, "{a:?}");
    for v in &a {
        assert!(
            v.get("street_name").is_none_or(Value::is_null)
                && v.get("municipality_number").is_none_or(Value::is_null),
            "a strengt fortrolig person's versions hold no address: {v}"
        );
    }
    assert_eq!(
        a.iter().filter(|v| v["open"] == true).count(),
        1,
        "one open version: {a:?}"
    );
    assert_eq!(a.last().unwrap()["open"], true);
    let b = of("02029112345");
    assert_eq!(b.len(), 2, "{b:?}");
    assert_eq!(
        b[0]["open"], false,
        "the version in the old partition was closed"
    );
    assert_eq!(b[1]["open"], true);
    assert_eq!(b[1]["street_name"], "Fjordveien");
}
