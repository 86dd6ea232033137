//! A seed that stopped with its tables at different extract batches resumes each table from
//! its own position, whatever `seed_batch_persons` is now: no person is appended twice. A seed
//! that completes leaves its partitioned tables compacted, a file per partition
//! (`maintenance.after_seed`), unless the pipeline says not to.

use chrono::Utc;
use deltalake::datafusion::prelude::SessionContext;
use ingest::apply::commit;
use ingest::client::{ExtractBatch, FregClient};
use ingest::lake::{Lake, lake_url};
use ingest::{Pipeline, RunOptions};
use schemas::cursor::{FREG_SEED_BATCHES, FREG_SEED_SEQUENCE};
use schemas::tables::PERSON;
use tokio_util::sync::CancellationToken;
use transform::freg::batch::plan_seed;
use transform::freg::tables::Seed;

fn pipeline(url: &str, seed_batch_persons: usize) -> Pipeline {
    pipeline_with(url, seed_batch_persons, "")
}

fn pipeline_with(url: &str, seed_batch_persons: usize, extra: &str) -> Pipeline {
    Pipeline::parse(
        &format!(
            r#"name = "resume"
[source]
register = "freg"
base_url = "{url}"
rights_package_path = "/folkeregisteret/offentlig-med-hjemmel/api"
[lake]
url = "memory://"
[worker]
batch_events = 500
seed_batch_persons = {seed_batch_persons}
fetch_concurrency = 2
poll_interval = "100ms"
{extra}"#
        ),
        |_| None,
    )
    .unwrap()
}

/// A register of 3000 persons whose feed stays still.
async fn quiet_register(seed: u64, stop: &CancellationToken) -> simulator::Running {
    let config = simulator::Config {
        persons: 3000,
        seed,
        events_per_sec: 0.0,
        ..simulator::Config::default()
    };
    simulator::start(config, "127.0.0.1:0", stop.clone())
        .await
        .unwrap()
}

async fn count(lake: &std::path::Path, sql: &str) -> i64 {
    let ctx = SessionContext::new();
    for table in ["person", "person_history"] {
        let url = url::Url::from_directory_path(lake.join(table)).unwrap();
        let delta = deltalake::open_table(url).await.unwrap();
        ctx.register_table(table, delta.table_provider().await.unwrap())
            .unwrap();
    }
    let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
    arrow::array::AsArray::as_primitive::<arrow::datatypes::Int64Type>(batches[0].column(0))
        .value(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seed_resumed_with_another_batch_size_appends_no_person_twice() {
    let stop = CancellationToken::new();
    let sim = quiet_register(17, &stop).await;
    let dir = tempfile::tempdir().unwrap();
    let lake_dir = dir.path().join("lake");

    // A first seed with 1000 persons per commit stopped after `person` took batches 0 and 1
    // and before `person_history` and `dead_letter` did.
    let first = pipeline(&sim.url(), 1000);
    let client = FregClient::new(&first.source).unwrap();
    let mut lake = Lake::open(&lake_url(lake_dir.to_str().unwrap()).unwrap())
        .await
        .unwrap();
    let head = client.head().await.unwrap();
    let job = client.extract(head).await.unwrap();
    let mut lookups = Vec::new();
    for n in 0..2 {
        let Some(ExtractBatch::Documents(docs)) = client.extract_batch(&job, n).await.unwrap()
        else {
            panic!("batch {n} names its documents");
        };
        lookups.extend(client.archive(&docs).await.unwrap());
    }
    let planned = plan_seed(&lookups, head, "first seed");
    commit(
        &mut lake,
        &Seed(&planned),
        &[&*PERSON],
        &[(FREG_SEED_BATCHES, 2), (FREG_SEED_SEQUENCE, head)],
        Utc::now(),
    )
    .await
    .unwrap();
    drop(lake);

    // The restart commits 3000 persons at a time.
    let options = RunOptions {
        lake: Some(lake_dir.to_str().unwrap().to_owned()),
        until_caught_up: true,
        kafka: None,
    };
    ingest::run(
        pipeline(&sim.url(), 3000),
        options,
        CancellationToken::new(),
    )
    .await
    .unwrap();
    stop.cancel();

    assert_eq!(count(&lake_dir, "SELECT count(*) FROM person").await, 3000);
    assert_eq!(
        count(&lake_dir, "SELECT count(DISTINCT person_id) FROM person").await,
        3000
    );
    assert_eq!(
        count(
            &lake_dir,
            "SELECT count(*) FROM person_history WHERE valid_to IS NULL"
        )
        .await,
        3000
    );
}

/// The `remove` and `add` rows of the table's last checkpoint.
async fn checkpoint_actions(lake: &std::path::Path, table: &str) -> (usize, usize) {
    let log = lake.join(table).join("_delta_log");
    let hint: serde_json::Value =
        serde_json::from_slice(&std::fs::read(log.join("_last_checkpoint")).unwrap()).unwrap();
    let version = hint["version"].as_u64().unwrap();
    let file = log.join(format!("{version:020}.checkpoint.parquet"));
    let ctx = SessionContext::new();
    ctx.register_parquet("checkpoint", file.to_str().unwrap(), Default::default())
        .await
        .unwrap();
    let count = |sql: &'static str| {
        let ctx = ctx.clone();
        async move {
            let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
            batches[0]
                .column(0)
                .as_any()
                .downcast_ref::<arrow::array::Int64Array>()
                .unwrap()
                .value(0) as usize
        }
    };
    (
        count("SELECT count(*) FROM checkpoint WHERE remove IS NOT NULL").await,
        count("SELECT count(*) FROM checkpoint WHERE add IS NOT NULL").await,
    )
}

/// Parquet data files under a table's directory, whatever the log says of them.
fn data_files_on_disk(dir: &std::path::Path) -> usize {
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() && !path.ends_with("_delta_log") {
            n += data_files_on_disk(&path);
        } else if path.extension().is_some_and(|e| e == "parquet") {
            n += 1;
        }
    }
    n
}

/// Data files in the table's current version, and its partitions.
async fn files_and_partitions(lake: &std::path::Path, table: &str) -> (usize, usize) {
    let url = url::Url::from_directory_path(lake.join(table)).unwrap();
    let delta = deltalake::open_table(url).await.unwrap();
    let files: Vec<String> = delta
        .get_file_uris()
        .unwrap()
        .map(|f| f.to_string())
        .collect();
    let partitions: std::collections::HashSet<String> = files
        .iter()
        .map(|f| f.rsplit_once('/').unwrap().0.to_owned())
        .collect();
    (files.len(), partitions.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_completed_seed_leaves_a_file_per_partition_unless_told_not_to() {
    let stop = CancellationToken::new();
    let sim = quiet_register(23, &stop).await;
    let dir = tempfile::tempdir().unwrap();
    let mut layouts = Vec::new();
    for (name, extra) in [
        ("compacted", ""),
        ("as seeded", "[maintenance]\nafter_seed = false\n"),
    ] {
        let lake_dir = dir.path().join(name.replace(' ', "_"));
        let options = RunOptions {
            lake: Some(lake_dir.to_str().unwrap().to_owned()),
            until_caught_up: true,
            kafka: None,
        };
        // Six seed commits: a file per birth year in each.
        ingest::run(
            pipeline_with(&sim.url(), 500, extra),
            options,
            CancellationToken::new(),
        )
        .await
        .unwrap();
        assert_eq!(count(&lake_dir, "SELECT count(*) FROM person").await, 3000);
        assert_eq!(
            count(&lake_dir, "SELECT count(DISTINCT person_id) FROM person").await,
            3000,
            "{name}"
        );
        assert_eq!(
            count(
                &lake_dir,
                "SELECT count(*) FROM person_history WHERE valid_to IS NULL"
            )
            .await,
            3000,
            "{name}"
        );
        let person = files_and_partitions(&lake_dir, "person").await;
        let history = files_and_partitions(&lake_dir, "person_history").await;
        if name == "compacted" {
            for table in ["person", "person_history"] {
                let (files, _) = files_and_partitions(&lake_dir, table).await;
                let (removes, adds) = checkpoint_actions(&lake_dir, table).await;
                assert_eq!(
                    (removes, adds),
                    (0, files),
                    "{table}'s last checkpoint names the current files and no removed one"
                );
                let on_disk = data_files_on_disk(&lake_dir.join(table));
                assert!(
                    on_disk > 2 * files,
                    "{table}: the seed's files stay for the VACUUM retention ({on_disk} on disk, {files} current)"
                );
            }
            let url = url::Url::from_directory_path(lake_dir.join("person")).unwrap();
            let delta = deltalake::open_table(url).await.unwrap();
            assert_eq!(
                delta
                    .snapshot()
                    .unwrap()
                    .table_config()
                    .deleted_file_retention_duration,
                Some(std::time::Duration::from_secs(7 * 24 * 3600)),
                "tombstones are kept for the VACUUM retention again"
            );
            // Time travel to the seed's first commit still reads its rows.
            let url = url::Url::from_directory_path(lake_dir.join("person")).unwrap();
            let first = deltalake::open_table_with_version(url, 1).await.unwrap();
            let ctx = SessionContext::new();
            ctx.register_table("person_v1", first.table_provider().await.unwrap())
                .unwrap();
            let rows: usize = ctx
                .sql("SELECT person_id FROM person_v1")
                .await
                .unwrap()
                .collect()
                .await
                .unwrap()
                .iter()
                .map(|b| b.num_rows())
                .sum();
            assert!(
                rows > 0 && rows < 3000,
                "the first seed commit's persons: {rows}"
            );
        }
        layouts.push((name, person, history));
    }
    stop.cancel();
    let [
        (_, compacted, compacted_history),
        (_, seeded, seeded_history),
    ] = layouts[..]
    else {
        unreachable!()
    };
    assert_eq!(compacted.0, compacted.1, "person compacted: {compacted:?}");
    assert_eq!(
        compacted_history.0, compacted_history.1,
        "person_history compacted: {compacted_history:?}"
    );
    assert!(
        seeded.0 > 2 * seeded.1,
        "six seed commits leave several files per birth year: {seeded:?}"
    );
    assert!(
        seeded_history.0 > 2 * seeded_history.1,
        "{seeded_history:?}"
    );
}
