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
    /// CloudEvents `ce_source` of its messages: the register.
    pub source: &'static str,
}

/// Current state of a person, keyed by person id; a tombstone when the person has ceased.
pub const FREG_PERSON: Topic = Topic {
    name: "freg.person.v1",
    partitions: 6,
    compacted: true,
    schema: include_str!("../topics/freg.person.v1.schema.json"),
    event_type: "no.regsync.freg.person.v1",
    source: FREG_SOURCE,
};

/// Every feed entry of the population register, in feed order, keyed by person id.
pub const FREG_EVENT: Topic = Topic {
    name: "freg.event.v1",
    partitions: 6,
    compacted: false,
    schema: include_str!("../topics/freg.event.v1.schema.json"),
    event_type: "no.regsync.freg.event.v1",
    source: FREG_SOURCE,
};

/// Current state of a business unit (enhet), keyed by organisation number; a tombstone when the
/// register removed it (`Fjernet`).
pub const BRREG_ENHET: Topic = Topic {
    name: "brreg.enhet.v1",
    partitions: 6,
    compacted: true,
    schema: include_str!("../topics/brreg.enhet.v1.schema.json"),
    event_type: "no.regsync.brreg.enhet.v1",
    source: BRREG_SOURCE,
};

/// Current state of a subunit (underenhet), keyed by organisation number; a tombstone when the
/// register removed it.
pub const BRREG_UNDERENHET: Topic = Topic {
    name: "brreg.underenhet.v1",
    partitions: 6,
    compacted: true,
    schema: include_str!("../topics/brreg.underenhet.v1.schema.json"),
    event_type: "no.regsync.brreg.underenhet.v1",
    source: BRREG_SOURCE,
};

/// Current state of an address (vegadresse, matrikkeladresse), keyed by the property
/// register's address id; a tombstone when the register deleted it.
pub const MATRIKKEL_ADRESSE: Topic = Topic {
    name: "matrikkel.adresse.v1",
    partitions: 6,
    compacted: true,
    schema: include_str!("../topics/matrikkel.adresse.v1.schema.json"),
    event_type: "no.regsync.matrikkel.adresse.v1",
    source: MATRIKKEL_SOURCE,
};

/// Every topic regsync writes.
pub const TOPICS: [Topic; 5] = [
    FREG_PERSON,
    FREG_EVENT,
    BRREG_ENHET,
    BRREG_UNDERENHET,
    MATRIKKEL_ADRESSE,
];

/// CloudEvents `ce_source` of population-register messages.
pub const FREG_SOURCE: &str = "urn:regsync:freg";

/// CloudEvents `ce_source` of business-register messages.
pub const BRREG_SOURCE: &str = "urn:regsync:brreg";

/// CloudEvents `ce_source` of property-register messages.
pub const MATRIKKEL_SOURCE: &str = "urn:regsync:matrikkel";
