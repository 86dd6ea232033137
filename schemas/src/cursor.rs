//! Application transaction ids: each table records, in the same Delta commit as its data, the
//! highest position of a source it has applied. Restart resumes after the lowest of them.

/// The population register's event feed: the version is the last feed sequence number applied.
pub const FREG_FEED: &str = "regsync.freg.feed";

/// The population register's bulk extract used to seed an empty lake: the version is the number
/// of extract batches applied.
pub const FREG_SEED_BATCHES: &str = "regsync.freg.seed.batches";

/// The feed sequence number the bulk extract was taken at (written with every seed commit).
pub const FREG_SEED_SEQUENCE: &str = "regsync.freg.seed.sequence";

/// The Kafka sink's position, recorded in the lake (on `person_event`) once every message up to
/// that feed sequence number is acknowledged by the broker.
pub const KAFKA_FREG: &str = "regsync.kafka.freg";
