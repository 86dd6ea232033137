//! The property register (Matrikkelen): its address bulk file (`matrikkelenAdresse.csv`) to the
//! canonical address model. Following its change log is not built yet.
//!
//! # Layout
//! - [`addresses`]: the semicolon-separated address file, in today's column set and in the
//!   2019 one, read by column name.
//! - [`rows`]: addresses to Arrow rows of `address` and `address_history`, and the plan of a
//!   chunk of the file.

pub mod addresses;
pub mod rows;

pub use addresses::{Address, Columns, read_address};
