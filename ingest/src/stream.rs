//! Large files read as they arrive (the registers' bulk files): a GET whose body is handed
//! over chunk by chunk, with a timeout on stalls rather than on the whole transfer, and a
//! blocking [`Read`] over such a body for parsers that run on a blocking thread.

use std::io::Read;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use futures::stream::BoxStream;
use reqwest::{StatusCode, header};
use tokio::sync::mpsc;

use crate::IngestError;
use crate::http::redact;

/// The longest a whole download may take (chunks keep coming: see the idle timeout).
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// Body chunks waiting for the blocking reader, at most.
const BODY_CHUNKS: usize = 16;

/// A download as it arrives: when the file was built, and its body's chunks.
pub struct Download {
    /// `Last-Modified`, when the server says when the file was built.
    pub built: Option<DateTime<Utc>>,
    /// The body, chunk by chunk.
    pub body: BoxStream<'static, Result<Bytes, IngestError>>,
}

/// GETs `url` (accepting `accept`) and hands its body over as it arrives; a pause of `idle`
/// between two chunks is a failure. Any status but 200 is an error naming the URL.
pub async fn get(
    client: &reqwest::Client,
    source_name: &'static str,
    url: &str,
    accept: &str,
    idle: Duration,
) -> Result<Download, IngestError> {
    let shown = redact(url);
    let fail = |status: Option<u16>, reason: String| IngestError::Request {
        source_name,
        method: "GET",
        url: shown.clone(),
        status,
        reason,
    };
    let response = client
        .get(url)
        .header(header::ACCEPT, accept)
        .timeout(DOWNLOAD_TIMEOUT)
        .send()
        .await
        .map_err(|e| fail(None, e.without_url().to_string()))?;
    let status = response.status();
    if status != StatusCode::OK {
        let text = response.text().await.unwrap_or_default();
        let text: String = text.chars().take(300).collect();
        return Err(fail(
            Some(status.as_u16()),
            format!("HTTP {status}: {text}"),
        ));
    }
    let built = response
        .headers()
        .get(header::LAST_MODIFIED)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| DateTime::parse_from_rfc2822(v).ok())
        .map(|t| t.with_timezone(&Utc));
    let body = futures::stream::try_unfold(response, move |mut response| {
        let shown = shown.clone();
        async move {
            let broke = |reason: String| IngestError::Response {
                source_name,
                url: shown.clone(),
                reason,
            };
            let chunk = tokio::time::timeout(idle, response.chunk())
                .await
                .map_err(|_| broke(format!("the download stalled for {} s", idle.as_secs())))?;
            match chunk {
                Ok(Some(chunk)) => Ok(Some((chunk, response))),
                Ok(None) => Ok(None),
                Err(e) => Err(broke(format!(
                    "the download broke off: {}",
                    e.without_url()
                ))),
            }
        }
    })
    .boxed();
    Ok(Download { built, body })
}

/// A blocking reader of a body: a task forwards its chunks through a bounded channel. Read it
/// on a blocking thread; a failure of the body is a read error, kept in [`BodyReader::error`].
pub fn reader(mut body: BoxStream<'static, Result<Bytes, IngestError>>) -> BodyReader {
    let (tx, rx) = mpsc::channel::<Result<Bytes, IngestError>>(BODY_CHUNKS);
    tokio::spawn(async move {
        while let Some(part) = body.next().await {
            let failed = part.is_err();
            if tx.send(part).await.is_err() || failed {
                break;
            }
        }
    });
    BodyReader {
        rx,
        current: Bytes::new(),
        error: None,
    }
}

/// See [`reader`].
pub struct BodyReader {
    rx: mpsc::Receiver<Result<Bytes, IngestError>>,
    current: Bytes,
    /// The body's own failure, once a read has failed on it.
    pub error: Option<IngestError>,
}

impl Read for BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                None => return Ok(0),
                Some(Ok(bytes)) => self.current = bytes,
                Some(Err(e)) => {
                    let shown = e.to_string();
                    self.error = Some(e);
                    return Err(std::io::Error::other(shown));
                }
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}
