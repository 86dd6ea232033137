//! The real binary against the simulator over HTTP: seed, follow, citizen lists, with faults.

mod common;

use common::*;
use std::path::PathBuf;

#[test]
fn lake_equals_the_register_with_faults_on() {
    let sim = Simulator::start(&[
        "--persons",
        "6000",
        "--seed",
        "11",
        "--events-per-sec",
        "400",
        "--max-events",
        "3000",
        "--faults",
        "0.05",
        // The register keeps the newest 2500 entries and deletes older ones without a word.
        "--retain-events",
        "2500",
        "--expired-feed",
        "gone",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let pipeline = pipeline(dir.path(), &sim.url, 500);
    let lake = dir.path().join("lake");
    // Seed while the register is changing, after 1000 changes (so a worker that asked for the
    // feed from the beginning would find the first ones deleted at the end), then follow until
    // the stream has ended.
    sim.wait_for_head(1000);
    run_until_caught_up(&pipeline);
    let head = sim.wait_until_quiet();
    run_until_caught_up(&pipeline);

    assert_events_exactly_once(&lake, head);
    assert_state_matches(&lake, &sim);
    let dead = sql(&lake, "SELECT count(*) AS n FROM dead_letter");
    assert_eq!(
        dead[0]["n"].as_i64(),
        Some(0),
        "the simulator's documents are all valid"
    );

    // Citizen lists equal the register's own truth, now and on a past date.
    for (kommune, from, to, status, as_of) in [
        ("0301", "2019-01-01", "2019-12-31", Some("bosatt"), None),
        ("0301", "1950-01-01", "2010-12-31", None, None),
        (
            "4601",
            "1960-01-01",
            "2000-12-31",
            Some("bosatt"),
            Some("2023-03-01"),
        ),
    ] {
        let mut args = vec![
            "cohort",
            "--lake",
            lake.to_str().unwrap(),
            "--municipality",
            kommune,
            "--born-from",
            from,
            "--born-to",
            to,
            "--format",
            "csv",
        ];
        if let Some(s) = status {
            args.extend(["--status", s]);
        }
        if let Some(d) = as_of {
            args.extend(["--as-of", d]);
        }
        let out = regsync(&args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        let mut lines = text.lines();
        assert!(lines.next().unwrap().starts_with(
            "person_id,given_name,middle_name,family_name,birth_date,sex,street_name"
        ));
        let got: Vec<String> = lines
            .map(|l| l.split(',').next().unwrap().to_owned())
            .collect();
        let mut sorted = got.clone();
        sorted.sort();
        let want = sim.cohort(kommune, from, to, status, as_of);
        assert!(
            !want.is_empty(),
            "a cohort with people in it: {kommune} {from}..{to}"
        );
        assert_eq!(
            sorted, want,
            "cohort {kommune} {from}..{to} {status:?} as of {as_of:?}"
        );
    }
}

#[test]
fn a_seeded_lake_follows_from_the_extract_with_retention_on() {
    // 3000 changes before the seed; the register keeps only the newest 1000, answering older
    // sequence numbers with 406 or, in the second shape, leaving them out of the page.
    for shape in ["406", "gone"] {
        let sim = Simulator::start(&[
            "--persons",
            "1500",
            "--seed",
            "3",
            "--events-per-sec",
            "4000",
            "--max-events",
            "3000",
            "--retain-events",
            "1000",
            "--expired-feed",
            shape,
        ]);
        let head = sim.wait_until_quiet();
        assert_eq!(head, 3000);
        let dir = tempfile::tempdir().unwrap();
        let pipeline = pipeline(dir.path(), &sim.url, 500);
        let lake = dir.path().join("lake");
        run_until_caught_up(&pipeline);
        assert_eq!(seed_sequence(&lake), head, "{shape}: seeded at the head");
        assert_events_exactly_once(&lake, head);
        assert_state_matches(&lake, &sim);
    }
}

/// A simulator of `persons` without live changes and a lake seeded from it, with
/// `batch_events = 500` and `catch_up_events = 2000`: the directory, pipeline file, lake and
/// seed position.
fn seeded_for_catch_up(
    persons: &str,
    seed: &str,
) -> (Simulator, tempfile::TempDir, PathBuf, PathBuf, i64) {
    let sim = Simulator::start(&[
        "--persons",
        persons,
        "--seed",
        seed,
        "--events-per-sec",
        "0",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let pipeline = pipeline(dir.path(), &sim.url, 500);
    let text = std::fs::read_to_string(&pipeline).unwrap();
    std::fs::write(
        &pipeline,
        text.replace("[worker]\n", "[worker]\ncatch_up_events = 2000\n"),
    )
    .unwrap();
    let lake = dir.path().join("lake");
    run_until_caught_up(&pipeline);
    let seeded = seed_sequence(&lake);
    (sim, dir, pipeline, lake, seeded)
}

#[test]
fn a_backlog_is_caught_up_in_commits_of_catch_up_events() {
    let (sim, _dir, pipeline, lake, seeded) = seeded_for_catch_up("800", "8");
    let commits = || {
        std::fs::read_dir(lake.join("person_event/_delta_log"))
            .unwrap()
            .filter(|f| f.as_ref().unwrap().path().extension() == Some("json".as_ref()))
            .count()
    };
    let before = commits();
    sim.add_backlog(3500);
    let head = sim.head();
    run_until_caught_up(&pipeline);
    assert_events_exactly_once(&lake, head);
    assert_state_matches(&lake, &sim);
    // The register's pages hold 1000 entries, so the fetcher sends batches of 1000 (at least
    // `batch_events`); each one sent while the feed had more waits for the next, and a commit
    // takes 2000 entries (`catch_up_events`) or what is left at the head. Taking the first
    // batch at once, as an idle writer would, makes one commit more.
    let pages = usize::try_from(head - seeded).unwrap().div_ceil(1000);
    assert_eq!(
        commits() - before,
        pages.div_ceil(2),
        "{} entries after the seed at {seeded}",
        head - seeded
    );
    // Commits of 2000 random entries name more persons than `person` has files: they went by
    // deletion vector, and the worker folded the vectors once it was at the head.
    for table in ["person", "person_history"] {
        let (ever, live) = deletion_vectors(&lake.join(table));
        assert!(
            ever > 0,
            "{table}: no commit changed rows by deletion vector"
        );
        assert_eq!(live, 0, "{table}: files still have deletion vectors");
    }
}

/// From a table's log, replayed: how many `add` actions ever carried a deletion vector, and
/// how many live files have one.
fn deletion_vectors(table: &std::path::Path) -> (usize, usize) {
    let log = table.join("_delta_log");
    let mut commits: Vec<_> = std::fs::read_dir(&log)
        .unwrap()
        .map(|f| f.unwrap().path())
        .filter(|p| p.extension() == Some("json".as_ref()))
        .collect();
    commits.sort();
    let (mut ever, mut live) = (0, std::collections::HashMap::new());
    for commit in commits {
        for line in std::fs::read_to_string(commit).unwrap().lines() {
            let action: serde_json::Value = serde_json::from_str(line).unwrap();
            if let Some(add) = action.get("add") {
                let vector = add.get("deletionVector").is_some_and(|v| !v.is_null());
                ever += usize::from(vector);
                live.insert(add["path"].as_str().unwrap().to_owned(), vector);
            } else if let Some(remove) = action.get("remove") {
                live.remove(remove["path"].as_str().unwrap());
            }
        }
    }
    (ever, live.values().filter(|v| **v).count())
}

#[test]
fn a_backlog_ending_on_a_page_boundary_is_committed_without_waiting_for_more() {
    let (sim, _dir, pipeline, lake, seeded) = seeded_for_catch_up("500", "9");
    // The backlog ends on a full page: the writer holding it hears of the head from an empty
    // page, not from a batch, and no later entry comes to end its wait.
    sim.add_backlog(2500);
    while sim.head() % 1000 != 0 {
        sim.add_backlog(1);
    }
    let head = sim.head();
    let mut worker = spawn_run(&[pipeline.to_str().unwrap()]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let count = || -> i64 {
        sql(&lake, "SELECT count(*) AS n FROM person_event")[0]["n"]
            .as_i64()
            .unwrap()
    };
    let mut events = count();
    while events < head - seeded && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(500));
        events = count();
    }
    let _ = worker.kill();
    let _ = worker.wait();
    assert_eq!(
        events,
        head - seeded,
        "the entries up to the head {head} (a page boundary) were not all committed within 60 s"
    );
    assert_events_exactly_once(&lake, head);
}

#[test]
fn a_lake_older_than_the_retention_is_seeded_again_in_place_keeping_its_history() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    // Seeded before any change; the register then makes 2000 and keeps the newest 500.
    let before = Simulator::start(&["--persons", "800", "--seed", "4", "--events-per-sec", "0"]);
    run_until_caught_up(&pipeline(dir.path(), &before.url, 500));
    drop(before);
    let seeded_versions = |lake: &std::path::Path| {
        sql(
            lake,
            "SELECT count(*) AS n FROM person_history WHERE sequence = 0",
        )[0]["n"]
            .as_i64()
            .unwrap()
    };
    let versions_before = seeded_versions(&lake);
    let after = |shape: &str| {
        let sim = Simulator::start(&[
            "--persons",
            "800",
            "--seed",
            "4",
            "--events-per-sec",
            "4000",
            "--max-events",
            "2000",
            "--retain-events",
            "500",
            "--expired-feed",
            shape,
        ]);
        sim.wait_until_quiet();
        sim
    };
    // A register that answers with a later page (not 406) cannot be told from a hole: stop.
    // A 406 with re-seeding off: stop, saying so.
    for (shape, extra, said) in [
        ("gone", "", "1..=1500 are missing"),
        ("406", "reseed_on_expiry = false\n", "seeded again"),
    ] {
        let sim = after(shape);
        let path = pipeline(dir.path(), &sim.url, 500);
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str(extra);
        std::fs::write(&path, text).unwrap();
        let out = regsync(&["run", path.to_str().unwrap(), "--until-caught-up"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{shape}: the worker stops");
        assert!(
            err.contains(said),
            "{shape}: the error says what happened: {err}"
        );
        assert_eq!(
            sql(&lake, "SELECT count(*) AS n FROM person_event")[0]["n"].as_i64(),
            Some(0),
            "{shape}: nothing after the hole is written"
        );
    }
    // A 406 (the default): seeded again in place from the extract at the head.
    let sim = after("406");
    let path = pipeline(dir.path(), &sim.url, 500);
    run_until_caught_up(&path);
    assert_state_matches(&lake, &sim);
    assert_no_withheld_address_anywhere(&lake);
    assert_eq!(
        seeded_versions(&lake),
        versions_before,
        "the versions from before the re-seed are kept"
    );
    let gap = sql(&lake, "SELECT cursor, reason FROM dead_letter");
    assert_eq!(gap.len(), 1, "{gap:?}");
    assert_eq!(gap[0]["cursor"], "sequence=1..=2000");
    let open = sql(
        &lake,
        "SELECT count(*) AS n FROM (SELECT person_id FROM person_history WHERE valid_to IS NULL GROUP BY person_id HAVING count(*) > 1)",
    );
    assert_eq!(
        open[0]["n"].as_i64(),
        Some(0),
        "one open version per person"
    );
    let changed = sql(
        &lake,
        "SELECT count(*) AS n FROM person_history WHERE sequence = 2000",
    )[0]["n"]
        .as_i64()
        .unwrap();
    assert!(changed > 0, "changed persons got a version at the re-seed");
}

#[test]
fn citizen_lists_never_print_a_protected_address() {
    let sim = Simulator::start(&["--persons", "20000", "--seed", "5", "--events-per-sec", "0"]);
    let dir = tempfile::tempdir().unwrap();
    let pipeline = pipeline(dir.path(), &sim.url, 500);
    let lake = dir.path().join("lake");
    run_until_caught_up(&pipeline);

    let strict = sql(
        &lake,
        "SELECT count(*) AS n, count(municipality_number) AS k, count(street_name) AS s FROM person WHERE address_protection = 'strengt_fortrolig'",
    );
    assert!(
        strict[0]["n"].as_i64().unwrap() > 0,
        "the population has strengt fortrolig persons"
    );
    assert_eq!(
        strict[0]["k"].as_i64(),
        Some(0),
        "no kommune for strengt fortrolig"
    );
    assert_eq!(
        strict[0]["s"].as_i64(),
        Some(0),
        "no address for strengt fortrolig"
    );
    let history = sql(
        &lake,
        "SELECT count(street_name) AS s FROM person_history h WHERE person_id IN (SELECT person_id FROM person WHERE address_protection = 'strengt_fortrolig')",
    );
    assert_eq!(
        history[0]["s"].as_i64(),
        Some(0),
        "no address in any version either"
    );

    let confidential = sql(
        &lake,
        "SELECT municipality_number AS k, min(birth_date) AS lo, max(birth_date) AS hi FROM person WHERE address_protection = 'fortrolig' AND status = 'bosatt' GROUP BY 1 ORDER BY count(*) DESC LIMIT 1",
    );
    let c = &confidential[0];
    let (k, lo, hi) = (
        c["k"].as_str().unwrap(),
        c["lo"].as_str().unwrap(),
        c["hi"].as_str().unwrap(),
    );
    let out = regsync(&[
        "cohort",
        "--lake",
        lake.to_str().unwrap(),
        "--municipality",
        k,
        "--born-from",
        lo,
        "--born-to",
        hi,
        "--format",
        "csv",
    ]);
    assert!(out.status.success());
    let protected: Vec<String> = sql(&lake, &format!("SELECT person_id FROM person WHERE address_protection <> 'ugradert' AND municipality_number = '{k}'"))
        .iter()
        .map(|r| r["person_id"].as_str().unwrap().to_owned())
        .collect();
    assert!(!protected.is_empty());
    let text = String::from_utf8_lossy(&out.stdout);
    let mut seen = 0;
    for line in text.lines().skip(1) {
        let cols: Vec<&str> = line.split(',').collect();
        if protected.iter().any(|p| p == cols[0]) {
            seen += 1;
            assert!(
                cols[6..].iter().all(|c| c.is_empty()),
                "a protected person's address was printed: {line}"
            );
        }
    }
    assert!(
        seen > 0,
        "the list holds protected persons, without addresses"
    );

    // XLSX and Parquet outputs are written.
    for (format, file) in [("xlsx", "list.xlsx"), ("parquet", "list.parquet")] {
        let path = dir.path().join(file);
        let out = regsync(&[
            "cohort",
            "--lake",
            lake.to_str().unwrap(),
            "--municipality",
            k,
            "--born-from",
            lo,
            "--born-to",
            hi,
            "--format",
            format,
            "--output",
            path.to_str().unwrap(),
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let bytes = std::fs::read(&path).unwrap();
        let magic: &[u8] = if format == "xlsx" { b"PK" } else { b"PAR1" };
        assert!(bytes.starts_with(magic), "{format} file");
    }
}

#[test]
fn bad_configuration_names_file_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = pipeline(dir.path(), "http://127.0.0.1:9", 100);
    let text = std::fs::read_to_string(&path).unwrap().replace(
        "fetch_concurrency = 3",
        "fetch_concurrency = 3\nfetch_concurency = 4",
    );
    std::fs::write(&path, text).unwrap();
    let out = regsync(&["run", path.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("pipeline.toml") && err.contains("fetch_concurency"),
        "{err}"
    );
}

#[test]
fn a_register_that_is_down_is_named_without_its_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let path = pipeline(
        dir.path(),
        &format!("http://regsync:s3cret-pass@127.0.0.1:{port}"),
        100,
    );
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("max_tries = 30", "max_tries = 2");
    std::fs::write(&path, text).unwrap();
    let out = regsync(&["run", path.to_str().unwrap(), "--until-caught-up"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("127.0.0.1:{port}")),
        "the error names the register: {err}"
    );
    assert!(
        !err.contains("s3cret-pass"),
        "credentials in the base URL are never shown: {err}"
    );
}
