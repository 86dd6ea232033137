//! Writing planned rows to the lake: each table in its own Delta commit, with its position.
//!
//! [`apply`] is the one path from a batch of feed positions to the tables, used by the worker
//! and by the model-based tests, so what the tests check is what runs.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use schemas::cursor::FREG_FEED;
use schemas::tables::{DEAD_LETTER, PERSON, PERSON_EVENT, PERSON_HISTORY, TABLES, Table};
use transform::encode;
use transform::freg::batch::{self, Planned};
use transform::freg::feed::{BadEntry, Item, Lookup};
use transform::model::PersonVersion;

use crate::IngestError;
use crate::lake::Lake;

/// How `person` rows are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PersonWrite {
    /// Appended: the table holds none of these persons yet (a seed commit).
    Append,
    /// Upserted by person id.
    Upsert,
}

/// Writes planned rows to `tables`, each commit recording `txns`.
pub async fn commit(
    lake: &mut Lake,
    planned: &Planned,
    tables: &[&'static Table],
    txns: &[(&str, i64)],
    persons: PersonWrite,
    now: DateTime<Utc>,
) -> Result<(), IngestError> {
    for table in tables {
        if std::ptr::eq(*table, &*PERSON) {
            let rows = encode::persons(&planned.persons, now)?;
            // An appended seed batch's persons are not in the table: nothing to withhold.
            let withholds: Vec<_> = planned
                .withholds
                .iter()
                .filter(|_| persons == PersonWrite::Upsert)
                .map(|w| (w.person(), w.sequence))
                .collect();
            let withholds = encode::persons(&withholds, now)?;
            match persons {
                PersonWrite::Append => lake.append(&PERSON, Some(rows), txns).await?,
                PersonWrite::Upsert => lake.upsert_persons(rows, withholds, txns).await?,
            }
        } else if std::ptr::eq(*table, &*PERSON_HISTORY) {
            let withholds: Vec<_> = planned
                .withholds
                .iter()
                .filter(|_| persons == PersonWrite::Upsert)
                .map(|w| PersonVersion {
                    person: w.person(),
                    sequence: w.sequence,
                    valid_from: now,
                    valid_to: None,
                })
                .collect();
            let (c, s, w, i) = (
                encode::history(&planned.closes, now)?,
                encode::history(&planned.scrubs, now)?,
                encode::history(&withholds, now)?,
                encode::history(&planned.inserts, now)?,
            );
            lake.apply_history(c, s, w, i, txns).await?;
        } else if std::ptr::eq(*table, &*PERSON_EVENT) {
            let rows = encode::events(&planned.events, now)?;
            lake.append(&PERSON_EVENT, Some(rows), txns).await?;
        } else if std::ptr::eq(*table, &*DEAD_LETTER) {
            let rows = encode::dead_letters(&planned.dead_letters, now)?;
            lake.append(&DEAD_LETTER, Some(rows), txns).await?;
        } else {
            return Err(IngestError::LakeRead(format!(
                "the feed worker does not write table {}",
                table.name
            )));
        }
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
}

impl FeedBatch {
    /// The last position in the batch.
    pub fn last(&self) -> Option<i64> {
        self.items.last().map(Item::sequence)
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
pub async fn apply(
    lake: &mut Lake,
    batch: &FeedBatch,
    positions: &mut HashMap<&'static str, i64>,
    tables: &[&'static Table],
    now: DateTime<Utc>,
) -> Result<Applied, IngestError> {
    let Some(last) = batch.last() else {
        return Ok(Applied::default());
    };
    let mut plans: HashMap<i64, Planned> = HashMap::new();
    let mut applied = Applied {
        entries: batch.items.len(),
        ..Applied::default()
    };
    for table in tables {
        let after = positions.get(table.name).copied().unwrap_or(0);
        if after >= last {
            continue;
        }
        let planned = plans
            .entry(after)
            .or_insert_with(|| batch::plan(&batch.items, &batch.unplaced, &batch.docs, after, now));
        commit(
            lake,
            planned,
            &[table],
            &[(FREG_FEED, last)],
            PersonWrite::Upsert,
            now,
        )
        .await?;
        positions.insert(table.name, last);
        applied.persons = applied.persons.max(planned.persons.len());
        if std::ptr::eq(*table, &*DEAD_LETTER) {
            applied.dead_letters = planned.dead_letters.len();
        }
    }
    Ok(applied)
}

/// The tables [`apply`] writes, in order.
pub fn feed_tables() -> &'static [&'static Table] {
    TABLES.as_slice()
}
