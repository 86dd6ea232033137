//! The population register (Folkeregisteret) behind [`Source`]: its client, its seed from the
//! bulk extract ([`crate::seed`]), following its feed ([`crate::follow`]) and seeding again in
//! place when the feed has expired ([`crate::reseed`]).

use arrow::array::RecordBatch;
use futures::future::BoxFuture;
use schemas::cursor::FREG_FEED;
use schemas::register::Register;
use schemas::tables::PERSON;
use schemas::topics::{self, Topic};
use tokio_util::sync::CancellationToken;
use transform::TransformError;
use transform::messages::Message;

use crate::IngestError;
use crate::client::FregClient;
use crate::config::Pipeline;
use crate::follow::follow;
use crate::lake::Lake;
use crate::register::{Connected, Source};
use crate::reseed::reseed;
use crate::seed::seed;
use crate::worker::{Report, RunOptions};

/// The population register (Folkeregisteret).
#[derive(Debug, Clone, Copy, Default)]
pub struct Freg;

impl Source for Freg {
    fn register(&self) -> &'static Register {
        &schemas::register::FREG
    }

    fn messages(
        &self,
        topic: &Topic,
        rows: &RecordBatch,
        include_confidential: bool,
    ) -> Result<Vec<Message>, TransformError> {
        if topic.name == topics::FREG_EVENT.name {
            transform::messages::event_messages(topic, rows, include_confidential)
        } else {
            transform::messages::person_messages(topic, rows, include_confidential)
        }
    }

    fn connect(&self, pipeline: &Pipeline) -> Result<Box<dyn Connected>, IngestError> {
        Ok(Box::new(FregClient::new(&pipeline.source)?))
    }
}

impl Connected for FregClient {
    fn sync<'a>(
        &'a self,
        lake: &'a mut Lake,
        pipeline: &'a Pipeline,
        options: &'a RunOptions,
        shutdown: &'a CancellationToken,
        report: &'a mut Report,
    ) -> BoxFuture<'a, Result<(), IngestError>> {
        Box::pin(seed_and_follow(
            self, lake, pipeline, options, shutdown, report,
        ))
    }
}

/// Seeds an empty lake, then follows the feed from the lake's positions: what a failed attempt
/// left undone is found again from them.
async fn seed_and_follow(
    client: &FregClient,
    lake: &mut Lake,
    pipeline: &Pipeline,
    options: &RunOptions,
    shutdown: &CancellationToken,
    report: &mut Report,
) -> Result<(), IngestError> {
    if lake.position(&PERSON, FREG_FEED).await?.is_none() {
        if seed(client, lake, pipeline, shutdown, report)
            .await?
            .is_none()
        {
            return Ok(());
        }
        crate::follow::compact_after_seed(lake, pipeline, &schemas::register::FREG, shutdown)
            .await?;
    }
    let mut reseeded: Option<i64> = None;
    loop {
        match follow(client, lake, pipeline, options, shutdown, report).await {
            // The register no longer has the feed from the lake's position: seed again in place
            // (once: a register that refuses the position it just gave an extract at is broken).
            Err(IngestError::Expired { sequence, .. })
                if pipeline.worker.reseed_on_expiry && reseeded != Some(sequence - 1) =>
            {
                match reseed(client, lake, pipeline, shutdown, report, sequence).await? {
                    Some(at) => reseeded = Some(at),
                    None => return Ok(()),
                }
            }
            Err(IngestError::Expired { sequence, .. }) if reseeded == Some(sequence - 1) => {
                return Err(IngestError::Feed {
                    source_name: "freg",
                    sequence,
                    reason: format!(
                        "the register refuses the position right after its own extract at {}: stopping instead of seeding again in a loop",
                        sequence - 1
                    ),
                });
            }
            other => return other,
        }
    }
}
