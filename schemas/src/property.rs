//! The property register's tables (Matrikkelen): `address` (vegadresser and matrikkeladresser)
//! and `cadastral_unit` (matrikkelenheter), each with its history, and `property_change`, the
//! change log's entries applied. Times are as the register gives them, Norwegian local time
//! (`updated_local`), beside the lake's own UTC times.

use std::sync::{Arc, LazyLock};

use arrow::datatypes::{DataType, Field, Schema, TimeUnit};

use crate::tables::{Table, TableKind, log, text, ts};

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

/// Columns describing a cadastral unit's state, shared by both of its tables.
fn unit_fields() -> Vec<Field> {
    let int = |name: &str| Field::new(name, DataType::Int64, true);
    vec![
        Field::new("unit_id", DataType::Utf8, false),
        Field::new("municipality_number", DataType::Utf8, false),
        int("gnr"),
        int("bnr"),
        int("fnr"),
        int("snr"),
        text("unit_type"),
        text("farm_name"),
        Field::new("area", DataType::Float64, true),
        Field::new("established_date", DataType::Date32, true),
        Field::new("registered_in_land_register", DataType::Boolean, true),
        Field::new(
            "updated_local",
            DataType::Timestamp(TimeUnit::Microsecond, None),
            true,
        ),
    ]
}

/// `cadastral_unit`: current state of every cadastral unit (matrikkelenhet) that has not
/// expired, one row per unit id.
pub static CADASTRAL_UNIT: LazyLock<Table> = LazyLock::new(|| {
    let mut fields = unit_fields();
    fields.push(Field::new("last_change_id", DataType::Int64, false));
    fields.push(Field::new("updated_at", ts(), false));
    Table {
        name: "cadastral_unit",
        description: "current state of every cadastral unit (matrikkelenhet: gnr/bnr/fnr/snr) of the property register",
        schema: Arc::new(Schema::new(fields)),
        partition_columns: &[],
        cluster_columns: &["municipality_number", "gnr"],
        kind: TableKind::Current,
        key: &["unit_id"],
        withheld_columns: &[],
        withhold_sets: &[],
    }
});

/// `cadastral_unit_history`: every version of every cadastral unit.
pub static CADASTRAL_UNIT_HISTORY: LazyLock<Table> = LazyLock::new(|| {
    let mut fields = unit_fields();
    fields.push(Field::new("change_id", DataType::Int64, false));
    fields.push(Field::new("valid_from", ts(), false));
    fields.push(Field::new("valid_to", ts(), true));
    fields.push(Field::new("recorded_at", ts(), false));
    Table {
        name: "cadastral_unit_history",
        description: "every version of every cadastral unit, valid from valid_from until valid_to (null: current)",
        schema: Arc::new(Schema::new(fields)),
        partition_columns: &[],
        cluster_columns: &["unit_id"],
        kind: TableKind::History,
        key: &["unit_id"],
        withheld_columns: &[],
        withhold_sets: &[],
    }
});

/// `property_change`: every entry of the change log regsync read, exactly once per change id,
/// with what became of it.
pub static PROPERTY_CHANGE: LazyLock<Table> = LazyLock::new(|| {
    log(
        "property_change",
        "every change of the property register's change log read, once per change_id, with its outcome",
        vec![
            Field::new("change_id", DataType::Int64, false),
            Field::new("change_type", DataType::Utf8, false),
            Field::new("domain_class", DataType::Utf8, false),
            Field::new("object_id", DataType::Utf8, false),
            Field::new("occurred_at", ts(), true),
            Field::new("outcome", DataType::Utf8, false),
            Field::new("recorded_at", ts(), false),
        ],
    )
});

/// Every property table.
pub fn tables() -> [&'static Table; 5] {
    [
        &ADDRESS,
        &ADDRESS_HISTORY,
        &CADASTRAL_UNIT,
        &CADASTRAL_UNIT_HISTORY,
        &PROPERTY_CHANGE,
    ]
}

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
