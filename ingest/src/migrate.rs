//! A lake written by an earlier version: a table whose columns are not this version's.
//!
//! The Kafka sink's log of published slices (`kafka_sink`) holds a record only; what matters in
//! it is each register's position, in its commits. Its columns changed when the sink became
//! one for every register, so an old `kafka_sink` is rewritten empty with the new columns in
//! one commit that keeps every position. A table that lacks only columns this version added at
//! its end (nullable ones) gains them, in one metadata commit: existing rows read them as null.
//! Any other table whose columns differ stops the start with what differs, instead of failing on
//! its first write.

use arrow::array::RecordBatch;
use deltalake::kernel::engine::arrow_conversion::TryIntoKernel as _;
use deltalake::operations::write::SchemaMode;
use deltalake::protocol::SaveMode;
use deltalake::{DeltaTable, DeltaTableError};
use schemas::tables::{KAFKA_SINK, Table};
use tracing::warn;
use url::Url;

use crate::IngestError;
use crate::commit::{Commit, lake_error};

/// The table as this version can write it: unchanged, migrated, or an error naming the columns.
pub async fn columns_checked(
    table: &'static Table,
    delta: DeltaTable,
    url: &Url,
) -> Result<DeltaTable, IngestError> {
    let err = lake_error(table, url);
    let Ok(snapshot) = delta.snapshot() else {
        return Ok(delta);
    };
    let stored: Vec<String> = snapshot
        .schema()
        .fields()
        .map(|f| f.name().clone())
        .collect();
    let expected: Vec<String> = table
        .schema
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    if stored == expected {
        return Ok(delta);
    }
    let added = &table.schema.fields()[stored.len().min(expected.len())..];
    if expected.starts_with(&stored) && added.iter().all(|f| f.is_nullable()) {
        return add_columns(table, delta, url, added).await;
    }
    if !std::ptr::eq(table, &*KAFKA_SINK) {
        return Err(err(DeltaTableError::Generic(format!(
            "the table has the columns [{}], this version of regsync writes [{}]: it was written by another version",
            stored.join(", "),
            expected.join(", ")
        ))));
    }
    let mut positions = Vec::new();
    for app in schemas::cursor::ALL {
        if let Some(v) = snapshot
            .transaction_version(delta.log_store().as_ref(), app)
            .await
            .map_err(&err)?
        {
            positions.push((*app, v));
        }
    }
    warn!(
        table = table.name,
        columns = %stored.join(", "),
        "the Kafka sink's log has an earlier version's columns: rewriting it empty with this version's, keeping its positions"
    );
    let commit = Commit::new(table, url, delta.version(), &positions);
    let outcome = delta
        .clone()
        .write(vec![RecordBatch::new_empty(table.schema.clone())])
        .with_save_mode(SaveMode::Overwrite)
        .with_schema_mode(SchemaMode::Overwrite)
        .with_commit_properties(commit.properties())
        .await;
    commit.settle(outcome, &delta).await
}

/// Adds `added` (nullable columns at the end of the table's schema) to an earlier version's
/// table.
async fn add_columns(
    table: &'static Table,
    delta: DeltaTable,
    url: &Url,
    added: &[arrow::datatypes::FieldRef],
) -> Result<DeltaTable, IngestError> {
    let err = lake_error(table, url);
    let schema = arrow::datatypes::Schema::new(added.to_vec());
    let kernel: deltalake::kernel::StructType = (&schema)
        .try_into_kernel()
        .map_err(|e| err(DeltaTableError::Generic(e.to_string())))?;
    let names: Vec<&str> = added.iter().map(|f| f.name().as_str()).collect();
    warn!(
        table = table.name,
        columns = %names.join(", "),
        "the table is an earlier version's: adding this version's new columns"
    );
    delta
        .add_columns()
        .with_fields(kernel.fields().cloned().collect::<Vec<_>>())
        .await
        .map_err(err)
}

/// The table with deletion vectors turned on where this version wants them
/// ([`crate::deletion::wanted`]): a table an earlier version created without them would
/// otherwise be rewritten copy-on-write by every commit that changes rows. One commit, which
/// raises the table's protocol to reader version 3 (a Delta reader without deletion vectors can
/// no longer read it). A failure leaves the table as it was, with a warning.
pub async fn deletion_vectors_on(
    table: &'static Table,
    delta: DeltaTable,
    url: &Url,
) -> Result<DeltaTable, IngestError> {
    if !crate::deletion::wanted(table) || crate::deletion::enabled(&delta) {
        return Ok(delta);
    }
    let err = lake_error(table, url);
    let turned = delta
        .clone()
        .set_tbl_properties()
        .with_properties(
            [(crate::deletion::ENABLE.to_owned(), "true".to_owned())]
                .into_iter()
                .collect(),
        )
        .await;
    match turned {
        Ok(delta) => {
            tracing::info!(
                table = table.name,
                "deletion vectors turned on: changed rows are no longer rewritten with their files"
            );
            Ok(delta)
        }
        // Another process turned them on first, or the table stays as it was: its commits
        // that change rows are rewritten copy-on-write, as before.
        Err(e) => {
            let mut delta = delta;
            delta.update_state().await.map_err(&err)?;
            if !crate::deletion::enabled(&delta) {
                tracing::warn!(
                    table = table.name,
                    error = %e,
                    "deletion vectors could not be turned on: changed rows are rewritten with their files"
                );
            }
            Ok(delta)
        }
    }
}
