//! The registers the worker follows, behind one trait: what the layers above (the worker, the
//! Kafka publisher) need of a register, without naming its tables or topics.
//!
//! Each register is one implementation here, with its description in
//! [`schemas::register`] and its documents -> rows in [`transform`].

use arrow::array::RecordBatch;
use schemas::register::Register;
use schemas::topics::{self, Topic};
use transform::TransformError;
use transform::messages::Message;

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
}

/// The population register (Folkeregisteret).
#[derive(Debug, Clone, Copy, Default)]
pub struct Freg;

impl Source for Freg {
    fn register(&self) -> &'static Register {
        &schemas::register::FREG
    }

    fn messages(
        &self,
        topic: &Topic,
        rows: &RecordBatch,
        include_confidential: bool,
    ) -> Result<Vec<Message>, TransformError> {
        if topic.name == topics::FREG_EVENT.name {
            transform::messages::event_messages(topic, rows, include_confidential)
        } else {
            transform::messages::person_messages(topic, rows, include_confidential)
        }
    }
}

/// The register a pipeline file names (`source.register`).
pub fn by_name(name: &str) -> Option<&'static dyn Source> {
    match name {
        "freg" => Some(&Freg),
        _ => None,
    }
}
