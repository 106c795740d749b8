//! The Kafka side: librdkafka's producer (through `rdkafka`) with glint's fixed safety
//! settings, the user's passthrough settings, the start-up check, and the delivery reports.
//!
//! Fixed (a `--kafka-opt` cannot change them): `enable.idempotence=true` and `acks=all` (the
//! broker acknowledges only what all in-sync replicas hold, and a retried batch is never
//! written twice), `message.timeout.ms=0` (the client never gives up on a record: while the
//! brokers are down records wait, and the cursor waits with them). Tuned defaults a
//! `--kafka-opt` may override: `compression.type` from `--compression`, `linger.ms=20`,
//! `batch.size=1000000`, `batch.num.messages=10000`, reconnect back-off 100 ms to 10 s,
//! `allow.auto.create.topics=false` (a mistyped topic fails the start-up check).

use super::settings::{check_user_settings, FIXED_SETTINGS};
use rdkafka::client::ClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, DeliveryResult, Partitioner, ProducerContext};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// Which record a message carries: a stream index of the shipper and a seq.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageId {
    pub stream: u32,
    pub seq: u64,
}

/// One delivery report, copied out of librdkafka's callback.
#[derive(Debug)]
pub struct Report {
    pub id: MessageId,
    pub bytes: usize,
    /// `None`: the brokers acknowledged the message.
    pub error: Option<DeliveryError>,
}

/// A message the brokers did not take, with what is needed to retry or dead-letter it.
#[derive(Debug)]
pub struct DeliveryError {
    pub code: Option<RDKafkaErrorCode>,
    pub text: String,
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    pub timestamp_ms: Option<i64>,
    /// The brokers called it delivered without an offset (see [`OffsetlessRuns`]): produced
    /// again, because nothing shows the topic holds it.
    pub unconfirmed: bool,
}

impl DeliveryError {
    /// The record is larger than the brokers (or `message.max.bytes`) accept: retrying cannot help.
    pub fn too_large(&self) -> bool {
        self.code == Some(RDKafkaErrorCode::MessageSizeTooLarge)
    }
}

/// What librdkafka said about the connection, newest last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BrokerEvent {
    AllDown(String),
    Fatal(String),
}

/// Collects delivery reports and client errors; the shipper drains them after each poll.
#[derive(Default)]
pub struct ShipContext {
    pub reports: Mutex<Vec<Report>>,
    pub events: Mutex<Vec<BrokerEvent>>,
    offsetless: Mutex<OffsetlessRuns>,
    streams: StreamPartitioner,
}

/// Finds the "successful" delivery reports that carry no offset.
///
/// When a batch is retried (its first send got no answer, e.g. the broker went down) and the
/// broker answers `DUPLICATE_SEQUENCE_NUMBER`, librdkafka marks the batch delivered although
/// the broker gave no offset: the batch's first message reports offset -1 and the next ones
/// -1 + 1, -1 + 2, … (librdkafka numbers the batch from the missing base offset). A broker
/// that says so without holding the batch loses it silently: Tansu does after a restart
/// (issue 12: a retried batch answered as duplicate, and none of its keys on the topic). So
/// such a record is not counted as confirmed: it is produced again (same key; a duplicate if
/// the broker did hold it). Reports of one batch arrive one after another per partition, so a
/// run starting at offset -1 and going on -1 + 1, -1 + 2, … is the offset-less batch; the
/// first other offset on that partition ends it.
#[derive(Debug, Default)]
pub struct OffsetlessRuns {
    /// Partition -> the offset the next report of the offset-less batch would carry.
    next: HashMap<i32, i64>,
}

impl OffsetlessRuns {
    /// True when a successful report at (`partition`, `offset`) has no real offset.
    pub fn unconfirmed(&mut self, partition: i32, offset: i64) -> bool {
        if offset < 0 {
            self.next.insert(partition, offset.saturating_add(1));
            return true;
        }
        match self.next.get_mut(&partition) {
            Some(next) if *next == offset => {
                *next += 1;
                true
            }
            Some(_) => {
                self.next.remove(&partition);
                false
            }
            None => false,
        }
    }
}

impl ClientContext for ShipContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        // Connection errors repeat every back-off while a broker is down; the shipper logs
        // one line per loss and recovery instead. Only librdkafka's own alarms pass.
        if matches!(
            level,
            RDKafkaLogLevel::Emerg | RDKafkaLogLevel::Alert | RDKafkaLogLevel::Critical
        ) {
            crate::error!("ship: librdkafka {fac}: {message}");
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        let event = match error.rdkafka_error_code() {
            Some(RDKafkaErrorCode::AllBrokersDown) => BrokerEvent::AllDown(reason.to_string()),
            Some(RDKafkaErrorCode::Fatal) => BrokerEvent::Fatal(reason.to_string()),
            _ => return,
        };
        if let Ok(mut events) = self.events.lock() {
            events.push(event);
        }
    }
}

/// Puts every record of one (instance, core) stream on the same partition, so the topic holds
/// each stream in seq order (the idempotent producer keeps order within a partition), while
/// the key stays the record's whole identity for compaction and deduplication. The partition
/// is CRC-32C of the key up to its last `:` (`INSTANCE_ID:CORE`), modulo the partition count:
/// the same after a shipper restart and on every box. Adding partitions to the topic moves
/// streams, as it does for any keyed producer.
#[derive(Default)]
pub struct StreamPartitioner;

impl StreamPartitioner {
    /// The partition of the stream that `key` belongs to, of `partitions`.
    pub fn stream_partition(key: &[u8], partitions: i32) -> i32 {
        let stream = match key.iter().rposition(|&b| b == b':') {
            Some(at) => &key[..at],
            None => key,
        };
        let n = u32::try_from(partitions).unwrap_or(1).max(1);
        // The remainder is below `partitions`, an i32, so it fits.
        i32::try_from(crc32c::crc32c(stream) % n).unwrap_or(0)
    }
}

impl Partitioner for StreamPartitioner {
    fn partition(
        &self,
        _topic: &str,
        key: Option<&[u8]>,
        partitions: i32,
        _available: impl Fn(i32) -> bool,
    ) -> i32 {
        // Never an unavailable-partition detour: that would break the stream's order; the
        // message waits for its partition's leader instead.
        Self::stream_partition(key.unwrap_or_default(), partitions)
    }
}

impl ProducerContext<StreamPartitioner> for ShipContext {
    type DeliveryOpaque = Box<MessageId>;

    fn get_custom_partitioner(&self) -> Option<&StreamPartitioner> {
        Some(&self.streams)
    }

    fn delivery(&self, result: &DeliveryResult<'_>, id: Box<MessageId>) {
        let unconfirmed = match result {
            Ok(m) => self
                .offsetless
                .lock()
                .map(|mut runs| runs.unconfirmed(m.partition(), m.offset()))
                .unwrap_or(true),
            Err(_) => false,
        };
        let report = match result {
            Ok(m) if unconfirmed => Report {
                id: *id,
                bytes: m.payload_len(),
                error: Some(DeliveryError {
                    code: None,
                    text: format!(
                        "partition {}: delivered without an offset (a retried batch the broker called a duplicate)",
                        m.partition()
                    ),
                    key: m.key().unwrap_or_default().to_vec(),
                    value: m.payload().unwrap_or_default().to_vec(),
                    timestamp_ms: m.timestamp().to_millis(),
                    unconfirmed: true,
                }),
            },
            Ok(m) => Report {
                id: *id,
                bytes: m.payload_len() + m.key().map_or(0, <[u8]>::len),
                error: None,
            },
            Err((e, m)) => Report {
                id: *id,
                bytes: m.payload_len(),
                error: Some(DeliveryError {
                    code: e.rdkafka_error_code(),
                    text: e.to_string(),
                    key: m.key().unwrap_or_default().to_vec(),
                    value: m.payload().unwrap_or_default().to_vec(),
                    timestamp_ms: m.timestamp().to_millis(),
                    unconfirmed: false,
                }),
            },
        };
        if let Ok(mut reports) = self.reports.lock() {
            reports.push(report);
        }
    }
}

/// The producer type the shipper uses.
pub type Producer = BaseProducer<ShipContext, StreamPartitioner>;

/// The client configuration: tuned defaults, then the user's settings, then the fixed ones.
pub fn client_config(
    brokers: &str,
    compression: &str,
    queue_messages: usize,
    user: &[(String, String)],
) -> Result<ClientConfig, String> {
    let mut cfg = ClientConfig::new();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    cfg.set("bootstrap.servers", brokers)
        .set("client.id", format!("glint-ship-{}", host.trim()))
        .set("compression.type", compression)
        .set("linger.ms", "20")
        .set("batch.size", "1000000")
        .set("batch.num.messages", "10000")
        .set("queue.buffering.max.messages", queue_messages.to_string())
        .set("reconnect.backoff.ms", "100")
        .set("reconnect.backoff.max.ms", "10000")
        .set("socket.keepalive.enable", "true")
        // A mistyped topic is an error at start, not a new topic.
        .set("allow.auto.create.topics", "false");
    check_user_settings(user)?;
    for (key, value) in user {
        cfg.set(key, value);
    }
    for (key, value) in FIXED_SETTINGS {
        cfg.set(key, value);
    }
    Ok(cfg)
}

/// Creates the producer and checks, within `timeout`, that the brokers answer and know the
/// topic. Every failure is one line naming the setting, the brokers or the topic.
pub fn connect(cfg: &ClientConfig, topic: &str, timeout: Duration) -> Result<Producer, String> {
    let brokers = cfg.get("bootstrap.servers").unwrap_or("").to_string();
    let producer: Producer = cfg
        .create_with_context(ShipContext::default())
        .map_err(|e| format!("kafka settings rejected by librdkafka: {}", one_line(&e)))?;
    let metadata = rdkafka::producer::Producer::client(&producer)
        .fetch_metadata(Some(topic), timeout)
        .map_err(|e| {
            format!(
                "cannot reach the brokers {brokers} within {:?}: {} (check --brokers, the network and the TLS/SASL settings)",
                timeout,
                one_line(&e)
            )
        })?;
    let found = metadata.topics().iter().find(|t| t.name() == topic);
    match found {
        Some(t) if t.error().is_none() && !t.partitions().is_empty() => Ok(producer),
        Some(t) => Err(format!(
            "topic {topic:?} is not usable on the brokers {brokers}: {} (create it first, e.g. with kafka-topics.sh --create --topic {topic})",
            t.error()
                .map(|e| format!("{:?}", RDKafkaErrorCode::from(e)))
                .unwrap_or_else(|| "no partitions".into())
        )),
        None => Err(format!(
            "topic {topic:?} does not exist on the brokers {brokers} (create it first, e.g. with kafka-topics.sh --create --topic {topic})"
        )),
    }
}

fn one_line(e: &KafkaError) -> String {
    e.to_string().replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::{OffsetlessRuns, StreamPartitioner};

    #[test]
    fn a_stream_keeps_one_partition_and_streams_spread_over_all() {
        let part = StreamPartitioner::stream_partition;
        for partitions in [1, 3, 12] {
            let mut used = vec![0u32; partitions as usize];
            for instance in 0..200u32 {
                for core in 0..4 {
                    let first = part(format!("{instance:032x}:{core}:0").as_bytes(), partitions);
                    assert!((0..partitions).contains(&first));
                    for seq in [1u64, 17, 1 << 40] {
                        let key = format!("{instance:032x}:{core}:{seq}");
                        assert_eq!(part(key.as_bytes(), partitions), first, "{key}");
                    }
                    used[first as usize] += 1;
                }
            }
            assert!(used.iter().all(|&n| n > 0), "{partitions}: {used:?}");
        }
        // A key without a seq (never produced) still gets a valid partition.
        assert!((0..3).contains(&part(b"", 3)));
        assert_eq!(part(b"x", 0), 0);
    }

    #[test]
    fn a_batch_delivered_without_an_offset_is_unconfirmed_up_to_the_next_real_offset() {
        let mut runs = OffsetlessRuns::default();
        // Partition 0 delivers for real at 500..; partition 1 gets a duplicate answer for a
        // retried 3-message batch (offsets -1, 0, 1), interleaved with partition 0.
        assert!(!runs.unconfirmed(0, 500));
        assert!(runs.unconfirmed(1, -1));
        assert!(!runs.unconfirmed(0, 501));
        assert!(runs.unconfirmed(1, 0));
        assert!(runs.unconfirmed(1, 1));
        // The next batch of partition 1 has its real offsets again.
        assert!(!runs.unconfirmed(1, 9744));
        assert!(!runs.unconfirmed(1, 9745));
        // A partition whose real offsets start at 0 is not mistaken for a run.
        assert!(!runs.unconfirmed(2, 0));
        assert!(!runs.unconfirmed(2, 1));
        // Two offset-less batches in a row.
        assert!(runs.unconfirmed(1, -1));
        assert!(runs.unconfirmed(1, 0));
        assert!(runs.unconfirmed(1, -1));
        assert!(runs.unconfirmed(1, 0));
        assert!(!runs.unconfirmed(1, 20000));
    }
}
