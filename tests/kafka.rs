//! Kafka topics against a real Kafka-protocol broker over TCP (`tansu`, started here and
//! installed on first use by `common::broker`): exactly once across SIGKILLs and a broker outage, last value per key equal to the
//! lake, no protected address in any message, values valid against the checked-in schemas.

mod common;

use std::process::Command;
use std::time::Duration;

use common::broker::Broker;
use common::kafka::*;
use common::*;
use rand::Rng;

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
