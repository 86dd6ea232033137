//! regsync keeps a municipality's copy of the Norwegian population register in sync: a feed
//! worker that follows the register's change feed into a Delta lake, queries over the lake
//! (SQL, citizen lists), and a local register simulator for development and tests.
//!
//! # Layout
//! - [`cli`]: the `regsync` subcommands (`simulate`, `run`, `sql`, `cohort`, `status`,
//!   `maintain`, `tail`, `demo`, `bench`).
//! - [`bench`]: the measurements behind `benches/national.sh`.
//! - [`demo`]: the embedded default: simulator, pipeline and a citizen list in one process.
//! - [`ops`]: `status` and `maintain`, what an operator looks at and runs.
//! - [`serve_metrics`]: `/metrics` and `/healthz` of a running worker.
//!
//! The work is done by the workspace crates: `schemas` (table layout), `transform` (pure
//! normalisation), `ingest` (feed worker, lake writer), `query` (DataFusion) and `simulator`.

pub mod bench;
pub mod cli;
pub mod demo;
pub mod ops;
pub mod serve_metrics;
