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
    /// Planning or running the query failed (bad SQL names its position).
    #[error("query: {0}")]
    DataFusion(#[from] datafusion::error::DataFusionError),
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
