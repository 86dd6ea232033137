//! Seeding an empty lake from the register's complete extract at a feed sequence number N.
//!
//! Resumable per extract batch and per table: each seed commit records how many extract
//! batches the table holds (`FREG_SEED_BATCHES`), and a restart gives each table only the
//! batches it lacks, whatever `seed_batch_persons` is now. When the extract is done, every
//! feed table records position N, so following starts at N + 1 and never asks for the entries
//! at or before N (which the register may have deleted).

use std::collections::HashMap;
use std::time::Instant;

use futures::{StreamExt, TryStreamExt};
use schemas::cursor::{FREG_FEED, FREG_SEED_BATCHES, FREG_SEED_SEQUENCE};
use schemas::register::FREG;
use schemas::tables::{DEAD_LETTER, PERSON, PERSON_HISTORY, Table};
use tokio_util::sync::CancellationToken;
use tracing::info;
use transform::freg::batch::{self, Planned};
use transform::freg::feed::{Lookup, LookupKey};
use transform::freg::tables::Seed;

use crate::IngestError;
use crate::apply::commit;
use crate::client::{ExtractBatch, FregClient};
use crate::config::Pipeline;
use crate::lake::Lake;
use crate::worker::Report;

/// At most this many ids per bulk lookup.
pub const BULK: usize = 1000;

/// Fetches lookups for `keys` in requests of at most [`BULK`], `concurrency` in flight.
pub async fn fetch_lookups(
    client: &FregClient,
    keys: Vec<String>,
    key: LookupKey,
    concurrency: usize,
) -> Result<Vec<Lookup>, IngestError> {
    let chunks: Vec<Vec<String>> = keys.chunks(BULK).map(<[String]>::to_vec).collect();
    let answers: Vec<Vec<Lookup>> = futures::stream::iter(chunks)
        .map(|chunk| async move { client.lookup(&chunk, key).await })
        .buffered(concurrency.max(1))
        .try_collect()
        .await?;
    Ok(answers.into_iter().flatten().collect())
}

/// Extract batches `from..from + count` of `job` (fewer at the end of the extract) and their
/// documents, `concurrency` lookups in flight: each batch's number with its lookups, the next
/// batch number, and whether the extract has ended.
pub async fn read_extract(
    client: &FregClient,
    job: &str,
    from: u64,
    count: u64,
    concurrency: usize,
) -> Result<(Vec<(u64, Vec<Lookup>)>, u64, bool), IngestError> {
    let (mut next, mut ended) = (from, false);
    let mut wanted: Vec<(u64, ExtractBatch)> = Vec::new();
    while next < from + count {
        match client.extract_batch(job, next).await? {
            Some(b) => {
                wanted.push((next, b));
                next += 1;
            }
            None => {
                ended = true;
                break;
            }
        }
    }
    let fetched = futures::stream::iter(wanted)
        .map(|(n, b)| async move {
            let (keys, key) = match b {
                ExtractBatch::Documents(d) => (d, LookupKey::Document),
                ExtractBatch::Persons(p) => (p, LookupKey::Person),
            };
            fetch_lookups(client, keys, key, 1).await.map(|l| (n, l))
        })
        .buffered(concurrency.max(1))
        .try_collect()
        .await?;
    Ok((fetched, next, ended))
}

/// The sequence number the seed is at, once an extract has been started: from the lake, else
/// the register's head.
async fn seed_sequence(client: &FregClient, lake: &Lake) -> Result<i64, IngestError> {
    if let Some(s) = lake.position(&PERSON_HISTORY, FREG_SEED_SEQUENCE).await? {
        return Ok(s);
    }
    if let Some(s) = lake.position(&PERSON, FREG_SEED_SEQUENCE).await? {
        return Ok(s);
    }
    client.head().await
}

/// Seeds the lake from a complete extract, resumably. Returns the extract's sequence number
/// once the seed is complete, `None` when stopped before.
pub async fn seed(
    client: &FregClient,
    lake: &mut Lake,
    pipeline: &Pipeline,
    shutdown: &CancellationToken,
    report: &mut Report,
) -> Result<Option<i64>, IngestError> {
    let tables: [&'static Table; 3] = [&PERSON, &PERSON_HISTORY, &DEAD_LETTER];
    let sequence = seed_sequence(client, lake).await?;
    let mut done: HashMap<&'static str, u64> = HashMap::new();
    for t in tables {
        let d = lake.position(t, FREG_SEED_BATCHES).await?.unwrap_or(0);
        done.insert(t.name, u64::try_from(d).unwrap_or(0));
    }
    let mut next_batch = done.values().copied().min().unwrap_or(0);
    let job = client.extract(sequence).await?;
    let per_commit = pipeline.worker.seed_batch_persons.div_ceil(BULK).max(1) as u64;
    info!(sequence, job = %job, from_batch = next_batch, "seeding the lake from the bulk extract");
    let started = Instant::now();
    let mut progress = crate::progress::Progress::new("seeding", "persons", None);
    let mut finished = false;
    while !finished && !shutdown.is_cancelled() {
        let first = next_batch;
        let (fetched, next, end) = read_extract(
            client,
            &job,
            first,
            per_commit,
            pipeline.worker.fetch_concurrency,
        )
        .await?;
        next_batch = next;
        finished = end;
        // Each table gets the batches it does not hold yet: one plan per distinct position.
        let mut plans: HashMap<u64, Planned> = HashMap::new();
        let txns = [
            (FREG_SEED_BATCHES, next_batch as i64),
            (FREG_SEED_SEQUENCE, sequence),
        ];
        for table in tables {
            let have = done[table.name];
            if have >= next_batch {
                continue;
            }
            let planned = plans.entry(have).or_insert_with(|| {
                let lookups: Vec<Lookup> = fetched
                    .iter()
                    .filter(|(n, _)| *n >= have)
                    .flat_map(|(_, l)| l.iter().cloned())
                    .collect();
                batch::plan_seed(
                    &lookups,
                    sequence,
                    &format!("extract={job} batches={}..{next_batch}", have.max(first)),
                )
            });
            commit(lake, &Seed(planned), &[table], &txns, chrono::Utc::now()).await?;
            done.insert(table.name, next_batch);
        }
        let planned = plans.values().next();
        progress.advance(planned.map_or(0, |p| p.persons.len()) as u64);
        report.seeded += planned.map_or(0, |p| p.persons.len()) as u64;
        report.dead_letters += planned.map_or(0, |p| p.dead_letters.len()) as u64;
        let rate = report.seeded as f64 / started.elapsed().as_secs_f64().max(1e-3);
        info!(
            batches = next_batch,
            persons = report.seeded,
            dead_letters = planned.map_or(0, |p| p.dead_letters.len()),
            persons_per_s = rate as u64,
            "seed batch committed"
        );
    }
    progress.finish();
    if !finished {
        return Ok(None);
    }
    mark_seeded(lake, sequence).await?;
    info!(
        sequence,
        persons = report.seeded,
        elapsed_s = started.elapsed().as_secs_f64(),
        "seed complete: following the feed from the next sequence number"
    );
    crate::metrics::register(&pipeline.source.register).seeded(report.seeded, sequence);
    Ok(Some(sequence))
}

/// Records that the seed at `sequence` is complete: every feed table stands at it, so
/// following starts at `sequence + 1`. `person` goes last: its position is what says the seed
/// is complete, so a crash in between leaves a lake that finishes the seed at the next start.
pub async fn mark_seeded(lake: &mut Lake, sequence: i64) -> Result<(), IngestError> {
    mark_feed_tables(lake, sequence, true).await
}

/// Records position `sequence` (and the seed's sequence) in every feed table, the
/// current-state table last; with `only_unmarked`, only in tables without a feed position yet.
pub async fn mark_feed_tables(
    lake: &mut Lake,
    sequence: i64,
    only_unmarked: bool,
) -> Result<(), IngestError> {
    let txns = [(FREG_FEED, sequence), (FREG_SEED_SEQUENCE, sequence)];
    let Some((current, rest)) = FREG.feeds[0].tables.split_first() else {
        return Ok(());
    };
    for table in rest.iter().chain([current]) {
        if !only_unmarked || lake.position(table, FREG_FEED).await?.is_none() {
            lake.mark(table, &txns).await?;
        }
    }
    Ok(())
}
