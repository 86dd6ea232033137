//! Applying a plan's [`Change`]s to a lake table in one commit, by the table's kind, key,
//! partitions and withheld columns ([`schemas::tables::Table`]): the same code for every
//! register.
//!
//! Changes that only add rows are appended. The others rewrite, copy-on-write, only the data
//! files that hold a key the changes name, in one pass each:
//!
//! 1. one scan of the key columns of every file finds the files holding those keys (in any
//!    partition, so an entity whose partition value was corrected moves and is never there
//!    twice);
//! 2. those files are read once, joined to the changes by key (the changes are the hash
//!    table; the files stream past it), and written again with the changed rows changed, the
//!    replaced and removed rows left out ([`changed_sql`]), in groups of files (two groups
//!    at once, each with its own writer), and the new rows added ([`added_sql`]);
//! 3. one commit removes the files read and adds the files written, with the positions.
//!
//! This is a Delta MERGE without its general machinery (a CASE per column per clause, the
//! full outer join and its bookkeeping), which cost about 15 s per million rows whatever the
//! commit changed: during a catch-up, when a batch of random persons touches every file, the
//! rewrite is what a commit costs. The commit is recorded as a MERGE that read the whole table,
//! so maintenance compacting the same files meanwhile is a conflict, not rebased over.

use std::collections::HashMap;
use std::num::NonZeroU64;
use std::sync::Arc;
use std::time::Instant;

use arrow::array::{ArrayRef, AsArray, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use deltalake::datafile::writer::{DeltaWriter, WriterConfig};
use deltalake::datafusion::error::DataFusionError;
use deltalake::datafusion::prelude::{SessionConfig, SessionContext};
use deltalake::kernel::Action;
use deltalake::kernel::transaction::CommitBuilder;
use deltalake::operations::write::WriterStatsConfig;
use deltalake::protocol::DeltaOperation;
use deltalake::table::state::DeltaTableState;
use deltalake::{DeltaTable, DeltaTableError};
use futures::StreamExt as _;
use schemas::tables::{Table, TableKind};
use tracing::Instrument as _;
use transform::change::Change;

use crate::IngestError;
use crate::commit::{Commit, lake_error};
use crate::lake::Lake;

/// The tag of a change's rows that are added (and, in current state, replace the row with
/// their key).
pub(crate) const INSERT: &str = "insert";
/// The column of a scan naming each row's data file.
const FILE_COLUMN: &str = "regsync_file";
/// Data files are rolled at this size while rewriting.
const TARGET_FILE_BYTES: u64 = 128 * 1024 * 1024;
/// Files read and written by one writer: it holds what it writes until it is closed, so this
/// and [`WRITERS_AT_ONCE`] bound a rewrite's memory (each file of a partitioned table is one
/// partition's), beside one hash table of the changes per writer.
const FILES_PER_WRITER: usize = 16;
/// A table is checkpointed once the rewrites since its last checkpoint name this many files
/// (removed or written). A reader opening the table replays every commit after the last
/// checkpoint, each file action with its statistics: about 30 µs each at national size, where
/// ten catch-up commits (about 4 200 actions) made opening `person` take 130 ms instead of 17.
/// Delta's own interval is 100 commits, whatever they hold. A checkpoint costs a write of
/// every file and tombstone of the table, so it is not taken for every small commit: a
/// catch-up commit names about 420 files (each is checkpointed), a poll at the head a few.
const CHECKPOINT_AFTER_ACTIONS: usize = 250;
/// Writers running at once: one per core of the machine this was sized on (encoding Parquet is
/// most of a rewrite's time, and a writer encodes on one thread). At national size two caught
/// up 18% faster than one for 10% more memory.
const WRITERS_AT_ONCE: usize = 2;

impl Lake {
    /// Applies `changes` to `table` and records the transactions, in one commit. Empty changes
    /// write nothing; the position still moves.
    pub async fn apply_changes(
        &mut self,
        table: &'static Table,
        changes: Vec<Change>,
        txns: &[(&str, i64)],
    ) -> Result<(), IngestError> {
        let changes: Vec<Change> = changes
            .into_iter()
            .filter(|c| c.rows().num_rows() > 0)
            .collect();
        if let Some(wrong) = changes.iter().find(|c| !applies(table.kind, c)) {
            return Err(lake_error(table, self.url())(DeltaTableError::Generic(
                format!(
                    "a change `{}` does not apply to a {:?} table",
                    wrong.name(),
                    table.kind
                ),
            )));
        }
        if changes.iter().all(Change::only_adds) {
            let batches = changes.iter().map(|c| c.rows().clone()).collect();
            return self.append_all(table, batches, txns).await;
        }
        if crate::deletion::by_vector(self.table(table), table, &changes) {
            return self.delete_and_append(table, &changes, txns).await;
        }
        self.rewrite(table, &changes, txns).await
    }

    async fn rewrite(
        &mut self,
        table: &'static Table,
        changes: &[Change],
        txns: &[(&str, i64)],
    ) -> Result<(), IngestError> {
        let started = Instant::now();
        let delta = self.table(table).clone();
        let commit = Commit::new(table, self.url(), delta.version(), txns);
        let err = |e: DeltaTableError| commit.error(e);
        let df = |e: DataFusionError| commit.error(e.into());
        let snapshot = delta.snapshot().map_err(&err)?.clone();
        let ctx = source_session(table, &delta, changes, &commit).await?;
        let session = Arc::new(ctx.state());

        // 1. The files holding a key the changes match.
        let files: HashMap<String, deltalake::kernel::Remove> = snapshot
            .log_data()
            .iter()
            .map(|f| (f.object_store_path().to_string(), f.remove_action(true)))
            .collect();
        let mut touched: Vec<String> = Vec::new();
        if !files.is_empty() {
            let provider = delta
                .table_provider()
                .with_session(session.clone())
                .with_file_column(FILE_COLUMN)
                .build()
                .await
                .map_err(df)?;
            ctx.register_table("target_files", Arc::new(provider))
                .map_err(df)?;
            let found = ctx
                .sql(&touched_sql(table))
                .await
                .map_err(df)?
                .collect()
                .await
                .map_err(df)?;
            for batch in &found {
                let column = arrow::compute::cast(batch.column(0), &DataType::Utf8)
                    .map_err(|e| err(e.into()))?;
                touched.extend(
                    column
                        .as_string::<i32>()
                        .iter()
                        .flatten()
                        .map(str::to_owned),
                );
            }
        }
        // The scan names a file by its URL under the table's root: the log's path, decoded.
        let root = delta.table_url().to_string();
        let removes: Vec<Action> = touched
            .iter()
            .map(|t| {
                let relative = t.strip_prefix(&root).unwrap_or(t);
                deltalake::Path::from_url_path(relative)
                    .ok()
                    .and_then(|p| files.get(p.as_ref()))
                    .map(|remove| Action::Remove(remove.clone()))
                    .ok_or_else(|| {
                        err(DeltaTableError::Generic(format!(
                            "the scan named a data file the log does not hold: {t}"
                        )))
                    })
            })
            .collect::<Result<_, _>>()?;

        // 2. Those files, changed, a group at a time (a writer holds the files it writes until
        //    it is closed), then the new rows.
        let config = writer_config(table, &snapshot);
        touched.sort();
        touched.dedup();
        // At most `WRITERS_AT_ONCE` run, each holding its own files. A failure stops the others
        // (the set aborts what it holds when dropped), and nothing is committed.
        let mut groups = touched
            .chunks(FILES_PER_WRITER)
            .map(|paths| Some(paths.to_vec()))
            .chain([None])
            .enumerate();
        let mut writers = tokio::task::JoinSet::new();
        let (mut adds, mut rows) = (Vec::new(), 0usize);
        loop {
            while writers.len() < WRITERS_AT_ONCE
                && let Some((n, group)) = groups.next()
            {
                let (ctx, delta, session, config) =
                    (ctx.clone(), delta.clone(), session.clone(), config.clone());
                writers.spawn(
                    async move {
                        let sql = match group {
                            Some(paths) => {
                                let provider = delta
                                    .table_provider()
                                    .with_session(session)
                                    .with_file_paths(paths)
                                    .build()
                                    .await?;
                                let name = format!("target_{n}");
                                ctx.register_table(name.as_str(), Arc::new(provider))?;
                                changed_sql(table, &name)
                            }
                            None => added_sql(table),
                        };
                        write_rows(&ctx, &sql, &delta, config, table).await
                    }
                    .in_current_span(),
                );
            }
            let Some(done) = writers.join_next().await else {
                break;
            };
            let (added, n) = done
                .map_err(|e| {
                    err(DeltaTableError::Generic(format!(
                        "a file writer failed: {e}"
                    )))
                })?
                .map_err(&err)?;
            adds.extend(added);
            rows += n;
        }

        // 3. One commit.
        let (removed, added) = (removes.len(), adds.len());
        let mut actions = removes;
        actions.extend(adds.into_iter().map(Action::Add));
        self.commit_changes(table, &commit, &snapshot, &delta, actions)
            .await?;
        tracing::debug!(
            table = table.name,
            files_rewritten = removed,
            files_written = added,
            rows_written = rows,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "changes applied"
        );
        Ok(())
    }

    /// Commits `actions` (the data files a change removed, changed and added) with `commit`'s
    /// positions, checkpoints the table once its commits since the last checkpoint name
    /// enough files, and installs the new version.
    pub(crate) async fn commit_changes(
        &mut self,
        table: &'static Table,
        commit: &Commit,
        snapshot: &DeltaTableState,
        delta: &DeltaTable,
        actions: Vec<Action>,
    ) -> Result<(), IngestError> {
        let files = actions.len();
        let committed = CommitBuilder::from(commit.properties())
            .with_actions(actions)
            .build(
                Some(snapshot),
                delta.log_store(),
                // A MERGE without a predicate reads the whole table: a concurrent commit that
                // added data files (maintenance compacting them, whose adds count although
                // they change no data) is a conflict, retried, never rebased over (which would
                // keep both the compacted and the rewritten copy of a row, and with them an
                // address now withheld). `tests/lake.rs` holds the race to this.
                DeltaOperation::Merge {
                    predicate: None,
                    merge_predicate: Some(on(table, "source", "target")),
                    matched_predicates: Vec::new(),
                    not_matched_predicates: Vec::new(),
                    not_matched_by_source_predicates: Vec::new(),
                },
            )
            .await;
        let outcome = crate::lake::read_after(delta, committed).await;
        let updated = commit.settle(outcome, delta).await?;
        let unchecked = self.unchecked.entry(table.name).or_default();
        *unchecked += files;
        if *unchecked >= CHECKPOINT_AFTER_ACTIONS
            && !crate::maintain::forgetting_tombstones(&updated)
        {
            // The commit is in; a checkpoint only spares readers the replay, so a failed one
            // is not the commit's failure.
            let started = Instant::now();
            match deltalake::checkpoints::create_checkpoint(&updated, None).await {
                Ok(()) => {
                    tracing::debug!(
                        table = table.name,
                        actions = *unchecked,
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        "checkpointed after rewrites"
                    );
                    *unchecked = 0;
                }
                Err(e) => tracing::warn!(
                    table = table.name,
                    error = %e,
                    "no checkpoint after rewrites: readers replay their commits until the next"
                ),
            }
        }
        self.install(table, updated);
        Ok(())
    }
}

/// Refuses changes that name one key twice where the key picks the row to change: which one
/// applies would be a guess.
async fn refuse_repeated_keys(
    table: &'static Table,
    ctx: &SessionContext,
    commit: &Commit,
) -> Result<(), IngestError> {
    let df = |e: DataFusionError| commit.error(e.into());
    let keys = table.key.join(", ");
    // History: a key's new versions are many; what changes its rows is one per key.
    let only = matching(table);
    let repeated = ctx
        .sql(&format!(
            "SELECT {keys} FROM source {only} GROUP BY {keys} HAVING count(*) > 1 LIMIT 10"
        ))
        .await
        .map_err(df)?
        .collect()
        .await
        .map_err(df)?;
    let named_twice: usize = repeated.iter().map(RecordBatch::num_rows).sum();
    if named_twice > 0 {
        // The keys are not named: a person's is an identity number, kept out of logs.
        return Err(commit.error(DeltaTableError::Generic(format!(
            "the changes name a key more than once ({named_twice} keys, up to 10 counted)"
        ))));
    }
    Ok(())
}

/// A session holding `changes` as `source` (each row tagged with its change's kind in
/// `merge_kind`), able to read `delta`'s files; changes naming a key twice are refused.
pub(crate) async fn source_session(
    table: &'static Table,
    delta: &DeltaTable,
    changes: &[Change],
    commit: &Commit,
) -> Result<SessionContext, IngestError> {
    let err = |e: DeltaTableError| commit.error(e);
    let df = |e: DataFusionError| commit.error(e.into());
    // Text is read as it is written (not as views), so the rows go to the writer uncast.
    let ctx = SessionContext::new_with_config(SessionConfig::new().set_bool(
        "datafusion.execution.parquet.schema_force_view_types",
        false,
    ));
    delta
        .update_datafusion_session(&ctx.state())
        .map_err(&err)?;
    let tagged: Vec<RecordBatch> = changes
        .iter()
        .map(|c| with_kind(c.rows(), tag(c)))
        .collect::<Result<_, _>>()
        .map_err(|e| err(e.into()))?;
    let source = ctx.read_batches(tagged).map_err(df)?;
    ctx.register_table("source", source.into_view())
        .map_err(df)?;
    refuse_repeated_keys(table, &ctx, commit).await?;
    Ok(ctx)
}

/// How the worker writes `table`'s data files: its partitions, Parquet properties, file size
/// and the statistics the table's configuration asks for.
pub(crate) fn writer_config(table: &'static Table, snapshot: &DeltaTableState) -> WriterConfig {
    let stats = WriterStatsConfig::from_config(snapshot.snapshot().table_configuration());
    WriterConfig::new(
        table.schema.clone(),
        table
            .partition_columns
            .iter()
            .map(|c| (*c).to_owned())
            .collect(),
        Some(crate::files::writer_properties(
            table,
            crate::files::Written::Often,
        )),
        NonZeroU64::new(TARGET_FILE_BYTES),
        None,
        stats.num_indexed_cols,
        stats.stats_columns,
    )
}

/// Runs `sql` and writes its rows as the table's data files: the files' add actions and the rows.
pub(crate) async fn write_rows(
    ctx: &SessionContext,
    sql: &str,
    delta: &DeltaTable,
    config: WriterConfig,
    table: &'static Table,
) -> Result<(Vec<deltalake::kernel::Add>, usize), DeltaTableError> {
    let mut writer = DeltaWriter::new(delta.log_store().object_store(None), config);
    let mut stream = ctx.sql(sql).await?.execute_stream().await?;
    let mut rows = 0usize;
    while let Some(batch) = stream.next().await {
        let batch = conform(&batch?, &table.schema)?;
        rows += batch.num_rows();
        if batch.num_rows() > 0 {
            writer.write(&batch).await?;
        }
    }
    Ok((writer.close().await?, rows))
}

/// The filter of `source` to the changes that match the table's rows: in history, new versions
/// match nothing; in current state, an upsert replaces the row it matches.
fn matching(table: &Table) -> String {
    match table.kind {
        TableKind::History => format!("WHERE merge_kind <> '{INSERT}'"),
        TableKind::Current | TableKind::Log => String::new(),
    }
}

/// The files of `target_files` holding a key that a change matches.
fn touched_sql(table: &Table) -> String {
    let on = on(table, "s", "t");
    let keys = table.key.join(", ");
    let which = matching(table);
    format!(
        "SELECT DISTINCT t.{FILE_COLUMN} FROM (SELECT DISTINCT {keys} FROM source {which}) s \
         JOIN target_files t ON {on}"
    )
}

/// The rows of the files registered as `target` after the changes in `source`. The changes
/// are the join's left side, so they are what is held in memory; the files stream past.
///
/// Current state: a row whose key is upserted (`insert`) or removed is left out (the upsert's
/// row is added); a withheld key's row gets its withheld columns nulled and its
/// `withhold_sets` columns from the change. History: a close ends the open version
/// (`valid_to` null); a scrub does that and nulls the withheld columns of every version, a
/// withhold only the latter.
pub(crate) fn changed_sql(table: &Table, target: &str) -> String {
    let columns = column_names(table);
    let withheld = |c: &str| table.withheld_columns.contains(&c);
    let (changed, filter): (Vec<String>, String) = match table.kind {
        TableKind::History => (
            columns
                .iter()
                .map(|c| {
                    if *c == "valid_to" {
                        "CASE WHEN s.merge_kind IN ('close', 'scrub') AND t.valid_to IS NULL \
                         THEN s.valid_to ELSE t.valid_to END AS valid_to"
                            .to_owned()
                    } else if withheld(c) {
                        format!(
                            "CASE WHEN s.merge_kind IN ('scrub', 'withhold') THEN NULL \
                             ELSE t.{c} END AS {c}"
                        )
                    } else {
                        format!("t.{c} AS {c}")
                    }
                })
                .collect(),
            String::new(),
        ),
        TableKind::Current | TableKind::Log => (
            columns
                .iter()
                .map(|c| {
                    if withheld(c) {
                        format!(
                            "CASE WHEN s.merge_kind = 'withhold' THEN NULL ELSE t.{c} END AS {c}"
                        )
                    } else if table.withhold_sets.contains(c) {
                        format!(
                            "CASE WHEN s.merge_kind = 'withhold' THEN s.{c} ELSE t.{c} END AS {c}"
                        )
                    } else {
                        format!("t.{c} AS {c}")
                    }
                })
                .collect(),
            "WHERE s.merge_kind IS NULL OR s.merge_kind = 'withhold'".to_owned(),
        ),
    };
    let matching = matching(table);
    format!(
        "SELECT {changed} FROM (SELECT * FROM source {matching}) s RIGHT JOIN {target} t ON {on} \
         {filter}",
        changed = changed.join(", "),
        on = on(table, "s", "t"),
    )
}

/// The rows the changes add: upserted rows and new versions.
pub(crate) fn added_sql(table: &Table) -> String {
    let columns = column_names(table);
    format!(
        "SELECT {} FROM source WHERE merge_kind = '{INSERT}'",
        columns.join(", ")
    )
}

/// The table's column names, in order.
fn column_names(table: &Table) -> Vec<&str> {
    table
        .schema
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect()
}

/// The join condition on the table's key.
fn on(table: &Table, left: &str, right: &str) -> String {
    table
        .key
        .iter()
        .map(|k| format!("{left}.{k} = {right}.{k}"))
        .collect::<Vec<_>>()
        .join(" AND ")
}

/// The batch in the table's schema: its columns by name, cast to the table's types where they
/// differ (a scan reads partition values as dictionaries).
fn conform(
    batch: &RecordBatch,
    schema: &SchemaRef,
) -> Result<RecordBatch, arrow::error::ArrowError> {
    let columns: Vec<ArrayRef> = schema
        .fields()
        .iter()
        .map(|f| {
            let column = batch.column_by_name(f.name()).ok_or_else(|| {
                arrow::error::ArrowError::SchemaError(format!("no column {}", f.name()))
            })?;
            if column.data_type() == f.data_type() {
                Ok(column.clone())
            } else {
                arrow::compute::cast(column, f.data_type())
            }
        })
        .collect::<Result<_, _>>()?;
    RecordBatch::try_new(schema.clone(), columns)
}

/// Whether a change applies to a table of `kind`.
fn applies(kind: TableKind, change: &Change) -> bool {
    match change {
        Change::Append(_) => true,
        Change::Upsert(_) | Change::Remove(_) => kind == TableKind::Current,
        Change::Withhold(_) => kind != TableKind::Log,
        Change::Close(_) | Change::Scrub(_) | Change::Insert(_) => kind == TableKind::History,
    }
}

/// A change's tag in the source: every change that adds rows is an insert.
pub(crate) fn tag(change: &Change) -> &'static str {
    match change {
        Change::Append(_) | Change::Insert(_) | Change::Upsert(_) => INSERT,
        other => other.name(),
    }
}

/// The batch with a `merge_kind` column holding `kind` in every row.
fn with_kind(batch: &RecordBatch, kind: &str) -> Result<RecordBatch, arrow::error::ArrowError> {
    let mut fields: Vec<Field> = batch
        .schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    fields.push(Field::new("merge_kind", DataType::Utf8, false));
    let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
    columns.push(Arc::new(StringArray::from(vec![kind; batch.num_rows()])));
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_closes_only_the_open_version_and_withholds_every_version() {
        let sql = changed_sql(&schemas::tables::PERSON_HISTORY, "target");
        assert!(sql.contains(
            "CASE WHEN s.merge_kind IN ('close', 'scrub') AND t.valid_to IS NULL THEN s.valid_to"
        ));
        for c in schemas::tables::PERSON_HISTORY.withheld_columns {
            assert!(
                sql.contains(&format!(
                    "CASE WHEN s.merge_kind IN ('scrub', 'withhold') THEN NULL ELSE t.{c} END"
                )),
                "{c}"
            );
        }
        // History keeps every row it reads.
        assert!(!sql.contains("WHERE s.merge_kind IS NULL"));
    }

    #[test]
    fn current_state_leaves_out_replaced_and_removed_rows() {
        let sql = changed_sql(&schemas::tables::PERSON, "target");
        assert!(sql.contains("WHERE s.merge_kind IS NULL OR s.merge_kind = 'withhold'"));
        for c in schemas::tables::PERSON.withhold_sets {
            assert!(sql.contains(&format!(
                "CASE WHEN s.merge_kind = 'withhold' THEN s.{c} ELSE t.{c} END"
            )));
        }
    }
}
