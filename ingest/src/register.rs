//! The registers the worker follows, behind one trait: what the layers above (the worker, the
//! Kafka publisher) need of a register, without naming its tables or topics.
//!
//! Each register is one implementation here, with its description in
//! [`schemas::register`] and its documents -> rows in [`transform`].

use arrow::array::RecordBatch;
use futures::future::BoxFuture;
use schemas::register::Register;
use schemas::topics::Topic;
use tokio_util::sync::CancellationToken;
use transform::TransformError;
use transform::messages::Message;

use crate::IngestError;
use crate::config::Pipeline;
use crate::lake::Lake;
use crate::worker::{Report, RunOptions};

/// A register the worker follows.
pub trait Source: Send + Sync + std::fmt::Debug {
    /// Its tables, topics and positions.
    fn register(&self) -> &'static Register;

    /// Rows of an outlet's table (a slice of feed positions) as messages of its topic, with
    /// the fields the subscribers may hold.
    fn messages(
        &self,
        topic: &Topic,
        rows: &RecordBatch,
        include_confidential: bool,
    ) -> Result<Vec<Message>, TransformError>;

    /// Connects as the pipeline says (no request yet): a bad setting stops the start.
    fn connect(&self, pipeline: &Pipeline) -> Result<Box<dyn Connected>, IngestError>;
}

/// A register's connection, made from the pipeline's settings.
pub trait Connected: Send + Sync {
    /// Seeds an empty lake, then follows the register's feed from the lake's positions until
    /// `shutdown` (or, with `until_caught_up`, until its head is committed). What a failed
    /// attempt left undone is found again from the positions: the worker calls it again.
    fn sync<'a>(
        &'a self,
        lake: &'a mut Lake,
        pipeline: &'a Pipeline,
        options: &'a RunOptions,
        shutdown: &'a CancellationToken,
        report: &'a mut Report,
    ) -> BoxFuture<'a, Result<(), IngestError>>;
}

/// The register a pipeline file names (`source.register`).
pub fn by_name(name: &str) -> Option<&'static dyn Source> {
    match name {
        "freg" => Some(&crate::freg::Freg),
        "brreg" => Some(&crate::brreg::Brreg),
        "matrikkel" => Some(&crate::matrikkel::Matrikkel),
        _ => None,
    }
}
