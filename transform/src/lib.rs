//! Pure normalisation of register documents into regsync's canonical model.
//!
//! Everything here is synchronous and deterministic: no I/O, no clock (times are parameters),
//! no async runtime. Register documents go in; canonical rows, and rejected records with the
//! reason, come out; [`encode`] turns rows into Arrow batches in the lake's schemas.
//!
//! # Layout
//! - [`json`]: register documents as read: [`json::Node`] and the borrowed [`json::Doc`].
//! - [`fields`]: reading register JSON fields alike for every register.
//! - [`orgnr`]: organisation numbers and their check digit.
//! - [`ident`]: fødselsnummer / D-nummer validation (1964 and 2032 rules) and check digits.
//! - [`brreg`]: the business register's shapes: updates lists and unit documents.
//! - [`matrikkel`]: the property register's address file.
//! - [`freg`]: the population register's shapes: feed entries, person documents, normalisation.
//! - [`model`]: the canonical rows: [`Person`], [`PersonVersion`], [`EventRow`], [`DeadLetter`].
//! - [`messages`]: lake rows to Kafka messages with CloudEvents headers, minimised.
//! - [`change`]: a register's plan as [`Change`](change::Change)s of each lake table.
//! - [`encode`]: rows to Arrow [`RecordBatch`](arrow::record_batch::RecordBatch)es.
//! - [`error`]: [`TransformError`] and its [`ErrorKind`].

pub mod brreg;
pub mod change;
pub mod encode;
pub mod error;
pub mod fields;
pub mod freg;
pub mod ident;
pub mod json;
pub mod matrikkel;
pub mod messages;
pub mod model;
pub mod orgnr;

pub use error::{ErrorKind, TransformError};
pub use model::{DeadLetter, EventRow, Outcome, Person, PersonVersion};
