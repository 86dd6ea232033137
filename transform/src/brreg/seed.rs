//! Seeding from the bulk download (`/enheter/lastned`, `/underenheter/lastned`): a chunk of the
//! download's units to rows of the list's current-state and history tables. Pure.
//!
//! A seed that stopped part-way goes on from a new download (the register builds it nightly,
//! so it may differ): the caller says which units each table holds already, and those are left
//! as they are. What changed since the earlier download is replayed from the updates list,
//! which is followed from the earliest download's time. A unit twice in a download is taken
//! once; a unit that does not normalise goes to `dead_letter` with the reason.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use schemas::tables::Table;
use serde_json::Value;

use super::plan::list_tables;
use super::rows::{self, UnitVersion};
use super::unit::{BusinessUnit, UnitKind, normalise};
use crate::TransformError;
use crate::change::{Change, Plan, dead_letters_or_refused};
use crate::freg::batch::replay;
use crate::model::DeadLetter;

/// A unit's organisation number as a number (nine digits fit), for compact sets.
pub fn number_key(number: &str) -> Option<u32> {
    number.parse().ok()
}

/// Which units each table of a list holds already, and which the download gave so far.
#[derive(Debug, Default)]
pub struct Seeded {
    /// In the current-state table.
    pub current: HashSet<u32>,
    /// With a version in the history table.
    pub history: HashSet<u32>,
    /// Taken from this download (a second copy is skipped).
    pub taken: HashSet<u32>,
}

/// The rows of one chunk of a download.
#[derive(Debug)]
pub struct SeedPlan {
    /// Which list.
    pub kind: UnitKind,
    /// New current state.
    pub current: Vec<(BusinessUnit, i64)>,
    /// New versions.
    pub versions: Vec<UnitVersion>,
    /// Units that do not normalise.
    pub dead_letters: Vec<DeadLetter>,
    /// Units of the chunk the tables held already, or given twice.
    pub skipped: usize,
}

impl SeedPlan {
    /// Nothing yet.
    pub fn empty(kind: UnitKind) -> Self {
        Self {
            kind,
            current: Vec::new(),
            versions: Vec::new(),
            dead_letters: Vec::new(),
            skipped: 0,
        }
    }

    /// Takes in the next chunk's rows.
    pub fn absorb(&mut self, next: SeedPlan) {
        self.current.extend(next.current);
        self.versions.extend(next.versions);
        self.dead_letters.extend(next.dead_letters);
        self.skipped += next.skipped;
    }

    /// Units it writes (to either table) or rejects.
    pub fn units(&self) -> usize {
        self.current.len().max(self.versions.len()) + self.dead_letters.len()
    }
}

/// Plans a chunk of a download taken at `at` (the time its versions are valid from). The
/// position in the download (`first`, the chunk's first unit's index) names rejected units.
pub fn seed_plan(
    kind: UnitKind,
    docs: &[Value],
    first: u64,
    seeded: &mut Seeded,
    at: DateTime<Utc>,
) -> SeedPlan {
    let mut out = SeedPlan::empty(kind);
    for (i, doc) in docs.iter().enumerate() {
        let unit = match normalise(doc, kind) {
            Ok(unit) => unit,
            Err(e) => {
                let number = doc.get("organisasjonsnummer").and_then(Value::as_str);
                out.dead_letters.push(DeadLetter {
                    source: format!("brreg.{}.lastned", kind.path()),
                    cursor: format!("unit {}", first + i as u64),
                    record_id: number.map(str::to_owned),
                    reason: e.to_string(),
                    replay: replay(&[("organisasjonsnummer", number)]),
                });
                continue;
            }
        };
        let Some(key) = number_key(&unit.organization_number) else {
            continue;
        };
        if !seeded.taken.insert(key) {
            out.skipped += 1;
            continue;
        }
        let in_history = seeded.history.contains(&key);
        if seeded.current.contains(&key) && in_history {
            out.skipped += 1;
            continue;
        }
        if !in_history {
            out.versions.push(UnitVersion {
                unit: unit.clone(),
                update_id: 0,
                valid_from: at,
                valid_to: None,
            });
        }
        if !seeded.current.contains(&key) {
            out.current.push((unit, 0));
        }
    }
    out
}

impl Plan for SeedPlan {
    fn changes(
        &self,
        table: &'static Table,
        now: DateTime<Utc>,
    ) -> Result<Vec<Change>, TransformError> {
        let [current, history, ..] = list_tables(self.kind);
        if std::ptr::eq(table, current) {
            Ok(vec![Change::Append(rows::units(
                table,
                &self.current,
                now,
            )?)])
        } else if std::ptr::eq(table, history) {
            Ok(vec![Change::Append(rows::versions(
                table,
                &self.versions,
                now,
            )?)])
        } else {
            dead_letters_or_refused("brreg", table, &self.dead_letters, now)
        }
    }

    fn entities(&self) -> usize {
        self.current.len()
    }

    fn dead_letters(&self) -> usize {
        self.dead_letters.len()
    }
}
