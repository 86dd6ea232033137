//! The feed worker: holds the lake's lease, runs the register's sync (seed an empty lake, then
//! follow its feed from the lake's own positions, see [`crate::register::Connected`]) beside the
//! Kafka publisher when one is configured, and retries lake writes that may pass. Nothing here
//! names a register, its tables or its topics.

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use tracing::{Instrument, info, info_span, warn};

use crate::IngestError;
use crate::config::{KafkaConfig, Pipeline};
use crate::error::ErrorKind;
use crate::kafka::KafkaSink;
use crate::lake::{Lake, lake_url};
use crate::lease::Lease;
use crate::publish::{Publisher, publish_supervised};
use crate::register::{Connected, Source};

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
    /// Entities (persons, units, addresses) written by the seed.
    pub seeded: u64,
    /// Feed entries committed.
    pub events: u64,
    /// Records dead-lettered.
    pub dead_letters: u64,
    /// The last feed sequence number committed in every table.
    pub position: i64,
    /// Kafka messages produced.
    pub published: u64,
}

/// Attempts of a failing lake write (an object store that fails, a commit that lost a race to
/// maintenance) before the worker stops.
const LAKE_TRIES: u32 = 20;

/// Runs the pipeline until `shutdown` (or, with `until_caught_up`, until the head is committed).
pub async fn run(
    pipeline: Pipeline,
    options: RunOptions,
    shutdown: CancellationToken,
) -> Result<Report, IngestError> {
    let span =
        info_span!("worker", pipeline = %pipeline.name, register = %pipeline.source.register);
    let result = async move {
        let location = options
            .lake
            .clone()
            .unwrap_or_else(|| pipeline.lake.url.clone());
        let url = lake_url(&location).map_err(|reason| IngestError::Config {
            path: "--lake".into(),
            reason,
        })?;
        let source = crate::register::by_name(&pipeline.source.register).ok_or_else(|| {
            IngestError::Config {
                path: "source.register".into(),
                reason: format!("{:?} is not a register", pipeline.source.register),
            }
        })?;
        // Settings are checked before anything is opened: a bad one stops the start.
        let connected = source.connect(&pipeline)?;
        let lake = Lake::open_tables(&url, &source.register().lake_tables()).await?;
        // One writer per register and lake: a second worker stops here, before it writes or
        // publishes.
        let lease = Lease::acquire(&url, source.register(), &shutdown).await?;
        let mut lake = lake;
        // The lake as it is now: a holder whose lease was waited out may have stopped mid-way.
        lake.refresh().await?;
        let tables = source.register().lake_tables();
        let retention = pipeline.maintenance.vacuum_retention;
        crate::maintain::restore_tombstone_retention(&mut lake, &tables, retention).await;
        let result = run_with_lease(
            source,
            connected.as_ref(),
            lake,
            &url,
            &pipeline,
            &options,
            &shutdown,
            &lease,
        )
        .await;
        let lost = lease.lost().await;
        lease.release().await;
        if let Some(e) = lost {
            return Err(e);
        }
        result
    }
    .instrument(span)
    .await;
    match result {
        // Another writer: say where the lake stands now.
        Err(e) => Err(crate::lake::explain(e).await),
        ok => ok,
    }
}

/// The worker's work once it holds the lake's lease: the Kafka publisher beside the seed and the
/// feed, retrying lake writes that may pass.
#[allow(clippy::too_many_arguments)]
async fn run_with_lease(
    source: &'static dyn Source,
    connected: &dyn Connected,
    mut lake: Lake,
    url: &url::Url,
    pipeline: &Pipeline,
    options: &RunOptions,
    shutdown: &CancellationToken,
    lease: &Lease,
) -> Result<Report, IngestError> {
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
            let sink = KafkaSink::connect(k.clone(), &source.register().topics()).await?;
            info!(brokers = %k.brokers, prefix = %k.topic_prefix, "kafka sink connected");
            let publisher = Publisher {
                sink,
                config: k,
                lake_url: url.clone(),
                shutdown: shutdown.clone(),
                metrics: crate::metrics::register(&pipeline.source.register),
                lease: lease.clone(),
                source,
            };
            Some(tokio::spawn(
                publish_supervised(publisher, done_rx).in_current_span(),
            ))
        }
        None => None,
    };
    let mut report = Report::default();
    let worked = async {
        let mut failures = 0u32;
        loop {
            let progress = (report.events, report.seeded);
            let attempt = connected
                .sync(&mut lake, pipeline, options, shutdown, &mut report)
                .await;
            let error = match attempt {
                Err(e @ IngestError::Lake { .. })
                    if e.kind() == ErrorKind::Retryable
                        && failures < LAKE_TRIES
                        && !shutdown.is_cancelled() =>
                {
                    e
                }
                other => return other,
            };
            // A failure after progress starts a new count: the budget is per incident.
            failures = if (report.events, report.seeded) != progress {
                1
            } else {
                failures + 1
            };
            crate::metrics::register(&pipeline.source.register).retried("lake");
            let pause = crate::error::pause_after(failures);
            warn!(
                error = %error,
                failures,
                retry_in_s = pause.as_secs(),
                "lake write failed; reading the lake again and going on from its positions"
            );
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                () = shutdown.cancelled() => return Err(error),
            }
            // The store may still be failing: opening it again counts as one more attempt.
            match Lake::open_tables(url, &source.register().lake_tables()).await {
                Ok(opened) => lake = opened,
                Err(e) if e.kind() == ErrorKind::Retryable && failures < LAKE_TRIES => {
                    warn!(error = %e, "opening the lake failed; trying again");
                }
                Err(e) => return Err(e),
            }
        }
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
        report.published = published.messages;
    }
    worked?;
    Ok(report)
}
