//! Planning a batch of one updates list: the updates after a table's position and the unit
//! documents fetched for them, to the changes of the list's tables. Pure.
//!
//! The register serves only a unit's current document, so a unit updated several times in a
//! batch gets one new version, from its last update. Per unit, by its last update:
//! - `Fjernet`, or a unit the register answers 410 for: the unit leaves current state (its
//!   open version ends at the update's time); a unit it does not know (404) is dead-lettered;
//! - otherwise its document becomes its current state and a new version (a `Sletting` keeps the
//!   unit, with `slettedato`, as the register does);
//! - an invalid organisation number, or a document that does not normalise or names another
//!   unit, goes to `dead_letter` with the reason, and the unit's state is left as it was.
//!
//! Every update after the position gets exactly one `business_update` row; a second, different
//! update with the same id is dead-lettered.
//!
//! The register answers a deleted unit (`Sletting`) with 200 and fewer attributes (its
//! `SlettetEnhet` shape: name, form, `slettedato`), which becomes the unit's state as it is; a
//! unit removed from the open data answers 410 (`GoneEnhet`), which is [`Fetched::Gone`].

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use schemas::business::{
    BUSINESS_SUBUNIT, BUSINESS_SUBUNIT_HISTORY, BUSINESS_UNIT, BUSINESS_UNIT_HISTORY,
    BUSINESS_UPDATE,
};
use schemas::tables::{DEAD_LETTER, Table};
use serde_json::Value;

use super::rows::{self, UnitVersion};
use super::unit::{BusinessUnit, UnitKind, normalise};
use super::updates::{ChangeType, Unplaced, Update};
use crate::TransformError;
use crate::change::{Change, Plan, dead_letters_or_refused};
use crate::freg::batch::replay;
use crate::model::{DeadLetter, Outcome};

/// What the register answered for a unit.
#[derive(Debug, Clone, PartialEq)]
pub enum Fetched {
    /// Its current document.
    Document(Value),
    /// Removed from the open data (410): copies delete it too.
    Gone,
}

/// A `business_update` row.
#[derive(Debug, Clone, PartialEq)]
pub struct UpdateRow {
    /// The update.
    pub update: Update,
    /// What became of it.
    pub outcome: Outcome,
}

/// The tables of one updates list.
#[derive(Debug, Clone, Copy)]
pub struct ListTables {
    /// Current state.
    pub current: &'static Table,
    /// History.
    pub history: &'static Table,
}

/// The tables an updates list writes, in the order of its commits (current state first).
pub fn list_tables(kind: UnitKind) -> [&'static Table; 4] {
    let t = tables_of(kind);
    [t.current, t.history, &BUSINESS_UPDATE, &DEAD_LETTER]
}

fn tables_of(kind: UnitKind) -> ListTables {
    match kind {
        UnitKind::Enhet => ListTables {
            current: &BUSINESS_UNIT,
            history: &BUSINESS_UNIT_HISTORY,
        },
        UnitKind::Underenhet => ListTables {
            current: &BUSINESS_SUBUNIT,
            history: &BUSINESS_SUBUNIT_HISTORY,
        },
    }
}

/// The rows a batch produces.
#[derive(Debug)]
pub struct UnitPlan {
    /// Which list.
    pub kind: UnitKind,
    /// Current state: each unit's state with the update that produced it.
    pub states: Vec<(BusinessUnit, i64)>,
    /// Units leaving current state (only the organisation number is set).
    pub removals: Vec<(BusinessUnit, i64)>,
    /// Per unit written or removed: its open version ends at `valid_to`.
    pub closes: Vec<UnitVersion>,
    /// New versions.
    pub inserts: Vec<UnitVersion>,
    /// One row per update.
    pub updates: Vec<UpdateRow>,
    /// Rejected records.
    pub dead_letters: Vec<DeadLetter>,
}

/// The source name of a list in `dead_letter`.
fn source(kind: UnitKind) -> String {
    format!("brreg.{}", kind.path())
}

/// Plans the updates after `after` (ids in any order; each taken once).
pub fn plan(
    kind: UnitKind,
    updates: &[Update],
    unplaced: &[Unplaced],
    documents: &HashMap<String, Fetched>,
    after: i64,
    now: DateTime<Utc>,
) -> UnitPlan {
    let mut out = UnitPlan {
        kind,
        states: Vec::new(),
        removals: Vec::new(),
        closes: Vec::new(),
        inserts: Vec::new(),
        updates: Vec::new(),
        dead_letters: Vec::new(),
    };
    let mut todo: Vec<&Update> = updates.iter().filter(|u| u.id > after).collect();
    todo.sort_by_key(|u| u.id);
    // The same id twice: a repeat is taken once; a second, different update for an id is
    // never dropped silently.
    let mut seen: Vec<&Update> = Vec::with_capacity(todo.len());
    for u in todo {
        match seen.last() {
            Some(prev) if prev.id == u.id => {
                if *prev != u {
                    out.dead_letters.push(dead_letter(
                        kind,
                        u,
                        &format!(
                            "a second, different update with oppdateringsid {} (the first, for {}, was applied)",
                            u.id, prev.organization_number
                        ),
                    ));
                }
            }
            _ => seen.push(u),
        }
    }
    let todo = seen;
    // Each unit's last update decides its state.
    let mut last: HashMap<&str, &Update> = HashMap::new();
    for u in todo.iter().filter(|u| u.rejected.is_none()) {
        last.insert(u.organization_number.as_str(), u);
    }
    let mut outcome_of: HashMap<&str, Outcome> = HashMap::new();
    let mut order: Vec<&&Update> = last.values().collect();
    order.sort_by_key(|u| u.id);
    for u in order {
        let at = u.at.unwrap_or(now);
        let number = u.organization_number.as_str();
        let end = |out: &mut UnitPlan| {
            let unit = BusinessUnit {
                organization_number: number.to_owned(),
                ..BusinessUnit::default()
            };
            out.closes.push(UnitVersion {
                unit: unit.clone(),
                update_id: u.id,
                valid_from: at,
                valid_to: Some(at),
            });
            out.removals.push((unit, u.id));
        };
        let fetched = documents.get(number);
        let outcome = match (&u.change, fetched) {
            (ChangeType::Removed, _) | (_, Some(Fetched::Gone)) => {
                end(&mut out);
                Outcome::Removed
            }
            (_, Some(Fetched::Document(doc))) => match read(doc, kind, number) {
                Ok(unit) => {
                    out.closes.push(UnitVersion {
                        unit: unit.clone(),
                        update_id: u.id,
                        valid_from: at,
                        valid_to: Some(at),
                    });
                    out.inserts.push(UnitVersion {
                        unit: unit.clone(),
                        update_id: u.id,
                        valid_from: at,
                        valid_to: None,
                    });
                    out.states.push((unit, u.id));
                    Outcome::Applied
                }
                Err(reason) => {
                    out.dead_letters.push(dead_letter(kind, u, &reason));
                    Outcome::DeadLettered
                }
            },
            (_, None) => {
                out.dead_letters.push(dead_letter(
                    kind,
                    u,
                    "the register does not know the unit (404, or no answer): its state is left as it was",
                ));
                Outcome::DeadLettered
            }
        };
        outcome_of.insert(number, outcome);
    }
    for u in todo {
        let outcome = match &u.rejected {
            Some(reason) => {
                out.dead_letters.push(dead_letter(kind, u, reason));
                Outcome::DeadLettered
            }
            // The update that decided the unit's state carries what became of it; an earlier
            // one of the same unit was applied, then overtaken.
            None => match outcome_of[u.organization_number.as_str()] {
                Outcome::Removed if last[u.organization_number.as_str()].id != u.id => {
                    Outcome::Applied
                }
                outcome => outcome,
            },
        };
        out.updates.push(UpdateRow {
            update: u.clone(),
            outcome,
        });
    }
    for bad in unplaced {
        out.dead_letters.push(DeadLetter {
            source: source(kind),
            cursor: bad.place.clone(),
            record_id: bad.organization_number.clone(),
            reason: bad.reason.clone(),
            replay: replay(&[("organisasjonsnummer", bad.organization_number.as_deref())]),
        });
    }
    out
}

/// A unit's document, checked to be the unit asked for.
fn read(doc: &Value, kind: UnitKind, number: &str) -> Result<BusinessUnit, String> {
    let unit = normalise(doc, kind).map_err(|e| e.to_string())?;
    if unit.organization_number != number {
        return Err(format!(
            "the register answered with unit {} for {number}",
            unit.organization_number
        ));
    }
    Ok(unit)
}

fn dead_letter(kind: UnitKind, u: &Update, reason: &str) -> DeadLetter {
    DeadLetter {
        source: source(kind),
        cursor: format!("oppdateringsid={}", u.id),
        record_id: Some(u.organization_number.clone()).filter(|n| !n.is_empty()),
        reason: reason.to_owned(),
        replay: replay(&[
            ("oppdateringsid", Some(&u.id.to_string())),
            ("organisasjonsnummer", Some(&u.organization_number)),
            ("endringstype", Some(u.change.as_str())),
        ]),
    }
}

impl Plan for UnitPlan {
    fn changes(
        &self,
        table: &'static Table,
        now: DateTime<Utc>,
    ) -> Result<Vec<Change>, TransformError> {
        let t = tables_of(self.kind);
        if std::ptr::eq(table, t.current) {
            Ok(vec![
                Change::Remove(rows::units(table, &self.removals, now)?),
                Change::Upsert(rows::units(table, &self.states, now)?),
            ])
        } else if std::ptr::eq(table, t.history) {
            Ok(vec![
                Change::Close(rows::versions(table, &self.closes, now)?),
                Change::Insert(rows::versions(table, &self.inserts, now)?),
            ])
        } else if std::ptr::eq(table, &*BUSINESS_UPDATE) {
            Ok(vec![Change::Append(rows::updates(
                self.kind,
                &self.updates,
                now,
            )?)])
        } else {
            dead_letters_or_refused("brreg", table, &self.dead_letters, now)
        }
    }

    fn entities(&self) -> usize {
        self.states.len() + self.removals.len()
    }

    fn dead_letters(&self) -> usize {
        self.dead_letters.len()
    }
}
