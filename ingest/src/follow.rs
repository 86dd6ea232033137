//! Following the feed from the lake's own position: a fetch task reads pages and documents, a
//! write task commits them, joined by a bounded channel.
//!
//! The fetch task takes feed positions strictly in order and never past a hole: a hole is
//! waited for (`gap_timeout`, an entry the register has numbered but not shown yet), then
//! either stops the worker naming the missing range or, with `skip_gaps`, is recorded in
//! `dead_letter`. A register that answers with entries all before the asked position, or whose
//! head is behind the lake, stops the worker with an error that says so.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Instant;

use schemas::cursor::{FREG_FEED, FREG_SEED_SEQUENCE};
use schemas::tables::{PERSON, Table};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use transform::freg::batch::document_key;
use transform::freg::feed::{self, BadEntry, Item, LookupKey};

use crate::IngestError;
use crate::apply::{FeedBatch, apply, feed_tables};
use crate::client::{FeedPage, FregClient};
use crate::config::Pipeline;
use crate::lake::Lake;
use crate::maintain::{Tombstones, maintain_each};
use crate::seed::fetch_lookups;
use crate::worker::{Report, RunOptions};

/// The register's page size: a shorter page means the head was reached.
const PAGE: usize = 1000;
/// Unplaced entries remembered, so that a page read twice does not dead-letter them twice.
const REMEMBERED: usize = 10_000;

fn feed_error(sequence: i64, reason: String) -> IngestError {
    IngestError::Feed {
        source_name: "freg",
        sequence,
        reason,
    }
}

/// Each feed table's position. A table without one stands at the seed's sequence number (a
/// lake seeded before every table recorded it).
pub async fn positions(lake: &Lake) -> Result<HashMap<&'static str, i64>, IngestError> {
    let seeded = lake
        .position(&PERSON, FREG_SEED_SEQUENCE)
        .await?
        .unwrap_or(0);
    let mut out = HashMap::new();
    for table in feed_tables() {
        let p = lake.position(table, FREG_FEED).await?.unwrap_or(seeded);
        out.insert(table.name, p);
    }
    Ok(out)
}

/// Follows the feed from the lowest table position.
pub async fn follow(
    client: &FregClient,
    lake: &mut Lake,
    pipeline: &Pipeline,
    options: &RunOptions,
    shutdown: &CancellationToken,
    report: &mut Report,
) -> Result<(), IngestError> {
    let mut table_positions = positions(lake).await?;
    let start = table_positions.values().copied().min().unwrap_or(0);
    info!(from = start + 1, "following the feed");
    let metrics = crate::metrics::register(&pipeline.source.register);
    metrics.applied(0, 0, start);
    let mut progress = crate::progress::Progress::new("catching up", "events", None);
    if crate::progress::on_terminal()
        && let Ok(head) = client.head().await
    {
        progress.set_total(u64::try_from(head - start).unwrap_or(0));
    }
    // While the writer is behind, the fetcher runs ahead by up to a catch-up commit's worth of
    // batches, and the writer takes them all in one commit.
    let w = &pipeline.worker;
    let catch_up = w.catch_up_events();
    let ahead = catch_up.div_ceil(w.batch_events).max(2);
    let (tx, mut rx) = mpsc::channel::<FeedBatch>(ahead);
    let mut fetcher = tokio::spawn(fetch_loop(
        client.clone(),
        pipeline.clone(),
        start + 1,
        options.until_caught_up,
        shutdown.clone(),
        tx,
    ));
    let started = Instant::now();
    report.position = start;
    // The writer drains the channel; a fetch task that fails is seen at once, not at the end.
    let mut fetched: Option<Result<(), IngestError>> = None;
    // Maintenance runs between commits, on its schedule, whether or not the feed is busy.
    let every = pipeline.maintenance.every;
    let mut maintain_at = tokio::time::Instant::now() + every;
    // Whether the writer committed a backlog (batches the fetcher sent while the feed had
    // more) since it was last at the head: the deletion vectors of its commits are folded once
    // it is. Also when the lake already holds vectors (a re-seed just before, or a worker that
    // stopped before its fold).
    let mut backlog = lake.holds_vectors();
    loop {
        let batch = tokio::select! {
            b = rx.recv() => b,
            r = &mut fetcher, if fetched.is_none() => {
                fetched = Some(r.unwrap_or_else(|e| Err(feed_error(report.position, format!("fetch task failed: {e}")))));
                continue;
            }
            () = tokio::time::sleep_until(maintain_at), if !every.is_zero() => {
                maintain_between_commits(lake, pipeline, &schemas::register::FREG).await?;
                maintain_at = tokio::time::Instant::now() + every;
                continue;
            }
        };
        let Some(mut batch) = batch else { break };
        let mut coalesced = 1;
        // A backlog: the fetcher sent this batch while the feed had more.
        let from_backlog = batch.behind;
        // A backlog waits for a whole catch-up commit: what a commit costs is the files it
        // rewrites, nearly the same for 10 000 entries as for 100 000. At the head, what has
        // arrived is committed at once.
        while batch.items.len() < catch_up {
            let next = if batch.behind {
                rx.recv().await
            } else {
                rx.try_recv().ok()
            };
            let Some(next) = next else { break };
            batch.absorb(next);
            coalesced += 1;
        }
        let Some(last) = batch.last() else {
            // The fetcher's word that the head (or a hole) came right after a backlog.
            if std::mem::take(&mut backlog) {
                fold_vectors(lake, pipeline, shutdown).await?;
            }
            continue;
        };
        let behind = batch.behind;
        let committing = Instant::now();
        let applied = apply(
            lake,
            batch,
            &mut table_positions,
            feed_tables(),
            chrono::Utc::now(),
        )
        .await?;
        metrics.commit(committing.elapsed());
        metrics.applied(applied.entries as u64, applied.dead_letters as u64, last);
        progress.advance(applied.entries as u64);
        report.events += applied.entries as u64;
        report.dead_letters += applied.dead_letters as u64;
        report.position = last;
        let rate = report.events as f64 / started.elapsed().as_secs_f64().max(1e-3);
        info!(
            position = last,
            entries = applied.entries,
            batches = coalesced,
            persons = applied.persons,
            dead_letters = applied.dead_letters,
            events_per_s = rate as u64,
            "feed batch committed"
        );
        backlog |= from_backlog || behind;
        if !behind && std::mem::take(&mut backlog) {
            fold_vectors(lake, pipeline, shutdown).await?;
        }
    }
    let fetched = match fetched {
        Some(r) => r,
        None => fetcher.await.unwrap_or_else(|e| {
            Err(feed_error(
                report.position,
                format!("fetch task failed: {e}"),
            ))
        }),
    };
    progress.finish();
    fetched?;
    if backlog {
        fold_vectors(lake, pipeline, shutdown).await?;
    }
    report.position = table_positions.values().copied().min().unwrap_or(0);
    Ok(())
}

/// Maintains the register's tables (and the shared ones: another register's worker maintains
/// its own), then reads the lake again. A failed maintenance is logged and tried again at the
/// next scheduled time: it never stops the sync.
pub(crate) async fn maintain_between_commits(
    lake: &mut Lake,
    pipeline: &Pipeline,
    register: &schemas::register::Register,
) -> Result<(), IngestError> {
    let then = "trying again at the next scheduled time";
    let tables = register.lake_tables();
    maintain_now(lake, pipeline, register, &tables, Tombstones::Keep, then).await
}

/// Once a catch-up is over (the writer at the head, or a run that stops there), maintains the
/// tables holding deletion vectors (a burst at the head, committed at once, may also have left
/// some: the next catch-up's fold, the schedule or `regsync maintain` folds those): each of
/// its commits left a file per partition and deleted rows in the others, which citizen lists
/// would read through `deltalake` (about 150 ms for a whole `regsync cohort` after a national
/// catch-up, 44 ms after the fold) until the schedule's turn. A worker that is stopping leaves
/// them to the schedule or `regsync maintain`.
async fn fold_vectors(
    lake: &mut Lake,
    pipeline: &Pipeline,
    shutdown: &CancellationToken,
) -> Result<(), IngestError> {
    let tables = lake.vectored_tables();
    if tables.is_empty() || shutdown.is_cancelled() {
        return Ok(());
    }
    info!(
        tables = tables.len(),
        "folding the catch-up's deletion vectors"
    );
    let then = "the schedule or `regsync maintain` folds them later";
    let register = &schemas::register::FREG;
    maintain_now(lake, pipeline, register, &tables, Tombstones::Keep, then).await
}

/// After the first seed, maintains the register's partitioned tables, if the pipeline says so
/// (`maintenance.after_seed`) and the worker is not stopping: the seed left a file per
/// partition per commit. A failure is logged; the schedule or `regsync maintain` compacts later.
pub(crate) async fn compact_after_seed(
    lake: &mut Lake,
    pipeline: &Pipeline,
    register: &schemas::register::Register,
    shutdown: &CancellationToken,
) -> Result<(), IngestError> {
    let partitioned: Vec<&'static Table> = register
        .feeds
        .iter()
        .flat_map(|f| f.tables.iter().copied())
        .filter(|t| !t.partition_columns.is_empty())
        .collect();
    if !pipeline.maintenance.after_seed || partitioned.is_empty() || shutdown.is_cancelled() {
        return Ok(());
    }
    info!(tables = partitioned.len(), "compacting what the seed wrote");
    let then = "the schedule or `regsync maintain` compacts them later";
    let forget = Tombstones::ForgetSeeded;
    maintain_now(lake, pipeline, register, &partitioned, forget, then).await
}

/// Maintains `tables`, keeping `tombstones` of what compaction replaced, then reads the lake
/// again; a failure is logged with what happens `then`.
async fn maintain_now(
    lake: &mut Lake,
    pipeline: &Pipeline,
    register: &schemas::register::Register,
    tables: &[&'static Table],
    tombstones: Tombstones,
    then: &str,
) -> Result<(), IngestError> {
    let url = lake.url().clone();
    let started = Instant::now();
    match maintain_each(&url, &pipeline.maintenance, tables, tombstones).await {
        Ok(tables) => {
            let removed: u64 = tables.iter().map(|t| t.files_removed).sum();
            let vacuumed: usize = tables.iter().map(|t| t.files_vacuumed).sum();
            info!(
                files_compacted = removed,
                files_vacuumed = vacuumed,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "lake maintained"
            );
        }
        Err(e) => {
            warn!(error = %e, then, "lake maintenance failed")
        }
    }
    *lake = Lake::open_tables(&url, &register.lake_tables()).await?;
    // A maintenance that failed between its two property commits left a retention at zero.
    let retention = pipeline.maintenance.vacuum_retention;
    crate::maintain::restore_tombstone_retention(lake, &register.lake_tables(), retention).await;
    Ok(())
}

/// What the fetch task holds between pages.
#[derive(Default)]
struct Pending {
    items: Vec<Item>,
    unplaced: Vec<BadEntry>,
}

/// A hole in the feed being waited for: the first missing sequence number and since when.
struct Hole {
    from: i64,
    since: Instant,
}

/// Reads feed pages from `next`, fetches their documents, and sends batches to the writer.
async fn fetch_loop(
    client: FregClient,
    pipeline: Pipeline,
    mut next: i64,
    until_caught_up: bool,
    shutdown: CancellationToken,
    tx: mpsc::Sender<FeedBatch>,
) -> Result<(), IngestError> {
    let w = &pipeline.worker;
    let metrics = crate::metrics::register(&pipeline.source.register);
    let mut pending = Pending::default();
    let mut etag: Option<String> = None;
    let mut hole: Option<Hole> = None;
    let mut remembered: (HashSet<String>, VecDeque<String>) = Default::default();
    // The last batch sent said more was coming: the writer waits for it.
    let mut sent_behind = false;
    loop {
        if shutdown.is_cancelled() {
            break;
        }
        let page = tokio::select! {
            page = client.feed(next, etag.as_deref()) => page?,
            () = shutdown.cancelled() => break,
        };
        let (reading, full) = match page {
            FeedPage::NotModified => (feed::Reading::default(), false),
            FeedPage::Entries(page, tag) => {
                etag = tag;
                let full = page.len() >= PAGE;
                if page.is_empty() {
                    // Nothing after our position: the head, or a register behind the lake.
                    let head = client.head().await?;
                    if head < next - 1 {
                        return Err(feed_error(
                            next - 1,
                            format!(
                                "the register's newest sequence number is {head}, behind the lake's position {}: the register may have been restored from a backup. Stopping: nothing is written until an operator has looked",
                                next - 1
                            ),
                        ));
                    }
                }
                (feed::read_page(page, next), full)
            }
        };
        if let Some((lo, hi)) = reading.all_old {
            let head = client.head().await?;
            let reason = if head < next - 1 {
                format!(
                    "the register's newest sequence number is {head}, behind the lake's position {}: the register may have been restored from a backup",
                    next - 1
                )
            } else {
                format!(
                    "asked for the feed from {next}, the register answered with entries {lo}..={hi} only: it does not honour the position asked for"
                )
            };
            return Err(feed_error(next, reason));
        }
        if reading.repeats > 0 || reading.old > 0 {
            warn!(
                position = next,
                repeats = reading.repeats,
                old = reading.old,
                "feed page repeated entries; taken once"
            );
        }
        for bad in &reading.unplaced {
            let key = format!(
                "{:?}|{:?}|{:?}|{}",
                bad.person_id, bad.person_document_id, bad.event_type, bad.reason
            );
            if remembered.0.insert(key.clone()) {
                remembered.1.push_back(key);
                if remembered.1.len() > REMEMBERED
                    && let Some(old) = remembered.1.pop_front()
                {
                    remembered.0.remove(&old);
                }
                warn!(place = %bad.place, reason = %bad.reason, "feed entry without a usable sequence number: dead-lettered");
                pending.unplaced.push(bad.clone());
            }
        }
        for bad in reading.items.iter().filter_map(|i| match i {
            Item::Bad(b) => Some(b),
            Item::Entry(_) => None,
        }) {
            warn!(sequence = bad.sequence, reason = %bad.reason, "feed entry cannot be applied: dead-lettered");
        }
        let after = reading.next(next);
        if after > next {
            next = after;
            etag = None;
        }
        pending.items.extend(reading.items);
        let waiting = match reading.gap {
            None => {
                hole = None;
                false
            }
            Some((lo, hi)) => {
                // Ask again without the ETag: the same page must be read anew.
                etag = None;
                let since = match &hole {
                    Some(h) if h.from == lo => h.since,
                    _ => Instant::now(),
                };
                hole = Some(Hole { from: lo, since });
                if since.elapsed() < w.gap_timeout {
                    warn!(
                        from = lo,
                        to = hi,
                        waited_ms = since.elapsed().as_millis() as u64,
                        "hole in the feed: waiting for the missing sequence numbers"
                    );
                    true
                } else if w.skip_gaps {
                    warn!(
                        from = lo,
                        to = hi,
                        "hole in the feed did not fill: recorded in dead_letter and skipped"
                    );
                    pending.unplaced.push(BadEntry {
                        page: lo,
                        place: format!("sequence={lo}..={hi}"),
                        reason: format!(
                            "sequence numbers {lo}..={hi} missing from the feed after {}s (skip_gaps)",
                            w.gap_timeout.as_secs()
                        ),
                        ..BadEntry::default()
                    });
                    next = hi + 1;
                    hole = None;
                    // Read on from after the hole at once.
                    continue;
                } else {
                    return Err(feed_error(
                        lo,
                        format!(
                            "sequence numbers {lo}..={hi} are missing from the feed (waited {}s for them): the register may have deleted them (older than its retention) or this rights package may not see them. Seed again into an empty lake, or set worker.skip_gaps = true to record such holes in dead_letter and go on",
                            w.gap_timeout.as_secs()
                        ),
                    ));
                }
            }
        };
        let at_head = !full || waiting;
        if at_head {
            metrics.saw_head(next - 1);
        }
        if !pending.items.is_empty() && (pending.items.len() >= w.batch_events || at_head) {
            let items = std::mem::take(&mut pending.items);
            let unplaced = std::mem::take(&mut pending.unplaced);
            let docs = fetch_docs(&client, &items, w.fetch_concurrency).await?;
            if tx
                .send(FeedBatch {
                    items,
                    unplaced,
                    docs,
                    behind: !at_head,
                })
                .await
                .is_err()
            {
                break;
            }
            sent_behind = !at_head;
        } else if at_head && sent_behind {
            // The head or a hole came before another entry: the writer commits what it holds.
            if tx.send(FeedBatch::default()).await.is_err() {
                break;
            }
            sent_behind = false;
        }
        if at_head {
            if until_caught_up && !waiting && pending.items.is_empty() {
                info!(position = next - 1, "feed head reached");
                break;
            }
            tokio::select! {
                () = tokio::time::sleep(w.poll_interval) => {}
                () = shutdown.cancelled() => break,
            }
        }
    }
    Ok(())
}

/// Fetches the documents a batch needs: exact versions by document id where the feed names
/// one, else the latest by identity number.
async fn fetch_docs(
    client: &FregClient,
    items: &[Item],
    concurrency: usize,
) -> Result<HashMap<String, transform::freg::Lookup>, IngestError> {
    let mut by_doc = Vec::new();
    let mut by_id = Vec::new();
    for e in items.iter().filter_map(|i| match i {
        Item::Entry(e) => Some(e),
        Item::Bad(_) => None,
    }) {
        match &e.hendelse.persondokument {
            Some(d) => by_doc.push(d.clone()),
            None => by_id.push(e.hendelse.folkeregisteridentifikator.clone()),
        }
    }
    for keys in [&mut by_doc, &mut by_id] {
        keys.sort();
        keys.dedup();
    }
    let mut out = HashMap::new();
    for (keys, key) in [(by_doc, LookupKey::Document), (by_id, LookupKey::Person)] {
        for l in fetch_lookups(client, keys, key, concurrency).await? {
            if let Some(k) = key.of(&l).map(str::to_owned) {
                out.insert(k, l);
            }
        }
    }
    // Every entry's key is answered (the client checks); document_key picks it.
    debug_assert!(items.iter().all(|i| match i {
        Item::Entry(e) => out.contains_key(&document_key(e)),
        Item::Bad(_) => true,
    }));
    Ok(out)
}
