//! The business register's HTTP surface under `/enhetsregisteret/api`: the two updates lists
//! (HAL pages, `oppdateringsid` or `dato`, `size` up to 10000, `page`, no `_embedded` when
//! nothing changed), single units (`410 Gone` for a removed unit) and units by a list of
//! organisation numbers.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::brreg::{List, document};
use crate::server::Shared;

/// The path prefix of the business register's API.
pub const BRREG_BASE: &str = "/enhetsregisteret/api";
/// The largest page the updates lists give.
pub const MAX_SIZE: usize = 10_000;

type AppState = State<Arc<Shared>>;

fn list_of(path: &str) -> Option<List> {
    match path {
        "enheter" => Some(List::Enheter),
        "underenheter" => Some(List::Underenheter),
        _ => None,
    }
}

fn problem(status: StatusCode, message: impl Into<String>) -> Response {
    let body = json!({
        "timestamp": Utc::now().to_rfc3339(),
        "status": status.as_u16(),
        "error": status.canonical_reason().unwrap_or(""),
        "message": message.into(),
        "path": "",
    });
    (status, Json(body)).into_response()
}

/// The routes, to nest under [`BRREG_BASE`].
pub fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/oppdateringer/{list}", get(updates))
        .route("/{list}", get(units))
        .route("/{list}/{number}", get(unit))
}

#[derive(Deserialize)]
struct UpdatesQuery {
    oppdateringsid: Option<i64>,
    dato: Option<String>,
    size: Option<usize>,
    page: Option<usize>,
}

async fn updates(
    State(shared): AppState,
    Path(list): Path<String>,
    Query(q): Query<UpdatesQuery>,
) -> Response {
    let Some(kind) = list_of(&list) else {
        return problem(StatusCode::NOT_FOUND, format!("no updates list {list}"));
    };
    let size = q.size.unwrap_or(20);
    if !(1..=MAX_SIZE).contains(&size) {
        return problem(
            StatusCode::BAD_REQUEST,
            format!("size must be between 1 and {MAX_SIZE}"),
        );
    }
    let since: Option<DateTime<Utc>> = match &q.dato {
        Some(d) => match DateTime::parse_from_rfc3339(d) {
            Ok(t) => Some(t.with_timezone(&Utc)),
            Err(e) => return problem(StatusCode::BAD_REQUEST, format!("dato {d:?}: {e}")),
        },
        None => None,
    };
    let page = q.page.unwrap_or(0);
    let units = shared.units();
    let base = format!("https://data.brreg.no{BRREG_BASE}");
    // Both ids and times increase along a list: the start is found by binary search, so a
    // request costs its page, not the list.
    let all = units.list(kind);
    let from = all
        .partition_point(|u| q.oppdateringsid.is_some_and(|id| u.id < id))
        .max(all.partition_point(|u| since.is_some_and(|t| u.at < t)));
    let matching = &all[from..];
    let total = matching.len();
    let items: Vec<Value> = matching
        .iter()
        .skip(page.saturating_mul(size))
        .take(size)
        .map(|u| {
            let unit = &units.units[u.unit];
            let singular = match kind {
                List::Enheter => "enhet",
                List::Underenheter => "underenhet",
            };
            json!({
                "oppdateringsid": u.id,
                "dato": u.at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
                "organisasjonsnummer": unit.number,
                "endringstype": u.change,
                "_links": {singular: {"href": format!("{base}/{list}/{}", unit.number)}}
            })
        })
        .collect();
    let key = match kind {
        List::Enheter => "oppdaterteEnheter",
        List::Underenheter => "oppdaterteUnderenheter",
    };
    let mut body = json!({
        "_links": {"self": {"href": format!("{base}/oppdateringer/{list}?page={page}&size={size}")}},
        "page": {"size": size, "totalElements": total, "totalPages": total.div_ceil(size), "number": page}
    });
    if !items.is_empty() {
        body["_embedded"] = json!({ key: items });
    }
    Json(body).into_response()
}

async fn unit(State(shared): AppState, Path((list, number)): Path<(String, String)>) -> Response {
    let Some(kind) = list_of(&list) else {
        return problem(StatusCode::NOT_FOUND, format!("no list {list}"));
    };
    let units = shared.units();
    match units.find(kind, &number) {
        Some(u) if u.removed => problem(StatusCode::GONE, format!("{number} is removed")),
        Some(u) => Json(document(u, &format!("https://data.brreg.no{BRREG_BASE}"))).into_response(),
        None => problem(StatusCode::NOT_FOUND, format!("no unit {number}")),
    }
}

#[derive(Deserialize)]
struct UnitsQuery {
    organisasjonsnummer: Option<String>,
    size: Option<usize>,
}

async fn units(
    State(shared): AppState,
    Path(list): Path<String>,
    Query(q): Query<UnitsQuery>,
) -> Response {
    let Some(kind) = list_of(&list) else {
        return problem(StatusCode::NOT_FOUND, format!("no list {list}"));
    };
    let mut wanted: Vec<&str> = q
        .organisasjonsnummer
        .as_deref()
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .collect();
    wanted.sort_unstable();
    wanted.dedup();
    let size = q.size.unwrap_or(20).min(MAX_SIZE);
    let units = shared.units();
    let base = format!("https://data.brreg.no{BRREG_BASE}");
    let served: Vec<_> = wanted
        .iter()
        .filter_map(|n| units.find(kind, n))
        .filter(|u| !u.removed)
        .collect();
    let total = served.len();
    let found: Vec<Value> = served
        .iter()
        .take(size)
        .map(|u| document(u, &base))
        .collect();
    let mut body = json!({
        "_links": {"self": {"href": format!("{base}/{list}")}},
        "page": {"size": size, "totalElements": total, "totalPages": total.div_ceil(size.max(1)), "number": 0}
    });
    if !found.is_empty() {
        body["_embedded"] = json!({ list: found });
    }
    Json(body).into_response()
}
