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

#[test]
fn a_publisher_failure_is_seen_while_the_worker_runs_and_publishing_resumes() {
    let broker = Broker::start();
    let addr = broker.addr.clone();
    let sim = Simulator::start(&[
        "--persons",
        "2000",
        "--seed",
        "67",
        "--events-per-sec",
        "40",
        "--max-events",
        "2400",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let pipeline = pipeline(dir.path(), &sim.url, 100);
    let metrics = format!("127.0.0.1:{}", free_port());
    let mut worker = regsync_cmd()
        .args(["run", pipeline.to_str().unwrap(), "--kafka", &addr])
        .args(["--metrics-listen", &metrics])
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let value = |text: &str, name: &str| -> i64 {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}{{register=\"freg\"}} ")))
            .and_then(|v| v.parse::<f64>().ok())
            .map_or(-1, |v| v as i64)
    };
    let wait_for = |what: &str, ok: &dyn Fn(&str) -> bool| {
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        loop {
            if let Some((_, text)) = http_get(&metrics, "/metrics")
                && ok(&text)
            {
                return text;
            }
            assert!(std::time::Instant::now() < deadline, "waited for {what}");
            std::thread::sleep(Duration::from_millis(250));
        }
    };
    wait_for("the first slice published", &|t| {
        value(t, "regsync_kafka_position") > 0
    });
    // The broker dies and an empty one takes its place: its topics are gone.
    drop(broker);
    let replacement = Broker::start_at(&addr);
    let failing = wait_for("the publisher's failure, while the worker runs", &|t| {
        value(t, "regsync_kafka_failures_total") > 0
    });
    assert!(
        worker.try_wait().unwrap().is_none(),
        "the worker goes on while the publisher fails"
    );
    let head = sim.wait_until_quiet();
    wait_for("publishing caught up on the new broker", &|t| {
        value(t, "regsync_kafka_position") >= head && value(t, "regsync_feed_position") >= head
    });
    worker.kill().unwrap();
    worker.wait().unwrap();
    assert!(value(&failing, "regsync_feed_position") > 0);
    // The new broker holds every sequence published since the failure, once, in order per key.
    let messages = tail(&replacement, "freg.event.v1");
    let mut seen: Vec<i64> = messages
        .iter()
        .map(|m| m["value"]["sequence"].as_i64().unwrap())
        .collect();
    seen.sort_unstable();
    assert!(!seen.is_empty(), "publishing resumed on the new broker");
    let first = seen[0];
    let want: Vec<i64> = (first..=head).collect();
    assert_eq!(seen, want, "from the failure on, every sequence once");
}

#[test]
fn a_lake_seeded_while_the_feed_was_empty_publishes_every_seeded_person() {
    let broker = Broker::start();
    // No events: the feed's head is 0, so the seed is at position 0.
    let sim = Simulator::start(&["--persons", "400", "--seed", "47", "--events-per-sec", "0"]);
    assert_eq!(sim.head(), 0);
    let dir = tempfile::tempdir().unwrap();
    let pipeline = pipeline(dir.path(), &sim.url, 100);
    let lake = dir.path().join("lake");
    caught_up_with_kafka(&pipeline, &broker);
    assert_eq!(sql(&lake, "SELECT * FROM person").len(), 400);
    assert_person_topic(&broker, &lake);
}
