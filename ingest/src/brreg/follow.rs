//! Following the two updates lists from the lake's positions: a page of updates after the
//! lowest position of a list's tables, the changed units fetched in batches, and one commit
//! per table recording the page's last `oppdateringsid`. A table ahead of the others (a commit
//! that landed before a crash) gets only what it lacks.

use std::collections::{BTreeSet, HashMap};
use std::time::Instant;

use chrono::Utc;
use futures::{StreamExt, TryStreamExt};
use schemas::register::Feed;
use tokio_util::sync::CancellationToken;
use tracing::info;
use transform::brreg::plan::{Fetched, plan};
use transform::brreg::{ChangeType, UnitKind};
use transform::change::Plan;

use crate::IngestError;
use crate::brreg::client::{BrregClient, From, UNITS_PER_REQUEST};
use crate::brreg::seed::seeded_at;
use crate::config::Pipeline;
use crate::lake::Lake;
use crate::worker::Report;

/// The most updates the register gives in one page.
pub const MAX_PAGE: usize = 10_000;

/// Reads one page of a list after the lake's position and commits it. Returns whether the
/// page reached the list's end (it was not full): the list is caught up as of the request.
pub async fn step(
    client: &BrregClient,
    lake: &mut Lake,
    pipeline: &Pipeline,
    feed: &Feed,
    kind: UnitKind,
    shutdown: &CancellationToken,
    report: &mut Report,
) -> Result<bool, IngestError> {
    let mut positions: HashMap<&'static str, i64> = HashMap::new();
    for table in &feed.tables {
        positions.insert(
            table.name,
            lake.position(table, feed.position).await?.unwrap_or(0),
        );
    }
    let low = positions.values().copied().min().unwrap_or(0);
    let from = if low > 0 {
        From::After(low)
    } else {
        // Nothing applied since the seed: read from the download's time.
        let at = seeded_at(lake, kind).await?.ok_or_else(|| IngestError::Feed {
            source_name: "brreg",
            sequence: 0,
            reason: format!(
                "the {} tables have position 0 but no seed time: the lake was not seeded by this version",
                kind.path()
            ),
        })?;
        From::Since(at)
    };
    let size = pipeline.worker.batch_events.clamp(1, MAX_PAGE);
    let page = client.updates(kind, from, size).await?;
    let at_end = page.updates.len() + page.unplaced.len() < size;
    let Some(last) = page.updates.iter().map(|u| u.id).max().filter(|l| *l > low) else {
        if !page.updates.is_empty() {
            // Asked for ids after the position, the register answered older ones only: a
            // register restored from a backup, or one that ignores the parameter.
            tracing::warn!(
                list = kind.path(),
                position = low,
                updates = page.updates.len(),
                "the register answered only updates at or before the lake's position"
            );
        }
        if !page.unplaced.is_empty() {
            tracing::warn!(
                list = kind.path(),
                entries = page.unplaced.len(),
                "updates without a usable oppdateringsid and nothing after them: waiting for a placed update to carry them to dead_letter"
            );
        }
        return Ok(true);
    };
    if shutdown.is_cancelled() {
        return Ok(false);
    }
    let started = Instant::now();
    // The units whose state is read: every unit of a placed, valid update that is not a removal.
    let wanted: BTreeSet<&str> = page
        .updates
        .iter()
        .filter(|u| u.id > low && u.rejected.is_none() && u.change != ChangeType::Removed)
        .map(|u| u.organization_number.as_str())
        .collect();
    let wanted: Vec<String> = wanted.into_iter().map(str::to_owned).collect();
    let chunks: Vec<Vec<String>> = wanted
        .chunks(UNITS_PER_REQUEST)
        .map(<[String]>::to_vec)
        .collect();
    let fetched: Vec<HashMap<String, Fetched>> = futures::stream::iter(chunks)
        .map(|chunk| async move { client.units(kind, &chunk).await })
        .buffer_unordered(pipeline.worker.fetch_concurrency.max(1))
        .try_collect()
        .await?;
    let documents: HashMap<String, Fetched> = fetched.into_iter().flatten().collect();
    let now = Utc::now();
    let mut plans: HashMap<i64, transform::brreg::plan::UnitPlan> = HashMap::new();
    let mut entries = 0;
    let mut dead_letters = 0;
    for table in &feed.tables {
        let after = positions[table.name];
        if after >= last {
            continue;
        }
        let planned = plans.entry(after).or_insert_with(|| {
            let unplaced = if after == low {
                page.unplaced.as_slice()
            } else {
                &[]
            };
            plan(kind, &page.updates, unplaced, &documents, after, now)
        });
        if after == low {
            entries = planned.updates.len();
            dead_letters = planned.dead_letters();
        }
        let changes = planned.changes(table, now)?;
        let took = Instant::now();
        lake.apply_changes(table, changes, &[(feed.position, last)])
            .await?;
        crate::metrics::register("brreg").commit(took.elapsed());
    }
    report.events += entries as u64;
    report.dead_letters += dead_letters as u64;
    report.position = last;
    crate::metrics::register("brreg").applied(entries as u64, dead_letters as u64, last);
    info!(
        list = kind.path(),
        position = last,
        updates = entries,
        units = documents.len(),
        dead_letters,
        seconds = started.elapsed().as_secs_f64(),
        "updates committed"
    );
    Ok(at_end)
}
