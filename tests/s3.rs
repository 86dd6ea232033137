//! The lake on a real S3-compatible server (moto, over HTTP, with conditional writes): SIGKILLs
//! at random moments with the Kafka publisher on lose and repeat nothing, in the lake and in the
//! topics; a commit whose answer is lost is recognised as the worker's own.

mod common;

use std::path::Path;
use std::time::Duration;

use common::broker::Broker;
use common::kafka::*;
use common::s3::{LostAnswerProxy, S3Server};
use common::*;
use rand::Rng;

#[test]
fn a_lake_on_s3_survives_sigkills_and_publishes_exactly_once() {
    let s3 = S3Server::start();
    s3.create_bucket("regsync-lake");
    let env = s3.env();
    let vars: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    set_regsync_env(&vars);
    let broker = Broker::start();
    let sim = Simulator::start(&[
        "--persons",
        "800",
        "--seed",
        "61",
        "--events-per-sec",
        "40",
        "--max-events",
        "600",
        "--faults",
        "0.02",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let lake_url = "s3://regsync-lake/lake";
    let pipeline = pipeline_at(dir.path(), &sim.url, 150, lake_url);
    let lake = Path::new(lake_url);
    let mut rng = kill_rng("a_lake_on_s3_survives_sigkills_and_publishes_exactly_once");
    for _ in 0..5 {
        let mut child = run_with_kafka(&pipeline, &broker);
        std::thread::sleep(Duration::from_millis(rng.random_range(1000..6000)));
        child.kill().unwrap();
        child.wait().unwrap();
    }
    let head = sim.wait_until_quiet();
    caught_up_with_kafka(&pipeline, &broker);
    assert_events_exactly_once(lake, head);
    assert_state_matches(lake, &sim);
    assert_event_topic(&broker, lake, head);
    assert_person_topic(&broker, lake);
    let status = regsync(&["status", "--lake", lake_url]);
    assert!(
        String::from_utf8_lossy(&status.stdout).contains("regsync.freg.feed"),
        "regsync status reads the S3 lake"
    );
}

/// A `person` log entry after the table's creation: `.../person/_delta_log/<20 digits>.json`.
fn person_commit(key: &str) -> bool {
    key.split_once("/person/_delta_log/")
        .and_then(|(_, name)| name.strip_suffix(".json"))
        .is_some_and(|v| v.len() == 20 && v.parse::<u64>().is_ok_and(|v| v >= 1))
}

#[test]
fn a_commit_whose_answer_is_lost_is_the_workers_own_not_another_writer() {
    let s3 = S3Server::start();
    s3.create_bucket("regsync-lake");
    let proxy = LostAnswerProxy::start(&s3.endpoint, person_commit);
    let env = proxy.env(&s3);
    let vars: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    set_regsync_env(&vars);
    let sim = Simulator::start(&[
        "--persons",
        "300",
        "--seed",
        "62",
        "--events-per-sec",
        "100",
        "--max-events",
        "200",
    ]);
    let head = sim.wait_until_quiet();
    let dir = tempfile::tempdir().unwrap();
    let lake_url = "s3://regsync-lake/lost-answer";
    let pipeline = pipeline_at(dir.path(), &sim.url, 50, lake_url);
    // Without recognising its own commit the worker would stop as a second writer (exit 3).
    run_until_caught_up(&pipeline);
    assert_eq!(proxy.lost(), 1, "a person commit's answer was lost");
    let lake = Path::new(lake_url);
    assert_events_exactly_once(lake, head);
    assert_state_matches(lake, &sim);
    let commits = sql(
        lake,
        "SELECT count(*) AS n, count(DISTINCT person_id) AS persons FROM person",
    );
    assert_eq!(
        commits[0]["n"], commits[0]["persons"],
        "no person was written twice: {commits:?}"
    );
}
