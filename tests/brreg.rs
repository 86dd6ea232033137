//! The business register end to end: `regsync run pipelines/brreg.toml`-style pipelines against
//! the simulator over HTTP, with faults, live changes on both updates lists and SIGKILL at
//! random moments, into real Delta tables and a real Kafka-protocol broker. Afterwards every
//! update since the seed is in the lake exactly once, each unit's current state is the
//! register's, and each topic's last message per unit is that state (or a tombstone).

mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::broker::Broker;
use common::brreg::{API, brreg_pipeline, truth};
use common::kafka::{tail, validator};
use common::*;
use rand::Rng;
use serde_json::Value;

/// A list's update ids from `dato` on, in order.
fn update_ids(sim: &Simulator, list: &str, since_micros: i64) -> Vec<i64> {
    let since = chrono::DateTime::from_timestamp_micros(since_micros)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let path = format!("{API}/oppdateringer/{list}?dato={since}&size=10000");
    for _ in 0..200 {
        if let Some(page) = sim.get_json(&path) {
            let items = page["_embedded"]
                .as_object()
                .and_then(|e| e.values().next())
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            assert!(items.len() < 10_000, "more updates than one page");
            return items
                .iter()
                .map(|u| u["oppdateringsid"].as_i64().unwrap())
                .collect();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("the simulator's {list} updates never answered");
}

/// A unit's state as compared: name, employees, kommune of its address, bankrupt, deleted.
fn state_of_document(doc: &Value) -> Value {
    let address = ["forretningsadresse", "beliggenhetsadresse", "postadresse"]
        .iter()
        .find_map(|a| doc.get(*a).filter(|v| v.is_object()));
    serde_json::json!([
        doc["navn"],
        doc["antallAnsatte"],
        address.map_or(Value::Null, |a| a["kommunenummer"].clone()),
        doc.get("konkurs").cloned().unwrap_or(Value::Null),
        doc.get("slettedato").cloned().unwrap_or(Value::Null),
    ])
}

fn state_of_row(row: &Value) -> Value {
    serde_json::json!([
        row["name"],
        row["employees"],
        row["municipality_number"],
        row.get("bankrupt").cloned().unwrap_or(Value::Null),
        row["deleted_date"],
    ])
}

fn lake_units(lake: &Path, table: &str) -> HashMap<String, Value> {
    sql(
        lake,
        &format!(
            "SELECT organization_number, name, employees, municipality_number, bankrupt, \
             CAST(deleted_date AS VARCHAR) AS deleted_date, last_update_id FROM {table}"
        ),
    )
    .into_iter()
    .map(|r| (r["organization_number"].as_str().unwrap().to_owned(), r))
    .collect()
}

fn assert_list_matches(lake: &Path, sim: &Simulator, list: &str, kind: &str, table: &str) {
    // Every update from the download's time on, exactly once.
    let since = sql(
        lake,
        &format!(
            "SELECT CAST(min(valid_from) AS BIGINT) AS t FROM {table}_history WHERE update_id = 0"
        ),
    )[0]["t"]
        .as_i64()
        .expect("a seeded list");
    let want = update_ids(sim, list, since);
    let got: Vec<i64> = sql(
        lake,
        &format!(
            "SELECT update_id FROM business_update WHERE unit_kind = '{kind}' ORDER BY update_id"
        ),
    )
    .iter()
    .map(|r| r["update_id"].as_i64().unwrap())
    .collect();
    assert!(
        !want.is_empty(),
        "{list}: no updates after the seed to check"
    );
    assert_eq!(
        got, want,
        "{list}: every update since the seed exactly once"
    );
    // Current state is the register's.
    let truth = truth(sim, list);
    let lake_now = lake_units(lake, table);
    let mut missing: Vec<&String> = truth
        .keys()
        .filter(|n| !lake_now.contains_key(*n))
        .collect();
    let mut extra: Vec<&String> = lake_now
        .keys()
        .filter(|n| !truth.contains_key(*n))
        .collect();
    missing.sort();
    extra.sort();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{table}: units the register serves but the lake lacks {missing:?}, and the other way {extra:?}"
    );
    let wrong: Vec<(&String, Value, Value)> = truth
        .iter()
        .map(|(n, doc)| (n, state_of_document(doc), state_of_row(&lake_now[n])))
        .filter(|(_, t, l)| t != l)
        .take(5)
        .collect();
    assert!(
        wrong.is_empty(),
        "{table}: units whose state differs (number, register, lake): {wrong:?}"
    );
    // One open version per unit in current state, none for a removed one.
    let open = sql(
        lake,
        &format!(
            "SELECT count(*) AS n, count(DISTINCT organization_number) AS d FROM {table}_history WHERE valid_to IS NULL"
        ),
    );
    assert_eq!(
        open[0]["n"].as_i64(),
        Some(truth.len() as i64),
        "{table}_history: open versions"
    );
    assert_eq!(
        open[0]["d"].as_i64(),
        Some(truth.len() as i64),
        "{table}_history: one open version per unit"
    );
}

/// The topic's last message per unit is the lake's row, or a tombstone for a unit the lake
/// no longer holds; values validate against the topic's schema.
fn assert_topic_matches(broker: &Broker, lake: &Path, topic: &str, table: &str) {
    let v = validator(topic);
    let mut by_offset = tail(broker, topic);
    by_offset.sort_by_key(|m| (m["partition"].as_i64(), m["offset"].as_i64()));
    let mut last: BTreeMap<String, Value> = BTreeMap::new();
    let mut previous: HashMap<String, i64> = HashMap::new();
    for m in by_offset {
        let key = m["key"].as_str().unwrap().to_owned();
        let value = m["value"].clone();
        assert!(
            value.is_null() || v.is_valid(&value),
            "{topic}: invalid message {value}"
        );
        let h = &m["headers"];
        assert_eq!(h["ce_source"], "urn:regsync:brreg");
        assert_eq!(h["ce_subject"].as_str(), Some(key.as_str()));
        let seq: i64 = h["ce_sequence"].as_str().unwrap().parse().unwrap();
        if let Some(p) = previous.insert(key.clone(), seq) {
            assert!(seq > p, "{topic}: {key} at update {seq} after {p}");
        }
        last.insert(key, value);
    }
    let rows = lake_units(lake, table);
    let mut wrong = Vec::new();
    for (key, row) in &rows {
        match last.get(key) {
            Some(value)
                if value["last_update_id"] == row["last_update_id"]
                    && state_of_row(value) == state_of_row(row) => {}
            other => wrong.push((key.clone(), other.cloned())),
        }
    }
    for (key, value) in &last {
        if !rows.contains_key(key) && !value.is_null() {
            wrong.push((key.clone(), Some(value.clone())));
        }
    }
    assert!(
        wrong.is_empty(),
        "{topic}: last messages that are not the lake's state (first 5): {:?}",
        &wrong[..wrong.len().min(5)]
    );
    assert!(
        last.values().any(Value::is_null),
        "{topic}: no tombstone for a removed unit"
    );
}

#[test]
fn both_lists_survive_faults_live_changes_and_sigkill_losing_and_repeating_nothing() {
    let sim = Simulator::start(&[
        "--persons",
        "4000",
        "--seed",
        "31",
        "--events-per-sec",
        "60",
        "--max-events",
        "1500",
        "--faults",
        "0.03",
    ]);
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let pipeline = brreg_pipeline(dir.path(), &sim.url, true);
    let lake = dir.path().join("lake");
    let mut rng = kill_rng("both_lists_survive_faults_live_changes_and_sigkill");
    for _ in 0..8 {
        let mut child = Command::new(BIN)
            .args(["run", pipeline.to_str().unwrap(), "--kafka", &broker.addr])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(rng.random_range(400..3000)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
    }
    sim.wait_until_quiet();
    let out = regsync(&[
        "run",
        pipeline.to_str().unwrap(),
        "--kafka",
        &broker.addr,
        "--until-caught-up",
    ]);
    assert!(
        out.status.success(),
        "regsync run: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_list_matches(&lake, &sim, "enheter", "enhet", "business_unit");
    assert_list_matches(
        &lake,
        &sim,
        "underenheter",
        "underenhet",
        "business_subunit",
    );
    assert_topic_matches(&broker, &lake, "brreg.enhet.v1", "business_unit");
    assert_topic_matches(&broker, &lake, "brreg.underenhet.v1", "business_subunit");
}
