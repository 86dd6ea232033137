//! Canonical rows to Arrow batches in the lake's schemas ([`schemas::tables`]).
//!
//! Times are parameters (`recorded_at`), never read from a clock here.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, Date32Array, Int32Array, Int64Array, StringArray, TimestampMicrosecondArray,
};
use arrow::record_batch::RecordBatch;
use chrono::{DateTime, NaiveDate, Utc};
use schemas::tables::{DEAD_LETTER, PERSON, PERSON_EVENT, PERSON_HISTORY, Table};

use crate::TransformError;
use crate::model::{DeadLetter, EventRow, Person, PersonVersion};

const EPOCH: NaiveDate = NaiveDate::from_ymd_opt(1970, 1, 1).expect("a valid date");

pub(crate) fn days(d: Option<NaiveDate>) -> Option<i32> {
    d.and_then(|d| i32::try_from((d - EPOCH).num_days()).ok())
}

fn texts<'a>(values: impl Iterator<Item = Option<&'a str>>) -> ArrayRef {
    Arc::new(values.collect::<StringArray>())
}

pub(crate) fn micros(values: impl Iterator<Item = Option<DateTime<Utc>>>) -> ArrayRef {
    Arc::new(
        values
            .map(|t| t.map(|t| t.timestamp_micros()))
            .collect::<TimestampMicrosecondArray>()
            .with_timezone("UTC"),
    )
}

/// The person-state columns, in the order of `schemas::tables`.
fn person_columns<'a>(people: &[&'a Person]) -> Vec<ArrayRef> {
    let s = |f: fn(&'a Person) -> Option<&'a str>| texts(people.iter().map(|p| f(p)));
    vec![
        s(|p| Some(p.person_id.as_str())),
        s(|p| Some(p.id_type.as_str())),
        Arc::new(
            people
                .iter()
                .map(|p| days(p.birth_date))
                .collect::<Date32Array>(),
        ),
        Arc::new(
            people
                .iter()
                .map(|p| Some(p.birth_year))
                .collect::<Int32Array>(),
        ),
        s(|p| p.sex.as_deref()),
        s(|p| p.given_name.as_deref()),
        s(|p| p.middle_name.as_deref()),
        s(|p| p.family_name.as_deref()),
        s(|p| p.status.as_deref()),
        s(|p| p.address.municipality_number.as_deref()),
        s(|p| p.address.street_name.as_deref()),
        s(|p| p.address.house_number.as_deref()),
        s(|p| p.address.house_letter.as_deref()),
        s(|p| p.address.postal_code.as_deref()),
        s(|p| p.address.postal_place.as_deref()),
        Arc::new(
            people
                .iter()
                .map(|p| days(p.address.moved_in_date))
                .collect::<Date32Array>(),
        ),
        s(|p| Some(p.address_protection.as_str())),
        Arc::new(
            people
                .iter()
                .map(|p| days(p.death_date))
                .collect::<Date32Array>(),
        ),
        s(|p| p.citizenship.as_deref()),
        s(|p| p.marital_status.as_deref()),
        s(|p| p.spouse_id.as_deref()),
        s(|p| p.mother_id.as_deref()),
        s(|p| p.father_id.as_deref()),
        s(|p| p.co_mother_id.as_deref()),
        s(|p| p.emigrated_to.as_deref()),
        s(|p| p.immigrated_from.as_deref()),
    ]
}

pub(crate) fn batch(
    table: &'static Table,
    columns: Vec<ArrayRef>,
) -> Result<RecordBatch, TransformError> {
    RecordBatch::try_new(table.schema.clone(), columns).map_err(|source| TransformError::Encode {
        table: table.name,
        source,
    })
}

/// The residence's link to the property register ([`schemas::tables::person_address_link_fields`]).
fn address_link_columns(people: &[&Person]) -> Vec<ArrayRef> {
    vec![
        Arc::new(
            people
                .iter()
                .map(|p| p.address.street_code)
                .collect::<Int64Array>(),
        ),
        texts(
            people
                .iter()
                .map(|p| p.address.matrikkel_address_id.as_deref()),
        ),
        texts(people.iter().map(|p| p.address.dwelling_unit.as_deref())),
    ]
}

/// Rows of `person`: each person's state with the sequence that produced it.
pub fn persons(
    rows: &[(Person, i64)],
    updated_at: DateTime<Utc>,
) -> Result<RecordBatch, TransformError> {
    let people: Vec<&Person> = rows.iter().map(|(p, _)| p).collect();
    let mut columns = person_columns(&people);
    columns.push(Arc::new(
        rows.iter().map(|(_, s)| Some(*s)).collect::<Int64Array>(),
    ));
    columns.push(micros(rows.iter().map(|_| Some(updated_at))));
    columns.extend(address_link_columns(&people));
    batch(&PERSON, columns)
}

/// Rows of `person_history`.
pub fn history(
    rows: &[PersonVersion],
    recorded_at: DateTime<Utc>,
) -> Result<RecordBatch, TransformError> {
    let people: Vec<&Person> = rows.iter().map(|v| &v.person).collect();
    let mut columns = person_columns(&people);
    columns.push(Arc::new(
        rows.iter()
            .map(|v| Some(v.sequence))
            .collect::<Int64Array>(),
    ));
    columns.push(micros(rows.iter().map(|v| Some(v.valid_from))));
    columns.push(micros(rows.iter().map(|v| v.valid_to)));
    columns.push(micros(rows.iter().map(|_| Some(recorded_at))));
    columns.extend(address_link_columns(&people));
    batch(&PERSON_HISTORY, columns)
}

/// Rows of `person_event`.
pub fn events(
    rows: &[EventRow],
    recorded_at: DateTime<Utc>,
) -> Result<RecordBatch, TransformError> {
    batch(
        &PERSON_EVENT,
        vec![
            Arc::new(
                rows.iter()
                    .map(|e| Some(e.sequence))
                    .collect::<Int64Array>(),
            ),
            texts(rows.iter().map(|e| Some(e.event_type.as_str()))),
            texts(rows.iter().map(|e| Some(e.person_id.as_str()))),
            micros(rows.iter().map(|e| e.occurred_at)),
            texts(rows.iter().map(|e| e.event_document_id.as_deref())),
            texts(rows.iter().map(|e| e.person_document_id.as_deref())),
            texts(rows.iter().map(|e| Some(e.outcome.as_str()))),
            micros(rows.iter().map(|_| Some(recorded_at))),
        ],
    )
}

/// Rows of `dead_letter`.
pub fn dead_letters(
    rows: &[DeadLetter],
    recorded_at: DateTime<Utc>,
) -> Result<RecordBatch, TransformError> {
    batch(
        &DEAD_LETTER,
        vec![
            texts(rows.iter().map(|d| Some(d.source.as_str()))),
            texts(rows.iter().map(|d| Some(d.cursor.as_str()))),
            texts(rows.iter().map(|d| d.record_id.as_deref())),
            texts(rows.iter().map(|d| Some(d.reason.as_str()))),
            texts(rows.iter().map(|d| Some(d.replay.as_str()))),
            micros(rows.iter().map(|_| Some(recorded_at))),
        ],
    )
}
