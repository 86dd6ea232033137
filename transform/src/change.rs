//! Changes to a lake table, as rows in the table's schema: what a register's plan asks the lake
//! writer to do. The writer applies them by the table's kind, key and withheld columns
//! ([`schemas::tables::Table`]), whatever the register.

use arrow::record_batch::RecordBatch;
use chrono::{DateTime, Utc};
use schemas::tables::Table;

use crate::TransformError;

/// One change to a table: rows in the table's schema and what to do with them.
#[derive(Debug, Clone)]
pub enum Change {
    /// Rows the table does not hold yet (a log's entries, a seed's first rows): appended.
    Append(RecordBatch),
    /// Current state: each row replaces the table's row with its key, or is added.
    Upsert(RecordBatch),
    /// Current state: the table's row with the row's key is removed (the entity left the
    /// register).
    Remove(RecordBatch),
    /// Current state and history: every row with the row's key gets its withheld columns nulled
    /// and, in current state, the row's `withhold_sets` columns; nothing is added.
    Withhold(RecordBatch),
    /// History: the open version with the row's key ends at the row's `valid_to`.
    Close(RecordBatch),
    /// History: like [`Change::Close`], and every version with the row's key gets its withheld
    /// columns nulled.
    Scrub(RecordBatch),
    /// History: a new version, added.
    Insert(RecordBatch),
}

impl Change {
    /// The rows.
    pub fn rows(&self) -> &RecordBatch {
        match self {
            Self::Append(b)
            | Self::Upsert(b)
            | Self::Remove(b)
            | Self::Withhold(b)
            | Self::Close(b)
            | Self::Scrub(b)
            | Self::Insert(b) => b,
        }
    }

    /// The change's name, as the lake writer tags its rows when it joins them to the table.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Append(_) => "append",
            Self::Upsert(_) => "upsert",
            Self::Remove(_) => "remove",
            Self::Withhold(_) => "withhold",
            Self::Close(_) => "close",
            Self::Scrub(_) => "scrub",
            Self::Insert(_) => "insert",
        }
    }

    /// Whether the change only adds rows (no existing row is read or changed).
    pub fn only_adds(&self) -> bool {
        matches!(self, Self::Append(_) | Self::Insert(_))
    }
}

/// The tail every register's plan shares: its rejected records appended to `dead_letter`,
/// and any other table refused as one the register does not write.
pub fn dead_letters_or_refused(
    register: &'static str,
    table: &'static Table,
    dead_letters: &[crate::model::DeadLetter],
    now: DateTime<Utc>,
) -> Result<Vec<Change>, TransformError> {
    if std::ptr::eq(table, &*schemas::tables::DEAD_LETTER) {
        Ok(vec![Change::Append(crate::encode::dead_letters(
            dead_letters,
            now,
        )?)])
    } else {
        Err(TransformError::NotWritten {
            register,
            table: table.name,
        })
    }
}

/// A register's plan for a batch of its feed (or of its bulk extract): the changes of each of
/// its tables. The worker writes each table in its own commit, in the register's order.
pub trait Plan: Send + Sync {
    /// The changes to `table` (none: nothing to write; the table's position still moves).
    /// A table the register does not write is an error.
    fn changes(
        &self,
        table: &'static Table,
        now: DateTime<Utc>,
    ) -> Result<Vec<Change>, TransformError>;

    /// Entities (persons, units, addresses) whose state the plan writes.
    fn entities(&self) -> usize;

    /// Records the plan rejects into `dead_letter`.
    fn dead_letters(&self) -> usize;
}
