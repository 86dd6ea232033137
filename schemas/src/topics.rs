//! Kafka topics for downstream subscribers: names, partitions, compaction, and the JSON Schema
//! of their values (checked into `schemas/topics/`).
//!
//! Per register: a compacted change topic keyed by the entity id whose value is the entity's new
//! current state (`freg.person.v1`), and an event topic with every feed entry in feed order
//! (`freg.event.v1`). Later registers follow the pattern (`brreg.enhet.v1`, `matrikkel.adresse.v1`).

/// One topic.
#[derive(Debug, Clone, Copy)]
pub struct Topic {
    /// Name, before the configured prefix.
    pub name: &'static str,
    /// Partitions when regsync creates it.
    pub partitions: i32,
    /// Log compaction (`cleanup.policy=compact`): only the latest value per key is kept.
    pub compacted: bool,
    /// The value's JSON Schema.
    pub schema: &'static str,
    /// CloudEvents `ce_type` of its messages.
    pub event_type: &'static str,
}

/// Current state of a person, keyed by person id; a tombstone when the person has ceased.
pub const FREG_PERSON: Topic = Topic {
    name: "freg.person.v1",
    partitions: 6,
    compacted: true,
    schema: include_str!("../topics/freg.person.v1.schema.json"),
    event_type: "no.regsync.freg.person.v1",
};

/// Every feed entry of the population register, in feed order, keyed by person id.
pub const FREG_EVENT: Topic = Topic {
    name: "freg.event.v1",
    partitions: 6,
    compacted: false,
    schema: include_str!("../topics/freg.event.v1.schema.json"),
    event_type: "no.regsync.freg.event.v1",
};

/// Every topic regsync writes.
pub const TOPICS: [Topic; 2] = [FREG_PERSON, FREG_EVENT];

/// CloudEvents `ce_source` of population-register messages.
pub const FREG_SOURCE: &str = "urn:regsync:freg";
