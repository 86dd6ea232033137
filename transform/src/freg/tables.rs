//! The population register's plans as changes of its lake tables: `person` (current state),
//! `person_history`, `person_event` and `dead_letter`.

use chrono::{DateTime, Utc};
use schemas::tables::{PERSON, PERSON_EVENT, PERSON_HISTORY, Table};

use super::batch::Planned;
use crate::TransformError;
use crate::change::{Change, Plan, dead_letters_or_refused};
use crate::encode;
use crate::model::PersonVersion;

/// The tables the population register's feed writes, in the order of its commits.
pub fn feed_tables() -> &'static [&'static Table] {
    schemas::tables::TABLES.as_slice()
}

fn is(table: &'static Table, other: &'static Table) -> bool {
    std::ptr::eq(table, other)
}

impl Planned {
    /// `person_history` rows withholding the address of the persons in [`Planned::withholds`].
    fn withheld_versions(&self, now: DateTime<Utc>) -> Vec<PersonVersion> {
        self.withholds
            .iter()
            .map(|w| PersonVersion {
                person: w.person(),
                sequence: w.sequence,
                valid_from: now,
                valid_to: None,
            })
            .collect()
    }

    /// The changes of the tables every plan writes alike.
    fn log_changes(
        &self,
        table: &'static Table,
        now: DateTime<Utc>,
    ) -> Result<Vec<Change>, TransformError> {
        if is(table, &PERSON_EVENT) {
            Ok(vec![Change::Append(encode::events(&self.events, now)?)])
        } else {
            dead_letters_or_refused("freg", table, &self.dead_letters, now)
        }
    }

    fn history_changes(
        &self,
        withholds: &[PersonVersion],
        now: DateTime<Utc>,
    ) -> Result<Vec<Change>, TransformError> {
        Ok(vec![
            Change::Close(encode::history(&self.closes, now)?),
            Change::Scrub(encode::history(&self.scrubs, now)?),
            Change::Withhold(encode::history(withholds, now)?),
            Change::Insert(encode::history(&self.inserts, now)?),
        ])
    }
}

/// A plan of feed entries (or of a re-seed): persons are upserted, and the persons whose entry
/// could not be applied have their address withheld in every table.
impl Plan for Planned {
    fn changes(
        &self,
        table: &'static Table,
        now: DateTime<Utc>,
    ) -> Result<Vec<Change>, TransformError> {
        if is(table, &PERSON) {
            let withholds: Vec<_> = self
                .withholds
                .iter()
                .map(|w| (w.person(), w.sequence))
                .collect();
            Ok(vec![
                Change::Upsert(encode::persons(&self.persons, now)?),
                Change::Withhold(encode::persons(&withholds, now)?),
            ])
        } else if is(table, &PERSON_HISTORY) {
            self.history_changes(&self.withheld_versions(now), now)
        } else {
            self.log_changes(table, now)
        }
    }

    fn entities(&self) -> usize {
        self.persons.len()
    }

    fn dead_letters(&self) -> usize {
        self.dead_letters.len()
    }
}

/// A seed's plan: the tables hold none of its persons yet, so their rows are appended, and a
/// person whose document could not be read has nothing in the tables to withhold.
#[derive(Debug)]
pub struct Seed<'a>(pub &'a Planned);

impl Plan for Seed<'_> {
    fn changes(
        &self,
        table: &'static Table,
        now: DateTime<Utc>,
    ) -> Result<Vec<Change>, TransformError> {
        let planned = self.0;
        if is(table, &PERSON) {
            Ok(vec![Change::Append(encode::persons(
                &planned.persons,
                now,
            )?)])
        } else if is(table, &PERSON_HISTORY) {
            planned.history_changes(&[], now)
        } else {
            planned.log_changes(table, now)
        }
    }

    fn entities(&self) -> usize {
        self.0.persons.len()
    }

    fn dead_letters(&self) -> usize {
        self.0.dead_letters.len()
    }
}
