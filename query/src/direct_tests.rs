//! The direct reading of a Delta log ([`crate::log`], [`crate::quick`]) against `deltalake`'s, on
//! tables `deltalake` writes, and the logs it must leave to `deltalake`.

use std::path::Path;
use std::sync::Arc;

use arrow::array::{Date32Array, Int32Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::common::tree_node::TreeNode as _;
use datafusion::prelude::SessionContext;
use deltalake::DeltaTable;
use deltalake::kernel::StructType;
use deltalake::kernel::engine::arrow_conversion::TryIntoKernel as _;
use deltalake::operations::write::SchemaMode;
use url::Url;

use crate::log::{Read, read};

fn schema(with_status: bool) -> Arc<Schema> {
    let mut fields = vec![
        Field::new("person_id", DataType::Utf8, false),
        Field::new("birth_date", DataType::Date32, true),
        Field::new("municipality_number", DataType::Utf8, true),
        Field::new("birth_year", DataType::Int32, true),
        Field::new(
            "updated_at",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            true,
        ),
    ];
    if with_status {
        fields.push(Field::new("status", DataType::Utf8, true));
    }
    Arc::new(Schema::new(fields))
}

/// Persons `from..to`: born in 2018-2020, in one of three kommuner by number.
fn persons(from: i32, to: i32, with_status: bool) -> RecordBatch {
    let n = (from..to).collect::<Vec<_>>();
    let days: Vec<i32> = n.iter().map(|i| 17_532 + (i * 37) % 1_095).collect();
    let years: Vec<i32> = days.iter().map(|d| 2018 + (d - 17_532) / 365).collect();
    let kommune = |i: &i32| ["5035", "0301", "4601"][(*i % 3) as usize];
    let mut columns: Vec<Arc<dyn arrow::array::Array>> = vec![
        Arc::new(StringArray::from_iter_values(
            n.iter().map(|i| format!("p{i:05}")),
        )),
        Arc::new(Date32Array::from(days)),
        Arc::new(StringArray::from_iter_values(n.iter().map(kommune))),
        Arc::new(Int32Array::from(
            years.iter().map(|y| (*y).min(2020)).collect::<Vec<_>>(),
        )),
        Arc::new(
            TimestampMicrosecondArray::from(n.iter().map(|i| updated_at(*i)).collect::<Vec<_>>())
                .with_timezone("UTC"),
        ),
    ];
    if with_status {
        columns.push(Arc::new(StringArray::from_iter_values(
            n.iter()
                .map(|i| if i % 2 == 0 { "bosatt" } else { "utflyttet" }),
        )));
    }
    RecordBatch::try_new(schema(with_status), columns).unwrap()
}

/// Person `i`'s last change, in microseconds: not on a whole millisecond, so the log's
/// statistics (cut to the millisecond) are below a file's greatest value.
fn updated_at(i: i32) -> i64 {
    1_764_000_000_000_000 + i64::from(i) * 1_001_337
}

/// The SQL literal of person `i`'s last change.
fn updated_at_sql(i: i32) -> String {
    let t = chrono::DateTime::from_timestamp_micros(updated_at(i)).unwrap();
    format!("TIMESTAMP '{}'", t.format("%Y-%m-%dT%H:%M:%S%.6fZ"))
}

async fn create(dir: &Path) -> DeltaTable {
    let url = Url::from_directory_path(dir).unwrap();
    let kernel: StructType = schema(false).as_ref().try_into_kernel().unwrap();
    DeltaTable::try_from_url(url)
        .await
        .unwrap()
        .create()
        .with_columns(kernel.fields().cloned())
        .with_partition_columns(["birth_year"])
        .await
        .unwrap()
}

/// The rows a query gives, as text sorted, through the direct reader and through `deltalake`.
async fn both(dir: &Path, sql: &str) -> (Vec<String>, Vec<String>) {
    let url = Url::from_directory_path(dir).unwrap();
    let direct = SessionContext::new();
    let quick = crate::quick::open(&url).expect("read directly");
    direct.register_table("person", Arc::new(quick)).unwrap();
    let delta = SessionContext::new();
    let table = deltalake::open_table(url).await.unwrap();
    table.update_datafusion_session(&delta.state()).unwrap();
    delta
        .register_table("person", table.table_provider().await.unwrap())
        .unwrap();
    let mut out = Vec::new();
    for ctx in [direct, delta] {
        let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        let text = arrow::util::pretty::pretty_format_batches(&batches)
            .unwrap()
            .to_string();
        let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
        lines.sort();
        out.push(lines);
    }
    let delta = out.pop().unwrap();
    (out.pop().unwrap(), delta)
}

const QUERIES: &[&str] = &[
    "SELECT * FROM person",
    "SELECT person_id, birth_date FROM person WHERE municipality_number = '5035' \
     AND birth_year BETWEEN 2019 AND 2019 AND birth_date BETWEEN DATE '2019-01-01' AND DATE '2019-12-31'",
    "SELECT count(*) AS n, min(birth_date) AS lo FROM person WHERE birth_year = 2018",
    "SELECT person_id FROM person WHERE person_id > 'p00290' AND birth_year IS NOT NULL",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_read_directly_gives_what_deltalake_gives() {
    let dir = tempfile::tempdir().unwrap();
    let table = create(dir.path()).await;
    let mut table = table.write(vec![persons(0, 100, false)]).await.unwrap();
    for (from, to) in [(100, 200), (200, 300)] {
        table = table.write(vec![persons(from, to, false)]).await.unwrap();
    }
    deltalake::checkpoints::create_checkpoint(&table, None)
        .await
        .unwrap();
    // After the checkpoint: a rewrite that removes files, and a column added later (older
    // files lack it).
    let (table, _) = table
        .delete()
        .with_predicate("municipality_number = '0301' AND birth_year = 2019")
        .await
        .unwrap();
    let table = table
        .write(vec![persons(300, 360, true)])
        .with_schema_mode(SchemaMode::Merge)
        .await
        .unwrap();
    let mut queries: Vec<String> = QUERIES.iter().map(|q| q.to_string()).collect();
    queries.push("SELECT person_id, status FROM person WHERE status = 'bosatt'".into());
    queries.push("SELECT count(*) AS n FROM person WHERE status IS NULL".into());
    // The newest change of all, and the newest of each of a file's, lie above what the log
    // says is the file's greatest (it keeps milliseconds).
    for i in [359, 299, 199] {
        let at = updated_at_sql(i);
        queries.push(format!(
            "SELECT person_id FROM person WHERE updated_at = {at}"
        ));
        queries.push(format!(
            "SELECT person_id FROM person WHERE updated_at > {at} - INTERVAL '500 microseconds'"
        ));
    }
    for sql in &queries {
        let (direct, delta) = both(dir.path(), sql).await;
        assert_eq!(direct, delta, "{sql}");
        assert!(direct.len() > 4, "{sql} gives rows: {direct:?}");
    }

    // The list's filters choose only the files that may hold its rows.
    let url = Url::from_directory_path(dir.path()).unwrap();
    let quick = crate::quick::open(&url).unwrap();
    let ctx = SessionContext::new();
    let registered = crate::quick::open(&url).unwrap();
    ctx.register_table("person", Arc::new(registered)).unwrap();
    let filters = ctx
        .sql(QUERIES[1])
        .await
        .unwrap()
        .into_optimized_plan()
        .unwrap();
    let pushed = scan_filters(&filters);
    let chosen = quick.chosen(&ctx.state(), &pushed).unwrap();
    let all = quick.chosen(&ctx.state(), &[]).unwrap();
    assert!(
        !chosen.is_empty() && chosen.len() < all.len() / 2,
        "{} of {} files chosen",
        chosen.len(),
        all.len()
    );
    // A column only the last write has: the files without its bounds are kept, the others
    // still chosen by theirs.
    let plan = ctx
        .sql("SELECT person_id FROM person WHERE status = 'zzz'")
        .await
        .unwrap()
        .into_optimized_plan()
        .unwrap();
    let chosen = quick.chosen(&ctx.state(), &scan_filters(&plan)).unwrap();
    assert!(
        !chosen.is_empty() && chosen.len() < all.len(),
        "{} of {} files chosen for a status no file holds",
        chosen.len(),
        all.len()
    );

    // A checkpoint whose commit is gone (cleaned up, or not yet written): the table it speaks
    // for would be missed, so the log is left to `deltalake`.
    let version = table.version().unwrap();
    deltalake::checkpoints::create_checkpoint(&table, None)
        .await
        .unwrap();
    let log = dir.path().join("_delta_log");
    std::fs::remove_file(log.join(format!("{version:020}.json"))).unwrap();
    let reason = declined(dir.path());
    assert!(reason.contains("its commit is not"), "{reason}");
}

/// The filters a plan pushed to its table scan.
fn scan_filters(plan: &datafusion::logical_expr::LogicalPlan) -> Vec<datafusion::prelude::Expr> {
    let mut found = Vec::new();
    plan.apply(|node| {
        if let datafusion::logical_expr::LogicalPlan::TableScan(scan) = node {
            found.extend(scan.filters.iter().cloned());
        }
        Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
    })
    .unwrap();
    // As the planner gives them to the table: unqualified.
    datafusion::logical_expr::expr_rewriter::unnormalize_cols(found)
}

/// Writes a log of hand-written commits.
fn log(dir: &Path, commits: &[&str]) {
    let log = dir.join("_delta_log");
    std::fs::create_dir_all(&log).unwrap();
    for (version, text) in commits.iter().enumerate() {
        std::fs::write(log.join(format!("{version:020}.json")), text).unwrap();
    }
}

const PROTOCOL_1: &str = r#"{"protocol":{"minReaderVersion":1,"minWriterVersion":2}}"#;
const METADATA: &str = r#"{"metaData":{"id":"x","format":{"provider":"parquet","options":{}},"schemaString":"{\"type\":\"struct\",\"fields\":[{\"name\":\"a\",\"type\":\"string\",\"nullable\":true,\"metadata\":{}}]}","partitionColumns":[],"configuration":{}}}"#;

fn declined(dir: &Path) -> String {
    match read(dir) {
        Read::Declined(reason) => reason,
        Read::Snapshot(s) => panic!("read: {s:?}"),
    }
}

#[test]
fn a_file_removed_and_added_again_in_one_commit_stays() {
    let dir = tempfile::tempdir().unwrap();
    let first = format!(
        "{PROTOCOL_1}\n{METADATA}\n{}\n{}",
        r#"{"add":{"path":"a.parquet","size":10,"partitionValues":{},"modificationTime":1,"dataChange":true}}"#,
        r#"{"add":{"path":"b.parquet","size":10,"partitionValues":{},"modificationTime":1,"dataChange":true}}"#
    );
    // Added before it is removed in the text: the removal applies first.
    let second = [
        r#"{"add":{"path":"a.parquet","size":11,"partitionValues":{},"modificationTime":2,"dataChange":true}}"#,
        r#"{"remove":{"path":"a.parquet","dataChange":true}}"#,
        r#"{"remove":{"path":"b.parquet","dataChange":true}}"#,
    ]
    .join("\n");
    log(dir.path(), &[&first, &second]);
    let Read::Snapshot(snapshot) = read(dir.path()) else {
        panic!("declined: {}", declined(dir.path()))
    };
    let files: Vec<(&str, u64)> = snapshot
        .files
        .iter()
        .map(|f| (f.path.as_str(), f.size))
        .collect();
    assert_eq!(files, [("a.parquet", 11)]);
}

#[test]
fn a_log_it_cannot_read_with_certainty_is_left_to_deltalake() {
    let add = r#"{"add":{"path":"a.parquet","size":10,"partitionValues":{},"modificationTime":1,"dataChange":true}}"#;
    let vector = r#"{"add":{"path":"a.parquet","size":10,"partitionValues":{},"modificationTime":1,"dataChange":true,"deletionVector":{"storageType":"u","pathOrInlineDv":"ab^-aqEH.-t@S}K{vb[*k^","offset":1,"sizeInBytes":36,"cardinality":2}}}"#;
    let mapping = METADATA.replace(
        r#""configuration":{}"#,
        r#""configuration":{"delta.columnMapping.mode":"name"}"#,
    );
    let features = r#"{"protocol":{"minReaderVersion":3,"minWriterVersion":7,"readerFeatures":["deletionVectors","somethingNew"],"writerFeatures":[]}}"#;
    let cases: Vec<(&str, Vec<String>, &str)> = vec![
        (
            "a deletion vector",
            vec![format!("{PROTOCOL_1}\n{METADATA}\n{vector}")],
            "deletion vectors",
        ),
        (
            "column mapping",
            vec![format!("{PROTOCOL_1}\n{mapping}\n{add}")],
            "column mapping",
        ),
        (
            "an unknown reader feature",
            vec![format!("{features}\n{METADATA}\n{add}")],
            "somethingNew",
        ),
        (
            "a newer reader version",
            vec![format!(
                "{}\n{METADATA}\n{add}",
                PROTOCOL_1.replace(r#""minReaderVersion":1"#, r#""minReaderVersion":4"#)
            )],
            "reader version 4",
        ),
        (
            "a line that is not JSON",
            vec![format!("{PROTOCOL_1}\n{METADATA}\n{{\"add\":")],
            "not JSON lines",
        ),
    ];
    for (what, commits, reason) in cases {
        let dir = tempfile::tempdir().unwrap();
        let commits: Vec<&str> = commits.iter().map(String::as_str).collect();
        log(dir.path(), &commits);
        let got = declined(dir.path());
        assert!(got.contains(reason), "{what}: {got}");
    }

    // A commit missing between the first and the newest.
    let dir = tempfile::tempdir().unwrap();
    let first = format!("{PROTOCOL_1}\n{METADATA}\n{add}");
    log(dir.path(), &[&first, add, add]);
    std::fs::remove_file(
        dir.path()
            .join("_delta_log")
            .join(format!("{:020}.json", 1)),
    )
    .unwrap();
    assert!(declined(dir.path()).contains("not all in the log"));

    // A version newer than the newest commit, known from another kind of log file; a
    // writer's temporary file is not one.
    for (name, declines) in [
        (
            "00000000000000000000.00000000000000000003.compacted.json",
            true,
        ),
        (
            "00000000000000000003.checkpoint.0000000001.0000000002.parquet",
            true,
        ),
        (
            "00000000000000000003.checkpoint.80a083e8-7026-4e79-81be-64bd76c43a11.parquet",
            true,
        ),
        ("00000000000000000003.crc", true),
        ("_last_checkpoint", true),
        ("00000000000000000003.json.tmp", false),
    ] {
        let dir = tempfile::tempdir().unwrap();
        log(dir.path(), &[&first]);
        let text = if name == "_last_checkpoint" {
            r#"{"version":3,"size":1}"#
        } else {
            ""
        };
        std::fs::write(dir.path().join("_delta_log").join(name), text).unwrap();
        match read(dir.path()) {
            Read::Declined(reason) => {
                assert!(
                    declines && reason.contains("its commit is not"),
                    "{name}: {reason}"
                )
            }
            Read::Snapshot(_) => assert!(!declines, "{name} read"),
        }
    }

    // An add without its size.
    let dir = tempfile::tempdir().unwrap();
    let sizeless = add.replace(r#""size":10,"#, "");
    log(
        dir.path(),
        &[&format!("{PROTOCOL_1}\n{METADATA}\n{sizeless}")],
    );
    assert!(declined(dir.path()).contains("without a size"));

    // No log at all: `deltalake` says there is no table.
    let dir = tempfile::tempdir().unwrap();
    assert!(declined(dir.path()).contains("_delta_log"));

    // A null partition value of a column that cannot be null.
    let dir = tempfile::tempdir().unwrap();
    let partitioned = METADATA
        .replace(r#"\"nullable\":true"#, r#"\"nullable\":false"#)
        .replace(r#""partitionColumns":[]"#, r#""partitionColumns":["a"]"#);
    let null_value = add.replace(r#""partitionValues":{}"#, r#""partitionValues":{"a":null}"#);
    log(
        dir.path(),
        &[&format!("{PROTOCOL_1}\n{partitioned}\n{null_value}")],
    );
    let url = Url::from_directory_path(dir.path()).unwrap();
    let err = crate::quick::open(&url).unwrap_err();
    assert!(err.contains("not nullable"), "{err}");
}
