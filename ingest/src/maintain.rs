//! Keeping the lake healthy, and saying how it stands.
//!
//! [`maintain`] compacts each table's small files (OPTIMIZE; Z-ordered on the table's
//! `cluster_columns` within each partition, so that file statistics prune the kommune and
//! birth-date filters of citizen lists), writes a checkpoint of the log and removes expired log
//! entries, then VACUUMs files no version younger than the retention needs: time travel stays
//! possible for the retention period. The worker runs it on its schedule and `regsync maintain`
//! on demand; [`table_stats`] is what `regsync status` prints.
//!
//! Maintenance commits record no source position, so a worker whose rewrite loses a race against
//! it sees a transient conflict, reads the lake again and repeats the batch from its positions.

use std::num::NonZeroU64;
use std::time::Duration;

use chrono::{DateTime, Utc};
use deltalake::operations::optimize::OptimizeType;
use deltalake::operations::vacuum::VacuumMode;
use deltalake::{DeltaTable, FilterOp, FilterValue};
use futures::StreamExt;
use schemas::tables::{ALL_TABLES, Table};
use serde::Deserialize;
use tracing::{info, warn};
use url::Url;

use crate::IngestError;
use crate::commit::lake_error;
use crate::lake::{Lake, table_url};

/// How maintenance runs (the pipeline's `[maintenance]`, or `regsync maintain`'s flags).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaintainOptions {
    /// How often the worker maintains the lake between commits while it runs (`"0s"`: never;
    /// `after_seed` is apart from it).
    #[serde(
        default = "default_every",
        deserialize_with = "crate::config::duration"
    )]
    pub every: Duration,
    /// How long removed files are kept, so that time travel (an analyst's `VERSION AS OF`)
    /// works this far back; also each table's `delta.deletedFileRetentionDuration`, how long
    /// its checkpoints name them.
    #[serde(
        default = "default_retention",
        deserialize_with = "crate::config::duration"
    )]
    pub vacuum_retention: Duration,
    /// The size compaction aims at for each file.
    #[serde(default = "default_target")]
    pub target_file_bytes: u64,
    /// Z-order tables with cluster columns (otherwise: bin-packing compaction only). A table
    /// changed by deletion vector is Z-ordered either way: that folds the vectors.
    #[serde(default = "crate::config::yes")]
    pub zorder: bool,
    /// Maintain (compact, checkpoint, vacuum) the partitioned tables once the first seed
    /// completes: a seed writes a file per partition per commit (about 10 000 small files for a
    /// national `person`), which every later rewrite and every citizen list would otherwise pay
    /// for until the schedule's turn.
    #[serde(default = "crate::config::yes")]
    pub after_seed: bool,
}

fn default_every() -> Duration {
    Duration::from_secs(24 * 3600)
}
fn default_retention() -> Duration {
    Duration::from_secs(7 * 24 * 3600)
}
fn default_target() -> u64 {
    128 * 1024 * 1024
}

impl Default for MaintainOptions {
    fn default() -> Self {
        Self {
            every: default_every(),
            vacuum_retention: default_retention(),
            target_file_bytes: default_target(),
            zorder: true,
            after_seed: true,
        }
    }
}

/// How a table stands.
#[derive(Debug, Clone)]
pub struct TableStats {
    /// The table.
    pub table: &'static str,
    /// Its Delta version.
    pub version: i64,
    /// Data files in the current version.
    pub files: usize,
    /// Their bytes.
    pub bytes: u64,
    /// Rows, from the files' statistics.
    pub rows: u64,
    /// When the last commit was made.
    pub last_commit: Option<DateTime<Utc>>,
    /// The sources' positions it records (application transaction id, version).
    pub positions: Vec<(&'static str, i64)>,
}

/// What maintaining one table did.
#[derive(Debug, Clone)]
pub struct Maintained {
    /// Before.
    pub before: TableStats,
    /// After.
    pub after: TableStats,
    /// Files compaction rewrote into `files_added`.
    pub files_removed: u64,
    /// Files compaction wrote.
    pub files_added: u64,
    /// Files VACUUM deleted from storage.
    pub files_vacuumed: usize,
}

/// Sets how long the table's checkpoints keep the tombstones of removed files
/// (`delta.deletedFileRetentionDuration`), in one metadata commit.
async fn set_tombstone_retention(
    delta: DeltaTable,
    retention: Duration,
    err: &impl Fn(deltalake::DeltaTableError) -> IngestError,
) -> Result<DeltaTable, IngestError> {
    let value = format!("interval {} seconds", retention.as_secs());
    delta
        .set_tbl_properties()
        .with_properties(
            [(TOMBSTONE_RETENTION.to_owned(), value)]
                .into_iter()
                .collect(),
        )
        .await
        .map_err(err)
}

/// The table with `delta.deletedFileRetentionDuration` at the lake's VACUUM retention, set if it
/// is not (a table written before it was set, a retention changed since, or a maintenance that
/// stopped between the commits of [`Tombstones::ForgetSeeded`]).
async fn tombstones_kept_for(
    delta: DeltaTable,
    retention: Duration,
    err: &impl Fn(deltalake::DeltaTableError) -> IngestError,
) -> Result<DeltaTable, IngestError> {
    let kept = delta
        .snapshot()
        .map_err(err)?
        .table_config()
        .deleted_file_retention_duration;
    if kept == Some(retention) {
        return Ok(delta);
    }
    set_tombstone_retention(delta, retention, err).await
}

/// Whether the table keeps no tombstones (`delta.deletedFileRetentionDuration` zero): what
/// [`Tombstones::ForgetSeeded`] sets for one checkpoint and restores at once.
pub(crate) fn forgetting_tombstones(delta: &DeltaTable) -> bool {
    delta
        .snapshot()
        .is_ok_and(|s| s.table_config().deleted_file_retention_duration == Some(Duration::ZERO))
}

/// Sets the tombstone retention of every table of `tables` left at zero back to `retention`: a
/// worker stopped between the two property commits of [`Tombstones::ForgetSeeded`]. Until then
/// each checkpoint (Delta's own, every 100 commits) would drop every tombstone. A failure is
/// logged: the next maintenance sets it too.
pub async fn restore_tombstone_retention(
    lake: &mut Lake,
    tables: &[&'static Table],
    retention: Duration,
) {
    for table in tables {
        let delta = lake.table(table).clone();
        if !forgetting_tombstones(&delta) {
            continue;
        }
        let err = lake_error(table, &delta.table_url().clone());
        match set_tombstone_retention(delta, retention, &err).await {
            Ok(updated) => {
                info!(
                    table = table.name,
                    retention_s = retention.as_secs(),
                    "tombstone retention left at zero by a stopped maintenance: restored"
                );
                lake.install(table, updated);
            }
            Err(e) => {
                warn!(table = table.name, error = %e, "tombstone retention left at zero: not restored; the next maintenance sets it")
            }
        }
    }
}

/// Whether every data file of the table was written within `age` (an empty table: yes).
fn written_within(delta: &DeltaTable, age: Duration) -> bool {
    let Ok(snapshot) = delta.snapshot() else {
        return false;
    };
    let oldest = snapshot
        .log_data()
        .iter()
        .map(|f| f.modification_time())
        .min();
    let now = Utc::now().timestamp_millis();
    let age = i64::try_from(age.as_millis()).unwrap_or(i64::MAX);
    oldest.is_none_or(|t| now.saturating_sub(t) < age)
}

/// The table property that says how long tombstones are kept.
const TOMBSTONE_RETENTION: &str = "delta.deletedFileRetentionDuration";

/// Opens a table that must exist.
async fn open(lake: &Url, table: &'static Table) -> Result<DeltaTable, IngestError> {
    let url = table_url(lake, table);
    deltalake::open_table(url.clone())
        .await
        .map_err(lake_error(table, &url))
}

/// A table's files, size, rows, last commit and positions.
pub async fn table_stats(
    delta: &DeltaTable,
    table: &'static Table,
) -> Result<TableStats, IngestError> {
    let err = lake_error(table, &delta.table_url().clone());
    let state = delta.snapshot().map_err(&err)?;
    let (mut files, mut bytes, mut rows) = (0usize, 0u64, 0u64);
    for file in state.log_data().iter() {
        files += 1;
        bytes += u64::try_from(file.size()).unwrap_or(0);
        // Less the rows its deletion vector removes.
        let deleted = file
            .deletion_vector_descriptor()
            .map_or(0, |d| u64::try_from(d.cardinality).unwrap_or(0));
        rows += (file.num_records().unwrap_or(0) as u64).saturating_sub(deleted);
    }
    let mut positions = Vec::new();
    for app in schemas::cursor::ALL {
        if let Some(v) = state
            .transaction_version(delta.log_store().as_ref(), app)
            .await
            .map_err(&err)?
        {
            positions.push((*app, v));
        }
    }
    let last_commit = match delta.history(Some(1)).next().await {
        Some(info) => info
            .map_err(&err)?
            .timestamp
            .and_then(DateTime::from_timestamp_millis),
        None => None,
    };
    Ok(TableStats {
        table: table.name,
        version: delta
            .version()
            .map_or(-1, |v| i64::try_from(v).unwrap_or(i64::MAX)),
        files,
        bytes,
        rows,
        last_commit,
        positions,
    })
}

/// The values of the first partition column that more than one data file shares, or that a
/// file with deleted rows (a deletion vector) holds.
fn crowded_partitions(delta: &DeltaTable, table: &'static Table) -> Vec<String> {
    let Some(column) = table.partition_columns.first() else {
        return Vec::new();
    };
    let Ok(state) = delta.snapshot() else {
        return Vec::new();
    };
    let prefix = format!("{column}=");
    let mut counts: std::collections::BTreeMap<String, usize> = Default::default();
    for file in state.log_data().iter() {
        let path = file.path();
        if let Some(value) = path
            .split('/')
            .find_map(|segment| segment.strip_prefix(prefix.as_str()))
        {
            // A file with deleted rows counts as two: its partition is rewritten.
            let weight = if file.deletion_vector_descriptor().is_some() {
                2
            } else {
                1
            };
            *counts.entry(value.to_owned()).or_default() += weight;
        }
    }
    counts
        .into_iter()
        .filter(|(_, n)| *n > 1)
        .map(|(v, _)| v)
        .collect()
}

/// A table missing from the lake: one of a register the lake does not follow, or written
/// before the table existed. A lake without any table is no lake: the first such error.
fn missing(e: IngestError, first: &mut Option<IngestError>) -> Result<(), IngestError> {
    if e.missing_table().is_none() {
        return Err(e);
    }
    first.get_or_insert(e);
    Ok(())
}

fn found<T>(out: Vec<T>, first: Option<IngestError>) -> Result<Vec<T>, IngestError> {
    match first {
        Some(e) if out.is_empty() => Err(e),
        _ => Ok(out),
    }
}

/// Every table's stats.
pub async fn lake_stats(lake: &Url) -> Result<Vec<TableStats>, IngestError> {
    let (mut out, mut first) = (Vec::new(), None);
    for table in ALL_TABLES.iter() {
        match open(lake, table).await {
            Err(e) => missing(e, &mut first)?,
            Ok(delta) => out.push(table_stats(&delta, table).await?),
        }
    }
    found(out, first)
}

/// Compacts, checkpoints and vacuums every table of the lake.
pub async fn maintain(
    lake: &Url,
    options: &MaintainOptions,
) -> Result<Vec<Maintained>, IngestError> {
    maintain_tables(lake, options, ALL_TABLES.as_slice()).await
}

/// Compacts, checkpoints and vacuums the given tables (a worker: its register's).
pub async fn maintain_tables(
    lake: &Url,
    options: &MaintainOptions,
    tables: &[&'static Table],
) -> Result<Vec<Maintained>, IngestError> {
    maintain_each(lake, options, tables, Tombstones::Keep).await
}

/// What a maintained table's checkpoint keeps of the files compaction replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tombstones {
    /// Their `remove` actions, for `delta.deletedFileRetentionDuration` (a week unless set):
    /// VACUUM keeps a file that long after its removal.
    Keep,
    /// None, right after a first seed: the seed wrote a file per partition per commit (11 220
    /// for a national `person`), and a checkpoint holding a tombstone for each made every
    /// reader's opening of the table about 35 ms slower for a week. VACUUM keeps a file no
    /// tombstone names until it is older than the retention, so each seed file is kept for the
    /// retention less its age; time travel to the seed's versions reads their commits, not the
    /// checkpoint. Only if every file was written within half the retention (a seed resumed
    /// after a long stop keeps its tombstones).
    ForgetSeeded,
}

/// Maintains each table in turn, keeping `tombstones` of what compaction replaced; a commit that
/// lost a race is tried again, and a missing table is skipped unless every table is.
pub async fn maintain_each(
    lake: &Url,
    options: &MaintainOptions,
    tables: &[&'static Table],
    tombstones: Tombstones,
) -> Result<Vec<Maintained>, IngestError> {
    let (mut out, mut first) = (Vec::new(), None);
    for table in tables.iter().copied() {
        // A commit that loses a race to a running worker's is tried again from the new
        // version (the worker's rewrite may have replaced the files being compacted).
        let mut tries = 0;
        loop {
            tries += 1;
            match maintain_table(lake, table, options, tombstones).await {
                Err(e) if e.missing_table().is_some() => {
                    missing(e, &mut first)?;
                    break;
                }
                Err(e) if tries < 5 && e.kind() == crate::error::ErrorKind::Retryable => {
                    tracing::warn!(table = table.name, error = %e, "maintenance lost a race; trying again");
                    tokio::time::sleep(Duration::from_millis(500 * tries)).await;
                }
                other => {
                    out.push(other?);
                    break;
                }
            }
        }
    }
    found(out, first)
}

async fn maintain_table(
    lake: &Url,
    table: &'static Table,
    options: &MaintainOptions,
    tombstones: Tombstones,
) -> Result<Maintained, IngestError> {
    let url = table_url(lake, table);
    let err = lake_error(table, &url);
    let delta = open(lake, table).await?;
    let delta = tombstones_kept_for(delta, options.vacuum_retention, &err).await?;
    let before = table_stats(&delta, table).await?;
    let forget = match tombstones {
        Tombstones::Keep => false,
        Tombstones::ForgetSeeded => {
            let young = written_within(&delta, options.vacuum_retention / 2);
            if !young {
                info!(
                    table = table.name,
                    "the seed's first files are older than half the VACUUM retention: keeping their tombstones"
                );
            }
            young
        }
    };
    let target =
        NonZeroU64::new(options.target_file_bytes.max(1024 * 1024)).expect("at least a megabyte");
    // A table changed by deletion vector is Z-ordered whatever `zorder` says: rewriting a
    // partition whole is how its vectors are folded into new files, and bin-packing
    // compaction leaves a large file as it is.
    let zorder =
        (options.zorder || crate::deletion::enabled(&delta)) && !table.cluster_columns.is_empty();
    // Z-order rewrites every file of the partitions it is given: give it only the partitions
    // holding more than one file or a file with a deletion vector (one file per partition
    // is already clustered).
    let crowded = if zorder {
        crowded_partitions(&delta, table)
    } else {
        Vec::new()
    };
    let props = crate::files::writer_properties(table, crate::files::Written::ToStay);
    let (delta, metrics) = match (zorder, table.partition_columns.first()) {
        (true, Some(column)) if !crowded.is_empty() => {
            let values: Vec<&str> = crowded.iter().map(String::as_str).collect();
            let filters = [(*column, FilterOp::In, FilterValue::Set(values))];
            let columns = table
                .cluster_columns
                .iter()
                .map(|c| c.to_string())
                .collect();
            delta
                .optimize()
                .with_type(OptimizeType::ZOrder(columns))
                .with_filters(&filters)
                .with_writer_properties(props)
                .with_target_size(target)
                .await
                .map_err(&err)?
        }
        (true, Some(_)) => (delta, Default::default()),
        _ if before.files > 1 => delta
            .optimize()
            .with_type(OptimizeType::Compact)
            .with_writer_properties(props)
            .with_target_size(target)
            .await
            .map_err(&err)?,
        _ => (delta, Default::default()),
    };
    let delta = if forget {
        // The kernel's checkpoint leaves out tombstones older than the property: zero for one
        // checkpoint, then the lake's VACUUM retention again (also when the checkpoint
        // failed), checkpointed again below so that a reader replays no commit.
        let zeroed = set_tombstone_retention(delta, Duration::ZERO, &err).await?;
        let checkpointed = deltalake::checkpoints::create_checkpoint(&zeroed, None)
            .await
            .map_err(&err);
        let restored = set_tombstone_retention(zeroed, options.vacuum_retention, &err).await?;
        checkpointed?;
        restored
    } else {
        delta
    };
    deltalake::checkpoints::create_checkpoint(&delta, None)
        .await
        .map_err(&err)?;
    deltalake::checkpoints::cleanup_metadata(&delta, None)
        .await
        .map_err(&err)?;
    let retention =
        chrono::Duration::from_std(options.vacuum_retention).unwrap_or(chrono::Duration::MAX);
    let (delta, vacuumed) = delta
        .vacuum()
        .with_retention_period(retention)
        .with_enforce_retention_duration(false)
        // Also files no commit references (a commit that failed or was killed after writing
        // them), once they are older than the retention.
        .with_mode(VacuumMode::Full)
        .await
        .map_err(&err)?;
    let after = table_stats(&delta, table).await?;
    info!(
        table = table.name,
        files_before = before.files,
        files_after = after.files,
        bytes_before = before.bytes,
        bytes_after = after.bytes,
        files_vacuumed = vacuumed.files_deleted.len(),
        "maintained"
    );
    Ok(Maintained {
        before,
        after,
        files_removed: metrics.num_files_removed,
        files_added: metrics.num_files_added,
        files_vacuumed: vacuumed.files_deleted.len(),
    })
}
