//! One writer per register and lake: the worker holds a lease, recorded in the `writer_lease`
//! table's log under its register's application ids and renewed while it runs. The workers of
//! different registers share a lake (their tables are their own; the shared ones take appends).
//!
//! A second `regsync run` of the same register against the same lake finds the lease renewed less than [`TTL`] ago
//! and stops at once with [`IngestError::LakeHeld`] (exit code 3), before it writes anything or
//! publishes a message. A lease whose holder is gone is taken over: at once when the holder was
//! a process on this host that no longer runs (a crash, SIGKILL), otherwise once it has not been
//! renewed for [`TTL`]. Taking and renewing are Delta commits that record the lease's
//! application transactions, so two processes taking it at the same moment conflict and one
//! stops; a holder that was paused past the TTL and lost the lease finds out at its next renewal
//! and stops. Delta's own optimistic concurrency (every commit records the feed position) stays
//! the backstop for the lake's tables.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use schemas::register::Register;
use schemas::tables::WRITER_LEASE;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use url::Url;

use crate::IngestError;
use crate::lake::Lake;

/// How long a lease stays valid without renewal.
pub const TTL: Duration = Duration::from_secs(30);
/// How often the holder renews it.
const RENEW_EVERY: Duration = Duration::from_secs(10);

/// The lease this process holds.
#[derive(Debug, Clone)]
pub struct Lease {
    held: Arc<AtomicBool>,
    /// When the lease was last taken or renewed, on this process's clock.
    renewed_at: Arc<std::sync::Mutex<std::time::Instant>>,
    lost: Arc<Mutex<Option<IngestError>>>,
    stop: CancellationToken,
    done: Arc<Mutex<Option<tokio::task::JoinHandle<()>>>>,
}

/// A register's lease ids: holder token, process, renewal time.
#[derive(Debug, Clone, Copy)]
struct Ids {
    holder: &'static str,
    process: &'static str,
    renewed: &'static str,
}

impl Ids {
    fn of(register: &str) -> Result<Self, IngestError> {
        let [holder, process, renewed] =
            schemas::cursor::lease_ids(register).ok_or_else(|| IngestError::Config {
                path: "source.register".into(),
                reason: format!("{register:?} has no writer lease ids"),
            })?;
        Ok(Self {
            holder,
            process,
            renewed,
        })
    }

    fn now(&self, token: i64) -> [(&'static str, i64); 3] {
        [
            (self.holder, token),
            (self.process, this_process()),
            (self.renewed, now_ms()),
        ]
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// This host, boot and pid namespace, hashed (FNV-1a, 31 bits) to fit beside a pid in one
/// number: two processes with the same value see each other's pids, so a pid that no longer
/// runs means a holder that is gone. Containers sharing a host name but not a pid namespace
/// differ.
fn host_hash() -> i64 {
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_default();
    let namespace = std::fs::read_link("/proc/self/ns/pid")
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let identity = format!(
        "{}|{}|{namespace}",
        name.trim(),
        read("/proc/sys/kernel/random/boot_id").trim()
    );
    let mut h: u32 = 0x811c_9dc5;
    for b in identity.bytes() {
        h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
    }
    i64::from(h & 0x7fff_ffff)
}

fn this_process() -> i64 {
    (host_hash() << 32) | i64::from(std::process::id())
}

/// Whether a process of this host with this pid is a running `regsync`.
fn running_here(pid: i64) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| String::from_utf8_lossy(&c).contains("regsync"))
        .unwrap_or(false)
}

/// How long past [`TTL`] a lease is still respected (clocks, slow stores).
const MARGIN: Duration = Duration::from_secs(5);

/// The lease as the lake records it: holder token, process, renewal time.
async fn read_lease(lake: &Lake, ids: Ids) -> Result<(Option<i64>, i64, i64), IngestError> {
    let holder = lake.position(&WRITER_LEASE, ids.holder).await?;
    let process = lake
        .position(&WRITER_LEASE, ids.process)
        .await?
        .unwrap_or(0);
    let renewed = lake
        .position(&WRITER_LEASE, ids.renewed)
        .await?
        .unwrap_or(0);
    Ok((holder, process, renewed))
}

/// Whether the lease's renewal time changes from `seen` within `window`.
async fn renewed_within(
    lake: &mut Lake,
    ids: Ids,
    seen: i64,
    window: Duration,
) -> Result<bool, IngestError> {
    let until = tokio::time::Instant::now() + window;
    while tokio::time::Instant::now() < until {
        tokio::time::sleep(Duration::from_secs(2)).await;
        lake.refresh_table(&WRITER_LEASE).await?;
        let (_, _, renewed) = read_lease(lake, ids).await?;
        if renewed != seen {
            return Ok(renewed != 0);
        }
    }
    Ok(false)
}

/// Who holds a lease of the lake now (a worker of any register), if anyone does (renewed less
/// than [`TTL`] ago).
pub async fn holder(url: &Url) -> Result<Option<String>, IngestError> {
    let table = crate::lake::table_url(url, &WRITER_LEASE);
    let delta = match deltalake::open_table(table).await {
        Ok(delta) => delta,
        // A lake without the table (written before it existed) has no lease.
        Err(
            deltalake::DeltaTableError::NotATable(_)
            | deltalake::DeltaTableError::InvalidTableLocation(_),
        ) => return Ok(None),
        Err(e) => {
            return Err(IngestError::Lake {
                table: WRITER_LEASE.name,
                url: url.to_string(),
                source: Box::new(e),
            });
        }
    };
    let err = |e: deltalake::DeltaTableError| IngestError::Lake {
        table: WRITER_LEASE.name,
        url: url.to_string(),
        source: Box::new(e),
    };
    let state = delta.snapshot().map_err(err)?;
    let read = |app: &'static str| {
        let state = state.clone();
        let store = delta.log_store();
        async move { state.transaction_version(store.as_ref(), app).await }
    };
    for register in schemas::register::all() {
        let ids = Ids::of(register.name)?;
        let renewed = read(ids.renewed).await.map_err(err)?.unwrap_or(0);
        let process = read(ids.process).await.map_err(err)?.unwrap_or(0);
        let age = now_ms() - renewed;
        if renewed == 0 || age > i64::try_from(TTL.as_millis()).unwrap_or(i64::MAX) {
            continue;
        }
        let (host, pid) = (process >> 32, process & 0xffff_ffff);
        if host == host_hash() && !running_here(pid) {
            continue;
        }
        return Ok(Some(format!(
            "the {} worker, process {pid} on {} (lease renewed {} s ago)",
            register.name,
            if host == host_hash() {
                "this host"
            } else {
                "another host"
            },
            age / 1000
        )));
    }
    Ok(None)
}

impl Lease {
    /// Takes the lease of the lake, or says who holds it. The lease is renewed in the
    /// background until [`Lease::release`]; if it is lost, `shutdown` is cancelled and
    /// [`Lease::lost`] says why.
    pub async fn acquire(
        url: &Url,
        register: &'static Register,
        shutdown: &CancellationToken,
    ) -> Result<Self, IngestError> {
        let ids = Ids::of(register.name)?;
        let mut lake = Lake::open_tables(url, &[&WRITER_LEASE]).await?;
        let (holder, process, renewed) = read_lease(&lake, ids).await?;
        let age = Duration::from_millis(u64::try_from(now_ms() - renewed).unwrap_or(0));
        if holder.is_some_and(|h| h != 0) && renewed > 0 && age < TTL + MARGIN {
            let (host, pid) = (process >> 32, process & 0xffff_ffff);
            let here = host == host_hash();
            let gone = if here {
                pid == i64::from(std::process::id()) || !running_here(pid)
            } else {
                // Another host (or container): wall clocks differ, so watch whether the holder
                // still renews, on this process's own clock.
                info!(
                    pid,
                    "the lake's lease is held elsewhere: watching whether it is renewed"
                );
                !renewed_within(&mut lake, ids, renewed, TTL + MARGIN).await?
            };
            if !gone {
                let feed = &register.feeds[0];
                let table = feed.tables[0];
                let position = match Lake::open_tables(url, &[table]).await {
                    Ok(tables) => tables.position(table, feed.position).await?.unwrap_or(0),
                    Err(_) => 0,
                };
                return Err(IngestError::LakeHeld {
                    table: table.name,
                    url: url.to_string(),
                    app: feed.position.to_owned(),
                    ours: position,
                    theirs: Some(position),
                    reason: format!(
                        "its lease is renewed by process {pid} on {}",
                        if here { "this host" } else { "another host" }
                    ),
                });
            }
            info!(pid, "taking over the lease of a worker that no longer runs");
        }
        let token = i64::from(rand::random::<u32>()) << 16 | 1;
        lake.mark(&WRITER_LEASE, &ids.now(token)).await?;
        let lease = Self {
            held: Arc::new(AtomicBool::new(true)),
            renewed_at: Arc::new(std::sync::Mutex::new(std::time::Instant::now())),
            lost: Arc::default(),
            stop: CancellationToken::new(),
            done: Arc::default(),
        };
        let task = tokio::spawn(renew(
            lake,
            ids,
            register,
            token,
            lease.clone(),
            shutdown.clone(),
        ));
        *lease.done.lock().await = Some(task);
        Ok(lease)
    }

    /// Whether the lease is still held: not lost, and renewed recently enough that nobody can
    /// have taken it over (checked before anything leaves the process).
    pub fn held(&self) -> bool {
        self.held.load(Ordering::SeqCst) && self.fresh()
    }

    /// Renewed less than [`TTL`] minus a margin ago.
    fn fresh(&self) -> bool {
        self.renewed_at
            .lock()
            .map(|t| t.elapsed() < TTL.saturating_sub(MARGIN * 2))
            .unwrap_or(false)
    }

    /// Why the lease was lost, if it was.
    pub async fn lost(&self) -> Option<IngestError> {
        self.lost.lock().await.take()
    }

    /// Stops renewing and releases the lease, so that the next start takes it at once.
    pub async fn release(&self) {
        self.stop.cancel();
        if let Some(task) = self.done.lock().await.take() {
            let _ = task.await;
        }
    }
}

/// Renews the lease until released (then releases it) or lost (then stops the worker).
async fn renew(
    mut lake: Lake,
    ids: Ids,
    register: &'static Register,
    token: i64,
    lease: Lease,
    shutdown: CancellationToken,
) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(RENEW_EVERY) => {}
            () = lease.stop.cancelled() => break,
        }
        let result = async {
            lake.refresh_table(&WRITER_LEASE).await?;
            let holder = lake.position(&WRITER_LEASE, ids.holder).await?;
            if holder != Some(token) {
                return Err(IngestError::LakeHeld {
                    table: register.feeds[0].tables[0].name,
                    url: lake.url().to_string(),
                    app: register.feeds[0].position.to_owned(),
                    ours: 0,
                    theirs: None,
                    reason: "another process took over this worker's lease (was it paused for longer than the lease lasts?)".into(),
                });
            }
            lake.mark(&WRITER_LEASE, &ids.now(token)).await
        }
        .await;
        match result {
            Ok(()) => {
                if let Ok(mut t) = lease.renewed_at.lock() {
                    *t = std::time::Instant::now();
                }
            }
            Err(e) if e.lake_held() || !lease.fresh() => {
                warn!(error = %e, "lost the lake's lease; stopping");
                lease.held.store(false, Ordering::SeqCst);
                *lease.lost.lock().await = Some(e);
                shutdown.cancel();
                return;
            }
            // A store that fails now and then: the lease lasts a few renewals.
            Err(e) => warn!(error = %e, "renewing the lake's lease failed; trying again"),
        }
    }
    // Released: the next start need not wait for the lease to expire.
    if lease.held() {
        let _ = lake.refresh_table(&WRITER_LEASE).await;
        if let Err(e) = lake
            .mark(
                &WRITER_LEASE,
                &[
                    (ids.holder, token),
                    (ids.process, this_process()),
                    (ids.renewed, 0),
                ],
            )
            .await
        {
            warn!(error = %e, "releasing the lake's lease failed; the next start waits for it to expire");
        }
        lease.held.store(false, Ordering::SeqCst);
    }
}
