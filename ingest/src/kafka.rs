//! The Kafka side of the sink: producer and admin settings from the pipeline, topic creation,
//! recovery of what each partition already holds, and producing with Kafka's own partitioner.
//!
//! Exactly once on any broker (no transactions needed): messages of a topic are produced in
//! `(sequence, key)` order to a partition chosen from the key (Kafka's murmur2 partitioner), with
//! the idempotent producer, so each partition holds an increasing run of `(ce_sequence, key)`.
//! At start the last message of every partition is read back; anything at or below it is skipped.

use std::collections::HashMap;
use std::time::Duration;

use futures::future::try_join_all;
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Headers, Message as _, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use schemas::topics::Topic;
use tracing::{info, warn};
use transform::messages::Message;

use crate::IngestError;
use crate::config::KafkaConfig;

/// How long metadata and watermark calls may take.
const METADATA_TIMEOUT: Duration = Duration::from_secs(10);

/// Kafka's default partitioner hash (murmur2, as the Java client computes it).
pub fn murmur2(data: &[u8]) -> i32 {
    const M: u32 = 0x5bd1_e995;
    let mut h: u32 = 0x9747_b28c ^ (data.len() as u32);
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> 24;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M) ^ k;
    }
    let rest = chunks.remainder();
    if rest.len() >= 3 {
        h ^= u32::from(rest[2]) << 16;
    }
    if rest.len() >= 2 {
        h ^= u32::from(rest[1]) << 8;
    }
    if !rest.is_empty() {
        h ^= u32::from(rest[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// The partition of a key, as Kafka's default partitioner picks it.
pub fn partition_of(key: &str, partitions: i32) -> i32 {
    (murmur2(key.as_bytes()) & 0x7fff_ffff) % partitions.max(1)
}

/// Where a partition stands: the last `(sequence, key)` it holds.
pub type Positions = HashMap<i32, (i64, String)>;

fn error(brokers: &str, what: impl std::fmt::Display) -> IngestError {
    IngestError::Kafka {
        brokers: brokers.to_owned(),
        reason: what.to_string(),
    }
}

/// The common client settings (brokers, client id, security).
pub fn client_config(config: &KafkaConfig) -> Result<ClientConfig, IngestError> {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &config.brokers)
        .set("client.id", &config.client_id)
        .set("security.protocol", &config.security_protocol);
    if let Some(m) = &config.sasl_mechanism {
        c.set("sasl.mechanisms", m);
    }
    if let Some(u) = &config.sasl_username {
        c.set("sasl.username", u);
    }
    if let Some(var) = &config.sasl_password_env {
        let password = std::env::var(var).map_err(|_| {
            error(
                &config.brokers,
                format!("kafka.sasl_password_env: environment variable {var} is not set"),
            )
        })?;
        c.set("sasl.password", password);
    }
    if let Some(ca) = &config.ssl_ca_location {
        c.set("ssl.ca.location", ca.to_string_lossy());
    }
    Ok(c)
}

/// A connected sink.
pub struct KafkaSink {
    config: KafkaConfig,
    producer: FutureProducer,
    /// (topic settings, full topic name, partitions).
    topics: Vec<(Topic, String, i32)>,
}

impl std::fmt::Debug for KafkaSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSink")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl KafkaSink {
    /// Connects, and creates missing topics (or fails naming them, as configured).
    pub async fn connect(config: KafkaConfig, topics: &[Topic]) -> Result<Self, IngestError> {
        let brokers = config.brokers.clone();
        let producer: FutureProducer = client_config(&config)?
            .set("enable.idempotence", "true")
            .set("acks", "all")
            // While the broker is down, keep retrying: the sink's position does not move until
            // every message is acknowledged, and memory is bounded by the producer queue.
            .set("message.timeout.ms", "0")
            .set("queue.buffering.max.messages", "200000")
            .set("linger.ms", "20")
            .set("compression.type", "gzip")
            .create()
            .map_err(|e| error(&brokers, e))?;
        let admin: AdminClient<DefaultClientContext> = client_config(&config)?
            .create()
            .map_err(|e| error(&brokers, e))?;
        let names: Vec<(Topic, String)> = topics
            .iter()
            .map(|t| (*t, format!("{}{}", config.topic_prefix, t.name)))
            .collect();
        let metadata = {
            let p = producer.clone();
            tokio::task::spawn_blocking(move || p.client().fetch_metadata(None, METADATA_TIMEOUT))
                .await
                .map_err(|e| error(&brokers, e))?
                .map_err(|e| error(&brokers, format!("broker not reachable: {e}")))?
        };
        let existing: HashMap<String, i32> = metadata
            .topics()
            .iter()
            .filter(|t| t.error().is_none())
            .map(|t| (t.name().to_owned(), t.partitions().len() as i32))
            .collect();
        let missing: Vec<&(Topic, String)> = names
            .iter()
            .filter(|(_, n)| !existing.contains_key(n))
            .collect();
        if !missing.is_empty() {
            if !config.create_topics {
                let list: Vec<&str> = missing.iter().map(|(_, n)| n.as_str()).collect();
                return Err(error(
                    &brokers,
                    format!("topics {list:?} do not exist and kafka.create_topics is false"),
                ));
            }
            let partitions: Vec<i32> = missing
                .iter()
                .map(|(t, _)| config.partitions.unwrap_or(t.partitions))
                .collect();
            let new: Vec<NewTopic<'_>> = missing
                .iter()
                .zip(&partitions)
                .map(|((t, n), p)| {
                    let topic =
                        NewTopic::new(n, *p, TopicReplication::Fixed(config.replication_factor));
                    if t.compacted {
                        topic.set("cleanup.policy", "compact")
                    } else {
                        topic
                    }
                })
                .collect();
            let results = admin
                .create_topics(
                    new.iter(),
                    &AdminOptions::new().operation_timeout(Some(METADATA_TIMEOUT)),
                )
                .await
                .map_err(|e| error(&brokers, e))?;
            for r in results {
                match r {
                    Ok(name) => info!(topic = %name, "created topic"),
                    Err((name, RDKafkaErrorCode::TopicAlreadyExists)) => {
                        info!(topic = %name, "topic exists")
                    }
                    Err((name, code)) => {
                        return Err(error(&brokers, format!("creating topic {name}: {code}")));
                    }
                }
            }
        }
        let mut out = Vec::new();
        for (topic, name) in names {
            let partitions = match existing.get(&name) {
                Some(p) => *p,
                None => config.partitions.unwrap_or(topic.partitions),
            };
            out.push((topic, name, partitions));
        }
        Ok(Self {
            config,
            producer,
            topics: out,
        })
    }

    /// The full name and partition count of a topic.
    pub fn topic(&self, topic: &Topic) -> (&str, i32) {
        self.topics
            .iter()
            .find(|(t, _, _)| t.name == topic.name)
            .map(|(_, n, p)| (n.as_str(), *p))
            .expect("every topic is connected in KafkaSink::connect")
    }

    /// Reads back the last message of every partition of a topic.
    pub async fn positions(&self, topic: &Topic) -> Result<Positions, IngestError> {
        let (name, partitions) = self.topic(topic);
        let (name, brokers) = (name.to_owned(), self.config.brokers.clone());
        let consumer: BaseConsumer = client_config(&self.config)?
            .set("group.id", format!("{}-recovery", self.config.client_id))
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "true")
            .create()
            .map_err(|e| error(&brokers, e))?;
        tokio::task::spawn_blocking(move || {
            let mut out = Positions::new();
            for p in 0..partitions {
                let (low, high) = consumer.fetch_watermarks(&name, p, METADATA_TIMEOUT).map_err(|e| error(&brokers, format!("{name}/{p} watermarks: {e}")))?;
                // Read from the reported last offset to the partition's end: the largest
                // (sequence, key) seen is where the partition stands (robust to a broker that
                // reports the end of a partition a little early).
                let mut tpl = TopicPartitionList::new();
                tpl.add_partition_offset(&name, p, Offset::Offset((high - 1).max(low))).map_err(|e| error(&brokers, e))?;
                consumer.assign(&tpl).map_err(|e| error(&brokers, e))?;
                let deadline = std::time::Instant::now() + METADATA_TIMEOUT * 3;
                loop {
                    if std::time::Instant::now() > deadline {
                        return Err(error(&brokers, format!("{name}/{p}: could not read the partition's end back (from offset {})", high - 1)));
                    }
                    match consumer.poll(Duration::from_millis(500)) {
                        Some(Ok(m)) if m.partition() == p => {
                            let sequence = m
                                .headers()
                                .and_then(|h| h.iter().find(|h| h.key == "ce_sequence").and_then(|h| h.value).and_then(|v| std::str::from_utf8(v).ok()).and_then(|v| v.parse::<i64>().ok()))
                                .ok_or_else(|| error(&brokers, format!("{name}/{p} offset {}: no ce_sequence header: not written by regsync?", m.offset())))?;
                            let key = m.key().map(|k| String::from_utf8_lossy(k).into_owned()).unwrap_or_default();
                            let entry = out.entry(p).or_insert((sequence, key.clone()));
                            if (sequence, key.as_str()) > (entry.0, entry.1.as_str()) {
                                *entry = (sequence, key);
                            }
                        }
                        Some(Err(KafkaError::PartitionEOF(ep))) if ep == p => break,
                        Some(Ok(_)) | None => {}
                        Some(Err(e)) => warn!(topic = %name, partition = p, error = %e, "reading back the last message"),
                    }
                }
            }
            Ok(out)
        })
        .await
        .map_err(|e| error(&self.config.brokers, e))?
    }

    /// Produces messages (in `(sequence, key)` order) that their partition does not hold yet, and
    /// waits until the broker has acknowledged every one. Returns how many were produced.
    pub async fn produce(
        &self,
        topic: &Topic,
        messages: Vec<Message>,
        positions: &mut Positions,
    ) -> Result<u64, IngestError> {
        let (name, partitions) = self.topic(topic);
        let mut pending = Vec::with_capacity(messages.len());
        for m in messages {
            let partition = partition_of(&m.key, partitions);
            if positions
                .get(&partition)
                .is_some_and(|(seq, key)| (m.sequence, m.key.as_str()) <= (*seq, key.as_str()))
            {
                continue;
            }
            let mut headers = OwnedHeaders::new();
            for (k, v) in &m.headers {
                headers = headers.insert(Header {
                    key: k,
                    value: Some(v.as_bytes()),
                });
            }
            let mut record: FutureRecord<'_, String, Vec<u8>> = FutureRecord::to(name)
                .key(&m.key)
                .partition(partition)
                .headers(headers);
            if let Some(v) = &m.value {
                record = record.payload(v);
            }
            let delivery = loop {
                match self.producer.send_result(record) {
                    Ok(d) => break d,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                        record = r;
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    Err((e, _)) => {
                        return Err(error(
                            &self.config.brokers,
                            format!("producing to {name}: {e}"),
                        ));
                    }
                }
            };
            positions.insert(partition, (m.sequence, m.key.clone()));
            pending.push(delivery);
        }
        let n = pending.len() as u64;
        let results = try_join_all(pending).await.map_err(|_| {
            error(
                &self.config.brokers,
                format!("{name}: the producer was closed"),
            )
        })?;
        for r in results {
            if let Err((e, _)) = r {
                return Err(error(
                    &self.config.brokers,
                    format!("delivery to {name} failed: {e}"),
                ));
            }
        }
        Ok(n)
    }

    /// Drops what is queued or in flight (after a failure): nothing of it is delivered late,
    /// after the topics' ends have been read again.
    pub fn purge(&self) {
        self.producer
            .purge(rdkafka::producer::PurgeConfig::default().queue().inflight());
    }

    /// Waits for everything in flight.
    pub fn flush(&self) -> Result<(), IngestError> {
        self.producer
            .flush(Duration::from_secs(60))
            .map_err(|e| error(&self.config.brokers, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_matches_the_java_client() {
        // Test vectors from Kafka's own UtilsTest.
        assert_eq!(murmur2(b"21"), -973_932_308);
        assert_eq!(murmur2(b"foobar"), -790_332_482);
        assert_eq!(murmur2(b"a-little-bit-long-string"), -985_981_536);
        assert_eq!(murmur2(b"a-little-bit-longer-string"), -1_486_304_829);
        assert_eq!(
            murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8"),
            -58_897_971
        );
        assert_eq!(murmur2(b"abc"), 479_470_107);
    }
}

/// How `tail` prints messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TailFormat {
    /// `partition/offset key headers value`, one line each.
    Text,
    /// One JSON object per message: topic, partition, offset, key, headers, value.
    Json,
}

/// Prints a topic's messages with their headers: from the beginning or from now, until stopped or,
/// with `exit_at_end`, until every partition's end is reached.
pub fn tail(
    config: &KafkaConfig,
    topic: &str,
    from_beginning: bool,
    format: TailFormat,
    exit_at_end: bool,
    stop: &std::sync::atomic::AtomicBool,
    out: &mut dyn std::io::Write,
) -> Result<u64, IngestError> {
    let brokers = config.brokers.clone();
    let consumer: BaseConsumer = client_config(config)?
        .set("group.id", format!("{}-tail", config.client_id))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .create()
        .map_err(|e| error(&brokers, e))?;
    let metadata = consumer
        .fetch_metadata(Some(topic), METADATA_TIMEOUT)
        .map_err(|e| error(&brokers, e))?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .filter(|t| t.name() == topic && t.error().is_none())
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    if partitions.is_empty() {
        return Err(error(&brokers, format!("topic {topic} does not exist")));
    }
    let mut tpl = TopicPartitionList::new();
    for p in &partitions {
        tpl.add_partition_offset(
            topic,
            *p,
            if from_beginning {
                Offset::Beginning
            } else {
                Offset::End
            },
        )
        .map_err(|e| error(&brokers, e))?;
    }
    consumer.assign(&tpl).map_err(|e| error(&brokers, e))?;
    let mut at_end = std::collections::HashSet::new();
    let mut printed = 0u64;
    let write_err = |e: std::io::Error| error(&brokers, format!("writing output: {e}"));
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        match consumer.poll(Duration::from_millis(500)) {
            None => {}
            Some(Err(KafkaError::PartitionEOF(p))) => {
                at_end.insert(p);
                if exit_at_end && at_end.len() == partitions.len() {
                    break;
                }
            }
            Some(Err(e)) => return Err(error(&brokers, e)),
            Some(Ok(m)) => {
                at_end.remove(&m.partition());
                let headers: Vec<(String, String)> = m
                    .headers()
                    .map(|h| {
                        h.iter()
                            .map(|h| {
                                (
                                    h.key.to_owned(),
                                    h.value
                                        .map(|v| String::from_utf8_lossy(v).into_owned())
                                        .unwrap_or_default(),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let key = m.key().map(|k| String::from_utf8_lossy(k).into_owned());
                let value = m.payload().map(|v| String::from_utf8_lossy(v).into_owned());
                match format {
                    TailFormat::Json => {
                        let value_json = value.as_deref().map(|v| {
                            serde_json::from_str::<serde_json::Value>(v)
                                .unwrap_or(serde_json::Value::String(v.to_owned()))
                        });
                        let line = serde_json::json!({
                            "topic": topic, "partition": m.partition(), "offset": m.offset(), "timestamp_ms": m.timestamp().to_millis(), "key": key,
                            "headers": headers.iter().map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone()))).collect::<serde_json::Map<_, _>>(),
                            "value": value_json,
                        });
                        writeln!(out, "{line}").map_err(write_err)?;
                    }
                    TailFormat::Text => {
                        let h: Vec<String> =
                            headers.iter().map(|(k, v)| format!("{k}={v}")).collect();
                        writeln!(
                            out,
                            "{}/{} {} [{}] {}",
                            m.partition(),
                            m.offset(),
                            key.unwrap_or_default(),
                            h.join(" "),
                            value.unwrap_or_else(|| "<tombstone>".into())
                        )
                        .map_err(write_err)?;
                    }
                }
                printed += 1;
            }
        }
    }
    Ok(printed)
}
