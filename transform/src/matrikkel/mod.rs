//! The property register (Matrikkelen): its address bulk file (`matrikkelenAdresse.csv`), its
//! change log (`findEndringer`) and the cadastral units' initial load, to the canonical
//! address and cadastral unit model.
//!
//! # Layout
//! - [`addresses`]: the semicolon-separated address file, in today's column set and in the
//!   2019 one, read by column name.
//! - [`rows`]: addresses to Arrow rows of `address` and `address_history`, and the plan of a
//!   chunk of the file.
//! - [`changes`]: a page of the change log and the objects (bubbles) it returns.
//! - [`plan`]: a page of the change log to the changes of the property tables.
//! - [`unit_rows`]: cadastral units and changes to Arrow rows.
//! - [`load`]: a page of the cadastral units' initial load, planned.

pub mod addresses;
pub mod changes;
pub mod load;
pub mod plan;
pub mod rows;
pub mod unit_rows;

pub use addresses::{Address, Columns, read_address};
