//! Kafka messages: lake rows to JSON values with the lake's column names, minimised for many
//! subscribers, with CloudEvents headers (Kafka binding, binary mode).
//!
//! Nothing in a message may tell a subscriber without confidential access that a person is
//! protected: by default person messages carry no address fields and no protection level, and a
//! change of protection is published as a generic re-read event. Subscribers cleared for
//! confidential fields (`include_confidential`) get addresses of unprotected persons, the
//! municipality of fortrolig ones, and the level; a protected address never goes into any
//! message.

use arrow::array::AsArray;
use arrow::datatypes::Int64Type;
use arrow::record_batch::RecordBatch;
use schemas::tables::{ADDRESS_COLUMNS, protection};
use schemas::topics::Topic;
use serde_json::{Map, Value};

use crate::TransformError;
use crate::freg::document::withholds_address;
use crate::model::Outcome;

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
        ("ce_source", topic.source.to_owned()),
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

/// The event type that says a person's address protection changed. Published as it is only
/// to subscribers cleared for confidential fields; to the others it is [`REREAD_EVENT`].
pub const PROTECTION_EVENT: &str = "endringIAdressebeskyttelse";

/// The register's own generic "re-read the person" event type.
pub const REREAD_EVENT: &str = "personErOppdatert";

/// Withholds what may not go to many subscribers.
///
/// Without confidential access a message carries no address field and no municipality for
/// anyone, so the pattern of nulls cannot tell a protected person from another; nor the
/// protection level. With it, addresses are present for `ugradert` persons, the municipality
/// also for fortrolig and klientadresse, and the level itself.
pub fn minimise_person(row: &mut Map<String, Value>, include_confidential: bool) {
    if !include_confidential {
        for column in ADDRESS_COLUMNS {
            row.remove(*column);
        }
        row.remove("address_protection");
        return;
    }
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
}

/// Withholds from an event what may not go to many subscribers: without confidential access,
/// a change of address protection is published as the generic [`REREAD_EVENT`], so the event
/// stream does not say who became protected.
pub fn minimise_event(row: &mut Map<String, Value>, include_confidential: bool) {
    // Compared without case and underscores, as the register spells coded values both ways.
    let folded = |t: &str| t.replace('_', "").to_lowercase();
    if !include_confidential
        && row
            .get("event_type")
            .and_then(Value::as_str)
            .is_some_and(|t| folded(t) == folded(PROTECTION_EVENT))
    {
        row.insert("event_type".to_owned(), Value::from(REREAD_EVENT));
    }
}

/// Rows to messages, with the key, sequence and time columns named; `shape` edits a row's
/// value and says whether it is a tombstone.
fn to_messages(
    topic: &Topic,
    batch: &RecordBatch,
    key_column: &str,
    sequence_column: &str,
    time_column: &str,
    shape: impl Fn(&mut Map<String, Value>) -> bool,
) -> Result<Vec<Message>, TransformError> {
    let seqs = sequences(batch, sequence_column);
    if seqs.len() != batch.num_rows() {
        return Err(TransformError::Malformed {
            what: "rows for messages",
            reason: format!("no whole Int64 column `{sequence_column}`"),
        });
    }
    rows_as_json(batch)?
        .into_iter()
        .zip(seqs)
        .map(|(mut row, sequence)| {
            let text = |column: &str| row.get(column).and_then(Value::as_str).map(str::to_owned);
            // A message without its key or with an empty value would be wrong on the topic:
            // keyless, or read as a tombstone. Either is an error, never a message.
            let key = text(key_column).ok_or_else(|| TransformError::Malformed {
                what: "rows for messages",
                reason: format!("a row at sequence {sequence} has no {key_column}"),
            })?;
            let time = text(time_column);
            let tombstone = shape(&mut row);
            let value = if tombstone {
                None
            } else {
                Some(serde_json::to_vec(&Value::Object(row)).map_err(|e| {
                    TransformError::Malformed {
                        what: "message value",
                        reason: format!("{key} at sequence {sequence}: {e}"),
                    }
                })?)
            };
            Ok(Message {
                headers: headers(topic, &key, sequence, time.as_deref()),
                key,
                value,
                sequence,
            })
        })
        .collect()
}

/// `person` rows to change-topic messages: one per person, a tombstone for a ceased person.
pub fn person_messages(
    topic: &Topic,
    batch: &RecordBatch,
    include_confidential: bool,
) -> Result<Vec<Message>, TransformError> {
    to_messages(
        topic,
        batch,
        "person_id",
        "last_sequence",
        "updated_at",
        |row| {
            let ceased = row.get("status").and_then(Value::as_str) == Some("opphoert");
            minimise_person(row, include_confidential);
            ceased
        },
    )
}

/// `person_event` rows to event-topic messages.
pub fn event_messages(
    topic: &Topic,
    batch: &RecordBatch,
    include_confidential: bool,
) -> Result<Vec<Message>, TransformError> {
    to_messages(
        topic,
        batch,
        "person_id",
        "sequence",
        "occurred_at",
        |row| {
            row.remove("recorded_at");
            minimise_event(row, include_confidential);
            false
        },
    )
}

/// A business unit's changes (an update joined with the unit's current row, see
/// `schemas::register::BRREG`) to change-topic messages keyed by organisation number: the
/// unit's state, or a tombstone for a unit the register removed. The register's data is
/// public: nothing is withheld.
pub fn unit_messages(topic: &Topic, batch: &RecordBatch) -> Result<Vec<Message>, TransformError> {
    to_messages(topic, batch, "key", "update_id", "occurred_at", |row| {
        let removed = row.get("outcome").and_then(Value::as_str) == Some(Outcome::Removed.as_str());
        for column in ["key", "update_id", "outcome", "occurred_at"] {
            row.remove(column);
        }
        removed
    })
}

/// An address's changes (a change joined with the address's current row, see
/// `schemas::register::MATRIKKEL`) to change-topic messages keyed by address id: the address's
/// state, or a tombstone for an address the register deleted. The register's address data is
/// public: nothing is withheld.
pub fn address_messages(
    topic: &Topic,
    batch: &RecordBatch,
) -> Result<Vec<Message>, TransformError> {
    to_messages(topic, batch, "key", "change_id", "occurred_at", |row| {
        let removed = row.get("outcome").and_then(Value::as_str) == Some(Outcome::Removed.as_str());
        for column in ["key", "change_id", "outcome", "occurred_at"] {
            row.remove(column);
        }
        removed
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_protection_change_is_not_named_to_subscribers_without_confidential_access() {
        let mut row: Map<String, Value> =
            serde_json::from_str(r#"{"event_type": "endringIAdressebeskyttelse"}"#).unwrap();
        minimise_event(&mut row, true);
        assert_eq!(row["event_type"], PROTECTION_EVENT);
        minimise_event(&mut row, false);
        assert_eq!(row["event_type"], REREAD_EVENT);
        row.insert(
            "event_type".into(),
            Value::from("ENDRING_I_ADRESSEBESKYTTELSE"),
        );
        minimise_event(&mut row, false);
        assert_eq!(row["event_type"], REREAD_EVENT);
    }

    #[test]
    fn person_messages_hold_no_address_field_for_anyone_without_confidential_access() {
        for level in ["ugradert", "fortrolig", "strengt_fortrolig"] {
            let mut row: Map<String, Value> = serde_json::from_value(serde_json::json!({
                "person_id": "1", "municipality_number": "5035", "street_name": "Vegen",
                "address_protection": level
            }))
            .unwrap();
            minimise_person(&mut row, false);
            assert_eq!(row.keys().collect::<Vec<_>>(), vec!["person_id"], "{level}");
        }
    }
}
