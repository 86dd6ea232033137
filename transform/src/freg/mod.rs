//! The population register (Folkeregisteret): feed entries and person documents.
//!
//! # Layout
//! - [`feed`]: feed entries (`LagretHendelseMedDokumentIdentifikatorer`), the bulk-lookup envelope.
//! - [`document`]: a person document (`Folkeregisterperson`) to a [`Person`](crate::Person).
//! - [`batch`]: feed entries and fetched documents to the rows of each table.
//! - [`tables`]: a batch's rows as [`Change`](crate::change::Change)s of the register's tables.
//! - [`reseed`]: an extract taken as one change, for a lake whose feed position expired.
//! - [`versions`]: a document and the event that produced it to [`PersonVersion`](crate::PersonVersion)s.

pub mod batch;
pub mod document;
pub mod feed;
pub mod reseed;
pub mod tables;
pub mod versions;

pub use document::normalise;
pub use feed::{BadEntry, FeedEntry, Item, Lookup, Page, Reading};
