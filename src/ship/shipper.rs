//! The ship loop: read committed segment records in order, produce them, follow the delivery
//! reports, move the durable cursor.
//!
//! Records are read from the segments the compactor has committed (sealed ones in time order,
//! then the in-progress one up to its last checkpoint), so the shipper never races the
//! server's writer for a ring slot and its lag includes the compactor's `--interval`. Within a
//! segment a ring's records are in seq order, so one cursor per ring stream (core, seed)
//! says what is shipped. A record is produced once per run (`next_produce`), acknowledged in
//! any order, and the cursor of its stream moves to the first record not acknowledged.

use super::cursor::ShipCursor;
use super::kafka::{BrokerEvent, DeliveryError, MessageId, Producer, Report};
use super::metrics::{CoreLag, ShipMetrics};
use super::segments::{RecordSink, SegmentWalker};
use super::ValueFormat;
use crate::compact::segment::Watermark;
use crate::decode::json::JsonWriter;
use crate::decode::source::Origin;
use crate::record::RecordView;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::BaseRecord;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What the shipper does, from the command line.
#[derive(Debug, Clone)]
pub struct ShipOptions {
    pub data_dir: PathBuf,
    pub topic: String,
    pub value_format: ValueFormat,
    /// Records produced past the durable cursor at most: the duplicate bound after a kill.
    pub max_in_flight: u64,
    /// How often the durable cursor is written while deliveries come in.
    pub cursor_interval: Duration,
    /// How long to wait for new committed records when caught up.
    pub poll_interval: Duration,
    /// Instance id of the data dir: the first part of the message key of records from
    /// segments that carry no identity (written before identities existed).
    pub instance: String,
}

/// The dead-letter file's name inside the data dir.
pub const DEAD_LETTER_FILE: &str = "ship-dead-letter.jsonl";
/// Deliveries missing for this long while records are in flight count as a broker loss.
const STALL: Duration = Duration::from_secs(10);
/// Records produced between two polls of the delivery reports.
const POLL_EVERY: u32 = 2048;

/// One ring file's records: what was produced, what is acknowledged.
#[derive(Debug)]
struct Stream {
    core: u32,
    seed: u64,
    /// Next seq to produce (records below were produced in this run or acknowledged before).
    next_produce: u64,
    /// Produced and not yet acknowledged in order: (seq, ts_ns, acknowledged).
    pending: VecDeque<(u64, u64, bool)>,
    /// Value in the durable cursor.
    durable: u64,
    /// `next_seq` of the newest checkpoint seen: the records the compactor has committed.
    committed: u64,
    last_acked_ts: u64,
}

impl Stream {
    /// First seq not acknowledged.
    fn acked(&self) -> u64 {
        self.pending.front().map_or(self.next_produce, |p| p.0)
    }
}

/// Why shipping stopped.
pub type ShipError = String;

/// The shipper's state.
pub struct Shipper {
    opts: ShipOptions,
    producer: Producer,
    metrics: Arc<ShipMetrics>,
    streams: Vec<Stream>,
    by_ring: HashMap<(u32, u64), usize>,
    walker: SegmentWalker,
    json: JsonWriter,
    value: Vec<u8>,
    key: String,
    retry: VecDeque<(MessageId, DeliveryError)>,
    since_poll: u32,
    last_store: Instant,
    last_delivery: Instant,
    down_since: Option<Instant>,
}

impl Shipper {
    /// Starts from the durable cursor (creating it, which tells retention a shipper exists).
    pub fn new(
        opts: ShipOptions,
        producer: Producer,
        metrics: Arc<ShipMetrics>,
    ) -> Result<Shipper, ShipError> {
        let cursor = ShipCursor::open(&opts.data_dir, &opts.instance)?;
        let selection = crate::decode::columns::Selection::new(None, false)?;
        let mut s = Shipper {
            // The same `agent` labels as `glint decode` prints by default.
            json: JsonWriter::new(&selection, Arc::new(crate::agent::Classifier::builtin())),
            opts,
            producer,
            metrics,
            streams: Vec::new(),
            by_ring: HashMap::new(),
            walker: SegmentWalker::default(),
            value: Vec::with_capacity(4096),
            key: String::with_capacity(64),
            retry: VecDeque::new(),
            since_poll: 0,
            last_store: Instant::now(),
            last_delivery: Instant::now(),
            down_since: None,
        };
        for (&(core, seed), &next) in &cursor.streams {
            let i = s.stream(core, seed);
            s.streams[i].next_produce = next;
            s.streams[i].durable = next;
        }
        s.metrics.broker_up.store(true, Relaxed);
        s.metrics
            .duplicate_bound
            .store(s.opts.max_in_flight, Relaxed);
        Ok(s)
    }

    fn stream(&mut self, core: u32, seed: u64) -> usize {
        if let Some(&i) = self.by_ring.get(&(core, seed)) {
            return i;
        }
        self.streams.push(Stream {
            core,
            seed,
            next_produce: 0,
            pending: VecDeque::new(),
            durable: 0,
            committed: 0,
            last_acked_ts: 0,
        });
        let i = self.streams.len() - 1;
        self.by_ring.insert((core, seed), i);
        i
    }

    /// Ships until `stop` says so (then flushes for at most `drain`), or with `once`, until
    /// everything committed at the start is acknowledged.
    pub fn run(
        &mut self,
        stop: &dyn Fn() -> bool,
        once: bool,
        drain: Duration,
    ) -> Result<(), ShipError> {
        loop {
            let moved = self.pass(stop)?;
            self.service(Duration::ZERO)?;
            if stop() || (once && moved == 0) {
                break;
            }
            if moved == 0 {
                self.service(self.opts.poll_interval)?;
            }
        }
        self.finish(if once { None } else { Some(drain) }, stop)
    }

    /// Reads every committed record not produced yet and produces it; returns how many.
    fn pass(&mut self, stop: &dyn Fn() -> bool) -> Result<u64, ShipError> {
        let mut walker = std::mem::take(&mut self.walker);
        let produced = walker.pass(&self.opts.data_dir.clone(), self, stop);
        self.walker = walker;
        produced
    }

    /// A record librdkafka refused to queue because it is larger than `message.max.bytes`:
    /// dead-lettered, then acknowledged in its stream's order.
    fn refused_too_large(
        &mut self,
        text: String,
        i: usize,
        rec: &RecordView<'_>,
    ) -> Result<(), ShipError> {
        let e = DeliveryError {
            code: Some(RDKafkaErrorCode::MessageSizeTooLarge),
            text,
            key: self.key.as_bytes().to_vec(),
            value: self.value.clone(),
            timestamp_ms: None,
            unconfirmed: false,
        };
        self.dead_letter(&e)?;
        let s = &mut self.streams[i];
        if s.pending.is_empty() {
            s.last_acked_ts = rec.ts_ns();
        } else {
            s.pending.push_back((rec.seq(), rec.ts_ns(), true));
            self.metrics.in_flight.fetch_add(1, Relaxed);
        }
        Ok(())
    }

    /// Blocks while the records past the durable cursor reach `max_in_flight`.
    fn wait_for_window(&mut self, stop: &dyn Fn() -> bool) -> Result<(), ShipError> {
        while self.past_durable() >= self.opts.max_in_flight && !stop() {
            self.service(Duration::from_millis(5))?;
            if self.past_durable() >= self.opts.max_in_flight {
                self.store_cursor(true)?;
            }
        }
        Ok(())
    }

    fn past_durable(&self) -> u64 {
        self.streams
            .iter()
            .map(|s| s.next_produce.saturating_sub(s.durable))
            .sum()
    }

    /// Polls delivery reports for up to `timeout`, applies them, retries failures, tracks the
    /// brokers' state, stores the cursor when due.
    fn service(&mut self, timeout: Duration) -> Result<(), ShipError> {
        self.since_poll = 0;
        self.producer.poll(timeout);
        let reports = std::mem::take(&mut *self.producer_reports());
        for r in reports {
            self.apply(r)?;
        }
        self.watch_brokers()?;
        self.resend()?;
        self.store_cursor(false)?;
        self.update_lag();
        Ok(())
    }

    fn producer_reports(&self) -> std::sync::MutexGuard<'_, Vec<Report>> {
        use rdkafka::producer::Producer as _;
        self.producer
            .context()
            .reports
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    fn apply(&mut self, r: Report) -> Result<(), ShipError> {
        match r.error {
            None => {
                self.metrics.records_shipped.fetch_add(1, Relaxed);
                self.metrics
                    .bytes_shipped
                    .fetch_add(r.bytes as u64, Relaxed);
                self.last_delivery = Instant::now();
                self.broker_back();
                self.acknowledge(r.id);
            }
            Some(e) if e.too_large() => {
                self.dead_letter(&e)?;
                self.acknowledge(r.id);
            }
            Some(e) if e.unconfirmed => {
                self.metrics.unconfirmed.fetch_add(1, Relaxed);
                // The brokers answer: not a stall.
                self.last_delivery = Instant::now();
                self.broker_back();
                if self.retry.is_empty() {
                    crate::warn!(
                        "ship: {}; producing such records again (a duplicate of the same key if the broker did store them)",
                        e.text
                    );
                }
                self.retry.push_back((r.id, e));
            }
            Some(e) => {
                if e.code == Some(RDKafkaErrorCode::Fatal) {
                    return Err(format!("ship: the producer hit a fatal error: {}", e.text));
                }
                self.metrics.errors_retried.fetch_add(1, Relaxed);
                if self.retry.is_empty() {
                    crate::warn!(
                        "ship: delivery failed ({}); producing the record again",
                        e.text
                    );
                }
                self.retry.push_back((r.id, e));
            }
        }
        Ok(())
    }

    fn acknowledge(&mut self, id: MessageId) {
        let s = &mut self.streams[id.stream as usize];
        if let Ok(at) = s.pending.binary_search_by_key(&id.seq, |p| p.0) {
            if !s.pending[at].2 {
                s.pending[at].2 = true;
            }
        }
        while let Some(&(_, ts, true)) = s.pending.front() {
            s.pending.pop_front();
            s.last_acked_ts = ts;
            self.metrics.in_flight.fetch_sub(1, Relaxed);
        }
    }

    /// Produces failed messages again from their delivery reports' copies.
    fn resend(&mut self) -> Result<(), ShipError> {
        while let Some((id, e)) = self.retry.pop_front() {
            let mut record = BaseRecord::with_opaque_to(&self.opts.topic, Box::new(id))
                .key(&e.key[..])
                .payload(&e.value[..]);
            if let Some(ts) = e.timestamp_ms {
                record = record.timestamp(ts);
            }
            if let Err((err, _)) = self.producer.send(record) {
                if is_queue_full(&err) {
                    self.retry.push_front((id, e));
                    return Ok(());
                }
                return Err(format!("ship: cannot produce again: {err}"));
            }
        }
        Ok(())
    }

    fn watch_brokers(&mut self) -> Result<(), ShipError> {
        use rdkafka::producer::Producer as _;
        let events = std::mem::take(
            &mut *self
                .producer
                .context()
                .events
                .lock()
                .unwrap_or_else(|p| p.into_inner()),
        );
        for ev in events {
            match ev {
                BrokerEvent::AllDown(why) => self.broker_lost(&why),
                BrokerEvent::Fatal(why) => {
                    return Err(format!("ship: the producer hit a fatal error: {why}"))
                }
            }
        }
        let waiting = self.metrics.in_flight.load(Relaxed) > 0;
        if waiting && self.last_delivery.elapsed() > STALL {
            self.broker_lost(&format!("no delivery report for {} s", STALL.as_secs()));
        }
        Ok(())
    }

    fn broker_lost(&mut self, why: &str) {
        if self.down_since.is_none() {
            crate::warn!(
                "ship: lost the brokers ({why}); records wait on disk, retrying with back-off"
            );
            self.down_since = Some(Instant::now());
            self.metrics.broker_up.store(false, Relaxed);
            self.metrics.broker_losses.fetch_add(1, Relaxed);
        }
    }

    fn broker_back(&mut self) {
        if let Some(since) = self.down_since.take() {
            crate::info!(
                "ship: brokers back after {:.1} s; catching up",
                since.elapsed().as_secs_f64()
            );
            self.metrics.broker_up.store(true, Relaxed);
        }
    }

    /// Writes a record the brokers cannot take to the dead-letter file, durably, and counts it.
    fn dead_letter(&mut self, e: &DeliveryError) -> Result<(), ShipError> {
        let path = self.opts.data_dir.join(DEAD_LETTER_FILE);
        let line = dead_letter_line(e, self.opts.value_format);
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut f| {
                f.write_all(&line)?;
                f.sync_data()
            });
        written.map_err(|err| format!("{}: cannot write a dead letter: {err}", path.display()))?;
        self.metrics.dead_letter.fetch_add(1, Relaxed);
        crate::error!(
            "ship: record {} is larger than the brokers accept ({} value bytes: {}); written to {} (counted in glint_ship_delivery_errors_total{{kind=\"too_large\"}})",
            String::from_utf8_lossy(&e.key),
            e.value.len(),
            e.text,
            path.display()
        );
        Ok(())
    }

    /// Stores the cursor if it moved and it is due (`force`: whenever it moved).
    fn store_cursor(&mut self, force: bool) -> Result<(), ShipError> {
        let moved = self.streams.iter().any(|s| s.acked() != s.durable);
        if !moved || (!force && self.last_store.elapsed() < self.opts.cursor_interval) {
            return Ok(());
        }
        let mut cursor = ShipCursor {
            instance: self.opts.instance.clone(),
            ..ShipCursor::default()
        };
        for s in &self.streams {
            if s.acked() > 0 {
                cursor.streams.insert((s.core, s.seed), s.acked());
            }
        }
        cursor.save(&self.opts.data_dir)?;
        for s in &mut self.streams {
            s.durable = s.acked();
        }
        self.last_store = Instant::now();
        self.metrics.cursor_stores.fetch_add(1, Relaxed);
        Ok(())
    }

    fn update_lag(&self) {
        let now = crate::clock::now_ns();
        let mut per_core: BTreeMap<u32, CoreLag> = BTreeMap::new();
        for s in &self.streams {
            let l = per_core.entry(s.core).or_insert(CoreLag {
                core: s.core,
                ..CoreLag::default()
            });
            let behind = s.committed.saturating_sub(s.acked());
            l.records += behind;
            if behind > 0 {
                let oldest = s.pending.front().map_or(s.last_acked_ts, |p| p.1);
                if oldest > 0 {
                    let age = now.saturating_sub(oldest) as f64 / 1e9;
                    l.seconds = l.seconds.max(age);
                }
            }
        }
        if let Ok(mut lag) = self.metrics.lag.lock() {
            *lag = per_core.into_values().collect();
        }
    }

    /// Waits for the deliveries in flight (at most `drain`; `None`: until all are in) and
    /// stores the cursor.
    fn finish(
        &mut self,
        drain: Option<Duration>,
        stop: &dyn Fn() -> bool,
    ) -> Result<(), ShipError> {
        let start = Instant::now();
        while self.metrics.in_flight.load(Relaxed) > 0 || !self.retry.is_empty() {
            if drain.is_some_and(|d| start.elapsed() >= d) {
                crate::warn!(
                    "ship: {} records still unacknowledged after {:?}; they are shipped again on the next start",
                    self.metrics.in_flight.load(Relaxed),
                    drain.unwrap_or_default()
                );
                break;
            }
            if drain.is_none() && stop() {
                break;
            }
            self.service(Duration::from_millis(50))?;
        }
        self.store_cursor(true)
    }

    /// Per stream (core, seed): the first seq not acknowledged.
    pub fn acked(&self) -> Vec<(u32, u64, u64)> {
        self.streams
            .iter()
            .map(|s| (s.core, s.seed, s.acked()))
            .collect()
    }
}

/// Writes one record's key and value and hands the message to librdkafka, waiting (polling)
/// while its queue is full.
fn produce_record(
    producer: &Producer,
    opts: &ShipOptions,
    json: &mut JsonWriter,
    value: &mut Vec<u8>,
    key: &mut String,
    (stream, origin): (usize, Option<&Origin>),
    rec: &RecordView<'_>,
) -> Result<(), KafkaError> {
    use std::fmt::Write as _;
    key.clear();
    let instance = origin.map_or(opts.instance.as_str(), |o| o.id_hex.as_str());
    let _ = write!(key, "{instance}:{}:{}", rec.core(), rec.seq());
    value.clear();
    match opts.value_format {
        ValueFormat::Json => {
            json.write(value, rec, origin);
            if value.last() == Some(&b'\n') {
                value.pop();
            }
        }
        ValueFormat::Record => value.extend_from_slice(rec.bytes()),
    }
    let id = MessageId {
        stream: stream as u32,
        seq: rec.seq(),
    };
    let ts_ms = i64::try_from(rec.ts_ns() / 1_000_000).unwrap_or(i64::MAX);
    let mut record = BaseRecord::with_opaque_to(&opts.topic, Box::new(id))
        .key(key.as_bytes())
        .payload(&value[..])
        .timestamp(ts_ms);
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((e, back)) if is_queue_full(&e) => {
                record = back;
                producer.poll(Duration::from_millis(10));
            }
            Err((e, _)) => return Err(e),
        }
    }
}

fn is_queue_full(e: &KafkaError) -> bool {
    e.rdkafka_error_code() == Some(RDKafkaErrorCode::QueueFull)
}

/// One dead-letter line: `{"key":…,"error":…,"value_bytes":N,"value":…}` (JSON values
/// inline, record values in base64 as `value_b64`).
fn dead_letter_line(e: &DeliveryError, format: ValueFormat) -> Vec<u8> {
    let mut line = Vec::with_capacity(e.value.len() + 128);
    line.extend_from_slice(b"{\"key\":");
    crate::decode::escape::json_string(&mut line, &e.key);
    line.extend_from_slice(b",\"error\":");
    crate::decode::escape::json_string(&mut line, e.text.as_bytes());
    let _ = write!(line, ",\"value_bytes\":{}", e.value.len());
    match format {
        ValueFormat::Json => {
            line.extend_from_slice(b",\"value\":");
            line.extend_from_slice(&e.value);
        }
        ValueFormat::Record => {
            line.extend_from_slice(b",\"value_b64\":\"");
            crate::decode::escape::base64_into(&mut line, &e.value);
            line.push(b'"');
        }
    }
    line.extend_from_slice(b"}\n");
    line
}

/// The Kafka sink's side of the segment walk: produce each record, with back-pressure at
/// `--max-in-flight`.
impl RecordSink for Shipper {
    fn checkpoint(&mut self, marks: &[Watermark]) -> bool {
        for m in marks {
            let i = self.stream(m.core, m.seed);
            let s = &mut self.streams[i];
            s.committed = s.committed.max(m.next_seq);
        }
        marks.iter().all(|m| {
            self.by_ring
                .get(&(m.core, m.seed))
                .is_some_and(|&i| self.streams[i].durable >= m.next_seq)
        })
    }

    fn next_seq(&mut self, core: u32, seed: u64) -> u64 {
        let i = self.stream(core, seed);
        self.streams[i].next_produce
    }

    fn record(
        &mut self,
        rec: &RecordView<'_>,
        seed: u64,
        origin: Option<&Origin>,
        stop: &dyn Fn() -> bool,
    ) -> Result<(), ShipError> {
        let i = self.stream(u32::from(rec.core()), seed);
        if self.streams[i].pending.is_empty() && self.streams[i].next_produce == 0 {
            // A stream's first record: seqs below it are in no segment.
            self.streams[i].next_produce = rec.seq();
        }
        let sent = produce_record(
            &self.producer,
            &self.opts,
            &mut self.json,
            &mut self.value,
            &mut self.key,
            (i, origin),
            rec,
        );
        match sent {
            Ok(()) => {
                self.streams[i]
                    .pending
                    .push_back((rec.seq(), rec.ts_ns(), false));
                self.metrics.in_flight.fetch_add(1, Relaxed);
            }
            Err(e) if e.rdkafka_error_code() == Some(RDKafkaErrorCode::MessageSizeTooLarge) => {
                self.refused_too_large(e.to_string(), i, rec)?;
            }
            Err(e) => return Err(format!("ship: cannot produce: {e}")),
        }
        self.streams[i].next_produce = rec.seqs().end; // a record may take several slots, each a seq
        self.since_poll += 1;
        if self.since_poll >= POLL_EVERY {
            self.service(Duration::ZERO)?;
        }
        self.wait_for_window(stop)
    }
}
