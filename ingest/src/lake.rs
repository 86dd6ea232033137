//! The lake: one Delta table per [`schemas::tables::Table`] under the lake URL.
//!
//! Every commit carries application transactions (`txn` actions) recording how far the table
//! has applied each source, in the same atomic commit as the rows. [`Lake::position`] reads them
//! back, so a restart resumes exactly after what is durable, table by table.

use std::collections::HashMap;

use arrow::array::RecordBatch;
use deltalake::datafusion::prelude::SessionContext;
use deltalake::kernel::StructType;
use deltalake::kernel::engine::arrow_conversion::TryIntoKernel as _;
use deltalake::kernel::transaction::CommitBuilder;
use deltalake::protocol::{DeltaOperation, SaveMode};
use deltalake::{DeltaTable, DeltaTableError};
use schemas::tables::{ALL_TABLES, Table};
use tracing::info;
use url::Url;

use crate::IngestError;
use crate::commit::{Commit, lake_error};
pub use crate::commit::{explain, is_transient};

/// Turns `file:///x`, `s3://b/p`, `memory://` or a plain path into the lake's base URL.
pub fn lake_url(location: &str) -> Result<Url, String> {
    let url = if location.contains("://") {
        Url::parse(location).map_err(|e| format!("lake URL {location:?}: {e}"))?
    } else {
        let path =
            std::path::absolute(location).map_err(|e| format!("lake path {location:?}: {e}"))?;
        Url::from_directory_path(&path)
            .map_err(|()| format!("lake path {location:?} is not absolute"))?
    };
    if url.scheme() == "file" {
        std::fs::create_dir_all(url.path())
            .map_err(|e| format!("creating lake directory {}: {e}", url.path()))?;
    }
    Ok(url)
}

/// The URL of one table.
pub fn table_url(lake: &Url, table: &Table) -> Url {
    let mut base = lake.clone();
    if !base.path().ends_with('/') {
        base.set_path(&format!("{}/", base.path()));
    }
    base.join(&format!("{}/", table.name))
        .expect("a table name is a valid path segment")
}

/// The memory a session reading the lake may hold for sorts and aggregations before they
/// spill to disk.
pub const SESSION_MEMORY: usize = 512 * 1024 * 1024;

/// A DataFusion session whose memory is bounded by [`SESSION_MEMORY`], spilling to the
/// system's temporary directory beyond it.
fn bounded_session() -> Result<SessionContext, deltalake::datafusion::error::DataFusionError> {
    use deltalake::datafusion::execution::memory_pool::FairSpillPool;
    use deltalake::datafusion::execution::runtime_env::RuntimeEnvBuilder;
    let runtime = RuntimeEnvBuilder::new()
        .with_memory_pool(std::sync::Arc::new(FairSpillPool::new(SESSION_MEMORY)))
        .build_arc()?;
    Ok(SessionContext::new_with_config_rt(
        deltalake::datafusion::prelude::SessionConfig::new(),
        runtime,
    ))
}

/// The table read again after a commit built on it (its log's new entries), or the commit's
/// error.
pub(crate) async fn read_after<T>(
    delta: &DeltaTable,
    committed: Result<T, DeltaTableError>,
) -> Result<DeltaTable, DeltaTableError> {
    committed?;
    let mut updated = delta.clone();
    updated.update_incremental(None).await?;
    Ok(updated)
}

/// The open lake tables.
pub struct Lake {
    url: Url,
    tables: HashMap<&'static str, DeltaTable>,
    /// Per table, the file actions this writer's rewrites committed since it last checkpointed
    /// the table (`merge.rs`): what a reader opening it would replay.
    pub(crate) unchecked: HashMap<&'static str, usize>,
}

/// Whether a live data file of the table (as last read) has a deletion vector.
fn has_vectors(delta: &DeltaTable) -> bool {
    delta.snapshot().is_ok_and(|s| {
        s.log_data()
            .iter()
            .any(|f| f.deletion_vector_descriptor().is_some())
    })
}

impl std::fmt::Debug for Lake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lake")
            .field("url", &self.url.as_str())
            .finish_non_exhaustive()
    }
}

impl Lake {
    /// Opens every table, creating the missing ones (empty, with their schema and partitions).
    pub async fn open(url: &Url) -> Result<Self, IngestError> {
        Self::open_tables(url, ALL_TABLES.as_slice()).await
    }

    /// Opens the given tables, creating the missing ones.
    pub async fn open_tables(url: &Url, opened: &[&'static Table]) -> Result<Self, IngestError> {
        let mut tables = HashMap::new();
        for table in opened.iter().copied() {
            let location = table_url(url, table);
            let err = lake_error(table, &location);
            if location.scheme() == "file" {
                std::fs::create_dir_all(location.path()).map_err(|e| {
                    err(DeltaTableError::Generic(format!(
                        "creating {}: {e}",
                        location.path()
                    )))
                })?;
            }
            let mut delta = DeltaTable::try_from_url(location.clone())
                .await
                .map_err(&err)?;
            if delta.version().is_none() {
                let schema: StructType = table
                    .schema
                    .as_ref()
                    .try_into_kernel()
                    .map_err(|e| err(DeltaTableError::Generic(e.to_string())))?;
                let mut create = delta
                    .create()
                    .with_table_name(table.name)
                    .with_comment(table.description)
                    .with_columns(schema.fields().cloned())
                    .with_partition_columns(table.partition_columns.iter().copied());
                if crate::deletion::wanted(table) {
                    create = create.with_configuration_property(
                        deltalake::TableProperty::EnableDeletionVectors,
                        Some("true"),
                    );
                }
                let created = create.await;
                delta = match created {
                    Ok(created) => {
                        info!(table = table.name, url = %location, "created lake table");
                        created
                    }
                    // Another register's worker created it first (a table they share): open
                    // theirs, checked like any existing table.
                    Err(e) => {
                        let mut theirs = DeltaTable::try_from_url(location.clone())
                            .await
                            .map_err(&err)?;
                        if theirs.load().await.is_err() || theirs.version().is_none() {
                            return Err(err(e));
                        }
                        crate::migrate::columns_checked(table, theirs, url).await?
                    }
                };
            } else {
                delta = crate::migrate::columns_checked(table, delta, url).await?;
                delta = crate::migrate::deletion_vectors_on(table, delta, url).await?;
            }
            tables.insert(table.name, delta);
        }
        Ok(Self {
            url: url.clone(),
            tables,
            unchecked: HashMap::new(),
        })
    }

    /// Reads what other writers (the worker, for the publisher) committed since the tables were
    /// opened or last refreshed: only the new log entries.
    pub async fn refresh(&mut self) -> Result<(), IngestError> {
        for (name, delta) in self.tables.iter_mut() {
            delta
                .update_incremental(None)
                .await
                .map_err(|e| IngestError::Lake {
                    table: name,
                    url: self.url.to_string(),
                    source: Box::new(e),
                })?;
        }
        Ok(())
    }

    /// Reads one table's new log entries.
    pub async fn refresh_table(&mut self, table: &'static Table) -> Result<(), IngestError> {
        let err = lake_error(table, &self.url);
        if let Some(delta) = self.tables.get_mut(table.name) {
            delta.update_incremental(None).await.map_err(err)?;
        }
        Ok(())
    }

    /// The values of one text column of a table, each made a compact key (`None`: left out),
    /// read batch by batch: what a seed that stopped has written already.
    pub async fn column_keys<K: Eq + std::hash::Hash>(
        &self,
        table: &'static Table,
        column: &str,
        key: impl Fn(&str) -> Option<K>,
    ) -> Result<std::collections::HashSet<K>, IngestError> {
        use futures::StreamExt;
        let ctx = self.session(&[table]).await?;
        let read = |e: deltalake::datafusion::error::DataFusionError| {
            IngestError::LakeRead(format!("{}: {e}", table.name))
        };
        let mut stream = ctx
            .sql(&format!("SELECT {column} FROM {}", table.name))
            .await
            .map_err(read)?
            .execute_stream()
            .await
            .map_err(read)?;
        let mut out = std::collections::HashSet::new();
        while let Some(batch) = stream.next().await {
            let batch = batch.map_err(read)?;
            let values =
                arrow::compute::cast(batch.column(0), &arrow::datatypes::DataType::Utf8)
                    .map_err(|e| IngestError::LakeRead(format!("{}.{column}: {e}", table.name)))?;
            let values = arrow::array::AsArray::as_string::<i32>(&values);
            out.extend(values.iter().flatten().filter_map(&key));
        }
        Ok(out)
    }

    /// The earliest value of a timestamp column (`None`: no rows).
    pub async fn earliest(
        &self,
        table: &'static Table,
        column: &str,
    ) -> Result<Option<chrono::DateTime<chrono::Utc>>, IngestError> {
        let ctx = self.session(&[table]).await?;
        let read = |e: deltalake::datafusion::error::DataFusionError| {
            IngestError::LakeRead(format!("{}: {e}", table.name))
        };
        let batches = ctx
            .sql(&format!(
                "SELECT CAST(min({column}) AS BIGINT) AS t FROM {}",
                table.name
            ))
            .await
            .map_err(read)?
            .collect()
            .await
            .map_err(read)?;
        let value = batches.first().and_then(|b| {
            let c = b.column(0);
            arrow::array::AsArray::as_primitive_opt::<arrow::datatypes::Int64Type>(c)
                .filter(|a| !a.is_empty() && arrow::array::Array::is_valid(*a, 0))
                .map(|a| a.value(0))
        });
        Ok(value.and_then(chrono::DateTime::from_timestamp_micros))
    }

    /// A DataFusion session over the given tables as they were last read. Its sorts spill to
    /// disk past [`SESSION_MEMORY`] (the first Kafka slice after a seed orders every person).
    pub async fn session(&self, tables: &[&'static Table]) -> Result<SessionContext, IngestError> {
        let ctx = bounded_session().map_err(|e| IngestError::LakeRead(e.to_string()))?;
        for table in tables {
            let err = lake_error(table, &self.url);
            let delta = self.table(table);
            delta
                .update_datafusion_session(&ctx.state())
                .map_err(&err)?;
            let provider = delta.table_provider().await.map_err(|e| err(e.into()))?;
            ctx.register_table(table.name, provider)
                .map_err(|e| err(e.into()))?;
        }
        Ok(ctx)
    }

    /// A table as last read or written.
    pub(crate) fn table(&self, table: &'static Table) -> &DeltaTable {
        self.tables
            .get(table.name)
            .unwrap_or_else(|| panic!("table {} was not opened with the lake", table.name))
    }

    /// How far a table has applied a source (`None`: nothing yet).
    pub async fn position(
        &self,
        table: &'static Table,
        app_id: &str,
    ) -> Result<Option<i64>, IngestError> {
        let delta = self.table(table);
        let err = lake_error(table, &self.url);
        if delta.version().is_none() {
            return Ok(None);
        }
        // A table with a version that cannot be read is an error, never "nothing applied yet"
        // (which would seed again, appending what is there).
        let state = delta.snapshot().map_err(&err)?;
        state
            .transaction_version(delta.log_store().as_ref(), app_id)
            .await
            .map_err(err)
    }

    /// Appends rows (if any) and records the transactions, in one commit.
    pub async fn append(
        &mut self,
        table: &'static Table,
        batch: Option<RecordBatch>,
        txns: &[(&str, i64)],
    ) -> Result<(), IngestError> {
        self.append_all(table, batch.into_iter().collect(), txns)
            .await
    }

    /// Appends every batch's rows (if any) and records the transactions, in one commit.
    pub async fn append_all(
        &mut self,
        table: &'static Table,
        batches: Vec<RecordBatch>,
        txns: &[(&str, i64)],
    ) -> Result<(), IngestError> {
        let batches: Vec<RecordBatch> = batches.into_iter().filter(|b| b.num_rows() > 0).collect();
        if batches.is_empty() {
            return self.mark(table, txns).await;
        }
        let delta = self.table(table).clone();
        let commit = Commit::new(table, &self.url, delta.version(), txns);
        let outcome = delta
            .clone()
            .write(batches)
            .with_writer_properties(crate::files::writer_properties(
                table,
                crate::files::Written::Often,
            ))
            .with_commit_properties(commit.properties())
            .await;
        let updated = commit.settle(outcome, &delta).await?;
        self.tables.insert(table.name, updated);
        Ok(())
    }

    /// A commit with no rows that only records the transactions: the table has applied the
    /// source this far and had nothing to add.
    pub async fn mark(
        &mut self,
        table: &'static Table,
        txns: &[(&str, i64)],
    ) -> Result<(), IngestError> {
        let delta = self.table(table).clone();
        let commit = Commit::new(table, &self.url, delta.version(), txns);
        let state = delta.snapshot().map_err(|e| commit.error(e))?;
        let operation = DeltaOperation::Write {
            mode: SaveMode::Append,
            partition_by: None,
            predicate: None,
        };
        let committed = CommitBuilder::from(commit.properties())
            .with_actions(Vec::new())
            .build(Some(state), delta.log_store(), operation)
            .await;
        let outcome = read_after(&delta, committed).await;
        let updated = commit.settle(outcome, &delta).await?;
        self.tables.insert(table.name, updated);
        Ok(())
    }

    /// Whether a table holds a file with a deletion vector, as last read (or as this writer
    /// committed it).
    pub fn holds_vectors(&self) -> bool {
        self.tables.values().any(has_vectors)
    }

    /// The tables holding a file with a deletion vector, as last read: those maintenance folds.
    pub fn vectored_tables(&self) -> Vec<&'static Table> {
        ALL_TABLES
            .iter()
            .copied()
            .filter(|t| self.tables.get(t.name).is_some_and(has_vectors))
            .collect()
    }

    /// Takes a table's state after a commit.
    pub(crate) fn install(&mut self, table: &'static Table, updated: DeltaTable) {
        self.tables.insert(table.name, updated);
    }

    /// The lake's base URL.
    pub fn url(&self) -> &Url {
        &self.url
    }
}
