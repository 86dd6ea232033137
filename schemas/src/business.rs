//! The business register's tables (Enhetsregisteret): `business_unit` (enheter) and
//! `business_subunit` (underenheter), each with its history. Both share one set of columns: a
//! unit may have a parent (an underenhet's enhet, or an enhet's place in an organisation), and
//! the address is the one the unit is found at (an enhet's business address, an underenhet's
//! location, else the postal address).

use std::sync::{Arc, LazyLock};

use arrow::datatypes::{DataType, Field, Schema};

use crate::tables::{Table, TableKind, log, text, ts};

/// Columns describing a unit's state, shared by all four tables.
fn unit_state_fields() -> Vec<Field> {
    vec![
        Field::new("organization_number", DataType::Utf8, false),
        text("name"),
        text("organization_form"),
        text("industry_code"),
        Field::new("employees", DataType::Int64, true),
        text("parent_organization_number"),
        text("address_lines"),
        text("municipality_number"),
        text("postal_code"),
        text("postal_place"),
        Field::new("registered_date", DataType::Date32, true),
        Field::new("started_date", DataType::Date32, true),
        Field::new("closed_date", DataType::Date32, true),
        Field::new("bankrupt", DataType::Boolean, true),
        Field::new("under_liquidation", DataType::Boolean, true),
        Field::new("deleted_date", DataType::Date32, true),
    ]
}

fn current(name: &'static str, description: &'static str) -> Table {
    let mut fields = unit_state_fields();
    fields.push(Field::new("last_update_id", DataType::Int64, false));
    fields.push(Field::new("updated_at", ts(), false));
    Table {
        name,
        description,
        schema: Arc::new(Schema::new(fields)),
        partition_columns: &[],
        cluster_columns: &["municipality_number", "industry_code"],
        kind: TableKind::Current,
        key: &["organization_number"],
        withheld_columns: &[],
        withhold_sets: &[],
    }
}

fn history(name: &'static str, description: &'static str) -> Table {
    let mut fields = unit_state_fields();
    fields.push(Field::new("update_id", DataType::Int64, false));
    fields.push(Field::new("valid_from", ts(), false));
    fields.push(Field::new("valid_to", ts(), true));
    fields.push(Field::new("recorded_at", ts(), false));
    Table {
        name,
        description,
        schema: Arc::new(Schema::new(fields)),
        partition_columns: &[],
        cluster_columns: &["organization_number"],
        kind: TableKind::History,
        key: &["organization_number"],
        withheld_columns: &[],
        withhold_sets: &[],
    }
}

/// `business_unit`: current state of every enhet, one row per organisation number; a unit the
/// register removed (`Fjernet`) is not here, a deleted one (`Sletting`) is, with `deleted_date`.
pub static BUSINESS_UNIT: LazyLock<Table> = LazyLock::new(|| {
    current(
        "business_unit",
        "current state of every unit (enhet) of the business register, one row per organisation number",
    )
});

/// `business_unit_history`: every version of every enhet.
pub static BUSINESS_UNIT_HISTORY: LazyLock<Table> = LazyLock::new(|| {
    history(
        "business_unit_history",
        "every version of every unit (enhet), valid from valid_from until valid_to (null: current)",
    )
});

/// `business_subunit`: current state of every underenhet.
pub static BUSINESS_SUBUNIT: LazyLock<Table> = LazyLock::new(|| {
    current(
        "business_subunit",
        "current state of every subunit (underenhet, a place of business), one row per organisation number",
    )
});

/// `business_subunit_history`: every version of every underenhet.
pub static BUSINESS_SUBUNIT_HISTORY: LazyLock<Table> = LazyLock::new(|| {
    history(
        "business_subunit_history",
        "every version of every subunit (underenhet), valid from valid_from until valid_to (null: current)",
    )
});

/// `business_update`: every update of both updates lists applied, exactly once per list and
/// `oppdateringsid`, with what became of it.
pub static BUSINESS_UPDATE: LazyLock<Table> = LazyLock::new(|| {
    log(
        "business_update",
        "every update of the business register's updates lists, once per list (unit_kind) and update_id",
        vec![
            Field::new("unit_kind", DataType::Utf8, false),
            Field::new("update_id", DataType::Int64, false),
            Field::new("organization_number", DataType::Utf8, false),
            Field::new("change_type", DataType::Utf8, false),
            Field::new("occurred_at", ts(), true),
            Field::new("outcome", DataType::Utf8, false),
            Field::new("recorded_at", ts(), false),
        ],
    )
});

/// Every business table.
pub fn tables() -> [&'static Table; 5] {
    [
        &BUSINESS_UNIT,
        &BUSINESS_UNIT_HISTORY,
        &BUSINESS_SUBUNIT,
        &BUSINESS_SUBUNIT_HISTORY,
        &BUSINESS_UPDATE,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_in_the_schema_and_history_has_its_interval() {
        for table in tables() {
            for column in table.key {
                assert!(
                    table.schema.field_with_name(column).is_ok(),
                    "{}",
                    table.name
                );
            }
            if table.kind == TableKind::History {
                assert!(table.schema.field_with_name("valid_to").is_ok());
            }
        }
    }
}
