//! The property register's address file, golden over fixtures in the real file's two column
//! sets (today's, with `adresseId`; 2019's, without), with its odd lines.

use chrono::NaiveDate;
use transform::matrikkel::{Address, Columns, read_address};

fn read(text: &str) -> Vec<Result<Address, String>> {
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(b';')
        .flexible(true)
        .from_reader(text.as_bytes());
    let columns = Columns::from_header(reader.headers().unwrap()).unwrap();
    reader
        .records()
        .map(|r| read_address(&columns, &r.unwrap()).map_err(|e| e.to_string()))
        .collect()
}

#[test]
fn todays_columns_give_the_address_id_coordinates_and_local_time() {
    let lines = read(include_str!("fixtures/matrikkel/adresser.csv"));
    assert_eq!(lines.len(), 3);
    let street = lines[0].as_ref().unwrap();
    assert_eq!(street.address_id, "300000001", "adresseId, not lokalId");
    assert_eq!(
        street.local_id.as_deref(),
        Some("1b2c3d4e-0000-4000-8000-000000000001"),
        "the byte-order mark is not part of the first column's name"
    );
    assert_eq!(street.municipality_number, "5035");
    assert_eq!(street.street_code, Some(1210));
    assert_eq!(
        (
            street.street_name.as_deref(),
            street.house_number.as_deref(),
            street.house_letter.as_deref()
        ),
        (Some("Testveien"), Some("12"), Some("B"))
    );
    assert_eq!(
        (street.gnr, street.bnr, street.fnr, street.snr),
        (Some(101), Some(3), Some(0), Some(0))
    );
    assert_eq!(
        (street.epsg, street.north, street.east),
        (Some(4258), Some(63.4701), Some(10.9265))
    );
    assert_eq!(
        street.updated_local,
        NaiveDate::from_ymd_opt(2024, 3, 1)
            .unwrap()
            .and_hms_opt(10, 15, 0)
    );
    let cadastral = lines[1].as_ref().unwrap();
    assert_eq!(cadastral.address_type.as_deref(), Some("matrikkeladresse"));
    assert_eq!(cadastral.street_name, None);
    assert_eq!(cadastral.street_code, None);
    assert_eq!(cadastral.address_text.as_deref(), Some("102/7/1"));
    // A quoted name holding the separator; no adresseId: the lokalId is the id.
    let quoted = lines[2].as_ref().unwrap();
    assert_eq!(quoted.street_name.as_deref(), Some("Prøvegata; nedre"));
    assert_eq!(quoted.address_id, "1b2c3d4e-0000-4000-8000-000000000003");
    assert_eq!(quoted.postal_code.as_deref(), Some("0155"));
}

#[test]
fn the_2019_columns_read_and_odd_lines_are_errors_naming_the_column() {
    let lines = read(include_str!("fixtures/matrikkel/adresser-2019.csv"));
    assert_eq!(lines.len(), 6);
    let first = lines[0].as_ref().unwrap();
    assert_eq!(
        first.address_id, "90000001",
        "2019: no adresseId, the lokalid is the id"
    );
    assert_eq!(
        first.municipality_number, "1714",
        "pre-2020 kommune numbers kept as given"
    );
    assert_eq!(first.epsg, Some(25832));
    let oslo = lines[2].as_ref().unwrap();
    assert_eq!(
        oslo.municipality_number, "0301",
        "a kommunenummer that lost its zero"
    );
    assert_eq!(oslo.postal_code.as_deref(), Some("0155"));
    assert_eq!(
        (oslo.north, oslo.east),
        (Some(6643122.5), Some(597321.75)),
        "decimal commas"
    );
    let errors: Vec<&String> = lines.iter().filter_map(|l| l.as_ref().err()).collect();
    assert_eq!(errors.len(), 3, "{errors:?}");
    assert!(
        errors[0].contains("kommunenummer \"17A4\""),
        "{}",
        errors[0]
    );
    assert!(errors[1].contains("nord \"nord\""), "{}", errors[1]);
    assert!(errors[2].contains("oppdateringsdato"), "{}", errors[2]);
}

#[test]
fn a_file_that_is_not_an_address_file_is_refused_at_its_header() {
    let header = csv::StringRecord::from(vec!["organisasjonsnummer", "navn"]);
    let e = Columns::from_header(&header).unwrap_err().to_string();
    assert!(e.contains("no kommunenummer"), "{e}");
}

#[test]
fn a_chunk_of_the_file_becomes_current_state_versions_and_dead_letters() {
    use arrow::array::{AsArray, Float64Array};
    use chrono::TimeZone;
    use transform::change::{Change, Plan};
    use transform::matrikkel::rows::FilePlan;

    let text = include_str!("fixtures/matrikkel/adresser-2019.csv");
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(b';')
        .from_reader(text.as_bytes());
    let columns = Columns::from_header(reader.headers().unwrap()).unwrap();
    let taken = chrono::Utc
        .with_ymd_and_hms(2019, 3, 24, 7, 23, 40)
        .unwrap();
    let mut plan = FilePlan {
        taken_at: taken,
        ..FilePlan::default()
    };
    for (i, record) in reader.records().enumerate() {
        plan.take(
            i as u64 + 2,
            read_address(&columns, &record.unwrap()),
            |id| (id == "90000003", false),
        );
    }
    assert_eq!(
        (plan.entities(), plan.versions.len(), plan.dead_letters()),
        (2, 3, 3),
        "an address the current table holds is not written there again"
    );
    let now = chrono::Utc.with_ymd_and_hms(2026, 11, 30, 0, 0, 0).unwrap();
    let rows = |table| match plan.changes(table, now).unwrap().as_slice() {
        [Change::Append(batch)] => batch.clone(),
        other => panic!("one append, got {}", other.len()),
    };
    let current = rows(&schemas::property::ADDRESS);
    assert_eq!(current.num_rows(), 2);
    let north = current
        .column_by_name("north")
        .unwrap()
        .as_any()
        .downcast_ref::<Float64Array>()
        .unwrap();
    assert_eq!(north.value(0), 7039251.25);
    let history = rows(&schemas::property::ADDRESS_HISTORY);
    assert_eq!(history.num_rows(), 3);
    assert_eq!(
        history.column_by_name("valid_to").unwrap().null_count(),
        3,
        "every version open"
    );
    let dead = rows(&schemas::tables::DEAD_LETTER);
    let cursors: Vec<&str> = dead
        .column_by_name("cursor")
        .unwrap()
        .as_string::<i32>()
        .iter()
        .flatten()
        .collect();
    assert_eq!(cursors, ["line 5", "line 6", "line 7"], "named by line");
    assert!(plan.changes(&schemas::tables::PERSON, now).is_err());
}
