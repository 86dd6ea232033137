//! Kafka topics against a real Kafka-protocol broker over TCP (`tansu`, started here and
//! installed on first use by `common::broker`): exactly once across SIGKILLs and a broker outage, last value per key equal to the
//! lake, no protected address in any message, values valid against the checked-in schemas.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::broker::Broker;
use common::*;
use rand::Rng;
use serde_json::Value;

/// Every message of a topic, from the beginning.
fn tail(broker: &Broker, topic: &str) -> Vec<Value> {
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

fn validator(topic: &str) -> jsonschema::Validator {
    let text = match topic {
        "freg.person.v1" => schemas::topics::FREG_PERSON.schema,
        _ => schemas::topics::FREG_EVENT.schema,
    };
    jsonschema::validator_for(&serde_json::from_str(text).unwrap()).unwrap()
}

fn run_with_kafka(pipeline: &Path, broker: &Broker) -> Child {
    Command::new(BIN)
        .args(["run", pipeline.to_str().unwrap(), "--kafka", &broker.addr])
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn caught_up_with_kafka(pipeline: &Path, broker: &Broker) {
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
fn assert_event_topic(broker: &Broker, lake: &Path, head: i64) {
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
fn assert_person_topic(broker: &Broker, lake: &Path) {
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
            "address_protection",
        ] {
            assert!(
                msg.get(field).is_none(),
                "{field} in freg.person.v1 (protected: {protected}): {msg}"
            );
        }
    }
}

#[test]
fn sigkill_with_kafka_exactly_once_in_both_topics() {
    let broker = Broker::start();
    let sim = Simulator::start(&[
        "--persons",
        "5000",
        "--seed",
        "41",
        "--events-per-sec",
        "250",
        "--max-events",
        "5000",
        "--faults",
        "0.02",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let pipeline = pipeline(dir.path(), &sim.url, 300);
    let lake = dir.path().join("lake");
    let mut rng = kill_rng("sigkill_with_kafka_exactly_once_in_both_topics");
    for _ in 0..10 {
        let mut child = run_with_kafka(&pipeline, &broker);
        std::thread::sleep(Duration::from_millis(rng.random_range(500..3500)));
        child.kill().unwrap();
        child.wait().unwrap();
    }
    let head = sim.wait_until_quiet();
    caught_up_with_kafka(&pipeline, &broker);
    assert_events_exactly_once(&lake, head);
    assert_state_matches(&lake, &sim);
    assert_event_topic(&broker, &lake, head);
    assert_person_topic(&broker, &lake);
}

#[test]
fn broker_outage_loses_nothing_and_the_lake_goes_on() {
    let broker = Broker::start();
    let sim = Simulator::start(&[
        "--persons",
        "3000",
        "--seed",
        "43",
        "--events-per-sec",
        "150",
        "--max-events",
        "4000",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let pipeline = pipeline(dir.path(), &sim.url, 200);
    let lake = dir.path().join("lake");
    let mut worker = run_with_kafka(&pipeline, &broker);
    std::thread::sleep(Duration::from_secs(6));
    // The broker stops answering (its process is stopped, connections hang), then comes back.
    broker.signal("-STOP");
    let before = sql(&lake, "SELECT count(*) AS n FROM person_event")[0]["n"]
        .as_i64()
        .unwrap();
    std::thread::sleep(Duration::from_secs(20));
    let during = sql(&lake, "SELECT count(*) AS n FROM person_event")[0]["n"]
        .as_i64()
        .unwrap();
    assert!(
        during > before,
        "the lake goes on while the broker is down ({before} -> {during})"
    );
    broker.signal("-CONT");
    let head = sim.wait_until_quiet();
    // Stop the worker cleanly, then let a new one finish the work.
    assert!(
        Command::new("kill")
            .args(["-TERM", &worker.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    assert!(worker.wait().unwrap().success());
    caught_up_with_kafka(&pipeline, &broker);
    assert_events_exactly_once(&lake, head);
    assert_event_topic(&broker, &lake, head);
    assert_person_topic(&broker, &lake);
}

#[test]
fn a_missing_topic_stops_the_start_when_creation_is_off() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let path = pipeline(dir.path(), "http://127.0.0.1:9", 100);
    let text = std::fs::read_to_string(&path).unwrap()
        + &format!(
            "[kafka]\nbrokers = \"{}\"\ncreate_topics = false\ntopic_prefix = \"k5035.\"\n",
            broker.addr
        );
    std::fs::write(&path, text).unwrap();
    let out = regsync(&["run", path.to_str().unwrap(), "--until-caught-up"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("k5035.freg.person.v1") && err.contains("create_topics"),
        "{err}"
    );
}

#[test]
fn a_second_worker_with_kafka_on_the_same_lake_stops_and_the_topics_stay_whole() {
    let broker = Broker::start();
    let sim = Simulator::start(&[
        "--persons",
        "3000",
        "--seed",
        "43",
        "--events-per-sec",
        "100",
        "--max-events",
        "4000",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let pipeline = pipeline(dir.path(), &sim.url, 100);
    let lake = dir.path().join("lake");
    caught_up_with_kafka(&pipeline, &broker);
    let (exited, other) = race_two_workers(
        &[pipeline.to_str().unwrap(), "--kafka", &broker.addr],
        Duration::from_secs(2),
        Duration::from_secs(90),
    );
    assert_stopped_as_second_writer(&exited, other);
    let head = sim.wait_until_quiet();
    caught_up_with_kafka(&pipeline, &broker);
    assert_events_exactly_once(&lake, head);
    assert_event_topic(&broker, &lake, head);
    assert_person_topic(&broker, &lake);
}
