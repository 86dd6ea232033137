//! The property register's tables (Matrikkelen): `address` (vegadresser and matrikkeladresser)
//! with its history. Times are as the register's files give them, Norwegian local time
//! (`updated_local`), beside the lake's own UTC times.

use std::sync::{Arc, LazyLock};

use arrow::datatypes::{DataType, Field, Schema, TimeUnit};

use crate::tables::{Table, TableKind, text, ts};

/// Columns describing an address's state, shared by both tables.
fn address_fields() -> Vec<Field> {
    let int = |name: &str| Field::new(name, DataType::Int64, true);
    vec![
        Field::new("address_id", DataType::Utf8, false),
        text("local_id"),
        Field::new("municipality_number", DataType::Utf8, false),
        text("municipality_name"),
        text("address_type"),
        int("street_code"),
        text("street_name"),
        text("house_number"),
        text("house_letter"),
        int("gnr"),
        int("bnr"),
        int("fnr"),
        int("snr"),
        text("address_text"),
        text("postal_code"),
        text("postal_place"),
        int("epsg"),
        Field::new("north", DataType::Float64, true),
        Field::new("east", DataType::Float64, true),
        Field::new(
            "updated_local",
            DataType::Timestamp(TimeUnit::Microsecond, None),
            true,
        ),
    ]
}

/// `address`: current state of every address, one row per address id.
pub static ADDRESS: LazyLock<Table> = LazyLock::new(|| {
    let mut fields = address_fields();
    fields.push(Field::new("last_change_id", DataType::Int64, false));
    fields.push(Field::new("updated_at", ts(), false));
    Table {
        name: "address",
        description: "current state of every address (vegadresse, matrikkeladresse) of the property register",
        schema: Arc::new(Schema::new(fields)),
        partition_columns: &[],
        cluster_columns: &["municipality_number", "street_code"],
        kind: TableKind::Current,
        key: &["address_id"],
        withheld_columns: &[],
        withhold_sets: &[],
    }
});

/// `address_history`: every version of every address.
pub static ADDRESS_HISTORY: LazyLock<Table> = LazyLock::new(|| {
    let mut fields = address_fields();
    fields.push(Field::new("change_id", DataType::Int64, false));
    fields.push(Field::new("valid_from", ts(), false));
    fields.push(Field::new("valid_to", ts(), true));
    fields.push(Field::new("recorded_at", ts(), false));
    Table {
        name: "address_history",
        description: "every version of every address, valid from valid_from until valid_to (null: current)",
        schema: Arc::new(Schema::new(fields)),
        partition_columns: &[],
        cluster_columns: &["address_id"],
        kind: TableKind::History,
        key: &["address_id"],
        withheld_columns: &[],
        withhold_sets: &[],
    }
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_in_the_schema_and_both_tables_share_the_state_columns() {
        for table in [&*ADDRESS, &*ADDRESS_HISTORY] {
            for column in table.key.iter().chain(table.cluster_columns) {
                assert!(
                    table.schema.field_with_name(column).is_ok(),
                    "{}.{column}",
                    table.name
                );
            }
            for f in address_fields() {
                assert!(table.schema.field_with_name(f.name()).is_ok());
            }
        }
    }
}
