//! The plan of a page of the cadastral units' initial load: each unit as current state and an
//! open version from the load's time, unless the table holds it already (a load going on after
//! a stop); a unit that does not read goes to `dead_letter`. Pure.

use chrono::{DateTime, Utc};
use schemas::property::{CADASTRAL_UNIT, CADASTRAL_UNIT_HISTORY};
use schemas::tables::Table;

use super::changes::CadastralUnit;
use super::unit_rows::{UnitVersion, unit_versions, units};
use crate::TransformError;
use crate::change::{Change, Plan, dead_letters_or_refused};
use crate::freg::batch::replay;
use crate::model::DeadLetter;

/// A page of the initial load, planned.
#[derive(Debug, Default)]
pub struct UnitLoadPlan {
    /// Units for `cadastral_unit`.
    pub current: Vec<CadastralUnit>,
    /// Units for `cadastral_unit_history`.
    pub versions: Vec<CadastralUnit>,
    /// The time the versions are valid from.
    pub loaded_at: DateTime<Utc>,
    /// Units that could not be read.
    pub dead_letters: Vec<DeadLetter>,
}

impl UnitLoadPlan {
    /// Adds a unit's outcome; `held` says whether each table holds it already.
    pub fn take(
        &mut self,
        read: Result<CadastralUnit, (Option<String>, TransformError)>,
        held: impl Fn(&str) -> (bool, bool),
    ) {
        match read {
            Ok(unit) => {
                let (in_current, in_history) = held(&unit.unit_id);
                if !in_history {
                    self.versions.push(unit.clone());
                }
                if !in_current {
                    self.current.push(unit);
                }
            }
            Err((id, e)) => self.dead_letters.push(DeadLetter {
                source: "matrikkel.matrikkelenheter".into(),
                cursor: format!("matrikkelenhet {}", id.as_deref().unwrap_or("?")),
                record_id: id.clone(),
                reason: e.to_string(),
                replay: replay(&[("matrikkelenhetId", id.as_deref())]),
            }),
        }
    }
}

impl Plan for UnitLoadPlan {
    fn changes(
        &self,
        table: &'static Table,
        now: DateTime<Utc>,
    ) -> Result<Vec<Change>, TransformError> {
        if std::ptr::eq(table, &*CADASTRAL_UNIT) {
            let rows: Vec<(&CadastralUnit, i64)> = self.current.iter().map(|u| (u, 0)).collect();
            Ok(vec![Change::Append(units(&rows, now)?)])
        } else if std::ptr::eq(table, &*CADASTRAL_UNIT_HISTORY) {
            let rows: Vec<UnitVersion> = self
                .versions
                .iter()
                .map(|unit| UnitVersion {
                    unit,
                    change_id: 0,
                    valid_from: self.loaded_at,
                    valid_to: None,
                })
                .collect();
            Ok(vec![Change::Append(unit_versions(&rows, now)?)])
        } else {
            dead_letters_or_refused("matrikkel", table, &self.dead_letters, now)
        }
    }

    fn entities(&self) -> usize {
        self.current.len()
    }

    fn dead_letters(&self) -> usize {
        self.dead_letters.len()
    }
}
