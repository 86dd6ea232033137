//! Applying a plan's [`Change`]s to a lake table in one commit, by the table's kind, key,
//! partitions and withheld columns ([`schemas::tables::Table`]): the same code for every
//! register.
//!
//! Changes that only add rows are appended. The others are one Delta MERGE on the table's key
//! whose source rows carry the change's name in a `merge_kind` column. The MERGE reads and
//! rewrites only the partitions that hold these entities, before and after, so that an entity
//! whose partition value was corrected (a person's birth year) moves and is never there twice.

use std::collections::BTreeSet;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use deltalake::DeltaTableError;
use deltalake::datafusion::prelude::{SessionContext, lit};
use deltalake::datafusion::scalar::ScalarValue;
use deltalake::operations::merge::{InsertBuilder, UpdateBuilder};
use schemas::tables::{Table, TableKind};
use transform::change::Change;

use crate::IngestError;
use crate::commit::{Commit, lake_error};
use crate::lake::Lake;

/// The tag of a MERGE source row that is added when its key is not matched.
const INSERT: &str = "insert";

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
        self.merge(table, &changes, txns).await
    }

    async fn merge(
        &mut self,
        table: &'static Table,
        changes: &[Change],
        txns: &[(&str, i64)],
    ) -> Result<(), IngestError> {
        let delta = self.table(table).clone();
        let commit = Commit::new(table, self.url(), delta.version(), txns);
        let err = |e: DeltaTableError| commit.error(e);
        let tagged: Vec<RecordBatch> = changes
            .iter()
            .map(|c| with_kind(c.rows(), tag(c)))
            .collect::<Result<_, _>>()
            .map_err(|e| err(e.into()))?;
        // The partitions to look in: those of every row that may match, and those where the
        // table holds these keys now.
        let matching: Vec<RecordBatch> = changes
            .iter()
            .zip(&tagged)
            .filter(|(c, _)| !(table.kind == TableKind::History && c.only_adds()))
            .map(|(_, b)| b.clone())
            .collect();
        let partitions = self.partitions_of(table, &matching).await?;
        let source = SessionContext::new()
            .read_batches(tagged)
            .map_err(|e| err(e.into()))?;
        let columns: Vec<String> = table
            .schema
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        let mut predicate = table
            .key
            .iter()
            .map(|k| format!("target.{k} = source.{k}"))
            .collect::<Vec<_>>()
            .join(" AND ");
        if let Some(restriction) = partitions {
            predicate.push_str(&format!(" AND {restriction}"));
        }
        if table.kind == TableKind::History {
            predicate.push_str(&format!(
                " AND source.merge_kind <> '{INSERT}' \
                 AND (source.merge_kind IN ('scrub', 'withhold') OR target.valid_to IS NULL)"
            ));
        }
        let builder = delta
            .clone()
            .merge(source, predicate.as_str())
            .with_source_alias("source")
            .with_target_alias("target")
            .with_commit_properties(commit.properties());
        let builder = match table.kind {
            TableKind::History => builder
                .when_matched_update(|u| {
                    let u = u
                        .predicate("source.merge_kind = 'scrub'")
                        .update("valid_to", "COALESCE(target.valid_to, source.valid_to)");
                    withhold(u, table, false)
                })
                .map_err(&err)?
                .when_matched_update(|u| {
                    withhold(u.predicate("source.merge_kind = 'withhold'"), table, false)
                })
                .map_err(&err)?
                .when_matched_update(|u| u.update("valid_to", "source.valid_to"))
                .map_err(&err)?,
            TableKind::Current | TableKind::Log => builder
                .when_matched_update(|u| {
                    withhold(u.predicate("source.merge_kind = 'withhold'"), table, true)
                })
                .map_err(&err)?
                .when_matched_delete(|d| d.predicate("source.merge_kind = 'remove'"))
                .map_err(&err)?
                .when_matched_update(|u| {
                    columns.iter().fold(
                        u.predicate(format!("source.merge_kind = '{INSERT}'").as_str()),
                        |u, c| u.update(c.as_str(), format!("source.{c}").as_str()),
                    )
                })
                .map_err(&err)?,
        };
        let outcome = builder
            .when_not_matched_insert(|i| insert_from_source(i, &columns))
            .map_err(&err)?
            .await
            .map(|(updated, metrics)| {
                tracing::debug!(
                    table = table.name,
                    inserted = metrics.num_target_rows_inserted,
                    updated = metrics.num_target_rows_updated,
                    deleted = metrics.num_target_rows_deleted,
                    files_rewritten = metrics.num_target_files_removed,
                    "merged"
                );
                updated
            });
        let updated = commit.settle(outcome, &delta).await?;
        self.install(table, updated);
        Ok(())
    }

    /// A predicate restricting a MERGE to the partitions of `rows` and those where the table
    /// holds their keys (`None`: the table is not partitioned).
    async fn partitions_of(
        &self,
        table: &'static Table,
        rows: &[RecordBatch],
    ) -> Result<Option<String>, IngestError> {
        let [column] = table.partition_columns else {
            return Ok(None);
        };
        let err = lake_error(table, self.url());
        let mut values = BTreeSet::new();
        for b in rows {
            values.extend(literals(b, column).map_err(|e| err(e.into()))?);
        }
        let delta = self.table(table);
        let rows: Vec<&RecordBatch> = rows.iter().filter(|b| b.num_rows() > 0).collect();
        if !rows.is_empty() && delta.snapshot().is_ok_and(|s| s.log_data().num_files() > 0) {
            let ctx = SessionContext::new();
            let provider = delta.table_provider().await.map_err(|e| err(e.into()))?;
            ctx.register_table("target", provider)
                .map_err(|e| err(e.into()))?;
            let keys: Vec<RecordBatch> = rows
                .iter()
                .map(|b| {
                    let at: Vec<usize> = table
                        .key
                        .iter()
                        .map(|k| b.schema().index_of(k))
                        .collect::<Result<_, _>>()?;
                    b.project(&at)
                })
                .collect::<Result<_, _>>()
                .map_err(|e| err(e.into()))?;
            let keys = ctx.read_batches(keys).map_err(|e| err(e.into()))?;
            ctx.register_table("keys", keys.into_view())
                .map_err(|e| err(e.into()))?;
            let on = table
                .key
                .iter()
                .map(|k| format!("t.{k} = keys.{k}"))
                .collect::<Vec<_>>()
                .join(" AND ");
            let found = ctx
                .sql(&format!(
                    "SELECT DISTINCT t.{column} FROM target t JOIN keys ON {on}"
                ))
                .await
                .map_err(|e| err(e.into()))?
                .collect()
                .await
                .map_err(|e| err(e.into()))?;
            for b in &found {
                values.extend(literals(b, column).map_err(|e| err(e.into()))?);
            }
        }
        // No value matches nothing: `IN (NULL)` is never true.
        let list = if values.is_empty() {
            "NULL".to_owned()
        } else {
            values.into_iter().collect::<Vec<_>>().join(", ")
        };
        Ok(Some(format!("target.{column} IN ({list})")))
    }
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

/// A change's tag in the MERGE source: every change that adds rows is an insert.
fn tag(change: &Change) -> &'static str {
    match change {
        Change::Append(_) | Change::Insert(_) | Change::Upsert(_) => INSERT,
        other => other.name(),
    }
}

/// The insert of a MERGE source row tagged as an insert, with every column of the table.
fn insert_from_source(i: InsertBuilder, columns: &[String]) -> InsertBuilder {
    columns.iter().fold(
        i.predicate(format!("source.merge_kind = '{INSERT}'").as_str()),
        |i, c| i.set(c.as_str(), format!("source.{c}").as_str()),
    )
}

/// An update nulling the table's withheld columns and, with `sets`, setting its
/// `withhold_sets` columns from the source row.
fn withhold(u: UpdateBuilder, table: &Table, sets: bool) -> UpdateBuilder {
    let u = if sets {
        table
            .withhold_sets
            .iter()
            .fold(u, |u, c| u.update(*c, format!("source.{c}").as_str()))
    } else {
        u
    };
    table.withheld_columns.iter().fold(u, |u, c| {
        let null = table
            .schema
            .field_with_name(c)
            .ok()
            .and_then(|f| ScalarValue::try_from(f.data_type()).ok())
            .unwrap_or(ScalarValue::Null);
        u.update(*c, lit(null))
    })
}

/// The distinct non-null values of a column as SQL literals (quotes doubled inside quotes).
fn literals(
    batch: &RecordBatch,
    column: &str,
) -> Result<BTreeSet<String>, arrow::error::ArrowError> {
    let Some(values) = batch.column_by_name(column) else {
        return Ok(BTreeSet::new());
    };
    // Integers as they are; anything else (text, dates) as a quoted literal, which DataFusion
    // coerces to the column's type.
    let quoted = !values.data_type().is_integer();
    let text = arrow::compute::cast(values, &DataType::Utf8)?;
    let text = text
        .as_any()
        .downcast_ref::<StringArray>()
        .expect("cast to Utf8 gives a StringArray");
    Ok((0..text.len())
        .filter(|&i| !text.is_null(i))
        .map(|i| {
            let v = text.value(i);
            if quoted {
                format!("'{}'", v.replace('\'', "''"))
            } else {
                v.to_owned()
            }
        })
        .collect())
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
