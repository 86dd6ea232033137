//! DataFusion over regsync's Delta lake: analysts' SQL and citizen lists (`innbyggerlister`).
//!
//! Reads only: nothing here writes the lake. Citizen lists never print a protected address:
//! for any person whose protection is not `ugradert` the address columns are empty.
//!
//! # Layout
//! - [`context`]: a DataFusion session with every lake table registered.
//! - [`sql`]: run SQL, print as a table, CSV or JSON.
//! - [`views`]: views across registers (residents and businesses per address, summaries).
//! - [`cohort`]: the citizen list by kommune, birth dates, status and date, as CSV, XLSX or Parquet.
//! - [`error`]: the crate's error type, [`QueryError`].
//! - `log` and `quick`: a table on local disk read from its Delta log directly, for a process
//!   that must start fast; `deltalake` reads the rest.

pub mod cohort;
pub mod context;
#[cfg(test)]
mod direct_tests;
pub mod error;
mod log;
mod quick;
pub mod sql;
pub mod views;

pub use cohort::{Cohort, Format as CohortFormat};
pub use error::QueryError;
