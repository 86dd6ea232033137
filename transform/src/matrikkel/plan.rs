//! Planning a page of the change log after a table's position: the changes of the property
//! tables. Pure.
//!
//! The log returns each changed object's current state (its bubble), so an object changed
//! several times in a page gets one new version, from its last change. Per object, by its last
//! change:
//! - `Sletting`: the object leaves current state; its open version ends at the change's time;
//! - otherwise its bubble becomes its current state and a new version; a bubble that does not
//!   read, names another object, or is missing (the object is gone while its deletion is not in
//!   this page) goes to `dead_letter` with the reason, and the object's state is left as it was.
//!
//! Every change after the position gets exactly one `property_change` row; a second, different
//! change with the same id is dead-lettered. Changes of domain classes regsync does not keep, and
//! objects outside the kommuner followed (a register that did not apply the filter), are logged
//! as `ignored`.
//!
//! A change is dated no earlier than `not_before`, the end of the seed: the seed's versions start
//! then, and a change replayed from before it (the log is read from before the address file was
//! taken) must not end a version before it began.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use schemas::property::{
    ADDRESS, ADDRESS_HISTORY, CADASTRAL_UNIT, CADASTRAL_UNIT_HISTORY, PROPERTY_CHANGE,
};
use schemas::tables::Table;

use super::addresses::Address;
use super::changes::{
    CadastralUnit, Change, ChangePage, ChangeType, ObjectKind, read_address_bubble,
    read_unit_bubble,
};
use super::rows::{AddressVersion, addresses, versions};
use super::unit_rows::{UnitVersion, changes, unit_versions, units};
use crate::TransformError;
use crate::change::{Change as TableChange, Plan, dead_letters_or_refused};
use crate::freg::batch::replay;
use crate::model::{DeadLetter, Outcome};

/// An object's new state or its end, with the change that decided it and when.
#[derive(Debug, Clone)]
pub struct Decided<T> {
    /// The state (for an end, only the id is meaningful).
    pub state: T,
    /// The change.
    pub change_id: i64,
    /// When.
    pub at: DateTime<Utc>,
}

/// The rows a page produces.
#[derive(Debug, Default)]
pub struct ChangePlan {
    /// Addresses' new states.
    pub addresses: Vec<Decided<Address>>,
    /// Addresses that left.
    pub address_ends: Vec<Decided<Address>>,
    /// Cadastral units' new states.
    pub units: Vec<Decided<CadastralUnit>>,
    /// Cadastral units that left.
    pub unit_ends: Vec<Decided<CadastralUnit>>,
    /// One row per change after the position.
    pub changes: Vec<(Change, Outcome)>,
    /// Rejected records.
    pub dead_letters: Vec<DeadLetter>,
}

const SOURCE: &str = "matrikkel.endringer";

fn dead_letter(c: &Change, reason: &str) -> DeadLetter {
    DeadLetter {
        source: SOURCE.into(),
        cursor: format!("endringId={}", c.id),
        record_id: Some(c.object_id.clone()).filter(|id| !id.is_empty()),
        reason: reason.to_owned(),
        replay: replay(&[
            ("endringId", Some(&c.id.to_string())),
            ("domainklasse", Some(&c.class)),
            ("endretBubbleId", Some(&c.object_id)),
            ("endringstype", Some(&c.change_name)),
        ]),
    }
}

/// What a page is planned against.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    /// The table's position: changes after it are planned.
    pub after: i64,
    /// The earliest time a change is dated.
    pub not_before: DateTime<Utc>,
    /// The kommuner followed (empty: all).
    pub kommuner: &'a [String],
    /// Whether the page's entries without an id go to `dead_letter` (once per page: by the
    /// table at the lowest position).
    pub unplaced: bool,
}

impl Scope<'_> {
    fn kept(&self, kommune: &str) -> bool {
        self.kommuner.is_empty() || self.kommuner.iter().any(|k| k == kommune)
    }
}

/// Plans the page's changes after the scope's position (each id taken once).
pub fn plan(page: &ChangePage, scope: Scope<'_>, now: DateTime<Utc>) -> ChangePlan {
    let after = scope.after;
    let mut out = ChangePlan::default();
    let mut todo: Vec<&Change> = page.changes.iter().filter(|c| c.id > after).collect();
    todo.sort_by_key(|c| c.id);
    let mut seen: Vec<&Change> = Vec::with_capacity(todo.len());
    for c in todo {
        match seen.last() {
            Some(prev) if prev.id == c.id => {
                if *prev != c {
                    out.dead_letters.push(dead_letter(
                        c,
                        &format!(
                            "a second, different change with id {} (the first, of {} {}, was applied)",
                            c.id, prev.class, prev.object_id
                        ),
                    ));
                }
            }
            _ => seen.push(c),
        }
    }
    let mut last: HashMap<(ObjectKind, &str), &Change> = HashMap::new();
    for c in seen
        .iter()
        .filter(|c| c.rejected.is_none() && c.kind() != ObjectKind::Other)
    {
        last.insert((c.kind(), c.object_id.as_str()), c);
    }
    let mut decided: Vec<&&Change> = last.values().collect();
    decided.sort_by_key(|c| c.id);
    let mut outcome_of: HashMap<(ObjectKind, &str), Outcome> = HashMap::new();
    for c in decided {
        let at = c.at.unwrap_or(now).max(scope.not_before);
        let id = c.object_id.as_str();
        let bubble = page.bubbles.get(&(c.kind(), id.to_owned()));
        let outcome = match (c.change, c.kind(), bubble) {
            (Some(ChangeType::Deleted), ObjectKind::Address, _) => {
                let state = Address {
                    address_id: id.to_owned(),
                    ..Address::default()
                };
                out.address_ends.push(Decided {
                    state,
                    change_id: c.id,
                    at,
                });
                Outcome::Removed
            }
            (Some(ChangeType::Deleted), _, _) => {
                let state = CadastralUnit {
                    unit_id: id.to_owned(),
                    ..CadastralUnit::default()
                };
                out.unit_ends.push(Decided {
                    state,
                    change_id: c.id,
                    at,
                });
                Outcome::Removed
            }
            (_, ObjectKind::Address, Some(b)) => match read_address_bubble(b, id) {
                Ok(state) if !scope.kept(&state.municipality_number) => Outcome::Ignored,
                Ok(state) => {
                    out.addresses.push(Decided {
                        state,
                        change_id: c.id,
                        at,
                    });
                    Outcome::Applied
                }
                Err(e) => {
                    out.dead_letters.push(dead_letter(c, &e.to_string()));
                    Outcome::DeadLettered
                }
            },
            (_, _, Some(b)) => match read_unit_bubble(b, id) {
                Ok(state) if !scope.kept(&state.municipality_number) => Outcome::Ignored,
                Ok(state) => {
                    out.units.push(Decided {
                        state,
                        change_id: c.id,
                        at,
                    });
                    Outcome::Applied
                }
                Err(e) => {
                    out.dead_letters.push(dead_letter(c, &e.to_string()));
                    Outcome::DeadLettered
                }
            },
            (_, _, None) => {
                out.dead_letters.push(dead_letter(
                    c,
                    "the register returned no object for the change (gone, or returnerBobler not honoured): its state is left as it was",
                ));
                Outcome::DeadLettered
            }
        };
        outcome_of.insert((c.kind(), id), outcome);
    }
    for c in seen {
        let outcome = if let Some(reason) = &c.rejected {
            out.dead_letters.push(dead_letter(c, reason));
            Outcome::DeadLettered
        } else if c.kind() == ObjectKind::Other {
            Outcome::Ignored
        } else {
            let key = (c.kind(), c.object_id.as_str());
            match outcome_of[&key] {
                // An earlier change of an object whose last one removed it was applied, then
                // overtaken.
                Outcome::Removed if last[&key].id != c.id => Outcome::Applied,
                o => o,
            }
        };
        out.changes.push((c.clone(), outcome));
    }
    for bad in page.unplaced.iter().filter(|_| scope.unplaced) {
        out.dead_letters.push(DeadLetter {
            source: SOURCE.into(),
            cursor: bad.place.clone(),
            record_id: bad.object_id.clone(),
            reason: bad.reason.clone(),
            replay: replay(&[("endretBubbleId", bad.object_id.as_deref())]),
        });
    }
    out
}

fn state_rows<T>(list: &[Decided<T>]) -> Vec<(&T, i64)> {
    list.iter().map(|d| (&d.state, d.change_id)).collect()
}

impl Decided<Address> {
    fn version(&self, open: bool) -> AddressVersion<'_> {
        AddressVersion {
            address: &self.state,
            change_id: self.change_id,
            valid_from: self.at,
            valid_to: (!open).then_some(self.at),
        }
    }
}

impl Decided<CadastralUnit> {
    fn version(&self, open: bool) -> UnitVersion<'_> {
        UnitVersion {
            unit: &self.state,
            change_id: self.change_id,
            valid_from: self.at,
            valid_to: (!open).then_some(self.at),
        }
    }
}

impl ChangePlan {
    fn address_changes(
        &self,
        table: &'static Table,
        now: DateTime<Utc>,
    ) -> Result<Vec<TableChange>, TransformError> {
        let states: Vec<(&Address, i64)> = self
            .addresses
            .iter()
            .map(|d| (&d.state, d.change_id))
            .collect();
        let ends: Vec<(&Address, i64)> = self
            .address_ends
            .iter()
            .map(|d| (&d.state, d.change_id))
            .collect();
        if std::ptr::eq(table, &*ADDRESS) {
            return Ok(vec![
                TableChange::Remove(addresses(&ends, now)?),
                TableChange::Upsert(addresses(&states, now)?),
            ]);
        }
        let closes: Vec<AddressVersion> = self
            .addresses
            .iter()
            .chain(&self.address_ends)
            .map(|d| d.version(false))
            .collect();
        let inserts: Vec<AddressVersion> = self.addresses.iter().map(|d| d.version(true)).collect();
        Ok(vec![
            TableChange::Close(versions(&closes, now)?),
            TableChange::Insert(versions(&inserts, now)?),
        ])
    }

    fn unit_changes(
        &self,
        table: &'static Table,
        now: DateTime<Utc>,
    ) -> Result<Vec<TableChange>, TransformError> {
        if std::ptr::eq(table, &*CADASTRAL_UNIT) {
            return Ok(vec![
                TableChange::Remove(units(&state_rows(&self.unit_ends), now)?),
                TableChange::Upsert(units(&state_rows(&self.units), now)?),
            ]);
        }
        let closes: Vec<UnitVersion> = self
            .units
            .iter()
            .chain(&self.unit_ends)
            .map(|d| d.version(false))
            .collect();
        let inserts: Vec<UnitVersion> = self.units.iter().map(|d| d.version(true)).collect();
        Ok(vec![
            TableChange::Close(unit_versions(&closes, now)?),
            TableChange::Insert(unit_versions(&inserts, now)?),
        ])
    }
}

impl Plan for ChangePlan {
    fn changes(
        &self,
        table: &'static Table,
        now: DateTime<Utc>,
    ) -> Result<Vec<TableChange>, TransformError> {
        if std::ptr::eq(table, &*ADDRESS) || std::ptr::eq(table, &*ADDRESS_HISTORY) {
            self.address_changes(table, now)
        } else if std::ptr::eq(table, &*CADASTRAL_UNIT)
            || std::ptr::eq(table, &*CADASTRAL_UNIT_HISTORY)
        {
            self.unit_changes(table, now)
        } else if std::ptr::eq(table, &*PROPERTY_CHANGE) {
            let rows: Vec<(&Change, Outcome)> = self.changes.iter().map(|(c, o)| (c, *o)).collect();
            Ok(vec![TableChange::Append(changes(&rows, now)?)])
        } else {
            dead_letters_or_refused("matrikkel", table, &self.dead_letters, now)
        }
    }

    fn entities(&self) -> usize {
        self.addresses.len() + self.address_ends.len() + self.units.len() + self.unit_ends.len()
    }

    fn dead_letters(&self) -> usize {
        self.dead_letters.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matrikkel::changes::read_changes;

    fn all(after: i64) -> Scope<'static> {
        Scope {
            after,
            not_before: DateTime::<Utc>::MIN_UTC,
            kommuner: &[],
            unplaced: true,
        }
    }

    fn page() -> ChangePage {
        read_changes(
            br#"{"endringList":[
              {"id":10,"endringstype":"Nyoppretting","domainklasse":"Vegadresse","endretBubbleId":1,"endringstidspunkt":"2026-01-01T10:00:00Z"},
              {"id":12,"endringstype":"Oppdatering","domainklasse":"Vegadresse","endretBubbleId":1,"endringstidspunkt":"2026-01-01T10:01:00Z"},
              {"id":13,"endringstype":"Nyoppretting","domainklasse":"Vegadresse","endretBubbleId":2,"endringstidspunkt":"2026-01-01T10:02:00Z"},
              {"id":14,"endringstype":"Sletting","domainklasse":"Vegadresse","endretBubbleId":2,"endringstidspunkt":"2026-01-01T10:03:00Z"},
              {"id":14,"endringstype":"Sletting","domainklasse":"Vegadresse","endretBubbleId":2,"endringstidspunkt":"2026-01-01T10:03:00Z"},
              {"id":15,"endringstype":"Oppdatering","domainklasse":"Matrikkelenhet","endretBubbleId":7,"endringstidspunkt":"2026-01-01T10:04:00Z"},
              {"id":16,"endringstype":"Oppdatering","domainklasse":"Bygning","endretBubbleId":8},
              {"id":17,"endringstype":"Oppdatering","domainklasse":"Vegadresse","endretBubbleId":3},
              {"id":17,"endringstype":"Oppdatering","domainklasse":"Vegadresse","endretBubbleId":4}
            ],"bobler":[
              {"id":1,"domainklasse":"Vegadresse","kommunenummer":"5035","adressenavn":"Torget","nummer":1},
              {"id":7,"domainklasse":"Matrikkelenhet","kommunenummer":"5035","matrikkelnummer":{"gardsnummer":1,"bruksnummer":2}}
            ],"alleEndringerFunnet":true,"sisteEndringIdProsessert":30}"#,
        )
        .unwrap()
    }

    #[test]
    fn each_change_once_the_last_decides_and_what_cannot_be_applied_is_dead_lettered() {
        let p = plan(&page(), all(0), Utc::now());
        let ids: Vec<i64> = p.changes.iter().map(|(c, _)| c.id).collect();
        assert_eq!(ids, vec![10, 12, 13, 14, 15, 16, 17]);
        let outcome = |id: i64| p.changes.iter().find(|(c, _)| c.id == id).unwrap().1;
        assert_eq!(outcome(10), Outcome::Applied);
        assert_eq!(outcome(13), Outcome::Applied, "created, then overtaken");
        assert_eq!(outcome(14), Outcome::Removed);
        assert_eq!(outcome(16), Outcome::Ignored);
        assert_eq!(outcome(17), Outcome::DeadLettered, "no bubble for 3");
        assert_eq!(p.addresses.len(), 1);
        assert_eq!(
            p.addresses[0].change_id, 12,
            "one version from the last change"
        );
        assert_eq!(p.address_ends.len(), 1);
        assert_eq!(p.units.len(), 1);
        // The missing bubble of 3, and the second, different change 17.
        assert_eq!(p.dead_letters.len(), 2, "{:?}", p.dead_letters);
        assert!(
            p.dead_letters
                .iter()
                .any(|d| d.reason.contains("second, different"))
        );
        // From a later position only what is after it.
        let later = plan(&page(), all(14), Utc::now());
        assert_eq!(later.changes.len(), 3);
        assert!(later.addresses.is_empty());
        for table in [
            &*ADDRESS,
            &*ADDRESS_HISTORY,
            &*CADASTRAL_UNIT,
            &*CADASTRAL_UNIT_HISTORY,
            &*PROPERTY_CHANGE,
        ] {
            assert!(!p.changes(table, Utc::now()).unwrap().is_empty());
        }
    }

    #[test]
    fn replays_are_dated_from_the_seed_on_and_other_kommuners_objects_are_ignored() {
        let seeded = DateTime::parse_from_rfc3339("2026-06-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let kommuner = ["0301".to_owned()];
        let p = plan(
            &page(),
            Scope {
                after: 0,
                not_before: seeded,
                kommuner: &kommuner,
                unplaced: true,
            },
            Utc::now(),
        );
        assert!(p.addresses.is_empty(), "5035 is not followed");
        assert!(p.units.is_empty());
        let outcome = |id: i64| p.changes.iter().find(|(c, _)| c.id == id).unwrap().1;
        assert_eq!(outcome(12), Outcome::Ignored);
        assert!(
            p.address_ends.iter().all(|d| d.at == seeded),
            "dated from the seed on"
        );
    }
}
