//! Each register regsync follows, as a typed description: its feeds (a register may have
//! several, each with its own sequence of positions), the tables each feed writes (in commit
//! order) and the Kafka topics each publishes. The worker and the Kafka publisher read these
//! instead of naming a register's tables or topics.

use std::sync::LazyLock;

use crate::business;
use crate::cursor;
use crate::property;
use crate::tables::{self, DEAD_LETTER, KAFKA_SINK, Table, WRITER_LEASE};
use crate::topics::{self, Topic};

/// A Kafka topic a feed publishes, and the query whose rows become its messages.
#[derive(Debug, Clone)]
pub struct Outlet {
    /// The topic.
    pub topic: Topic,
    /// The tables the query reads: a slice of positions is published once each has committed
    /// it.
    pub reads: Vec<&'static Table>,
    /// The rows of a slice of positions, in message order: SQL over the tables by name, with
    /// `{from}` (exclusive) and `{to}` (inclusive) for the slice's bounds.
    pub select: &'static str,
}

impl Outlet {
    /// The query for the positions after `from` up to `to`.
    pub fn query(&self, from: i64, to: i64) -> String {
        bounded(self.select, from, to)
    }
}

/// A query with its `{from}` and `{to}` filled in.
pub fn bounded(sql: &str, from: i64, to: i64) -> String {
    sql.replace("{from}", &from.to_string())
        .replace("{to}", &to.to_string())
}

/// One feed of a register: a sequence of positions, the tables it writes and the topics it
/// publishes.
#[derive(Debug)]
pub struct Feed {
    /// Short name, in logs and `regsync status` (`feed`, `enheter`).
    pub name: &'static str,
    /// Application id of the last position each table has applied.
    pub position: &'static str,
    /// Application id of the Kafka sink's position (on `kafka_sink`).
    pub kafka: &'static str,
    /// The tables the feed writes, in the order of its commits. The entity's current state
    /// goes first: its position is what says a seed is complete.
    pub tables: Vec<&'static Table>,
    /// The topics it publishes.
    pub outlets: Vec<Outlet>,
    /// The first position after `{from}` that any outlet publishes (SQL over the outlets'
    /// tables, one row, one column; null: none), so that slices start where positions are
    /// (a list's ids may start in the millions).
    pub next_position: &'static str,
}

/// A register regsync follows.
#[derive(Debug)]
pub struct Register {
    /// Short name, as in pipeline files (`source.register`) and topic names.
    pub name: &'static str,
    /// Its feeds.
    pub feeds: Vec<Feed>,
}

impl Register {
    /// The topics it publishes.
    pub fn topics(&self) -> Vec<Topic> {
        self.feeds
            .iter()
            .flat_map(|f| f.outlets.iter().map(|o| o.topic))
            .collect()
    }

    /// Every table its worker opens: those its feeds write, the Kafka sink's and the lease's.
    pub fn lake_tables(&self) -> Vec<&'static Table> {
        let mut out: Vec<&'static Table> = Vec::new();
        let written = self.feeds.iter().flat_map(|f| f.tables.iter().copied());
        for table in written.chain([&*KAFKA_SINK, &*WRITER_LEASE]) {
            if !out.iter().any(|t| std::ptr::eq(*t, table)) {
                out.push(table);
            }
        }
        out
    }
}

/// The population register (Folkeregisteret): one feed (`hendelser`).
pub static FREG: LazyLock<Register> = LazyLock::new(|| Register {
    name: "freg",
    feeds: vec![Feed {
        name: "feed",
        position: cursor::FREG_FEED,
        kafka: cursor::KAFKA_FREG,
        tables: tables::TABLES.to_vec(),
        outlets: vec![
            Outlet {
                topic: topics::FREG_EVENT,
                reads: vec![&tables::PERSON_EVENT],
                select: "SELECT * FROM person_event WHERE sequence > {from} AND sequence <= {to} \
                         ORDER BY sequence",
            },
            Outlet {
                topic: topics::FREG_PERSON,
                reads: vec![&tables::PERSON],
                select: "SELECT * FROM person WHERE last_sequence > {from} AND last_sequence <= {to} \
                         ORDER BY last_sequence, person_id",
            },
        ],
        next_position: "SELECT min(sequence) FROM person_event WHERE sequence > {from}",
    }],
});

/// The business register (Enhetsregisteret): two updates lists, each with its own
/// `oppdateringsid` sequence.
pub static BRREG: LazyLock<Register> = LazyLock::new(|| Register {
    name: "brreg",
    feeds: vec![
        Feed {
            name: "enheter",
            position: cursor::BRREG_ENHETER,
            kafka: cursor::KAFKA_BRREG_ENHETER,
            tables: vec![
                &business::BUSINESS_UNIT,
                &business::BUSINESS_UNIT_HISTORY,
                &business::BUSINESS_UPDATE,
                &DEAD_LETTER,
            ],
            outlets: vec![Outlet {
                topic: topics::BRREG_ENHET,
                reads: vec![&business::BUSINESS_UNIT, &business::BUSINESS_UPDATE],
                select: UNIT_CHANGES_ENHETER,
            }],
            next_position: "SELECT min(update_id) FROM business_update \
                            WHERE unit_kind = 'enhet' AND update_id > {from}",
        },
        Feed {
            name: "underenheter",
            position: cursor::BRREG_UNDERENHETER,
            kafka: cursor::KAFKA_BRREG_UNDERENHETER,
            tables: vec![
                &business::BUSINESS_SUBUNIT,
                &business::BUSINESS_SUBUNIT_HISTORY,
                &business::BUSINESS_UPDATE,
                &DEAD_LETTER,
            ],
            outlets: vec![Outlet {
                topic: topics::BRREG_UNDERENHET,
                reads: vec![&business::BUSINESS_SUBUNIT, &business::BUSINESS_UPDATE],
                select: UNIT_CHANGES_UNDERENHETER,
            }],
            next_position: "SELECT min(update_id) FROM business_update \
                            WHERE unit_kind = 'underenhet' AND update_id > {from}",
        },
    ],
});

/// A unit's messages for a slice of one list's updates: its state, from the update that wrote
/// the current row (a later update in a later slice publishes it then), or a tombstone from the
/// update that removed it. `update_id` is the message's position. The first slice (`{from}`
/// below 0: nothing published yet) also carries every unit as the seed wrote it and no update
/// has changed since (position 0).
macro_rules! unit_changes {
    ($current:literal, $kind:literal) => {
        concat!(
            "SELECT * FROM (",
            "SELECT u.update_id AS update_id, u.organization_number AS key, ",
            "u.outcome AS outcome, u.occurred_at AS occurred_at, c.* ",
            "FROM business_update u LEFT JOIN ",
            $current,
            " c ON c.organization_number = u.organization_number AND c.last_update_id = u.update_id ",
            "WHERE u.unit_kind = '",
            $kind,
            "' AND u.update_id > {from} AND u.update_id <= {to} ",
            "AND (c.organization_number IS NOT NULL OR u.outcome = 'removed') ",
            "UNION ALL ",
            "SELECT CAST(0 AS BIGINT) AS update_id, s.organization_number AS key, 'seeded' AS outcome, ",
            "s.updated_at AS occurred_at, s.* FROM ",
            $current,
            " s WHERE s.last_update_id = 0 AND {from} < 0",
            ") ORDER BY update_id, key"
        )
    };
}
const UNIT_CHANGES_ENHETER: &str = unit_changes!("business_unit", "enhet");
const UNIT_CHANGES_UNDERENHETER: &str = unit_changes!("business_subunit", "underenhet");

/// The property register (Matrikkelen): its change log is one feed (change ids are one
/// sequence across domain classes), writing addresses and cadastral units; addresses are
/// published.
pub static MATRIKKEL: LazyLock<Register> = LazyLock::new(|| Register {
    name: "matrikkel",
    feeds: vec![Feed {
        name: "endringer",
        position: cursor::MATRIKKEL_CHANGES,
        kafka: cursor::KAFKA_MATRIKKEL,
        tables: vec![
            &property::ADDRESS,
            &property::ADDRESS_HISTORY,
            &property::CADASTRAL_UNIT,
            &property::CADASTRAL_UNIT_HISTORY,
            &property::PROPERTY_CHANGE,
            &DEAD_LETTER,
        ],
        outlets: vec![Outlet {
            topic: topics::MATRIKKEL_ADRESSE,
            reads: vec![&property::ADDRESS, &property::PROPERTY_CHANGE],
            select: ADDRESS_CHANGES,
        }],
        next_position: "SELECT min(change_id) FROM property_change \
                        WHERE domain_class IN ('Vegadresse', 'Matrikkeladresse') AND change_id > {from}",
    }],
});

/// An address's messages for a slice of the change log: its state, from the change that wrote
/// the current row, or a tombstone from the change that deleted it; `change_id` is the
/// message's position. The first slice (`{from}` below 0: nothing published yet) also carries
/// every address as the address file seeded it and no change has changed since (position 0).
const ADDRESS_CHANGES: &str = "SELECT * FROM (\
    SELECT c.change_id AS change_id, c.object_id AS key, c.outcome AS outcome, \
    c.occurred_at AS occurred_at, a.* \
    FROM property_change c LEFT JOIN address a \
    ON a.address_id = c.object_id AND a.last_change_id = c.change_id \
    WHERE c.domain_class IN ('Vegadresse', 'Matrikkeladresse') \
    AND c.change_id > {from} AND c.change_id <= {to} \
    AND (a.address_id IS NOT NULL OR c.outcome = 'removed') \
    UNION ALL \
    SELECT CAST(0 AS BIGINT) AS change_id, s.address_id AS key, 'seeded' AS outcome, \
    s.updated_at AS occurred_at, s.* FROM address s WHERE s.last_change_id = 0 AND {from} < 0\
    ) ORDER BY change_id, key";

/// Every register regsync follows.
pub fn all() -> [&'static Register; 3] {
    [&FREG, &BRREG, &MATRIKKEL]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outlets_read_tables_their_feed_writes_by_name() {
        for register in all() {
            for feed in &register.feeds {
                for o in &feed.outlets {
                    let sql = o.query(0, 1);
                    assert!(!sql.contains('{'), "{sql}");
                    for table in &o.reads {
                        assert!(
                            sql.contains(table.name),
                            "{} reads {} without naming it",
                            o.topic.name,
                            table.name
                        );
                        assert!(
                            feed.tables.iter().any(|t| std::ptr::eq(*t, *table)),
                            "{} reads {}, a table its feed does not write",
                            o.topic.name,
                            table.name
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn each_feed_finds_its_next_position_in_a_table_its_outlets_read() {
        for register in all() {
            for feed in &register.feeds {
                let sql = bounded(feed.next_position, 0, 0);
                assert!(!sql.contains('{'), "{sql}");
                assert!(
                    feed.outlets.is_empty()
                        || feed
                            .outlets
                            .iter()
                            .flat_map(|o| o.reads.iter())
                            .any(|t| sql.contains(t.name)),
                    "{}: {sql}",
                    feed.name
                );
            }
        }
    }

    #[test]
    fn feeds_have_their_own_positions() {
        let mut ids: Vec<&str> = all()
            .iter()
            .flat_map(|r| r.feeds.iter().flat_map(|f| [f.position, f.kafka]))
            .collect();
        let n = ids.len();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), n);
    }
}
