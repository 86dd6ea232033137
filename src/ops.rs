//! `regsync status` and `regsync maintain`: what an operator looks at and runs.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use chrono::Utc;
use ingest::maintain::{MaintainOptions, Maintained, TableStats};

/// Human-readable bytes.
fn size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Prints each table's position, rows, files, size and last commit, and, with a pipeline file,
/// the register's head and the lake's lag behind it.
pub async fn status(location: &str, pipeline: Option<&Path>, out: &mut impl Write) -> Result<()> {
    // The same check as the query side: a missing local lake is named, not created.
    let url = query::context::lake_url(location)?;
    let tables = ingest::maintain::lake_stats(&url)
        .await
        .map_err(|e| no_lake(location, e))?;
    writeln!(out, "lake {url}")?;
    writeln!(
        out,
        "{:<24} {:>8} {:>10} {:>7} {:>10}  {:<20}  positions",
        "table", "version", "rows", "files", "size", "last commit (UTC)"
    )?;
    for t in &tables {
        writeln!(
            out,
            "{:<24} {:>8} {:>10} {:>7} {:>10}  {:<20}  {}",
            t.table,
            t.version,
            t.rows,
            t.files,
            size(t.bytes),
            t.last_commit
                .map(|c| c.format("%Y-%m-%d %H:%M:%S").to_string())
                .unwrap_or_else(|| "-".into()),
            positions(t)
        )?;
    }
    let last_commit = tables.iter().filter_map(|t| t.last_commit).max();
    let age = last_commit
        .map(|c| format!("{} s ago", (Utc::now() - c).num_seconds().max(0)))
        .unwrap_or_else(|| "never".into());
    let config = pipeline.map(ingest::Pipeline::load).transpose()?;
    for register in schemas::register::all() {
        for feed in &register.feeds {
            // The feed's position: the lowest of its tables' (none: the lake does not follow it).
            let Some(position) = feed
                .tables
                .iter()
                .map(|f| {
                    tables.iter().find(|t| t.table == f.name).map(|t| {
                        t.positions
                            .iter()
                            .find(|(app, _)| *app == feed.position)
                            .map_or(0, |(_, v)| *v)
                    })
                })
                .collect::<Option<Vec<i64>>>()
                .and_then(|p| p.into_iter().min())
            else {
                continue;
            };
            let head = match &config {
                Some(c) if c.source.register == register.name && register.name == "freg" => {
                    Some(ingest::client::FregClient::new(&c.source)?.head().await?)
                }
                _ => None,
            };
            match head {
                Some(head) => writeln!(
                    out,
                    "register {} {}: head {head}, lake at {position}, lag {} sequence numbers; last commit {age}",
                    register.name,
                    feed.name,
                    (head - position).max(0)
                )?,
                None => writeln!(
                    out,
                    "register {} {}: lake at {position}; last commit {age}{}",
                    register.name,
                    feed.name,
                    if register.name == "freg" {
                        " (give --pipeline FILE for the register's head and the lag)"
                    } else {
                        ""
                    }
                )?,
            }
        }
    }
    Ok(())
}

fn positions(t: &TableStats) -> String {
    t.positions
        .iter()
        .map(|(app, v)| format!("{app}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A lake error at a location with no lake says so in one line.
fn no_lake(location: &str, e: ingest::IngestError) -> anyhow::Error {
    if e.missing_table().is_some() {
        return anyhow::anyhow!("no lake at {location} (none of regsync's tables is there)");
    }
    e.into()
}

/// Compacts, checkpoints and vacuums every table, printing what changed.
pub async fn maintain(
    location: &str,
    options: &MaintainOptions,
    out: &mut impl Write,
) -> Result<()> {
    // The same check as the query side: a missing local lake is named, not created.
    let url = query::context::lake_url(location)?;
    // A short retention beside a running worker could delete files it has written and is
    // about to commit.
    if options.vacuum_retention < std::time::Duration::from_secs(3600)
        && let Some(holder) = ingest::lease::holder(&url).await?
    {
        anyhow::bail!(
            "a worker is writing {location} ({holder}): a retention under 1h could remove files it is about to commit; stop it first or keep the retention"
        );
    }
    let tables = ingest::maintain::maintain(&url, options)
        .await
        .map_err(|e| no_lake(location, e))
        .context("maintaining the lake")?;
    writeln!(
        out,
        "{:<15} {:>13} {:>21} {:>10} {:>9}",
        "table", "files", "size", "compacted", "vacuumed"
    )?;
    for Maintained {
        before,
        after,
        files_removed,
        files_vacuumed,
        ..
    } in &tables
    {
        writeln!(
            out,
            "{:<15} {:>5} -> {:<5} {:>9} -> {:<9} {:>10} {:>9}",
            before.table,
            before.files,
            after.files,
            size(before.bytes),
            size(after.bytes),
            files_removed,
            files_vacuumed
        )?;
    }
    Ok(())
}
