//! `POST /simulator/v1/hendelser?antall=N`: N register changes at once, for a backlog a worker
//! then catches up on (benchmarks). The real register has no such thing; it sits beside the
//! truth endpoints under `/simulator/v1`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use rand::SeedableRng;
use rand::rngs::SmallRng;
use serde::Deserialize;
use serde_json::json;

use crate::events;
use crate::server::Shared;

/// The most changes one request makes.
pub const MAX: u64 = 10_000_000;

#[derive(Deserialize)]
pub(crate) struct BacklogQuery {
    antall: Option<u64>,
}

/// Writes `antall` feed entries now (default 1); answers the new head.
pub(crate) async fn produce(
    State(shared): State<Arc<Shared>>,
    Query(q): Query<BacklogQuery>,
) -> Response {
    let wanted = q.antall.unwrap_or(1);
    if wanted > MAX {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({ "melding": format!("antall {wanted}: at most {MAX}") })),
        )
            .into_response();
    }
    let head = tokio::task::spawn_blocking(move || {
        let mut world = shared
            .world
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let start = world.head();
        let mut rng = SmallRng::seed_from_u64(start as u64 ^ 0xBAC1_0000);
        // A step that finds no change writes nothing: bounded, so a world where nothing can
        // happen does not loop.
        for _ in 0..wanted.saturating_mul(4) {
            if (world.head() - start) as u64 >= wanted {
                break;
            }
            events::step(&mut world, &mut rng, chrono::Utc::now());
        }
        world.head()
    })
    .await
    .unwrap_or(0);
    Json(json!({ "head": head })).into_response()
}
