//! Helpers for the end-to-end tests: the real `regsync` binary, a simulator process on a free
//! port, a pipeline file pointing at it, and the lake read back through `regsync sql`.

#![allow(dead_code)]

/// A line on the test process's standard error that the test harness does not capture: what
/// a person running the suite must see (a broker being installed, a random seed to replay).
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

pub mod broker;
pub mod brreg;
pub mod kafka;
pub mod matrikkel;
pub mod s3;

use std::collections::HashMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_regsync");

/// A plain HTTP/1.1 GET over a TCP socket: status and body (`None`: no answer).
pub fn http_get(host: &str, path: &str) -> Option<(u16, String)> {
    let (status, body) = http_get_bytes(host, path)?;
    Some((status, String::from_utf8(body).ok()?))
}

/// [`http_get`] with the body as bytes.
pub fn http_get_bytes(host: &str, path: &str) -> Option<(u16, Vec<u8>)> {
    http_request("GET", host, path)
}

/// A plain HTTP/1.1 request without a body: status and body (`None`: no answer).
pub fn http_request(method: &str, host: &str, path: &str) -> Option<(u16, Vec<u8>)> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(host).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .ok()?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).ok()?;
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    let body = &raw[split + 4..];
    let body = if head.contains("transfer-encoding: chunked") {
        dechunk(body)
    } else {
        body.to_vec()
    };
    Some((status, body))
}

thread_local! {
    /// Environment every `regsync` process this test (its thread) starts gets, e.g. S3 settings.
    static EXTRA_ENV: std::cell::RefCell<Vec<(String, String)>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Gives every `regsync` process this test starts from now on these environment variables.
pub fn set_regsync_env(vars: &[(&str, &str)]) {
    EXTRA_ENV.with_borrow_mut(|env| {
        *env = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
    });
}

/// A `regsync` command with this test's extra environment.
pub fn regsync_cmd() -> Command {
    let mut command = Command::new(BIN);
    EXTRA_ENV.with_borrow(|env| {
        for (k, v) in env {
            command.env(k, v);
        }
    });
    command
}

/// A free loopback port.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// A simulator process, killed on drop.
pub struct Simulator {
    pub child: Child,
    pub url: String,
}

impl Drop for Simulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Simulator {
    /// Starts `regsync simulate` with extra arguments and waits until it answers.
    pub fn start(args: &[&str]) -> Self {
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let child = Command::new(BIN)
            .args(["simulate", "--listen", &listen])
            .args(args)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn simulator");
        let sim = Self {
            child,
            url: format!("http://{listen}"),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if sim
                .get_json("/simulator/v1/kohort?kommunenummer=0301&fra=2000-01-01&til=2000-01-02")
                .is_some()
            {
                return sim;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("simulator did not start on {listen}");
    }

    /// A GET of the simulator's bytes; `None` unless it answers 200.
    pub fn get_bytes(&self, path: &str) -> Option<Vec<u8>> {
        match http_get_bytes(self.url.trim_start_matches("http://"), path)? {
            (200, body) => Some(body),
            _ => None,
        }
    }

    /// A GET of the simulator; `None` unless it answers 200.
    fn get(&self, path: &str) -> Option<String> {
        match http_get(self.url.trim_start_matches("http://"), path)? {
            (200, body) => Some(body),
            _ => None,
        }
    }

    pub fn get_json(&self, path: &str) -> Option<serde_json::Value> {
        serde_json::from_str(&self.get(path)?).ok()
    }

    /// `n` register changes at once (`POST /simulator/v1/hendelser`): a backlog.
    pub fn add_backlog(&self, n: usize) {
        let path = format!("/simulator/v1/hendelser?antall={n}");
        let answer = http_request("POST", self.url.trim_start_matches("http://"), &path);
        assert!(
            matches!(answer, Some((200, _))),
            "the simulator did not take a backlog of {n}: {answer:?}"
        );
    }

    /// The feed head.
    pub fn head(&self) -> i64 {
        self.get_json("/folkeregisteret/offentlig-med-hjemmel/api/v1/hendelser/siste/sekvensnummer")
            .and_then(|v| v.as_i64())
            .expect("head")
    }

    /// Waits until the feed head has reached `at_least`.
    pub fn wait_for_head(&self, at_least: i64) {
        let deadline = Instant::now() + Duration::from_secs(120);
        while Instant::now() < deadline {
            let head = self
                .get_json(
                    "/folkeregisteret/offentlig-med-hjemmel/api/v1/hendelser/siste/sekvensnummer",
                )
                .and_then(|v| v.as_i64());
            if head.is_some_and(|h| h >= at_least) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("the simulator's head did not reach {at_least}");
    }

    /// Waits until the change stream has stopped: the head holds still over three samples a
    /// second apart (one still second can be a busy machine, not the end of the stream).
    pub fn wait_until_quiet(&self) -> i64 {
        let (mut last, mut still) = (-1, 0);
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            assert!(
                Instant::now() < deadline,
                "the simulator's feed did not come to rest"
            );
            // Faults may fail a request: retry.
            let Some(head) = self
                .get_json(
                    "/folkeregisteret/offentlig-med-hjemmel/api/v1/hendelser/siste/sekvensnummer",
                )
                .and_then(|v| v.as_i64())
            else {
                std::thread::sleep(Duration::from_millis(100));
                continue;
            };
            if head == last {
                still += 1;
                if still == 3 {
                    return head;
                }
            } else {
                (last, still) = (head, 0);
            }
            std::thread::sleep(Duration::from_millis(1000));
        }
    }

    /// Every person's brief current state from the simulator: id -> (status, kommune, family name).
    pub fn persons(&self) -> HashMap<String, (String, Option<String>, String)> {
        self.get("/simulator/v1/personer")
            .expect("persons")
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).expect("json line");
                (
                    v["id"].as_str().unwrap().to_owned(),
                    (
                        v["status"].as_str().unwrap().to_owned(),
                        v["kommune"].as_str().map(str::to_owned),
                        v["etternavn"].as_str().unwrap().to_owned(),
                    ),
                )
            })
            .collect()
    }

    /// The simulator's own citizen list.
    pub fn cohort(
        &self,
        kommune: &str,
        from: &str,
        to: &str,
        status: Option<&str>,
        as_of: Option<&str>,
    ) -> Vec<String> {
        let mut q = format!("/simulator/v1/kohort?kommunenummer={kommune}&fra={from}&til={to}");
        if let Some(s) = status {
            q.push_str(&format!("&status={s}"));
        }
        if let Some(d) = as_of {
            q.push_str(&format!("&dato={d}"));
        }
        let v = self.get_json(&q).expect("cohort");
        v["foedselsEllerDNummer"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_str().unwrap().to_owned())
            .collect()
    }
}

/// A pipeline file for a simulator in `dir`, with small batches so that tests commit often.
pub fn pipeline(dir: &Path, url: &str, batch_events: usize) -> PathBuf {
    pipeline_at(
        dir,
        url,
        batch_events,
        &dir.join("lake").display().to_string(),
    )
}

/// [`pipeline`] with the lake at `lake` (a path or an `s3://` URL).
pub fn pipeline_at(dir: &Path, url: &str, batch_events: usize, lake: &str) -> PathBuf {
    let text = format!(
        r#"name = "freg-test"
[source]
register = "freg"
base_url = "{url}"
rights_package_path = "/folkeregisteret/offentlig-med-hjemmel/api"
request_timeout = "10s"
max_tries = 30
[lake]
url = "{}"
[worker]
batch_events = {batch_events}
seed_batch_persons = 2000
fetch_concurrency = 3
poll_interval = "200ms"
gap_timeout = "3s"
"#,
        lake
    );
    let path = dir.join("pipeline.toml");
    std::fs::write(&path, text).expect("write pipeline");
    path
}

/// Runs `regsync` with arguments to completion.
pub fn regsync(args: &[&str]) -> Output {
    regsync_cmd()
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run regsync")
}

/// `regsync run --until-caught-up`, which must succeed.
pub fn run_until_caught_up(pipeline: &Path) {
    let out = regsync(&["run", pipeline.to_str().unwrap(), "--until-caught-up"]);
    assert!(
        out.status.success(),
        "regsync run failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Rows of a query over the lake, as JSON objects.
pub fn sql(lake: &Path, query: &str) -> Vec<serde_json::Value> {
    let out = regsync(&[
        "sql",
        "--lake",
        lake.to_str().unwrap(),
        "--format",
        "json",
        query,
    ]);
    assert!(
        out.status.success(),
        "regsync sql failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json row"))
        .collect()
}

/// The lake's `person` table as id -> (status, kommune, family name).
pub fn lake_persons(lake: &Path) -> HashMap<String, (String, Option<String>, String)> {
    sql(
        lake,
        "SELECT person_id, status, municipality_number, family_name FROM person",
    )
    .into_iter()
    .map(|r| {
        (
            r["person_id"].as_str().unwrap().to_owned(),
            (
                r["status"].as_str().unwrap_or_default().to_owned(),
                r["municipality_number"].as_str().map(str::to_owned),
                r["family_name"].as_str().unwrap_or_default().to_owned(),
            ),
        )
    })
    .collect()
}

/// The sequence number the lake was seeded at: every seeded version carries it, every later
/// version a higher one.
pub fn seed_sequence(lake: &Path) -> i64 {
    sql(lake, "SELECT min(sequence) AS s FROM person_history")[0]["s"]
        .as_i64()
        .expect("a seeded lake")
}

/// Asserts that every feed sequence after the seed, up to `head`, is in `person_event` exactly
/// once, and none at or before the seed (those are never fetched).
pub fn assert_events_exactly_once(lake: &Path, head: i64) {
    let seeded = seed_sequence(lake);
    let rows = sql(
        lake,
        "SELECT count(*) AS n, count(DISTINCT sequence) AS d, min(sequence) AS lo, max(sequence) AS hi FROM person_event",
    );
    let r = &rows[0];
    let want = head - seeded;
    assert_eq!(
        r["n"].as_i64(),
        Some(want),
        "events in person_event after the seed at {seeded}: {r}"
    );
    assert_eq!(r["d"].as_i64(), Some(want), "distinct sequences: {r}");
    if want > 0 {
        assert_eq!(r["lo"].as_i64(), Some(seeded + 1), "{r}");
        assert_eq!(r["hi"].as_i64(), Some(head), "{r}");
    }
}

/// Asserts the lake's current state equals the simulator's.
pub fn assert_state_matches(lake: &Path, sim: &Simulator) {
    let truth = sim.persons();
    let lake = lake_persons(lake);
    assert_eq!(
        lake.len(),
        truth.len(),
        "persons in the lake vs the register"
    );
    let wrong: Vec<_> = truth
        .iter()
        .filter(|(id, t)| lake.get(*id) != Some(t))
        .take(5)
        .collect();
    assert!(
        wrong.is_empty(),
        "persons whose state differs (first 5): {wrong:?}"
    );
}

/// Decodes a chunked HTTP body.
fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = body.windows(2).position(|w| w == b"\r\n") {
        let Ok(n) = usize::from_str_radix(String::from_utf8_lossy(&body[..eol]).trim(), 16) else {
            break;
        };
        let rest = &body[eol + 2..];
        if n == 0 || rest.len() < n {
            break;
        }
        out.extend_from_slice(&rest[..n]);
        body = rest[n..].strip_prefix(b"\r\n").unwrap_or(&rest[n..]);
    }
    out
}

/// The random timings of a test that kills processes, from `KILL_SEED` or a fresh seed, printed
/// so that a failure can be replayed.
pub fn kill_rng(test: &str) -> rand::rngs::SmallRng {
    use rand::SeedableRng;
    let seed: u64 = std::env::var("KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    say!("{test}: kill timings from seed {seed} (replay with KILL_SEED={seed})");
    rand::rngs::SmallRng::seed_from_u64(seed)
}

/// Starts `regsync run ARGS` in the background, its output discarded.
pub fn spawn_run(args: &[&str]) -> Child {
    regsync_cmd()
        .arg("run")
        .args(args)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn regsync run")
}

/// Starts `regsync run ARGS` twice on one lake, the second `stagger` after the first, and waits
/// (at most `within`) until one of them exits. Returns the output of the one that exited and the
/// one still running.
pub fn race_two_workers(args: &[&str], stagger: Duration, within: Duration) -> (Output, Child) {
    let spawn = || {
        regsync_cmd()
            .arg("run")
            .args(args)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn regsync run")
    };
    let mut first = spawn();
    std::thread::sleep(stagger);
    let mut second = spawn();
    let deadline = Instant::now() + within;
    loop {
        if first.try_wait().expect("try_wait").is_some() {
            return (first.wait_with_output().expect("output"), second);
        }
        if second.try_wait().expect("try_wait").is_some() {
            return (second.wait_with_output().expect("output"), first);
        }
        if Instant::now() > deadline {
            let _ = first.kill();
            let _ = second.kill();
            panic!("two workers ran on one lake for {within:?} and neither stopped");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The exited worker of [`race_two_workers`] stopped because the other held the lake: exit
/// code 3 and one clear line; the other is still running (and is stopped here).
pub fn assert_stopped_as_second_writer(exited: &Output, mut other: Child) {
    let stderr = String::from_utf8_lossy(&exited.stderr);
    let still_running = other.try_wait().expect("try_wait").is_none();
    let _ = other.kill();
    let _ = other.wait();
    assert_eq!(
        exited.status.code(),
        Some(3),
        "a worker that finds another on its lake exits with 3: {stderr}"
    );
    assert!(
        stderr.contains("another `regsync run` holds this lake") && stderr.contains("position"),
        "says what happened, with the table and position: {stderr}"
    );
    assert!(still_running, "the other worker goes on");
}

/// No person whose address is withheld now (strengt fortrolig, `ukjent`, any unknown level) has
/// an address or municipality in `person` or in any version in `person_history`.
pub fn assert_no_withheld_address_anywhere(lake: &Path) {
    let withheld = "SELECT person_id FROM person WHERE address_protection NOT IN ('ugradert', 'klientadresse', 'fortrolig')";
    for table in ["person", "person_history"] {
        let found = sql(
            lake,
            &format!(
                "SELECT count(*) AS n FROM {table} WHERE person_id IN ({withheld}) \
                 AND (street_name IS NOT NULL OR municipality_number IS NOT NULL OR postal_code IS NOT NULL)"
            ),
        );
        assert_eq!(
            found[0]["n"].as_i64(),
            Some(0),
            "a withheld address in {table}"
        );
    }
}
