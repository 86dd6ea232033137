//! The property register end to end: `regsync run` against the simulator over HTTP (the
//! address file, the cadastral units' initial load, the change log), with faults, live changes
//! and SIGKILL at random moments, into real Delta tables and a real Kafka-protocol broker.
//! Afterwards every change since the seed is in the lake exactly once, every address and
//! cadastral unit is the register's, each address's last message is its state (or a tombstone),
//! and every unprotected resident is placed at the register's address.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::broker::Broker;
use common::kafka::{tail, validator};
use common::matrikkel::{address_file, cadastral_units, change_ids, matrikkel_pipeline};
use common::*;
use rand::Rng;
use serde_json::Value;

#[test]
fn the_address_file_seeds_once_across_sigkills_and_places_every_resident() {
    let sim = Simulator::start(&["--persons", "2500", "--seed", "17", "--events-per-sec", "0"]);
    let dir = tempfile::tempdir().unwrap();
    let matrikkel = matrikkel_pipeline(dir.path(), &sim.url, false, &[], 40);
    let mut rng = kill_rng("the_address_file_seeds_once_across_sigkills");
    for _ in 0..4 {
        let mut child = Command::new(BIN)
            .args(["run", matrikkel.to_str().unwrap()])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(rng.random_range(300..2500)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
    }
    let freg = pipeline(dir.path(), &sim.url, 500);
    let out = regsync(&[
        "run",
        freg.to_str().unwrap(),
        matrikkel.to_str().unwrap(),
        "--until-caught-up",
    ]);
    assert!(
        out.status.success(),
        "regsync run: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lake = dir.path().join("lake");
    let want: HashSet<String> = address_file(&sim).into_keys().collect();
    let rows = sql(&lake, "SELECT address_id FROM address");
    let got: HashSet<String> = rows
        .iter()
        .map(|r| r["address_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(rows.len(), got.len(), "each address once in `address`");
    assert_eq!(got, want, "the lake's addresses are the file's");
    let open = sql(
        &lake,
        "SELECT count(*) AS n, count(DISTINCT address_id) AS d FROM address_history WHERE valid_to IS NULL",
    );
    assert_eq!(
        open[0]["n"].as_i64(),
        Some(want.len() as i64),
        "open versions"
    );
    assert_eq!(
        open[0]["d"].as_i64(),
        Some(want.len() as i64),
        "one per address"
    );
    // Every unprotected resident at a street address is at one of the register's addresses.
    let placed = sql(
        &lake,
        "SELECT count(*) AS n, count(address_id) AS placed FROM resident_addresses",
    );
    let (n, placed) = (
        placed[0]["n"].as_i64().unwrap(),
        placed[0]["placed"].as_i64().unwrap(),
    );
    assert!(n > 1000, "{n} residents");
    assert_eq!(placed, n, "residents without the register's address");
    // The population register names the property register's address id: residents are placed
    // by it, and it is the address their street, number and letter name.
    let by_id = sql(
        &lake,
        "SELECT count(*) AS n FROM resident_addresses r JOIN address a ON a.address_id = r.address_id \
         WHERE r.matched_by = 'address_id' AND a.municipality_number = r.municipality_number \
         AND regexp_replace(upper(concat(a.street_name, a.house_number, coalesce(a.house_letter, ''))), '[^A-Z0-9ÆØÅ]', '', 'g') = r.address_key",
    );
    assert_eq!(
        by_id[0]["n"].as_i64(),
        Some(n),
        "residents placed by address id"
    );
    // Households are per dwelling: an address with several has several households.
    let split = sql(
        &lake,
        "SELECT count(*) AS n FROM (SELECT municipality_number, address_key FROM households \
         GROUP BY 1, 2 HAVING count(DISTINCT dwelling_unit) > 1)",
    );
    assert!(
        split[0]["n"].as_i64().unwrap() > 0,
        "no address with more than one dwelling's household"
    );
}

/// An address's state as compared: kommune, street, number, letter, postcode, postal place,
/// point and update time, from the file's columns.
fn state_of_line(line: &HashMap<String, String>) -> Value {
    let opt = |c: &str| Some(line[c].clone()).filter(|v| !v.is_empty());
    let updated =
        chrono::NaiveDateTime::parse_from_str(&line["oppdateringsdato"], "%d.%m.%Y %H:%M:%S")
            .unwrap()
            .format("%Y-%m-%dT%H:%M:%S")
            .to_string();
    serde_json::json!([
        opt("kommunenummer"),
        opt("adressenavn"),
        opt("nummer"),
        opt("bokstav"),
        opt("postnummer"),
        opt("poststed"),
        format!("{:.6}", line["Nord"].parse::<f64>().unwrap()),
        format!("{:.6}", line["Øst"].parse::<f64>().unwrap()),
        updated,
    ])
}

fn state_of_row(row: &Value) -> Value {
    let updated = row["updated_local"]
        .as_str()
        .map(|t| t.replace(' ', "T").chars().take(19).collect::<String>());
    serde_json::json!([
        row["municipality_number"],
        row["street_name"],
        row["house_number"],
        row["house_letter"],
        row["postal_code"],
        row["postal_place"],
        format!("{:.6}", row["north"].as_f64().unwrap_or(f64::NAN)),
        format!("{:.6}", row["east"].as_f64().unwrap_or(f64::NAN)),
        updated,
    ])
}

fn lake_addresses(lake: &Path) -> HashMap<String, Value> {
    sql(
        lake,
        "SELECT address_id, municipality_number, street_name, house_number, house_letter, \
         postal_code, postal_place, north, east, CAST(updated_local AS VARCHAR) AS updated_local, \
         last_change_id FROM address",
    )
    .into_iter()
    .map(|r| (r["address_id"].as_str().unwrap().to_owned(), r))
    .collect()
}

/// `address` is the file, field by field, with one open version per address.
fn assert_addresses_match(lake: &Path, sim: &Simulator) {
    let file = address_file(sim);
    let rows = lake_addresses(lake);
    let mut missing: Vec<&String> = file.keys().filter(|k| !rows.contains_key(*k)).collect();
    let mut extra: Vec<&String> = rows.keys().filter(|k| !file.contains_key(*k)).collect();
    missing.sort();
    extra.sort();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "addresses the register has but the lake lacks {missing:?}, and the other way {extra:?}"
    );
    let wrong: Vec<(&String, Value, Value)> = file
        .iter()
        .map(|(id, line)| (id, state_of_line(line), state_of_row(&rows[id])))
        .filter(|(_, f, l)| f != l)
        .take(5)
        .collect();
    assert!(
        wrong.is_empty(),
        "addresses whose state differs (id, register, lake): {wrong:?}"
    );
    let open = sql(
        lake,
        "SELECT count(*) AS n, count(DISTINCT address_id) AS d FROM address_history WHERE valid_to IS NULL",
    );
    assert_eq!(
        open[0]["n"].as_i64(),
        Some(file.len() as i64),
        "open versions"
    );
    assert_eq!(
        open[0]["d"].as_i64(),
        Some(file.len() as i64),
        "one per address"
    );
}

/// `cadastral_unit` is the register's units, with their areas.
fn assert_units_match(lake: &Path, sim: &Simulator) {
    let truth = cadastral_units(sim);
    let rows: HashMap<String, Value> =
        sql(lake, "SELECT unit_id, gnr, bnr, area FROM cadastral_unit")
            .into_iter()
            .map(|r| (r["unit_id"].as_str().unwrap().to_owned(), r))
            .collect();
    let mut missing: Vec<&String> = truth.keys().filter(|k| !rows.contains_key(*k)).collect();
    let mut extra: Vec<&String> = rows.keys().filter(|k| !truth.contains_key(*k)).collect();
    missing.sort();
    extra.sort();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "cadastral units the register has but the lake lacks {missing:?}, and the other way {extra:?}"
    );
    let wrong: Vec<&String> = truth
        .iter()
        .filter(|(id, u)| {
            let r = &rows[*id];
            r["gnr"] != u["matrikkelnummer"]["gardsnummer"]
                || r["bnr"] != u["matrikkelnummer"]["bruksnummer"]
                || r["area"].as_f64() != u["historiskOppgittAreal"].as_f64()
        })
        .map(|(id, _)| id)
        .take(5)
        .collect();
    assert!(
        wrong.is_empty(),
        "cadastral units whose state differs: {wrong:?}"
    );
    let open = sql(
        lake,
        "SELECT count(*) AS n FROM cadastral_unit_history WHERE valid_to IS NULL",
    );
    assert_eq!(
        open[0]["n"].as_i64(),
        Some(truth.len() as i64),
        "open unit versions"
    );
}

/// The topic's last message per address is the lake's row, or a tombstone for an address the
/// lake no longer holds; values validate against the topic's schema.
fn assert_topic_matches(broker: &Broker, lake: &Path) {
    let topic = "matrikkel.adresse.v1";
    let v = validator(topic);
    let mut messages = tail(broker, topic);
    messages.sort_by_key(|m| (m["partition"].as_i64(), m["offset"].as_i64()));
    let mut last: BTreeMap<String, Value> = BTreeMap::new();
    let mut previous: HashMap<String, i64> = HashMap::new();
    for m in messages {
        let key = m["key"].as_str().unwrap().to_owned();
        let value = m["value"].clone();
        assert!(
            value.is_null() || v.is_valid(&value),
            "{topic}: invalid message {value}"
        );
        let h = &m["headers"];
        assert_eq!(h["ce_source"], "urn:regsync:matrikkel");
        let seq: i64 = h["ce_sequence"].as_str().unwrap().parse().unwrap();
        if let Some(p) = previous.insert(key.clone(), seq) {
            assert!(seq > p, "{topic}: {key} at change {seq} after {p}");
        }
        last.insert(key, value);
    }
    let rows = lake_addresses(lake);
    let mut wrong = Vec::new();
    for (key, row) in &rows {
        match last.get(key) {
            Some(value) if value["last_change_id"] == row["last_change_id"] => {}
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
        "{topic}: last messages that are not the lake's state (first 5 of {}): {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(5)]
    );
    assert!(
        last.values().any(Value::is_null),
        "{topic}: no tombstone for a deleted address"
    );
}

#[test]
fn the_change_log_survives_faults_live_changes_and_sigkill_losing_and_repeating_nothing() {
    let sim = Simulator::start(&[
        "--persons",
        "3000",
        "--seed",
        "43",
        "--events-per-sec",
        "60",
        "--max-events",
        "1500",
        "--faults",
        "0.03",
    ]);
    // The register exists from the first question on: ask it before the changes run out.
    let _ = change_ids(&sim, 0);
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let pipeline = matrikkel_pipeline(dir.path(), &sim.url, true, &[], 300);
    let lake = dir.path().join("lake");
    let mut rng = kill_rng("the_change_log_survives_faults_live_changes_and_sigkill");
    for _ in 0..7 {
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
    // The file was taken moments ago, so the log is followed from its start: every change of
    // the log exactly once.
    let want = change_ids(&sim, 0);
    assert!(want.len() > 200, "{} changes to check", want.len());
    let got: Vec<i64> = sql(
        &lake,
        "SELECT change_id FROM property_change ORDER BY change_id",
    )
    .iter()
    .map(|r| r["change_id"].as_i64().unwrap())
    .collect();
    assert_eq!(got, want, "every change of the log exactly once");
    let outcomes = sql(
        &lake,
        "SELECT outcome, count(*) AS n FROM property_change GROUP BY outcome ORDER BY outcome",
    );
    assert!(
        outcomes.iter().any(|r| r["outcome"] == "removed"),
        "deletions among the changes: {outcomes:?}"
    );
    assert_addresses_match(&lake, &sim);
    assert_units_match(&lake, &sim);
    // Every address stands on one of the register's cadastral units.
    let on_units = sql(
        &lake,
        "SELECT count(DISTINCT address_id) AS placed, count(DISTINCT unit_id) AS units \
         FROM cadastral_unit_addresses WHERE address_id IS NOT NULL",
    );
    let addresses = sql(&lake, "SELECT count(*) AS n FROM address");
    assert_eq!(
        on_units[0]["placed"], addresses[0]["n"],
        "addresses on no cadastral unit"
    );
    assert_topic_matches(&broker, &lake);
}

#[test]
fn a_kommune_filter_keeps_only_its_kommuner_in_every_table() {
    let sim = Simulator::start(&[
        "--persons",
        "3000",
        "--seed",
        "47",
        "--events-per-sec",
        "80",
        "--max-events",
        "600",
    ]);
    let _ = change_ids(&sim, 0);
    let dir = tempfile::tempdir().unwrap();
    let kommuner = ["5035", "0301", "4601"];
    let pipeline = matrikkel_pipeline(dir.path(), &sim.url, false, &kommuner, 1000);
    let mut child = Command::new(BIN)
        .args(["run", pipeline.to_str().unwrap()])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    sim.wait_until_quiet();
    child.kill().unwrap();
    child.wait().unwrap();
    run_until_caught_up(&pipeline);
    let lake = dir.path().join("lake");
    let want: HashSet<String> = address_file(&sim)
        .into_iter()
        .filter(|(_, line)| kommuner.contains(&line["kommunenummer"].as_str()))
        .map(|(id, _)| id)
        .collect();
    let got: HashSet<String> = lake_addresses(&lake).into_keys().collect();
    assert!(want.len() > 50, "{} addresses in the kommuner", want.len());
    assert_eq!(got, want, "the kommuner's addresses, and no other");
    for table in ["address", "cadastral_unit"] {
        let other = sql(
            &lake,
            &format!(
                "SELECT count(*) AS n FROM {table} WHERE municipality_number NOT IN ('5035', '0301', '4601')"
            ),
        );
        assert_eq!(
            other[0]["n"].as_i64(),
            Some(0),
            "{table}: rows of other kommuner"
        );
    }
    let changes = sql(&lake, "SELECT count(*) AS n FROM property_change");
    assert!(
        changes[0]["n"].as_i64().unwrap() > 0,
        "changes in the kommuner were followed"
    );
}
