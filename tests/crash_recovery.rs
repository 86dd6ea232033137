//! Killing the worker (SIGKILL) at random moments, many times, loses and repeats nothing; SIGTERM
//! stops it cleanly; a second worker on the same lake stops with exit code 3 and harms nothing.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use rand::Rng;

#[test]
fn sigkill_at_random_moments_loses_and_repeats_nothing() {
    let sim = Simulator::start(&[
        "--persons",
        "8000",
        "--seed",
        "23",
        "--events-per-sec",
        "250",
        "--max-events",
        "9000",
        "--faults",
        "0.02",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let pipeline = pipeline(dir.path(), &sim.url, 300);
    let lake = dir.path().join("lake");
    let mut rng = kill_rng("sigkill_at_random_moments_loses_and_repeats_nothing");
    for _ in 0..12 {
        let mut child = Command::new(BIN)
            .args(["run", pipeline.to_str().unwrap()])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(rng.random_range(300..3000)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
    }
    let head = sim.wait_until_quiet();
    run_until_caught_up(&pipeline);
    assert_events_exactly_once(&lake, head);
    assert_state_matches(&lake, &sim);
    let open = sql(
        &lake,
        "SELECT count(*) AS n FROM (SELECT person_id FROM person_history WHERE valid_to IS NULL GROUP BY person_id HAVING count(*) > 1)",
    );
    assert_eq!(
        open[0]["n"].as_i64(),
        Some(0),
        "one open version per person"
    );
}

#[test]
fn sigterm_stops_cleanly_and_resumes() {
    let sim = Simulator::start(&[
        "--persons",
        "3000",
        "--seed",
        "31",
        "--events-per-sec",
        "200",
        "--max-events",
        "2000",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let pipeline = pipeline(dir.path(), &sim.url, 200);
    let lake = dir.path().join("lake");
    let child = Command::new(BIN)
        .args(["run", pipeline.to_str().unwrap()])
        .env("RUST_LOG", "warn")
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(4));
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "exit code after SIGTERM: {:?}",
        out.status
    );
    let head = sim.wait_until_quiet();
    run_until_caught_up(&pipeline);
    assert_events_exactly_once(&lake, head);
    assert_state_matches(&lake, &sim);
}

#[test]
fn a_second_worker_on_the_same_lake_stops_with_a_distinct_code_and_harms_nothing() {
    let sim = Simulator::start(&[
        "--persons",
        "3000",
        "--seed",
        "37",
        "--events-per-sec",
        "100",
        "--max-events",
        "4000",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let pipeline = pipeline(dir.path(), &sim.url, 100);
    let lake = dir.path().join("lake");
    run_until_caught_up(&pipeline);
    let (exited, other) = race_two_workers(
        &[pipeline.to_str().unwrap()],
        Duration::from_secs(2),
        Duration::from_secs(90),
    );
    assert_stopped_as_second_writer(&exited, other);
    let head = sim.wait_until_quiet();
    run_until_caught_up(&pipeline);
    assert_events_exactly_once(&lake, head);
    assert_state_matches(&lake, &sim);
}
