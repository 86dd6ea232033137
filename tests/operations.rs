//! What an operator runs and reads: maintenance beside a running worker, `regsync status`, and
//! one clear line for a missing lake or an unknown table.

mod common;

use std::time::Duration;

use common::*;

/// `regsync status` rows by table: (rows, files).
fn status(lake: &std::path::Path) -> std::collections::HashMap<String, (u64, u64)> {
    let out = regsync(&["status", "--lake", lake.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "regsync status: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    text.lines()
        .skip(2)
        .filter_map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            let rows = cols.get(2)?.parse().ok()?;
            let files = cols.get(3)?.parse().ok()?;
            Some((cols[0].to_owned(), (rows, files)))
        })
        .collect()
}

fn maintain(lake: &std::path::Path, retention: &str) {
    let out = regsync(&[
        "maintain",
        "--lake",
        lake.to_str().unwrap(),
        "--retention",
        retention,
    ]);
    assert!(
        out.status.success(),
        "regsync maintain: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn maintenance_beside_a_running_worker_compacts_and_loses_nothing() {
    let sim = Simulator::start(&[
        "--persons",
        "3000",
        "--seed",
        "47",
        "--events-per-sec",
        "150",
        "--max-events",
        "3500",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let pipeline = pipeline(dir.path(), &sim.url, 100);
    // The worker's own maintenance after its seed is left out: what is raced here is
    // `regsync maintain` against the worker's commits.
    let mut text = std::fs::read_to_string(&pipeline).unwrap();
    text.push_str("[maintenance]\nafter_seed = false\n");
    std::fs::write(&pipeline, text).unwrap();
    let lake = dir.path().join("lake");
    let mut worker = spawn_run(&[pipeline.to_str().unwrap()]);
    // Maintenance twice while the worker commits (time travel kept: the default retention).
    for _ in 0..2 {
        std::thread::sleep(Duration::from_secs(6));
        maintain(&lake, "7d");
    }
    let head = sim.wait_until_quiet();
    let still_running = worker.try_wait().unwrap().is_none();
    worker.kill().unwrap();
    worker.wait().unwrap();
    assert!(
        still_running,
        "the worker went on beside maintenance (a MERGE that loses a race to it is repeated)"
    );
    run_until_caught_up(&pipeline);
    assert_events_exactly_once(&lake, head);
    assert_state_matches(&lake, &sim);

    let list = |lake: &std::path::Path| {
        regsync(&[
            "cohort",
            "--lake",
            lake.to_str().unwrap(),
            "--municipality",
            "0301",
            "--born-from",
            "1950-01-01",
            "--born-to",
            "2020-12-31",
        ])
        .stdout
    };
    let before = status(&lake);
    let list_before = list(&lake);
    maintain(&lake, "0s");
    let after = status(&lake);
    // At most one file per partition (birth year; `person_event` has none) after compaction,
    // and fewer files than before wherever a partition held more than one.
    let partitions = |table: &str| {
        sql(
            &lake,
            &format!("SELECT count(DISTINCT birth_year) AS n FROM {table}"),
        )[0]["n"]
            .as_u64()
            .unwrap()
    };
    for (table, floor) in [
        ("person", partitions("person")),
        ("person_history", partitions("person_history")),
        ("person_event", 1),
    ] {
        let (rows_b, files_b) = before[table];
        let (rows_a, files_a) = after[table];
        assert_eq!(rows_a, rows_b, "{table}: maintenance keeps every row");
        assert!(
            files_a <= floor,
            "{table}: one file per partition after compaction ({files_a} files, {floor} partitions)"
        );
        assert!(
            files_a < files_b || files_b <= floor,
            "{table}: compaction leaves fewer files ({files_b} -> {files_a})"
        );
    }
    assert_eq!(list(&lake), list_before, "the same citizen list");
    assert_state_matches(&lake, &sim);
    // VACUUM with no retention removed the files older versions needed, and nothing else.
    let data_files = walk_parquet(&lake.join("person"));
    assert_eq!(data_files as u64, after["person"].1, "no file left behind");
}

fn walk_parquet(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| {
            if p.is_dir() && !p.ends_with("_delta_log") {
                walk_parquet(&p)
            } else {
                usize::from(p.extension().is_some_and(|e| e == "parquet"))
            }
        })
        .sum()
}

#[test]
fn a_missing_lake_and_an_unknown_table_are_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().to_str().unwrap();
    for args in [
        vec!["sql", "--lake", empty, "SELECT 1"],
        vec![
            "cohort",
            "--lake",
            empty,
            "--municipality",
            "5035",
            "--born-from",
            "2019-01-01",
            "--born-to",
            "2019-12-31",
        ],
        vec!["status", "--lake", empty],
        vec!["maintain", "--lake", empty],
    ] {
        let out = regsync(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} exits non-zero");
        assert_eq!(
            stderr.trim().lines().count(),
            1,
            "{args:?}: one line: {stderr}"
        );
        assert!(
            stderr.contains(&format!(
                "no lake at {empty} (none of regsync's tables is there)"
            )),
            "{args:?}: {stderr}"
        );
    }
    let sim = Simulator::start(&["--persons", "500", "--seed", "3", "--events-per-sec", "0"]);
    let pipeline = pipeline(dir.path(), &sim.url, 100);
    run_until_caught_up(&pipeline);
    let lake = dir.path().join("lake");
    let out = regsync(&[
        "sql",
        "--lake",
        lake.to_str().unwrap(),
        "SELECT * FROM nosuch",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert_eq!(
        stderr.trim(),
        "error: no table `nosuch`; tables: address_residents, dead_letter, households, kafka_sink, municipality_population, person, person_event, person_history, writer_lease"
    );
    let out = regsync(&["sql", "--lake", lake.to_str().unwrap(), "SELEC 1"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.contains("SELEC") && stderr.matches("ParserError").count() <= 1,
        "names what it could not read, once: {stderr}"
    );
}

#[test]
fn the_worker_maintains_the_lake_on_its_schedule() {
    let sim = Simulator::start(&[
        "--persons",
        "2000",
        "--seed",
        "53",
        "--events-per-sec",
        "100",
        "--max-events",
        "1500",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let pipeline = pipeline(dir.path(), &sim.url, 50);
    let mut text = std::fs::read_to_string(&pipeline).unwrap();
    text.push_str("[maintenance]\nevery = \"3s\"\n");
    std::fs::write(&pipeline, text).unwrap();
    let lake = dir.path().join("lake");
    let mut worker = spawn_run(&[pipeline.to_str().unwrap()]);
    let head = sim.wait_until_quiet();
    std::thread::sleep(Duration::from_secs(4));
    worker.kill().unwrap();
    worker.wait().unwrap();
    let optimized = std::fs::read_dir(lake.join("person").join("_delta_log"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .filter(|p| {
            std::fs::read_to_string(p)
                .unwrap()
                .contains("\"operation\":\"OPTIMIZE\"")
        })
        .count();
    assert!(optimized > 0, "the worker compacted person while it ran");
    run_until_caught_up(&pipeline);
    assert_events_exactly_once(&lake, head);
    assert_state_matches(&lake, &sim);
}

/// A metric's value for the population register.
fn metric(text: &str, name: &str) -> f64 {
    let prefix = format!("{name}{{register=\"freg\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .unwrap_or_else(|| panic!("{name} in /metrics:\n{text}"))
        .parse()
        .unwrap()
}

#[test]
fn metrics_and_health_follow_the_worker() {
    let sim = Simulator::start(&[
        "--persons",
        "2000",
        "--seed",
        "59",
        "--events-per-sec",
        "50",
        "--max-events",
        "1500",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let pipeline = pipeline(dir.path(), &sim.url, 100);
    let addr = format!("127.0.0.1:{}", free_port());
    let mut worker = spawn_run(&[
        pipeline.to_str().unwrap(),
        "--metrics-listen",
        &addr,
        "--healthy-lag",
        "200",
    ]);
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    let mut seen_unhealthy = false;
    let healthy = loop {
        assert!(
            std::time::Instant::now() < deadline,
            "/healthz never said 200"
        );
        match http_get(&addr, "/healthz") {
            Some((200, body)) => break body,
            Some((503, body)) => {
                assert!(body.starts_with("unhealthy: "), "{body}");
                seen_unhealthy = true;
            }
            Some(other) => panic!("/healthz: {other:?}"),
            None => {}
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(healthy.starts_with("ok: freg: lag "), "{healthy}");
    assert!(seen_unhealthy, "503 before the worker caught up");
    let head = sim.wait_until_quiet();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let text = loop {
        let (status, text) = http_get(&addr, "/metrics").expect("/metrics answers");
        assert_eq!(status, 200);
        if metric(&text, "regsync_feed_position") as i64 >= head {
            break text;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "position reaches {head}:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    worker.kill().unwrap();
    worker.wait().unwrap();
    let seeded = seed_sequence(&dir.path().join("lake"));
    assert_eq!(
        metric(&text, "regsync_events_applied_total") as i64,
        head - seeded,
        "every entry after the seed counted once"
    );
    assert_eq!(metric(&text, "regsync_feed_lag_sequences"), 0.0);
    assert_eq!(metric(&text, "regsync_feed_lag_seconds"), 0.0);
    assert!(metric(&text, "regsync_persons_seeded_total") >= 2000.0);
    assert!(metric(&text, "regsync_commit_seconds_count") > 0.0);
    assert!(text.contains("# TYPE regsync_retries_total counter"));
    let rss: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("regsync_resident_memory_bytes "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(rss > 1e6, "resident memory {rss}");
}
