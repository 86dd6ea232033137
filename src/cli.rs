//! The `regsync` subcommands.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use chrono::NaiveDate;
use clap::{Parser, Subcommand, ValueEnum};
use tokio_util::sync::CancellationToken;

/// Keeps a copy of the Norwegian population register in sync, in a Delta lake.
#[derive(Debug, Parser)]
#[command(name = "regsync", version, about)]
pub struct Cli {
    /// Log line format on standard error.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "text",
        env = "REGSYNC_LOG_FORMAT"
    )]
    pub log_format: LogFormat,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Log line formats.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    /// One line of text per event; colour only on a terminal.
    Text,
    /// One JSON object per line, with the event's fields.
    Json,
}

/// Output formats of `regsync sql`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SqlFormat {
    /// Aligned text.
    Table,
    /// CSV with a header row.
    Csv,
    /// JSON lines.
    Json,
}

/// Runs one worker per pipeline until each stops; a worker that fails stops only itself.
/// With several pipelines, a worker that fails in a way that may pass (a register or store
/// down for longer than its retries) starts again after a pause, as a supervisor would
/// restart a process: the others are not held back. Returns the first failure.
async fn run_workers(
    configs: Vec<ingest::Pipeline>,
    options: ingest::RunOptions,
    shutdown: tokio_util::sync::CancellationToken,
) -> Result<()> {
    // Two workers of one register on one lake would take each other's lease.
    let mut seen = std::collections::HashSet::new();
    for c in &configs {
        let lake = options.lake.clone().unwrap_or_else(|| c.lake.url.clone());
        if !seen.insert((c.source.register.clone(), lake.clone())) {
            anyhow::bail!(
                "two pipelines follow register {} into the lake {lake}: one worker per register and lake",
                c.source.register
            );
        }
    }
    let restart = configs.len() > 1;
    let workers: Vec<_> = configs
        .into_iter()
        .map(|config| {
            let name = config.name.clone();
            let (options, shutdown) = (options.clone(), shutdown.clone());
            let worker = async move {
                let mut failures = 0u32;
                loop {
                    // A worker that fails cancels its own token, not the others'.
                    match ingest::run(config.clone(), options.clone(), shutdown.child_token()).await
                    {
                        Err(e)
                            if restart
                                && e.kind() == ingest::error::ErrorKind::Retryable
                                && !shutdown.is_cancelled() =>
                        {
                            failures += 1;
                            let pause = ingest::error::pause_after(failures)
                                .max(std::time::Duration::from_secs(5));
                            tracing::error!(
                                pipeline = %config.name,
                                error = %e,
                                restart_in_s = pause.as_secs(),
                                "pipeline stopped with an error that may pass; starting it again"
                            );
                            tokio::select! {
                                () = tokio::time::sleep(pause) => {}
                                () = shutdown.cancelled() => return Err(e),
                            }
                        }
                        other => return other,
                    }
                }
            };
            (name, tokio::spawn(worker))
        })
        .collect();
    let mut first: Option<anyhow::Error> = None;
    for (name, worker) in workers {
        let result = worker
            .await
            .map_err(|e| anyhow::anyhow!("pipeline {name}: the worker task failed: {e}"));
        match result.and_then(|r| r.map_err(anyhow::Error::from)) {
            Ok(report) => tracing::info!(
                pipeline = %name,
                seeded = report.seeded,
                events = report.events,
                dead_letters = report.dead_letters,
                position = report.position,
                published = report.published,
                "stopped"
            ),
            Err(e) => {
                tracing::error!(pipeline = %name, error = %e, "pipeline stopped with an error");
                first.get_or_insert(e);
            }
        }
    }
    first.map_or(Ok(()), Err)
}

/// Output formats of `regsync tail`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum TailFormat {
    /// `partition/offset key [headers] value`.
    Text,
    /// JSON lines.
    Json,
}

/// Output formats of `regsync cohort`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ListFormat {
    /// CSV with a header row.
    Csv,
    /// Excel workbook.
    Xlsx,
    /// Parquet.
    Parquet,
}

/// What `regsync simulate` answers a feed request older than `--retain-events`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ExpiredFeed {
    /// 406 with the register's error body.
    #[value(name = "406")]
    NotAcceptable,
    /// 200 with the page from the oldest entry kept, as if old entries were simply deleted.
    Gone,
}

/// Which arrays `regsync simulate`'s extract batches carry.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ExtractIds {
    /// `foedselsEllerDNummer` and `dokumentidentifikator`.
    Both,
    /// Only `foedselsEllerDNummer`.
    Ids,
    /// Only `dokumentidentifikator`.
    Documents,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve a local stand-in for the population register.
    Simulate {
        /// Address to listen on.
        #[arg(
            long,
            default_value = "127.0.0.1:8088",
            env = "REGSYNC_SIMULATE_LISTEN"
        )]
        listen: String,
        /// Persons in the synthetic population.
        #[arg(long, default_value_t = 100_000)]
        persons: u32,
        /// Units (enheter) of the business register, with 0.6 as many underenheter (default:
        /// one per 20 persons), at the population's addresses.
        #[arg(long)]
        units: Option<u32>,
        /// Seed of the population and the change stream.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Register changes per second.
        #[arg(long, default_value_t = 10.0)]
        events_per_sec: f64,
        /// Stop producing changes after this many feed entries.
        #[arg(long)]
        max_events: Option<u64>,
        /// Share of requests that fail (0 to 1), per kind: 429, 500/503, slow, cut-off bodies;
        /// 200 "under maintenance" bodies; feed pages with a repeated entry or one not yet
        /// visible; extract batches with ids only.
        #[arg(long, default_value_t = 0.0)]
        faults: f64,
        /// Keep only the newest N feed entries; older sequence numbers are expired.
        #[arg(
            long,
            value_name = "N",
            value_parser = clap::value_parser!(u64).range(1..),
            env = "REGSYNC_SIMULATE_RETAIN_EVENTS"
        )]
        retain_events: Option<u64>,
        /// What a feed request for an expired sequence number gets.
        #[arg(
            long,
            value_enum,
            default_value = "406",
            env = "REGSYNC_SIMULATE_EXPIRED_FEED"
        )]
        expired_feed: ExpiredFeed,
        /// Which arrays extract batches carry.
        #[arg(
            long,
            value_enum,
            default_value = "both",
            env = "REGSYNC_SIMULATE_EXTRACT_IDS"
        )]
        extract_ids: ExtractIds,
    },
    /// Run pipelines: seed an empty lake, then follow each register's feeds. Several pipeline
    /// files run side by side in one process, one worker per register; one that fails does not
    /// stop the others (the exit code is the first failure's).
    Run {
        /// The pipeline files (TOML), e.g. pipelines/freg.toml pipelines/brreg.toml.
        #[arg(required = true, num_args = 1..)]
        pipeline: Vec<PathBuf>,
        /// Lake URL or path (overrides the pipeline's).
        #[arg(long, env = "REGSYNC_LAKE")]
        lake: Option<String>,
        /// Exit once the feed head is reached and committed.
        #[arg(long)]
        until_caught_up: bool,
        /// Kafka brokers (HOST:PORT[,HOST:PORT]); without them (and without `[kafka]` in the
        /// pipeline file) the pipeline runs lake-only.
        #[arg(long, env = "REGSYNC_KAFKA_BROKERS")]
        kafka: Option<String>,
        /// Serve `/metrics` (Prometheus) and `/healthz` on this address, e.g. 127.0.0.1:9464.
        #[arg(long, env = "REGSYNC_METRICS_LISTEN")]
        metrics_listen: Option<String>,
        /// `/healthz` answers 200 only when the lake is at most this many sequence numbers
        /// behind the register's head.
        #[arg(long, default_value_t = 10_000)]
        healthy_lag: i64,
    },
    /// Print a Kafka topic's messages with their headers.
    Tail {
        /// The topic (with its prefix), e.g. freg.event.v1.
        topic: String,
        /// Kafka brokers.
        #[arg(long, env = "REGSYNC_KAFKA_BROKERS", default_value = "127.0.0.1:9092")]
        kafka: String,
        /// Start at the beginning of the topic (default: only new messages).
        #[arg(long)]
        from_beginning: bool,
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        format: TailFormat,
        /// Exit once the end of every partition is reached.
        #[arg(long)]
        exit_at_end: bool,
    },
    /// Run SQL over the lake's tables.
    Sql {
        /// Lake URL or path.
        #[arg(long, env = "REGSYNC_LAKE", default_value = "./demo-lake")]
        lake: String,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: SqlFormat,
        /// The query.
        query: String,
    },
    /// A citizen list: residents of a kommune born in a date range.
    Cohort {
        /// Lake URL or path.
        #[arg(long, env = "REGSYNC_LAKE", default_value = "./demo-lake")]
        lake: String,
        /// Kommunenummer of residence (e.g. 5035 for Stjørdal).
        #[arg(long)]
        municipality: String,
        /// Born on or after (YYYY-MM-DD).
        #[arg(long)]
        born_from: NaiveDate,
        /// Born on or before (YYYY-MM-DD).
        #[arg(long)]
        born_to: NaiveDate,
        /// Person status, e.g. bosatt.
        #[arg(long)]
        status: Option<String>,
        /// Who lived there on this date (from history).
        #[arg(long)]
        as_of: Option<NaiveDate>,
        /// Output format.
        #[arg(long, value_enum, default_value = "csv")]
        format: ListFormat,
        /// Output file (standard output when absent).
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// Each lake table's position, rows, files, size and last commit; with `--pipeline`, the
    /// register's head and the lake's lag behind it.
    Status {
        /// Lake URL or path.
        #[arg(long, env = "REGSYNC_LAKE", default_value = "./demo-lake")]
        lake: String,
        /// A pipeline file: ask its register for the feed head.
        #[arg(long)]
        pipeline: Option<PathBuf>,
    },
    /// Compact (Z-order on the citizen lists' filter columns), checkpoint and VACUUM every
    /// table. Safe beside a running worker: a rewrite that loses a race to it is repeated.
    Maintain {
        /// Lake URL or path.
        #[arg(long, env = "REGSYNC_LAKE", default_value = "./demo-lake")]
        lake: String,
        /// Keep removed files this long, for time travel (e.g. 7d, 12h; 0s removes every file
        /// no longer in the current version).
        #[arg(long, default_value = "7d", value_parser = parse_duration)]
        retention: std::time::Duration,
        /// Bin-packing compaction only, no Z-order.
        #[arg(long)]
        no_zorder: bool,
        /// The file size compaction aims at, in MB.
        #[arg(long, default_value_t = 128)]
        target_file_mb: u64,
    },
    /// Measurements for `benches/national.sh`, each printing one line of JSON.
    Bench {
        /// What to measure.
        #[command(subcommand)]
        what: BenchCommand,
    },
    /// Start a simulated register, sync it into ./demo-lake, print a citizen list.
    Demo {
        /// Where the demo lake goes.
        #[arg(long, default_value = "./demo-lake")]
        lake: String,
        /// Persons in the synthetic population.
        #[arg(long, default_value_t = 60_000)]
        persons: u32,
    },
}

/// What `regsync bench` measures.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Write the simulator's person documents as JSON lines (the same input for every tool).
    Documents {
        /// Persons in the synthetic population.
        #[arg(long)]
        persons: u32,
        /// The population's seed.
        #[arg(long, default_value_t = 5)]
        seed: u64,
        /// The JSON-lines file to write.
        #[arg(long)]
        output: PathBuf,
    },
    /// regsync's document -> Parquet path over a JSON-lines file, on every core.
    Normalise {
        /// Person documents, one per line.
        #[arg(long)]
        input: PathBuf,
        /// The Parquet file to write.
        #[arg(long)]
        output: PathBuf,
    },
    /// A query's latency inside one process: the first run (the lake opened), then warm p50/p95.
    Query {
        /// The lake.
        #[arg(long)]
        lake: String,
        /// The query.
        #[arg(long)]
        sql: String,
        /// Warm runs.
        #[arg(long, default_value_t = 20)]
        runs: usize,
    },
}

/// The default log filter: `info`, and of the libraries only what needs an operator's attention
/// (Delta's own MERGE, used by no writer now, warned about its metrics on every commit).
const DEFAULT_LOG_FILTER: &str = "info,deltalake=warn,deltalake_core=warn,\
deltalake_core::operations::merge=error,buoyant_kernel=off,delta_kernel=off,datafusion=warn,\
rdkafka=warn,hyper=warn,reqwest=warn";

/// Logs to standard error, filtered by [`DEFAULT_LOG_FILTER`] and then `RUST_LOG`.
pub fn init_tracing(format: LogFormat) {
    use std::io::IsTerminal;
    // RUST_LOG adds to the defaults: `RUST_LOG=debug` raises regsync's level and keeps the
    // libraries' noise filtered unless it names them.
    let directives = match std::env::var("RUST_LOG") {
        Ok(extra) if !extra.trim().is_empty() => format!("{DEFAULT_LOG_FILTER},{extra}"),
        _ => DEFAULT_LOG_FILTER.to_owned(),
    };
    let filter = tracing_subscriber::EnvFilter::try_new(&directives)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG_FILTER));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => builder.json().with_current_span(false).init(),
    }
}

fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    ingest::config::parse_duration(s)
}

/// A token cancelled on SIGINT or SIGTERM.
pub fn shutdown_on_signals() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(s) => s,
                    Err(_) => {
                        let _ = ctrl_c.await;
                        t.cancel();
                        return;
                    }
                };
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
        tracing::info!("stop requested: finishing the current commit");
        t.cancel();
    });
    token
}

/// Where a citizen list goes: a file only its owner can read, or standard output.
fn output(path: Option<&PathBuf>) -> Result<Box<dyn Write + Send>> {
    Ok(match path {
        Some(p) => Box::new(
            query::cohort::create_private(p)
                .with_context(|| format!("creating {}", p.display()))?,
        ),
        None => Box::new(std::io::stdout()),
    })
}

/// Runs a parsed command.
pub async fn execute(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Simulate {
            listen,
            persons,
            units,
            seed,
            events_per_sec,
            max_events,
            faults,
            retain_events,
            expired_feed,
            extract_ids,
        } => {
            if !(0.0..=1.0).contains(&faults) {
                anyhow::bail!("--faults {faults}: a share between 0 and 1");
            }
            let shutdown = shutdown_on_signals();
            let config = simulator::Config {
                persons,
                units,
                seed,
                events_per_sec,
                max_events,
                faults,
                retain_events,
                expired_feed: match expired_feed {
                    ExpiredFeed::NotAcceptable => simulator::ExpiredFeed::NotAcceptable,
                    ExpiredFeed::Gone => simulator::ExpiredFeed::Gone,
                },
                extract_ids: match extract_ids {
                    ExtractIds::Both => simulator::ExtractIds::Both,
                    ExtractIds::Ids => simulator::ExtractIds::Ids,
                    ExtractIds::Documents => simulator::ExtractIds::Documents,
                },
            };
            let running = simulator::start(config, &listen, shutdown.clone()).await?;
            println!("{}{}", running.url(), simulator::BASE);
            shutdown.cancelled().await;
            Ok(())
        }
        Command::Run {
            pipeline,
            lake,
            until_caught_up,
            kafka,
            metrics_listen,
            healthy_lag,
        } => {
            // Every file is read before anything starts: a bad one stops the start.
            let configs = pipeline
                .iter()
                .map(|p| ingest::Pipeline::load(p))
                .collect::<Result<Vec<_>, _>>()?;
            let shutdown = shutdown_on_signals();
            if let Some(listen) = metrics_listen {
                crate::serve_metrics::serve(&listen, healthy_lag, shutdown.clone()).await?;
            }
            let options = ingest::RunOptions {
                lake,
                until_caught_up,
                kafka,
            };
            run_workers(configs, options, shutdown).await
        }
        Command::Sql {
            lake,
            format,
            query,
        } => {
            let ctx = query::context::session(&lake).await?;
            let batches = query::sql::query(&ctx, &query).await?;
            let format = match format {
                SqlFormat::Table => query::sql::Format::Table,
                SqlFormat::Csv => query::sql::Format::Csv,
                SqlFormat::Json => query::sql::Format::Json,
            };
            query::sql::write(&batches, format, &mut std::io::stdout().lock())?;
            Ok(())
        }
        Command::Cohort {
            lake,
            municipality,
            born_from,
            born_to,
            status,
            as_of,
            format,
            output: path,
        } => {
            // Current state only, or with history for --as-of: the other tables stay closed.
            let tables: &[&'static schemas::tables::Table] = if as_of.is_some() {
                &[&schemas::tables::PERSON, &schemas::tables::PERSON_HISTORY]
            } else {
                &[&schemas::tables::PERSON]
            };
            let ctx = query::context::tables_of(&lake, tables).await?;
            let cohort = query::Cohort {
                municipality,
                born_from,
                born_to,
                status,
                as_of,
            };
            let batches = cohort.run(&ctx).await?;
            let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
            let format = match format {
                ListFormat::Csv => query::CohortFormat::Csv,
                ListFormat::Xlsx => query::CohortFormat::Xlsx,
                ListFormat::Parquet => query::CohortFormat::Parquet,
            };
            if path.is_none() && format != query::CohortFormat::Csv {
                anyhow::bail!("--format xlsx and parquet need --output FILE");
            }
            let mut out = output(path.as_ref())?;
            query::cohort::write(&batches, format, &mut out)?;
            out.flush()?;
            tracing::info!(rows, "citizen list written");
            Ok(())
        }
        Command::Tail {
            topic,
            kafka,
            from_beginning,
            format,
            exit_at_end,
        } => {
            let config = ingest::config::KafkaConfig::plaintext(&kafka);
            let format = match format {
                TailFormat::Text => ingest::kafka::TailFormat::Text,
                TailFormat::Json => ingest::kafka::TailFormat::Json,
            };
            let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            let token = shutdown_on_signals();
            let flag = stop.clone();
            tokio::spawn(async move {
                token.cancelled().await;
                flag.store(true, std::sync::atomic::Ordering::Relaxed);
            });
            let printed = tokio::task::spawn_blocking(move || {
                ingest::kafka::tail(
                    &config,
                    &topic,
                    from_beginning,
                    format,
                    exit_at_end,
                    &stop,
                    &mut std::io::stdout().lock(),
                )
            })
            .await??;
            tracing::info!(printed, "tail stopped");
            Ok(())
        }
        Command::Status { lake, pipeline } => {
            crate::ops::status(&lake, pipeline.as_deref(), &mut std::io::stdout().lock()).await
        }
        Command::Maintain {
            lake,
            retention,
            no_zorder,
            target_file_mb,
        } => {
            let options = ingest::maintain::MaintainOptions {
                vacuum_retention: retention,
                zorder: !no_zorder,
                target_file_bytes: target_file_mb.saturating_mul(1024 * 1024),
                ..Default::default()
            };
            crate::ops::maintain(&lake, &options, &mut std::io::stdout().lock()).await
        }
        Command::Demo { lake, persons } => crate::demo::run(&lake, persons).await,
        Command::Bench { what } => match what {
            BenchCommand::Documents {
                persons,
                seed,
                output,
            } => crate::bench::documents(persons, seed, &output),
            BenchCommand::Normalise { input, output } => crate::bench::normalise(&input, &output),
            BenchCommand::Query { lake, sql, runs } => crate::bench::query(&lake, &sql, runs).await,
        },
    }
}
