//! The property register (Matrikkelen) behind [`Source`]: its addresses, seeded from the
//! address file (`matrikkelenAdresse.csv`, an http(s) URL or a local path), read as it arrives
//! on a blocking thread and committed in chunks. A seed that stopped goes on from the file
//! again, leaving the addresses each table holds. Following the register's change log
//! (`findEndringer`) is not built yet: after the seed the worker keeps the addresses as seeded
//! and says so.

use std::collections::HashSet;
use std::io::Read;
use std::time::Instant;

use arrow::array::RecordBatch;
use chrono::Utc;
use futures::future::BoxFuture;
use schemas::cursor::MATRIKKEL_CHANGES;
use schemas::property::{ADDRESS, ADDRESS_HISTORY};
use schemas::register::{MATRIKKEL, Register};
use schemas::tables::DEAD_LETTER;
use schemas::topics::Topic;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use transform::TransformError;
use transform::matrikkel::rows::FilePlan;
use transform::matrikkel::{Address, Columns, read_address};
use transform::messages::Message;

use crate::IngestError;
use crate::apply::commit;
use crate::config::Pipeline;
use crate::lake::Lake;
use crate::register::{Connected, Source};
use crate::worker::{Report, RunOptions};

const SOURCE: &str = "matrikkel";

/// Lines parsed per hand-over from the reading thread.
const PARSE_CHUNK: usize = 2_000;

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
        _rows: &RecordBatch,
        _include_confidential: bool,
    ) -> Result<Vec<Message>, TransformError> {
        Err(TransformError::NotWritten {
            register: "matrikkel",
            table: topic.name,
        })
    }

    fn connect(&self, pipeline: &Pipeline) -> Result<Box<dyn Connected>, IngestError> {
        let file = pipeline
            .source
            .address_file
            .clone()
            .ok_or_else(|| IngestError::Config {
                path: "source.address_file".into(),
                reason: "the property register is seeded from its address file: give its URL or a local .csv path".into(),
            })?;
        if file.to_lowercase().ends_with(".zip") {
            return Err(IngestError::Config {
                path: "source.address_file".into(),
                reason: format!(
                    "{file}: this version reads the .csv, not the .zip: unpack it first"
                ),
            });
        }
        // The register's client settings (timeouts, agent); the file's URL is absolute.
        let http = crate::http::Http::new(SOURCE, &pipeline.source, "")?;
        Ok(Box::new(AddressFile {
            http: http.client().clone(),
            file,
            idle: pipeline.source.request_timeout,
        }))
    }
}

/// The address file to seed from.
struct AddressFile {
    http: reqwest::Client,
    file: String,
    idle: std::time::Duration,
}

impl Connected for AddressFile {
    fn sync<'a>(
        &'a self,
        lake: &'a mut Lake,
        pipeline: &'a Pipeline,
        options: &'a RunOptions,
        shutdown: &'a CancellationToken,
        report: &'a mut Report,
    ) -> BoxFuture<'a, Result<(), IngestError>> {
        Box::pin(async move {
            if lake.position(&ADDRESS, MATRIKKEL_CHANGES).await?.is_none()
                && !self.seed(lake, pipeline, shutdown, report).await?
            {
                return Ok(());
            }
            if options.until_caught_up {
                return Ok(());
            }
            warn!(
                "the property register's change log is not followed by this version: the addresses stay as seeded"
            );
            shutdown.cancelled().await;
            Ok(())
        })
    }
}

/// A stable number for an address id, for compact sets.
fn id_key(id: &str) -> u64 {
    id.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// A chunk of lines: each line's number and what it read.
type Lines = Vec<(u64, Result<Address, TransformError>)>;

impl AddressFile {
    /// Opens the file for reading on a blocking thread.
    async fn open(&self) -> Result<Box<dyn Read + Send>, IngestError> {
        if self.file.starts_with("http://") || self.file.starts_with("https://") {
            let download =
                crate::stream::get(&self.http, SOURCE, &self.file, "text/csv", self.idle).await?;
            return Ok(Box::new(crate::stream::reader(download.body)));
        }
        let file = std::fs::File::open(&self.file).map_err(|e| IngestError::Config {
            path: "source.address_file".into(),
            reason: format!("{}: {e}", self.file),
        })?;
        Ok(Box::new(std::io::BufReader::new(file)))
    }

    /// Seeds `address` and `address_history` from the file. Returns whether it is seeded
    /// (not when `shutdown` came first).
    async fn seed(
        &self,
        lake: &mut Lake,
        pipeline: &Pipeline,
        shutdown: &CancellationToken,
        report: &mut Report,
    ) -> Result<bool, IngestError> {
        let started = Instant::now();
        let key = |id: &str| Some(id_key(id));
        let in_current = lake.column_keys(&ADDRESS, "address_id", key).await?;
        let in_history = lake
            .column_keys(&ADDRESS_HISTORY, "address_id", key)
            .await?;
        if !in_current.is_empty() {
            info!(
                addresses = in_current.len(),
                "going on with a seed that stopped: addresses the tables hold are left as they are"
            );
        }
        let reader = self.open().await?;
        let shown = crate::http::redact(&self.file);
        let (mut lines, thread) = read_lines(reader, shown);
        let mut thread = Some(thread);
        let per_commit = pipeline.worker.seed_batch_persons.max(1);
        let taken_at = Utc::now();
        let mut plan = FilePlan {
            taken_at,
            ..FilePlan::default()
        };
        let mut read = 0u64;
        let mut taken: HashSet<u64> = HashSet::new();
        let mut repeated = 0u64;
        loop {
            let next = tokio::select! {
                next = lines.recv() => next,
                () = shutdown.cancelled() => return Ok(false),
            };
            let last = next.is_none();
            if last {
                // The channel closes when the reading thread ends: the end of the file only if
                // the thread ended well.
                if let Some(t) = thread.take() {
                    t.await.map_err(|e| IngestError::Feed {
                        source_name: SOURCE,
                        sequence: 0,
                        reason: format!("reading the address file failed: {e}"),
                    })?;
                }
            }
            if let Some(chunk) = next {
                for (line, address) in chunk? {
                    read += 1;
                    // An id twice in the file is taken once (the first).
                    if let Ok(a) = &address
                        && !taken.insert(id_key(&a.address_id))
                    {
                        repeated += 1;
                        continue;
                    }
                    plan.take(line, address, |id| {
                        let k = id_key(id);
                        (in_current.contains(&k), in_history.contains(&k))
                    });
                }
            }
            if plan.lines() >= per_commit || (last && plan.lines() > 0) {
                let chunk = std::mem::replace(
                    &mut plan,
                    FilePlan {
                        taken_at,
                        ..FilePlan::default()
                    },
                );
                // History first: an address in current state always has its version.
                commit(
                    lake,
                    &chunk,
                    &[&ADDRESS_HISTORY, &ADDRESS, &DEAD_LETTER],
                    &[],
                    Utc::now(),
                )
                .await?;
                report.seeded += chunk.current.len() as u64;
                report.dead_letters += chunk.dead_letters.len() as u64;
                info!(
                    lines = read,
                    written = chunk.current.len(),
                    dead_letters = chunk.dead_letters.len(),
                    "address file chunk committed"
                );
            }
            if last {
                break;
            }
        }
        // Seeded: position 0 (no change applied yet), the current state last.
        for table in [&*ADDRESS_HISTORY, &*DEAD_LETTER, &*ADDRESS] {
            if lake.position(table, MATRIKKEL_CHANGES).await?.is_none() {
                lake.mark(table, &[(MATRIKKEL_CHANGES, 0)]).await?;
            }
        }
        if repeated > 0 {
            warn!(
                repeated,
                "addresses given twice in the file were taken once"
            );
        }
        info!(
            lines = read,
            seconds = started.elapsed().as_secs(),
            "seeded the addresses from the address file"
        );
        Ok(true)
    }
}

/// Reads the file's lines on a blocking thread, in chunks: a line that cannot be read is its
/// error; a file that is not an address file, or a body that breaks off, ends it with an error.
fn read_lines(
    reader: Box<dyn Read + Send>,
    shown: String,
) -> (
    mpsc::Receiver<Result<Lines, IngestError>>,
    tokio::task::JoinHandle<()>,
) {
    let (tx, rx) = mpsc::channel(1);
    let thread = tokio::task::spawn_blocking(move || {
        let unreadable = |reason: String| IngestError::Response {
            source_name: SOURCE,
            url: shown.clone(),
            reason,
        };
        let mut csv = csv::ReaderBuilder::new()
            .delimiter(b';')
            .flexible(true)
            .from_reader(reader);
        // A file that is not an address file does not become one by asking again: fatal.
        let not_addresses = |reason: String| IngestError::Feed {
            source_name: SOURCE,
            sequence: 0,
            reason: format!("{shown}: {reason}"),
        };
        let (columns, width) = match csv.headers() {
            Ok(header) => match Columns::from_header(header) {
                Ok(columns) => (columns, header.len()),
                Err(e) => {
                    let _ = tx.blocking_send(Err(not_addresses(e.to_string())));
                    return;
                }
            },
            Err(e) => {
                let _ = tx.blocking_send(Err(not_addresses(format!("the header: {e}"))));
                return;
            }
        };
        let mut chunk: Lines = Vec::with_capacity(PARSE_CHUNK);
        let mut record = csv::StringRecord::new();
        loop {
            let line = csv.position().line();
            match csv.read_record(&mut record) {
                Ok(false) => break,
                // A line with fewer fields than the header (a file cut off mid-line, a broken
                // line) is not an address to trust.
                Ok(true) if record.len() < width => chunk.push((
                    line,
                    Err(TransformError::Malformed {
                        what: "matrikkel address file",
                        reason: format!(
                            "{} fields where the header has {width}: a cut-off or broken line",
                            record.len()
                        ),
                    }),
                )),
                Ok(true) => chunk.push((line, read_address(&columns, &record))),
                // A line that is not UTF-8 is that line's error; any other is the file's.
                Err(e) if matches!(e.kind(), csv::ErrorKind::Utf8 { .. }) => {
                    chunk.push((
                        line,
                        Err(TransformError::Malformed {
                            what: "matrikkel address file",
                            reason: e.to_string(),
                        }),
                    ));
                }
                Err(e) => {
                    let _ = tx.blocking_send(Err(unreadable(format!("line {line}: {e}"))));
                    return;
                }
            }
            if chunk.len() == PARSE_CHUNK
                && tx
                    .blocking_send(Ok(std::mem::replace(
                        &mut chunk,
                        Vec::with_capacity(PARSE_CHUNK),
                    )))
                    .is_err()
            {
                return;
            }
        }
        if !chunk.is_empty() {
            let _ = tx.blocking_send(Ok(chunk));
        }
    });
    (rx, thread)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn lines_of(text: &'static str) -> Vec<Result<Lines, IngestError>> {
        let (mut rx, thread) = read_lines(Box::new(text.as_bytes()), "test.csv".into());
        let mut out = Vec::new();
        while let Some(chunk) = rx.recv().await {
            out.push(chunk);
        }
        thread.await.unwrap();
        out
    }

    #[tokio::test]
    async fn a_cut_off_line_is_an_error_and_a_file_without_addresses_is_fatal() {
        let header = "lokalId;kommunenummer;adressenavn;nummer;adresseId\n";
        let text: &'static str =
            Box::leak(format!("{header}a1;5035;Torget;1;101\na2;5035;Torget;1\n").into_boxed_str());
        let chunks = lines_of(text).await;
        let lines = chunks[0].as_ref().unwrap();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].1.as_ref().unwrap().address_id, "101");
        let cut = lines[1].1.as_ref().unwrap_err().to_string();
        assert!(cut.contains("4 fields where the header has 5"), "{cut}");
        assert_eq!((lines[0].0, lines[1].0), (2, 3), "line numbers of the file");
        let chunks = lines_of("organisasjonsnummer;navn\n910000012;X\n").await;
        let e = chunks[0].as_ref().err().unwrap();
        assert_eq!(e.kind(), transform::ErrorKind::Fatal, "{e}");
    }
}
