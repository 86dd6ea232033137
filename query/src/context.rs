//! A DataFusion session over the lake's tables.

use std::sync::Arc;

use datafusion::catalog::TableProvider;
use datafusion::prelude::SessionContext;
use deltalake::DeltaTable;
use schemas::tables::{ALL_TABLES, Table};
use url::Url;

use crate::QueryError;

/// The lake's base URL from `file:///x`, `s3://b/p` or a plain path.
pub fn lake_url(location: &str) -> Result<Url, QueryError> {
    let err = |reason: String| QueryError::Lake {
        location: location.to_owned(),
        reason,
    };
    let mut url = if location.contains("://") {
        Url::parse(location).map_err(|e| err(e.to_string()))?
    } else {
        let path = std::path::absolute(location).map_err(|e| err(e.to_string()))?;
        if !path.is_dir() {
            return Err(err(
                "no such directory: run `regsync run` (or `regsync demo`) first".into(),
            ));
        }
        Url::from_directory_path(&path).map_err(|()| err("not an absolute path".into()))?
    };
    if !url.path().ends_with('/') {
        url.set_path(&format!("{}/", url.path()));
    }
    Ok(url)
}

/// Where a table is in the lake.
fn table_url(lake: &Url, table: &Table) -> Url {
    lake.join(&format!("{}/", table.name))
        .expect("a table name is a valid path segment")
}

/// Opens one table.
pub async fn open_table(lake: &Url, table: &'static Table) -> Result<DeltaTable, QueryError> {
    let url = table_url(lake, table);
    deltalake::open_table(url.clone())
        .await
        .map_err(|e| QueryError::Table {
            table: table.name,
            url: url.to_string(),
            source: Box::new(e),
        })
}

/// A session with every lake table registered under its name.
pub async fn session(location: &str) -> Result<SessionContext, QueryError> {
    session_of(location, ALL_TABLES.as_slice()).await
}

/// A session with the given tables registered (those the lake has), and the views they allow.
/// Opening a table replays its Delta log, which is most of a short query's time: a question
/// that reads one table opens that one. The tables are opened side by side.
pub async fn session_of(
    location: &str,
    tables: &[&'static Table],
) -> Result<SessionContext, QueryError> {
    open(location, tables, true).await
}

/// How a session reads the lake's tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reader {
    /// A table on local disk from its Delta log read directly, in a few milliseconds, unless
    /// the log holds what only `deltalake` reads (deletion vectors, column mapping, ...); any
    /// other with `deltalake`. What every session does.
    Direct,
    /// Every table with `deltalake`.
    Deltalake,
}

/// A session with the given tables registered, read by `reader`, and the views they allow.
pub async fn session_read_by(
    location: &str,
    tables: &[&'static Table],
    reader: Reader,
) -> Result<SessionContext, QueryError> {
    open_by(location, tables, true, reader).await
}

/// Whether the session reads `table` from its Delta log directly ([`Reader::Direct`]).
pub async fn reads_directly(ctx: &SessionContext, table: &str) -> bool {
    let Ok(provider) = ctx.table_provider(table).await else {
        return false;
    };
    let provider: &dyn std::any::Any = provider.as_ref();
    provider.is::<crate::quick::QuickTable>()
}

/// A session with the given tables registered (those the lake has) and no views: for a
/// question that names its tables, as a citizen list does (creating the views takes a few
/// milliseconds of a whole `regsync cohort` run).
pub async fn tables_of(
    location: &str,
    tables: &[&'static Table],
) -> Result<SessionContext, QueryError> {
    open(location, tables, false).await
}

async fn open(
    location: &str,
    tables: &[&'static Table],
    with_views: bool,
) -> Result<SessionContext, QueryError> {
    open_by(location, tables, with_views, Reader::Direct).await
}

async fn open_by(
    location: &str,
    tables: &[&'static Table],
    with_views: bool,
    reader: Reader,
) -> Result<SessionContext, QueryError> {
    let started = std::time::Instant::now();
    let lake = lake_url(location)?;
    let ctx = SessionContext::new();
    let opening: Vec<_> = tables
        .iter()
        .map(|table| {
            let lake = lake.clone();
            let table: &'static Table = table;
            tokio::spawn(async move { provider(&lake, table, reader).await })
        })
        .collect();
    let mut registered = 0;
    for (table, opened) in tables.iter().zip(opening) {
        let opened = opened.await.map_err(|e| QueryError::Lake {
            location: location.to_owned(),
            reason: format!("opening {}: {e}", table.name),
        })?;
        let provider: Arc<dyn TableProvider> = match opened {
            Ok(Opened::Quick(quick)) => Arc::new(quick),
            Ok(Opened::Delta(delta)) => {
                let err = |e: deltalake::DeltaTableError| QueryError::Table {
                    table: table.name,
                    url: lake.to_string(),
                    source: Box::new(e),
                };
                delta.update_datafusion_session(&ctx.state()).map_err(err)?;
                delta.table_provider().await.map_err(|e| err(e.into()))?
            }
            // A table of a register this lake does not follow, or one written before the
            // table existed.
            Err(QueryError::Table { source, .. }) if is_missing(&source) => continue,
            Err(e) => return Err(e),
        };
        ctx.register_table(table.name, provider)?;
        registered += 1;
    }
    if registered == 0 {
        return Err(QueryError::NoLake {
            location: location.to_owned(),
        });
    }
    let opened_ms = started.elapsed().as_millis() as u64;
    let views = if with_views {
        crate::views::register(&ctx).await?
    } else {
        Vec::new()
    };
    tracing::debug!(
        tables = registered,
        views = views.len(),
        opened_ms,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "session ready"
    );
    Ok(ctx)
}

/// A table opened: read from its Delta log directly ([`crate::quick`]), or by `deltalake`.
enum Opened {
    Quick(crate::quick::QuickTable),
    Delta(DeltaTable),
}

/// Opens a table: on local disk from its Delta log read directly, unless the log holds what
/// only `deltalake` reads; otherwise (and on other storage) with `deltalake`.
async fn provider(lake: &Url, table: &'static Table, reader: Reader) -> Result<Opened, QueryError> {
    if lake.scheme() == "file" && reader == Reader::Direct {
        let url = table_url(lake, table);
        let read = tokio::task::spawn_blocking(move || crate::quick::open(&url)).await;
        match read {
            Ok(Ok(quick)) => return Ok(Opened::Quick(quick)),
            Ok(Err(reason)) => {
                tracing::debug!(table = table.name, %reason, "table read through deltalake")
            }
            Err(e) => {
                tracing::debug!(table = table.name, error = %e, "table read through deltalake")
            }
        }
    }
    open_table(lake, table).await.map(Opened::Delta)
}

/// Whether Delta's error says there is no table at the location (as opposed to one it could
/// not read).
fn is_missing(e: &deltalake::DeltaTableError) -> bool {
    matches!(
        e,
        deltalake::DeltaTableError::NotATable(_)
            | deltalake::DeltaTableError::InvalidTableLocation(_)
    )
}
