//! The bulk download read as it arrives: the gzipped body is unpacked and the JSON array's
//! units parsed one at a time on a blocking thread, handed over in chunks through a bounded
//! channel. The whole file (about a gigabyte unpacked for enheter) is never in memory: at most
//! a few body chunks and two chunks of units.

use std::io::Read;

use bytes::Bytes;
use futures::StreamExt;
use serde::de::{Deserializer, SeqAccess, Visitor};
use serde_json::Value;
use tokio::sync::mpsc;

use crate::IngestError;
use crate::brreg::client::Download;

/// Body chunks waiting to be unpacked, at most.
const BODY_CHUNKS: usize = 16;

/// The units of a download, `chunk` at a time (the last may be shorter); an error ends it.
pub fn units(
    download: Download,
    chunk: usize,
    shown: String,
) -> mpsc::Receiver<Result<Vec<Value>, IngestError>> {
    let (body_tx, body_rx) = mpsc::channel::<Result<Bytes, IngestError>>(BODY_CHUNKS);
    let (units_tx, units_rx) = mpsc::channel(1);
    let mut body = download.body;
    tokio::spawn(async move {
        while let Some(part) = body.next().await {
            let failed = part.is_err();
            if body_tx.send(part).await.is_err() || failed {
                break;
            }
        }
    });
    tokio::task::spawn_blocking(move || {
        let reader = ChannelReader {
            rx: body_rx,
            current: Bytes::new(),
            error: None,
        };
        let mut gz = flate2::read::MultiGzDecoder::new(reader);
        let parse = |gz: &mut flate2::read::MultiGzDecoder<ChannelReader>| {
            let mut de = serde_json::Deserializer::from_reader(std::io::BufReader::with_capacity(
                1 << 16,
                gz,
            ));
            let sent = de.deserialize_seq(Chunks {
                tx: &units_tx,
                chunk: chunk.max(1),
            });
            sent.and_then(|()| de.end())
        };
        let result = parse(&mut gz);
        if let Err(e) = result {
            // The download's own failure says more than the parser's view of it.
            let error = gz
                .get_mut()
                .error
                .take()
                .unwrap_or_else(|| IngestError::Response {
                    source_name: crate::brreg::client::SOURCE,
                    url: shown,
                    reason: format!("the bulk file is not a gzipped JSON array of units: {e}"),
                });
            let _ = units_tx.blocking_send(Err(error));
        }
    });
    units_rx
}

/// The body's chunks as a byte stream, read on a blocking thread.
struct ChannelReader {
    rx: mpsc::Receiver<Result<Bytes, IngestError>>,
    current: Bytes,
    error: Option<IngestError>,
}

impl Read for ChannelReader {
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

/// Visits the array's elements, sending them on in chunks.
struct Chunks<'a> {
    tx: &'a mpsc::Sender<Result<Vec<Value>, IngestError>>,
    chunk: usize,
}

impl<'de> Visitor<'de> for Chunks<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON array of units")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut units = Vec::with_capacity(self.chunk);
        while let Some(unit) = seq.next_element::<Value>()? {
            units.push(unit);
            if units.len() == self.chunk {
                let full = std::mem::replace(&mut units, Vec::with_capacity(self.chunk));
                if self.tx.blocking_send(Ok(full)).is_err() {
                    return Err(serde::de::Error::custom("the reader stopped"));
                }
            }
        }
        if !units.is_empty() && self.tx.blocking_send(Ok(units)).is_err() {
            return Err(serde::de::Error::custom("the reader stopped"));
        }
        Ok(())
    }
}
