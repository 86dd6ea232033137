//! Writing planned rows to the lake: each table in its own Delta commit, with its position.
//!
//! [`apply`] is the one path from a batch of feed positions to the tables, used by the worker
//! and by the model-based tests, so what the tests check is what runs.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use schemas::cursor::FREG_FEED;
use schemas::tables::Table;
use transform::change::Plan;
use transform::freg::batch::{self, Planned};
use transform::freg::feed::{BadEntry, Item, Lookup};

use crate::IngestError;
use crate::lake::Lake;

/// Writes a plan's changes to each of `tables`, each in its own commit recording `txns`.
pub async fn commit(
    lake: &mut Lake,
    plan: &dyn Plan,
    tables: &[&'static Table],
    txns: &[(&str, i64)],
    now: DateTime<Utc>,
) -> Result<(), IngestError> {
    for table in tables {
        let changes = plan.changes(table, now)?;
        lake.apply_changes(table, changes, txns).await?;
    }
    Ok(())
}

/// Feed positions taken without a hole, and the documents fetched for them.
#[derive(Debug, Default)]
pub struct FeedBatch {
    /// Positions `p+1 ..= last`, in order.
    pub items: Vec<Item>,
    /// Entries without a usable sequence number, seen while reading these positions.
    pub unplaced: Vec<BadEntry>,
    /// Fetched documents by [`batch::document_key`].
    pub docs: HashMap<String, Lookup>,
    /// The fetcher had more of the feed to read when it sent this batch (its last page was
    /// full): a backlog, whose next batch is on its way.
    pub behind: bool,
}

impl FeedBatch {
    /// The last position in the batch.
    pub fn last(&self) -> Option<i64> {
        self.items.last().map(Item::sequence)
    }

    /// Takes the batch of the positions right after this one's into this one: planning the
    /// result is planning one larger batch. A document fetched for both is the later fetch's,
    /// as one larger batch would have fetched it once, later.
    pub fn absorb(&mut self, next: FeedBatch) {
        debug_assert!(match (self.last(), next.items.first()) {
            (Some(last), Some(first)) => first.sequence() > last,
            _ => true,
        });
        self.items.extend(next.items);
        self.unplaced.extend(next.unplaced);
        self.docs.extend(next.docs);
        self.behind = next.behind;
    }
}

/// What [`apply`] wrote.
#[derive(Debug, Default, Clone, Copy)]
pub struct Applied {
    /// Positions in the batch.
    pub entries: usize,
    /// Persons written to `person` (by the table furthest behind).
    pub persons: usize,
    /// Dead letters written.
    pub dead_letters: usize,
}

/// Applies a batch to each of `tables` whose position is before the batch's last, in order,
/// each in its own commit recording the batch's last position; `positions` (table name ->
/// last applied) is moved along. A table ahead of part of the batch gets only what it lacks.
///
/// The batch is planned for every table position first, and its documents are let go before
/// the first write: a rewrite of `person` and `person_history` is when a catch-up holds the
/// most memory, and the documents are most of a batch's.
pub async fn apply(
    lake: &mut Lake,
    batch: FeedBatch,
    positions: &mut HashMap<&'static str, i64>,
    tables: &[&'static Table],
    now: DateTime<Utc>,
) -> Result<Applied, IngestError> {
    let Some(last) = batch.last() else {
        return Ok(Applied::default());
    };
    let behind: Vec<(&'static Table, i64)> = tables
        .iter()
        .map(|t| (*t, positions.get(t.name).copied().unwrap_or(0)))
        .filter(|(_, after)| *after < last)
        .collect();
    let mut plans: HashMap<i64, Planned> = HashMap::new();
    for (_, after) in &behind {
        plans.entry(*after).or_insert_with(|| {
            batch::plan(&batch.items, &batch.unplaced, &batch.docs, *after, now)
        });
    }
    let mut applied = Applied {
        entries: batch.items.len(),
        ..Applied::default()
    };
    drop(batch);
    for (table, after) in behind {
        let planned = &plans[&after];
        commit(lake, planned, &[table], &[(FREG_FEED, last)], now).await?;
        positions.insert(table.name, last);
        applied.persons = applied.persons.max(planned.entities());
        // Counted once, when the table that holds them is written.
        if std::ptr::eq(table, &*schemas::tables::DEAD_LETTER) {
            applied.dead_letters = planned.dead_letters();
        }
    }
    Ok(applied)
}

/// The tables [`apply`] writes, in order.
pub fn feed_tables() -> &'static [&'static Table] {
    transform::freg::tables::feed_tables()
}
