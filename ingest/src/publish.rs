//! The Kafka publisher: follows the lake and publishes what it has committed to the topics.
//!
//! The lake is the source of truth; Kafka is a sink of it with its own position (`kafka_sink`
//! table, app id `regsync.kafka.freg`). A slow or absent broker never holds the lake back: the
//! worker goes on committing, and the publisher catches up when the broker is back. Memory is
//! bounded by a slice of at most `slice_sequences` feed sequence numbers, streamed batch by batch.

use std::sync::Arc;
use std::time::Instant;

use arrow::array::{Int64Array, RecordBatch, TimestampMicrosecondArray};
use futures::StreamExt;
use schemas::cursor::{FREG_FEED, KAFKA_FREG};
use schemas::tables::{KAFKA_SINK, PERSON, PERSON_EVENT};
use schemas::topics::{FREG_EVENT, FREG_PERSON, TOPICS, Topic};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use url::Url;

use crate::IngestError;
use crate::config::KafkaConfig;
use crate::kafka::{KafkaSink, Positions};
use crate::lake::Lake;

/// What the publisher did.
#[derive(Debug, Clone, Default)]
pub struct PublishReport {
    /// Event-topic messages produced.
    pub events: u64,
    /// Change-topic messages produced.
    pub persons: u64,
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
        match KafkaSink::connect(p.config.clone(), &TOPICS).await {
            Ok(sink) => publisher.sink = sink,
            Err(e) => warn!(error = %e, "kafka: connecting again failed; trying again"),
        }
    }
}

/// Publishes the lake's committed rows until shutdown, or, once `worker_done` is set, until the
/// sink has reached the lake's position.
async fn publish(
    p: &Publisher,
    mut worker_done: watch::Receiver<bool>,
    report: &mut PublishReport,
) -> Result<(), IngestError> {
    let (sink, config, shutdown, metrics, lease) =
        (&p.sink, &p.config, &p.shutdown, &p.metrics, &p.lease);
    // Where each partition's messages end, read back from the broker: after a restart (or a
    // failure) what is already there is skipped.
    let mut positions: [Positions; 2] = [
        sink.positions(&FREG_EVENT).await?,
        sink.positions(&FREG_PERSON).await?,
    ];
    info!(
        event_partitions = positions[0].len(),
        person_partitions = positions[1].len(),
        "kafka sink: read back the topics' last messages"
    );
    // Opened once and refreshed from the log's new entries on each round.
    let mut lake = Lake::open(&p.lake_url).await?;
    loop {
        if shutdown.is_cancelled() {
            break;
        }
        let done = *worker_done.borrow();
        for table in [&*PERSON, &*PERSON_EVENT, &*KAFKA_SINK] {
            lake.refresh_table(table).await?;
        }
        let committed = [
            lake.position(&PERSON_EVENT, FREG_FEED).await?,
            lake.position(&PERSON, FREG_FEED).await?,
        ];
        let upto = committed.iter().map(|p| p.unwrap_or(0)).min().unwrap_or(0);
        let from = lake.position(&KAFKA_SINK, KAFKA_FREG).await?.unwrap_or(0);
        report.position = from;
        if from >= upto {
            metrics.published(0, from);
            if done {
                break;
            }
            tokio::select! {
                () = tokio::time::sleep(config.poll_interval) => {}
                _ = worker_done.changed() => {}
                () = shutdown.cancelled() => break,
            }
            continue;
        }
        if !lease.held() {
            // Another process took the lake: it publishes from here on.
            break;
        }
        let to = upto.min(from + config.slice_sequences);
        let started = Instant::now();
        let ctx = lake.session(&[&PERSON, &PERSON_EVENT]).await?;
        let mut counts = [0u64; 2];
        let slices: [(&Topic, String); 2] = [
            (
                &FREG_EVENT,
                format!(
                    "SELECT * FROM person_event WHERE sequence > {from} AND sequence <= {to} ORDER BY sequence"
                ),
            ),
            (
                &FREG_PERSON,
                format!(
                    "SELECT * FROM person WHERE last_sequence > {from} AND last_sequence <= {to} ORDER BY last_sequence, person_id"
                ),
            ),
        ];
        for (i, (topic, sql)) in slices.iter().enumerate() {
            let mut stream = ctx
                .sql(sql)
                .await
                .map_err(read_error)?
                .execute_stream()
                .await
                .map_err(read_error)?;
            while let Some(batch) = stream.next().await {
                let batch = batch.map_err(read_error)?;
                let messages = if topic.name == FREG_EVENT.name {
                    transform::messages::event_messages(topic, &batch, config.include_confidential)?
                } else {
                    transform::messages::person_messages(
                        topic,
                        &batch,
                        config.include_confidential,
                    )?
                };
                // Librdkafka retries without end (no message timeout); a broker that accepts
                // nothing for `stall_timeout` (down for long, or its topics gone) is a failure:
                // the supervisor purges, connects again and reads the topics' ends.
                counts[i] += tokio::time::timeout(
                    config.stall_timeout,
                    sink.produce(topic, messages, &mut positions[i]),
                )
                .await
                .map_err(|_| IngestError::Kafka {
                    brokers: config.brokers.clone(),
                    reason: format!(
                        "{}: nothing acknowledged for {} s (slice {}..={to})",
                        topic.name,
                        config.stall_timeout.as_secs(),
                        from + 1
                    ),
                })??;
            }
        }
        sink.flush()?;
        let row = RecordBatch::try_new(
            KAFKA_SINK.schema.clone(),
            vec![
                Arc::new(Int64Array::from(vec![from + 1])),
                Arc::new(Int64Array::from(vec![to])),
                Arc::new(Int64Array::from(vec![counts[0] as i64])),
                Arc::new(Int64Array::from(vec![counts[1] as i64])),
                Arc::new(
                    TimestampMicrosecondArray::from(vec![chrono::Utc::now().timestamp_micros()])
                        .with_timezone("UTC"),
                ),
            ],
        )
        .map_err(read_error)?;
        lake.append(&KAFKA_SINK, Some(row), &[(KAFKA_FREG, to)])
            .await?;
        report.events += counts[0];
        report.persons += counts[1];
        report.position = to;
        metrics.published(counts[0] + counts[1], to);
        let secs = started.elapsed().as_secs_f64().max(1e-3);
        info!(
            from = from + 1,
            to,
            event_messages = counts[0],
            person_messages = counts[1],
            messages_per_s = ((counts[0] + counts[1]) as f64 / secs) as u64,
            "kafka slice published"
        );
    }
    Ok(())
}
