//! The Kafka publisher: follows the lake and publishes what it has committed to the topics.
//!
//! The lake is the source of truth; Kafka is a sink of it with its own position (`kafka_sink`
//! table, app id `regsync.kafka.freg`). A slow or absent broker never holds the lake back: the
//! worker goes on committing, and the publisher catches up when the broker is back. Memory is
//! bounded by a slice of at most `slice_sequences` feed sequence numbers, streamed batch by batch.

use std::sync::Arc;
use std::time::Instant;

use arrow::array::{Int64Array, RecordBatch, TimestampMicrosecondArray};
use deltalake::datafusion::prelude::SessionContext;
use futures::StreamExt;
use schemas::cursor::{FREG_FEED, KAFKA_FREG};
use schemas::tables::{KAFKA_SINK, PERSON, PERSON_EVENT, Table};
use schemas::topics::{FREG_EVENT, FREG_PERSON, Topic};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::info;
use url::Url;

use crate::IngestError;
use crate::config::KafkaConfig;
use crate::kafka::{KafkaSink, Positions};
use crate::lake::{Lake, table_url};

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

async fn session(lake: &Url, tables: &[&'static Table]) -> Result<SessionContext, IngestError> {
    let ctx = SessionContext::new();
    for table in tables {
        let delta = deltalake::open_table(table_url(lake, table))
            .await
            .map_err(read_error)?;
        delta
            .update_datafusion_session(&ctx.state())
            .map_err(read_error)?;
        let provider = delta.table_provider().await.map_err(read_error)?;
        ctx.register_table(table.name, provider)
            .map_err(read_error)?;
    }
    Ok(ctx)
}

/// Publishes the lake's committed rows until shutdown, or, once `worker_done` is set, until the
/// sink has reached the lake's position.
pub async fn publish(
    sink: KafkaSink,
    config: KafkaConfig,
    lake_url: Url,
    mut worker_done: watch::Receiver<bool>,
    shutdown: CancellationToken,
) -> Result<PublishReport, IngestError> {
    let sink = Arc::new(sink);
    let mut positions: [Positions; 2] = [
        sink.positions(&FREG_EVENT).await?,
        sink.positions(&FREG_PERSON).await?,
    ];
    info!(
        event_partitions = positions[0].len(),
        person_partitions = positions[1].len(),
        "kafka sink: read back the topics' last messages"
    );
    let mut report = PublishReport::default();
    loop {
        if shutdown.is_cancelled() {
            break;
        }
        let done = *worker_done.borrow();
        let mut lake = Lake::open(&lake_url).await?;
        let committed = [
            lake.position(&PERSON_EVENT, FREG_FEED).await?,
            lake.position(&PERSON, FREG_FEED).await?,
        ];
        let upto = committed.iter().map(|p| p.unwrap_or(0)).min().unwrap_or(0);
        let from = lake.position(&KAFKA_SINK, KAFKA_FREG).await?.unwrap_or(0);
        report.position = from;
        if from >= upto {
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
        let to = upto.min(from + config.slice_sequences);
        let started = Instant::now();
        let ctx = session(&lake_url, &[&PERSON, &PERSON_EVENT]).await?;
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
                counts[i] += sink.produce(topic, messages, &mut positions[i]).await?;
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
    Ok(report)
}
