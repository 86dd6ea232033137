//! The business register (Enhetsregisteret): updates lists and unit documents.
//!
//! # Layout
//! - [`updates`]: a page of an updates list (`oppdateringer/enheter`, `.../underenheter`).
//! - [`plan`]: a batch of updates and their documents to the changes of the list's tables.
//! - [`rows`]: units to Arrow batches of the business tables.
//! - [`seed`]: a chunk of the bulk download to rows, resumable.
//! - [`unit`]: an `Enhet` or `Underenhet` document to a [`BusinessUnit`](unit::BusinessUnit).

pub mod plan;
pub mod rows;
pub mod seed;
pub mod unit;
pub mod updates;

pub use unit::{BusinessUnit, UnitKind, normalise};
pub use updates::{ChangeType, Update, UpdatesPage, read_updates};
