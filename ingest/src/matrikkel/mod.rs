//! The property register (Matrikkelen) behind [`Source`]: its addresses seeded from the address
//! file, its cadastral units from the initial load, then its change log (`findEndringer`)
//! followed from before the file was taken.
//!
//! # Layout
//! - [`client`]: the change log and the initial load.
//! - [`file`]: the address file (`matrikkelenAdresse.csv`, plain or zipped, URL or path).
//! - [`units`]: the cadastral units' initial load.
//! - [`follow`]: the change log after the lake's positions.
//!
//! Where the log is followed from: the file's lines say when its data was taken
//! (`datauttaksdato`, local time); the log is bisected by its changes' times for a change made
//! before that, less three hours (the offset from Norwegian time and a margin). A file without
//! the column, or a seed that went on after a stop (whose earlier file is not known any more),
//! starts 26 hours before the first attempt began, as the business register's download does.
//! Changes replayed apply the objects' current state again, which changes nothing.

pub mod client;
pub mod file;
pub mod follow;
pub mod units;

use arrow::array::RecordBatch;
use chrono::{DateTime, Duration, Utc};
use futures::future::BoxFuture;
use schemas::cursor::{
    MATRIKKEL_CHANGES, MATRIKKEL_KOMMUNER, MATRIKKEL_SEED_AT, MATRIKKEL_SEEDED_AT,
};
use schemas::property::{ADDRESS, CADASTRAL_UNIT};
use schemas::register::{MATRIKKEL, Register};
use schemas::topics::Topic;
use tokio_util::sync::CancellationToken;
use tracing::info;
use transform::TransformError;
use transform::messages::Message;

use crate::IngestError;
use crate::config::Pipeline;
use crate::lake::Lake;
use crate::register::{Connected, Source};
use crate::worker::{Report, RunOptions};
use client::MatrikkelClient;
use file::{AddressFile, FileRead};

/// The property register.
#[derive(Debug, Clone, Copy, Default)]
pub struct Matrikkel;

impl Source for Matrikkel {
    fn register(&self) -> &'static Register {
        &MATRIKKEL
    }

    fn messages(
        &self,
        topic: &Topic,
        rows: &RecordBatch,
        _include_confidential: bool,
    ) -> Result<Vec<Message>, TransformError> {
        transform::messages::address_messages(topic, rows)
    }

    fn connect(&self, pipeline: &Pipeline) -> Result<Box<dyn Connected>, IngestError> {
        let source = &pipeline.source;
        let file = source
            .address_file
            .clone()
            .ok_or_else(|| IngestError::Config {
                path: "source.address_file".into(),
                reason: "the property register is seeded from its address file: give its URL or a local .csv or .zip path".into(),
            })?;
        let client = MatrikkelClient::new(source)?;
        Ok(Box::new(Property {
            file: AddressFile {
                http: client.http().client().clone(),
                file,
                idle: source.request_timeout,
                kommuner: source.kommuner.clone(),
            },
            client,
        }))
    }
}

/// The register's connection: its API and its address file.
struct Property {
    client: MatrikkelClient,
    file: AddressFile,
}

impl Connected for Property {
    fn sync<'a>(
        &'a self,
        lake: &'a mut Lake,
        pipeline: &'a Pipeline,
        options: &'a RunOptions,
        shutdown: &'a CancellationToken,
        report: &'a mut Report,
    ) -> BoxFuture<'a, Result<(), IngestError>> {
        Box::pin(async move {
            let address = lake.position(&ADDRESS, MATRIKKEL_CHANGES).await?;
            self.same_kommuner(lake, pipeline, address.is_some())
                .await?;
            // Seeded when every table has its position (`address` last); a lake an earlier
            // version seeded has addresses only, and gets the rest.
            let units = lake.position(&CADASTRAL_UNIT, MATRIKKEL_CHANGES).await?;
            if (address.is_none() || units.is_none())
                && !self.seed(lake, pipeline, shutdown, report).await?
            {
                return Ok(());
            }
            let seeded_at = lake
                .position(&ADDRESS, MATRIKKEL_SEEDED_AT)
                .await?
                .and_then(DateTime::from_timestamp_micros)
                .unwrap_or(DateTime::<Utc>::MIN_UTC);
            let feed = &MATRIKKEL.feeds[0];
            loop {
                if shutdown.is_cancelled() {
                    return Ok(());
                }
                let at_end =
                    follow::step(&self.client, lake, pipeline, feed, seeded_at, report).await?;
                crate::follow::maintain_between_commits(lake, pipeline, &MATRIKKEL).await?;
                if at_end {
                    if options.until_caught_up {
                        return Ok(());
                    }
                    tokio::select! {
                        () = shutdown.cancelled() => return Ok(()),
                        () = tokio::time::sleep(pipeline.worker.poll_interval) => {}
                    }
                }
            }
        })
    }
}

/// A number for a kommune filter (0: none), to tell whether a lake was seeded with it.
fn filter_key(kommuner: &[String]) -> i64 {
    if kommuner.is_empty() {
        return 0;
    }
    let mut sorted: Vec<&str> = kommuner.iter().map(String::as_str).collect();
    sorted.sort_unstable();
    sorted.dedup();
    let h = file::id_key(&sorted.join(","));
    // Positive and never 0.
    i64::try_from(h >> 1).unwrap_or(i64::MAX).max(1)
}

impl Property {
    /// A lake seeded for some kommuner is followed for those only: another filter would leave
    /// kommuner unseeded or frozen. The filter is recorded with the first seed; a lake an earlier
    /// version seeded (the whole country) counts as unfiltered.
    async fn same_kommuner(
        &self,
        lake: &mut Lake,
        pipeline: &Pipeline,
        seeded: bool,
    ) -> Result<(), IngestError> {
        let want = filter_key(&pipeline.source.kommuner);
        let recorded = lake.position(&ADDRESS, MATRIKKEL_KOMMUNER).await?;
        match recorded.or(seeded.then_some(0)) {
            Some(had) if had != want => Err(IngestError::Config {
                path: "source.kommuner".into(),
                reason: format!(
                    "the lake at {} was seeded with another kommune filter ({}); seed a new lake for {:?}",
                    lake.url(),
                    if had == 0 {
                        "none: the whole country".to_owned()
                    } else {
                        "other kommuner".to_owned()
                    },
                    pipeline.source.kommuner
                ),
            }),
            Some(_) => Ok(()),
            None => lake.mark(&ADDRESS, &[(MATRIKKEL_KOMMUNER, want)]).await,
        }
    }

    /// Seeds the addresses and the cadastral units, then records where the change log is
    /// followed from on every table (`address` last: its position says the seed is done).
    /// Returns whether it is seeded (not when `shutdown` came first).
    async fn seed(
        &self,
        lake: &mut Lake,
        pipeline: &Pipeline,
        shutdown: &CancellationToken,
        report: &mut Report,
    ) -> Result<bool, IngestError> {
        let earlier = lake.position(&ADDRESS, MATRIKKEL_SEED_AT).await?;
        // A lake an earlier version seeded: addresses, a position, no seed time. Its addresses
        // came from a file taken before their versions began.
        let earlier_file =
            if earlier.is_none() && lake.position(&ADDRESS, MATRIKKEL_CHANGES).await?.is_some() {
                lake.earliest(&schemas::property::ADDRESS_HISTORY, "valid_from")
                    .await?
            } else {
                None
            };
        let began = match earlier.and_then(|s| DateTime::from_timestamp(s, 0)) {
            Some(t) => t,
            None => {
                let now = Utc::now();
                lake.mark(&ADDRESS, &[(MATRIKKEL_SEED_AT, now.timestamp())])
                    .await?;
                now
            }
        };
        let head = self.client.head().await?;
        let Some(FileRead { taken }) = self.file.seed(lake, pipeline, shutdown, report).await?
        else {
            return Ok(false);
        };
        if !units::load(&self.client, lake, pipeline, shutdown, report).await? {
            return Ok(false);
        }
        let fallback = began - Duration::hours(26);
        let cutoff = match (taken, earlier) {
            (Some(t), None) => t.and_utc() - Duration::hours(3),
            (Some(t), Some(_)) => (t.and_utc() - Duration::hours(3)).min(fallback),
            (None, _) => fallback,
        }
        // A file is never taken after the seed began: a later time is a clock or zone error.
        .min(began)
        .min(earlier_file.unwrap_or(began) - Duration::hours(26));
        let start = self.client.position_before(cutoff, head).await?;
        info!(
            head,
            start,
            cutoff = %cutoff,
            "seeded: following the change log from before the address file was taken"
        );
        // Every table at the start (one an earlier version seeded is at 0: it moves on too), the
        // end of the seed with `address`, last.
        let feed = &MATRIKKEL.feeds[0];
        for table in feed.tables.iter().skip(1) {
            match lake.position(table, MATRIKKEL_CHANGES).await? {
                None => lake.mark(table, &[(MATRIKKEL_CHANGES, start)]).await?,
                Some(0) if start > 0 => lake.mark(table, &[(MATRIKKEL_CHANGES, start)]).await?,
                Some(_) => {}
            }
        }
        let done = Utc::now().timestamp_micros();
        let at = lake
            .position(&ADDRESS, MATRIKKEL_CHANGES)
            .await?
            .unwrap_or(0)
            .max(start);
        lake.mark(
            &ADDRESS,
            &[(MATRIKKEL_CHANGES, at), (MATRIKKEL_SEEDED_AT, done)],
        )
        .await?;
        Ok(true)
    }
}
