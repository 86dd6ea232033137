//! Units to Arrow batches in the business tables' schemas ([`schemas::business`]).

use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanArray, Date32Array, Int64Array, StringArray};
use arrow::record_batch::RecordBatch;
use chrono::{DateTime, NaiveDate, Utc};
use schemas::tables::Table;

use super::unit::BusinessUnit;
use crate::TransformError;
use crate::encode::{batch, days, micros};

/// A version of a unit in a history table.
#[derive(Debug, Clone, PartialEq)]
pub struct UnitVersion {
    /// The unit's state.
    pub unit: BusinessUnit,
    /// The update that produced it.
    pub update_id: i64,
    /// From when.
    pub valid_from: DateTime<Utc>,
    /// Until when (`None`: current).
    pub valid_to: Option<DateTime<Utc>>,
}

fn unit_columns<'a>(units: &[&'a BusinessUnit]) -> Vec<ArrayRef> {
    let s = |f: fn(&'a BusinessUnit) -> Option<&'a str>| -> ArrayRef {
        Arc::new(units.iter().map(|u| f(u)).collect::<StringArray>())
    };
    let d = |f: fn(&BusinessUnit) -> Option<NaiveDate>| -> ArrayRef {
        Arc::new(units.iter().map(|u| days(f(u))).collect::<Date32Array>())
    };
    let b = |f: fn(&BusinessUnit) -> Option<bool>| -> ArrayRef {
        Arc::new(units.iter().map(|u| f(u)).collect::<BooleanArray>())
    };
    vec![
        s(|u| Some(u.organization_number.as_str())),
        s(|u| u.name.as_deref()),
        s(|u| u.organization_form.as_deref()),
        s(|u| u.industry_code.as_deref()),
        Arc::new(units.iter().map(|u| u.employees).collect::<Int64Array>()),
        s(|u| u.parent_organization_number.as_deref()),
        s(|u| u.address_lines.as_deref()),
        s(|u| u.municipality_number.as_deref()),
        s(|u| u.postal_code.as_deref()),
        s(|u| u.postal_place.as_deref()),
        d(|u| u.registered_date),
        d(|u| u.started_date),
        d(|u| u.closed_date),
        b(|u| u.bankrupt),
        b(|u| u.under_liquidation),
        d(|u| u.deleted_date),
    ]
}

/// Rows of a current-state table (`business_unit`, `business_subunit`): each unit with the
/// update that produced it.
pub fn units(
    table: &'static Table,
    rows: &[(BusinessUnit, i64)],
    updated_at: DateTime<Utc>,
) -> Result<RecordBatch, TransformError> {
    let list: Vec<&BusinessUnit> = rows.iter().map(|(u, _)| u).collect();
    let mut columns = unit_columns(&list);
    columns.push(Arc::new(
        rows.iter().map(|(_, id)| Some(*id)).collect::<Int64Array>(),
    ));
    columns.push(micros(rows.iter().map(|_| Some(updated_at))));
    batch(table, columns)
}

/// Rows of a history table (`business_unit_history`, `business_subunit_history`).
pub fn versions(
    table: &'static Table,
    rows: &[UnitVersion],
    recorded_at: DateTime<Utc>,
) -> Result<RecordBatch, TransformError> {
    let list: Vec<&BusinessUnit> = rows.iter().map(|v| &v.unit).collect();
    let mut columns = unit_columns(&list);
    columns.push(Arc::new(
        rows.iter()
            .map(|v| Some(v.update_id))
            .collect::<Int64Array>(),
    ));
    columns.push(micros(rows.iter().map(|v| Some(v.valid_from))));
    columns.push(micros(rows.iter().map(|v| v.valid_to)));
    columns.push(micros(rows.iter().map(|_| Some(recorded_at))));
    batch(table, columns)
}

/// Rows of `business_update`.
pub fn updates(
    kind: super::unit::UnitKind,
    rows: &[super::plan::UpdateRow],
    recorded_at: DateTime<Utc>,
) -> Result<RecordBatch, TransformError> {
    let kind = match kind {
        super::unit::UnitKind::Enhet => "enhet",
        super::unit::UnitKind::Underenhet => "underenhet",
    };
    batch(
        &schemas::business::BUSINESS_UPDATE,
        vec![
            Arc::new(StringArray::from(vec![kind; rows.len()])),
            Arc::new(
                rows.iter()
                    .map(|r| Some(r.update.id))
                    .collect::<Int64Array>(),
            ),
            Arc::new(
                rows.iter()
                    .map(|r| Some(r.update.organization_number.as_str()))
                    .collect::<StringArray>(),
            ),
            Arc::new(
                rows.iter()
                    .map(|r| Some(r.update.change.as_str()))
                    .collect::<StringArray>(),
            ),
            micros(rows.iter().map(|r| r.update.at)),
            Arc::new(
                rows.iter()
                    .map(|r| Some(r.outcome.as_str()))
                    .collect::<StringArray>(),
            ),
            micros(rows.iter().map(|_| Some(recorded_at))),
        ],
    )
}
