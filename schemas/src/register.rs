//! Each register regsync follows, as a typed description: the application ids of its
//! positions, the tables its feed writes (in commit order) and the Kafka topics it publishes,
//! each from one table. The worker and the Kafka publisher read these instead of naming a
//! register's tables or topics.

use std::sync::LazyLock;

use crate::cursor;
use crate::tables::{self, Table};
use crate::topics::{self, Topic};

/// A Kafka topic a register publishes, and the lake rows that become its messages.
#[derive(Debug, Clone, Copy)]
pub struct Outlet {
    /// The topic.
    pub topic: Topic,
    /// The table whose rows become messages.
    pub table: &'static Table,
    /// The column holding the feed position that wrote each row: a slice of positions is
    /// published once every table of the register has committed it.
    pub position_column: &'static str,
    /// The order of the messages within a slice (SQL `ORDER BY` columns).
    pub order_by: &'static str,
}

/// A register regsync follows.
#[derive(Debug)]
pub struct Register {
    /// Short name, as in pipeline files (`source.register`) and topic names.
    pub name: &'static str,
    /// Application id of the last feed position each table has applied.
    pub feed: &'static str,
    /// Application id of the number of bulk-extract batches a table holds (while seeding).
    pub seed_batches: &'static str,
    /// Application id of the feed position the bulk extract was taken at.
    pub seed_position: &'static str,
    /// Application id of the Kafka sink's position (on `kafka_sink`).
    pub kafka: &'static str,
    /// The tables the feed writes, in the order of its commits. The entity's current state
    /// goes first: its position is what says a seed is complete.
    pub tables: Vec<&'static Table>,
    /// The topics it publishes.
    pub outlets: Vec<Outlet>,
}

impl Register {
    /// The topics it publishes.
    pub fn topics(&self) -> Vec<Topic> {
        self.outlets.iter().map(|o| o.topic).collect()
    }
}

/// The population register (Folkeregisteret).
pub static FREG: LazyLock<Register> = LazyLock::new(|| Register {
    name: "freg",
    feed: cursor::FREG_FEED,
    seed_batches: cursor::FREG_SEED_BATCHES,
    seed_position: cursor::FREG_SEED_SEQUENCE,
    kafka: cursor::KAFKA_FREG,
    tables: tables::TABLES.to_vec(),
    outlets: vec![
        Outlet {
            topic: topics::FREG_EVENT,
            table: &tables::PERSON_EVENT,
            position_column: "sequence",
            order_by: "sequence",
        },
        Outlet {
            topic: topics::FREG_PERSON,
            table: &tables::PERSON,
            position_column: "last_sequence",
            order_by: "last_sequence, person_id",
        },
    ],
});

/// Every register regsync follows.
pub fn all() -> [&'static Register; 1] {
    [&FREG]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outlets_read_columns_their_tables_have() {
        for register in all() {
            for o in &register.outlets {
                assert!(
                    o.table.schema.field_with_name(o.position_column).is_ok(),
                    "{}: {}.{}",
                    o.topic.name,
                    o.table.name,
                    o.position_column
                );
                assert!(
                    register.tables.iter().any(|t| std::ptr::eq(*t, o.table)),
                    "{} publishes {}, a table its feed does not write",
                    o.topic.name,
                    o.table.name
                );
            }
        }
    }
}
