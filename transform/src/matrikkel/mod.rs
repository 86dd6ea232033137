//! The property register (Matrikkelen): its address bulk file (`matrikkelenAdresse.csv`) to the
//! canonical address model. Following its change log is not built yet.
//!
//! # Layout
//! - [`addresses`]: the semicolon-separated address file, in today's column set and in the
//!   2019 one, read by column name.

pub mod addresses;

pub use addresses::{Address, Columns, read_address};
