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
use rdkafka::producer::{BaseProducer, DeliveryResult, ProducerContext};
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

impl ProducerContext for ShipContext {
    type DeliveryOpaque = Box<MessageId>;

    fn delivery(&self, result: &DeliveryResult<'_>, id: Box<MessageId>) {
        let report = match result {
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
                }),
            },
        };
        if let Ok(mut reports) = self.reports.lock() {
            reports.push(report);
        }
    }
}

/// The producer type the shipper uses.
pub type Producer = BaseProducer<ShipContext>;

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
