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
    /// A bad argument.
    #[error("{0}")]
    Argument(String),
}
