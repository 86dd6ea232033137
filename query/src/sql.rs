//! Analysts' SQL over the lake.

use std::io::Write;

use arrow::record_batch::RecordBatch;
use datafusion::prelude::SessionContext;

use crate::QueryError;

/// Output formats of `regsync sql`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// An aligned text table.
    Table,
    /// CSV with a header row.
    Csv,
    /// One JSON object per line.
    Json,
}

/// Runs a query and collects the result.
pub async fn query(ctx: &SessionContext, sql: &str) -> Result<Vec<RecordBatch>, QueryError> {
    Ok(ctx.sql(sql).await?.collect().await?)
}

/// Writes batches in a format.
pub fn write(
    batches: &[RecordBatch],
    format: Format,
    out: &mut dyn Write,
) -> Result<(), QueryError> {
    let err = |format: &'static str| {
        move |e: arrow::error::ArrowError| QueryError::Output {
            format,
            reason: e.to_string(),
        }
    };
    match format {
        Format::Table => {
            let table =
                arrow::util::pretty::pretty_format_batches(batches).map_err(err("table"))?;
            writeln!(out, "{table}").map_err(|e| QueryError::Output {
                format: "table",
                reason: e.to_string(),
            })
        }
        Format::Csv => {
            let mut w = arrow::csv::WriterBuilder::new()
                .with_header(true)
                .build(out);
            for b in batches {
                w.write(b).map_err(err("csv"))?;
            }
            Ok(())
        }
        Format::Json => {
            let mut w = arrow::json::LineDelimitedWriter::new(out);
            for b in batches {
                w.write(b).map_err(err("json"))?;
            }
            w.finish().map_err(err("json"))
        }
    }
}
