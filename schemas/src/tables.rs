//! Lake tables: names, Arrow schemas, partition columns.
//!
//! Coded values keep the register's own words (`bosatt`, `kvinne`, `gift`, ...); only the address
//! protection level is spelled in snake case (`strengt_fortrolig`), since the register itself
//! writes it in two spellings.

use std::sync::{Arc, LazyLock};

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

/// How a table's rows change, which decides how the lake writer applies a change to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableKind {
    /// Current state: one row per key, upserted, withheld or removed by key.
    Current,
    /// Every version of every entity: versions are inserted, the open one (`valid_to` null) is
    /// closed, and withheld columns are scrubbed from every version.
    History,
    /// Rows are only ever appended.
    Log,
}

/// One lake table: its name (the folder under the lake URL), schema and partition columns.
#[derive(Debug)]
pub struct Table {
    /// Folder name under the lake URL, and the SQL table name.
    pub name: &'static str,
    /// What the table holds, for `regsync sql` users and the docs.
    pub description: &'static str,
    /// Arrow schema of the rows.
    pub schema: SchemaRef,
    /// Hive-style partition columns (part of `schema`).
    pub partition_columns: &'static [&'static str],
    /// Columns maintenance clusters the rows by (Z-order) within each partition, so that file
    /// statistics prune the filters queries use; empty: compaction only.
    pub cluster_columns: &'static [&'static str],
    /// How its rows change.
    pub kind: TableKind,
    /// The columns identifying an entity (current state and history tables; empty for logs).
    pub key: &'static [&'static str],
    /// Columns nulled when an entity's protected fields are withheld (the address of a person
    /// with address protection, or whose protection could not be read).
    pub withheld_columns: &'static [&'static str],
    /// Columns a withholding row also sets from its own values, beside nulling
    /// `withheld_columns` (a current-state row's protection level and position).
    pub withhold_sets: &'static [&'static str],
}

/// An append-only table without partitions or key.
pub(crate) fn log(name: &'static str, description: &'static str, fields: Vec<Field>) -> Table {
    Table {
        name,
        description,
        schema: Arc::new(Schema::new(fields)),
        partition_columns: &[],
        cluster_columns: &[],
        kind: TableKind::Log,
        key: &[],
        withheld_columns: &[],
        withhold_sets: &[],
    }
}

pub(crate) fn ts() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

pub(crate) fn text(name: &str) -> Field {
    Field::new(name, DataType::Utf8, true)
}

/// Columns describing a person's state, shared by `person` and `person_history`.
fn person_state_fields() -> Vec<Field> {
    vec![
        Field::new("person_id", DataType::Utf8, false),
        text("id_type"),
        Field::new("birth_date", DataType::Date32, true),
        Field::new("birth_year", DataType::Int32, false),
        text("sex"),
        text("given_name"),
        text("middle_name"),
        text("family_name"),
        text("status"),
        text("municipality_number"),
        text("street_name"),
        text("house_number"),
        text("house_letter"),
        text("postal_code"),
        text("postal_place"),
        Field::new("moved_in_date", DataType::Date32, true),
        Field::new("address_protection", DataType::Utf8, false),
        Field::new("death_date", DataType::Date32, true),
        text("citizenship"),
        text("marital_status"),
        text("spouse_id"),
        text("mother_id"),
        text("father_id"),
        text("co_mother_id"),
        text("emigrated_to"),
        text("immigrated_from"),
    ]
}

/// The residence's link to the property register, added after the first version (so at the
/// end of the columns, where an existing lake's tables gain them): `street_code` (adressekode),
/// `matrikkel_address_id` (adresseIdentifikatorFraMatrikkelen) and `dwelling_unit`
/// (bruksenhetsnummer). Address columns: withheld as the others are.
pub fn person_address_link_fields() -> Vec<Field> {
    vec![
        Field::new("street_code", DataType::Int64, true),
        text("matrikkel_address_id"),
        text("dwelling_unit"),
    ]
}

/// `person`: current state, one row per person.
pub static PERSON: LazyLock<Table> = LazyLock::new(|| {
    let mut fields = person_state_fields();
    fields.push(Field::new("last_sequence", DataType::Int64, false));
    fields.push(Field::new("updated_at", ts(), false));
    fields.extend(person_address_link_fields());
    Table {
        name: "person",
        description: "current state of every person, one row per person",
        schema: Arc::new(Schema::new(fields)),
        partition_columns: &["birth_year"],
        cluster_columns: &["municipality_number", "birth_date"],
        kind: TableKind::Current,
        key: &["person_id"],
        withheld_columns: ADDRESS_COLUMNS,
        withhold_sets: &["address_protection", "last_sequence", "updated_at"],
    }
});

/// `person_history`: every version of every person, with its validity interval.
pub static PERSON_HISTORY: LazyLock<Table> = LazyLock::new(|| {
    let mut fields = person_state_fields();
    fields.push(Field::new("sequence", DataType::Int64, false));
    fields.push(Field::new("valid_from", ts(), false));
    fields.push(Field::new("valid_to", ts(), true));
    fields.push(Field::new("recorded_at", ts(), false));
    fields.extend(person_address_link_fields());
    Table {
        name: "person_history",
        description: "every version of every person, valid from valid_from until valid_to (null: current)",
        schema: Arc::new(Schema::new(fields)),
        partition_columns: &["birth_year"],
        cluster_columns: &["municipality_number", "birth_date"],
        kind: TableKind::History,
        key: &["person_id"],
        withheld_columns: ADDRESS_COLUMNS,
        withhold_sets: &[],
    }
});

/// `person_event`: every feed entry applied, exactly once per sequence number.
pub static PERSON_EVENT: LazyLock<Table> = LazyLock::new(|| {
    log(
        "person_event",
        "every feed entry of the population register, once per sequence number",
        vec![
            Field::new("sequence", DataType::Int64, false),
            Field::new("event_type", DataType::Utf8, false),
            Field::new("person_id", DataType::Utf8, false),
            Field::new("occurred_at", ts(), true),
            text("event_document_id"),
            text("person_document_id"),
            Field::new("outcome", DataType::Utf8, false),
            Field::new("recorded_at", ts(), false),
        ],
    )
});

/// `dead_letter`: records that could not be normalised, with the reason and what is needed to
/// replay them (`payload`: a JSON object of identifiers and the failing element, never the
/// record's content).
pub static DEAD_LETTER: LazyLock<Table> = LazyLock::new(|| {
    log(
        "dead_letter",
        "records that could not be normalised: source, cursor, reason, and in payload the ids needed to replay them (never the record's content)",
        vec![
            Field::new("source", DataType::Utf8, false),
            Field::new("cursor", DataType::Utf8, false),
            text("record_id"),
            Field::new("reason", DataType::Utf8, false),
            Field::new("payload", DataType::Utf8, false),
            Field::new("recorded_at", ts(), false),
        ],
    )
});

/// `kafka_sink`: one row per topic per slice published to Kafka; its commits carry each
/// register's Kafka position, apart from the tables the worker writes.
pub static KAFKA_SINK: LazyLock<Table> = LazyLock::new(|| {
    log(
        "kafka_sink",
        "slices of feed positions published to Kafka: register, topic, positions, message count",
        vec![
            Field::new("register", DataType::Utf8, false),
            Field::new("topic", DataType::Utf8, false),
            Field::new("from_position", DataType::Int64, false),
            Field::new("to_position", DataType::Int64, false),
            Field::new("messages", DataType::Int64, false),
            Field::new("published_at", ts(), false),
        ],
    )
});

/// `writer_lease`: no rows; its commits carry the lease of the one worker that writes the lake
/// (`schemas::cursor::LEASE_*`), renewed while it runs.
pub static WRITER_LEASE: LazyLock<Table> = LazyLock::new(|| {
    log(
        "writer_lease",
        "no rows: its log holds the lease of the worker that writes this lake",
        vec![Field::new("holder", DataType::Int64, true)],
    )
});

/// The tables the feed worker writes, in the order it commits them.
pub static TABLES: LazyLock<[&'static Table; 4]> =
    LazyLock::new(|| [&*PERSON, &*PERSON_HISTORY, &*PERSON_EVENT, &*DEAD_LETTER]);

/// Every lake table, of every register.
pub static ALL_TABLES: LazyLock<[&'static Table; 16]> = LazyLock::new(|| {
    [
        &*PERSON,
        &*PERSON_HISTORY,
        &*PERSON_EVENT,
        &*crate::business::BUSINESS_UNIT,
        &*crate::business::BUSINESS_UNIT_HISTORY,
        &*crate::business::BUSINESS_SUBUNIT,
        &*crate::business::BUSINESS_SUBUNIT_HISTORY,
        &*crate::business::BUSINESS_UPDATE,
        &*crate::property::ADDRESS,
        &*crate::property::ADDRESS_HISTORY,
        &*crate::property::CADASTRAL_UNIT,
        &*crate::property::CADASTRAL_UNIT_HISTORY,
        &*crate::property::PROPERTY_CHANGE,
        &*DEAD_LETTER,
        &*KAFKA_SINK,
        &*WRITER_LEASE,
    ]
});

/// Address columns withheld for protected persons in outputs that may not hold them.
pub const ADDRESS_COLUMNS: &[&str] = &[
    "municipality_number",
    "street_name",
    "house_number",
    "house_letter",
    "postal_code",
    "postal_place",
    "moved_in_date",
    "street_code",
    "matrikkel_address_id",
    "dwelling_unit",
];

/// The protection levels, as written in the `address_protection` column.
pub mod protection {
    /// No protection.
    pub const UNGRADED: &str = "ugradert";
    /// Client address (the person is reached through an agency).
    pub const CLIENT_ADDRESS: &str = "klientadresse";
    /// Confidential: visible only with a legal basis.
    pub const CONFIDENTIAL: &str = "fortrolig";
    /// Strictly confidential: the register withholds every address and the municipality.
    pub const STRICTLY_CONFIDENTIAL: &str = "strengt_fortrolig";
    /// The document's protection could not be read with certainty (an unexpected shape):
    /// withheld like strengt fortrolig, and visible as such in the lake so it can be followed up.
    pub const UNREADABLE: &str = "ukjent";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_columns_are_in_the_schema() {
        for table in ALL_TABLES.iter() {
            for column in table.partition_columns {
                assert!(
                    table.schema.field_with_name(column).is_ok(),
                    "{}.{column}",
                    table.name
                );
            }
        }
    }

    #[test]
    fn keys_and_withheld_columns_are_in_the_schema() {
        for table in ALL_TABLES.iter() {
            let columns = table
                .key
                .iter()
                .chain(table.withheld_columns)
                .chain(table.withhold_sets);
            for column in columns {
                assert!(
                    table.schema.field_with_name(column).is_ok(),
                    "{}.{column}",
                    table.name
                );
            }
            assert_eq!(
                table.key.is_empty(),
                table.kind == TableKind::Log,
                "{}",
                table.name
            );
            if table.kind == TableKind::History {
                assert!(
                    table.schema.field_with_name("valid_to").is_ok(),
                    "{}",
                    table.name
                );
            }
        }
    }

    #[test]
    fn address_columns_exist_in_person_tables() {
        for column in ADDRESS_COLUMNS {
            assert!(PERSON.schema.field_with_name(column).is_ok());
            assert!(PERSON_HISTORY.schema.field_with_name(column).is_ok());
        }
    }
}
