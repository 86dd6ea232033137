//! The crate's one error type.

use std::path::PathBuf;
use std::time::Duration;

pub use transform::ErrorKind;

/// The exit code of a worker that found another writer on its lake (see
/// [`IngestError::LakeHeld`]): distinct, so a supervisor can be told not to restart on it
/// (systemd: `RestartPreventExitStatus=3`).
pub const EXIT_LAKE_HELD: u8 = 3;

/// The pause before attempt `failures + 1` of work that keeps failing (a lake write, the Kafka
/// publisher): doubling from 2 s, at most a minute.
pub fn pause_after(failures: u32) -> Duration {
    Duration::from_secs(1u64 << failures.min(6)).min(Duration::from_secs(60))
}

/// What went wrong in a worker.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The pipeline file could not be read or is invalid.
    #[error("pipeline file {path}: {reason}")]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong, naming the key.
        reason: String,
    },
    /// A request to the register failed (after retries, for transient failures).
    #[error("{source_name}: {method} {url}: {reason}")]
    Request {
        /// The register (`freg`).
        source_name: &'static str,
        /// HTTP method.
        method: &'static str,
        /// The URL, without credentials.
        url: String,
        /// HTTP status, if one came.
        status: Option<u16>,
        /// What happened.
        reason: String,
    },
    /// The register's answer could not be read as a whole (not a single record's fault).
    #[error("{source_name}: {url}: unreadable response: {reason}")]
    Response {
        /// The register.
        source_name: &'static str,
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// The feed cannot be continued from the lake's position.
    #[error("{source_name}: feed position {sequence}: {reason}")]
    Feed {
        /// The register.
        source_name: &'static str,
        /// The position asked for.
        sequence: i64,
        /// Why.
        reason: String,
    },
    /// The register no longer has the feed from the lake's position (older than its retention):
    /// the lake must be seeded again.
    #[error(
        "{source_name}: feed position {sequence}: the register no longer has this part of the feed (events are deleted after 36 months): {reason}"
    )]
    Expired {
        /// The register.
        source_name: &'static str,
        /// The position asked for.
        sequence: i64,
        /// The register's words, and what happens now.
        reason: String,
    },
    /// Getting a Maskinporten token failed.
    #[error("maskinporten token from {token_url}: {reason}")]
    Token {
        /// The token endpoint.
        token_url: String,
        /// Why (never the key or the token).
        reason: String,
        /// `Retryable` when the endpoint may answer later (no connection, 429, 5xx, an
        /// unreadable answer); `Fatal` when it refused the grant or the key is unusable.
        kind: ErrorKind,
        /// The endpoint's `Retry-After`, if it sent one.
        retry_after: Option<Duration>,
    },
    /// A lake table could not be opened, read or committed.
    #[error("lake table {table} at {url}: {source}")]
    Lake {
        /// Table name.
        table: &'static str,
        /// Table URL.
        url: String,
        /// Delta's error.
        source: Box<deltalake::DeltaTableError>,
    },
    /// Another worker is writing this lake: it holds the lake's lease, or it committed to a
    /// table between this worker's read and its commit. Not retried: two writers would only
    /// keep failing each other.
    #[error(
        "lake {url}: another `regsync run` holds this lake: {reason}{}; stop it, or point this one at another lake",
        theirs.map(|p| format!("; table {table} is at position {p}")).unwrap_or_default()
    )]
    LakeHeld {
        /// Table name.
        table: &'static str,
        /// Table URL.
        url: String,
        /// The source (application transaction id) whose position the commit recorded.
        app: String,
        /// The position this worker's commit would have recorded.
        ours: i64,
        /// The table's position after the other writer's commit, when it could be read.
        theirs: Option<i64>,
        /// Delta's words.
        reason: String,
    },
    /// The Kafka broker or a topic failed.
    #[error("kafka {brokers}: {reason}")]
    Kafka {
        /// Bootstrap brokers.
        brokers: String,
        /// What failed.
        reason: String,
    },
    /// A lake query for the Kafka sink failed.
    #[error("reading the lake for the Kafka sink: {0}")]
    LakeRead(String),
    /// Rows could not be encoded (a bug).
    #[error(transparent)]
    Transform(#[from] transform::TransformError),
}

impl IngestError {
    /// How the worker should treat this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Request {
                status: Some(s), ..
            } if *s == 429 || *s >= 500 => ErrorKind::Retryable,
            Self::Request { status: None, .. } | Self::Response { .. } => ErrorKind::Retryable,
            Self::Token { kind, .. } => *kind,
            Self::Lake { source, .. } if crate::lake::is_transient(source) => ErrorKind::Retryable,
            Self::Transform(e) => e.kind(),
            _ => ErrorKind::Fatal,
        }
    }

    /// Whether this is [`IngestError::LakeHeld`]: the process should exit with
    /// [`EXIT_LAKE_HELD`] and a supervisor should not restart it.
    pub fn lake_held(&self) -> bool {
        matches!(self, Self::LakeHeld { .. })
    }

    /// A short label of what failed, for metrics: `http_503`, `connection`, `unreadable`,
    /// `token`, `lake`, `kafka`, ...
    pub fn cause(&self) -> String {
        match self {
            Self::Request {
                status: Some(s), ..
            } => format!("http_{s}"),
            Self::Request { status: None, .. } => "connection".into(),
            Self::Response { .. } => "unreadable".into(),
            Self::Token { .. } => "token".into(),
            Self::Lake { .. } | Self::LakeHeld { .. } | Self::LakeRead(_) => "lake".into(),
            Self::Kafka { .. } => "kafka".into(),
            Self::Feed { .. } | Self::Expired { .. } => "feed".into(),
            Self::Config { .. } => "config".into(),
            Self::Transform(_) => "transform".into(),
        }
    }

    /// The table, when this says there is no Delta table at its location.
    pub fn missing_table(&self) -> Option<&'static str> {
        match self {
            Self::Lake { table, source, .. }
                if matches!(
                    **source,
                    deltalake::DeltaTableError::NotATable(_)
                        | deltalake::DeltaTableError::InvalidTableLocation(_)
                ) =>
            {
                Some(table)
            }
            _ => None,
        }
    }

    /// How long the failed service asked to be left alone (`Retry-After`), if it said.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Token { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}
