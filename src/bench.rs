//! `regsync bench`: the measurements behind the README's Performance section, for
//! `benches/national.sh`. Each prints one line of JSON with its figures on standard output.
//!
//! - `documents`: the simulator's person documents as JSON lines (the register's shape), to
//!   compare regsync's document path with another tool over the very same input.
//! - `normalise`: regsync's document -> Parquet path over such a file: parse, normalise, encode
//!   as Arrow rows of `person`, write Parquet (zstd, as the lake does), on every core.
//! - `query`: a query's latency inside one process (the lake opened once, then the query again
//!   and again), p50 and p95: a citizen list's SQL, against another tool over the same files.

use std::io::{BufRead, Write};
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use chrono::Utc;

/// Writes the documents of a simulated population of `persons` as JSON lines.
pub fn documents(persons: u32, seed: u64, output: &Path) -> Result<()> {
    let started = Instant::now();
    let world = simulator::World::new(persons, seed);
    let file = std::fs::File::create(output).with_context(|| output.display().to_string())?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    let mut bytes = 0u64;
    for i in 0..persons {
        if let Some(p) = world.current(i) {
            let line = serde_json::to_vec(&p.document())?;
            bytes += line.len() as u64 + 1;
            out.write_all(&line)?;
            out.write_all(b"\n")?;
        }
    }
    out.flush()?;
    println!(
        "{}",
        serde_json::json!({
            "documents": persons,
            "bytes": bytes,
            "seconds": started.elapsed().as_secs_f64(),
        })
    );
    Ok(())
}

/// Lines per parse chunk: each worker normalises a chunk, then the chunk is written.
const CHUNK: usize = 8_192;

/// Chunks of lines as they are read.
type Chunks = std::sync::mpsc::Receiver<std::io::Result<Vec<Vec<u8>>>>;

/// Reads JSON lines as bytes in chunks of [`CHUNK`] on its own thread, two chunks ahead of the
/// parsing (the parser checks the text is UTF-8 as it reads it).
fn read_chunks(input: &Path) -> Result<(Chunks, std::thread::JoinHandle<()>)> {
    let file = std::fs::File::open(input).with_context(|| input.display().to_string())?;
    let mut reader = std::io::BufReader::with_capacity(1 << 20, file);
    let (tx, rx) = std::sync::mpsc::sync_channel(2);
    let reading = std::thread::spawn(move || {
        loop {
            let mut chunk: Vec<Vec<u8>> = Vec::with_capacity(CHUNK);
            while chunk.len() < CHUNK {
                let mut line = Vec::new();
                match reader.read_until(b'\n', &mut line) {
                    Ok(0) => break,
                    Ok(_) => chunk.push(line),
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                }
            }
            if chunk.is_empty() || tx.send(Ok(chunk)).is_err() {
                return;
            }
        }
    });
    Ok((rx, reading))
}

/// regsync's document -> Parquet path over a JSON-lines file.
pub fn normalise(input: &Path, output: &Path) -> Result<()> {
    use parquet::arrow::ArrowWriter;
    use parquet::basic::{Compression, ZstdLevel};
    use parquet::file::properties::WriterProperties;

    let started = Instant::now();
    let (chunks, reading) = read_chunks(input)?;
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .build();
    // Readable by its owner only, as citizen lists are: the input may be anyone's documents.
    let file =
        query::cohort::create_private(output).with_context(|| output.display().to_string())?;
    let mut writer =
        ArrowWriter::try_new(file, schemas::tables::PERSON.schema.clone(), Some(props))?;
    let now = Utc::now();
    let workers = std::thread::available_parallelism().map_or(2, usize::from);
    let (mut documents, mut rejected) = (0u64, 0u64);
    for chunk in chunks {
        let chunk = chunk.with_context(|| input.display().to_string())?;
        documents += chunk.len() as u64;
        let per = chunk.len().div_ceil(workers);
        let parts: Vec<Vec<(transform::Person, i64)>> = std::thread::scope(|s| {
            let handles: Vec<_> = chunk
                .chunks(per)
                .map(|part| {
                    s.spawn(move || {
                        part.iter()
                            .filter_map(|l| {
                                transform::freg::document::normalise_bytes(l, None).ok()
                            })
                            .map(|p| (p, 0))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_default())
                .collect()
        });
        let rows: Vec<(transform::Person, i64)> = parts.into_iter().flatten().collect();
        rejected += chunk.len() as u64 - rows.len() as u64;
        writer.write(&transform::encode::persons(&rows, now)?)?;
    }
    if reading.join().is_err() {
        anyhow::bail!("reading {} panicked", input.display());
    }
    writer.close()?;
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({
            "documents": documents,
            "rejected": rejected,
            "seconds": seconds,
            "per_second": documents as f64 / seconds,
        })
    );
    Ok(())
}

/// A query's latency inside one process: the lake opened and the query run once (cold), then
/// `runs` more (warm), p50 and p95.
pub async fn query(lake: &str, sql: &str, runs: usize) -> Result<()> {
    let started = Instant::now();
    let ctx = query::context::session(lake).await?;
    let first = ctx.sql(sql).await?.collect().await?;
    let cold = started.elapsed().as_secs_f64();
    let rows: usize = first.iter().map(|b| b.num_rows()).sum();
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        std::hint::black_box(ctx.sql(sql).await?.collect().await?);
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    let at = |q: f64| {
        times
            .get(((times.len().max(1) - 1) as f64 * q).round() as usize)
            .copied()
    };
    println!(
        "{}",
        serde_json::json!({
            "rows": rows,
            "cold_seconds": cold,
            "warm_p50_seconds": at(0.5),
            "warm_p95_seconds": at(0.95),
            "runs": runs,
        })
    );
    Ok(())
}
