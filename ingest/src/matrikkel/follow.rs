//! Following the change log from the lake's positions: a page of changes after the lowest
//! position of the feed's tables, with the changed objects, and one commit per table recording
//! the page's cursor (`sisteEndringIdProsessert`). A table ahead of the others (a commit that
//! landed before a crash) gets only what it lacks.

use std::collections::HashMap;
use std::time::Instant;

use chrono::{DateTime, Utc};
use schemas::register::Feed;
use tracing::{info, warn};
use transform::change::Plan;
use transform::matrikkel::plan::{ChangePlan, Scope, plan};

use super::client::{MatrikkelClient, SOURCE};
use crate::IngestError;
use crate::config::Pipeline;
use crate::lake::Lake;
use crate::worker::Report;

/// The most changes the register gives in one page.
pub const MAX_PAGE: usize = 10_000;

/// Reads one page after the lake's position and commits it, dating no change before
/// `not_before` (the end of the seed). Returns whether the log was read to its end
/// (`alleEndringerFunnet`): caught up as of the request.
pub async fn step(
    client: &MatrikkelClient,
    lake: &mut Lake,
    pipeline: &Pipeline,
    feed: &Feed,
    not_before: DateTime<Utc>,
    report: &mut Report,
) -> Result<bool, IngestError> {
    let mut positions: HashMap<&'static str, i64> = HashMap::new();
    for table in &feed.tables {
        let at = lake
            .position(table, feed.position)
            .await?
            .ok_or_else(|| IngestError::Feed {
                source_name: SOURCE,
                sequence: 0,
                reason: format!("{} has no position: the seed did not finish", table.name),
            })?;
        positions.insert(table.name, at);
    }
    let low = positions.values().copied().min().unwrap_or(0);
    let size = pipeline.worker.batch_events.clamp(1, MAX_PAGE);
    let started = Instant::now();
    let page = client.changes(low, size).await?;
    // The cursor; never behind a change the page returned (a register that said less would
    // have the same changes asked for again and again).
    let newest = page.changes.iter().map(|c| c.id).max().unwrap_or(low);
    let last = newest.max(page.last_processed);
    if last <= low {
        if page.all_found {
            return Ok(true);
        }
        // Nothing after the position, yet not all found: a register that is behind itself.
        // Not caught up; asked again after a pause.
        warn!(
            position = low,
            cursor = page.last_processed,
            changes = page.changes.len(),
            "the register's cursor did not move past the lake's position, and it says there is more"
        );
        tokio::time::sleep(pipeline.worker.poll_interval).await;
        return Ok(false);
    }
    if last > newest {
        // Passing over changes a filter left out is the register's to say, but never past its
        // own head: a cursor beyond it would skip every change still to come.
        let head = client.head().await?;
        if last > head {
            return Err(IngestError::Feed {
                source_name: SOURCE,
                sequence: low,
                reason: format!(
                    "the register's cursor sisteEndringIdProsessert={last} is past its newest change {head}"
                ),
            });
        }
    }
    let now = Utc::now();
    let mut plans: HashMap<i64, ChangePlan> = HashMap::new();
    let (mut entries, mut dead_letters) = (0, 0);
    for table in &feed.tables {
        let after = positions[table.name];
        if after >= last {
            continue;
        }
        let planned = plans.entry(after).or_insert_with(|| {
            let scope = Scope {
                after,
                not_before,
                kommuner: &pipeline.source.kommuner,
                unplaced: after == low,
            };
            plan(&page, scope, now)
        });
        if after == low {
            entries = planned.changes.len();
            dead_letters = planned.dead_letters();
        }
        let changes = planned.changes(table, now)?;
        let took = Instant::now();
        lake.apply_changes(table, changes, &[(feed.position, last)])
            .await?;
        crate::metrics::register(SOURCE).commit(took.elapsed());
    }
    report.events += entries as u64;
    report.dead_letters += dead_letters as u64;
    report.position = last;
    crate::metrics::register(SOURCE).applied(entries as u64, dead_letters as u64, last);
    info!(
        position = last,
        changes = entries,
        dead_letters,
        all_found = page.all_found,
        seconds = started.elapsed().as_secs_f64(),
        "changes committed"
    );
    Ok(page.all_found)
}
