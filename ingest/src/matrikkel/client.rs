//! The property register's change log and initial load (the JSON mirror of
//! `EndringsloggServiceWS` and `NedlastningService` the simulator serves), over [`Http`].

use chrono::{DateTime, Utc};
use reqwest::Method;
use serde_json::Value;
use transform::matrikkel::changes::{
    CLASSES, ChangePage, UnitsPage, read_changes, read_units_page,
};

use crate::IngestError;
use crate::config::Source;
use crate::http::Http;

pub(crate) const SOURCE: &str = "matrikkel";

/// The API's path when the pipeline does not give one.
pub const DEFAULT_API_PATH: &str = "/matrikkel/v1";

/// The register client.
#[derive(Debug, Clone)]
pub struct MatrikkelClient {
    http: Http,
    /// `kommunefilter` (empty: none).
    kommuner: String,
}

impl MatrikkelClient {
    /// A client for the source's base URL and API path, filtered to its kommuner.
    pub fn new(source: &Source) -> Result<Self, IngestError> {
        let path = source.api_path.as_deref().unwrap_or(DEFAULT_API_PATH);
        Ok(Self {
            http: Http::new(SOURCE, source, path)?,
            kommuner: source.kommuner.join(","),
        })
    }

    /// The HTTP settings (for the address file).
    pub fn http(&self) -> &Http {
        &self.http
    }

    fn filter(&self) -> String {
        if self.kommuner.is_empty() {
            String::new()
        } else {
            format!("&kommunefilter={}", self.kommuner)
        }
    }

    /// The newest change id (`findSisteEndringId`).
    pub async fn head(&self) -> Result<i64, IngestError> {
        let path = "/endringer/sisteEndringId";
        let url = self.http.shown(path);
        self.http
            .call(Method::GET, path, None, None, |_, _, b| {
                serde_json::from_slice::<Value>(b)
                    .ok()
                    .and_then(|v| v.get("sisteEndringId").and_then(Value::as_i64))
                    .ok_or_else(|| {
                        let shown: String = String::from_utf8_lossy(b).chars().take(200).collect();
                        self.http
                            .unreadable(url.clone(), format!("no sisteEndringId in {shown}"))
                    })
            })
            .await
    }

    /// Up to `max` changes after `after` (`findEndringer` with the changed objects).
    pub async fn changes(&self, after: i64, max: usize) -> Result<ChangePage, IngestError> {
        let path = format!(
            "/endringer?id={after}&domainklasse={}&returnerBobler=Alltid&maksAntall={max}{}",
            CLASSES.join(","),
            self.filter()
        );
        let url = self.http.shown(&path);
        self.http
            .call(Method::GET, &path, None, None, |_, _, b| {
                read_changes(b).map_err(|e| self.http.unreadable(url.clone(), e.to_string()))
            })
            .await
    }

    /// A page of the cadastral units' initial load, after unit id `after`.
    pub async fn units(&self, after: u64, max: usize) -> Result<UnitsPage, IngestError> {
        let path = format!(
            "/nedlastning/matrikkelenheter?etterId={after}&maksAntall={max}{}",
            self.filter()
        );
        let url = self.http.shown(&path);
        self.http
            .call(Method::GET, &path, None, None, |_, _, b| {
                read_units_page(b).map_err(|e| self.http.unreadable(url.clone(), e.to_string()))
            })
            .await
    }

    /// A position from which every change made at or after `cutoff` is read: the id of a change
    /// made before it (or the start of the log), found by bisecting the log up to `head` by its
    /// changes' times. Conservative: an earlier position only replays changes, which applying
    /// the objects' current states makes harmless.
    pub async fn position_before(
        &self,
        cutoff: DateTime<Utc>,
        head: i64,
    ) -> Result<i64, IngestError> {
        let (mut low, mut high) = (0i64, head);
        while high - low > 1 {
            let mid = low + (high - low) / 2;
            let page = self.changes(mid, 1).await?;
            match page.changes.first() {
                Some(c) if c.at.is_some_and(|t| t < cutoff) && c.id > low => low = c.id,
                _ => high = mid,
            }
        }
        Ok(low)
    }
}
