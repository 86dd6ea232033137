//! Fault injection: the ways a register answer goes wrong that a client must survive, each at
//! the configured rate and drawn from one seeded generator.
//!
//! Transport faults ([`middleware`], [`brreg_middleware`]) can hit any request under the
//! registers' paths: 429 with `Retry-After`, 500, 503 (each in the error body of the register
//! asked: the population register's, or the business register's `InternalServerError`), a slow
//! answer, a body cut off halfway. Answer faults are drawn by the handlers, each at the same
//! rate again:
//! - a 200 whose body is valid JSON but not the answer ([`Faults::maintenance`]), as a service
//!   under maintenance can send, on bulk lookups, extract batches and the feed;
//! - a feed page that repeats one entry ([`Faults::repeat`]);
//! - a feed page that lacks one entry in its middle ([`Faults::in_flight`]): a sequence number
//!   allocated but not yet visible, served normally from then on;
//! - an extract batch that carries only `foedselsEllerDNummer` ([`Faults::ids_only`]), as the
//!   spec allows.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

use crate::brreg_http;
use crate::server::{Shared, error};

/// What a service under maintenance answers, with status 200, instead of the answer.
pub const MAINTENANCE: &str = "Tjenesten er under vedlikehold";

/// The fault generator of one simulator.
#[derive(Debug)]
pub struct Faults {
    rate: f64,
    rng: Mutex<SmallRng>,
    /// Sequence numbers that have been held back once; they are never held back again.
    held_back: Mutex<HashSet<i64>>,
}

impl Faults {
    /// Faults at `rate` (0..1; 0 or less: none) of requests, drawn from `seed`.
    pub fn new(rate: f64, seed: u64) -> Self {
        Self {
            rate: rate.min(1.0),
            rng: Mutex::new(SmallRng::seed_from_u64(seed ^ 0xFA17)),
            held_back: Mutex::new(HashSet::new()),
        }
    }

    fn rng(&self) -> MutexGuard<'_, SmallRng> {
        self.rng.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Draws whether a fault hits and, if so, `then` from the same generator. Draws nothing
    /// when faults are off, so a fault-free simulator stays deterministic.
    fn draw<T>(&self, then: impl FnOnce(&mut SmallRng) -> T) -> Option<T> {
        if self.rate <= 0.0 {
            return None;
        }
        let mut rng = self.rng();
        rng.random_bool(self.rate).then(|| then(&mut rng))
    }

    /// Sometimes: the 200 answer of a service under maintenance, `{"melding": "..."}`, to send
    /// instead of the real answer.
    pub fn maintenance(&self) -> Option<Response> {
        self.draw(|_| (StatusCode::OK, Json(json!({ "melding": MAINTENANCE }))).into_response())
    }

    /// Sometimes: the index of a feed page entry to hold back, as if its sequence number were
    /// allocated but the entry not yet visible. Never the first or the last entry of the page
    /// (the gap is inside the page) and never a sequence number held back before, so the next
    /// request serves it.
    pub fn in_flight(&self, seqs: &[i64]) -> Option<usize> {
        if seqs.len() < 3 {
            return None;
        }
        let i = self.draw(|rng| rng.random_range(1..seqs.len() - 1))?;
        self.held_back
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(seqs[i])
            .then_some(i)
    }

    /// Sometimes: the index of a feed page entry to serve twice (the copy follows it).
    pub fn repeat(&self, len: usize) -> Option<usize> {
        if len == 0 {
            return None;
        }
        self.draw(|rng| rng.random_range(0..len))
    }

    /// Sometimes: whether an extract batch carries only `foedselsEllerDNummer`.
    pub fn ids_only(&self) -> bool {
        self.draw(|_| ()).is_some()
    }
}

/// Whose error bodies a transport fault answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Register {
    /// The population register: `kode`/`melding` and `feilkode`/`feilmelding`/`httpStatus`.
    Population,
    /// The business register: its spec's `InternalServerError`.
    Business,
    /// The property register: a SOAP fault, as JSON.
    Property,
}

/// The transport faults on the population register's routes, answered in its error bodies.
pub async fn middleware(State(s): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    transport(&s, Register::Population, req, next).await
}

/// The transport faults on the business register's routes (under
/// [`crate::brreg_http::BRREG_BASE`]), answered in its error bodies.
pub async fn brreg_middleware(State(s): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    transport(&s, Register::Business, req, next).await
}

/// The transport faults on the property register's change log and bulk routes (under
/// [`crate::matrikkel_http::MATRIKKEL_BASE`]), answered as SOAP faults in JSON.
pub async fn matrikkel_middleware(
    State(s): State<Arc<Shared>>,
    req: Request,
    next: Next,
) -> Response {
    transport(&s, Register::Property, req, next).await
}

/// A failed answer of `register` to a request for `path`: `status` with the register's error
/// body (`code` is the population register's error code).
fn failure(
    register: Register,
    path: &str,
    status: StatusCode,
    code: &str,
    message: &str,
) -> Response {
    match register {
        Register::Population => error(status, code, message),
        Register::Business => brreg_http::problem(status, path, message),
        Register::Property => crate::matrikkel_http::fault(status, message),
    }
}

/// The transport faults: 429 with `Retry-After`, 500, 503, a 1.5 s delay, or a body cut off
/// halfway, on a share of requests.
async fn transport(s: &Shared, register: Register, req: Request, next: Next) -> Response {
    let Some(kind) = s.faults.draw(|rng| rng.random_range(0..5u8)) else {
        return next.run(req).await;
    };
    let path = req.uri().path().to_owned();
    let fail = |status: StatusCode, code: &str, message: &str| {
        failure(register, &path, status, code, message)
    };
    match kind {
        0 => {
            let mut r = fail(StatusCode::TOO_MANY_REQUESTS, "FREG-429", "for mange kall");
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            r
        }
        1 => fail(
            StatusCode::INTERNAL_SERVER_ERROR,
            "FREG-500",
            "intern feil (simulert)",
        ),
        2 => fail(
            StatusCode::SERVICE_UNAVAILABLE,
            "FREG-503",
            "utilgjengelig (simulert)",
        ),
        3 => {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            next.run(req).await
        }
        _ => {
            let response = next.run(req).await;
            let (mut parts, body) = response.into_parts();
            let bytes = axum::body::to_bytes(body, usize::MAX)
                .await
                .unwrap_or_default();
            let cut = bytes.slice(..bytes.len() / 2);
            parts.headers.remove(header::CONTENT_LENGTH);
            Response::from_parts(parts, Body::from(cut))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_rate_nothing_is_drawn() {
        let faults = Faults::new(0.0, 1);
        let seqs: Vec<i64> = (1..=10).collect();
        for _ in 0..100 {
            assert!(faults.maintenance().is_none());
            assert_eq!(faults.in_flight(&seqs), None);
            assert_eq!(faults.repeat(10), None);
            assert!(!faults.ids_only());
        }
    }

    #[test]
    fn an_entry_in_flight_is_inside_the_page_and_held_back_only_once() {
        let faults = Faults::new(1.0, 7);
        let mut held = HashSet::new();
        for start in 0..200i64 {
            // Overlapping pages of 3 to 12 entries, as a client re-reading the feed sees them.
            let len = 3 + (start % 10);
            let seqs: Vec<i64> = (start + 1..=start + len).collect();
            if let Some(i) = faults.in_flight(&seqs) {
                assert!(i > 0 && i < seqs.len() - 1, "index {i} of {len}");
                assert!(held.insert(seqs[i]), "{} held back twice", seqs[i]);
            }
        }
        assert!(held.len() > 50, "at rate 1 most pages hold one back");
    }

    #[test]
    fn pages_too_short_for_a_gap_are_served_whole() {
        let faults = Faults::new(1.0, 7);
        assert_eq!(faults.in_flight(&[]), None);
        assert_eq!(faults.in_flight(&[1]), None);
        assert_eq!(faults.in_flight(&[1, 2]), None);
    }

    #[test]
    fn answer_faults_fire_at_rate_one() {
        let faults = Faults::new(1.0, 3);
        assert!(faults.ids_only());
        assert!(faults.repeat(4).is_some_and(|i| i < 4));
        assert_eq!(
            faults.maintenance().map(|r| r.status()),
            Some(StatusCode::OK)
        );
    }
}
