//! A lake table on local disk as a DataFusion table over the Parquet files its Delta log names
//! ([`crate::log`]), pruned by the log's partition values and file statistics before a file is
//! opened, then by each file's row-group statistics and page index as DataFusion reads it.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, FieldRef, Schema, SchemaRef};
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::common::pruning::PrunableStatistics;
use datafusion::common::stats::Precision;
use datafusion::common::{ColumnStatistics, DFSchema, ScalarValue, Statistics};
use datafusion::datasource::TableProvider;
use datafusion::datasource::file_format::FileFormat;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder, ParquetSource};
use datafusion::datasource::table_schema::TableSchema;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown, TableType};
use datafusion::physical_optimizer::pruning::PruningPredicateBuilder;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::empty::EmptyExec;
use deltalake::kernel::StructType;
use deltalake::kernel::engine::arrow_conversion::TryIntoArrow;
use object_store::ObjectMeta;
use object_store::path::Path as StorePath;
use serde_json::Value;
use url::Url;

use crate::log::{ActiveFile, Read, Snapshot};

/// A table read from its log.
#[derive(Debug)]
pub(crate) struct QuickTable {
    /// The table's columns in its schema's order.
    schema: SchemaRef,
    /// Where each of them is in the scan's columns (the file columns, then the partition
    /// columns).
    scanned_at: Vec<usize>,
    /// File columns.
    file_schema: SchemaRef,
    partition_fields: Vec<FieldRef>,
    /// Each active file with its statistics over `schema`.
    files: Vec<(PartitionedFile, Arc<Statistics>)>,
}

/// The table at `url` (a `file://` table root) read from its log, or why it is left to
/// `deltalake`.
pub(crate) fn open(url: &Url) -> Result<QuickTable, String> {
    let dir = url
        .to_file_path()
        .map_err(|()| format!("{url} is not a local path"))?;
    let snapshot = match crate::log::read(&dir) {
        Read::Snapshot(s) => s,
        Read::Declined(reason) => return Err(reason),
    };
    table(url, &dir, snapshot)
}

fn table(url: &Url, dir: &Path, snapshot: Snapshot) -> Result<QuickTable, String> {
    let delta: StructType = serde_json::from_str(&snapshot.schema_string)
        .map_err(|e| format!("schema of {}: {e}", dir.display()))?;
    let arrow: Schema = (&delta)
        .try_into_arrow()
        .map_err(|e| format!("schema of {}: {e}", dir.display()))?;
    // Text as string views, as DataFusion reads Parquet text: a plain string column would be
    // cast from the views it reads, row by row.
    let arrow = Schema::new_with_metadata(
        arrow
            .fields()
            .iter()
            .map(|f| match f.data_type() {
                DataType::Utf8 | DataType::LargeUtf8 => {
                    Arc::new(f.as_ref().clone().with_data_type(DataType::Utf8View))
                }
                _ => Arc::clone(f),
            })
            .collect::<Vec<_>>(),
        arrow.metadata().clone(),
    );
    let is_partition = |f: &FieldRef| snapshot.partition_columns.contains(f.name());
    let file_fields: Vec<FieldRef> = arrow
        .fields()
        .iter()
        .filter(|f| !is_partition(f))
        .cloned()
        .collect();
    let partition_fields = snapshot
        .partition_columns
        .iter()
        .map(|name| {
            arrow
                .field_with_name(name)
                .map(|f| Arc::new(f.clone()))
                .map_err(|e| format!("partition column {name}: {e}"))
        })
        .collect::<Result<Vec<FieldRef>, String>>()?;
    let file_schema = Arc::new(Schema::new(file_fields.clone()));
    let scanned: Vec<FieldRef> = file_fields
        .into_iter()
        .chain(partition_fields.clone())
        .collect();
    let scanned_at = arrow
        .fields()
        .iter()
        .map(|f| {
            scanned
                .iter()
                .position(|s| s.name() == f.name())
                .expect("every column is a file or a partition column")
        })
        .collect();
    let schema = Arc::new(arrow);
    let files = snapshot
        .files
        .iter()
        .map(|f| file(url, f, &schema, &partition_fields))
        .collect::<Result<_, String>>()?;
    Ok(QuickTable {
        schema,
        scanned_at,
        file_schema,
        partition_fields,
        files,
    })
}

/// One active file as DataFusion reads it, and its statistics over `schema`.
fn file(
    url: &Url,
    active: &ActiveFile,
    schema: &SchemaRef,
    partition_fields: &[FieldRef],
) -> Result<(PartitionedFile, Arc<Statistics>), String> {
    let location = url
        .join(&active.path)
        .map_err(|e| format!("file {}: {e}", active.path))?;
    let location = StorePath::from_url_path(location.path())
        .map_err(|e| format!("file {}: {e}", active.path))?;
    let mut file = PartitionedFile::new_from_meta(ObjectMeta {
        location,
        last_modified: chrono::DateTime::UNIX_EPOCH,
        size: active.size,
        e_tag: None,
        version: None,
    });
    let partition = |field: &FieldRef| -> Result<ScalarValue, String> {
        // Delta writes a null partition value as null or as an empty string.
        let text = active.partition_values.get(field.name()).cloned().flatten();
        match text.filter(|t| !t.is_empty()) {
            Some(text) => ScalarValue::try_from_string(text.clone(), field.data_type())
                .map_err(|e| format!("partition value {}={text}: {e}", field.name())),
            None if field.is_nullable() => {
                ScalarValue::try_from(field.data_type()).map_err(|e| e.to_string())
            }
            None => Err(format!(
                "file {}: null value of partition column {}, which is not nullable",
                active.path,
                field.name()
            )),
        }
    };
    file.partition_values = partition_fields
        .iter()
        .map(partition)
        .collect::<Result<_, _>>()?;
    let stats = statistics(active, schema, partition_fields, &file.partition_values);
    Ok((file, Arc::new(stats)))
}

/// The file's bounds per column: the log's `minValues`/`maxValues` (bounds, also when not
/// tight), a partition column's value as both. Used only to choose files, never given to the
/// plan as exact statistics.
fn statistics(
    active: &ActiveFile,
    schema: &SchemaRef,
    partition_fields: &[FieldRef],
    partition_values: &[ScalarValue],
) -> Statistics {
    let parsed: Option<Value> = active
        .stats
        .as_deref()
        .and_then(|s| serde_json::from_str(s).ok());
    let bound = |which: &str, field: &Field| -> Precision<ScalarValue> {
        let value = parsed
            .as_ref()
            .and_then(|p| p.get(which)?.get(field.name()));
        let text = match value {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            Some(Value::Bool(b)) => b.to_string(),
            _ => return unknown(field),
        };
        match field.data_type() {
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Date32 => {}
            DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64 => {}
            DataType::Float32 | DataType::Float64 | DataType::Boolean => {}
            DataType::Timestamp(_, _) => {}
            // Other types (decimals, nested) are not compared by the lists: no bound.
            _ => return unknown(field),
        }
        match ScalarValue::try_from_string(text, field.data_type()) {
            Ok(value) if which == "maxValues" => widened(value).unwrap_or_else(|| unknown(field)),
            Ok(value) => Precision::Exact(value),
            Err(_) => unknown(field),
        }
    };
    let partitions: HashMap<&str, &ScalarValue> = partition_fields
        .iter()
        .map(|f| f.name().as_str())
        .zip(partition_values)
        .collect();
    let column_statistics = schema
        .fields()
        .iter()
        .map(|field| match partitions.get(field.name().as_str()) {
            // A null partition value is a null of the column's type: unknown.
            Some(value) => ColumnStatistics {
                min_value: Precision::Exact((*value).clone()),
                max_value: Precision::Exact((*value).clone()),
                ..ColumnStatistics::new_unknown()
            },
            None => ColumnStatistics {
                min_value: bound("minValues", field),
                max_value: bound("maxValues", field),
                ..ColumnStatistics::new_unknown()
            },
        })
        .collect();
    Statistics {
        num_rows: Precision::Absent,
        total_byte_size: Precision::Absent,
        column_statistics,
    }
}

/// A bound not known for one file: a null of the column's type. DataFusion reads a null bound
/// as unknown and keeps the file; an absent one would make the whole column unusable for
/// choosing among the files.
fn unknown(field: &Field) -> Precision<ScalarValue> {
    ScalarValue::try_from(field.data_type())
        .map(Precision::Exact)
        .unwrap_or(Precision::Absent)
}

/// A maximum as a bound: the log writes timestamps cut to the millisecond, so a file's greatest
/// timestamp may be up to a millisecond less one unit above the one written. `None`: no bound.
fn widened(max: ScalarValue) -> Option<Precision<ScalarValue>> {
    Some(Precision::Exact(match max {
        ScalarValue::TimestampMicrosecond(Some(v), tz) => {
            ScalarValue::TimestampMicrosecond(Some(v.saturating_add(999)), tz)
        }
        ScalarValue::TimestampNanosecond(Some(v), tz) => {
            ScalarValue::TimestampNanosecond(Some(v.saturating_add(999_999)), tz)
        }
        // Seconds would be cut further.
        ScalarValue::TimestampSecond(..) => return None,
        other => other,
    }))
}

impl QuickTable {
    /// The files `filters` may match, by the log's statistics.
    pub(crate) fn chosen(
        &self,
        state: &dyn Session,
        filters: &[Expr],
    ) -> datafusion::error::Result<Vec<PartitionedFile>> {
        let all = || self.files.iter().map(|(f, _)| f.clone()).collect();
        let Some(predicate) = conjunction(filters.iter().cloned()) else {
            return Ok(all());
        };
        let df_schema = DFSchema::try_from(Arc::clone(&self.schema))?;
        let physical = state.create_physical_expr(predicate, &df_schema)?;
        let Some(pruning) = PruningPredicateBuilder::new()
            .with_file_schema(Arc::clone(&self.schema))
            .build(physical)
        else {
            // Nothing the statistics can decide.
            return Ok(all());
        };
        let stats = PrunableStatistics::new(
            self.files.iter().map(|(_, s)| Arc::clone(s)).collect(),
            Arc::clone(&self.schema),
        );
        let keep = pruning.prune(&stats)?;
        Ok(self
            .files
            .iter()
            .zip(keep)
            .filter(|(_, keep)| *keep)
            .map(|((f, _), _)| f.clone())
            .collect())
    }
}

#[async_trait]
impl TableProvider for QuickTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> datafusion::error::Result<Vec<TableProviderFilterPushDown>> {
        // The filter stays above the scan; the files and row groups it cannot match are skipped.
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
        let files = self.chosen(state, filters)?;
        tracing::debug!(
            files = files.len(),
            of = self.files.len(),
            "files chosen by the log's statistics"
        );
        if files.is_empty() {
            let projected = match projection {
                Some(p) => Arc::new(self.schema.project(p)?),
                None => Arc::clone(&self.schema),
            };
            return Ok(Arc::new(EmptyExec::new(projected)));
        }
        let groups = state.config().target_partitions().clamp(1, files.len());
        let mut grouped: Vec<Vec<PartitionedFile>> = vec![Vec::new(); groups];
        for (i, f) in files.into_iter().enumerate() {
            grouped[i % groups].push(f);
        }
        let table_schema = TableSchema::builder(Arc::clone(&self.file_schema))
            .with_table_partition_cols(self.partition_fields.clone())
            .build();
        let source = Arc::new(ParquetSource::new(table_schema));
        // The scan gives the file columns, then the partition columns: asked for in the
        // table's order.
        let columns: Vec<usize> = match projection {
            Some(p) => p.iter().map(|&i| self.scanned_at[i]).collect(),
            None => self.scanned_at.clone(),
        };
        let config = FileScanConfigBuilder::new(ObjectStoreUrl::local_filesystem(), source)
            .with_file_groups(grouped.into_iter().map(FileGroup::new).collect())
            .with_projection_indices(Some(columns))?
            .with_limit(limit)
            .build();
        let format = ParquetFormat::default().with_options(state.table_options().parquet.clone());
        format.create_physical_plan(state, config).await
    }
}
