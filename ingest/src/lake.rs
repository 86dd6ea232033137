//! The lake: one Delta table per [`schemas::tables::Table`] under the lake URL.
//!
//! Every commit carries application transactions (`txn` actions) recording how far the table
//! has applied each source, in the same atomic commit as the rows. [`Lake::position`] reads them
//! back, so a restart resumes exactly after what is durable, table by table.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use deltalake::datafusion::prelude::{SessionContext, lit};
use deltalake::datafusion::scalar::ScalarValue;
use deltalake::kernel::StructType;
use deltalake::kernel::engine::arrow_conversion::TryIntoKernel as _;
use deltalake::kernel::transaction::CommitBuilder;
use deltalake::operations::merge::{InsertBuilder, UpdateBuilder};
use deltalake::protocol::{DeltaOperation, SaveMode};
use deltalake::{DeltaTable, DeltaTableError};
use schemas::tables::{ADDRESS_COLUMNS, ALL_TABLES, PERSON, PERSON_HISTORY, Table};
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

/// The open lake tables.
pub struct Lake {
    url: Url,
    tables: HashMap<&'static str, DeltaTable>,
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
        let mut tables = HashMap::new();
        for table in ALL_TABLES.iter() {
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
                delta = delta
                    .create()
                    .with_table_name(table.name)
                    .with_comment(table.description)
                    .with_columns(schema.fields().cloned())
                    .with_partition_columns(table.partition_columns.iter().copied())
                    .await
                    .map_err(&err)?;
                info!(table = table.name, url = %location, "created lake table");
            }
            tables.insert(table.name, delta);
        }
        Ok(Self {
            url: url.clone(),
            tables,
        })
    }

    /// Reads what other writers (the worker, for the publisher) committed since the tables were
    /// opened or last refreshed: only the new log entries.
    pub async fn refresh(&mut self) -> Result<(), IngestError> {
        for table in ALL_TABLES.iter() {
            let err = lake_error(table, &self.url);
            if let Some(delta) = self.tables.get_mut(table.name) {
                delta.update_incremental(None).await.map_err(err)?;
            }
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

    /// A DataFusion session over the given tables as they were last read.
    pub async fn session(&self, tables: &[&'static Table]) -> Result<SessionContext, IngestError> {
        let ctx = SessionContext::new();
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

    fn table(&self, table: &'static Table) -> &DeltaTable {
        self.tables
            .get(table.name)
            .expect("every table is opened in Lake::open")
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
        let batches: Vec<RecordBatch> = batch.into_iter().filter(|b| b.num_rows() > 0).collect();
        if batches.is_empty() {
            return self.mark(table, txns).await;
        }
        let delta = self.table(table).clone();
        let commit = Commit::new(table, &self.url, delta.version(), txns);
        let outcome = delta
            .clone()
            .write(batches)
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
        let outcome = match committed {
            Ok(_) => {
                let mut updated = delta.clone();
                updated.update_incremental(None).await.map(|()| updated)
            }
            Err(e) => Err(e),
        };
        let updated = commit.settle(outcome, &delta).await?;
        self.tables.insert(table.name, updated);
        Ok(())
    }

    /// The birth-year partitions where a table holds rows of the persons in `batch` (its
    /// `person_id` column), and the batch's own years: what a MERGE of the batch must look in,
    /// so that a person whose birth year was corrected is found in the old partition.
    async fn partitions_of(
        &self,
        table: &'static Table,
        batch: &RecordBatch,
    ) -> Result<String, IngestError> {
        let err = lake_error(table, &self.url);
        let mut years = batch_years(batch);
        let delta = self.table(table);
        if delta.snapshot().is_ok_and(|s| s.log_data().num_files() > 0) {
            let ctx = SessionContext::new();
            let provider = delta.table_provider().await.map_err(|e| err(e.into()))?;
            ctx.register_table("target", provider)
                .map_err(|e| err(e.into()))?;
            let ids = batch
                .project(&[batch
                    .schema()
                    .index_of("person_id")
                    .map_err(|e| err(e.into()))?])
                .map_err(|e| err(e.into()))?;
            ctx.register_batch("ids", ids).map_err(|e| err(e.into()))?;
            let found = ctx
                .sql("SELECT DISTINCT t.birth_year FROM target t JOIN ids ON t.person_id = ids.person_id")
                .await
                .map_err(|e| err(e.into()))?
                .collect()
                .await
                .map_err(|e| err(e.into()))?;
            for b in &found {
                years.extend(batch_years(b));
            }
        }
        Ok(year_list(&years))
    }

    /// Upserts `person` rows (one per person) and withholds the address of the persons in
    /// `withholds` (rows holding their id, protection `ukjent` and the sequence that failed;
    /// a person the table does not hold is left out), and records the transactions, in one
    /// commit. Only the birth-year partitions that hold these persons, before and after, are
    /// read and rewritten; a person whose birth year changed moves to the new partition.
    pub async fn upsert_persons(
        &mut self,
        batch: RecordBatch,
        withholds: RecordBatch,
        txns: &[(&str, i64)],
    ) -> Result<(), IngestError> {
        let delta = self.table(&PERSON).clone();
        let commit = Commit::new(&PERSON, &self.url, delta.version(), txns);
        let err = |e: DeltaTableError| commit.error(e);
        let tagged =
            tagged([(batch, "upsert"), (withholds, "withhold")]).map_err(|e| err(e.into()))?;
        if tagged.is_empty() {
            return self.append(&PERSON, None, txns).await;
        }
        let source = arrow::compute::concat_batches(&tagged[0].schema(), &tagged)
            .map_err(|e| err(e.into()))?;
        let years = self.partitions_of(&PERSON, &source).await?;
        let ctx = SessionContext::new();
        let source = ctx.read_batch(source).map_err(|e| err(e.into()))?;
        let columns: Vec<String> = PERSON
            .schema
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        let outcome = delta
            .clone()
            .merge(
                source,
                format!("target.person_id = source.person_id AND target.birth_year IN ({years})")
                    .as_str(),
            )
            .with_source_alias("source")
            .with_target_alias("target")
            .with_commit_properties(commit.properties())
            .when_matched_update(|u| {
                let u = u
                    .predicate("source.merge_kind = 'withhold'")
                    .update("address_protection", "source.address_protection")
                    .update("last_sequence", "source.last_sequence")
                    .update("updated_at", "source.updated_at");
                withhold_address(u)
            })
            .map_err(&err)?
            .when_matched_update(|u| {
                columns.iter().fold(u, |u, c| {
                    u.update(c.as_str(), format!("source.{c}").as_str())
                })
            })
            .map_err(&err)?
            .when_not_matched_insert(|i| insert_from_source(i, "upsert", &columns))
            .map_err(&err)?
            .await
            .map(|(updated, metrics)| {
                tracing::debug!(
                    table = PERSON.name,
                    inserted = metrics.num_target_rows_inserted,
                    updated = metrics.num_target_rows_updated,
                    files_rewritten = metrics.num_target_files_removed,
                    "merged"
                );
                updated
            });
        let updated = commit.settle(outcome, &delta).await?;
        self.tables.insert(PERSON.name, updated);
        Ok(())
    }

    /// Applies history: `closes` end the open version of their person at their `valid_to`,
    /// `scrubs` withhold every address of their person in every version (strengt fortrolig) and
    /// end the open one, `withholds` withhold every address of their person in every version
    /// and end nothing, `inserts` add versions. One commit. The MERGE looks in every partition
    /// that holds a version of these persons.
    pub async fn apply_history(
        &mut self,
        closes: RecordBatch,
        scrubs: RecordBatch,
        withholds: RecordBatch,
        inserts: RecordBatch,
        txns: &[(&str, i64)],
    ) -> Result<(), IngestError> {
        let delta = self.table(&PERSON_HISTORY).clone();
        let commit = Commit::new(&PERSON_HISTORY, &self.url, delta.version(), txns);
        let err = |e: DeltaTableError| commit.error(e);
        let tagged = tagged([
            (closes, "close"),
            (scrubs, "scrub"),
            (withholds, "withhold"),
            (inserts, "insert"),
        ])
        .map_err(|e| err(e.into()))?;
        if tagged.is_empty() {
            return self.append(&PERSON_HISTORY, None, txns).await;
        }
        if tagged.iter().all(|b| kind_of(b) == "insert") {
            let plain: Vec<RecordBatch> = tagged
                .iter()
                .map(|b| b.project(&(0..b.num_columns() - 1).collect::<Vec<_>>()))
                .collect::<Result<_, _>>()
                .map_err(|e| err(e.into()))?;
            let outcome = delta
                .clone()
                .write(plain)
                .with_commit_properties(commit.properties())
                .await;
            let updated = commit.settle(outcome, &delta).await?;
            self.tables.insert(PERSON_HISTORY.name, updated);
            return Ok(());
        }
        let ctx = SessionContext::new();
        let changed: Vec<RecordBatch> = tagged
            .iter()
            .filter(|b| kind_of(b) != "insert")
            .cloned()
            .collect();
        let changed = arrow::compute::concat_batches(&tagged[0].schema(), &changed)
            .map_err(|e| err(e.into()))?;
        let years = self.partitions_of(&PERSON_HISTORY, &changed).await?;
        let source = ctx.read_batches(tagged).map_err(|e| err(e.into()))?;
        let columns: Vec<String> = PERSON_HISTORY
            .schema
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        let predicate = format!(
            "target.person_id = source.person_id AND source.merge_kind <> 'insert' \
             AND (source.merge_kind IN ('scrub', 'withhold') OR target.valid_to IS NULL) \
             AND target.birth_year IN ({years})"
        );
        let outcome = delta
            .clone()
            .merge(source, predicate.as_str())
            .with_source_alias("source")
            .with_target_alias("target")
            .with_commit_properties(commit.properties())
            .when_matched_update(|u| {
                let u = u
                    .predicate("source.merge_kind = 'scrub'")
                    .update("valid_to", "COALESCE(target.valid_to, source.valid_to)");
                withhold_address(u)
            })
            .map_err(&err)?
            .when_matched_update(|u| {
                withhold_address(u.predicate("source.merge_kind = 'withhold'"))
            })
            .map_err(&err)?
            .when_matched_update(|u| u.update("valid_to", "source.valid_to"))
            .map_err(&err)?
            .when_not_matched_insert(|i| insert_from_source(i, "insert", &columns))
            .map_err(&err)?
            .await
            .map(|(updated, _)| updated);
        let updated = commit.settle(outcome, &delta).await?;
        self.tables.insert(PERSON_HISTORY.name, updated);
        Ok(())
    }

    /// The lake's base URL.
    pub fn url(&self) -> &Url {
        &self.url
    }
}

/// The insert of a MERGE source row of `kind` with every column of the table.
fn insert_from_source(i: InsertBuilder, kind: &str, columns: &[String]) -> InsertBuilder {
    columns.iter().fold(
        i.predicate(format!("source.merge_kind = '{kind}'").as_str()),
        |i, c| i.set(c.as_str(), format!("source.{c}").as_str()),
    )
}

/// An update setting every address column (and the municipality) to null.
fn withhold_address(u: UpdateBuilder) -> UpdateBuilder {
    ADDRESS_COLUMNS
        .iter()
        .fold(u, |u, c| u.update(*c, lit(null_of(c))))
}

/// A null of an address column's type.
fn null_of(column: &str) -> ScalarValue {
    if column == "moved_in_date" {
        ScalarValue::Date32(None)
    } else {
        ScalarValue::Utf8(None)
    }
}

/// The distinct birth years of a batch.
fn batch_years(batch: &RecordBatch) -> std::collections::BTreeSet<i32> {
    batch
        .column_by_name("birth_year")
        .and_then(|c| c.as_any().downcast_ref::<arrow::array::Int32Array>())
        .map(|a| a.iter().flatten().collect())
        .unwrap_or_default()
}

/// Years as a SQL list (`NULL` for none, which matches nothing).
fn year_list(years: &std::collections::BTreeSet<i32>) -> String {
    if years.is_empty() {
        return "NULL".into();
    }
    years
        .iter()
        .map(i32::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The non-empty batches of a MERGE source, each with its `merge_kind` column.
fn tagged<const N: usize>(
    batches: [(RecordBatch, &str); N],
) -> Result<Vec<RecordBatch>, arrow::error::ArrowError> {
    batches
        .into_iter()
        .filter(|(b, _)| b.num_rows() > 0)
        .map(|(b, kind)| with_kind(b, kind))
        .collect()
}

fn with_kind(batch: RecordBatch, kind: &str) -> Result<RecordBatch, arrow::error::ArrowError> {
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

fn kind_of(batch: &RecordBatch) -> String {
    batch
        .column(batch.num_columns() - 1)
        .as_any()
        .downcast_ref::<StringArray>()
        .map(|a| a.value(0).to_owned())
        .unwrap_or_default()
}
