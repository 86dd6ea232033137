//! The Kafka publisher: follows the lake and publishes what it has committed to the topics.
//!
//! The lake is the source of truth; Kafka is a sink of it with its own position (`kafka_sink`
//! table, one app id per feed, e.g. `regsync.kafka.freg`). Each of a feed's outlets
//! ([`schemas::register::Outlet`]) turns a query's rows into one topic's messages. A slow or
//! absent broker never holds the lake back: the
//! worker goes on committing, and the publisher catches up when the broker is back. Memory is
//! bounded by a slice of at most `slice_sequences` feed sequence numbers, streamed batch by batch.

use std::sync::Arc;
use std::time::Instant;

use arrow::array::{Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use futures::StreamExt;
use schemas::register::{Feed, Outlet};
use schemas::tables::{KAFKA_SINK, Table};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use url::Url;

use crate::IngestError;
use crate::config::KafkaConfig;
use crate::kafka::{KafkaSink, Positions};
use crate::lake::Lake;
use crate::register::Source;

/// What the publisher did.
#[derive(Debug, Clone, Default)]
pub struct PublishReport {
    /// Messages produced, on every topic.
    pub messages: u64,
    /// The sink's position at the end.
    pub position: i64,
}

fn read_error(e: impl std::fmt::Display) -> IngestError {
    IngestError::LakeRead(e.to_string())
}

/// What the publisher works with.
pub struct Publisher {
    /// The connected producer.
    pub sink: KafkaSink,
    /// The sink's settings.
    pub config: KafkaConfig,
    /// The lake it follows.
    pub lake_url: Url,
    /// Cancelled to stop; the publisher cancels it when it must stop the worker.
    pub shutdown: CancellationToken,
    /// Where it reports.
    pub metrics: Arc<crate::metrics::RegisterMetrics>,
    /// The lake's lease: nothing is published once it is lost.
    pub lease: crate::lease::Lease,
    /// The register whose tables it publishes.
    pub source: &'static dyn Source,
}

/// Publishes until shutdown (or until caught up once the worker is done), starting again after
/// a failure that may pass (broker, lake read) with growing pauses, each failure logged and
/// counted as it happens. Another writer ([`IngestError::LakeHeld`]) or rows that cannot become
/// messages stop it, and stop the worker with it (`shutdown` is cancelled).
pub async fn publish_supervised(
    mut publisher: Publisher,
    worker_done: watch::Receiver<bool>,
) -> Result<PublishReport, IngestError> {
    let mut report = PublishReport::default();
    let mut failures = 0u32;
    loop {
        let before = report.position;
        let error = match publish(&publisher, worker_done.clone(), &mut report).await {
            Ok(()) => return Ok(report),
            Err(e) => e,
        };
        let p = &publisher;
        let fatal = error.lake_held() || matches!(error, IngestError::Transform(_));
        if fatal || p.shutdown.is_cancelled() {
            warn!(error = %error, "kafka publisher stopped; stopping the worker");
            p.shutdown.cancel();
            return Err(error);
        }
        // A failure after progress starts a new count.
        failures = if report.position > before {
            1
        } else {
            failures + 1
        };
        p.metrics.publish_failed(&error.to_string());
        p.metrics.retried("kafka");
        // Once the worker is done (`--until-caught-up`), a publisher that keeps failing ends
        // the run with its error instead of holding it open.
        if *worker_done.borrow() && failures >= 5 {
            return Err(error);
        }
        let pause = crate::error::pause_after(failures);
        warn!(
            error = %error,
            failures,
            retry_in_s = pause.as_secs(),
            position = report.position,
            "kafka publisher failed; the lake goes on, publishing starts again from the topics' ends"
        );
        // Nothing of the failed attempt may land after the topics' ends are read again, and a
        // producer in a fatal state (idempotence) is not reused: purge it, then connect anew.
        p.sink.purge();
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            () = p.shutdown.cancelled() => return Err(error),
        }
        match KafkaSink::connect(p.config.clone(), &p.source.register().topics()).await {
            Ok(sink) => publisher.sink = sink,
            Err(e) => warn!(error = %e, "kafka: connecting again failed; trying again"),
        }
    }
}

/// One topic being published, and where its partitions stand.
struct Outbound {
    outlet: Outlet,
    positions: Positions,
}

/// One feed being published: its topics, and the tables they read.
struct FeedOut {
    feed: &'static Feed,
    outbound: Vec<Outbound>,
    tables: Vec<&'static Table>,
}

/// Publishes the lake's committed rows until shutdown, or, once `worker_done` is set, until the
/// sink has reached the lake's position on every feed.
async fn publish(
    p: &Publisher,
    mut worker_done: watch::Receiver<bool>,
    report: &mut PublishReport,
) -> Result<(), IngestError> {
    let (config, shutdown, metrics) = (&p.config, &p.shutdown, &p.metrics);
    let register = p.source.register();
    // Where each partition's messages end, read back from the broker: after a restart (or a
    // failure) what is already there is skipped.
    let mut feeds = Vec::new();
    for feed in &register.feeds {
        let mut outbound = Vec::new();
        let mut tables: Vec<&'static Table> = Vec::new();
        for outlet in &feed.outlets {
            let positions = p.sink.positions(&outlet.topic).await?;
            info!(
                topic = outlet.topic.name,
                partitions = positions.len(),
                "kafka sink: read back the topic's last messages"
            );
            for table in &outlet.reads {
                if !tables.iter().any(|t| std::ptr::eq(*t, *table)) {
                    tables.push(table);
                }
            }
            outbound.push(Outbound {
                outlet: outlet.clone(),
                positions,
            });
        }
        feeds.push(FeedOut {
            feed,
            outbound,
            tables,
        });
    }
    // Opened once (the tables it reads, and its own) and refreshed from the log's new entries
    // on each round.
    let mut opened: Vec<&'static Table> = vec![&*KAFKA_SINK];
    for table in feeds.iter().flat_map(|f| f.tables.iter()) {
        if !opened.iter().any(|t| std::ptr::eq(*t, *table)) {
            opened.push(table);
        }
    }
    let mut lake = Lake::open_tables(&p.lake_url, &opened).await?;
    loop {
        if shutdown.is_cancelled() {
            break;
        }
        let done = *worker_done.borrow();
        for table in &opened {
            lake.refresh_table(table).await?;
        }
        let mut published = false;
        for f in &mut feeds {
            if shutdown.is_cancelled() || !p.lease.held() {
                // Another process took the lake: it publishes from here on.
                break;
            }
            published |= publish_feed(p, &mut lake, f, report).await?;
        }
        if !published {
            metrics.published(0, report.position);
            if done || !p.lease.held() {
                break;
            }
            tokio::select! {
                () = tokio::time::sleep(config.poll_interval) => {}
                _ = worker_done.changed() => {}
                () = shutdown.cancelled() => break,
            }
        }
    }
    Ok(())
}

/// The sink's position before its first slice: below every position a table records.
const NOTHING_PUBLISHED: i64 = -1;

/// Publishes one feed's next slice, if the lake has committed one: whether it did.
async fn publish_feed(
    p: &Publisher,
    lake: &mut Lake,
    f: &mut FeedOut,
    report: &mut PublishReport,
) -> Result<bool, IngestError> {
    let (sink, config, metrics) = (&p.sink, &p.config, &p.metrics);
    let feed = f.feed;
    // A slice is published once every table it reads has committed it (a table that has
    // committed nothing holds nothing to publish).
    let mut upto = i64::MAX;
    for table in &f.tables {
        let at = lake.position(table, feed.position).await?;
        upto = upto.min(at.unwrap_or(NOTHING_PUBLISHED));
    }
    // Nothing published yet: from before the first position, so that rows a seed wrote at
    // position 0 (a register whose feed was empty when it was seeded) are published too.
    let from = lake
        .position(&KAFKA_SINK, feed.kafka)
        .await?
        .unwrap_or(NOTHING_PUBLISHED);
    report.position = from;
    if from >= upto {
        return Ok(false);
    }
    let started = Instant::now();
    let ctx = lake.session(&f.tables).await?;
    // The slice starts at the first position there is (none up to `upto`: an empty slice
    // moves the sink's position there).
    let next = first_position(&ctx, feed, from).await?;
    let to = match next {
        Some(n) if n <= upto => upto.min((n - 1).max(from) + config.slice_sequences),
        _ => upto,
    };
    let mut counts = Vec::with_capacity(f.outbound.len());
    for o in &mut f.outbound {
        let outlet = &o.outlet;
        let mut stream = ctx
            .sql(&outlet.query(from, to))
            .await
            .map_err(read_error)?
            .execute_stream()
            .await
            .map_err(read_error)?;
        let mut count = 0u64;
        while let Some(batch) = stream.next().await {
            let batch = batch.map_err(read_error)?;
            let messages = p
                .source
                .messages(&outlet.topic, &batch, config.include_confidential)?;
            // Librdkafka retries without end (no message timeout); a broker that accepts
            // nothing for `stall_timeout` (down for long, or its topics gone) is a failure:
            // the supervisor purges, connects again and reads the topics' ends.
            count += tokio::time::timeout(
                config.stall_timeout,
                sink.produce(&outlet.topic, messages, &mut o.positions),
            )
            .await
            .map_err(|_| IngestError::Kafka {
                brokers: config.brokers.clone(),
                reason: format!(
                    "{}: nothing acknowledged for {} s (slice {}..={to})",
                    outlet.topic.name,
                    config.stall_timeout.as_secs(),
                    from + 1
                ),
            })??;
        }
        counts.push((outlet.topic.name, count));
    }
    sink.flush()?;
    let register = p.source.register();
    lake.append(
        &KAFKA_SINK,
        Some(slice_rows(register.name, &counts, from + 1, to)?),
        &[(feed.kafka, to)],
    )
    .await?;
    let total: u64 = counts.iter().map(|(_, n)| n).sum();
    report.messages += total;
    report.position = to;
    metrics.published(total, to);
    let secs = started.elapsed().as_secs_f64().max(1e-3);
    info!(
        feed = feed.name,
        from = from + 1,
        to,
        messages = total,
        messages_per_s = (total as f64 / secs) as u64,
        "kafka slice published"
    );
    Ok(true)
}

/// The first position after `from` that the feed's outlets publish.
async fn first_position(
    ctx: &deltalake::datafusion::prelude::SessionContext,
    feed: &Feed,
    from: i64,
) -> Result<Option<i64>, IngestError> {
    let batches = ctx
        .sql(&schemas::register::bounded(feed.next_position, from, from))
        .await
        .map_err(read_error)?
        .collect()
        .await
        .map_err(read_error)?;
    let column = batches
        .iter()
        .find(|b| b.num_rows() > 0)
        .map(|b| arrow::compute::cast(b.column(0), &arrow::datatypes::DataType::Int64))
        .transpose()
        .map_err(read_error)?;
    Ok(column.and_then(|c| {
        let c = arrow::array::AsArray::as_primitive::<arrow::datatypes::Int64Type>(&c);
        (!arrow::array::Array::is_null(c, 0)).then(|| c.value(0))
    }))
}

/// The `kafka_sink` rows of a published slice: one per topic.
fn slice_rows(
    register: &str,
    counts: &[(&str, u64)],
    from: i64,
    to: i64,
) -> Result<RecordBatch, IngestError> {
    let now = chrono::Utc::now().timestamp_micros();
    let n = counts.len();
    RecordBatch::try_new(
        KAFKA_SINK.schema.clone(),
        vec![
            Arc::new(StringArray::from(vec![register; n])),
            Arc::new(StringArray::from_iter_values(
                counts.iter().map(|(t, _)| *t),
            )),
            Arc::new(Int64Array::from(vec![from; n])),
            Arc::new(Int64Array::from(vec![to; n])),
            Arc::new(Int64Array::from_iter_values(
                counts.iter().map(|(_, c)| *c as i64),
            )),
            Arc::new(TimestampMicrosecondArray::from(vec![now; n]).with_timezone("UTC")),
        ],
    )
    .map_err(read_error)
}
