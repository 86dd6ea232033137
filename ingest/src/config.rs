//! Pipeline files: TOML with `${VAR}` and `${VAR:-default}` taken from the environment, read
//! into structs that deny unknown keys.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::IngestError;

/// A pipeline: one register source into the lake.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pipeline {
    /// Name, used in logs and cursor ids.
    pub name: String,
    /// The register.
    pub source: Source,
    /// Where the tables go.
    pub lake: LakeConfig,
    /// Batching and concurrency.
    #[serde(default)]
    pub worker: WorkerConfig,
    /// Kafka topics for downstream subscribers (absent: lake only).
    pub kafka: Option<KafkaConfig>,
    /// Table maintenance while the worker runs (compaction, checkpoints, VACUUM).
    #[serde(default)]
    pub maintenance: crate::maintain::MaintainOptions,
}

/// The Kafka sink.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaConfig {
    /// Bootstrap brokers, `host:port[,host:port]`; `--kafka` / `REGSYNC_KAFKA_BROKERS` override.
    pub brokers: String,
    /// Client id.
    #[serde(default = "default_client_id")]
    pub client_id: String,
    /// Prefix of every topic name (e.g. `kommune5035.`).
    #[serde(default)]
    pub topic_prefix: String,
    /// Create missing topics with `partitions` (else a missing topic stops the start).
    #[serde(default = "yes")]
    pub create_topics: bool,
    /// Partitions of created topics (default: the topic's own, see `schemas::topics`).
    pub partitions: Option<i32>,
    /// Replication factor of created topics.
    #[serde(default = "one")]
    pub replication_factor: i32,
    /// `plaintext`, `ssl`, `sasl_plaintext` or `sasl_ssl`.
    #[serde(default = "plaintext")]
    pub security_protocol: String,
    /// `SCRAM-SHA-256`, `SCRAM-SHA-512` or `PLAIN`.
    pub sasl_mechanism: Option<String>,
    /// SASL user name.
    pub sasl_username: Option<String>,
    /// The name of the environment variable holding the SASL password (never the password).
    pub sasl_password_env: Option<String>,
    /// CA certificate file for TLS.
    pub ssl_ca_location: Option<PathBuf>,
    /// Subscribers are cleared for confidential fields: person messages carry the address of
    /// unprotected persons, the municipality of fortrolig ones and the protection level, and
    /// protection changes keep their event type. Off (the default), messages carry no address,
    /// no municipality and no level, so nothing tells who is protected.
    #[serde(default)]
    pub include_confidential: bool,
    /// Wait between checks of the lake for new rows.
    #[serde(default = "default_kafka_poll", deserialize_with = "duration")]
    pub poll_interval: Duration,
    /// Feed sequence numbers per published slice, at most.
    #[serde(default = "default_slice")]
    pub slice_sequences: i64,
    /// A broker that acknowledges nothing for this long counts as failed: the publisher
    /// connects again and reads the topics' ends (the lake goes on meanwhile).
    #[serde(default = "default_stall", deserialize_with = "duration")]
    pub stall_timeout: Duration,
}

fn default_stall() -> Duration {
    Duration::from_secs(60)
}

impl std::fmt::Debug for KafkaConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaConfig")
            .field("brokers", &self.brokers)
            .field("client_id", &self.client_id)
            .field("topic_prefix", &self.topic_prefix)
            .field("security_protocol", &self.security_protocol)
            .field("sasl_username", &self.sasl_username)
            .finish_non_exhaustive()
    }
}

impl KafkaConfig {
    /// A plaintext sink to `brokers` with every other setting at its default.
    pub fn plaintext(brokers: &str) -> Self {
        Self {
            brokers: brokers.to_owned(),
            client_id: default_client_id(),
            topic_prefix: String::new(),
            create_topics: true,
            partitions: None,
            replication_factor: 1,
            security_protocol: plaintext(),
            sasl_mechanism: None,
            sasl_username: None,
            sasl_password_env: None,
            ssl_ca_location: None,
            include_confidential: false,
            poll_interval: default_kafka_poll(),
            slice_sequences: default_slice(),
            stall_timeout: default_stall(),
        }
    }
}

fn default_client_id() -> String {
    "regsync".into()
}
pub(crate) fn yes() -> bool {
    true
}
fn one() -> i32 {
    1
}
fn plaintext() -> String {
    "plaintext".into()
}
fn default_kafka_poll() -> Duration {
    Duration::from_secs(1)
}
fn default_slice() -> i64 {
    50_000
}

/// The register a pipeline follows.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    /// `freg` (the population register), `brreg` (the business register) or `matrikkel` (the
    /// property register's addresses).
    pub register: String,
    /// Scheme and host, e.g. `https://folkeregisteret.api.skatteetaten.no`.
    pub base_url: String,
    /// The population register's rights package path, e.g.
    /// `/folkeregisteret/offentlig-med-hjemmel/api` (required for `freg`).
    pub rights_package_path: Option<String>,
    /// The API's path under the host, for registers without rights packages (`brreg`:
    /// default `/enhetsregisteret/api`).
    pub api_path: Option<String>,
    /// The property register's address file (`matrikkelenAdresse.csv`): an http(s) URL or a
    /// local `.csv` or `.zip` path (required for `matrikkel`).
    pub address_file: Option<String>,
    /// The kommuner (four-digit kommunenumre) to keep, for registers that filter by kommune
    /// (`matrikkel`: the address file, the change log's `kommunefilter` and the cadastral
    /// units); empty: the whole country.
    #[serde(default)]
    pub kommuner: Vec<String>,
    /// Per-request timeout.
    #[serde(default = "default_timeout", deserialize_with = "duration")]
    pub request_timeout: Duration,
    /// Tries of one request before the worker stops with the error.
    #[serde(default = "default_tries")]
    pub max_tries: usize,
    /// Maskinporten, for the real register (absent: no token is sent).
    pub maskinporten: Option<Maskinporten>,
}

/// Maskinporten JWT-bearer grant settings.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Maskinporten {
    /// Token endpoint, e.g. `https://maskinporten.no/token`.
    pub token_url: String,
    /// Audience of the assertion (Maskinporten's issuer, e.g. `https://maskinporten.no/`).
    pub audience: String,
    /// The integration's client id.
    pub client_id: String,
    /// Scope: the rights package, e.g. `folkeregister:deling/offentligmedhjemmel`.
    pub scope: String,
    /// PEM file with the RSA private key that signs the assertion.
    pub key_file: PathBuf,
    /// Key id registered with Maskinporten (`kid`), if the key is registered by id.
    pub key_id: Option<String>,
}

impl std::fmt::Debug for Maskinporten {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Maskinporten")
            .field("token_url", &self.token_url)
            .field("client_id", &self.client_id)
            .field("scope", &self.scope)
            .field("key_file", &"<redacted>")
            .finish()
    }
}

/// The lake.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LakeConfig {
    /// `file:///path` or `s3://bucket/prefix`; `regsync run --lake` overrides it.
    pub url: String,
}

/// Batching and concurrency.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerConfig {
    /// Feed entries per lake commit, at most, while the writer keeps up with the feed.
    pub batch_events: usize,
    /// Feed entries per lake commit while the writer is behind the fetcher (catching up a
    /// backlog): the batches fetched meanwhile are written in one commit, taken whole until
    /// this many entries are reached, so that a commit that rewrites much of a table does so
    /// once for many batches. The fetcher runs ahead by as many entries, so it bounds the
    /// documents held in memory: about twice this many.
    /// (absent: 100 000, or `batch_events` if that is more)
    #[serde(default)]
    pub catch_up_events: Option<usize>,
    /// Persons per lake commit while seeding from the bulk extract.
    pub seed_batch_persons: usize,
    /// Bulk lookups in flight at once.
    pub fetch_concurrency: usize,
    /// Wait between polls once the feed head is reached.
    #[serde(deserialize_with = "duration")]
    pub poll_interval: Duration,
    /// How long a hole in the feed's sequence numbers is waited for (an entry the register has
    /// numbered but not yet shown) before it counts as missing.
    #[serde(default = "default_gap_timeout", deserialize_with = "duration")]
    pub gap_timeout: Duration,
    /// What a missing range does once `gap_timeout` has passed: `false` (the default) stops the
    /// worker with an error naming the range; `true` records the range in `dead_letter` and goes
    /// on (for a rights package that does not see every event).
    #[serde(default)]
    pub skip_gaps: bool,
    /// When the register no longer has the feed from the lake's position (older than its
    /// retention): `true` (the default) seeds again in place from the bulk extract, keeping the
    /// tables' history; `false` stops the worker saying so.
    #[serde(default = "yes")]
    pub reseed_on_expiry: bool,
}

/// `worker.catch_up_events` when it is not set.
const DEFAULT_CATCH_UP_EVENTS: usize = 100_000;

impl WorkerConfig {
    /// Feed entries per commit while the writer is behind: `catch_up_events`, at least one
    /// batch.
    pub fn catch_up_events(&self) -> usize {
        self.catch_up_events
            .unwrap_or(DEFAULT_CATCH_UP_EVENTS)
            .max(self.batch_events)
    }
}

fn default_gap_timeout() -> Duration {
    Duration::from_secs(60)
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            batch_events: 10_000,
            catch_up_events: None,
            seed_batch_persons: 50_000,
            fetch_concurrency: 4,
            poll_interval: Duration::from_secs(2),
            gap_timeout: default_gap_timeout(),
            skip_gaps: false,
            reseed_on_expiry: true,
        }
    }
}

fn default_timeout() -> Duration {
    Duration::from_secs(30)
}

fn default_tries() -> usize {
    12
}

/// The longest duration a setting may have: anything longer is a typo.
pub const MAX_DURATION: Duration = Duration::from_secs(30 * 24 * 3600);

/// Parses `250ms`, `5s`, `2m`, `1h`, `7d`, at most [`MAX_DURATION`] (30 days).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let too_long = || format!("{s:?} is longer than 30 days");
    let n: u64 = match n.parse() {
        Ok(n) => n,
        // Digits that do not fit in a u64 are a number, just far too large.
        Err(_) if !n.is_empty() => return Err(too_long()),
        Err(_) => return Err(format!("{s:?} is not a duration like \"5s\"")),
    };
    let duration = match unit {
        "ms" => Some(Duration::from_millis(n)),
        "s" => Some(Duration::from_secs(n)),
        "m" => n.checked_mul(60).map(Duration::from_secs),
        "h" => n.checked_mul(3600).map(Duration::from_secs),
        "d" => n.checked_mul(24 * 3600).map(Duration::from_secs),
        _ => return Err(format!("{s:?}: unit must be ms, s, m, h or d")),
    };
    duration.filter(|d| *d <= MAX_DURATION).ok_or_else(too_long)
}

pub(crate) fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    parse_duration(&s).map_err(serde::de::Error::custom)
}

/// Replaces `${VAR}` and `${VAR:-default}` with values from `env`, outside comment lines.
pub fn substitute(text: &str, env: impl Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        if line.trim_start().starts_with('#') {
            out.push_str(line);
        } else {
            out.push_str(&substitute_line(line, &env)?);
        }
    }
    Ok(out)
}

fn substitute_line(text: &str, env: &impl Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("unclosed ${{ in {:?}", &rest[start..]))?;
        let expr = &after[..end];
        let (name, default) = match expr.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (expr, None),
        };
        match env(name)
            .filter(|v| !v.is_empty())
            .or(default.map(str::to_owned))
        {
            Some(v) => out.push_str(&v),
            None => {
                return Err(format!(
                    "environment variable {name} is not set and has no default"
                ));
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

impl Pipeline {
    /// Reads a pipeline file, substituting the process environment.
    pub fn load(path: &Path) -> Result<Self, IngestError> {
        let err = |reason: String| IngestError::Config {
            path: path.to_owned(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        Self::parse(&text, |k| std::env::var(k).ok()).map_err(err)
    }

    /// Parses pipeline text with the given environment.
    pub fn parse(text: &str, env: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let text = substitute(text, env)?;
        let pipeline: Self = toml::from_str(&text).map_err(|e| e.to_string().trim().to_owned())?;
        pipeline.validate()?;
        Ok(pipeline)
    }

    fn validate(&self) -> Result<(), String> {
        if crate::register::by_name(&self.source.register).is_none() {
            return Err(format!(
                "source.register: {:?} is not a register this version follows ({})",
                self.source.register,
                schemas::register::all().map(|r| r.name).join(", ")
            ));
        }
        if !self.source.base_url.starts_with("http://")
            && !self.source.base_url.starts_with("https://")
        {
            return Err(format!(
                "source.base_url: {:?} is not an http(s) URL",
                self.source.base_url
            ));
        }
        for (key, path) in [
            ("rights_package_path", &self.source.rights_package_path),
            ("api_path", &self.source.api_path),
        ] {
            if path.as_ref().is_some_and(|p| !p.starts_with('/')) {
                return Err(format!("source.{key}: must start with /"));
            }
        }
        if let Some(k) = self
            .source
            .kommuner
            .iter()
            .find(|k| k.len() != 4 || !k.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(format!(
                "source.kommuner: {k:?} is not a four-digit kommunenummer"
            ));
        }
        let w = &self.worker;
        if w.batch_events == 0 || w.seed_batch_persons == 0 || w.fetch_concurrency == 0 {
            return Err(
                "worker: batch_events, seed_batch_persons and fetch_concurrency must be above 0"
                    .into(),
            );
        }
        if let Some(c) = w.catch_up_events
            && c < w.batch_events
        {
            return Err(format!(
                "worker.catch_up_events ({c}) is below worker.batch_events ({}): a catch-up commit takes at least one batch",
                w.batch_events
            ));
        }
        if let Some(k) = &self.kafka {
            if k.brokers.trim().is_empty() {
                return Err("kafka.brokers: empty".into());
            }
            if !["plaintext", "ssl", "sasl_plaintext", "sasl_ssl"]
                .contains(&k.security_protocol.as_str())
            {
                return Err(format!(
                    "kafka.security_protocol: {:?} is not plaintext, ssl, sasl_plaintext or sasl_ssl",
                    k.security_protocol
                ));
            }
            if k.slice_sequences <= 0 {
                return Err("kafka.slice_sequences: must be above 0".into());
            }
        }
        if self.maintenance.vacuum_retention < Duration::from_secs(3600) {
            // The worker vacuums beside its own commits and its publisher's: a shorter
            // retention could remove a file written and not yet committed.
            return Err("maintenance.vacuum_retention: at least \"1h\"".into());
        }
        if self.source.max_tries == 0 {
            return Err("source.max_tries: must be above 0".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
name = "freg"
[source]
register = "freg"
base_url = "${REGSYNC_FREG_URL:-http://127.0.0.1:8088}"
rights_package_path = "/folkeregisteret/offentlig-med-hjemmel/api"
request_timeout = "10s"
[lake]
url = "${LAKE}"
[worker]
batch_events = 100
seed_batch_persons = 1000
fetch_concurrency = 2
poll_interval = "250ms"
"#;

    #[test]
    fn substitutes_and_parses() {
        let p = Pipeline::parse(FILE, |k| {
            (k == "LAKE").then(|| "file:///tmp/lake".to_owned())
        })
        .unwrap();
        assert_eq!(p.source.base_url, "http://127.0.0.1:8088");
        assert_eq!(p.lake.url, "file:///tmp/lake");
        assert_eq!(p.worker.poll_interval, Duration::from_millis(250));
    }

    #[test]
    fn missing_variable_is_named() {
        let err = Pipeline::parse(FILE, |_| None).unwrap_err();
        assert!(err.contains("LAKE"), "{err}");
    }

    #[test]
    fn unknown_key_is_named() {
        let bad = FILE.replace(
            "fetch_concurrency = 2",
            "fetch_concurrency = 2\nfetch_concurency = 3",
        );
        let err = Pipeline::parse(&bad, |_| Some("file:///x".into())).unwrap_err();
        assert!(err.contains("fetch_concurency"), "{err}");
    }

    #[test]
    fn a_catch_up_commit_below_one_batch_is_refused_and_the_default_is_above() {
        let lake = |k: &str| (k == "LAKE").then(|| "file:///tmp/lake".to_owned());
        let p = Pipeline::parse(FILE, lake).unwrap();
        assert_eq!(p.worker.catch_up_events(), DEFAULT_CATCH_UP_EVENTS);
        let bad = FILE.replace(
            "fetch_concurrency = 2",
            "fetch_concurrency = 2\ncatch_up_events = 50",
        );
        let err = Pipeline::parse(&bad, lake).unwrap_err();
        assert!(
            err.contains("catch_up_events") && err.contains("batch_events"),
            "{err}"
        );
    }

    #[test]
    fn bad_duration_is_named() {
        let bad = FILE.replace("\"250ms\"", "\"soon\"");
        let err = Pipeline::parse(&bad, |_| Some("file:///x".into())).unwrap_err();
        assert!(err.contains("soon"), "{err}");
    }

    #[test]
    fn overflowing_duration_is_refused() {
        for huge in [
            "99999999999999999h",
            "999999999999999999m",
            "99999999999999999999s",
        ] {
            let err = parse_duration(huge).unwrap_err();
            assert!(err.contains(huge), "{err}");
        }
        let bad = FILE.replace("\"250ms\"", "\"99999999999999999h\"");
        let err = Pipeline::parse(&bad, |_| Some("file:///x".into())).unwrap_err();
        assert!(err.contains("99999999999999999h"), "{err}");
    }

    #[test]
    fn duration_above_thirty_days_is_refused() {
        assert_eq!(parse_duration("720h"), Ok(MAX_DURATION));
        assert_eq!(parse_duration("43200m"), Ok(MAX_DURATION));
        for long in ["721h", "2592001s", "2592000001ms"] {
            let err = parse_duration(long).unwrap_err();
            assert!(err.contains(long) && err.contains("30 days"), "{err}");
        }
    }
}
