//! Feed workers: poll a register's change feed from the lake's own durable position, fetch the
//! changed documents with retries, normalise them (in [`transform`]) and commit them to the
//! Delta lake with the position in the same commit.
//!
//! # Layout
//! - [`config`]: pipeline files (TOML, `${VAR:-default}` substitution, unknown keys refused).
//! - [`client`]: the population register's HTTP API with backoff and `Retry-After`.
//! - [`maskinporten`]: the JWT-bearer token grant, with token reuse.
//! - [`lake`]: Delta tables, positions recorded as application transactions, upserts.
//! - [`worker`]: seeding from the bulk extract and following the feed.
//! - [`error`]: [`IngestError`] and its kind.

pub mod client;
pub mod config;
pub mod error;
pub mod lake;
pub mod maskinporten;
pub mod worker;

pub use config::Pipeline;
pub use error::IngestError;
pub use worker::{Report, RunOptions, run};
