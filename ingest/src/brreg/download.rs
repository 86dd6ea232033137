//! The bulk download read as it arrives: the gzipped body is unpacked and the JSON array's
//! units parsed one at a time on a blocking thread, handed over in chunks through a bounded
//! channel. The whole file (about a gigabyte unpacked for enheter) is never in memory: at most
//! a few body chunks and two chunks of units.

use serde::de::{Deserializer, SeqAccess, Visitor};
use serde_json::Value;
use tokio::sync::mpsc;

use crate::IngestError;
use crate::stream::Download;

/// The units of a download, `chunk` at a time (the last may be shorter); an error ends it.
pub fn units(
    download: Download,
    chunk: usize,
    shown: String,
) -> mpsc::Receiver<Result<Vec<Value>, IngestError>> {
    let (units_tx, units_rx) = mpsc::channel(1);
    let reader = crate::stream::reader(download.body);
    tokio::task::spawn_blocking(move || {
        let mut gz = flate2::read::MultiGzDecoder::new(reader);
        let parse = |gz: &mut flate2::read::MultiGzDecoder<crate::stream::BodyReader>| {
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
