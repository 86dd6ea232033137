//! The crate's one error type.

/// What went wrong answering a question.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The lake location is not usable.
    #[error("lake {location}: {reason}")]
    Lake {
        /// The location given.
        location: String,
        /// Why.
        reason: String,
    },
    /// The location holds no lake (none of regsync's tables is a Delta table there).
    #[error(
        "no lake at {location} (none of regsync's tables is there): run `regsync run` (or `regsync demo`) first"
    )]
    NoLake {
        /// The location given.
        location: String,
    },
    /// A query names a table the lake does not have.
    #[error("no table `{name}`; tables: {tables}")]
    NoTable {
        /// The name in the query.
        name: String,
        /// The lake's tables and views, comma-separated.
        tables: String,
    },
    /// A table could not be opened.
    #[error("lake table {table} at {url}: {source}")]
    Table {
        /// Table name.
        table: &'static str,
        /// Its URL.
        url: String,
        /// Delta's error.
        source: Box<deltalake::DeltaTableError>,
    },
    /// Planning or running the query failed (bad SQL names its position). DataFusion's message
    /// already holds its causes, so it is not given as a source (no repeated lines).
    #[error("query: {}", .0.strip_backtrace())]
    DataFusion(Box<datafusion::error::DataFusionError>),
    /// Formatting the output failed.
    #[error("writing {format} output: {reason}")]
    Output {
        /// The format.
        format: &'static str,
        /// Why.
        reason: String,
    },
    /// `regsync sql` was given a statement that is not a query.
    #[error(
        "regsync sql is read-only: {statement} is not allowed, only queries over the lake's tables"
    )]
    ReadOnly {
        /// What the statement would have done (`COPY`, `CreateExternalTable`, `Insert Into`, ..).
        statement: String,
    },
    /// A bad argument.
    #[error("{0}")]
    Argument(String),
}

impl From<datafusion::error::DataFusionError> for QueryError {
    fn from(e: datafusion::error::DataFusionError) -> Self {
        Self::DataFusion(Box::new(e))
    }
}
