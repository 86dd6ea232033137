//! What regsync's writers and readers agree on: lake table names, their Arrow schemas and
//! partitioning, and the application ids under which sinks record their cursors.
//!
//! Nothing here does I/O. Every crate that writes or reads the lake takes its table layout from
//! this crate, so a column rename is one change here, caught by every reader's tests.
//!
//! # Layout
//! - [`tables`]: table names, schemas, partition columns, column lists.
//! - [`topics`]: Kafka topics, their settings and JSON Schemas.
//! - [`register`]: each register as a typed description: its positions, tables and topics.
//! - [`business`]: the business register's tables.
//! - [`property`]: the property register's tables (addresses; not followed yet).
//! - [`cursor`]: application ids under which a table records how far it has applied a source.

pub mod business;
pub mod cursor;
pub mod property;
pub mod register;
pub mod tables;
pub mod topics;

pub use tables::{TABLES, Table, TableKind};
