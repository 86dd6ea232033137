//! The business register's HTTP surface under `/enhetsregisteret/api`, in the shapes of its
//! published OpenAPI (2.0.0): the two updates lists (HAL pages, `oppdateringsid` or `dato`,
//! `size` up to 10000, `page`, no `_embedded` when nothing changed), single units (a deleted
//! unit with fewer attributes, a removed one `410 Gone`), units by a list of organisation
//! numbers (deleted and removed ones left out), the bulk download of a list (one gzipped JSON
//! array, streamed), and the register's error bodies (`BadRequest` for a bad parameter,
//! `InternalServerError` for anything else).

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::brreg::{List, Unit, UpdateRecord, document, gone};
use crate::server::Shared;

/// The path prefix of the business register's API.
pub const BRREG_BASE: &str = "/enhetsregisteret/api";
/// The largest page the updates lists give.
pub const MAX_SIZE: usize = 10_000;
/// The page size when none is asked for.
const DEFAULT_SIZE: usize = 20;

type AppState = State<Arc<Shared>>;

/// The API's URL as the register writes it in links.
fn base_url() -> String {
    format!("https://data.brreg.no{BRREG_BASE}")
}

fn list_of(path: &str) -> Option<List> {
    match path {
        "enheter" => Some(List::Enheter),
        "underenheter" => Some(List::Underenheter),
        _ => None,
    }
}

/// A path under the API as the register names it, from [`BRREG_BASE`] on (a request to a
/// nested route no longer carries the prefix).
fn full_path(path: &str) -> String {
    if path.starts_with(BRREG_BASE) {
        path.to_owned()
    } else {
        format!("{BRREG_BASE}{path}")
    }
}

/// A trace id as the register gives one with an error (a random UUID), to quote to it.
fn trace_id() -> String {
    let h = format!("{:032x}", rand::random::<u128>());
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// The register's error answer for any status but 400, in the spec's `InternalServerError`
/// shape: when, the status and its reason, what went wrong, the path asked for (under the API,
/// with or without [`BRREG_BASE`]) and a trace id.
pub(crate) fn problem(status: StatusCode, path: &str, message: impl Into<String>) -> Response {
    let body = json!({
        "timestamp": Utc::now().format("%Y-%m-%dT%H:%M:%S%.3f%z").to_string(),
        "status": status.as_u16(),
        "error": status.canonical_reason().unwrap_or("Error"),
        "message": message.into(),
        "path": full_path(path),
        "trace": trace_id(),
    });
    (status, Json(body)).into_response()
}

/// The register's answer to bad parameters, in the spec's `BadRequest` shape: 400 with one
/// validation error naming the parameters and the value given.
fn bad_request(
    path: &str,
    parameters: &[&str],
    value: Option<&str>,
    message: impl Into<String>,
) -> Response {
    let status = StatusCode::BAD_REQUEST;
    let mut error = json!({ "feilmelding": message.into(), "parametere": parameters });
    if let Some(value) = value {
        error["feilaktigVerdi"] = json!(value);
    }
    let body = json!({
        "status": status.as_u16(),
        "feilmelding": "Ugyldig forespørsel",
        "sti": full_path(path),
        "tidsstempel": Utc::now().timestamp(),
        "antallFeil": 1,
        "valideringsfeil": [error],
    });
    (status, Json(body)).into_response()
}

/// The routes, to nest under [`BRREG_BASE`].
pub fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/oppdateringer/{list}", get(updates))
        .route("/{list}", get(units))
        .route("/{list}/lastned", get(download))
        .route("/{list}/{number}", get(unit))
}

/// Whether a query parameter is the page's own (`page`, `size`).
fn is_paging(parameter: &str) -> bool {
    matches!(parameter.split('=').next(), Some("page" | "size"))
}

/// A page's `_links`: `self` as asked (the request's query as it came) and, when there is more
/// than one page, `first`, `prev`, `next` and `last`, each with the request's other parameters
/// and its own `page` and `size`.
fn page_links(href: &str, query: Option<&str>, page: usize, size: usize, pages: usize) -> Value {
    let query = query.unwrap_or_default();
    let own = if query.is_empty() {
        href.to_owned()
    } else {
        format!("{href}?{query}")
    };
    let mut links = json!({ "self": { "href": own } });
    if pages > 1 {
        let kept: Vec<&str> = query
            .split('&')
            .filter(|p| !p.is_empty() && !is_paging(p))
            .collect();
        let link = |n: usize| {
            let paging = format!("page={n}&size={size}");
            let params: Vec<&str> = kept.iter().copied().chain([paging.as_str()]).collect();
            json!({ "href": format!("{href}?{}", params.join("&")) })
        };
        links["first"] = link(0);
        if page > 0 {
            links["prev"] = link((page - 1).min(pages - 1));
        }
        if page + 1 < pages {
            links["next"] = link(page + 1);
        }
        links["last"] = link(pages - 1);
    }
    links
}

/// A HAL page of `total` elements without its `_embedded`: `_links` and `page` (the spec's
/// `Page`).
fn paged(
    href: &str,
    query: Option<&str>,
    page: usize,
    size: usize,
    total: usize,
) -> Map<String, Value> {
    let pages = total.div_ceil(size.max(1));
    let mut body = Map::new();
    body.insert("_links".into(), page_links(href, query, page, size, pages));
    body.insert(
        "page".into(),
        json!({ "size": size, "totalElements": total, "totalPages": pages, "number": page }),
    );
    body
}

#[derive(Deserialize)]
struct UpdatesQuery {
    oppdateringsid: Option<i64>,
    dato: Option<String>,
    size: Option<usize>,
    page: Option<usize>,
}

/// One entry of an updates page (`OppdateringerEnhet`, `OppdateringerUnderenhet`), its link
/// named after the kind of unit.
fn update_entry(update: &UpdateRecord, unit: &Unit, base: &str) -> Value {
    let link = match unit.list {
        List::Enheter => "enhet",
        List::Underenheter => "underenhet",
    };
    json!({
        "oppdateringsid": update.id,
        "dato": update.at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        "organisasjonsnummer": unit.number,
        "endringstype": update.change,
        "_links": { link: { "href": format!("{base}/{}/{}", unit.list.path(), unit.number) } }
    })
}

/// `GET /oppdateringer/{list}`: a page of the list's updates from `oppdateringsid` or `dato` on.
async fn updates(
    State(shared): AppState,
    Path(list): Path<String>,
    RawQuery(raw): RawQuery,
    query: Result<Query<UpdatesQuery>, QueryRejection>,
) -> Response {
    let path = format!("/oppdateringer/{list}");
    let Some(kind) = list_of(&list) else {
        return problem(
            StatusCode::NOT_FOUND,
            &path,
            format!("no updates list {list}"),
        );
    };
    let q = match query {
        Ok(Query(q)) => q,
        Err(e) => return bad_request(&path, &[], raw.as_deref(), e.body_text()),
    };
    let size = q.size.unwrap_or(DEFAULT_SIZE);
    if !(1..=MAX_SIZE).contains(&size) {
        return bad_request(
            &path,
            &["size"],
            Some(size.to_string().as_str()),
            format!("size must be between 1 and {MAX_SIZE}"),
        );
    }
    let since = match q.dato.as_deref().map(DateTime::parse_from_rfc3339) {
        None => None,
        Some(Ok(t)) => Some(t.with_timezone(&Utc)),
        Some(Err(e)) => {
            return bad_request(&path, &["dato"], q.dato.as_deref(), format!("dato: {e}"));
        }
    };
    let page = q.page.unwrap_or(0);
    let base = base_url();
    let units = shared.units();
    // Both ids and times increase along a list: the start is found by binary search, so a
    // request costs its page, not the list.
    let all = units.list(kind);
    let from = all
        .partition_point(|u| q.oppdateringsid.is_some_and(|id| u.id < id))
        .max(all.partition_point(|u| since.is_some_and(|t| u.at < t)));
    let matching = &all[from..];
    let entries: Vec<Value> = matching
        .iter()
        .skip(page.saturating_mul(size))
        .take(size)
        .map(|u| update_entry(u, &units.units[u.unit], &base))
        .collect();
    let mut body = paged(
        &format!("{base}{path}"),
        raw.as_deref(),
        page,
        size,
        matching.len(),
    );
    if !entries.is_empty() {
        let key = match kind {
            List::Enheter => "oppdaterteEnheter",
            List::Underenheter => "oppdaterteUnderenheter",
        };
        body.insert("_embedded".into(), json!({ key: entries }));
    }
    Json(Value::Object(body)).into_response()
}

/// `GET /{list}/{number}`: the unit (`Enhet`, `Underenhet`), a deleted unit in its fewer
/// attributes (`SlettetEnhet`, `SlettetUnderenhet`), 410 for a removed one (`GoneEnhet`,
/// `GoneUnderenhet`), 404 for one never registered.
async fn unit(State(shared): AppState, Path((list, number)): Path<(String, String)>) -> Response {
    let path = format!("/{list}/{number}");
    let Some(kind) = list_of(&list) else {
        return problem(StatusCode::NOT_FOUND, &path, format!("no list {list}"));
    };
    let base = base_url();
    let units = shared.units();
    match units.find(kind, &number) {
        Some(u) if u.removed => {
            let body = gone(u, &base, Utc::now().date_naive());
            (StatusCode::GONE, Json(body)).into_response()
        }
        Some(u) => Json(document(u, &base)).into_response(),
        None => problem(StatusCode::NOT_FOUND, &path, format!("no unit {number}")),
    }
}

#[derive(Deserialize)]
struct UnitsQuery {
    organisasjonsnummer: Option<String>,
    size: Option<usize>,
    page: Option<usize>,
}

/// The organisation numbers of a comma-separated list, trimmed, sorted, each once.
fn numbers(list: Option<&str>) -> Vec<&str> {
    let mut numbers: Vec<&str> = list
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .collect();
    numbers.sort_unstable();
    numbers.dedup();
    numbers
}

/// `GET /{list}?organisasjonsnummer=a,b,...`: a page of the units asked for, as they are
/// (`Enhet`, `Underenhet`). The search gives only units in the register: a deleted unit is
/// read on its own (its `slettedato` is no attribute of an `Enhet`), a removed one is gone.
async fn units(
    State(shared): AppState,
    Path(list): Path<String>,
    RawQuery(raw): RawQuery,
    query: Result<Query<UnitsQuery>, QueryRejection>,
) -> Response {
    let path = format!("/{list}");
    let Some(kind) = list_of(&list) else {
        return problem(StatusCode::NOT_FOUND, &path, format!("no list {list}"));
    };
    let q = match query {
        Ok(Query(q)) => q,
        Err(e) => return bad_request(&path, &[], raw.as_deref(), e.body_text()),
    };
    let wanted = numbers(q.organisasjonsnummer.as_deref());
    let size = q.size.unwrap_or(DEFAULT_SIZE).min(MAX_SIZE);
    let page = q.page.unwrap_or(0);
    let base = base_url();
    let units = shared.units();
    let served: Vec<&Unit> = wanted
        .iter()
        .filter_map(|n| units.find(kind, n))
        .filter(|u| !u.removed && u.deleted.is_none())
        .collect();
    let found: Vec<Value> = served
        .iter()
        .skip(page.saturating_mul(size))
        .take(size)
        .map(|u| document(u, &base))
        .collect();
    let mut body = paged(
        &format!("{base}{path}"),
        raw.as_deref(),
        page,
        size,
        served.len(),
    );
    if !found.is_empty() {
        let key = kind.path();
        body.insert("_embedded".into(), json!({ key: found }));
    }
    Json(Value::Object(body)).into_response()
}

/// Units rendered per hold of the register's lock while a download streams.
const DOWNLOAD_CHUNK: usize = 2_000;

/// `GET /{list}/lastned`: every unit the list serves (removed ones not, deleted ones in their
/// fewer attributes), as one gzipped JSON array in order of registration, built as it is sent:
/// the register is read a chunk at a time, never rendered whole. `Last-Modified` says when it
/// was taken.
async fn download(State(shared): State<Arc<Shared>>, Path(list): Path<String>) -> Response {
    let Some(kind) = list_of(&list) else {
        return problem(
            StatusCode::NOT_FOUND,
            &format!("/{list}/lastned"),
            format!("no list {list}"),
        );
    };
    let taken = Utc::now();
    let count = shared.units().units.len();
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(4);
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let base = base_url();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let mut first = true;
        let send = |gz: &mut flate2::write::GzEncoder<Vec<u8>>| {
            let out = std::mem::take(gz.get_mut());
            out.is_empty() || tx.blocking_send(Ok(bytes::Bytes::from(out))).is_ok()
        };
        let _ = gz.write_all(b"[");
        for start in (0..count).step_by(DOWNLOAD_CHUNK) {
            let docs: Vec<Value> = {
                let units = shared.units();
                units.units[start..(start + DOWNLOAD_CHUNK).min(count)]
                    .iter()
                    .filter(|u| u.list == kind && !u.removed)
                    .map(|u| document(u, &base))
                    .collect()
            };
            for doc in docs {
                if !first {
                    let _ = gz.write_all(b",");
                }
                first = false;
                let _ = serde_json::to_writer(&mut gz, &doc);
            }
            if !send(&mut gz) {
                return;
            }
        }
        let _ = gz.write_all(b"]");
        if let Ok(rest) = gz.finish() {
            let _ = tx.blocking_send(Ok(bytes::Bytes::from(rest)));
        }
    });
    let body = axum::body::Body::from_stream(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    }));
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static(
            "application/vnd.brreg.enhetsregisteret.enhet.v2+gzip;charset=UTF-8",
        ),
    );
    if let Ok(v) =
        axum::http::HeaderValue::from_str(&taken.format("%a, %d %b %Y %H:%M:%S GMT").to_string())
    {
        headers.insert(axum::http::header::LAST_MODIFIED, v);
    }
    response
}
