//! The HTTP surface: the register's paths and JSON shapes under
//! `/folkeregisteret/offentlig-med-hjemmel/api`, the retention of the feed, and truth endpoints
//! under `/simulator/v1` that the real register does not have. Faults come from [`crate::faults`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::NaiveDate;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::Config;
use crate::faults::{self, Faults};
use crate::options::{ExpiredFeed, ExtractIds};
use crate::world::{World, document_id, parse_document_id};

/// The path prefix of the "offentlig med hjemmel" rights package.
pub const BASE: &str = "/folkeregisteret/offentlig-med-hjemmel/api";
/// Feed pages hold at most this many entries, as the register's do.
pub const PAGE: usize = 1000;
/// At most this many ids per bulk lookup.
pub const MAX_BULK: usize = 1000;
/// Extract batches hold this many persons.
pub const EXTRACT_BATCH: u32 = 1000;

/// An extract job.
#[derive(Debug, Clone)]
enum Job {
    /// Everyone who existed at a sequence number: persons `0..persons`.
    Complete {
        seq: i64,
        persons: u32,
        created: Instant,
    },
    /// A custom extract: the matching persons, listed at creation.
    Custom {
        seq: i64,
        persons: Vec<u32>,
        created: Instant,
    },
}

/// Shared server state.
#[derive(Debug)]
pub struct Shared {
    /// The register.
    pub world: RwLock<World>,
    /// The business register, its units at the population's addresses.
    pub brreg: RwLock<crate::brreg::Units>,
    /// The property register, built the first time it is asked for.
    pub matrikkel: RwLock<Option<crate::matrikkel::Registry>>,
    seed: u64,
    jobs: Mutex<HashMap<String, Job>>,
    pub(crate) faults: Faults,
    retain_events: Option<u64>,
    expired_feed: ExpiredFeed,
    extract_ids: ExtractIds,
}

impl Shared {
    /// State around a world, answering as `config` says (faults, retention, extract arrays).
    pub fn new(world: World, config: &Config) -> Arc<Self> {
        let units = config.units.unwrap_or((config.persons / 20).max(10));
        let brreg = crate::brreg::Units::new(units, config.seed, &world, chrono::Utc::now());
        Arc::new(Self {
            brreg: RwLock::new(brreg),
            world: RwLock::new(world),
            matrikkel: RwLock::new(None),
            seed: config.seed,
            jobs: Mutex::new(HashMap::new()),
            faults: Faults::new(config.faults, config.seed),
            retain_events: config.retain_events,
            expired_feed: config.expired_feed,
            extract_ids: config.extract_ids,
        })
    }

    /// The business register, for reading.
    pub(crate) fn units(&self) -> std::sync::RwLockReadGuard<'_, crate::brreg::Units> {
        self.brreg
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs `f` on the property register, building it from the population's and the
    /// business register's current addresses first if it is not built yet. Locks are taken in
    /// the order the change producer takes them: world, business register, property register.
    pub(crate) fn property<T>(&self, f: impl FnOnce(&crate::matrikkel::Registry) -> T) -> T {
        {
            let registry = self
                .matrikkel
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(r) = registry.as_ref() {
                return f(r);
            }
        }
        let world = self.read();
        let units = self.units();
        let mut registry = self
            .matrikkel
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let built = registry.get_or_insert_with(|| {
            let persons = (0..world.population.cores.len() as u32)
                .filter_map(|i| world.current(i).and_then(|p| p.residence().cloned()));
            let firms = units
                .units
                .iter()
                .filter(|u| !u.removed)
                .map(|u| u.address.clone());
            let all: Vec<crate::person::Residence> = persons.chain(firms).collect();
            crate::matrikkel::Registry::new(self.seed, &all, chrono::Utc::now())
        });
        f(built)
    }

    pub(crate) fn read(&self) -> std::sync::RwLockReadGuard<'_, World> {
        self.world
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

type AppState = State<Arc<Shared>>;

/// The register's error body (`kode`/`melding` and the spec's `feilkode`/`feilmelding`/
/// `httpStatus`) with `status`.
pub(crate) fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    let message = message.into();
    let body = json!({ "kode": code, "melding": message, "feilkode": code, "feilmelding": message, "httpStatus": status.as_u16() });
    (status, Json(body)).into_response()
}

/// The router.
pub fn router(shared: Arc<Shared>) -> Router {
    let api = Router::new()
        .route("/v1/hendelser/feed", get(feed))
        .route("/v1/hendelser/siste/sekvensnummer", get(head))
        .route("/v1/hendelser/{id}", get(event_document))
        .route("/v1/personer/bulkoppslag", post(bulk))
        .route("/v1/personer/bulkoppslag/arkiv", post(bulk_archive))
        .route("/v1/personer/{id}", get(person))
        .route("/v1/uttrekk/komplett", get(extract_complete))
        .route("/v1/uttrekk/tilpasset", post(extract_custom))
        .route("/v1/uttrekk/{jobbid}/batch/{n}", get(extract_batch))
        .layer(middleware::from_fn_with_state(
            shared.clone(),
            faults::middleware,
        ));
    let brreg = crate::brreg_http::routes().layer(middleware::from_fn_with_state(
        shared.clone(),
        faults::brreg_middleware,
    ));
    let matrikkel = crate::matrikkel_http::routes().layer(middleware::from_fn_with_state(
        shared.clone(),
        faults::matrikkel_middleware,
    ));
    Router::new()
        .nest(BASE, api)
        .nest(crate::matrikkel_http::MATRIKKEL_BASE, matrikkel)
        .nest(crate::brreg_http::BRREG_BASE, brreg)
        .route("/simulator/v1/kohort", get(truth_cohort))
        .route("/simulator/v1/personer", get(truth_persons))
        .route("/simulator/v1/hendelser", post(crate::backlog::produce))
        .route(
            crate::matrikkel_http::ADDRESS_FILE,
            get(crate::matrikkel_http::addresses),
        )
        .with_state(shared)
}

#[derive(Deserialize)]
struct SeqQuery {
    seq: Option<i64>,
}

/// The register's answer to a position older than it keeps: 406 with its error body.
fn expired(what: &str, asked: i64, oldest: i64) -> Response {
    error(
        StatusCode::NOT_ACCEPTABLE,
        "FREG-406",
        format!(
            "{what} {asked} er eldre enn oppbevaringstiden for hendelser; eldste tilgjengelige sekvensnummer er {oldest}"
        ),
    )
}

async fn feed(State(s): AppState, Query(q): Query<SeqQuery>, headers: HeaderMap) -> Response {
    let Some(asked) = q.seq else {
        return error(StatusCode::BAD_REQUEST, "FREG-002", "seq mangler");
    };
    if let Some(r) = s.faults.maintenance() {
        return r;
    }
    let (etag, mut entries, held_back) = {
        let w = s.read();
        let from = match w.oldest_retained(s.retain_events) {
            Some(oldest) if asked < oldest => match s.expired_feed {
                ExpiredFeed::NotAcceptable => return expired("sekvensnummer", asked, oldest),
                ExpiredFeed::Gone => oldest,
            },
            _ => asked.max(1),
        };
        let start = usize::try_from(from - 1)
            .unwrap_or(usize::MAX)
            .min(w.feed.len());
        let page = &w.feed[start..(start + PAGE).min(w.feed.len())];
        let etag = format!("\"{from}-{}\"", page.len());
        if headers
            .get(header::IF_NONE_MATCH)
            .is_some_and(|v| v.as_bytes() == etag.as_bytes())
        {
            return StatusCode::NOT_MODIFIED.into_response();
        }
        let seqs: Vec<i64> = page.iter().map(|e| e.seq).collect();
        // Fault: an entry whose sequence number is allocated but that is not visible yet.
        let held_back = s.faults.in_flight(&seqs);
        let entries: Vec<Value> = page
            .iter()
            .enumerate()
            .filter(|(i, _)| Some(*i) != held_back)
            .map(|(_, e)| {
                let id = w.population.id_of(e.person);
                json!({
                    "sekvensnummer": e.seq,
                    "hendelse": {
                        "folkeregisteridentifikator": id,
                        "hendelsetype": e.event_type,
                        "hendelsesdokument": format!("{:032x}", e.seq),
                        "persondokument": document_id(e.person, e.version),
                        "ajourholdstidspunkt": e.at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                    }
                })
            })
            .collect();
        (etag, entries, held_back.is_some())
    };
    // Fault: a repeated entry, as feeds sometimes serve.
    if let Some(i) = s.faults.repeat(entries.len()) {
        let dup = entries[i].clone();
        entries.insert(i + 1, dup);
    }
    let mut r = Json(entries).into_response();
    // A page with an entry held back is not the page this tag names: a client that sent the tag
    // back would be told nothing changed and never see the entry.
    if !held_back {
        r.headers_mut()
            .insert(header::ETAG, HeaderValue::from_str(&etag).expect("ascii"));
    }
    r
}

async fn head(State(s): AppState) -> Response {
    Json(s.read().head()).into_response()
}

async fn event_document(State(s): AppState, Path(id): Path<String>) -> Response {
    let w = s.read();
    let seq = i64::from_str_radix(&id, 16)
        .ok()
        .filter(|n| *n >= w.oldest_retained(s.retain_events).unwrap_or(1) && *n <= w.head());
    let Some(e) = seq.and_then(|n| w.feed.get(n as usize - 1)) else {
        return error(
            StatusCode::NOT_FOUND,
            "FREG-404",
            format!("ukjent hendelse {id}"),
        );
    };
    Json(json!({
        "dokumentidentifikator": id,
        "skjemaversjon": "1.4",
        "hendelse": {
            "hendelsestype": e.event_type,
            "folkeregisteridentifikator": w.population.id_of(e.person),
            "ajourholdstidspunkt": e.at.to_rfc3339(),
        }
    }))
    .into_response()
}

async fn person(State(s): AppState, Path(id): Path<String>) -> Response {
    let w = s.read();
    match w.population.index_of(&id).and_then(|i| w.current(i)) {
        Some(state) => Json(state.document()).into_response(),
        None => error(StatusCode::NOT_FOUND, "FREG-404", "ukjent person"),
    }
}

#[derive(Deserialize)]
struct BulkRequest {
    #[serde(rename = "foedselsEllerDNummer", default)]
    ids: Vec<String>,
}

/// The bulk-lookup envelope for up to [`MAX_BULK`] keys, each answered by `answer`.
fn envelope(keys: &[String], answer: impl Fn(&str) -> Value) -> Response {
    if keys.len() > MAX_BULK {
        return error(
            StatusCode::BAD_REQUEST,
            "FREG-003",
            format!("maks {MAX_BULK} identifikatorer"),
        );
    }
    // Each answer is written as soon as it is made, so only one document's tree is alive at a
    // time (a thousand of them at once, then freed, was most of a lookup's cost).
    let mut body = Vec::with_capacity(keys.len() * 4096);
    body.extend_from_slice(br#"{"oppslag":["#);
    for (i, key) in keys.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        serde_json::to_writer(&mut body, &answer(key)).expect("a JSON value serialises");
    }
    body.extend_from_slice(b"]}");
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

async fn bulk(State(s): AppState, Json(req): Json<BulkRequest>) -> Response {
    if let Some(r) = s.faults.maintenance() {
        return r;
    }
    let w = s.read();
    envelope(&req.ids, |id| {
        match w.population.index_of(id).and_then(|i| w.current(i)) {
            Some(state) => {
                json!({ "foedselsEllerDNummer": id, "folkeregisterperson": state.document() })
            }
            None => {
                json!({ "foedselsEllerDNummer": id, "feilmelding": { "feilmelding": "Fant ikke person" } })
            }
        }
    })
}

#[derive(Deserialize)]
struct ArchiveRequest {
    #[serde(default)]
    dokumentidentifikator: Vec<String>,
}

async fn bulk_archive(State(s): AppState, Json(req): Json<ArchiveRequest>) -> Response {
    if let Some(r) = s.faults.maintenance() {
        return r;
    }
    let w = s.read();
    envelope(&req.dokumentidentifikator, |doc| {
        match parse_document_id(doc).and_then(|(p, v)| w.state(p, v)) {
            Some(state) => {
                json!({ "foedselsEllerDNummer": state.id, "dokumentidentifikator": doc, "folkeregisterperson": state.document() })
            }
            None => {
                json!({ "dokumentidentifikator": doc, "feilmelding": { "feilmelding": "Fant ikke dokument" } })
            }
        }
    })
}

#[derive(Deserialize)]
struct ExtractQuery {
    feedsekvensnr: Option<String>,
}

fn new_job(s: &Shared, job: Job) -> Response {
    let mut jobs = s
        .jobs
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let id = format!("{:08x}-{:04x}", jobs.len() + 1, rand::random::<u16>());
    jobs.insert(id.clone(), job);
    Json(json!({ "jobbId": id })).into_response()
}

async fn extract_complete(State(s): AppState, Query(q): Query<ExtractQuery>) -> Response {
    let (seq, persons) = {
        let w = s.read();
        let head = w.head();
        let seq = match q.feedsekvensnr.as_deref().map(str::parse::<i64>) {
            None => head,
            Some(Ok(n)) => match w.oldest_retained(s.retain_events) {
                Some(oldest) if n < oldest => return expired("feedsekvensnr", n, oldest),
                _ => n.min(head),
            },
            Some(Err(_)) => {
                return error(StatusCode::BAD_REQUEST, "FREG-002", "ugyldig feedsekvensnr");
            }
        };
        (seq, w.persons_at(seq))
    };
    new_job(
        &s,
        Job::Complete {
            seq,
            persons,
            created: Instant::now(),
        },
    )
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CustomRequest {
    personstatustyper: Vec<String>,
    kommunenummer: Option<KommuneFilter>,
    foedselsaar_fra_og_med: Option<String>,
    foedselsaar_til_og_med: Option<String>,
    kjoenn: Option<String>,
    statsborgerskap: Option<String>,
}

#[derive(Deserialize)]
struct KommuneFilter {
    bostedskommunenummer: Option<String>,
}

async fn extract_custom(State(s): AppState, Json(req): Json<CustomRequest>) -> Response {
    let year = |v: &Option<String>| v.as_deref().and_then(|y| y.parse::<i32>().ok());
    let (from, to) = (
        year(&req.foedselsaar_fra_og_med),
        year(&req.foedselsaar_til_og_med),
    );
    let kommune = req.kommunenummer.and_then(|k| k.bostedskommunenummer);
    let (seq, persons) = {
        let w = s.read();
        let persons = (0..w.population.cores.len() as u32)
            .filter(|i| {
                let Some(p) = w.current(*i) else { return false };
                use chrono::Datelike;
                let y = p.birth.year();
                req.personstatustyper.iter().any(|st| st == p.status())
                    && from.is_none_or(|f| y >= f)
                    && to.is_none_or(|t| y <= t)
                    && req
                        .kjoenn
                        .as_deref()
                        .is_none_or(|k| (k == "kvinne") == p.female)
                    && req
                        .statsborgerskap
                        .as_deref()
                        .is_none_or(|c| c == p.citizenship)
                    && kommune
                        .as_deref()
                        .is_none_or(|k| p.residence().is_some_and(|r| r.kommune == k))
            })
            .collect();
        (w.head(), persons)
    };
    new_job(
        &s,
        Job::Custom {
            seq,
            persons,
            created: Instant::now(),
        },
    )
}

/// A job's batches are ready this long after it was made (404 before, as the register answers).
const JOB_READY_AFTER: Duration = Duration::from_millis(200);

async fn extract_batch(State(s): AppState, Path((job, n)): Path<(String, u32)>) -> Response {
    if let Some(r) = s.faults.maintenance() {
        return r;
    }
    let Some(job) = s
        .jobs
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get(&job)
        .cloned()
    else {
        return error(StatusCode::GONE, "FREG-410", "jobben finnes ikke lenger");
    };
    let (created, seq) = match &job {
        Job::Complete { created, seq, .. } | Job::Custom { created, seq, .. } => (*created, *seq),
    };
    if created.elapsed() < JOB_READY_AFTER {
        return error(StatusCode::NOT_FOUND, "FREG-404", "batchen er ikke klar");
    }
    let w = s.read();
    let members: Vec<u32> = match &job {
        Job::Complete { persons, .. } => {
            let lo = n.saturating_mul(EXTRACT_BATCH);
            (lo..lo.saturating_add(EXTRACT_BATCH).min(*persons)).collect()
        }
        Job::Custom { persons, .. } => persons
            .iter()
            .skip((n * EXTRACT_BATCH) as usize)
            .take(EXTRACT_BATCH as usize)
            .copied()
            .collect(),
    };
    if members.is_empty() {
        return Json(json!({})).into_response();
    }
    // Fault: a batch with the ids only, which the spec allows.
    let arrays = if s.faults.ids_only() {
        ExtractIds::Ids
    } else {
        s.extract_ids
    };
    let mut batch = serde_json::Map::new();
    if arrays.ids() {
        let ids: Vec<String> = members.iter().map(|i| w.population.id_of(*i)).collect();
        batch.insert("foedselsEllerDNummer".into(), json!(ids));
    }
    if arrays.documents() {
        let docs: Vec<String> = members
            .iter()
            .map(|i| document_id(*i, w.version_at(*i, seq).unwrap_or(0)))
            .collect();
        batch.insert("dokumentidentifikator".into(), json!(docs));
    }
    Json(Value::Object(batch)).into_response()
}

#[derive(Deserialize)]
struct CohortQuery {
    kommunenummer: String,
    fra: NaiveDate,
    til: NaiveDate,
    status: Option<String>,
    dato: Option<NaiveDate>,
}

async fn truth_cohort(State(s): AppState, Query(q): Query<CohortQuery>) -> Response {
    let as_of = q.dato.map(|d| {
        (d + chrono::Duration::days(1))
            .and_hms_opt(0, 0, 0)
            .expect("midnight")
            .and_utc()
            - chrono::Duration::microseconds(1)
    });
    let ids = s
        .read()
        .cohort(&q.kommunenummer, q.fra, q.til, q.status.as_deref(), as_of);
    Json(json!({ "sekvensnummer": s.read().head(), "foedselsEllerDNummer": ids })).into_response()
}

/// Every person's current state in brief, one JSON object per line.
async fn truth_persons(State(s): AppState) -> Response {
    let w = s.read();
    let mut out = String::new();
    for i in 0..w.population.cores.len() as u32 {
        if let Some(p) = w.current(i) {
            let kommune = if p.strictly_protected() {
                None
            } else {
                p.residence().map(|r| r.kommune.clone())
            };
            // The street address only of an unprotected person: the truth the views across
            // registers are checked against.
            let adresse = p
                .residence()
                .filter(|_| p.protection == "ugradert")
                .and_then(|r| {
                    r.street.as_ref().map(|street| {
                        json!({"gate": street, "husnummer": r.number, "bokstav": r.letter.map(String::from)})
                    })
                });
            out.push_str(&json!({ "id": p.id, "status": p.status(), "kommune": kommune, "etternavn": p.family.to_uppercase(), "sivilstand": p.marital, "gradering": p.protection, "adresse": adresse }).to_string());
            out.push('\n');
        }
    }
    ([(header::CONTENT_TYPE, "application/x-ndjson")], out).into_response()
}
