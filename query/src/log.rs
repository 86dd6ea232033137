//! A table's active files read straight from its Delta log on local disk, for a short process
//! that must start fast (a citizen list): its newest classic checkpoint, then the commits after
//! it.
//!
//! `deltalake` opens a table in 20-30 ms on a national lake, most of it parsing the checkpoint's
//! every row (file statistics included) through the kernel's expression engine, and its removed
//! files (tombstones, kept a week) make that slower. This reads only the checkpoint's `add`,
//! `metaData` and `protocol` columns and the commits since, in a few milliseconds.
//!
//! It reads what regsync writes and declines the rest: a log it does not read with certainty
//! (a multi-part or V2 checkpoint only, a gap in the commits, column mapping, a reader feature it
//! does not know, a file with a deletion vector) is left to `deltalake`, which reads every Delta
//! table. [`read`] says why in that case.

use std::collections::HashMap;
use std::fs::File;
use std::path::Path;

use arrow::array::{Array, AsArray, MapArray, RecordBatch, StructArray};
use arrow::datatypes::{DataType, Int32Type, Int64Type};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::Value;

/// Reader features whose tables this reads as plain Parquet: deletion vectors only while no
/// active file has one ([`read`] checks each file), `timestampNtz` a column type.
const KNOWN_READER_FEATURES: &[&str] = &["deletionVectors", "timestampNtz", "vacuumProtocolCheck"];

/// One active data file.
#[derive(Debug, Clone)]
pub(crate) struct ActiveFile {
    /// Relative to the table's root, percent-encoded as the log writes it.
    pub path: String,
    /// Bytes.
    pub size: u64,
    /// Partition column -> its value as text (`None`: null).
    pub partition_values: HashMap<String, Option<String>>,
    /// The file's statistics, JSON as the log holds them.
    pub stats: Option<String>,
    /// Whether it has a deletion vector (such a table is declined).
    vector: bool,
}

/// The table at its newest version.
#[derive(Debug)]
pub(crate) struct Snapshot {
    /// The Delta schema (`metaData.schemaString`).
    pub schema_string: String,
    /// Partition columns, in order.
    pub partition_columns: Vec<String>,
    /// Active files.
    pub files: Vec<ActiveFile>,
}

/// What a reading of the log found.
#[derive(Debug)]
pub(crate) enum Read {
    /// The table, read.
    Snapshot(Snapshot),
    /// Left to `deltalake`, and why.
    Declined(String),
}

/// The state the replay builds.
#[derive(Default)]
struct Replay {
    files: HashMap<String, ActiveFile>,
    schema_string: Option<String>,
    partition_columns: Vec<String>,
    column_mapping: Option<String>,
    reader_version: i32,
    reader_features: Vec<String>,
}

/// Reads the table at `dir` (its root, holding `_delta_log`).
pub(crate) fn read(dir: &Path) -> Read {
    match replay(dir) {
        Ok(read) => read,
        Err(reason) => Read::Declined(reason),
    }
}

fn replay(dir: &Path) -> Result<Read, String> {
    let log = dir.join("_delta_log");
    let Listing {
        commits,
        checkpoint,
        newest: spoken,
    } = listing(&log)?;
    let Some(&newest) = commits.last() else {
        return Ok(Read::Declined("no commit".into()));
    };
    // A newer version known only from a checkpoint, a compacted range or a hint (its commit
    // cleaned up or not yet there) would be missed: the table would be read as it was before.
    if let Some(spoken) = spoken.filter(|&v| v > newest) {
        return Ok(Read::Declined(format!(
            "version {spoken} is in the log but its commit is not (newest commit {newest})"
        )));
    }
    let mut state = Replay::default();
    let from = match checkpoint {
        Some(version) => {
            let path = log.join(format!("{version:020}.checkpoint.parquet"));
            checkpoint_into(&path, &mut state)
                .map_err(|e| format!("checkpoint {}: {e}", path.display()))?;
            version + 1
        }
        None => 0,
    };
    // Every commit after the checkpoint must be there (a log cleaned up behind a newer
    // checkpoint of another kind is left to `deltalake`).
    let wanted: Vec<u64> = (from..=newest).collect();
    let present: Vec<u64> = commits.iter().copied().filter(|&v| v >= from).collect();
    if wanted != present {
        return Ok(Read::Declined(format!(
            "commits {from}..={newest} are not all in the log"
        )));
    }
    for version in wanted {
        let path = log.join(format!("{version:020}.json"));
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        commit_into(&text, &mut state).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    if let Some(reason) = declined(&state) {
        return Ok(Read::Declined(reason));
    }
    let mut files: Vec<ActiveFile> = state.files.into_values().collect();
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(Read::Snapshot(Snapshot {
        schema_string: state.schema_string.ok_or("no metaData action")?,
        partition_columns: state.partition_columns,
        files,
    }))
}

/// Why the replayed table is not read here, if it is not.
fn declined(state: &Replay) -> Option<String> {
    if state.reader_version > 3 || state.reader_version < 1 {
        return Some(format!("reader version {}", state.reader_version));
    }
    if let Some(unknown) = state
        .reader_features
        .iter()
        .find(|f| !KNOWN_READER_FEATURES.contains(&f.as_str()))
    {
        return Some(format!("reader feature {unknown}"));
    }
    if state
        .column_mapping
        .as_deref()
        .is_some_and(|mode| mode != "none")
    {
        return Some("column mapping".into());
    }
    let vectors = state.files.values().filter(|f| f.vector).count();
    if vectors > 0 {
        return Some(format!("{vectors} files with deletion vectors"));
    }
    None
}

/// What the log's directory holds.
struct Listing {
    /// Commit versions, ascending.
    commits: Vec<u64>,
    /// The newest classic single-file checkpoint.
    checkpoint: Option<u64>,
    /// The newest version any log file speaks for: a commit, a checkpoint of any kind, a
    /// compacted range's end, a checksum file, `_last_checkpoint`.
    newest: Option<u64>,
}

fn listing(log: &Path) -> Result<Listing, String> {
    let entries = std::fs::read_dir(log).map_err(|e| format!("{}: {e}", log.display()))?;
    let mut found = Listing {
        commits: Vec::new(),
        checkpoint: None,
        newest: None,
    };
    for entry in entries {
        let entry = entry.map_err(|e| format!("{}: {e}", log.display()))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name == "_last_checkpoint" {
            let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
            let hint: Option<u64> = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v.get("version")?.as_u64());
            found.newest = found.newest.max(hint);
            continue;
        }
        let Some((digits, rest)) = name.split_at_checked(20) else {
            continue;
        };
        let Ok(version) = digits.parse::<u64>() else {
            continue;
        };
        match rest {
            ".json" => found.commits.push(version),
            ".checkpoint.parquet" => found.checkpoint = found.checkpoint.max(Some(version)),
            // Checkpoints of other kinds, checksums, compacted ranges; not a writer's
            // temporary file (`N.json.tmp`, `N.json#1`).
            _ if rest.starts_with(".checkpoint.") && rest.ends_with(".parquet") => {}
            _ if rest.starts_with(".checkpoint.") && rest.ends_with(".json") => {}
            ".crc" => {}
            _ if rest.ends_with(".compacted.json") => {}
            _ => continue,
        }
        // `x.y.compacted.json` speaks for versions up to y.
        let speaks_for = rest
            .strip_prefix('.')
            .and_then(|r| r.split_at_checked(20))
            .filter(|(_, tail)| tail.starts_with('.'))
            .and_then(|(end, _)| end.parse::<u64>().ok())
            .unwrap_or(version);
        found.newest = found.newest.max(Some(speaks_for.max(version)));
    }
    found.commits.sort_unstable();
    Ok(found)
}

/// Reads a checkpoint's `add`, `metaData` and `protocol` columns into `state`.
fn checkpoint_into(path: &Path, state: &mut Replay) -> Result<(), String> {
    let file = File::open(path).map_err(|e| e.to_string())?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| e.to_string())?;
    let fields = builder.parquet_schema().root_schema().get_fields();
    let roots: Vec<usize> = fields
        .iter()
        .enumerate()
        .filter(|(_, f)| matches!(f.name(), "add" | "metaData" | "protocol"))
        .map(|(i, _)| i)
        .collect();
    let mask = ProjectionMask::roots(builder.parquet_schema(), roots);
    let reader = builder
        .with_projection(mask)
        .with_batch_size(8192)
        .build()
        .map_err(|e| e.to_string())?;
    for batch in reader {
        batch_into(&batch.map_err(|e| e.to_string())?, state)?;
    }
    Ok(())
}

fn batch_into(batch: &RecordBatch, state: &mut Replay) -> Result<(), String> {
    if let Some(add) = struct_column(batch, "add") {
        let path = texts(add, "path")?;
        let stats = texts(add, "stats")?;
        let size = add
            .column_by_name("size")
            .and_then(|c| c.as_primitive_opt::<Int64Type>())
            .ok_or("add.size is not a long")?;
        let values = add
            .column_by_name("partitionValues")
            .and_then(|c| c.as_map_opt())
            .ok_or("add.partitionValues is not a map")?;
        let vectors = add.column_by_name("deletionVector");
        for row in (0..add.len()).filter(|&r| add.is_valid(r)) {
            let path = path[row].clone().ok_or("an add without a path")?;
            let file = ActiveFile {
                size: u64::try_from(size.value(row)).unwrap_or(0),
                partition_values: map_at(values, row)?,
                stats: stats[row].clone(),
                path: path.clone(),
                vector: vectors.is_some_and(|v| v.is_valid(row)),
            };
            state.files.insert(path, file);
        }
    }
    if let Some(meta) = struct_column(batch, "metaData") {
        let schema = texts(meta, "schemaString")?;
        for row in (0..meta.len()).filter(|&r| meta.is_valid(r)) {
            state.schema_string = schema[row].clone();
            state.partition_columns = list_at(meta.column_by_name("partitionColumns"), row)?;
            let configuration = meta
                .column_by_name("configuration")
                .and_then(|c| c.as_map_opt())
                .map(|m| map_at(m, row))
                .transpose()?
                .unwrap_or_default();
            state.column_mapping = configuration
                .get("delta.columnMapping.mode")
                .cloned()
                .flatten();
        }
    }
    if let Some(protocol) = struct_column(batch, "protocol") {
        let version = protocol
            .column_by_name("minReaderVersion")
            .and_then(|c| c.as_primitive_opt::<Int32Type>())
            .ok_or("protocol.minReaderVersion is not an int")?;
        for row in (0..protocol.len()).filter(|&r| protocol.is_valid(r)) {
            state.reader_version = version.value(row);
            state.reader_features = list_at(protocol.column_by_name("readerFeatures"), row)?;
        }
    }
    Ok(())
}

fn struct_column<'a>(batch: &'a RecordBatch, name: &str) -> Option<&'a StructArray> {
    batch.column_by_name(name).and_then(|c| c.as_struct_opt())
}

/// A text column of a struct, one entry per row.
fn texts(parent: &StructArray, name: &str) -> Result<Vec<Option<String>>, String> {
    let Some(column) = parent.column_by_name(name) else {
        return Ok(vec![None; parent.len()]);
    };
    let column =
        arrow::compute::cast(column, &DataType::Utf8).map_err(|e| format!("{name}: {e}"))?;
    let column = column.as_string::<i32>();
    Ok(column.iter().map(|v| v.map(str::to_owned)).collect())
}

fn map_at(map: &MapArray, row: usize) -> Result<HashMap<String, Option<String>>, String> {
    if map.is_null(row) {
        return Ok(HashMap::new());
    }
    let entries = map.value(row);
    let keys =
        arrow::compute::cast(entries.column(0), &DataType::Utf8).map_err(|e| e.to_string())?;
    let values =
        arrow::compute::cast(entries.column(1), &DataType::Utf8).map_err(|e| e.to_string())?;
    let (keys, values) = (keys.as_string::<i32>(), values.as_string::<i32>());
    Ok((0..keys.len())
        .map(|i| {
            let value = values.is_valid(i).then(|| values.value(i).to_owned());
            (keys.value(i).to_owned(), value)
        })
        .collect())
}

fn list_at(column: Option<&arrow::array::ArrayRef>, row: usize) -> Result<Vec<String>, String> {
    let Some(list) = column.and_then(|c| c.as_list_opt::<i32>()) else {
        return Ok(Vec::new());
    };
    if list.is_null(row) {
        return Ok(Vec::new());
    }
    let items =
        arrow::compute::cast(&list.value(row), &DataType::Utf8).map_err(|e| e.to_string())?;
    Ok(items
        .as_string::<i32>()
        .iter()
        .flatten()
        .map(str::to_owned)
        .collect())
}

/// Applies one commit: its removals first, then its additions (a file re-added in the same
/// commit, with a new deletion vector, stays).
fn commit_into(text: &str, state: &mut Replay) -> Result<(), String> {
    let actions: Vec<Value> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("not JSON lines: {e}"))?;
    for action in &actions {
        if let Some(path) = action.pointer("/remove/path").and_then(Value::as_str) {
            state.files.remove(path);
        }
    }
    for action in &actions {
        if let Some(add) = action.get("add") {
            let path = add
                .get("path")
                .and_then(Value::as_str)
                .ok_or("an add without a path")?;
            let file = ActiveFile {
                path: path.to_owned(),
                size: add
                    .get("size")
                    .and_then(Value::as_u64)
                    .ok_or("an add without a size")?,
                partition_values: add
                    .get("partitionValues")
                    .and_then(Value::as_object)
                    .map(|m| {
                        m.iter()
                            .map(|(k, v)| (k.clone(), v.as_str().map(str::to_owned)))
                            .collect()
                    })
                    .unwrap_or_default(),
                stats: add.get("stats").and_then(Value::as_str).map(str::to_owned),
                vector: add.get("deletionVector").is_some_and(|v| !v.is_null()),
            };
            state.files.insert(path.to_owned(), file);
        }
        if let Some(meta) = action.get("metaData") {
            state.schema_string = meta
                .get("schemaString")
                .and_then(Value::as_str)
                .map(str::to_owned);
            state.partition_columns = texts_of(meta.get("partitionColumns"));
            state.column_mapping = meta
                .pointer("/configuration/delta.columnMapping.mode")
                .and_then(Value::as_str)
                .map(str::to_owned);
        }
        if let Some(protocol) = action.get("protocol") {
            state.reader_version = protocol
                .get("minReaderVersion")
                .and_then(Value::as_i64)
                .and_then(|v| i32::try_from(v).ok())
                .unwrap_or(i32::MAX);
            state.reader_features = texts_of(protocol.get("readerFeatures"));
        }
    }
    Ok(())
}

/// The text items of a JSON array (none if it is not one).
fn texts_of(array: Option<&Value>) -> Vec<String> {
    array
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}
