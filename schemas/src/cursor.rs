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

/// The business register's updates list of enheter: the version is the last `oppdateringsid`
/// applied (0: none yet; the list is then read from the bulk download's time).
pub const BRREG_ENHETER: &str = "regsync.brreg.enheter";
/// The business register's updates list of underenheter (a sequence of its own).
pub const BRREG_UNDERENHETER: &str = "regsync.brreg.underenheter";
/// When the bulk download of enheter that seeded the lake was taken, Unix milliseconds: the
/// list is followed from then.
pub const BRREG_ENHETER_SEED_AT: &str = "regsync.brreg.enheter.seed.at";
/// When the bulk download of underenheter was taken, Unix milliseconds.
pub const BRREG_UNDERENHETER_SEED_AT: &str = "regsync.brreg.underenheter.seed.at";
/// The Kafka sink's position for enheter: the last `oppdateringsid` published.
pub const KAFKA_BRREG_ENHETER: &str = "regsync.kafka.brreg.enheter";
/// The Kafka sink's position for underenheter.
pub const KAFKA_BRREG_UNDERENHETER: &str = "regsync.kafka.brreg.underenheter";

/// The writer lease (on `writer_lease`): a random token of the process holding it.
pub const LEASE_HOLDER: &str = "regsync.lease.holder";
/// The writer lease: the holding process, `host hash << 32 | pid`.
pub const LEASE_PROCESS: &str = "regsync.lease.process";
/// The writer lease: when it was last renewed, Unix milliseconds (0: released).
pub const LEASE_RENEWED: &str = "regsync.lease.renewed";

/// The property register's change log: the version is the last change id applied (0: the
/// address file only).
pub const MATRIKKEL_CHANGES: &str = "regsync.matrikkel.endringer";
/// The Kafka sink's position for addresses.
pub const KAFKA_MATRIKKEL: &str = "regsync.kafka.matrikkel";
/// When the property register's first seed attempt began (Unix seconds), on `address`: a seed
/// that goes on after a stop follows the change log from before the earliest file it read.
pub const MATRIKKEL_SEED_AT: &str = "regsync.matrikkel.seed.at";
/// When the property register's seed finished (Unix microseconds), on `address`: no change is
/// dated before it in the history tables, whose seeded versions start then.
pub const MATRIKKEL_SEEDED_AT: &str = "regsync.matrikkel.seeded.at";
/// The property register's kommune filter the lake was seeded with (a hash; 0: none), on
/// `address`: a lake seeded for some kommuner is not followed for others.
pub const MATRIKKEL_KOMMUNER: &str = "regsync.matrikkel.kommuner";
/// The property register's writer lease: holder, process, renewal time.
pub const MATRIKKEL_LEASE_HOLDER: &str = "regsync.lease.matrikkel.holder";
/// See [`MATRIKKEL_LEASE_HOLDER`].
pub const MATRIKKEL_LEASE_PROCESS: &str = "regsync.lease.matrikkel.process";
/// See [`MATRIKKEL_LEASE_HOLDER`].
pub const MATRIKKEL_LEASE_RENEWED: &str = "regsync.lease.matrikkel.renewed";

/// The business register's writer lease (on `writer_lease`): holder, process, renewal time.
pub const BRREG_LEASE_HOLDER: &str = "regsync.lease.brreg.holder";
/// See [`BRREG_LEASE_HOLDER`].
pub const BRREG_LEASE_PROCESS: &str = "regsync.lease.brreg.process";
/// See [`BRREG_LEASE_HOLDER`].
pub const BRREG_LEASE_RENEWED: &str = "regsync.lease.brreg.renewed";

/// The application ids of a register's writer lease: one worker per register and lake, so
/// the registers' workers share a lake. The population register keeps the ids of the lakes
/// written before there were others.
pub fn lease_ids(register: &str) -> Option<[&'static str; 3]> {
    match register {
        "freg" => Some([LEASE_HOLDER, LEASE_PROCESS, LEASE_RENEWED]),
        "brreg" => Some([BRREG_LEASE_HOLDER, BRREG_LEASE_PROCESS, BRREG_LEASE_RENEWED]),
        "matrikkel" => Some([
            MATRIKKEL_LEASE_HOLDER,
            MATRIKKEL_LEASE_PROCESS,
            MATRIKKEL_LEASE_RENEWED,
        ]),
        _ => None,
    }
}

/// Every application transaction id a table may record, for `regsync status`.
pub const ALL: &[&str] = &[
    FREG_FEED,
    FREG_SEED_BATCHES,
    FREG_SEED_SEQUENCE,
    KAFKA_FREG,
    BRREG_ENHETER,
    BRREG_UNDERENHETER,
    BRREG_ENHETER_SEED_AT,
    BRREG_UNDERENHETER_SEED_AT,
    KAFKA_BRREG_ENHETER,
    KAFKA_BRREG_UNDERENHETER,
    LEASE_HOLDER,
    LEASE_PROCESS,
    LEASE_RENEWED,
    BRREG_LEASE_HOLDER,
    BRREG_LEASE_PROCESS,
    BRREG_LEASE_RENEWED,
    MATRIKKEL_CHANGES,
    MATRIKKEL_SEED_AT,
    MATRIKKEL_SEEDED_AT,
    MATRIKKEL_KOMMUNER,
    KAFKA_MATRIKKEL,
    MATRIKKEL_LEASE_HOLDER,
    MATRIKKEL_LEASE_PROCESS,
    MATRIKKEL_LEASE_RENEWED,
];
