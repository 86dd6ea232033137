//! Kafka messages: lake rows to JSON values with the lake's column names, minimised for many
//! subscribers, with CloudEvents headers (Kafka binding, binary mode).
//!
//! A protected address never goes into a message: for a person whose protection is not
//! `ugradert` every address field is null, and for strengt fortrolig the municipality too. The
//! protection level itself is confidential and only included when asked for.

use arrow::array::AsArray;
use arrow::datatypes::Int64Type;
use arrow::record_batch::RecordBatch;
use schemas::tables::{ADDRESS_COLUMNS, protection};
use schemas::topics::{FREG_SOURCE, Topic};
use serde_json::{Map, Value};

use crate::TransformError;
use crate::freg::document::withholds_address;

/// One message, ready to produce.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// Record key (the person id).
    pub key: String,
    /// JSON value; `None` is a tombstone.
    pub value: Option<Vec<u8>>,
    /// Headers, in order.
    pub headers: Vec<(&'static str, String)>,
    /// The register sequence number the message carries (`ce_sequence`).
    pub sequence: i64,
}

fn rows_as_json(batch: &RecordBatch) -> Result<Vec<Map<String, Value>>, TransformError> {
    let err = |source| TransformError::Encode {
        table: "message",
        source,
    };
    let mut buf = Vec::new();
    let mut writer = arrow::json::WriterBuilder::new()
        .with_explicit_nulls(true)
        .build::<_, arrow::json::writer::JsonArray>(&mut buf);
    writer.write(batch).map_err(err)?;
    writer.finish().map_err(err)?;
    drop(writer);
    if buf.is_empty() {
        return Ok(Vec::new());
    }
    serde_json::from_slice(&buf).map_err(|e| TransformError::Malformed {
        what: "encoded rows",
        reason: e.to_string(),
    })
}

fn sequences(batch: &RecordBatch, column: &str) -> Vec<i64> {
    batch
        .column_by_name(column)
        .and_then(|c| c.as_primitive_opt::<Int64Type>())
        .map(|a| (0..a.len()).map(|i| a.value(i)).collect())
        .unwrap_or_default()
}

fn headers(
    topic: &Topic,
    key: &str,
    sequence: i64,
    time: Option<&str>,
) -> Vec<(&'static str, String)> {
    let mut h = vec![
        ("ce_specversion", "1.0".to_owned()),
        ("ce_id", format!("{}:{sequence}:{key}", topic.name)),
        ("ce_source", FREG_SOURCE.to_owned()),
        ("ce_type", topic.event_type.to_owned()),
        ("ce_subject", key.to_owned()),
        ("ce_sequence", sequence.to_string()),
        ("ce_sequencetype", "Integer".to_owned()),
        ("content-type", "application/json".to_owned()),
    ];
    if let Some(t) = time {
        h.push(("ce_time", t.to_owned()));
    }
    h
}

/// Withholds what may not go to many subscribers.
pub fn minimise_person(row: &mut Map<String, Value>, include_confidential: bool) {
    let level = row
        .get("address_protection")
        .and_then(Value::as_str)
        .unwrap_or(protection::STRICTLY_CONFIDENTIAL)
        .to_owned();
    if level != protection::UNGRADED {
        for column in ADDRESS_COLUMNS {
            if *column != "municipality_number" || withholds_address(&level) {
                row.insert((*column).to_owned(), Value::Null);
            }
        }
    }
    if !include_confidential {
        row.insert("address_protection".to_owned(), Value::Null);
    }
}

/// Rows to messages keyed by `person_id`, with the sequence and time columns named; `shape`
/// edits a row's value and says whether it is a tombstone.
fn to_messages(
    topic: &Topic,
    batch: &RecordBatch,
    sequence_column: &str,
    time_column: &str,
    shape: impl Fn(&mut Map<String, Value>) -> bool,
) -> Result<Vec<Message>, TransformError> {
    let seqs = sequences(batch, sequence_column);
    Ok(rows_as_json(batch)?
        .into_iter()
        .zip(seqs)
        .map(|(mut row, sequence)| {
            let text = |column: &str| row.get(column).and_then(Value::as_str).map(str::to_owned);
            let (key, time) = (text("person_id").unwrap_or_default(), text(time_column));
            let tombstone = shape(&mut row);
            let value =
                (!tombstone).then(|| serde_json::to_vec(&Value::Object(row)).unwrap_or_default());
            Message {
                headers: headers(topic, &key, sequence, time.as_deref()),
                key,
                value,
                sequence,
            }
        })
        .collect())
}

/// `person` rows to change-topic messages: one per person, a tombstone for a ceased person.
pub fn person_messages(
    topic: &Topic,
    batch: &RecordBatch,
    include_confidential: bool,
) -> Result<Vec<Message>, TransformError> {
    to_messages(topic, batch, "last_sequence", "updated_at", |row| {
        let ceased = row.get("status").and_then(Value::as_str) == Some("opphoert");
        minimise_person(row, include_confidential);
        ceased
    })
}

/// `person_event` rows to event-topic messages.
pub fn event_messages(topic: &Topic, batch: &RecordBatch) -> Result<Vec<Message>, TransformError> {
    to_messages(topic, batch, "sequence", "occurred_at", |row| {
        row.remove("recorded_at");
        false
    })
}
