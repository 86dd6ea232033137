//! Commits and their errors: each commit records the tables' positions and an identity of its
//! own, and a refused commit is told apart from one that succeeded.
//!
//! A Delta commit is the put of the log entry `N.json` if it does not exist. When the store
//! answers a put that did succeed with an error (an S3 5xx after the write, a lost response),
//! object_store retries it, finds the entry there and the commit looks like a race lost to a
//! commit recording the same positions: another writer. [`Commit::settle`] reads the entries
//! after the version the commit was based on and accepts one that carries the commit's own
//! identity, so such a commit is neither reported as another writer (exit 3) nor done twice.

use std::sync::atomic::{AtomicU64, Ordering};

use deltalake::kernel::Transaction;
use deltalake::kernel::transaction::CommitProperties;
use deltalake::{DeltaTable, DeltaTableError};
use futures::TryStreamExt as _;
use schemas::tables::{ALL_TABLES, Table};
use tracing::warn;
use url::Url;

use crate::IngestError;
use crate::lake::table_url;

/// The commitInfo key holding a commit's identity.
pub const COMMIT_ID_KEY: &str = "regsyncCommit";

/// One commit about to be made: its identity, the positions it records and the table version
/// it is based on.
#[derive(Debug)]
pub struct Commit {
    id: String,
    txns: Vec<(String, i64)>,
    table: &'static Table,
    url: Url,
    read_version: Option<u64>,
}

impl Commit {
    /// A commit to `table` (at `url`, as read at `read_version`) recording `txns`.
    pub fn new(
        table: &'static Table,
        url: &Url,
        read_version: Option<u64>,
        txns: &[(&str, i64)],
    ) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let id = format!(
            "{:016x}-{}-{}",
            rand::random::<u64>(),
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        Self {
            id,
            txns: txns.iter().map(|(a, v)| ((*a).to_owned(), *v)).collect(),
            table,
            url: url.clone(),
            read_version,
        }
    }

    /// The commit's identity.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Commit properties recording the positions and the identity.
    pub fn properties(&self) -> CommitProperties {
        CommitProperties::default()
            .with_application_transactions(
                self.txns
                    .iter()
                    .map(|(app, v)| Transaction::new(app, *v))
                    .collect(),
            )
            .with_metadata([(COMMIT_ID_KEY.to_owned(), self.id.clone().into())])
    }

    /// The error for a failed operation of this commit: a conflict with another writer's
    /// commit is [`IngestError::LakeHeld`], anything else [`IngestError::Lake`].
    pub fn error(&self, e: DeltaTableError) -> IngestError {
        let txns: Vec<(&str, i64)> = self.txns.iter().map(|(a, v)| (a.as_str(), *v)).collect();
        commit_error(self.table, &self.url, &txns)(e)
    }

    /// The outcome of the commit: the table after it, or its error. A failed commit is first
    /// looked for in the log: when an entry after the read version carries this commit's
    /// identity, the commit succeeded (the store reported an error for a write it had done: a
    /// conflict with itself, or a retried multipart completion that no longer finds its upload)
    /// and `table`, refreshed, is returned.
    pub async fn settle(
        &self,
        outcome: Result<DeltaTable, DeltaTableError>,
        table: &DeltaTable,
    ) -> Result<DeltaTable, IngestError> {
        let e = match outcome {
            Ok(updated) => return Ok(updated),
            Err(e) => e,
        };
        match self.find_own(table).await {
            Ok(Some(updated)) => {
                warn!(
                    table = self.table.name,
                    commit = %self.id,
                    version = updated.version(),
                    error = %e,
                    "the store reported a failed commit that had succeeded; it is this worker's own"
                );
                Ok(updated)
            }
            Ok(None) => Err(self.error(e)),
            Err(read) => {
                // Whether the commit is in the log is not known: never "another writer" (exit 3,
                // not restarted) on a guess; a plain lake error, retried or restarted.
                warn!(table = self.table.name, error = %read, "reading the log after a failed commit");
                Err(lake_error(self.table, &self.url)(e))
            }
        }
    }

    /// The table refreshed, if an entry after the read version carries this commit's identity.
    async fn find_own(&self, table: &DeltaTable) -> Result<Option<DeltaTable>, DeltaTableError> {
        let mut fresh = table.clone();
        fresh.update_incremental(None).await?;
        let since = match (fresh.version(), self.read_version) {
            (Some(latest), Some(read)) => latest.saturating_sub(read),
            (Some(latest), None) => latest + 1,
            (None, _) => 0,
        };
        if since == 0 {
            return Ok(None);
        }
        let infos: Vec<_> = fresh
            .history(Some(usize::try_from(since).unwrap_or(usize::MAX)))
            .try_collect()
            .await?;
        let ours = infos.iter().any(|info| {
            info.info.get(COMMIT_ID_KEY).and_then(|v| v.as_str()) == Some(self.id.as_str())
        });
        Ok(ours.then_some(fresh))
    }
}

/// The error of an operation on a lake table, naming it.
pub fn lake_error(
    table: &'static Table,
    url: &Url,
) -> impl Fn(DeltaTableError) -> IngestError + use<> {
    let url = url.to_string();
    move |e| IngestError::Lake {
        table: table.name,
        url: url.clone(),
        source: Box::new(e),
    }
}

/// The error of a commit recording `txns`: a conflict with another writer's commit is
/// [`IngestError::LakeHeld`], anything else [`IngestError::Lake`].
fn commit_error(
    table: &'static Table,
    url: &Url,
    txns: &[(&str, i64)],
) -> impl Fn(DeltaTableError) -> IngestError + use<> {
    let plain = lake_error(table, url);
    let url = url.to_string();
    let ours = txns.iter().map(|(_, v)| *v).max().unwrap_or(0);
    let app = txns
        .first()
        .map(|(a, _)| (*a).to_owned())
        .unwrap_or_default();
    move |e| {
        if is_conflict(&e) {
            IngestError::LakeHeld {
                table: table.name,
                url: url.clone(),
                app: app.clone(),
                ours,
                theirs: None,
                reason: format!(
                    "table {}: another writer committed first while this worker was recording position {ours} ({e})",
                    table.name
                ),
            }
        } else {
            plain(e)
        }
    }
}

/// Whether Delta refused a commit because another commit recorded the same application
/// transaction (a source's position) since this writer read the table: another worker.
fn is_conflict(e: &DeltaTableError) -> bool {
    use deltalake::kernel::transaction::{CommitConflictError, TransactionError};
    matches!(
        e,
        DeltaTableError::Transaction {
            source: TransactionError::CommitConflict(CommitConflictError::ConcurrentTransaction)
        }
    )
}

/// Whether a lake error may pass if the work is done again from the lake's positions: the
/// object store failed (not "not found" or a refusal), or a commit lost a race with a commit
/// that did not record this writer's positions (maintenance compacting the files a rewrite read).
pub fn is_transient(e: &DeltaTableError) -> bool {
    use deltalake::ObjectStoreError as Store;
    use deltalake::kernel::transaction::TransactionError;
    let store = |s: &Store| {
        !matches!(
            s,
            Store::NotFound { .. }
                | Store::PermissionDenied { .. }
                | Store::Unauthenticated { .. }
                | Store::NotSupported { .. }
                | Store::NotImplemented { .. }
                | Store::UnknownConfigurationKey { .. }
                | Store::InvalidPath { .. }
        )
    };
    match e {
        DeltaTableError::ObjectStore { source } => store(source),
        DeltaTableError::VersionAlreadyExists(_) | DeltaTableError::Io { .. } => true,
        DeltaTableError::Transaction { source } => match source {
            TransactionError::CommitConflict(_)
            | TransactionError::VersionAlreadyExists(_)
            | TransactionError::MaxCommitAttempts(_) => !is_conflict(e),
            TransactionError::ObjectStore { source } => store(source),
            _ => false,
        },
        _ => false,
    }
}

/// [`IngestError::LakeHeld`] with the table's position after the other writer's commit, read
/// afresh from the lake; any other error as it is.
pub async fn explain(error: IngestError) -> IngestError {
    let IngestError::LakeHeld {
        table,
        url,
        app,
        ours,
        theirs: None,
        reason,
    } = error
    else {
        return error;
    };
    let location = Url::parse(&url).ok().and_then(|lake| {
        ALL_TABLES
            .iter()
            .find(|t| t.name == table)
            .map(|t| table_url(&lake, t))
    });
    let theirs = match location {
        Some(u) => match deltalake::open_table(u).await {
            Ok(delta) => match delta.snapshot() {
                Ok(state) => state
                    .transaction_version(delta.log_store().as_ref(), &app)
                    .await
                    .ok()
                    .flatten(),
                Err(_) => None,
            },
            Err(_) => None,
        },
        None => None,
    };
    IngestError::LakeHeld {
        table,
        url,
        app,
        ours,
        theirs,
        reason,
    }
}
