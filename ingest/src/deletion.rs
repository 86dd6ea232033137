//! Changing rows without rewriting the files that hold them: Delta deletion vectors.
//!
//! A table created with `delta.enableDeletionVectors` ([`wanted`]: the partitioned current-state
//! and history tables) takes a commit whose changes would reach nearly every file
//! ([`by_vector`]) at a cost that follows their size, not the table's:
//!
//! 1. one scan of the key columns of every data file finds the rows a change names (rows an
//!    earlier deletion vector removed are passed over);
//! 2. those a change rewrites are read (a withheld row, a history's open version to be ended;
//!    a replaced or removed row is only deleted), changed as the copy-on-write rewrite changes
//!    them (the same SQL, [`crate::merge`]), and written, with the rows the changes add, to
//!    new files;
//! 3. each file they came from gets a deletion vector naming them beside those it had (all of
//!    a commit's in one `deletion_vector_<uuid>.bin`), and one commit re-adds those files with
//!    their new vectors, removes a file whose every row is gone, adds the new files and records
//!    the positions.
//!
//! Every Delta reader applies the vectors, and one that cannot is refused by the table's
//! protocol (reader version 3, feature `deletionVectors`), so a withheld address leaves what
//! readers see in the commit that withholds it, as with the rewrite; a re-added file's
//! statistics lose their bounds of the withheld columns ([`loosened`]), which could be the
//! address a vector hides. Its bytes stay in the old file, as they stay in a file the rewrite
//! replaced, until maintenance rewrites the partition (it rewrites every partition holding a
//! vector) and VACUUM deletes the file after the retention: whoever may read the lake's
//! storage directly may read those bytes either way.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use arrow::array::{ArrayRef, RecordBatch, StringArray, new_null_array};
use arrow::error::ArrowError;
use arrow::row::{RowConverter, Rows, SortField};
use deltalake::datafusion::datasource::MemTable;
use deltalake::kernel::{Action, Add, DeletionVectorDescriptor, Remove, StorageType};
use deltalake::logstore::parquet_reader::ParquetObjectReader;
use deltalake::{DeltaTable, DeltaTableError, ObjectStore};
use futures::TryStreamExt as _;
use object_store::ObjectStoreExt as _;
use object_store::path::Path;
use parquet::arrow::arrow_reader::{ArrowReaderOptions, RowSelection};
use parquet::arrow::{ParquetRecordBatchStreamBuilder, ProjectionMask};
use parquet::file::metadata::PageIndexPolicy;
use roaring::RoaringTreemap;
use schemas::tables::{Table, TableKind};
use tracing::Instrument as _;
use transform::change::Change;
use url::Url;

use crate::IngestError;
use crate::commit::Commit;
use crate::lake::Lake;
use crate::merge::{
    INSERT, added_sql, changed_sql, source_session, tag, write_rows, writer_config,
};

/// The table property that turns deletion vectors on.
pub const ENABLE: &str = "delta.enableDeletionVectors";
/// The first bytes of a serialized vector: Delta's `RoaringBitmapArray` in its portable format.
const MAGIC: u32 = 1_681_511_377;
/// The column that tells a history's open version (null) from the ended ones.
const VALID_TO: &str = "valid_to";
/// Data files scanned at once: one per core of the machine this was sized on (decoding the
/// key column and hashing it is the scan's time).
const SCANS_AT_ONCE: usize = 2;

/// Whether a new table is created with deletion vectors: the keyed, partitioned tables, whose
/// partitions maintenance rewrites whole (Z-order), folding the vectors into new files, and
/// whose key is in their files. An unpartitioned table's compaction only merges small files,
/// so it would keep them.
pub fn wanted(table: &Table) -> bool {
    table.kind != TableKind::Log
        && !table.partition_columns.is_empty()
        && !table.cluster_columns.is_empty()
        // The scan reads the key from the files, which do not hold partition values.
        && table.key.iter().all(|k| !table.partition_columns.contains(k))
}

/// Whether the table (as last read) changes rows by deletion vector: a table created without
/// them (an older lake) is rewritten copy-on-write.
pub fn enabled(delta: &DeltaTable) -> bool {
    delta.snapshot().is_ok_and(|s| {
        s.metadata()
            .configuration()
            .get(ENABLE)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    })
}

/// Whether `changes` go to `table` by deletion vector: the table takes them, and they name at
/// least as many keys as it has data files. A rewrite copies each file holding a named key,
/// so a change that many keys reach nearly every file (a catch-up's random persons), and it
/// costs what rewriting the table costs; a change naming a few keys rewrites a few files,
/// which also folds their vectors and keeps a partition to one file, as citizen lists read
/// fastest.
pub fn by_vector(delta: &DeltaTable, table: &Table, changes: &[Change]) -> bool {
    if !enabled(delta) {
        return false;
    }
    let named: usize = changes
        .iter()
        .filter(|c| !(table.kind == TableKind::History && tag(c) == INSERT))
        .map(|c| c.rows().num_rows())
        .sum();
    let files = delta.snapshot().map_or(0, |s| s.log_data().num_files());
    named >= files.max(1)
}

/// A data file of the table as the log names it: where it is, and its actions (its size,
/// partition values and vector are its add's).
struct LiveFile {
    path: Path,
    add: Add,
    remove: Remove,
}

impl LiveFile {
    fn size(&self) -> u64 {
        u64::try_from(self.add.size).unwrap_or(0)
    }
}

/// A file holding rows the changes name: their indexes in the file, those its vector already
/// removed, and its rows in all.
struct Named {
    file: LiveFile,
    rows: Vec<u64>,
    deleted: RoaringTreemap,
    total: u64,
}

impl Lake {
    /// Applies `changes` (some of which change rows) to `table` by deletion vector, in one
    /// commit recording `txns`.
    pub(crate) async fn delete_and_append(
        &mut self,
        table: &'static Table,
        changes: &[Change],
        txns: &[(&str, i64)],
    ) -> Result<(), IngestError> {
        let started = Instant::now();
        let delta = self.table(table).clone();
        let commit = Commit::new(table, self.url(), delta.version(), txns);
        let err = |e: DeltaTableError| commit.error(e);
        let snapshot = delta.snapshot().map_err(&err)?.clone();
        let ctx = source_session(table, &delta, changes, &commit).await?;
        let keys = Arc::new(Keys::of(table, changes).map_err(|e| err(e.into()))?);
        let store = delta.log_store().object_store(None);
        let root = delta.table_url().clone();

        // 1. and 2. The named rows of each file, read and changed back into the table's schema.
        #[allow(deprecated)] // The log's add action of a file is what a re-add starts from.
        let files: Vec<LiveFile> = snapshot
            .log_data()
            .iter()
            .map(|f| LiveFile {
                path: f.object_store_path(),
                add: f.add_action(),
                remove: f.remove_action(true),
            })
            .collect();
        let mut pending = files.into_iter();
        let mut scans = tokio::task::JoinSet::new();
        let (mut named, mut old_rows) = (Vec::new(), Vec::new());
        loop {
            while scans.len() < SCANS_AT_ONCE
                && let Some(file) = pending.next()
            {
                let (store, keys, root) = (store.clone(), keys.clone(), root.clone());
                scans.spawn(
                    async move { named_rows(store, &root, file, &keys, table).await }
                        .in_current_span(),
                );
            }
            let Some(done) = scans.join_next().await else {
                break;
            };
            let found = done
                .map_err(|e| err(DeltaTableError::Generic(format!("a file scan failed: {e}"))))?
                .map_err(&err)?;
            if let Some((file, rows)) = found {
                named.push(file);
                old_rows.extend(rows);
            }
        }
        let rows_read: usize = old_rows.iter().map(RecordBatch::num_rows).sum();
        let rows_deleted: usize = named.iter().map(|n| n.rows.len()).sum();
        let target =
            MemTable::try_new(table.schema.clone(), vec![old_rows]).map_err(|e| err(e.into()))?;
        ctx.register_table("target", Arc::new(target))
            .map_err(|e| err(e.into()))?;
        let sql = format!(
            "{} UNION ALL {}",
            changed_sql(table, "target"),
            added_sql(table)
        );
        let (adds, rows) = write_rows(&ctx, &sql, &delta, writer_config(table, &snapshot), table)
            .await
            .map_err(&err)?;

        // 3. The vectors, and one commit.
        let mut actions = Vec::new();
        let (mut vectors, mut gone) = (Vec::new(), 0usize);
        let mut kept = Vec::new();
        for mut file in named {
            file.deleted.extend(file.rows.iter().copied());
            actions.push(Action::Remove(file.file.remove.clone()));
            if file.deleted.len() >= file.total {
                gone += 1;
            } else {
                kept.push(file);
            }
        }
        if !kept.is_empty() {
            let (bytes, placed) = encode(kept.iter().map(|f| &f.deleted)).map_err(&err)?;
            let uuid = uuid::Uuid::new_v4();
            store
                .put(
                    &Path::from(format!("deletion_vector_{uuid}.bin")),
                    bytes.into(),
                )
                .await
                .map_err(|e| err(e.into()))?;
            let encoded = z85::encode(uuid.as_bytes());
            for (file, (offset, size)) in kept.iter().zip(placed) {
                let mut add = file.file.add.clone();
                add.data_change = true;
                add.stats = Some(loosened(add.stats.as_deref(), file.total, table));
                add.deletion_vector = Some(DeletionVectorDescriptor {
                    storage_type: StorageType::UuidRelativePath,
                    path_or_inline_dv: encoded.clone(),
                    offset: Some(offset),
                    size_in_bytes: size,
                    cardinality: i64::try_from(file.deleted.len()).unwrap_or(i64::MAX),
                });
                actions.push(Action::Add(add));
            }
            vectors = kept;
        }
        let written = adds.len();
        actions.extend(adds.into_iter().map(Action::Add));
        self.commit_changes(table, &commit, &snapshot, &delta, actions)
            .await?;
        tracing::debug!(
            table = table.name,
            files_with_new_vectors = vectors.len(),
            files_emptied = gone,
            rows_deleted,
            rows_read,
            files_written = written,
            rows_written = rows,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "changes applied by deletion vector"
        );
        Ok(())
    }
}

/// What a change does to the rows with its key.
/// Ordered by how much of a key's rows it reaches: where two changes name a key, the wider
/// applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Reach {
    /// Current state, upserted or removed: every row is deleted, none read (the change's own
    /// row, if any, replaces it).
    Replaced,
    /// History, closed: the open version (no `valid_to`) is deleted and written again, ended.
    Open,
    /// Withheld (and, in history, scrubbed): every row is deleted and written again, changed.
    Every,
}

/// The keys the changes name, as comparable byte rows of the table's key columns, with what
/// each change does to their rows.
struct Keys {
    columns: Vec<(&'static str, arrow::datatypes::DataType)>,
    converter: RowConverter,
    named: HashMap<Box<[u8]>, Reach>,
    /// Whether some key reaches only its open version: the scan also reads `valid_to`.
    open: bool,
}

impl Keys {
    /// The keys of the changes that match the table's rows: in history, new versions match
    /// nothing; in current state, every change replaces or changes the row it names.
    fn of(table: &'static Table, changes: &[Change]) -> Result<Self, ArrowError> {
        let columns = table
            .key
            .iter()
            .map(|k| {
                let field = table.schema.field_with_name(k)?;
                Ok((*k, field.data_type().clone()))
            })
            .collect::<Result<Vec<_>, ArrowError>>()?;
        let converter = RowConverter::new(
            columns
                .iter()
                .map(|(_, t)| SortField::new(t.clone()))
                .collect(),
        )?;
        let mut keys = Self {
            columns,
            converter,
            named: HashMap::new(),
            open: false,
        };
        for change in changes {
            let reach = match (table.kind, change) {
                (TableKind::History, c) if tag(c) == INSERT => continue,
                (TableKind::History, Change::Close(_)) => Reach::Open,
                (_, Change::Withhold(_) | Change::Scrub(_)) => Reach::Every,
                _ => Reach::Replaced,
            };
            keys.open |= reach == Reach::Open;
            let rows = keys.rows(change.rows())?;
            for row in rows.iter() {
                let named = keys.named.entry(row.as_ref().into()).or_insert(reach);
                *named = (*named).max(reach);
            }
        }
        Ok(keys)
    }

    /// The key rows of a batch holding the key columns.
    fn rows(&self, batch: &RecordBatch) -> Result<Rows, ArrowError> {
        let arrays = self
            .columns
            .iter()
            .map(|(name, data_type)| {
                let column = batch.column_by_name(name).ok_or_else(|| {
                    ArrowError::SchemaError(format!("no key column {name} in the rows"))
                })?;
                if column.data_type() == data_type {
                    Ok(column.clone())
                } else {
                    arrow::compute::cast(column, data_type)
                }
            })
            .collect::<Result<Vec<ArrayRef>, ArrowError>>()?;
        self.converter.convert_columns(&arrays)
    }
}

/// The rows of `file` that `keys` names and its vector has not removed, and those of them a
/// change rewrites, read in the table's schema: none if it holds none.
async fn named_rows(
    store: Arc<dyn ObjectStore>,
    root: &Url,
    file: LiveFile,
    keys: &Keys,
    table: &'static Table,
) -> Result<Option<(Named, Vec<RecordBatch>)>, DeltaTableError> {
    let reader =
        ParquetObjectReader::new(store.clone(), file.path.clone()).with_file_size(file.size());
    let builder = ParquetRecordBatchStreamBuilder::new(reader).await?;
    let mut scanned: Vec<&str> = keys.columns.iter().map(|(name, _)| *name).collect();
    if keys.open {
        scanned.push(VALID_TO);
    }
    let mask = ProjectionMask::columns(builder.parquet_schema(), scanned.iter().copied());
    let mut stream = builder.with_projection(mask).build()?;
    // Rows deleted (and whether each is read to be written again), before the file's vector.
    let (mut at, mut named) = (0u64, Vec::new());
    while let Some(batch) = stream.try_next().await? {
        let found = keys.rows(&batch)?;
        let ended = batch.column_by_name(VALID_TO);
        for (i, row) in found.iter().enumerate() {
            let index = at + i as u64;
            match keys.named.get(row.as_ref()) {
                None => {}
                Some(Reach::Replaced) => named.push((index, false)),
                Some(Reach::Open) if ended.is_some_and(|c| c.is_valid(i)) => {}
                Some(Reach::Open | Reach::Every) => named.push((index, true)),
            }
        }
        at += batch.num_rows() as u64;
    }
    if named.is_empty() {
        return Ok(None);
    }
    // Only a file holding a named row needs its vector: rows it already removed are not
    // named again.
    let deleted = match &file.add.deletion_vector {
        Some(vector) => read_vector(store.as_ref(), root, vector).await?,
        None => RoaringTreemap::new(),
    };
    named.retain(|(index, _)| !deleted.contains(*index));
    if named.is_empty() {
        return Ok(None);
    }
    let read: Vec<u64> = named.iter().filter(|(_, r)| *r).map(|(i, _)| *i).collect();
    let rows: Vec<u64> = named.into_iter().map(|(i, _)| i).collect();
    let named = Named {
        file,
        rows,
        deleted,
        total: at,
    };
    if read.is_empty() {
        return Ok(Some((named, Vec::new())));
    }
    let reader =
        ParquetObjectReader::new(store, named.file.path.clone()).with_file_size(named.file.size());
    let builder = ParquetRecordBatchStreamBuilder::new_with_options(
        reader,
        ArrowReaderOptions::new().with_page_index_policy(PageIndexPolicy::Optional),
    )
    .await?;
    let selection = RowSelection::from_consecutive_ranges(
        read.iter().map(|&r| r as usize..r as usize + 1),
        at as usize,
    );
    let mut stream = builder.with_row_selection(selection).build()?;
    let mut batches = Vec::new();
    while let Some(batch) = stream.try_next().await? {
        batches.push(in_table_schema(
            &batch,
            table,
            &named.file.add.partition_values,
        )?);
    }
    Ok(Some((named, batches)))
}

/// A data file's rows in the table's schema: its partition values (which the file does not
/// hold) as columns, and a column added to the table after the file was written as nulls.
fn in_table_schema(
    batch: &RecordBatch,
    table: &Table,
    partitions: &HashMap<String, Option<String>>,
) -> Result<RecordBatch, ArrowError> {
    let n = batch.num_rows();
    let columns = table
        .schema
        .fields()
        .iter()
        .map(|field| {
            let name = field.name().as_str();
            let column = if table.partition_columns.contains(&name) {
                let value = partitions.get(name).cloned().flatten();
                Arc::new(StringArray::from(vec![value.as_deref(); n])) as ArrayRef
            } else {
                match batch.column_by_name(name) {
                    Some(column) => column.clone(),
                    None => new_null_array(field.data_type(), n),
                }
            };
            if column.data_type() == field.data_type() {
                Ok(column)
            } else {
                arrow::compute::cast(&column, field.data_type())
            }
        })
        .collect::<Result<Vec<_>, ArrowError>>()?;
    RecordBatch::try_new(table.schema.clone(), columns)
}

/// A re-added file's statistics: no longer tight (the bounds were taken over rows its vector
/// now hides), and without bounds for the withheld columns, which could be a deleted row's
/// address: a person's now withheld. Readers still prune by the other columns' bounds, and by
/// all of them once maintenance has rewritten the file.
fn loosened(stats: Option<&str>, rows: u64, table: &Table) -> String {
    let mut stats = match stats.map(serde_json::from_str) {
        Some(Ok(serde_json::Value::Object(stats))) => stats,
        // Statistics this writer cannot read are not kept; the rows a file holds are required
        // beside a deletion vector.
        _ => serde_json::Map::new(),
    };
    for bound in ["minValues", "maxValues"] {
        if let Some(serde_json::Value::Object(bounds)) = stats.get_mut(bound) {
            for column in table.withheld_columns {
                bounds.remove(*column);
            }
        }
    }
    stats.insert("numRecords".to_owned(), rows.into());
    stats.insert("tightBounds".to_owned(), false.into());
    serde_json::Value::Object(stats).to_string()
}

/// Where a vector is in its file: the offset of its size, and its size (the magic and bitmap).
type Placed = (i32, i32);

/// Serializes vectors into one deletion vector file: a version byte, then each vector as its
/// size (big-endian), the magic and the portable roaring bitmap, and a CRC-32 of those
/// (big-endian). Returns the file and each vector's offset and size, as its descriptor holds
/// them.
fn encode<'a>(
    vectors: impl Iterator<Item = &'a RoaringTreemap>,
) -> Result<(Vec<u8>, Vec<Placed>), DeltaTableError> {
    let too_large = || DeltaTableError::Generic("a deletion vector file over 2 GB".to_owned());
    let mut out = vec![1u8];
    let mut placed = Vec::new();
    for vector in vectors {
        let mut data = Vec::with_capacity(vector.serialized_size());
        vector
            .serialize_into(&mut data)
            .map_err(|e| DeltaTableError::Generic(format!("serializing a deletion vector: {e}")))?;
        let size = i32::try_from(data.len() + 4).map_err(|_| too_large())?;
        let offset = i32::try_from(out.len()).map_err(|_| too_large())?;
        let magic = MAGIC.to_le_bytes();
        let mut crc = crc32fast::Hasher::new();
        crc.update(&magic);
        crc.update(&data);
        out.extend_from_slice(&size.to_be_bytes());
        out.extend_from_slice(&magic);
        out.extend_from_slice(&data);
        out.extend_from_slice(&crc.finalize().to_be_bytes());
        placed.push((offset, size));
    }
    Ok((out, placed))
}

/// The rows a file's deletion vector removes, from wherever its descriptor keeps it.
async fn read_vector(
    store: &dyn ObjectStore,
    root: &Url,
    vector: &DeletionVectorDescriptor,
) -> Result<RoaringTreemap, DeltaTableError> {
    let bad = |what: &str| {
        DeltaTableError::Generic(format!(
            "deletion vector {} ({:?}): {what}",
            vector.path_or_inline_dv, vector.storage_type
        ))
    };
    let path = match vector.storage_type {
        StorageType::Inline => {
            let bytes = z85::decode(&vector.path_or_inline_dv).map_err(|_| bad("not base85"))?;
            return bitmap(&bytes).map_err(|e| bad(&e));
        }
        StorageType::UuidRelativePath => {
            let s = vector.path_or_inline_dv.as_str();
            let split = s.len().checked_sub(20).ok_or_else(|| bad("too short"))?;
            let (prefix, encoded) = s.split_at(split);
            let raw = z85::decode(encoded).map_err(|_| bad("not base85"))?;
            let uuid = uuid::Uuid::from_slice(&raw).map_err(|_| bad("not a UUID"))?;
            let name = format!("deletion_vector_{uuid}.bin");
            if prefix.is_empty() {
                Path::from(name)
            } else {
                Path::from(format!("{prefix}/{name}"))
            }
        }
        StorageType::AbsolutePath => {
            let relative = vector
                .path_or_inline_dv
                .strip_prefix(root.as_str())
                .ok_or_else(|| bad("outside the table"))?;
            Path::from_url_path(relative.trim_start_matches('/'))
                .map_err(|e| bad(&e.to_string()))?
        }
    };
    let offset = u64::try_from(vector.offset.unwrap_or(1)).map_err(|_| bad("negative offset"))?;
    let size = u64::try_from(vector.size_in_bytes).map_err(|_| bad("negative size"))?;
    let bytes = store
        .get_range(&path, offset..offset + 4 + size + 4)
        .await?;
    let size = size as usize;
    if bytes.len() < 8 + size || u32::from_be_bytes(first4(&bytes[..4])) as usize != size {
        return Err(bad("its size does not match its descriptor"));
    }
    let data = &bytes[4..4 + size];
    if crc32fast::hash(data) != u32::from_be_bytes(first4(&bytes[4 + size..])) {
        return Err(bad("checksum mismatch"));
    }
    let deleted = bitmap(data).map_err(|e| bad(&e))?;
    if i64::try_from(deleted.len()).ok() != Some(vector.cardinality) {
        return Err(bad("its cardinality does not match its descriptor"));
    }
    Ok(deleted)
}

/// A serialized vector: the magic, then the portable roaring bitmap.
fn bitmap(bytes: &[u8]) -> Result<RoaringTreemap, String> {
    if bytes.len() < 4 || u32::from_le_bytes(first4(bytes)) != MAGIC {
        return Err("not a roaring bitmap array".to_owned());
    }
    RoaringTreemap::deserialize_from(&bytes[4..]).map_err(|e| e.to_string())
}

fn first4(bytes: &[u8]) -> [u8; 4] {
    let mut out = [0u8; 4];
    out.copy_from_slice(&bytes[..4]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_vector_file_holds_each_vector_at_its_offset_with_its_checksum() {
        let a: RoaringTreemap = [0u64, 5, 10].into_iter().collect();
        let b: RoaringTreemap = [1u64 << 33, 7].into_iter().collect();
        let (bytes, placed) = encode([&a, &b].into_iter()).unwrap();
        assert_eq!(bytes[0], 1);
        for (vector, (offset, size)) in [&a, &b].into_iter().zip(placed) {
            let (offset, size) = (offset as usize, size as usize);
            assert_eq!(u32::from_be_bytes(first4(&bytes[offset..])) as usize, size);
            let data = &bytes[offset + 4..offset + 4 + size];
            assert_eq!(&bitmap(data).unwrap(), vector);
            assert_eq!(
                crc32fast::hash(data),
                u32::from_be_bytes(first4(&bytes[offset + 4 + size..]))
            );
        }
    }

    #[test]
    fn a_re_added_file_loses_the_bounds_of_withheld_columns_and_its_tight_bounds() {
        let stats = r#"{"numRecords":3,"minValues":{"person_id":"01","street_name":"Aveien","municipality_number":"0301"},"maxValues":{"person_id":"09","street_name":"Vegen","municipality_number":"5035"},"nullCount":{"street_name":0}}"#;
        let loose: serde_json::Value =
            serde_json::from_str(&loosened(Some(stats), 3, &schemas::tables::PERSON)).unwrap();
        assert_eq!(loose["tightBounds"], false);
        assert_eq!(loose["numRecords"], 3);
        for bound in ["minValues", "maxValues"] {
            assert!(loose[bound].get("person_id").is_some(), "{loose}");
            for withheld in ["street_name", "municipality_number"] {
                assert!(loose[bound].get(withheld).is_none(), "{loose}");
            }
        }
        assert_eq!(loose["nullCount"]["street_name"], 0);
        for unreadable in [Some("not json"), Some("null"), None] {
            let loose: serde_json::Value =
                serde_json::from_str(&loosened(unreadable, 7, &schemas::tables::PERSON)).unwrap();
            assert_eq!(
                loose,
                serde_json::json!({"numRecords": 7, "tightBounds": false})
            );
        }
    }

    #[test]
    fn only_keyed_partitioned_tables_take_deletion_vectors() {
        assert!(wanted(&schemas::tables::PERSON));
        assert!(wanted(&schemas::tables::PERSON_HISTORY));
        assert!(!wanted(&schemas::tables::PERSON_EVENT));
        assert!(!wanted(&schemas::tables::DEAD_LETTER));
    }
}
