//! The Kafka-protocol broker the tests talk to over TCP: `tansu`, pinned, installed on first use
//! into a cache under the build's target directory and reused afterwards.
//!
//! Which binary: `$TANSU` if set; else the cached one; else it is built once with
//! `cargo install` (a dev-profile build: a few minutes, against half an hour for a release
//! build, and fast enough for the tests). Test binaries run one after another and the tests of
//! one binary share a process, so a lock file plus a process-wide `OnceLock` keep two installs
//! from racing.

use std::fs::OpenOptions;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::free_port;

/// The broker's crate and version.
const CRATE: &str = "tansu";
const VERSION: &str = "0.6.0";

/// The build's target directory (`CARGO_TARGET_TMPDIR` is `<target>/tmp`).
fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("CARGO_TARGET_TMPDIR has a parent")
        .to_path_buf()
}

/// The broker binary, installing it on first use.
pub fn tansu() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(bin) = std::env::var_os("TANSU") {
            return PathBuf::from(bin);
        }
        let cache = target_dir().join("regsync-broker");
        let root = cache.join(format!("{CRATE}-{VERSION}"));
        let bin = root.join("bin").join(CRATE);
        if bin.is_file() {
            return bin;
        }
        std::fs::create_dir_all(&cache).expect("creating the broker cache");
        let lock_path = cache.join("install.lock");
        let deadline = Instant::now() + Duration::from_secs(3600);
        // Another test process may be installing: wait for its lock to go (or its binary to
        // appear), taking the lock over if it is older than any install takes.
        loop {
            if bin.is_file() {
                return bin;
            }
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&lock_path)
            {
                Ok(_) => break,
                Err(_) if stale(&lock_path) => {
                    let _ = std::fs::remove_file(&lock_path);
                }
                Err(_) => {
                    assert!(
                        Instant::now() < deadline,
                        "waited an hour for {}",
                        lock_path.display()
                    );
                    std::thread::sleep(Duration::from_secs(2));
                }
            }
        }
        say!(
            "== installing the test broker {CRATE} {VERSION} into {} (first use only; a few minutes)",
            root.display()
        );
        let started = Instant::now();
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        // Its own target directory and profile settings: the test run's (CARGO_TARGET_DIR,
        // RUSTFLAGS, profile overrides) are not the broker's.
        let status = Command::new(cargo)
            .args(["install", CRATE, "--version", VERSION, "--locked"])
            .args(["--features", "dynostore", "--debug", "--root"])
            .arg(&root)
            .current_dir(&cache)
            .env("CARGO_TARGET_DIR", cache.join("build"))
            .env("CARGO_PROFILE_DEV_DEBUG", "0")
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .env_remove("CARGO_BUILD_TARGET_DIR")
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit())
            .status();
        let _ = std::fs::remove_file(&lock_path);
        match status {
            Ok(s) if s.success() && bin.is_file() => {
                say!(
                    "== test broker installed in {:.0} s: {}",
                    started.elapsed().as_secs_f64(),
                    bin.display()
                );
                // The build's intermediate files are not needed again.
                let _ = std::fs::remove_dir_all(cache.join("build"));
                bin
            }
            Ok(s) => panic!("cargo install {CRATE}@{VERSION} failed ({s}); see the output above"),
            Err(e) => panic!("running cargo install {CRATE}@{VERSION}: {e}"),
        }
    })
    .clone()
}

/// A lock file older than an install can take was left by a killed process.
fn stale(lock: &Path) -> bool {
    std::fs::metadata(lock)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age > Duration::from_secs(3600))
}

/// A broker with in-memory storage on a free port, killed on drop.
pub struct Broker {
    child: Child,
    /// `HOST:PORT`.
    pub addr: String,
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-CONT", &self.child.id().to_string()])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Broker {
    /// Starts a broker and waits until it listens.
    pub fn start() -> Self {
        // A free port can be taken by another process before the broker binds it: the broker
        // then exits, and another port is tried.
        for _ in 0..5 {
            if let Some(broker) = Self::try_start_at(&format!("127.0.0.1:{}", free_port())) {
                return broker;
            }
        }
        panic!("the broker could not listen on any of 5 free ports");
    }

    /// Starts a broker (empty) on `addr`, e.g. where another one was killed.
    pub fn start_at(addr: &str) -> Self {
        Self::try_start_at(addr)
            .unwrap_or_else(|| panic!("the broker exited instead of listening on {addr}"))
    }

    /// Starts a broker on `addr`; `None` when it exits instead (the address is taken).
    fn try_start_at(addr: &str) -> Option<Self> {
        let bin = tansu();
        let addr = addr.to_owned();
        let listener = format!("tcp://{addr}");
        let mut child = Command::new(&bin)
            .args(["broker", "--listener-url", &listener])
            .args(["--advertised-listener-url", &listener])
            .args(["--storage-engine", "memory://tansu/"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting the broker {}: {e}", bin.display()));
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if child.try_wait().ok().flatten().is_some() {
                return None;
            }
            if TcpStream::connect(&addr).is_ok() {
                // What answers may be another process on the port: the broker must still run.
                std::thread::sleep(Duration::from_millis(300));
                if child.try_wait().ok().flatten().is_some() {
                    return None;
                }
                return Some(Self { child, addr });
            }
            assert!(Instant::now() < deadline, "broker did not listen on {addr}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Sends the broker process a signal (`-STOP`, `-CONT`).
    pub fn signal(&self, sig: &str) {
        assert!(
            Command::new("kill")
                .args([sig, &self.child.id().to_string()])
                .status()
                .unwrap()
                .success()
        );
    }
}
