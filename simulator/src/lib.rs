//! A local stand-in for the population register (Folkeregisteret), for development, tests and
//! demos: the register's paths and JSON shapes, a deterministic synthetic population, a live
//! stream of changes, a feed that forgets its oldest entries, and injected faults.
//!
//! The population is synthetic: identity numbers use the test scheme (month + 80) and pass the
//! check digits; names and addresses are drawn from lists. No real person's data is used.
//!
//! # Layout
//! - [`kommuner`]: the 357 kommuner of 2024 with population weights.
//! - [`names`]: name, street and country lists.
//! - [`population`]: the deterministic base population.
//! - [`person`]: a person's state and its rendering as a register document.
//! - [`world`]: versions, the feed, truth queries.
//! - [`events`]: the generator of register changes.
//! - [`options`]: answers that vary between registers (expired feed positions, extract arrays).
//! - [`server`]: the HTTP routes and the feed's retention.
//! - [`faults`]: transport and answer faults.
//! - [`backlog`]: many changes at once, for a worker to catch up on.
//! - [`brreg`]: the business register: units at the population's addresses, two updates lists.
//! - [`brreg_http`]: its routes under `/enhetsregisteret/api`.
//! - [`matrikkel`]: the property register: addresses, cadastral units and their change log,
//!   at the population's and the businesses' addresses.
//! - [`matrikkel_http`]: its routes under `/matrikkel/v1` (a JSON mirror of the change log).

pub mod backlog;
pub mod brreg;
pub mod brreg_http;
pub mod events;
pub mod faults;
pub mod kommuner;
pub mod matrikkel;
pub mod matrikkel_http;
pub mod names;
pub mod options;
pub mod person;
pub mod population;
pub mod server;
pub mod world;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::SmallRng;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::info;

pub use options::{ExpiredFeed, ExtractIds};
pub use server::{BASE, Shared};
pub use world::World;

/// How to run the simulator. [`Config::default`] matches `regsync simulate`'s defaults.
#[derive(Debug, Clone)]
pub struct Config {
    /// Base persons.
    pub persons: u32,
    /// Units (enheter) of the business register (`None`: one per 20 persons); underenheter
    /// are 0.6 as many.
    pub units: Option<u32>,
    /// Seed of the population and the event stream.
    pub seed: u64,
    /// Register changes per second (0: none).
    pub events_per_sec: f64,
    /// Stop producing changes after this many feed entries.
    pub max_events: Option<u64>,
    /// Share of requests that fail (0..1), for each kind of fault in [`faults`].
    pub faults: f64,
    /// Keep only the newest this many feed entries (`None`: keep all). Older sequence numbers
    /// are expired: the feed answers them as `expired_feed` says, event documents answer 404 and
    /// complete extracts 406.
    pub retain_events: Option<u64>,
    /// What a feed request for an expired sequence number gets.
    pub expired_feed: ExpiredFeed,
    /// Which arrays extract batches carry.
    pub extract_ids: ExtractIds,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            persons: 100_000,
            units: None,
            seed: 1,
            events_per_sec: 10.0,
            max_events: None,
            faults: 0.0,
            retain_events: None,
            expired_feed: ExpiredFeed::default(),
            extract_ids: ExtractIds::default(),
        }
    }
}

/// Errors of the simulator.
#[derive(Debug, thiserror::Error)]
pub enum SimulatorError {
    /// The listen address could not be bound or served.
    #[error("serving on {addr}: {source}")]
    Serve {
        /// The address.
        addr: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// A running simulator.
#[derive(Debug)]
pub struct Running {
    /// The address it listens on.
    pub addr: SocketAddr,
    /// Its state, for in-process truth checks.
    pub shared: Arc<Shared>,
}

impl Running {
    /// The register's base URL (`http://addr`), as regsync's pipeline file wants it.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// Builds the population, binds `listen` and serves until `shutdown` is cancelled, producing
/// changes in the background.
pub async fn start(
    config: Config,
    listen: &str,
    shutdown: CancellationToken,
) -> Result<Running, SimulatorError> {
    let started = std::time::Instant::now();
    let world = tokio::task::spawn_blocking({
        let (persons, seed) = (config.persons, config.seed);
        move || World::new(persons, seed)
    })
    .await
    .expect("building the population does not panic");
    info!(
        persons = config.persons,
        seed = config.seed,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "population ready"
    );
    let shared = Shared::new(world, &config);
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|source| SimulatorError::Serve {
            addr: listen.to_owned(),
            source,
        })?;
    let addr = listener
        .local_addr()
        .map_err(|source| SimulatorError::Serve {
            addr: listen.to_owned(),
            source,
        })?;
    let app = server::router(shared.clone());
    let stop = shutdown.clone();
    tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(stop.cancelled_owned())
            .await;
        if let Err(error) = served {
            tracing::error!(%error, "simulator server stopped");
        }
    });
    if config.events_per_sec > 0.0 {
        tokio::spawn(produce(shared.clone(), config, shutdown));
    }
    info!(%addr, base = BASE, "register simulator listening");
    Ok(Running { addr, shared })
}

/// Produces register changes at the configured rate until `max_events` or shutdown.
async fn produce(shared: Arc<Shared>, config: Config, shutdown: CancellationToken) {
    let mut rng = SmallRng::seed_from_u64(config.seed ^ 0xE7E7);
    // Ticks of at most 100 per second; each tick writes the events due by then.
    let tick = Duration::from_secs_f64((1.0 / config.events_per_sec).max(0.01));
    let per_tick = (config.events_per_sec * tick.as_secs_f64()).max(1.0);
    let mut interval = tokio::time::interval(tick);
    let mut owed = 0.0;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = interval.tick() => {}
        }
        owed += per_tick;
        let mut world = shared
            .world
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        while owed >= 1.0 {
            if config
                .max_events
                .is_some_and(|max| world.head() as u64 >= max)
            {
                info!(
                    head = world.head(),
                    "event stream finished (max events reached)"
                );
                return;
            }
            let n = events::step(&mut world, &mut rng, chrono::Utc::now()).len();
            // The business register changes at the same pace.
            let now = chrono::Utc::now();
            let mut units = shared
                .brreg
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            units.step(&world, now);
            // So does the property register, once it is asked for: its own changes, and the
            // addresses people moved to and businesses registered at.
            if let Some(registry) = shared
                .matrikkel
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .as_mut()
            {
                for event in &world.feed[world.feed.len().saturating_sub(n)..] {
                    if let Some(r) = world
                        .current(event.person)
                        .and_then(|p| p.residence().cloned())
                    {
                        registry.observe(&r, now);
                    }
                }
                if let Some(unit) = units.latest() {
                    registry.observe(&unit.address, now);
                }
                registry.step(now);
            }
            owed -= n.max(1) as f64;
        }
    }
}
