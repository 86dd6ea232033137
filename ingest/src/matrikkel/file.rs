//! The property register's address file (`matrikkelenAdresse.csv`: an http(s) URL, a local
//! `.csv`, or a `.zip` holding it, as Kartverket publishes it), read as it arrives on a
//! blocking thread and committed in chunks into `address` and `address_history`. A seed that
//! stopped goes on from the file again, leaving the addresses each table holds. With
//! `source.kommuner`, lines of other kommuner are passed over.

use std::collections::HashSet;
use std::io::Read;
use std::path::PathBuf;
use std::time::Instant;

use chrono::{NaiveDateTime, Utc};
use schemas::property::{ADDRESS, ADDRESS_HISTORY};
use schemas::tables::DEAD_LETTER;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use transform::TransformError;
use transform::matrikkel::rows::FilePlan;
use transform::matrikkel::{Address, Columns, read_address};

use crate::IngestError;
use crate::apply::commit;
use crate::config::Pipeline;
use crate::lake::Lake;
use crate::worker::Report;

use super::client::SOURCE;

/// Lines parsed per hand-over from the reading thread.
const PARSE_CHUNK: usize = 2_000;

/// The address file to seed from.
pub struct AddressFile {
    pub(super) http: reqwest::Client,
    pub(super) file: String,
    pub(super) idle: std::time::Duration,
    pub(super) kommuner: Vec<String>,
}

/// What reading the file gives besides its addresses.
#[derive(Debug, Clone, Copy)]
pub struct FileRead {
    /// The earliest `datauttaksdato` of its lines (local time), if it has them.
    pub taken: Option<NaiveDateTime>,
}

/// Where the reading thread reads from.
enum Input {
    /// A plain `.csv`, as it arrives.
    Plain(Box<dyn Read + Send>),
    /// A `.zip` on disk holding it (removed after reading when `temporary`).
    Zip { path: PathBuf, temporary: bool },
}

/// A stable number for an address id, for compact sets.
pub(super) fn id_key(id: &str) -> u64 {
    id.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// A chunk of lines: each line's number and what it read.
type Lines = Vec<(u64, Result<Address, TransformError>)>;

impl AddressFile {
    /// Opens the file for reading on a blocking thread. A zipped file over http(s) is saved
    /// to a temporary file first (a zip's directory is at its end).
    async fn open(&self) -> Result<Input, IngestError> {
        let zipped = self
            .file
            .split('?')
            .next()
            .is_some_and(|f| f.to_lowercase().ends_with(".zip"));
        if self.file.starts_with("http://") || self.file.starts_with("https://") {
            let download =
                crate::stream::get(&self.http, SOURCE, &self.file, "*/*", self.idle).await?;
            if !zipped {
                return Ok(Input::Plain(Box::new(crate::stream::reader(download.body))));
            }
            let path = std::env::temp_dir().join(format!(
                "regsync-matrikkel-{}-{}.zip",
                std::process::id(),
                Utc::now().timestamp_micros()
            ));
            let mut body = crate::stream::reader(download.body);
            let target = path.clone();
            let shown = crate::http::redact(&self.file);
            tokio::task::spawn_blocking(move || -> Result<(), IngestError> {
                let mut out =
                    std::fs::File::create(&target).map_err(|e| IngestError::Response {
                        source_name: SOURCE,
                        url: shown.clone(),
                        reason: format!("saving to {}: {e}", target.display()),
                    })?;
                std::io::copy(&mut body, &mut out).map_err(|e| IngestError::Response {
                    source_name: SOURCE,
                    url: shown,
                    reason: format!("downloading: {e}"),
                })?;
                Ok(())
            })
            .await
            .map_err(|e| IngestError::Feed {
                source_name: SOURCE,
                sequence: 0,
                reason: format!("saving the address file failed: {e}"),
            })??;
            return Ok(Input::Zip {
                path,
                temporary: true,
            });
        }
        let missing = |e: std::io::Error| IngestError::Config {
            path: "source.address_file".into(),
            reason: format!("{}: {e}", self.file),
        };
        if zipped {
            std::fs::metadata(&self.file).map_err(missing)?;
            return Ok(Input::Zip {
                path: PathBuf::from(&self.file),
                temporary: false,
            });
        }
        let file = std::fs::File::open(&self.file).map_err(missing)?;
        Ok(Input::Plain(Box::new(std::io::BufReader::new(file))))
    }

    /// Seeds `address` and `address_history` from the file (no position is recorded: the
    /// caller does, once every table is seeded). `None` when `shutdown` came first.
    pub async fn seed(
        &self,
        lake: &mut Lake,
        pipeline: &Pipeline,
        shutdown: &CancellationToken,
        report: &mut Report,
    ) -> Result<Option<FileRead>, IngestError> {
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
        let input = self.open().await?;
        let shown = crate::http::redact(&self.file);
        let (mut lines, thread) = read_lines(input, shown, self.kommuner.clone());
        let mut thread = Some(thread);
        let mut taken = None;
        let per_commit = pipeline.worker.seed_batch_persons.max(1);
        let taken_at = Utc::now();
        let mut plan = FilePlan {
            taken_at,
            ..FilePlan::default()
        };
        let mut read = 0u64;
        let mut once: HashSet<u64> = HashSet::new();
        let mut repeated = 0u64;
        loop {
            let next = tokio::select! {
                next = lines.recv() => next,
                () = shutdown.cancelled() => return Ok(None),
            };
            let last = next.is_none();
            if last {
                // The channel closes when the reading thread ends: the end of the file only if
                // the thread ended well.
                if let Some(t) = thread.take() {
                    taken = t.await.map_err(|e| IngestError::Feed {
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
                        && !once.insert(id_key(&a.address_id))
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
        Ok(Some(FileRead { taken }))
    }
}

/// Reads the file's lines on a blocking thread, in chunks: a line that cannot be read is its
/// error; a file that is not an address file, or a body that breaks off, ends it with an error.
/// Lines of kommuner not in `kommuner` (when it is not empty) are passed over. The thread
/// returns the earliest `datauttaksdato` it read.
fn read_lines(
    input: Input,
    shown: String,
    kommuner: Vec<String>,
) -> (
    mpsc::Receiver<Result<Lines, IngestError>>,
    tokio::task::JoinHandle<Option<NaiveDateTime>>,
) {
    let (tx, rx) = mpsc::channel(1);
    let thread = tokio::task::spawn_blocking(move || match input {
        Input::Plain(reader) => read_csv(reader, &shown, &kommuner, &tx),
        Input::Zip { path, temporary } => {
            let taken = read_zip(&path, &shown, &kommuner, &tx);
            if temporary {
                let _ = std::fs::remove_file(&path);
            }
            taken
        }
    });
    (rx, thread)
}

type Sender = mpsc::Sender<Result<Lines, IngestError>>;

/// The `.csv` inside a zip: `matrikkelenAdresse.csv` if it is there, else its only `.csv`.
fn read_zip(
    path: &std::path::Path,
    shown: &str,
    kommuner: &[String],
    tx: &Sender,
) -> Option<NaiveDateTime> {
    let fail = |reason: String| {
        let _ = tx.blocking_send(Err(IngestError::Feed {
            source_name: SOURCE,
            sequence: 0,
            reason: format!("{shown}: {reason}"),
        }));
    };
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) => {
            fail(e.to_string());
            return None;
        }
    };
    let mut archive = match zip::ZipArchive::new(std::io::BufReader::new(file)) {
        Ok(a) => a,
        Err(e) => {
            fail(format!("not a zip file: {e}"));
            return None;
        }
    };
    let names: Vec<String> = archive
        .file_names()
        .filter_map(|n| n.ok().map(|n| n.into_owned()))
        .collect();
    let csvs: Vec<&String> = names
        .iter()
        .filter(|n| n.to_lowercase().ends_with(".csv"))
        .collect();
    let chosen = csvs
        .iter()
        .find(|n| n.to_lowercase().ends_with("matrikkelenadresse.csv"))
        .or(if csvs.len() == 1 { csvs.first() } else { None });
    let Some(name) = chosen else {
        fail(format!(
            "no matrikkelenAdresse.csv in the zip (it holds {names:?})"
        ));
        return None;
    };
    match archive.by_name(name) {
        Ok(entry) => read_csv(entry, shown, kommuner, tx),
        Err(e) => {
            fail(format!("{name}: {e}"));
            None
        }
    }
}

/// Reads the lines of an address file.
fn read_csv(
    reader: impl Read,
    shown: &str,
    kommuner: &[String],
    tx: &Sender,
) -> Option<NaiveDateTime> {
    let unreadable = |reason: String| IngestError::Response {
        source_name: SOURCE,
        url: shown.to_owned(),
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
                return None;
            }
        },
        Err(e) => {
            let _ = tx.blocking_send(Err(not_addresses(format!("the header: {e}"))));
            return None;
        }
    };
    if !columns.has_address_id() {
        warn!(
            file = shown,
            "the address file has no adresseId column (the 2019 column set): its addresses are keyed by lokalId, which the change log does not name, so changes to them are not matched"
        );
    }
    let mut taken: Option<NaiveDateTime> = None;
    let mut chunk: Lines = Vec::with_capacity(PARSE_CHUNK);
    let mut record = csv::StringRecord::new();
    loop {
        let line = csv.position().line();
        match csv.read_record(&mut record) {
            Ok(false) => break,
            Ok(true)
                if !kommuner.is_empty()
                    && record.len() >= width
                    && columns.kommune(&record).is_some_and(|k| {
                        !kommuner
                            .iter()
                            .any(|x| x.trim_start_matches('0') == k.trim_start_matches('0'))
                    }) =>
            {
                continue;
            }
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
            Ok(true) => {
                if let Some(t) = columns.taken(&record) {
                    taken = Some(taken.map_or(t, |x| x.min(t)));
                }
                chunk.push((line, read_address(&columns, &record)));
            }
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
                return None;
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
            return None;
        }
    }
    if !chunk.is_empty() {
        let _ = tx.blocking_send(Ok(chunk));
    }
    taken
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn lines_of(text: &'static str) -> Vec<Result<Lines, IngestError>> {
        let (mut rx, thread) = read_lines(
            Input::Plain(Box::new(text.as_bytes())),
            "test.csv".into(),
            Vec::new(),
        );
        let mut out = Vec::new();
        while let Some(chunk) = rx.recv().await {
            out.push(chunk);
        }
        thread.await.unwrap();
        out
    }

    /// Reads every chunk of a zip file at `path`.
    async fn lines_of_zip(
        path: PathBuf,
    ) -> (Vec<Result<Lines, IngestError>>, Option<NaiveDateTime>) {
        let (mut rx, thread) = read_lines(
            Input::Zip {
                path,
                temporary: false,
            },
            "test.zip".into(),
            vec!["5035".into()],
        );
        let mut out = Vec::new();
        while let Some(chunk) = rx.recv().await {
            out.push(chunk);
        }
        (out, thread.await.unwrap())
    }

    fn zip_of(path: &std::path::Path, entries: &[(&str, &str)]) {
        let mut zip = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
        for (name, text) in entries {
            zip.start_file(*name, zip::write::SimpleFileOptions::default())
                .unwrap();
            std::io::Write::write_all(&mut zip, text.as_bytes()).unwrap();
        }
        zip.finish().unwrap();
    }

    #[tokio::test]
    async fn a_zipped_file_reads_its_address_csv_keeping_only_the_kommuner_asked_for() {
        let dir = tempfile::tempdir().unwrap();
        let text = "lokalId;kommunenummer;adressenavn;nummer;datauttaksdato;adresseId\n\
                    a1;5035;Torget;1;02.03.2026 04:00:00;101\n\
                    a2;0301;Storgata;2;01.03.2026 04:00:00;102\n\
                    a3;5035;Torget;3;01.03.2026 05:00:00;103\n";
        let path = dir
            .path()
            .join("Basisdata_0000_Norge_4258_MatrikkelenAdresse_CSV.zip");
        zip_of(
            &path,
            &[("readme.txt", "x"), ("matrikkelenAdresse.csv", text)],
        );
        let (chunks, taken) = lines_of_zip(path).await;
        let ids: Vec<String> = chunks
            .into_iter()
            .flat_map(|c| c.unwrap())
            .map(|(_, a)| a.unwrap().address_id)
            .collect();
        assert_eq!(ids, vec!["101", "103"], "only 5035's lines");
        assert_eq!(
            taken.map(|t| t.to_string()).as_deref(),
            Some("2026-03-01 05:00:00"),
            "the earliest datauttaksdato of the lines kept"
        );
        let other = dir.path().join("other.zip");
        zip_of(&other, &[("a.txt", "x")]);
        let (chunks, _) = lines_of_zip(other).await;
        let e = chunks[0].as_ref().err().unwrap().to_string();
        assert!(e.contains("no matrikkelenAdresse.csv"), "{e}");
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
