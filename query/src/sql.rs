//! Analysts' SQL over the lake: queries only. A statement that would write a file or a table,
//! define a table over some other file or change the session (`COPY`, `CREATE`, `INSERT`,
//! `DROP`, `SET`, ...) is refused before anything runs.

use std::io::Write;

use arrow::record_batch::RecordBatch;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::DataFusionError;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::{SQLOptions, SessionContext};

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

/// Runs a query and collects the result; anything but a query is [`QueryError::ReadOnly`].
pub async fn query(ctx: &SessionContext, sql: &str) -> Result<Vec<RecordBatch>, QueryError> {
    // What `SessionContext::sql_with_options` does, with the refusal told apart from bad SQL.
    let plan = match ctx.state().create_logical_plan(sql).await {
        Ok(plan) => plan,
        Err(e) => return Err(unknown_table(ctx, &e).unwrap_or_else(|| e.into())),
    };
    let read_only = SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false);
    if let Err(e) = read_only.verify_plan(&plan) {
        return Err(QueryError::ReadOnly {
            statement: refused(&plan).unwrap_or_else(|| e.strip_backtrace()),
        });
    }
    Ok(ctx.execute_logical_plan(plan).await?.collect().await?)
}

/// "no table `x`; tables: ..." when planning failed on a name that is not a table.
fn unknown_table(ctx: &SessionContext, e: &DataFusionError) -> Option<QueryError> {
    let DataFusionError::Plan(message) = e.find_root() else {
        return None;
    };
    let name = message
        .strip_prefix("table '")?
        .strip_suffix("' not found")?;
    let name = name.strip_prefix("datafusion.public.").unwrap_or(name);
    let mut tables: Vec<String> = ctx
        .catalog("datafusion")
        .and_then(|c| c.schema("public"))
        .map(|s| s.table_names())
        .unwrap_or_default();
    tables.sort();
    Some(QueryError::NoTable {
        name: name.to_owned(),
        tables: tables.join(", "),
    })
}

/// The name of the first part of a plan that is not a query (`COPY`, `CreateExternalTable`, ..).
fn refused(plan: &LogicalPlan) -> Option<String> {
    let mut found = None;
    plan.apply_with_subqueries(|node| {
        found = match node {
            LogicalPlan::Copy(_) => Some("COPY".to_owned()),
            LogicalPlan::Ddl(ddl) => Some(ddl.name().to_owned()),
            LogicalPlan::Dml(dml) => Some(dml.op.name().to_owned()),
            LogicalPlan::Statement(statement) => Some(statement.name().to_owned()),
            _ => None,
        };
        Ok(if found.is_some() {
            TreeNodeRecursion::Stop
        } else {
            TreeNodeRecursion::Continue
        })
    })
    .ok()?;
    found
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use datafusion::datasource::MemTable;

    use super::*;

    fn session() -> SessionContext {
        let schema = Arc::new(Schema::new(vec![
            Field::new("person_id", DataType::Utf8, false),
            Field::new("birth_year", DataType::Int64, false),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(StringArray::from(vec!["a", "b"])),
                Arc::new(Int64Array::from(vec![2019, 2020])),
            ],
        )
        .unwrap();
        let ctx = SessionContext::new();
        let table = MemTable::try_new(schema, vec![vec![batch]]).unwrap();
        ctx.register_table("person", Arc::new(table)).unwrap();
        ctx
    }

    #[tokio::test]
    async fn select_still_works() {
        let batches = query(
            &session(),
            "SELECT count(*) AS n FROM person WHERE birth_year = 2019",
        )
        .await
        .unwrap();
        let mut out = Vec::new();
        write(&batches, Format::Csv, &mut out).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "n\n1\n");
    }

    #[tokio::test]
    async fn sql_cannot_write_or_read_files_or_change_tables() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside.csv");
        std::fs::write(&outside, "x\n1\n").unwrap();
        let written = dir.path().join("written");
        let (outside, written) = (outside.display(), written.display());
        let statements = [
            format!("COPY (SELECT * FROM person) TO '{written}.csv' STORED AS CSV"),
            format!("COPY person TO '{written}.parquet' STORED AS PARQUET"),
            format!("EXPLAIN ANALYZE COPY person TO '{written}.json' STORED AS JSON"),
            format!("CREATE EXTERNAL TABLE leak STORED AS CSV LOCATION '{outside}'"),
            "INSERT INTO person VALUES ('c', 2021)".to_owned(),
            "CREATE TABLE stolen AS SELECT * FROM person".to_owned(),
            "DROP TABLE person".to_owned(),
            "SET datafusion.execution.batch_size = 1".to_owned(),
        ];
        let ctx = session();
        for sql in &statements {
            let err = query(&ctx, sql).await.unwrap_err();
            let text = err.to_string();
            assert!(
                matches!(err, QueryError::ReadOnly { .. })
                    && text.starts_with("regsync sql is read-only: ")
                    && text.contains("not allowed"),
                "{sql}: {text}"
            );
        }
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, ["outside.csv"], "no file was written");
        assert!(!ctx.table_exist("leak").unwrap() && !ctx.table_exist("stolen").unwrap());
        let rows = query(&ctx, "SELECT * FROM person").await.unwrap();
        assert_eq!(rows.iter().map(RecordBatch::num_rows).sum::<usize>(), 2);
    }
}
