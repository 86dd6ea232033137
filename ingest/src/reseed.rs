//! Seeding a lake again in place when the register no longer has the feed from its position
//! (HTTP 406: the entries are older than the register's retention).
//!
//! The complete extract at the register's head N is read batch by batch and taken as one change
//! at N (see `transform::freg::reseed`): persons whose state differs from the lake's get a new
//! version, the rest nothing, so the tables keep their history and a re-seed repeated after a
//! crash adds nothing twice. The expired range is recorded in `dead_letter`; then every feed
//! table stands at N (`person` last) and following goes on from N + 1.

use std::collections::HashSet;
use std::time::Instant;

use arrow::array::{Array, AsArray};
use schemas::cursor::{FREG_FEED, FREG_SEED_SEQUENCE};
use schemas::tables::{DEAD_LETTER, PERSON, PERSON_HISTORY};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use transform::encode;
use transform::freg::batch::{self, Planned};
use transform::freg::reseed::plan_reseed;
use transform::model::DeadLetter;

use crate::IngestError;
use crate::apply::commit;
use crate::client::FregClient;
use crate::config::Pipeline;
use crate::lake::Lake;
use crate::seed::{mark_feed_tables, read_extract};
use crate::worker::Report;

/// Columns of `person` that are a person's state (not when or by which entry it was written).
fn state_columns() -> Vec<String> {
    PERSON
        .schema
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .filter(|n| n != "last_sequence" && n != "updated_at")
        .collect()
}

/// The ids among `rows` (encoded `person` rows) whose state differs from the lake's, or that
/// the lake does not hold.
async fn changed_ids(
    lake: &Lake,
    rows: arrow::array::RecordBatch,
) -> Result<HashSet<String>, IngestError> {
    let err = |e: deltalake::datafusion::error::DataFusionError| IngestError::Lake {
        table: PERSON.name,
        url: lake.url().to_string(),
        source: Box::new(deltalake::DeltaTableError::Generic(format!(
            "comparing the extract with person: {e}"
        ))),
    };
    let ctx = lake.session(&[&PERSON]).await?;
    ctx.register_batch("extract", rows).map_err(err)?;
    // Rows of the extract that `person` does not hold as they are (EXCEPT compares NULLs as
    // equal): new persons and changed ones.
    let columns = state_columns().join(", ");
    let sql = format!(
        "SELECT person_id FROM (SELECT {columns} FROM extract EXCEPT \
         SELECT {columns} FROM person WHERE person_id IN (SELECT person_id FROM extract))"
    );
    let batches = ctx
        .sql(&sql)
        .await
        .map_err(err)?
        .collect()
        .await
        .map_err(err)?;
    let mut out = HashSet::new();
    for b in &batches {
        let ids = b.column(0).as_string::<i32>();
        for i in 0..ids.len() {
            if !ids.is_null(i) {
                out.insert(ids.value(i).to_owned());
            }
        }
    }
    Ok(out)
}

/// Seeds the lake again from the extract at the register's head; `expired` is the position the
/// register refused. Returns the new position, `None` when stopped before the end.
pub async fn reseed(
    client: &FregClient,
    lake: &mut Lake,
    pipeline: &Pipeline,
    shutdown: &CancellationToken,
    report: &mut Report,
    expired: i64,
) -> Result<Option<i64>, IngestError> {
    let sequence = client.head().await?;
    let position = expired - 1;
    if sequence <= position {
        return Err(IngestError::Feed {
            source_name: "freg",
            sequence: expired,
            reason: format!(
                "the register refuses the lake's position as too old, yet its newest sequence number {sequence} is not after the lake's {position}: is this the same register? Nothing is written"
            ),
        });
    }
    let job = client.extract(sequence).await?;
    warn!(
        expired,
        sequence,
        job = %job,
        "the register no longer has the feed from the lake's position: seeding again in place from the extract"
    );
    let per_commit = pipeline
        .worker
        .seed_batch_persons
        .div_ceil(crate::seed::BULK)
        .max(1) as u64;
    let started = Instant::now();
    let (mut next, mut changed_total, mut read_total) = (0u64, 0usize, 0usize);
    loop {
        if shutdown.is_cancelled() {
            return Ok(None);
        }
        let first = next;
        let (fetched, after, finished) = read_extract(
            client,
            &job,
            first,
            per_commit,
            pipeline.worker.fetch_concurrency,
        )
        .await?;
        next = after;
        let lookups: Vec<_> = fetched.into_iter().flat_map(|(_, l)| l).collect();
        let now = chrono::Utc::now();
        let seeded = batch::plan_seed(
            &lookups,
            sequence,
            &format!("reseed extract={job} batches={first}..{next}"),
        );
        let rows = encode::persons(&seeded.persons, now)?;
        let mut changed = if rows.num_rows() == 0 {
            HashSet::new()
        } else {
            changed_ids(lake, rows).await?
        };
        // Every person whose address is withheld now gets the scrub of every version, changed
        // or not: a re-seed interrupted between the tables' commits must not leave an address
        // in `person_history` behind a `person` row that already looks done.
        changed.extend(
            seeded
                .persons
                .iter()
                .filter(|(p, _)| {
                    transform::freg::document::withholds_address(&p.address_protection)
                })
                .map(|(p, _)| p.person_id.clone()),
        );
        let planned = plan_reseed(
            &seeded.persons,
            &changed,
            sequence,
            now,
            seeded.dead_letters,
            seeded.withholds,
        );
        write(lake, &planned, position, now).await?;
        read_total += seeded.persons.len();
        changed_total += changed.len();
        report.dead_letters += planned.dead_letters.len() as u64;
        info!(
            batches = next,
            persons = read_total,
            changed = changed_total,
            persons_per_s = (read_total as f64 / started.elapsed().as_secs_f64().max(1e-3)) as u64,
            "re-seed batch committed"
        );
        if finished {
            break;
        }
    }
    let gap = DeadLetter {
        source: "freg.feed".into(),
        cursor: format!("sequence={expired}..={sequence}"),
        record_id: None,
        reason: format!(
            "feed entries {expired}..={sequence} expired before they were read (older than the register's retention): the lake was seeded again from the extract at {sequence}; {changed_total} of {read_total} persons had changed"
        ),
        replay: batch::replay(&[
            ("from_sequence", Some(&expired.to_string())),
            ("to_sequence", Some(&sequence.to_string())),
        ]),
    };
    let txns = [(FREG_FEED, sequence), (FREG_SEED_SEQUENCE, sequence)];
    let gap_rows = encode::dead_letters(&[gap], chrono::Utc::now())?;
    lake.append(&DEAD_LETTER, Some(gap_rows), &txns).await?;
    report.dead_letters += 1;
    // Every feed table stands at the new position, `person` last.
    mark_feed_tables(lake, sequence, false).await?;
    info!(
        sequence,
        persons = read_total,
        changed = changed_total,
        elapsed_s = started.elapsed().as_secs_f64(),
        "re-seed complete: following the feed from the next sequence number"
    );
    Ok(Some(sequence))
}

/// Writes a re-seed batch: changed persons' versions, then their state, then rejected records.
/// These commits record the lake's unchanged position (so that a commit racing another writer
/// fails as with every other commit): the position moves only when the whole extract is in.
/// History goes first: a crash between the two leaves a `person` row that still differs, so
/// the next re-seed does the person again.
async fn write(
    lake: &mut Lake,
    planned: &Planned,
    position: i64,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), IngestError> {
    let txns = [(FREG_FEED, position)];
    if !planned.persons.is_empty() || !planned.withholds.is_empty() {
        commit(lake, planned, &[&PERSON_HISTORY, &PERSON], &txns, now).await?;
    }
    if !planned.dead_letters.is_empty() {
        commit(lake, planned, &[&DEAD_LETTER], &txns, now).await?;
    }
    Ok(())
}
