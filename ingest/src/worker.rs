//! The population register's feed worker: seed an empty lake from the bulk extract, then follow
//! the feed from the lake's own position.
//!
//! The seed is in [`crate::seed`], following the feed in [`crate::follow`]; this module starts
//! them in order, beside the Kafka publisher when one is configured.

use schemas::cursor::FREG_FEED;
use schemas::tables::PERSON;
use schemas::topics::TOPICS;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info, info_span};

use crate::IngestError;
use crate::client::FregClient;
use crate::config::{KafkaConfig, Pipeline};
use crate::follow::follow;
use crate::kafka::KafkaSink;
use crate::lake::{Lake, lake_url};
use crate::publish::publish;
use crate::seed::seed;

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
            if lake.position(&PERSON, FREG_FEED).await?.is_none()
                && seed(&client, &mut lake, &pipeline, &shutdown, &mut report)
                    .await?
                    .is_none()
            {
                return Ok(());
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
