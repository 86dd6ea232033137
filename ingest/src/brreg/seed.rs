//! Seeding a list's tables from the register's bulk download, streamed: each chunk of units is
//! one commit per table. A seed that stopped goes on from a new download, leaving the units the
//! tables hold already (see [`transform::brreg::seed`]); the list is then followed from the
//! earliest download's time.

use std::collections::HashSet;
use std::time::Instant;

use chrono::{DateTime, Duration, TimeZone, Utc};
use schemas::register::Feed;
use schemas::tables::DEAD_LETTER;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use transform::brreg::UnitKind;
use transform::brreg::plan::list_tables;
use transform::brreg::seed::{SeedPlan, Seeded, number_key, seed_plan};

use crate::IngestError;
use crate::apply::commit;
use crate::brreg::client::BrregClient;
use crate::brreg::download;
use crate::config::Pipeline;
use crate::error::ErrorKind;
use crate::lake::Lake;
use crate::worker::Report;

/// How old a download without `Last-Modified` may be: the register builds the file nightly.
const UNDATED_DOWNLOAD_AGE: Duration = Duration::hours(26);

/// Followed from this long before the download's `Last-Modified`: that is when the file was
/// finished, and the register may have started taking it hours before (and clocks differ).
/// Replaying an update is harmless: each reads the unit's current document.
const BUILD_MARGIN: Duration = Duration::hours(6);

/// Units parsed per hand-over from the download's reader (a few MB of JSON values).
const PARSE_CHUNK: usize = 2_000;

/// The application id recording when a list's seed download was taken.
pub fn seed_at_app(kind: UnitKind) -> &'static str {
    match kind {
        UnitKind::Enhet => schemas::cursor::BRREG_ENHETER_SEED_AT,
        UnitKind::Underenhet => schemas::cursor::BRREG_UNDERENHETER_SEED_AT,
    }
}

/// The time a list is followed from after its seed (none: not seeded from a download).
pub async fn seeded_at(lake: &Lake, kind: UnitKind) -> Result<Option<DateTime<Utc>>, IngestError> {
    let [current, history, ..] = list_tables(kind);
    let mut earliest: Option<i64> = None;
    for table in [current, history] {
        if let Some(ms) = lake.position(table, seed_at_app(kind)).await? {
            earliest = Some(earliest.map_or(ms, |e| e.min(ms)));
        }
    }
    Ok(earliest.and_then(|ms| Utc.timestamp_millis_opt(ms).single()))
}

/// Seeds a list's tables, unless its feed has a position already. Returns whether the list is
/// seeded (not when `shutdown` came first).
pub async fn seed_list(
    client: &BrregClient,
    lake: &mut Lake,
    pipeline: &Pipeline,
    feed: &Feed,
    kind: UnitKind,
    shutdown: &CancellationToken,
    report: &mut Report,
) -> Result<bool, IngestError> {
    let [current, history, ..] = list_tables(kind);
    if lake.position(current, feed.position).await?.is_some() {
        return Ok(true);
    }
    let started = Instant::now();
    let earlier = seeded_at(lake, kind).await?;
    let mut seeded = Seeded {
        current: lake
            .column_keys(current, "organization_number", number_key)
            .await?,
        history: lake
            .column_keys(history, "organization_number", number_key)
            .await?,
        taken: HashSet::new(),
    };
    if earlier.is_some() {
        info!(
            list = kind.path(),
            units = seeded.current.len(),
            "going on with a seed that stopped: units the tables hold are left as they are"
        );
    }
    let mut earlier = earlier;
    let mut failures = 0u32;
    let at = loop {
        seeded.taken.clear();
        let before = seeded.current.len();
        let attempt = download_into(
            client,
            lake,
            pipeline,
            kind,
            earlier,
            &mut seeded,
            shutdown,
            report,
        )
        .await;
        match attempt {
            Ok(Some(at)) => break at,
            Ok(None) => return Ok(false),
            // A download that broke off is taken again: what was committed stays, and the
            // list is still followed from the earliest download's time.
            Err(e)
                if e.kind() == ErrorKind::Retryable
                    && !matches!(e, IngestError::Lake { .. })
                    && !shutdown.is_cancelled() =>
            {
                // The budget is per incident: a download that got further starts a new count.
                failures = if seeded.current.len() > before {
                    1
                } else {
                    failures + 1
                };
                if failures as usize >= pipeline.source.max_tries {
                    return Err(e);
                }
                earlier = seeded_at(lake, kind).await?.or(earlier);
                let pause = crate::error::pause_after(failures);
                warn!(list = kind.path(), error = %e, failures, "the bulk download failed; downloading again");
                tokio::select! {
                    () = tokio::time::sleep(pause) => {}
                    () = shutdown.cancelled() => return Ok(false),
                }
            }
            Err(e) => return Err(e),
        }
    };
    // Seeded: every table of the list takes position 0 (read from the download's time),
    // the current state last, as its position is what says the seed is complete.
    let txns = [
        (feed.position, 0),
        (seed_at_app(kind), at.timestamp_millis()),
    ];
    let Some((first, rest)) = feed.tables.split_first() else {
        return Ok(true);
    };
    for table in rest.iter().chain([first]) {
        if lake.position(table, feed.position).await?.is_none() {
            lake.mark(table, &txns).await?;
        }
    }
    info!(
        list = kind.path(),
        units = seeded.taken.len(),
        seconds = started.elapsed().as_secs(),
        follow_from = %at,
        "seeded from the bulk download"
    );
    Ok(true)
}

/// One download into the tables; the time the list is to be followed from, or `None` when
/// `shutdown` came first.
#[allow(clippy::too_many_arguments)]
async fn download_into(
    client: &BrregClient,
    lake: &mut Lake,
    pipeline: &Pipeline,
    kind: UnitKind,
    earlier: Option<DateTime<Utc>>,
    seeded: &mut Seeded,
    shutdown: &CancellationToken,
    report: &mut Report,
) -> Result<Option<DateTime<Utc>>, IngestError> {
    let [current, history, ..] = list_tables(kind);
    let requested = Utc::now();
    let download = client.download(kind).await?;
    let built = download
        .built
        .map_or(requested - UNDATED_DOWNLOAD_AGE, |b| b - BUILD_MARGIN);
    let at = earlier.map_or(built, |e| e.min(built));
    let per_commit = pipeline.worker.seed_batch_persons.max(1);
    let mut units = download::units(
        download,
        PARSE_CHUNK.min(per_commit),
        format!("{} /{}/lastned", client.shown(), kind.path()),
    );
    let txns = [(seed_at_app(kind), at.timestamp_millis())];
    let mut pending = SeedPlan::empty(kind);
    let mut read = 0u64;
    loop {
        let next = tokio::select! {
            next = units.recv() => next,
            () = shutdown.cancelled() => return Ok(None),
        };
        let last = next.is_none();
        if let Some(docs) = next {
            let docs = docs?;
            pending.absorb(seed_plan(kind, &docs, read, seeded, at));
            read += docs.len() as u64;
        }
        if pending.units() >= per_commit || (last && pending.units() > 0) {
            let plan = std::mem::replace(&mut pending, SeedPlan::empty(kind));
            // History first: a unit in current state always has its version.
            commit(
                lake,
                &plan,
                &[history, current, &DEAD_LETTER],
                &txns,
                Utc::now(),
            )
            .await?;
            seeded.current.extend(
                plan.current
                    .iter()
                    .filter_map(|(u, _)| number_key(&u.organization_number)),
            );
            seeded.history.extend(
                plan.versions
                    .iter()
                    .filter_map(|v| number_key(&v.unit.organization_number)),
            );
            report.seeded += plan.current.len() as u64;
            report.dead_letters += plan.dead_letters.len() as u64;
            crate::metrics::register("brreg").seeded(plan.current.len() as u64, 0);
            info!(
                list = kind.path(),
                units = read,
                written = plan.current.len(),
                skipped = plan.skipped,
                dead_letters = plan.dead_letters.len(),
                "bulk download chunk committed"
            );
        }
        if last {
            break;
        }
    }
    Ok(Some(at))
}
