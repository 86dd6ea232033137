//! What a running worker reports: counters and gauges per register, rendered in the Prometheus
//! text format, and the health answer (`/healthz`).
//!
//! Each register's worker gets its own [`RegisterMetrics`] from [`register`]; the HTTP side (in
//! the binary) only calls [`render`] and [`health`].

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

/// One register's counters and gauges.
#[derive(Debug, Default)]
pub struct RegisterMetrics {
    events_applied: AtomicU64,
    persons_seeded: AtomicU64,
    dead_letters: AtomicU64,
    position: AtomicI64,
    head: AtomicI64,
    /// Unix milliseconds when the worker last stood at the feed head (0: never).
    at_head_ms: AtomicI64,
    commits: AtomicU64,
    commit_micros: AtomicU64,
    retries: Mutex<BTreeMap<String, u64>>,
    kafka_position: AtomicI64,
    kafka_messages: AtomicU64,
    kafka_failures: AtomicU64,
    kafka_error: Mutex<Option<String>>,
}

static REGISTERS: LazyLock<Mutex<BTreeMap<String, Arc<RegisterMetrics>>>> =
    LazyLock::new(Default::default);

/// The metrics of a register (created on first use).
pub fn register(name: &str) -> Arc<RegisterMetrics> {
    REGISTERS
        .lock()
        .expect("metrics lock")
        .entry(name.to_owned())
        .or_default()
        .clone()
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl RegisterMetrics {
    /// A feed batch was committed in every table: `entries` positions up to `position`.
    pub fn applied(&self, entries: u64, dead_letters: u64, position: i64) {
        self.events_applied.fetch_add(entries, Relaxed);
        self.dead_letters.fetch_add(dead_letters, Relaxed);
        self.position.store(position, Relaxed);
        let head = self.head.fetch_max(position, Relaxed).max(position);
        if position >= head {
            self.at_head_ms.store(now_ms(), Relaxed);
        }
    }

    /// Persons written by the seed.
    pub fn seeded(&self, persons: u64, position: i64) {
        self.persons_seeded.fetch_add(persons, Relaxed);
        self.position.store(position, Relaxed);
        self.head.fetch_max(position, Relaxed);
    }

    /// The register's newest sequence number as last seen; the lake stands at the head when it
    /// has applied everything up to it.
    pub fn saw_head(&self, head: i64) {
        let head = self.head.fetch_max(head, Relaxed).max(head);
        if self.position.load(Relaxed) >= head {
            self.at_head_ms.store(now_ms(), Relaxed);
        }
    }

    /// One lake commit took `took`.
    pub fn commit(&self, took: Duration) {
        self.commits.fetch_add(1, Relaxed);
        self.commit_micros
            .fetch_add(u64::try_from(took.as_micros()).unwrap_or(u64::MAX), Relaxed);
    }

    /// A request or write is tried again, for `cause` (`http_503`, `connection`, `lake`, ...).
    pub fn retried(&self, cause: &str) {
        *self
            .retries
            .lock()
            .expect("metrics lock")
            .entry(cause.to_owned())
            .or_default() += 1;
    }

    /// The Kafka sink published up to `position`.
    pub fn published(&self, messages: u64, position: i64) {
        self.kafka_messages.fetch_add(messages, Relaxed);
        self.kafka_position.store(position, Relaxed);
        *self.kafka_error.lock().expect("metrics lock") = None;
    }

    /// The Kafka sink failed (it is retrying).
    pub fn publish_failed(&self, error: &str) {
        self.kafka_failures.fetch_add(1, Relaxed);
        *self.kafka_error.lock().expect("metrics lock") = Some(error.to_owned());
    }

    /// Sequence numbers between the register's head (as last seen) and the lake.
    pub fn lag(&self) -> i64 {
        (self.head.load(Relaxed) - self.position.load(Relaxed)).max(0)
    }

    /// Seconds since the worker last stood at the head (0 while it does; `None`: never yet).
    pub fn lag_seconds(&self) -> Option<f64> {
        let at = self.at_head_ms.load(Relaxed);
        if at == 0 {
            return None;
        }
        if self.lag() == 0 {
            return Some(0.0);
        }
        Some(((now_ms() - at).max(0) as f64) / 1000.0)
    }
}

/// The process's resident memory in bytes (Linux; 0 elsewhere).
fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

/// Every register's metrics in the Prometheus text format.
pub fn render() -> String {
    let registers = REGISTERS.lock().expect("metrics lock").clone();
    let mut out = String::new();
    let mut family = |name: &str, kind: &str, help: &str, rows: Vec<(String, String)>| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (labels, value) in rows {
            let _ = writeln!(out, "{name}{{{labels}}} {value}");
        }
    };
    let per = |f: &dyn Fn(&RegisterMetrics) -> String| -> Vec<(String, String)> {
        registers
            .iter()
            .map(|(r, m)| (format!("register=\"{r}\""), f(m)))
            .collect()
    };
    family(
        "regsync_events_applied_total",
        "counter",
        "Feed entries committed to every lake table.",
        per(&|m| m.events_applied.load(Relaxed).to_string()),
    );
    family(
        "regsync_persons_seeded_total",
        "counter",
        "Persons written by the bulk-extract seed.",
        per(&|m| m.persons_seeded.load(Relaxed).to_string()),
    );
    family(
        "regsync_dead_letters_total",
        "counter",
        "Records written to dead_letter.",
        per(&|m| m.dead_letters.load(Relaxed).to_string()),
    );
    family(
        "regsync_feed_position",
        "gauge",
        "The last feed sequence number committed in every table.",
        per(&|m| m.position.load(Relaxed).to_string()),
    );
    family(
        "regsync_feed_head",
        "gauge",
        "The register's newest sequence number, as last seen.",
        per(&|m| m.head.load(Relaxed).to_string()),
    );
    family(
        "regsync_feed_lag_sequences",
        "gauge",
        "Sequence numbers the lake is behind the register's head.",
        per(&|m| m.lag().to_string()),
    );
    family(
        "regsync_feed_lag_seconds",
        "gauge",
        "Seconds since the lake last stood at the register's head (0 while it does, NaN: not yet).",
        per(&|m| m.lag_seconds().map_or("NaN".into(), |s| format!("{s:.3}"))),
    );
    family(
        "regsync_commit_seconds_sum",
        "counter",
        "Time spent in lake commits.",
        per(&|m| format!("{:.6}", m.commit_micros.load(Relaxed) as f64 / 1e6)),
    );
    family(
        "regsync_commit_seconds_count",
        "counter",
        "Lake commits.",
        per(&|m| m.commits.load(Relaxed).to_string()),
    );
    let retries = registers
        .iter()
        .flat_map(|(r, m)| {
            m.retries
                .lock()
                .expect("metrics lock")
                .iter()
                .map(|(cause, n)| (format!("register=\"{r}\",cause=\"{cause}\""), n.to_string()))
                .collect::<Vec<_>>()
        })
        .collect();
    family(
        "regsync_retries_total",
        "counter",
        "Requests and writes tried again, by cause.",
        retries,
    );
    family(
        "regsync_kafka_position",
        "gauge",
        "The last feed sequence number published to Kafka.",
        per(&|m| m.kafka_position.load(Relaxed).to_string()),
    );
    family(
        "regsync_kafka_lag_sequences",
        "gauge",
        "Sequence numbers committed to the lake and not yet published.",
        per(&|m| {
            let k = m.kafka_position.load(Relaxed);
            if k <= 0 && m.kafka_messages.load(Relaxed) == 0 {
                "0".into()
            } else {
                (m.position.load(Relaxed) - k).max(0).to_string()
            }
        }),
    );
    family(
        "regsync_kafka_messages_total",
        "counter",
        "Messages produced to Kafka.",
        per(&|m| m.kafka_messages.load(Relaxed).to_string()),
    );
    family(
        "regsync_kafka_failures_total",
        "counter",
        "Failures of the Kafka publisher (each retried).",
        per(&|m| m.kafka_failures.load(Relaxed).to_string()),
    );
    family(
        "regsync_resident_memory_bytes",
        "gauge",
        "Resident memory of the process.",
        vec![(String::new(), rss_bytes().to_string())],
    );
    out.replace("{}", "")
}

/// Whether every register is caught up within `max_lag` sequence numbers and its publisher is
/// not failing: `Ok(summary)` or `Err(reasons)`.
pub fn health(max_lag: i64) -> Result<String, String> {
    let registers = REGISTERS.lock().expect("metrics lock").clone();
    if registers.is_empty() {
        return Err("no worker has started".into());
    }
    let mut problems = Vec::new();
    let mut fine = Vec::new();
    for (r, m) in &registers {
        let lag = m.lag();
        if m.at_head_ms.load(Relaxed) == 0 {
            problems.push(format!("{r}: not caught up yet (lag {lag})"));
        } else if lag > max_lag {
            problems.push(format!(
                "{r}: {lag} sequence numbers behind (allowed {max_lag})"
            ));
        } else {
            fine.push(format!("{r}: lag {lag}"));
        }
        if let Some(e) = m.kafka_error.lock().expect("metrics lock").as_ref() {
            problems.push(format!("{r}: kafka publisher failing: {e}"));
        }
    }
    if problems.is_empty() {
        Ok(fine.join("; "))
    } else {
        Err(problems.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_follows_the_lag_and_the_publisher() {
        let m = register("test-health");
        m.seeded(10, 100);
        m.saw_head(150);
        assert!(health(10).is_err(), "not at the head yet");
        m.applied(50, 0, 150);
        assert!(health(10).is_ok());
        m.saw_head(200);
        assert!(
            health(10)
                .unwrap_err()
                .contains("50 sequence numbers behind")
        );
        m.applied(50, 0, 200);
        m.publish_failed("broker down");
        assert!(health(10).unwrap_err().contains("broker down"));
        m.published(5, 200);
        assert!(health(10).is_ok());
        let text = render();
        assert!(text.contains("regsync_feed_position{register=\"test-health\"} 200"));
        assert!(text.contains("regsync_kafka_failures_total{register=\"test-health\"} 1"));
        assert!(text.contains("regsync_resident_memory_bytes "));
    }
}
