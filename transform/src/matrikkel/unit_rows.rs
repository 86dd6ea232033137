//! Cadastral units to Arrow batches in `cadastral_unit` and `cadastral_unit_history`, and the
//! changes' rows of `property_change`. Pure.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanArray, Date32Array, Float64Array, Int64Array, StringArray,
    TimestampMicrosecondArray,
};
use arrow::record_batch::RecordBatch;
use chrono::{DateTime, Utc};
use schemas::property::{CADASTRAL_UNIT, CADASTRAL_UNIT_HISTORY, PROPERTY_CHANGE};

use super::changes::{CadastralUnit, Change};
use crate::TransformError;
use crate::encode::{batch, days, micros};
use crate::model::Outcome;

fn unit_columns<'a>(rows: &[&'a CadastralUnit]) -> Vec<ArrayRef> {
    let s = |f: fn(&'a CadastralUnit) -> Option<&'a str>| -> ArrayRef {
        Arc::new(rows.iter().map(|u| f(u)).collect::<StringArray>())
    };
    let i = |f: fn(&CadastralUnit) -> Option<i64>| -> ArrayRef {
        Arc::new(rows.iter().map(|u| f(u)).collect::<Int64Array>())
    };
    vec![
        s(|u| Some(u.unit_id.as_str())),
        s(|u| Some(u.municipality_number.as_str())),
        i(|u| u.gnr),
        i(|u| u.bnr),
        i(|u| u.fnr),
        i(|u| u.snr),
        s(|u| u.unit_type.as_deref()),
        s(|u| u.farm_name.as_deref()),
        Arc::new(rows.iter().map(|u| u.area).collect::<Float64Array>()),
        Arc::new(
            rows.iter()
                .map(|u| days(u.established_date))
                .collect::<Date32Array>(),
        ),
        Arc::new(
            rows.iter()
                .map(|u| u.registered_in_land_register)
                .collect::<BooleanArray>(),
        ),
        Arc::new(
            rows.iter()
                .map(|u| u.updated_local.map(|t| t.and_utc().timestamp_micros()))
                .collect::<TimestampMicrosecondArray>(),
        ),
    ]
}

/// Rows of `cadastral_unit`: each unit with the change that produced it (0: the initial load).
pub fn units(
    rows: &[(&CadastralUnit, i64)],
    updated_at: DateTime<Utc>,
) -> Result<RecordBatch, TransformError> {
    let list: Vec<&CadastralUnit> = rows.iter().map(|(u, _)| *u).collect();
    let mut columns = unit_columns(&list);
    columns.push(Arc::new(
        rows.iter().map(|(_, id)| Some(*id)).collect::<Int64Array>(),
    ));
    columns.push(micros(rows.iter().map(|_| Some(updated_at))));
    batch(&CADASTRAL_UNIT, columns)
}

/// A version of a cadastral unit.
#[derive(Debug, Clone, PartialEq)]
pub struct UnitVersion<'a> {
    /// The unit's state.
    pub unit: &'a CadastralUnit,
    /// The change that produced it (0: the initial load).
    pub change_id: i64,
    /// From when.
    pub valid_from: DateTime<Utc>,
    /// Until when (`None`: current).
    pub valid_to: Option<DateTime<Utc>>,
}

/// Rows of `cadastral_unit_history`.
pub fn unit_versions(
    rows: &[UnitVersion<'_>],
    recorded_at: DateTime<Utc>,
) -> Result<RecordBatch, TransformError> {
    let list: Vec<&CadastralUnit> = rows.iter().map(|v| v.unit).collect();
    let mut columns = unit_columns(&list);
    columns.push(Arc::new(
        rows.iter()
            .map(|v| Some(v.change_id))
            .collect::<Int64Array>(),
    ));
    columns.push(micros(rows.iter().map(|v| Some(v.valid_from))));
    columns.push(micros(rows.iter().map(|v| v.valid_to)));
    columns.push(micros(rows.iter().map(|_| Some(recorded_at))));
    batch(&CADASTRAL_UNIT_HISTORY, columns)
}

/// Rows of `property_change`: each change with what became of it.
pub fn changes(
    rows: &[(&Change, Outcome)],
    recorded_at: DateTime<Utc>,
) -> Result<RecordBatch, TransformError> {
    let text = |f: fn(&Change) -> &str| -> ArrayRef {
        Arc::new(
            rows.iter()
                .map(|(c, _)| Some(f(c)))
                .collect::<StringArray>(),
        )
    };
    batch(
        &PROPERTY_CHANGE,
        vec![
            Arc::new(rows.iter().map(|(c, _)| Some(c.id)).collect::<Int64Array>()),
            text(|c| c.change_name.as_str()),
            text(|c| c.class.as_str()),
            text(|c| c.object_id.as_str()),
            micros(rows.iter().map(|(c, _)| c.at)),
            Arc::new(
                rows.iter()
                    .map(|(_, o)| Some(o.as_str()))
                    .collect::<StringArray>(),
            ),
            micros(rows.iter().map(|_| Some(recorded_at))),
        ],
    )
}
