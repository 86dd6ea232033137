//! The cadastral units' initial load: the register's units in id order, a page at a time,
//! committed every `seed_batch_persons` units (history first). A load that stopped goes on from
//! the start again, leaving the units each table holds.

use std::collections::HashSet;

use chrono::Utc;
use schemas::property::{CADASTRAL_UNIT, CADASTRAL_UNIT_HISTORY};
use schemas::tables::DEAD_LETTER;
use tokio_util::sync::CancellationToken;
use tracing::info;
use transform::matrikkel::load::UnitLoadPlan;

use super::client::{MatrikkelClient, SOURCE};
use super::file::id_key;
use crate::IngestError;
use crate::apply::commit;
use crate::config::Pipeline;
use crate::lake::Lake;
use crate::worker::Report;

/// Units per request.
const PAGE: usize = 5_000;

/// Loads every cadastral unit into `cadastral_unit` and its history. Returns whether it is
/// loaded (not when `shutdown` came first).
pub async fn load(
    client: &MatrikkelClient,
    lake: &mut Lake,
    pipeline: &Pipeline,
    shutdown: &CancellationToken,
    report: &mut Report,
) -> Result<bool, IngestError> {
    let key = |id: &str| Some(id_key(id));
    let in_current = lake.column_keys(&CADASTRAL_UNIT, "unit_id", key).await?;
    let in_history = lake
        .column_keys(&CADASTRAL_UNIT_HISTORY, "unit_id", key)
        .await?;
    let loaded_at = Utc::now();
    let fresh = || UnitLoadPlan {
        loaded_at,
        ..UnitLoadPlan::default()
    };
    let per_commit = pipeline.worker.seed_batch_persons.max(1);
    let mut plan = fresh();
    let mut after = 0u64;
    let mut seen: HashSet<u64> = HashSet::new();
    let mut total = 0u64;
    loop {
        if shutdown.is_cancelled() {
            return Ok(false);
        }
        let (units, last) = client.units(after, PAGE).await?;
        // The end is a page without units and without a last id; a page with units must say
        // how far it went, past where it was asked from (anything else would stop the load
        // early, or never).
        let end = match last {
            None if units.is_empty() => true,
            Some(l) if l > after => {
                after = l;
                false
            }
            _ => {
                return Err(IngestError::Feed {
                    source_name: SOURCE,
                    sequence: 0,
                    reason: format!(
                        "the cadastral units' download after id {after} answered {} units and sisteId {last:?}: it does not move on",
                        units.len()
                    ),
                });
            }
        };
        let kommuner = &pipeline.source.kommuner;
        for unit in units {
            // A register that did not apply the filter: other kommuner's units are left out.
            if let Ok(u) = &unit
                && !kommuner.is_empty()
                && !kommuner.contains(&u.municipality_number)
            {
                continue;
            }
            if let Ok(u) = &unit
                && !seen.insert(id_key(&u.unit_id))
            {
                continue;
            }
            total += 1;
            plan.take(unit, |id| {
                let k = id_key(id);
                (in_current.contains(&k), in_history.contains(&k))
            });
        }
        let lines = plan.current.len().max(plan.versions.len()) + plan.dead_letters.len();
        if lines >= per_commit || (end && lines > 0) {
            let chunk = std::mem::replace(&mut plan, fresh());
            commit(
                lake,
                &chunk,
                &[&CADASTRAL_UNIT_HISTORY, &CADASTRAL_UNIT, &DEAD_LETTER],
                &[],
                Utc::now(),
            )
            .await?;
            report.seeded += chunk.current.len() as u64;
            report.dead_letters += chunk.dead_letters.len() as u64;
            info!(
                units = total,
                written = chunk.current.len(),
                dead_letters = chunk.dead_letters.len(),
                "cadastral units committed"
            );
        }
        if end {
            break;
        }
    }
    info!(units = total, "loaded the cadastral units");
    Ok(true)
}
