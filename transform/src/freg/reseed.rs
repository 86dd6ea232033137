//! Re-seeding a lake whose feed position the register no longer has (older than its
//! retention): the complete extract at the head N is taken as one change at N. The lake keeps
//! its history; a person whose state differs from the lake's gets one new version from the
//! re-seed's time, and the end of the open one (every earlier address withheld, when the new
//! state withholds it). Persons that did not change get nothing, so a re-seed repeated after
//! a crash adds nothing twice.

use std::collections::HashSet;

use chrono::{DateTime, Utc};

use super::batch::{Planned, Withhold};
use super::document;
use crate::model::{DeadLetter, Person, PersonVersion};

/// The rows of a re-seed batch: `persons` from the extract (as [`super::batch::plan_seed`]
/// read them), of which `changed` differ from (or are missing in) the lake.
pub fn plan_reseed(
    persons: &[(Person, i64)],
    changed: &HashSet<String>,
    sequence: i64,
    now: DateTime<Utc>,
    dead_letters: Vec<DeadLetter>,
    withholds: Vec<Withhold>,
) -> Planned {
    let mut out = Planned {
        dead_letters,
        withholds,
        ..Planned::default()
    };
    for (person, _) in persons {
        if !changed.contains(&person.person_id) {
            continue;
        }
        let end = PersonVersion {
            person: person.clone(),
            sequence,
            valid_from: now,
            valid_to: Some(now),
        };
        if document::withholds_address(&person.address_protection) {
            out.scrubs.push(end);
        } else {
            out.closes.push(end);
        }
        out.inserts.push(PersonVersion {
            person: person.clone(),
            sequence,
            valid_from: now,
            valid_to: None,
        });
        out.persons.push((person.clone(), sequence));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Address;

    fn person(id: &str, level: &str, street: Option<&str>) -> Person {
        Person {
            person_id: id.into(),
            address_protection: level.into(),
            address: Address {
                street_name: street.map(str::to_owned),
                ..Address::default()
            },
            ..Person::default()
        }
    }

    #[test]
    fn only_changed_persons_get_a_version_and_a_withheld_one_is_scrubbed() {
        let now = Utc::now();
        let persons = vec![
            (person("a", "ugradert", Some("Storgata")), 9),
            (person("b", "strengt_fortrolig", None), 9),
            (person("c", "ugradert", Some("Nygata")), 9),
        ];
        let changed: HashSet<String> = ["a", "b"].iter().map(|s| s.to_string()).collect();
        let planned = plan_reseed(&persons, &changed, 500, now, Vec::new(), Vec::new());
        let ids = |v: &[PersonVersion]| -> Vec<String> {
            v.iter().map(|v| v.person.person_id.clone()).collect()
        };
        assert_eq!(ids(&planned.inserts), ["a", "b"]);
        assert_eq!(ids(&planned.closes), ["a"]);
        assert_eq!(ids(&planned.scrubs), ["b"]);
        assert!(planned.persons.iter().all(|(_, s)| *s == 500));
        assert!(
            planned
                .inserts
                .iter()
                .all(|v| v.valid_from == now && v.valid_to.is_none())
        );
        assert!(planned.events.is_empty());
    }
}
