//! Feed workers: poll a register's change feed from the lake's own durable position, fetch the
//! changed documents with retries, normalise them (in [`transform`]) and commit them to the
//! Delta lake with the position in the same commit.
//!
//! # Layout
//! - [`config`]: pipeline files (TOML, `${VAR:-default}` substitution, unknown keys refused).
//! - [`http`]: a register's HTTP API with backoff and `Retry-After`.
//! - [`client`]: the population register's endpoints.
//! - [`maskinporten`]: the JWT-bearer token grant, with token reuse.
//! - [`commit`]: commits with their positions and identity; conflicts told from own commits.
//! - [`lake`]: Delta tables, positions recorded as application transactions, upserts.
//! - [`worker`]: a run: the seed if the lake is empty, then following the feed, beside the
//!   Kafka publisher.
//! - [`freg`]: the population register behind [`register::Source`]: client, seed, feed, re-seed.
//! - [`brreg`]: the business register behind [`register::Source`]: two updates lists, the
//!   bulk download.
//! - [`matrikkel`]: the property register's addresses, seeded from its address file.
//! - [`seed`]: seeding from the bulk extract, resumable per batch and per table.
//! - [`follow`]: following the feed: pages read in order without skipping a hole, documents,
//!   commits.
//! - [`apply`]: planned rows to the tables, each commit with its position.
//! - [`merge`]: a plan's changes to one table in one commit (append, or a copy-on-write
//!   rewrite of the files holding the changed keys), for every register.
//! - [`files`]: how data files are written (Parquet properties per table).
//! - [`register`]: each register behind one trait ([`register::Source`]).
//! - [`migrate`]: tables written by an earlier version.
//! - [`stream`]: large files read as they arrive, for parsers on a blocking thread.
//! - [`kafka`]: topics, recovery of each partition's position, producing.
//! - [`publish`]: the Kafka sink, following the lake with its own position.
//! - [`error`]: [`IngestError`] and its kind.

pub mod apply;
pub mod brreg;
pub mod client;
pub mod commit;
pub mod config;
pub mod deletion;
pub mod error;
pub mod files;
pub mod follow;
pub mod freg;
pub mod http;
pub mod kafka;
pub mod lake;
pub mod lease;
pub mod maintain;
pub mod maskinporten;
pub mod matrikkel;
pub mod merge;
pub mod metrics;
pub mod migrate;
pub mod progress;
pub mod publish;
pub mod register;
pub mod reseed;
pub mod seed;
pub mod stream;
pub mod worker;

pub use config::Pipeline;
pub use error::IngestError;
pub use worker::{Report, RunOptions, run};
