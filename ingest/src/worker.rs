//! The population register's feed worker: seed an empty lake from the bulk extract, then follow
//! the feed from the lake's own position.
//!
//! Fetching (feed pages and documents) and writing (lake commits) run as two tasks joined by a
//! bounded channel, so a slow commit never stalls the poll and memory holds at most two batches.

use std::collections::HashMap;
use std::time::Instant;

use futures::{StreamExt, TryStreamExt};
use schemas::cursor::{FREG_FEED, FREG_SEED_BATCHES, FREG_SEED_SEQUENCE};
use schemas::tables::{DEAD_LETTER, PERSON, PERSON_EVENT, PERSON_HISTORY, TABLES, Table};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info, info_span, warn};
use transform::encode;
use transform::freg::batch::{self, Planned};
use transform::freg::feed::{FeedEntry, Lookup};

use crate::IngestError;
use crate::client::{FeedPage, FregClient};
use crate::config::{KafkaConfig, Pipeline};
use crate::kafka::KafkaSink;
use crate::lake::{Lake, lake_url};
use crate::publish::publish;
use schemas::topics::TOPICS;
use tokio::sync::watch;

/// The register's page size: a shorter page means the head was reached.
const PAGE: usize = 1000;
/// At most this many ids per bulk lookup.
const BULK: usize = 1000;

/// How to run.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Overrides the pipeline's lake URL.
    pub lake: Option<String>,
    /// Exit once the feed head is reached and committed.
    pub until_caught_up: bool,
    /// Kafka brokers (overrides or adds the pipeline's `[kafka]`).
    pub kafka: Option<String>,
}

/// What a run did.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Persons written by the seed.
    pub seeded_persons: u64,
    /// Feed entries committed.
    pub events: u64,
    /// Records dead-lettered.
    pub dead_letters: u64,
    /// The last feed sequence number committed in every table.
    pub position: i64,
    /// Kafka messages produced.
    pub published: u64,
}

/// A batch on its way from the fetcher to the writer.
#[derive(Debug)]
struct Batch {
    entries: Vec<FeedEntry>,
    docs: HashMap<String, Lookup>,
}

/// Runs the pipeline until `shutdown` (or, with `until_caught_up`, until the head is committed).
pub async fn run(
    pipeline: Pipeline,
    options: RunOptions,
    shutdown: CancellationToken,
) -> Result<Report, IngestError> {
    let span =
        info_span!("worker", pipeline = %pipeline.name, register = %pipeline.source.register);
    async move {
        let location = options
            .lake
            .clone()
            .unwrap_or_else(|| pipeline.lake.url.clone());
        let url = lake_url(&location).map_err(|reason| IngestError::Config {
            path: "--lake".into(),
            reason,
        })?;
        let client = FregClient::new(&pipeline.source)?;
        let mut lake = Lake::open(&url).await?;
        let kafka = match (&options.kafka, &pipeline.kafka) {
            (Some(brokers), Some(k)) => Some(KafkaConfig {
                brokers: brokers.clone(),
                ..k.clone()
            }),
            (Some(brokers), None) => Some(KafkaConfig::plaintext(brokers)),
            (None, k) => k.clone(),
        };
        // Connect first: a bad broker address or a missing topic stops the start.
        let (done_tx, done_rx) = watch::channel(false);
        let publisher = match kafka {
            Some(k) => {
                let sink = KafkaSink::connect(k.clone(), &TOPICS).await?;
                info!(brokers = %k.brokers, prefix = %k.topic_prefix, "kafka sink connected");
                Some(tokio::spawn(
                    publish(sink, k, url.clone(), done_rx, shutdown.clone()).in_current_span(),
                ))
            }
            None => None,
        };
        let mut report = Report::default();
        let worked = async {
            if lake.position(&PERSON, FREG_FEED).await?.is_none() {
                seed(&client, &mut lake, &pipeline, &shutdown, &mut report).await?;
                if shutdown.is_cancelled() {
                    return Ok(());
                }
            }
            follow(
                &client,
                &mut lake,
                &pipeline,
                &options,
                &shutdown,
                &mut report,
            )
            .await
        }
        .await;
        let _ = done_tx.send(true);
        if worked.is_err() {
            shutdown.cancel();
        }
        if let Some(p) = publisher {
            let published = p
                .await
                .map_err(|e| IngestError::LakeRead(format!("kafka publisher failed: {e}")))??;
            report.published = published.events + published.persons;
        }
        worked?;
        Ok(report)
    }
    .instrument(span)
    .await
}

/// Each table's position for an application id (`None`: the table has none yet).
async fn positions(
    lake: &Lake,
    app: &str,
) -> Result<HashMap<&'static str, Option<i64>>, IngestError> {
    let mut out = HashMap::new();
    for table in TABLES.iter() {
        out.insert(table.name, lake.position(table, app).await?);
    }
    Ok(out)
}

async fn fetch_lookups(
    client: &FregClient,
    keys: Vec<String>,
    archive: bool,
    concurrency: usize,
) -> Result<Vec<Lookup>, IngestError> {
    let chunks: Vec<Vec<String>> = keys.chunks(BULK).map(<[String]>::to_vec).collect();
    let answers: Vec<Vec<Lookup>> = futures::stream::iter(chunks)
        .map(|chunk| async move {
            if archive {
                client.archive(&chunk).await
            } else {
                client.persons(&chunk).await
            }
        })
        .buffered(concurrency)
        .try_collect()
        .await?;
    Ok(answers.into_iter().flatten().collect())
}

/// Writes planned rows to the tables that do not have them yet, each commit recording `txns`.
async fn commit(
    lake: &mut Lake,
    planned: &Planned,
    tables: &[&'static Table],
    txns: &[(&str, i64)],
    seed: bool,
) -> Result<(), IngestError> {
    let now = chrono::Utc::now();
    for table in tables {
        match table.name {
            "person" if seed => {
                lake.append(&PERSON, Some(encode::persons(&planned.persons, now)?), txns)
                    .await?
            }
            "person" => {
                lake.upsert_persons(encode::persons(&planned.persons, now)?, txns)
                    .await?
            }
            "person_history" => {
                let (c, s, i) = (
                    encode::history(&planned.closes, now)?,
                    encode::history(&planned.scrubs, now)?,
                    encode::history(&planned.inserts, now)?,
                );
                lake.apply_history(c, s, i, txns).await?;
            }
            "person_event" => {
                lake.append(
                    &PERSON_EVENT,
                    Some(encode::events(&planned.events, now)?),
                    txns,
                )
                .await?
            }
            _ => {
                lake.append(
                    &DEAD_LETTER,
                    Some(encode::dead_letters(&planned.dead_letters, now)?),
                    txns,
                )
                .await?
            }
        }
    }
    Ok(())
}

/// Seeds the lake from a complete extract at the feed head, resumably.
async fn seed(
    client: &FregClient,
    lake: &mut Lake,
    pipeline: &Pipeline,
    shutdown: &CancellationToken,
    report: &mut Report,
) -> Result<(), IngestError> {
    let seeded_tables = [&*PERSON, &*PERSON_HISTORY, &*DEAD_LETTER];
    let sequence = match lake
        .position(&PERSON_HISTORY, FREG_SEED_SEQUENCE)
        .await?
        .or(lake.position(&PERSON, FREG_SEED_SEQUENCE).await?)
    {
        Some(s) => s,
        None => client.head().await?,
    };
    let done = positions(lake, FREG_SEED_BATCHES).await?;
    let mut next_batch = seeded_tables
        .iter()
        .map(|t| done[t.name].unwrap_or(0))
        .min()
        .unwrap_or(0) as u64;
    let job = client.extract(sequence).await?;
    let per_commit = pipeline.worker.seed_batch_persons.div_ceil(BULK).max(1) as u64;
    info!(sequence, job = %job, from_batch = next_batch, "seeding the lake from the bulk extract");
    let started = Instant::now();
    let mut finished = false;
    while !finished && !shutdown.is_cancelled() {
        let mut doc_ids = Vec::new();
        let first = next_batch;
        while next_batch < first + per_commit {
            match client.extract_batch(&job, next_batch).await? {
                Some(b) => {
                    doc_ids.extend(b.dokumentidentifikator);
                    next_batch += 1;
                }
                None => {
                    finished = true;
                    break;
                }
            }
        }
        let lookups =
            fetch_lookups(client, doc_ids, true, pipeline.worker.fetch_concurrency).await?;
        let planned = batch::plan_seed(
            &lookups,
            sequence,
            &format!("extract={job} batches={first}..{next_batch}"),
        );
        let txns = [
            (FREG_SEED_BATCHES, next_batch as i64),
            (FREG_SEED_SEQUENCE, sequence),
        ];
        let pending: Vec<&'static Table> = seeded_tables
            .iter()
            .copied()
            .filter(|t| done[t.name].unwrap_or(0) < next_batch as i64)
            .collect();
        commit(lake, &planned, &pending, &txns, true).await?;
        report.seeded_persons += planned.persons.len() as u64;
        report.dead_letters += planned.dead_letters.len() as u64;
        let rate = report.seeded_persons as f64 / started.elapsed().as_secs_f64().max(1e-3);
        info!(
            batches = next_batch,
            persons = report.seeded_persons,
            dead_letters = planned.dead_letters.len(),
            persons_per_s = rate as u64,
            "seed batch committed"
        );
    }
    if finished {
        // The seed is complete: the state tables now stand at the extract's sequence number.
        let txns = [(FREG_FEED, sequence), (FREG_SEED_SEQUENCE, sequence)];
        commit(lake, &Planned::default(), &seeded_tables, &txns, true).await?;
        info!(
            sequence,
            persons = report.seeded_persons,
            elapsed_s = started.elapsed().as_secs_f64(),
            "seed complete"
        );
    }
    Ok(())
}

/// Follows the feed from the lowest table position.
async fn follow(
    client: &FregClient,
    lake: &mut Lake,
    pipeline: &Pipeline,
    options: &RunOptions,
    shutdown: &CancellationToken,
    report: &mut Report,
) -> Result<(), IngestError> {
    let seed_sequence = lake
        .position(&PERSON, FREG_SEED_SEQUENCE)
        .await?
        .unwrap_or(0);
    let mut table_positions: HashMap<&'static str, i64> = positions(lake, FREG_FEED)
        .await?
        .into_iter()
        .map(|(k, v)| (k, v.unwrap_or(0)))
        .collect();
    let start = table_positions.values().copied().min().unwrap_or(0);
    info!(from = start + 1, seed_sequence, "following the feed");
    let (tx, mut rx) = mpsc::channel::<Batch>(2);
    let fetcher = tokio::spawn(fetch_loop(
        client.clone(),
        pipeline.clone(),
        start + 1,
        seed_sequence,
        options.until_caught_up,
        shutdown.clone(),
        tx,
    ));
    let started = Instant::now();
    while let Some(b) = rx.recv().await {
        let Some(last) = b.entries.last().map(|e| e.sekvensnummer) else {
            continue;
        };
        let mut plans: HashMap<i64, Planned> = HashMap::new();
        for table in TABLES.iter() {
            let after = table_positions[table.name];
            if after >= last {
                continue;
            }
            let planned = plans.entry(after).or_insert_with(|| {
                batch::plan(
                    &b.entries,
                    &b.docs,
                    after,
                    seed_sequence,
                    chrono::Utc::now(),
                )
            });
            commit(lake, planned, &[table], &[(FREG_FEED, last)], false).await?;
            table_positions.insert(table.name, last);
        }
        let planned = plans.values().next();
        report.events += b.entries.len() as u64;
        report.dead_letters += planned.map_or(0, |p| p.dead_letters.len() as u64);
        report.position = last;
        let rate = report.events as f64 / started.elapsed().as_secs_f64().max(1e-3);
        info!(
            position = last,
            entries = b.entries.len(),
            persons = planned.map_or(0, |p| p.persons.len()),
            dead_letters = planned.map_or(0, |p| p.dead_letters.len()),
            events_per_s = rate as u64,
            "feed batch committed"
        );
    }
    match fetcher.await {
        Ok(result) => result?,
        Err(e) => {
            return Err(IngestError::Feed {
                source_name: "freg",
                sequence: report.position,
                reason: format!("fetch task failed: {e}"),
            });
        }
    }
    report.position = table_positions.values().copied().min().unwrap_or(0);
    Ok(())
}

/// Reads feed pages from `next`, fetches their documents, and sends batches to the writer.
async fn fetch_loop(
    client: FregClient,
    pipeline: Pipeline,
    mut next: i64,
    seed_sequence: i64,
    until_caught_up: bool,
    shutdown: CancellationToken,
    tx: mpsc::Sender<Batch>,
) -> Result<(), IngestError> {
    let w = &pipeline.worker;
    let mut pending: Vec<FeedEntry> = Vec::new();
    let mut etag: Option<String> = None;
    loop {
        if shutdown.is_cancelled() {
            break;
        }
        let page = tokio::select! {
            page = client.feed(next, etag.as_deref()) => page?,
            () = shutdown.cancelled() => break,
        };
        let (mut entries, at_head) = match page {
            FeedPage::NotModified => (Vec::new(), true),
            FeedPage::Entries(entries, tag) => {
                etag = tag;
                let full = entries.len() >= PAGE;
                (entries, !full)
            }
        };
        // Never skip or double-count: drop repeats and what is already taken, keep order.
        entries.sort_by_key(|e| e.sekvensnummer);
        let before = entries.len();
        entries.dedup_by_key(|e| e.sekvensnummer);
        entries.retain(|e| e.sekvensnummer >= next);
        if entries.len() < before {
            warn!(
                position = next,
                dropped = before - entries.len(),
                "feed page repeated entries; dropped the repeats"
            );
        }
        if let Some(first) = entries
            .first()
            .map(|e| e.sekvensnummer)
            .filter(|f| *f > next)
        {
            warn!(
                expected = next,
                got = first,
                "gap in the feed: sequence numbers missing (the rights package may filter them)"
            );
        }
        if let Some(last) = entries.last() {
            next = last.sekvensnummer + 1;
            etag = None;
        }
        pending.extend(entries);
        if !pending.is_empty() && (pending.len() >= w.batch_events || at_head) {
            let entries = std::mem::take(&mut pending);
            let docs = fetch_docs(&client, &entries, seed_sequence, w.fetch_concurrency).await?;
            if tx.send(Batch { entries, docs }).await.is_err() {
                break;
            }
        }
        if at_head {
            if until_caught_up && pending.is_empty() {
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
    entries: &[FeedEntry],
    seed_sequence: i64,
    concurrency: usize,
) -> Result<HashMap<String, Lookup>, IngestError> {
    let mut by_doc = Vec::new();
    let mut by_id = Vec::new();
    for e in entries.iter().filter(|e| e.sekvensnummer > seed_sequence) {
        match &e.hendelse.persondokument {
            Some(d) => by_doc.push(d.clone()),
            None => by_id.push(e.hendelse.folkeregisteridentifikator.clone()),
        }
    }
    by_doc.sort();
    by_doc.dedup();
    by_id.sort();
    by_id.dedup();
    let mut out = HashMap::new();
    for l in fetch_lookups(client, by_doc, true, concurrency).await? {
        if let Some(k) = l.dokumentidentifikator.clone() {
            out.insert(k, l);
        }
    }
    for l in fetch_lookups(client, by_id, false, concurrency).await? {
        if let Some(k) = l.id.clone() {
            out.insert(k, l);
        }
    }
    Ok(out)
}
