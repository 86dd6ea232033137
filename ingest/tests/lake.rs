//! The lake writer against a temporary lake: a rewrite of `person` moves a person whose birth
//! year was corrected (never two rows), a removal and a withholding find their rows, the history
//! rewrite closes, scrubs and inserts versions, a change a table's kind does not take is
//! refused, a rewrite racing maintenance is a conflict, never two copies of a row, a rewrite
//! of more files than one writer takes changes every row once, and rewrites are checkpointed
//! once they name enough files, keeping their tombstones.

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use ingest::lake::Lake;
use schemas::cursor::FREG_FEED;
use schemas::tables::{PERSON, PERSON_EVENT, PERSON_HISTORY};
use serde_json::Value;
use transform::change::Change;
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

/// The rows `sql` selects from `person`, as a printed table.
async fn table_text(lake: &Lake, sql: &str) -> String {
    let ctx = lake.session(&[&PERSON]).await.unwrap();
    let got = ctx.sql(sql).await.unwrap().collect().await.unwrap();
    arrow::util::pretty::pretty_format_batches(&got)
        .unwrap()
        .to_string()
}

async fn temporary_lake() -> (tempfile::TempDir, Lake) {
    let dir = tempfile::tempdir().unwrap();
    let url = url::Url::from_directory_path(dir.path()).unwrap();
    let lake = Lake::open(&url).await.unwrap();
    (dir, lake)
}

#[tokio::test]
async fn a_corrected_birth_date_moves_the_person_to_its_partition_and_never_twice() {
    let (dir, mut lake) = temporary_lake().await;
    let a = person("01019012345", "1990-01-01", Some("Storgata"));
    let b = person("02029112345", "1991-02-02", Some("Kirkegata"));
    let rows1 = encode::persons(&[(a.clone(), 1), (b, 1)], at(1)).unwrap();
    lake.apply_changes(&PERSON, vec![Change::Upsert(rows1)], &[(FREG_FEED, 1)])
        .await
        .unwrap();
    // The register corrects a's birth date to 1991: a batch holding only the 1991 partition.
    let corrected = person("01019012345", "1991-03-03", Some("Storgata"));
    let rows2 = encode::persons(&[(corrected, 2)], at(2)).unwrap();
    lake.apply_changes(&PERSON, vec![Change::Upsert(rows2)], &[(FREG_FEED, 2)])
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
    // A rewrite of a few files leaves checkpoints to Delta's interval (and to later rewrites).
    assert!(
        !dir.path()
            .join("person/_delta_log/_last_checkpoint")
            .exists()
    );
}

#[tokio::test]
async fn history_closes_the_open_version_and_a_scrub_withholds_every_address() {
    let (_dir, mut lake) = temporary_lake().await;
    let a1 = person("01019012345", "1990-01-01", Some("Storgata"));
    let b1 = person("02029112345", "1991-02-02", Some("Kirkegata"));
    let inserts =
        encode::history(&[version(a1, 1, 1, None), version(b1, 1, 1, None)], at(1)).unwrap();
    lake.apply_changes(
        &PERSON_HISTORY,
        vec![Change::Insert(inserts)],
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
    lake.apply_changes(
        &PERSON_HISTORY,
        vec![Change::Close(closes), Change::Insert(inserts)],
        &[(FREG_FEED, 2)],
    )
    .await
    .unwrap();
    // a becomes strengt fortrolig: every one of its versions loses its address.
    let hidden = person("01019012345", "1990-01-01", None);
    let scrubs = encode::history(&[version(hidden.clone(), 3, 3, Some(5))], at(5)).unwrap();
    let inserts = encode::history(&[version(hidden, 3, 5, None)], at(5)).unwrap();
    lake.apply_changes(
        &PERSON_HISTORY,
        vec![Change::Scrub(scrubs), Change::Insert(inserts)],
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

#[tokio::test]
async fn a_removal_and_a_withholding_find_their_rows_in_any_partition() {
    let (_dir, mut lake) = temporary_lake().await;
    let a = person("01019012345", "1990-01-01", Some("Storgata"));
    let b = person("02029112345", "1991-02-02", Some("Kirkegata"));
    let c = person("03039212345", "1992-03-03", Some("Fjordveien"));
    let rows1 = encode::persons(&[(a, 1), (b.clone(), 1), (c, 1)], at(1)).unwrap();
    lake.apply_changes(&PERSON, vec![Change::Append(rows1)], &[(FREG_FEED, 1)])
        .await
        .unwrap();
    // The removal and the withholding name only the key: their other columns (the birth year
    // that decides the partition among them) are not the stored row's.
    let mut gone = person("01019012345", "2000-01-01", None);
    gone.address_protection = "ugradert".into();
    let withheld = Person {
        person_id: b.person_id.clone(),
        address_protection: "ukjent".into(),
        ..Person::default()
    };
    lake.apply_changes(
        &PERSON,
        vec![
            Change::Remove(encode::persons(&[(gone, 2)], at(2)).unwrap()),
            Change::Withhold(encode::persons(&[(withheld, 2)], at(2)).unwrap()),
        ],
        &[(FREG_FEED, 2)],
    )
    .await
    .unwrap();
    lake.refresh().await.unwrap();
    let found = rows(
        &lake,
        &PERSON,
        "SELECT person_id, birth_year, street_name, municipality_number, address_protection, \
         last_sequence FROM person ORDER BY person_id",
    )
    .await;
    assert_eq!(found.len(), 2, "the removed person is gone: {found:?}");
    assert_eq!(found[0]["person_id"], "02029112345");
    assert_eq!(
        found[0]["birth_year"], 1991,
        "the withheld row keeps its state"
    );
    assert!(
        found[0].get("street_name").is_none_or(Value::is_null)
            && found[0]
                .get("municipality_number")
                .is_none_or(Value::is_null),
        "the withheld row holds no address: {}",
        found[0]
    );
    assert_eq!(found[0]["address_protection"], "ukjent");
    assert_eq!(found[0]["last_sequence"], 2, "published as changed");
    assert_eq!(found[1]["person_id"], "03039212345");
    assert_eq!(
        found[1]["street_name"], "Fjordveien",
        "others are untouched"
    );
}

#[tokio::test]
async fn a_change_the_tables_kind_does_not_take_is_refused_naming_the_table() {
    let (_dir, mut lake) = temporary_lake().await;
    let a = person("01019012345", "1990-01-01", Some("Storgata"));
    let rows1 = encode::persons(&[(a, 1)], at(1)).unwrap();
    let err = lake
        .apply_changes(
            &PERSON_EVENT,
            vec![Change::Upsert(rows1)],
            &[(FREG_FEED, 1)],
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("person_event") && err.contains("upsert"),
        "{err}"
    );
    assert_eq!(lake.position(&PERSON_EVENT, FREG_FEED).await.unwrap(), None);
}

/// The business register's plan through the same writer: units upserted and removed by
/// organisation number in an unpartitioned table, history closed and inserted, every update
/// logged once.
#[tokio::test]
async fn a_business_units_plan_upserts_removes_and_keeps_history() {
    use schemas::business::{BUSINESS_UNIT, BUSINESS_UNIT_HISTORY, BUSINESS_UPDATE};
    use schemas::tables::DEAD_LETTER;
    use std::collections::HashMap;
    use transform::brreg::plan::{Fetched, list_tables, plan};
    use transform::brreg::{ChangeType, UnitKind, Update};
    use transform::change::Plan;

    let dir = tempfile::tempdir().unwrap();
    let url = url::Url::from_directory_path(dir.path()).unwrap();
    let tables = list_tables(UnitKind::Enhet);
    let mut lake = Lake::open_tables(&url, &tables).await.unwrap();
    let doc = |number: &str, name: &str, kommune: &str| {
        Fetched::Document(serde_json::json!({
            "organisasjonsnummer": number, "navn": name,
            "organisasjonsform": {"kode": "AS"},
            "forretningsadresse": {"kommunenummer": kommune, "postnummer": "7500", "adresse": ["Torget 1"]}
        }))
    };
    let update = |id: i64, number: &str, change: ChangeType| Update {
        id,
        at: Some(at(id as u32)),
        organization_number: number.to_owned(),
        change,
        rejected: None,
    };
    let app = "regsync.brreg.enheter.feed";
    // Two units registered, one of them twice in the batch.
    let first = plan(
        UnitKind::Enhet,
        &[
            update(1, "910000012", ChangeType::New),
            update(2, "910000020", ChangeType::New),
            update(3, "910000012", ChangeType::Changed),
        ],
        &[],
        &HashMap::from([
            (
                "910000012".to_owned(),
                doc("910000012", "FJORDDATA AS", "5035"),
            ),
            (
                "910000020".to_owned(),
                doc("910000020", "TORGET AS", "5035"),
            ),
        ]),
        0,
        at(20),
    );
    for table in tables {
        let changes = first.changes(table, at(20)).unwrap();
        lake.apply_changes(table, changes, &[(app, 3)])
            .await
            .unwrap();
    }
    // One moves to another kommune, the other is removed from the register.
    let second = plan(
        UnitKind::Enhet,
        &[
            update(4, "910000012", ChangeType::Changed),
            update(5, "910000020", ChangeType::Removed),
        ],
        &[],
        &HashMap::from([(
            "910000012".to_owned(),
            doc("910000012", "FJORDDATA AS", "5001"),
        )]),
        3,
        at(21),
    );
    for table in tables {
        let changes = second.changes(table, at(21)).unwrap();
        lake.apply_changes(table, changes, &[(app, 5)])
            .await
            .unwrap();
    }
    lake.refresh().await.unwrap();
    let current = rows(
        &lake,
        &BUSINESS_UNIT,
        "SELECT organization_number, municipality_number, last_update_id FROM business_unit",
    )
    .await;
    assert_eq!(current.len(), 1, "the removed unit is gone: {current:?}");
    assert_eq!(current[0]["municipality_number"], "5001");
    assert_eq!(current[0]["last_update_id"], 4);
    let history = rows(
        &lake,
        &BUSINESS_UNIT_HISTORY,
        "SELECT organization_number, update_id, municipality_number, valid_to IS NULL AS open \
         FROM business_unit_history ORDER BY organization_number, update_id",
    )
    .await;
    let open: Vec<(&Value, &Value)> = history
        .iter()
        .filter(|v| v["open"] == true)
        .map(|v| (&v["organization_number"], &v["update_id"]))
        .collect();
    assert_eq!(history.len(), 3, "{history:?}");
    assert_eq!(
        open.len(),
        1,
        "only the remaining unit's last version is open: {history:?}"
    );
    assert_eq!(open[0].1, 4);
    let logged = rows(
        &lake,
        &BUSINESS_UPDATE,
        "SELECT update_id FROM business_update ORDER BY update_id",
    )
    .await;
    let ids: Vec<i64> = logged
        .iter()
        .map(|r| r["update_id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [1, 2, 3, 4, 5], "every update once");
    for table in [
        &*BUSINESS_UNIT,
        &*BUSINESS_UNIT_HISTORY,
        &*BUSINESS_UPDATE,
        &*DEAD_LETTER,
    ] {
        assert_eq!(
            lake.position(table, app).await.unwrap(),
            Some(5),
            "{}",
            table.name
        );
    }
}

/// A lake whose `kafka_sink` has an earlier version's columns: opening it rewrites the sink's
/// log with this version's columns and keeps its position; another table with other columns
/// stops the open, naming them.
#[tokio::test]
async fn an_earlier_versions_kafka_sink_is_migrated_keeping_its_position() {
    use arrow::datatypes::{DataType, Field, Schema};
    use deltalake::DeltaTable;
    use deltalake::kernel::StructType;
    use deltalake::kernel::Transaction;
    use deltalake::kernel::engine::arrow_conversion::TryIntoKernel as _;
    use deltalake::kernel::transaction::CommitProperties;
    use schemas::cursor::KAFKA_FREG;
    use schemas::tables::KAFKA_SINK;

    let dir = tempfile::tempdir().unwrap();
    let url = url::Url::from_directory_path(dir.path()).unwrap();
    let create = |name: &str, fields: Vec<Field>, position: Option<i64>| {
        let location = url.join(&format!("{name}/")).unwrap();
        std::fs::create_dir_all(location.path()).unwrap();
        async move {
            let schema: StructType = (&Schema::new(fields)).try_into_kernel().unwrap();
            let mut properties = CommitProperties::default();
            if let Some(p) = position {
                properties =
                    properties.with_application_transactions(vec![Transaction::new(KAFKA_FREG, p)]);
            }
            DeltaTable::try_from_url(location)
                .await
                .unwrap()
                .create()
                .with_columns(schema.fields().cloned())
                .with_commit_properties(properties)
                .await
                .unwrap();
        }
    };
    let old = [
        "from_sequence",
        "to_sequence",
        "event_messages",
        "person_messages",
    ]
    .into_iter()
    .map(|n| Field::new(n, DataType::Int64, false))
    .collect();
    create("kafka_sink", old, Some(42)).await;
    let mut lake = Lake::open(&url).await.unwrap();
    assert_eq!(
        lake.position(&KAFKA_SINK, KAFKA_FREG).await.unwrap(),
        Some(42)
    );
    let ctx = lake.session(&[&KAFKA_SINK]).await.unwrap();
    let columns: Vec<String> = ctx
        .table("kafka_sink")
        .await
        .unwrap()
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    assert!(columns.contains(&"register".to_owned()), "{columns:?}");
    lake.append(&KAFKA_SINK, None, &[(KAFKA_FREG, 50)])
        .await
        .unwrap();
    assert_eq!(
        lake.position(&KAFKA_SINK, KAFKA_FREG).await.unwrap(),
        Some(50)
    );

    // Another table with other columns is not rewritten: the open stops and says why.
    let other = tempfile::tempdir().unwrap();
    let other_url = url::Url::from_directory_path(other.path()).unwrap();
    let location = other_url.join("person_event/").unwrap();
    std::fs::create_dir_all(location.path()).unwrap();
    let schema: StructType = (&Schema::new(vec![Field::new("seq", DataType::Int64, false)]))
        .try_into_kernel()
        .unwrap();
    DeltaTable::try_from_url(location)
        .await
        .unwrap()
        .create()
        .with_columns(schema.fields().cloned())
        .await
        .unwrap();
    let err = Lake::open(&other_url).await.unwrap_err().to_string();
    assert!(
        err.contains("person_event") && err.contains("[seq]") && err.contains("another version"),
        "{err}"
    );
}

/// An earlier version's `person` (without the columns this version added at its end) gains them
/// at the open, keeping its rows (null in the new columns) and its position; rows with them are
/// written after.
#[tokio::test]
async fn an_earlier_versions_person_table_gains_the_new_columns_keeping_rows_and_position() {
    use arrow::datatypes::Schema;
    use deltalake::DeltaTable;
    use deltalake::kernel::StructType;
    use deltalake::kernel::Transaction;
    use deltalake::kernel::engine::arrow_conversion::TryIntoKernel as _;
    use deltalake::kernel::transaction::CommitProperties;
    use schemas::cursor::FREG_FEED;
    use schemas::tables::{PERSON, person_address_link_fields};

    let dir = tempfile::tempdir().unwrap();
    let url = url::Url::from_directory_path(dir.path()).unwrap();
    let location = url.join("person/").unwrap();
    std::fs::create_dir_all(location.path()).unwrap();
    let added = person_address_link_fields().len();
    let fields = PERSON.schema.fields();
    let old = Schema::new(fields[..fields.len() - added].to_vec());
    let kernel: StructType = (&old).try_into_kernel().unwrap();
    let table = DeltaTable::try_from_url(location)
        .await
        .unwrap()
        .create()
        .with_columns(kernel.fields().cloned())
        .with_partition_columns(["birth_year"])
        .with_commit_properties(
            CommitProperties::default()
                .with_application_transactions(vec![Transaction::new(FREG_FEED, 7)]),
        )
        .await
        .unwrap();
    // One row written by the earlier version.
    let now = chrono::Utc::now();
    let mut person = transform::model::Person {
        person_id: "01010000001".into(),
        birth_year: 2000,
        address_protection: "ugradert".into(),
        ..transform::model::Person::default()
    };
    let full = transform::encode::persons(&[(person.clone(), 7)], now).unwrap();
    let old_row = full
        .project(&(0..fields.len() - added).collect::<Vec<_>>())
        .unwrap();
    let old_row = arrow::array::RecordBatch::try_new(
        std::sync::Arc::new(old.clone()),
        old_row.columns().to_vec(),
    )
    .unwrap();
    table.write(vec![old_row]).await.unwrap();

    let mut lake = Lake::open(&url).await.unwrap();
    assert_eq!(lake.position(&PERSON, FREG_FEED).await.unwrap(), Some(7));
    person.person_id = "01010000002".into();
    person.address.matrikkel_address_id = Some("123456789012345".into());
    person.address.dwelling_unit = Some("H0101".into());
    let rows = transform::encode::persons(&[(person, 8)], now).unwrap();
    lake.append(&PERSON, Some(rows), &[(FREG_FEED, 8)])
        .await
        .unwrap();
    let text = table_text(
        &lake,
        "SELECT person_id, matrikkel_address_id, dwelling_unit FROM person ORDER BY person_id",
    )
    .await;
    assert!(
        text.contains("01010000001 |                      |"),
        "{text}"
    );
    assert!(
        text.contains("123456789012345") && text.contains("H0101"),
        "{text}"
    );
    assert_eq!(lake.position(&PERSON, FREG_FEED).await.unwrap(), Some(8));

    // The table now changes rows by deletion vector, also in the file written without the new
    // columns: the withheld row leaves it, written again with the columns empty.
    let delta = deltalake::open_table(url.join("person/").unwrap())
        .await
        .unwrap();
    assert!(ingest::deletion::enabled(&delta), "turned on when opened");
    let withheld = transform::model::Person {
        person_id: "01010000001".into(),
        address_protection: "strengtFortrolig".into(),
        ..transform::model::Person::default()
    };
    let rows = transform::encode::persons(&[(withheld, 9)], now).unwrap();
    lake.apply_changes(&PERSON, vec![Change::Withhold(rows)], &[(FREG_FEED, 9)])
        .await
        .unwrap();
    let files = live_files(&dir.path().join("person")).await;
    // Its file's one row changed: the file is removed rather than given a vector.
    assert_eq!(
        (files.len(), files.values().sum::<i64>()),
        (2, 0),
        "{files:?}"
    );
    let text = table_text(
        &lake,
        "SELECT person_id, address_protection, matrikkel_address_id FROM person ORDER BY person_id",
    )
    .await;
    assert!(
        text.contains("01010000001 | strengtFortrolig   |"),
        "{text}"
    );
    assert_eq!(text.matches("0101000000").count(), 2, "{text}");
}

#[tokio::test]
async fn a_rewrite_racing_maintenance_is_a_conflict_tried_again_and_never_keeps_two_copies() {
    let (dir, mut lake) = temporary_lake().await;
    let url = url::Url::from_directory_path(dir.path()).unwrap();
    // Three commits into one birth-year partition: three files that compaction merges.
    for (n, id) in ["01019012345", "02019012345", "03019012345"]
        .iter()
        .enumerate()
    {
        let p = person(id, "1990-01-01", Some("Storgata"));
        let n = n as i64 + 1;
        lake.apply_changes(
            &PERSON,
            vec![Change::Append(encode::persons(&[(p, n)], at(1)).unwrap())],
            &[(FREG_FEED, n)],
        )
        .await
        .unwrap();
    }
    // Maintenance compacts the files this lake read last.
    ingest::maintain::maintain_tables(
        &url,
        &ingest::maintain::MaintainOptions::default(),
        &[&PERSON],
    )
    .await
    .unwrap();
    let withheld = Person {
        person_id: "02019012345".into(),
        address_protection: "ukjent".into(),
        ..Person::default()
    };
    let change = || {
        vec![Change::Withhold(
            encode::persons(&[(withheld.clone(), 4)], at(2)).unwrap(),
        )]
    };
    let raced = lake
        .apply_changes(&PERSON, change(), &[(FREG_FEED, 4)])
        .await
        .expect_err("a rewrite of files maintenance replaced meanwhile is refused");
    assert_eq!(
        raced.kind(),
        ingest::error::ErrorKind::Retryable,
        "tried again from the new version: {raced}"
    );
    let mut lake = Lake::open(&url).await.unwrap();
    lake.apply_changes(&PERSON, change(), &[(FREG_FEED, 4)])
        .await
        .unwrap();
    let found = rows(
        &lake,
        &PERSON,
        "SELECT person_id, street_name FROM person ORDER BY person_id",
    )
    .await;
    assert_eq!(found.len(), 3, "one row per person: {found:?}");
    assert!(
        found[1].get("street_name").is_none_or(Value::is_null),
        "the withheld address is in no row: {found:?}"
    );
}

#[tokio::test]
async fn changes_naming_a_key_twice_are_refused_without_naming_the_identity_number() {
    let (_dir, mut lake) = temporary_lake().await;
    let a = person("01019012345", "1990-01-01", Some("Storgata"));
    let b = person("01019012345", "1990-01-01", Some("Kirkegata"));
    let rows = encode::persons(&[(a, 1), (b, 1)], at(1)).unwrap();
    let err = lake
        .apply_changes(&PERSON, vec![Change::Upsert(rows)], &[(FREG_FEED, 1)])
        .await
        .expect_err("which of two rows for one person applies would be a guess");
    let text = err.to_string();
    assert!(text.contains("more than once"), "{text}");
    assert!(
        !text.contains("01019012345"),
        "no identity number in an error: {text}"
    );
    assert_eq!(lake.position(&PERSON, FREG_FEED).await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rewrite_of_more_files_than_one_writer_takes_changes_each_row_once() {
    let (_dir, mut lake) = temporary_lake().await;
    // 60 birth years, two commits: 120 files, several groups of writers running at once.
    let id = |year: u32, n: u32| format!("{:02}01{:02}{:05}", n + 1, year % 100, 10000 + n);
    for n in 0..2 {
        let persons: Vec<(Person, i64)> = (1940..2000)
            .map(|year| {
                let born = format!("{year}-01-{:02}", n + 1);
                (person(&id(year, n), &born, Some("Storgata")), 1)
            })
            .collect();
        let batch = encode::persons(&persons, at(1)).unwrap();
        lake.apply_changes(&PERSON, vec![Change::Append(batch)], &[(FREG_FEED, 1)])
            .await
            .unwrap();
    }
    // Every person of the first commit moves; those born in odd years of the second are
    // withheld; one new person is added.
    let moved: Vec<(Person, i64)> = (1940..2000)
        .map(|year| {
            let born = format!("{year}-01-01");
            (person(&id(year, 0), &born, Some("Nygata")), 2)
        })
        .chain([(person("31129912345", "1999-12-31", Some("Nygata")), 2)])
        .collect();
    let withheld: Vec<(Person, i64)> = (1940..2000)
        .filter(|year| year % 2 == 1)
        .map(|year| {
            let p = Person {
                person_id: id(year, 1),
                address_protection: "strengtFortrolig".into(),
                ..Person::default()
            };
            (p, 2)
        })
        .collect();
    lake.apply_changes(
        &PERSON,
        vec![
            Change::Upsert(encode::persons(&moved, at(2)).unwrap()),
            Change::Withhold(encode::persons(&withheld, at(2)).unwrap()),
        ],
        &[(FREG_FEED, 2)],
    )
    .await
    .unwrap();
    lake.refresh().await.unwrap();
    let found = rows(
        &lake,
        &PERSON,
        "SELECT count(*) AS n, count(DISTINCT person_id) AS persons, \
         sum(CASE WHEN street_name = 'Nygata' THEN 1 ELSE 0 END) AS moved, \
         sum(CASE WHEN street_name IS NULL THEN 1 ELSE 0 END) AS withheld, \
         sum(CASE WHEN street_name = 'Storgata' THEN 1 ELSE 0 END) AS untouched FROM person",
    )
    .await;
    assert_eq!(found[0]["n"], 121, "{found:?}");
    assert_eq!(found[0]["persons"], 121);
    assert_eq!(found[0]["moved"], 61);
    assert_eq!(found[0]["withheld"], 30);
    assert_eq!(found[0]["untouched"], 30);
    assert_eq!(lake.position(&PERSON, FREG_FEED).await.unwrap(), Some(2));
}

/// The file actions (`add`, `remove`) of each commit in a table's log, by version.
fn file_actions(log: &std::path::Path) -> std::collections::BTreeMap<u64, (usize, usize)> {
    std::fs::read_dir(log)
        .unwrap()
        .filter_map(|f| {
            let path = f.unwrap().path();
            let version = path
                .file_name()?
                .to_str()?
                .strip_suffix(".json")?
                .parse()
                .ok()?;
            let text = std::fs::read_to_string(&path).unwrap();
            let count = |kind: &str| {
                text.lines()
                    .filter(|l| l.starts_with(&format!("{{\"{kind}\"")))
                    .count()
            };
            Some((version, (count("add"), count("remove"))))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rewrites_are_checkpointed_once_they_name_enough_files_keeping_their_tombstones() {
    let (dir, mut lake) = temporary_lake().await;
    let log = dir.path().join("person/_delta_log");
    let id = |year: u32| format!("0101{:02}{:05}", year % 100, 10000 + year);
    let persons = |street: &str, sequence: i64| {
        let persons: Vec<(Person, i64)> = (1940..2000)
            .map(|year| {
                (
                    person(&id(year), &format!("{year}-01-01"), Some(street)),
                    sequence,
                )
            })
            .collect();
        encode::persons(&persons, at(1)).unwrap()
    };
    lake.apply_changes(
        &PERSON,
        vec![Change::Append(persons("Storgata", 1))],
        &[(FREG_FEED, 1)],
    )
    .await
    .unwrap();
    // Each rewrite moves everyone: a file removed and one written per birth year. A checkpoint
    // comes once the rewrites since the last name 250 files (`CHECKPOINT_AFTER_ACTIONS`).
    let (mut named, mut removed, mut checkpointed) = (0, 0, None);
    for n in 2..12 {
        let street = format!("Gate {n}");
        lake.apply_changes(
            &PERSON,
            vec![Change::Upsert(persons(&street, n))],
            &[(FREG_FEED, n)],
        )
        .await
        .unwrap();
        let actions = file_actions(&log);
        let (&version, &(adds, removes)) = actions.last_key_value().unwrap();
        assert!(removes >= 60, "commit {version} removed {removes} files");
        named += adds + removes;
        removed += removes;
        let last = std::fs::read(log.join("_last_checkpoint"))
            .ok()
            .map(|b| serde_json::from_slice::<Value>(&b).unwrap());
        if named < 250 {
            assert!(last.is_none(), "checkpoint after {named} actions: {last:?}");
            continue;
        }
        let last = last.expect("a checkpoint once 250 file actions were committed");
        assert_eq!(last["version"], version, "{last}");
        // Every file the rewrites removed is still named, as a tombstone.
        let rows = last["size"].as_u64().unwrap() as usize;
        let live = last["numOfAddFiles"].as_u64().unwrap() as usize;
        assert!(rows >= live + removed, "{last}: {removed} files removed");
        checkpointed = Some(version);
        break;
    }
    let version = checkpointed.expect("checkpointed within ten rewrites");
    lake.refresh().await.unwrap();
    let found = rows(&lake, &PERSON, "SELECT count(*) AS n FROM person").await;
    assert_eq!(found[0]["n"], 60, "checkpoint at {version}");
}

/// Maintains the lake's `person` table as `regsync maintain` would.
async fn maintain_person(url: &url::Url) {
    ingest::maintain::maintain_tables(
        url,
        &ingest::maintain::MaintainOptions::default(),
        &[&PERSON],
    )
    .await
    .unwrap();
}

/// The active data files of a table, each with the rows its deletion vector removes.
async fn live_files(table: &std::path::Path) -> std::collections::BTreeMap<String, i64> {
    let url = url::Url::from_directory_path(table).unwrap();
    let delta = deltalake::open_table(url).await.unwrap();
    delta
        .snapshot()
        .unwrap()
        .log_data()
        .iter()
        .map(|f| {
            let deleted = f.deletion_vector_descriptor().map_or(0, |d| d.cardinality);
            (f.path().to_string(), deleted)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_deletes_its_rows_by_vector_leaving_the_other_rows_in_their_files() {
    let (dir, mut lake) = temporary_lake().await;
    let url = url::Url::from_directory_path(dir.path()).unwrap();
    let table = dir.path().join("person");
    let id = |n: u32| format!("{:02}01{:02}{:05}", n % 28 + 1, 90 + n % 2, 10000 + n);
    let born = |n: u32| format!("{}-01-{:02}", 1990 + n % 2, n % 28 + 1);
    let persons: Vec<(Person, i64)> = (0..200)
        .map(|n| (person(&id(n), &born(n), Some("Storgata")), 1))
        .collect();
    lake.apply_changes(
        &PERSON,
        vec![Change::Append(encode::persons(&persons, at(1)).unwrap())],
        &[(FREG_FEED, 1)],
    )
    .await
    .unwrap();
    let seeded = live_files(&table).await;
    assert_eq!(seeded.len(), 2, "a file per birth year: {seeded:?}");

    // Person 0 (1990) moves, person 1 (1991) is withheld: each file loses one row to its
    // vector, and a new file per birth year holds the changed rows.
    let withheld = |n: u32, sequence: i64| {
        let p = Person {
            person_id: id(n),
            address_protection: "strengtFortrolig".into(),
            ..Person::default()
        };
        encode::persons(&[(p, sequence)], at(2)).unwrap()
    };
    let moved = |n: u32, street: &str, sequence: i64| {
        encode::persons(&[(person(&id(n), &born(n), Some(street)), sequence)], at(2)).unwrap()
    };
    lake.apply_changes(
        &PERSON,
        vec![
            Change::Upsert(moved(0, "Nygata", 2)),
            Change::Withhold(withheld(1, 2)),
        ],
        &[(FREG_FEED, 2)],
    )
    .await
    .unwrap();
    let first = live_files(&table).await;
    for (path, deleted) in &seeded {
        assert_eq!(
            first.get(path),
            Some(&(deleted + 1)),
            "{path} stays, one row gone"
        );
    }
    assert_eq!(
        first.len(),
        4,
        "a new file per birth year changed: {first:?}"
    );
    let reopened = Lake::open(&url).await.unwrap();
    assert!(
        reopened.holds_vectors(),
        "a worker started after a commit by vector (before its fold) knows to fold"
    );
    let vectored: Vec<&str> = reopened.vectored_tables().iter().map(|t| t.name).collect();
    assert_eq!(vectored, ["person"]);

    // Persons 2, 4 (1990) and 5 (1991) move in a later commit, and person 0 again, from the
    // file the first change wrote: four keys, four files. The vectors keep the rows they had
    // and gain the new ones; the file holding only person 0's first move goes with its row.
    let bakken = |ns: &[u32], sequence: i64| {
        let persons: Vec<(Person, i64)> = ns
            .iter()
            .map(|&n| (person(&id(n), &born(n), Some("Bakken")), sequence))
            .collect();
        encode::persons(&persons, at(3)).unwrap()
    };
    lake.apply_changes(
        &PERSON,
        vec![Change::Upsert(bakken(&[2, 0, 4, 5], 3))],
        &[(FREG_FEED, 3)],
    )
    .await
    .unwrap();
    let second = live_files(&table).await;
    let base = |year: &str| seeded.keys().find(|p| p.contains(year)).unwrap();
    assert_eq!(second[base("1990")], 3, "{second:?}");
    assert_eq!(second[base("1991")], 2, "{second:?}");
    let moved_first = first
        .keys()
        .find(|p| p.contains("1990") && !seeded.contains_key(*p))
        .unwrap();
    assert!(
        !second.contains_key(moved_first),
        "the file holding only person 0's first move is gone with its row: {second:?}"
    );

    // A change naming fewer keys than the table has files rewrites the file holding them,
    // folding its vector: no file of 1990 keeps one.
    lake.apply_changes(
        &PERSON,
        vec![Change::Withhold(withheld(6, 4))],
        &[(FREG_FEED, 4)],
    )
    .await
    .unwrap();
    let rewritten = live_files(&table).await;
    assert!(!rewritten.contains_key(base("1990")), "{rewritten:?}");
    assert!(
        rewritten
            .iter()
            .all(|(p, deleted)| !p.contains("1990") || *deleted == 0),
        "{rewritten:?}"
    );
    assert_eq!(rewritten[base("1991")], 2, "{rewritten:?}");

    let everyone = "SELECT count(*) AS n, count(DISTINCT person_id) AS persons, \
         sum(CASE WHEN street_name = 'Bakken' THEN 1 ELSE 0 END) AS moved, \
         sum(CASE WHEN street_name IS NULL THEN 1 ELSE 0 END) AS withheld, \
         sum(CASE WHEN street_name = 'Storgata' THEN 1 ELSE 0 END) AS untouched FROM person";
    lake.refresh().await.unwrap();
    let found = rows(&lake, &PERSON, everyone).await;
    assert_eq!(found[0]["n"], 200, "{found:?}");
    assert_eq!(found[0]["persons"], 200);
    assert_eq!(found[0]["moved"], 4);
    assert_eq!(found[0]["withheld"], 2);
    assert_eq!(found[0]["untouched"], 194);
    assert_eq!(lake.position(&PERSON, FREG_FEED).await.unwrap(), Some(4));

    // Maintenance rewrites every partition holding a vector: none is left, the rows the same.
    maintain_person(&url).await;
    let maintained = live_files(&table).await;
    assert_eq!(maintained.len(), 2, "a file per birth year: {maintained:?}");
    assert!(maintained.values().all(|d| *d == 0), "{maintained:?}");
    let mut lake = Lake::open(&url).await.unwrap();
    assert!(!lake.holds_vectors());
    assert_eq!(rows(&lake, &PERSON, everyone).await, found);

    // A removal of two persons of 1991 adds no file: the partition's one file keeps its rows
    // less two, and maintenance still folds its vector.
    let gone = |ns: &[u32]| {
        let persons: Vec<(Person, i64)> = ns
            .iter()
            .map(|&n| {
                let p = Person {
                    person_id: id(n),
                    ..Person::default()
                };
                (p, 5)
            })
            .collect();
        encode::persons(&persons, at(5)).unwrap()
    };
    lake.apply_changes(
        &PERSON,
        vec![Change::Remove(gone(&[3, 7]))],
        &[(FREG_FEED, 5)],
    )
    .await
    .unwrap();
    let removed = live_files(&table).await;
    assert_eq!(removed.len(), 2);
    assert_eq!(removed.values().sum::<i64>(), 2, "{removed:?}");
    maintain_person(&url).await;
    let folded = live_files(&table).await;
    assert!(folded.values().all(|d| *d == 0), "{folded:?}");
    let lake = Lake::open(&url).await.unwrap();
    let found = rows(&lake, &PERSON, everyone).await;
    assert_eq!(
        (&found[0]["n"], &found[0]["untouched"]),
        (&198.into(), &192.into())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_by_vector_ends_only_the_open_versions_and_a_scrub_reaches_every_version() {
    let (dir, mut lake) = temporary_lake().await;
    let table = dir.path().join("person_history");
    let ids = ["01019011111", "02019022222", "03019033333", "04019044444"];
    let street = |n: i64| format!("Gate {n}");
    let versions = |ns: &[&str], sequence: i64, from: u32, to: Option<u32>, address: bool| {
        let versions: Vec<PersonVersion> = ns
            .iter()
            .map(|id| {
                let s = street(sequence);
                let p = person(id, "1990-01-01", address.then_some(s.as_str()));
                version(p, sequence, from, to)
            })
            .collect();
        encode::history(&versions, at(from)).unwrap()
    };
    lake.apply_changes(
        &PERSON_HISTORY,
        vec![Change::Insert(versions(&ids, 1, 1, None, true))],
        &[(FREG_FEED, 1)],
    )
    .await
    .unwrap();
    // Everyone moves twice: four keys, more than the files. The first move ends every row of
    // the first file (it goes); the second ends only the open versions of the file it wrote,
    // leaving the versions it ended there.
    for sequence in [2, 3] {
        let from = sequence as u32;
        lake.apply_changes(
            &PERSON_HISTORY,
            vec![
                Change::Close(versions(&ids, sequence, 1, Some(from), true)),
                Change::Insert(versions(&ids, sequence, from, None, true)),
            ],
            &[(FREG_FEED, sequence)],
        )
        .await
        .unwrap();
    }
    let files = live_files(&table).await;
    assert_eq!(files.len(), 2, "{files:?}");
    assert_eq!(
        files
            .values()
            .copied()
            .collect::<Vec<_>>()
            .iter()
            .sum::<i64>(),
        4,
        "only the four open versions left the file that held eight rows: {files:?}"
    );
    // Two persons become strengt fortrolig: every version of theirs, in either file, is
    // written again without its address.
    lake.apply_changes(
        &PERSON_HISTORY,
        vec![
            Change::Scrub(versions(&ids[..2], 4, 3, Some(4), false)),
            Change::Insert(versions(&ids[..2], 4, 4, None, false)),
        ],
        &[(FREG_FEED, 4)],
    )
    .await
    .unwrap();
    lake.refresh().await.unwrap();
    let found = rows(
        &lake,
        &PERSON_HISTORY,
        "SELECT person_id, count(*) AS versions, count(street_name) AS addresses, \
         sum(CASE WHEN valid_to IS NULL THEN 1 ELSE 0 END) AS open \
         FROM person_history GROUP BY person_id ORDER BY person_id",
    )
    .await;
    let expected = [(4, 0), (4, 0), (3, 3), (3, 3)];
    assert_eq!(found.len(), 4, "{found:?}");
    for (row, (versions, addresses)) in found.iter().zip(expected) {
        assert_eq!(row["versions"], versions, "{found:?}");
        assert_eq!(row["addresses"], addresses, "{found:?}");
        assert_eq!(row["open"], 1, "{found:?}");
    }
}
