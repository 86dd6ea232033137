//! The business register (Enhetsregisteret) behind [`Source`]: two updates lists (enheter,
//! underenheter), each a feed of its own with its own `oppdateringsid` sequence, seeded from the
//! register's bulk download and then followed from the download's time.
//!
//! # Layout
//! - [`client`]: the open API's endpoints.
//! - [`download`]: the gzipped bulk file, unpacked and parsed as it arrives.
//! - [`seed`]: a list's tables from the download, resumable.
//! - [`follow`]: a list's updates after the lake's positions.

pub mod client;
pub mod download;
pub mod follow;
pub mod seed;

use arrow::array::RecordBatch;
use futures::future::BoxFuture;
use schemas::register::{Feed, Register};
use schemas::topics::Topic;
use tokio_util::sync::CancellationToken;
use transform::TransformError;
use transform::brreg::UnitKind;
use transform::messages::Message;

use crate::IngestError;
use crate::config::Pipeline;
use crate::lake::Lake;
use crate::register::{Connected, Source};
use crate::worker::{Report, RunOptions};
use client::BrregClient;

/// The business register.
#[derive(Debug, Clone, Copy, Default)]
pub struct Brreg;

/// Each list with its feed, in the order they are seeded and followed.
fn lists() -> [(&'static Feed, UnitKind); 2] {
    let feeds = &schemas::register::BRREG.feeds;
    [
        (&feeds[0], UnitKind::Enhet),
        (&feeds[1], UnitKind::Underenhet),
    ]
}

impl Source for Brreg {
    fn register(&self) -> &'static Register {
        &schemas::register::BRREG
    }

    fn messages(
        &self,
        topic: &Topic,
        rows: &RecordBatch,
        _include_confidential: bool,
    ) -> Result<Vec<Message>, TransformError> {
        transform::messages::unit_messages(topic, rows)
    }

    fn connect(&self, pipeline: &Pipeline) -> Result<Box<dyn Connected>, IngestError> {
        Ok(Box::new(BrregClient::new(&pipeline.source)?))
    }
}

impl Connected for BrregClient {
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

/// Seeds each list not seeded yet, then follows both until `shutdown` (or, with
/// `until_caught_up`, until neither has anything new).
async fn seed_and_follow(
    client: &BrregClient,
    lake: &mut Lake,
    pipeline: &Pipeline,
    options: &RunOptions,
    shutdown: &CancellationToken,
    report: &mut Report,
) -> Result<(), IngestError> {
    for (feed, kind) in lists() {
        if !seed::seed_list(client, lake, pipeline, feed, kind, shutdown, report).await? {
            return Ok(());
        }
    }
    let every = pipeline.maintenance.every;
    let mut maintain_at = tokio::time::Instant::now() + every;
    loop {
        let mut caught_up = true;
        for (feed, kind) in lists() {
            if shutdown.is_cancelled() {
                return Ok(());
            }
            caught_up &= follow::step(client, lake, pipeline, feed, kind, shutdown, report).await?;
        }
        if !every.is_zero() && tokio::time::Instant::now() >= maintain_at {
            crate::follow::maintain_between_commits(lake, pipeline, &schemas::register::BRREG)
                .await?;
            maintain_at = tokio::time::Instant::now() + every;
        }
        if !caught_up {
            continue;
        }
        // Both lists read to their end: wait for more (fewer, larger commits).
        if options.until_caught_up {
            return Ok(());
        }
        tokio::select! {
            () = tokio::time::sleep(pipeline.worker.poll_interval) => {}
            () = shutdown.cancelled() => return Ok(()),
        }
    }
}
