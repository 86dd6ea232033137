//! Reading the Kafka topics back and checking them against the lake.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Stdio};

use serde_json::Value;

use super::broker::Broker;
use super::*;

/// Every message of a topic, from the beginning.
pub fn tail(broker: &Broker, topic: &str) -> Vec<Value> {
    let out = regsync(&[
        "tail",
        topic,
        "--kafka",
        &broker.addr,
        "--from-beginning",
        "--format",
        "json",
        "--exit-at-end",
    ]);
    assert!(
        out.status.success(),
        "regsync tail {topic}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

pub fn validator(topic: &str) -> jsonschema::Validator {
    let text = schemas::topics::TOPICS
        .iter()
        .find(|t| t.name == topic)
        .expect("a topic regsync writes")
        .schema;
    jsonschema::validator_for(&serde_json::from_str(text).unwrap()).unwrap()
}

pub fn run_with_kafka(pipeline: &Path, broker: &Broker) -> Child {
    regsync_cmd()
        .args(["run", pipeline.to_str().unwrap(), "--kafka", &broker.addr])
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

pub fn caught_up_with_kafka(pipeline: &Path, broker: &Broker) {
    let out = regsync(&[
        "run",
        pipeline.to_str().unwrap(),
        "--kafka",
        &broker.addr,
        "--until-caught-up",
    ]);
    assert!(
        out.status.success(),
        "regsync run --kafka: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The event topic holds every feed sequence exactly once, in order per key, with CloudEvents
/// headers; values validate.
pub fn assert_event_topic(broker: &Broker, lake: &Path, head: i64) {
    let seeded = seed_sequence(lake);
    let messages = tail(broker, "freg.event.v1");
    let v = validator("freg.event.v1");
    let mut seen: Vec<i64> = Vec::new();
    let mut last_per_key: HashMap<String, (i64, i64)> = HashMap::new();
    let mut by_offset = messages.clone();
    by_offset.sort_by_key(|m| (m["partition"].as_i64(), m["offset"].as_i64()));
    for m in &by_offset {
        let value = &m["value"];
        assert!(v.is_valid(value), "invalid event message {value}");
        assert_ne!(
            value["event_type"], "endringIAdressebeskyttelse",
            "the event topic tells who became protected: {value}"
        );
        let seq = value["sequence"].as_i64().unwrap();
        let h = &m["headers"];
        assert_eq!(h["ce_specversion"], "1.0");
        assert_eq!(h["ce_sequence"].as_str().unwrap(), seq.to_string());
        assert_eq!(h["ce_subject"], m["key"]);
        assert!(h["ce_id"].is_string() && h["ce_source"].is_string() && h["ce_type"].is_string());
        let key = m["key"].as_str().unwrap().to_owned();
        if let Some((prev, prev_offset)) = last_per_key.get(&key) {
            assert!(
                seq > *prev,
                "key {key}: sequence {seq} at offset {} after {prev} at offset {prev_offset} (partition {})",
                m["offset"],
                m["partition"]
            );
        }
        last_per_key.insert(key, (seq, m["offset"].as_i64().unwrap()));
        seen.push(seq);
    }
    seen.sort_unstable();
    let want: Vec<i64> = (seeded + 1..=head).collect();
    let dups = seen.windows(2).filter(|w| w[0] == w[1]).count();
    assert_eq!(dups, 0, "duplicate sequences in freg.event.v1");
    assert_eq!(
        seen, want,
        "every feed sequence in freg.event.v1 exactly once"
    );
}

/// The last value per key in the change topic equals the lake's person row, minimised.
pub fn assert_person_topic(broker: &Broker, lake: &Path) {
    let messages = tail(broker, "freg.person.v1");
    let v = validator("freg.person.v1");
    let mut last: HashMap<String, Value> = HashMap::new();
    let mut by_offset = messages;
    by_offset.sort_by_key(|m| (m["partition"].as_i64(), m["offset"].as_i64()));
    for m in by_offset {
        let value = m["value"].clone();
        assert!(
            value.is_null() || v.is_valid(&value),
            "invalid person message {value}"
        );
        last.insert(m["key"].as_str().unwrap().to_owned(), value);
    }
    let rows = sql(lake, "SELECT * FROM person");
    assert_eq!(last.len(), rows.len(), "one key per person");
    for row in rows {
        let id = row["person_id"].as_str().unwrap();
        let msg = last
            .get(id)
            .unwrap_or_else(|| panic!("{id} missing from freg.person.v1"));
        let protected = row["address_protection"].as_str() != Some("ugradert");
        for field in [
            "status",
            "family_name",
            "given_name",
            "birth_date",
            "marital_status",
            "last_sequence",
            "death_date",
        ] {
            assert_eq!(
                msg.get(field).unwrap_or(&Value::Null),
                row.get(field).unwrap_or(&Value::Null),
                "{id}.{field}"
            );
        }
        // Without confidential access no address field, municipality or level is in any
        // message, so the pattern of nulls cannot tell who is protected.
        for field in [
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
            "address_protection",
        ] {
            assert!(
                msg.get(field).is_none(),
                "{field} in freg.person.v1 (protected: {protected}): {msg}"
            );
        }
    }
}
