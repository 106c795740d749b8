//! The beacon record: one per answered request, stored whole in one or more consecutive ring
//! slots, and copied byte for byte into segments.
//!
//! Record format version [`FORMAT_VERSION`] (2). All integers little-endian, explicit offsets.
//! A record is one contiguous byte run: a [`HEADER_LEN`]-byte header, then the five inline
//! fields whole. In a ring it starts at a slot boundary and takes `span` consecutive slots
//! (`ceil(len / slot_size)`); the rest of its last slot is zero padding, which the compactor
//! drops.
//!
//! | offset | size | field          | meaning                                                       |
//! |-------:|-----:|----------------|---------------------------------------------------------------|
//! |      0 |    8 | `commit`       | `seq + 1`, stored last with Release ordering; 0 = empty or being (over)written |
//! |      8 |    4 | `crc`          | CRC32C of the ring's 8-byte seed (LE) followed by bytes `12..len` |
//! |     12 |    4 | `len`          | bytes of the record: [`HEADER_LEN`] + the five fields, at most [`MAX_RECORD_LEN`] |
//! |     16 |    8 | `seq`          | per-core sequence number of the record's first slot, never reused |
//! |     24 |    8 | `ts_ns`        | wall clock, nanoseconds since the Unix epoch (UTC), read once per batch (pipelined requests of one read share it) |
//! |     32 |    2 | `core`         | index of the worker that wrote the record                     |
//! |     34 |    2 | `status`       | HTTP status code sent                                         |
//! |     36 |    4 | `flags`        | bit set, see [`flags`]                                        |
//! |     40 |   16 | `peer_ip`      | socket peer; IPv4 as IPv4-mapped IPv6 (`::ffff:a.b.c.d`)      |
//! |     56 |    2 | `peer_port`    | socket peer port                                              |
//! |     58 |    1 | `ip_source`    | how `client_ip` was resolved, see [`IpSource`]                |
//! |     59 |    1 | `body_kind`    | content type class of the body, see [`BodyKind`]              |
//! |     60 |   16 | `client_ip`    | resolved client IP (equals `peer_ip` when `ip_source` = peer) |
//! |     76 |    4 | `epoch`        | ring writer epoch the record was written in (see `ring::format`); 0 outside rings |
//! |     80 |   20 | `field_len[5]` | u32 length of target, ua, referer, cookie, body (all stored whole) |
//! |    100 |    4 | `span`         | ring slots the record takes: `ceil(len / slot_size)`, at least 1 |
//! |    104 |    4 | `pad_before`   | slots skipped at the ring's end just before it (see below)    |
//! |    108 |    1 | `method`       | [`Method`] code                                               |
//! |    109 |    1 | `version`      | HTTP minor version: 0 = HTTP/1.0, 1 = HTTP/1.1                |
//! |    110 |    2 | `record_version` | 2; zero in a version 1 record, so every record says its layout |
//! |    112 |    … | inline data    | target ‖ ua ‖ referer ‖ cookie ‖ body, lengths as above       |
//!
//! Nothing is ever truncated: the server answers a request beyond `--max-target`,
//! `--max-head-size` or `--max-body` with 414, 431 or 413 and stores nothing, and checks at
//! start-up that the largest request it accepts fits [`MAX_RECORD_LEN`] and its ring. The
//! `flags::TRUNC_*` bits stay defined for version 1 records and are never set in version 2.
//!
//! **Records in the ring.** Sequence numbers count slots: a record at seq `s` spanning `n` slots
//! takes slots `s..s+n` (slot position `seq % capacity`) and the next record is at `s + n`. Its
//! first slot carries the header and the commit word; the continuation slots are plain record
//! bytes. The writer clears the commit words of all `n` slots, writes the bytes, and stores the
//! first slot's commit word last with Release, so a reader that sees `seq + 1` there sees the
//! whole record; the seeded CRC covers all of it, so a torn multi-slot record (a crash or power
//! loss between its pages) or stale bytes in a continuation slot never validate. A record never
//! wraps past the ring's end: when it would, the writer skips the slots left before the end and
//! writes it at the next multiple of the capacity (slot 0), saying how many it skipped in
//! `pad_before`. Readers that find no record at a seq that is not a multiple of the capacity
//! look there. Every record is therefore one contiguous slice of the map (the server encodes in
//! place, without allocating), and a record's `pad_before + span` slots cover every seq from the
//! previous record's end to its own, so seq ranges stay gap-free in segments and `--verify`.
//! (A separate padding record, as Aeron uses, would need every reader and the segments to skip
//! it, and would leave holes in the seqs the compactor keeps.)
//!
//! **Version 1** (the first release; still read): one record per slot, `len` u16 at 12,
//! `method` at 14, `version` at 15, `orig_len[5]` u32 at 80, `len[5]` u16 at 100, zero at 110;
//! fields longer than the slot's room were cut by water-filling, with a `flags::TRUNC_*` bit and
//! their original length kept. [`RecordView`] reads both layouts, told apart by bytes 110..112.
//!
//! Records that belong to a ring are validated with [`RecordView::crc_ok`]: the seed is random
//! per ring file, so bytes left over from an earlier file never validate, and `commit = seq + 1`
//! means a slot left over from an earlier lap of the same ring never validates either.

use std::net::{IpAddr, Ipv6Addr};

/// Version of the record layout above. Readers also read version 1 records.
pub const FORMAT_VERSION: u32 = 2;
/// Oldest record layout version readers still understand.
pub const OLDEST_FORMAT_VERSION: u32 = 1;
/// Bytes of fixed header before the inline data (both versions).
pub const HEADER_LEN: usize = 112;
/// Smallest slot size a ring may use.
pub const MIN_SLOT_SIZE: usize = 256;
/// Largest slot size a ring may use.
pub const MAX_SLOT_SIZE: usize = 4096;
/// Largest record (header and inline data) any writer may produce and any reader accepts: the
/// one bound that segment blocks and record buffers are sized from.
pub const MAX_RECORD_LEN: usize = 2 << 20;
const _: () = assert!(MAX_SLOT_SIZE <= MAX_RECORD_LEN);
/// Most slots one record can take (a record of [`MAX_RECORD_LEN`] in the smallest slots).
pub const MAX_SPAN: usize = MAX_RECORD_LEN / MIN_SLOT_SIZE;
/// Number of variable-length inline fields.
pub const FIELD_COUNT: usize = 5;

const OFF_COMMIT: usize = 0;
const OFF_CRC: usize = 8;
const OFF_LEN: usize = 12;
const OFF_SEQ: usize = 16;
const OFF_TS: usize = 24;
const OFF_CORE: usize = 32;
const OFF_STATUS: usize = 34;
const OFF_FLAGS: usize = 36;
const OFF_PEER_IP: usize = 40;
const OFF_PEER_PORT: usize = 56;
const OFF_IP_SOURCE: usize = 58;
const OFF_BODY_KIND: usize = 59;
const OFF_CLIENT_IP: usize = 60;
const OFF_EPOCH: usize = 76;
const OFF_FIELD_LENS: usize = 80;
const OFF_SPAN: usize = 100;
const OFF_PAD_BEFORE: usize = 104;
const OFF_METHOD: usize = 108;
const OFF_VERSION: usize = 109;
const OFF_RECORD_VERSION: usize = 110;
/// First byte covered by the CRC: everything after the commit word and the CRC itself.
pub const CRC_START: usize = OFF_LEN;

/// Version 1 offsets that differ from version 2.
mod v1 {
    pub const OFF_LEN: usize = 12;
    pub const OFF_METHOD: usize = 14;
    pub const OFF_VERSION: usize = 15;
    pub const OFF_ORIG_LENS: usize = 80;
    pub const OFF_LENS: usize = 100;
}

const _: () = assert!(OFF_FIELD_LENS + 4 * FIELD_COUNT == OFF_SPAN);
const _: () = assert!(OFF_RECORD_VERSION + 2 == HEADER_LEN);
const _: () = assert!(v1::OFF_LENS + 2 * FIELD_COUNT + 2 == HEADER_LEN);
const _: () = assert!(HEADER_LEN < MIN_SLOT_SIZE);
const _: () = assert!(MAX_RECORD_LEN <= u32::MAX as usize);

/// The inline fields, in storage order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Target = 0,
    UserAgent = 1,
    Referer = 2,
    Cookie = 3,
    Body = 4,
}

impl Field {
    pub const ALL: [Field; FIELD_COUNT] = [
        Field::Target,
        Field::UserAgent,
        Field::Referer,
        Field::Cookie,
        Field::Body,
    ];

    /// The name the decoder uses for this field.
    pub fn name(self) -> &'static str {
        match self {
            Field::Target => "target",
            Field::UserAgent => "ua",
            Field::Referer => "referer",
            Field::Cookie => "cookie",
            Field::Body => "body",
        }
    }

    fn trunc_flag(self) -> u32 {
        flags::TRUNC_TARGET << (self as u32)
    }
}

/// Bits of the `flags` word.
pub mod flags {
    /// The connection stayed open after this request.
    pub const KEEP_ALIVE: u32 = 1 << 0;
    /// The request arrived behind another one in the same read (pipelined).
    pub const PIPELINED: u32 = 1 << 1;
    /// The request carried `DNT: 1`.
    pub const DNT: u32 = 1 << 2;
    /// The request carried `Sec-GPC: 1`.
    pub const GPC: u32 = 1 << 3;
    /// Truncation bits, one per inline field in field order (target, ua, referer, cookie, body).
    pub const TRUNC_TARGET: u32 = 1 << 4;
    pub const TRUNC_UA: u32 = 1 << 5;
    pub const TRUNC_REFERER: u32 = 1 << 6;
    pub const TRUNC_COOKIE: u32 = 1 << 7;
    pub const TRUNC_BODY: u32 = 1 << 8;
    /// The request target was in absolute form (`GET http://host/p.gif`).
    pub const ABSOLUTE_FORM: u32 = 1 << 9;
    /// The body arrived with chunked transfer coding.
    pub const CHUNKED: u32 = 1 << 10;
    /// All truncation bits.
    pub const TRUNC_ANY: u32 = TRUNC_TARGET | TRUNC_UA | TRUNC_REFERER | TRUNC_COOKIE | TRUNC_BODY;
}

macro_rules! code_enum {
    ($(#[$m:meta])* $name:ident { $($var:ident = $val:literal => $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum $name { $($var = $val),+ }

        impl $name {
            /// Decodes a stored code; unknown codes map to the first variant.
            pub fn from_code(code: u8) -> Self {
                match code { $($val => $name::$var,)+ _ => code_enum!(@first $($name::$var),+) }
            }
            /// The lower-case text the decoder prints.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$var => $text),+ }
            }
        }
    };
    (@first $first:expr $(, $rest:expr)*) => { $first };
}

code_enum!(
    /// HTTP request method.
    Method {
        Other = 0 => "OTHER",
        Get = 1 => "GET",
        Head = 2 => "HEAD",
        Post = 3 => "POST",
        Options = 4 => "OPTIONS",
        Put = 5 => "PUT",
        Delete = 6 => "DELETE",
        Patch = 7 => "PATCH",
        Connect = 8 => "CONNECT",
        Trace = 9 => "TRACE",
    }
);

impl Method {
    /// Maps a method token (case-sensitive, RFC 9110 9.1) to its code.
    pub fn from_token(token: &str) -> Method {
        match token {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            "OPTIONS" => Method::Options,
            "PUT" => Method::Put,
            "DELETE" => Method::Delete,
            "PATCH" => Method::Patch,
            "CONNECT" => Method::Connect,
            "TRACE" => Method::Trace,
            _ => Method::Other,
        }
    }
}

code_enum!(
    /// How the record's client IP was resolved.
    IpSource {
        Peer = 0 => "peer",
        ProxyProtocol = 1 => "proxy-protocol",
        XForwardedFor = 2 => "xff",
        Forwarded = 3 => "forwarded",
        Header = 4 => "header",
    }
);

code_enum!(
    /// Content type class of a stored body.
    BodyKind {
        None = 0 => "none",
        TextPlain = 1 => "text/plain",
        Json = 2 => "application/json",
        Form = 3 => "application/x-www-form-urlencoded",
        Other = 4 => "other",
    }
);

/// Everything the server knows about one request, borrowed from its read buffer.
#[derive(Debug, Clone, Copy)]
pub struct RecordFields<'a> {
    pub ts_ns: u64,
    pub core: u16,
    pub status: u16,
    pub method: Method,
    pub http_minor: u8,
    pub flags: u32,
    pub peer_ip: Ipv6Addr,
    pub peer_port: u16,
    pub client_ip: Ipv6Addr,
    pub ip_source: IpSource,
    pub body_kind: BodyKind,
    pub target: &'a [u8],
    pub user_agent: &'a [u8],
    pub referer: &'a [u8],
    pub cookie: &'a [u8],
    pub body: &'a [u8],
}

impl<'a> RecordFields<'a> {
    fn values(&self) -> [&'a [u8]; FIELD_COUNT] {
        [
            self.target,
            self.user_agent,
            self.referer,
            self.cookie,
            self.body,
        ]
    }
}

/// Maps any IP address to the 16 bytes stored in a record.
pub fn ip_to_v6(ip: IpAddr) -> Ipv6Addr {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    }
}

/// Shows an IPv4-mapped address as IPv4, any other as IPv6.
pub fn ip_from_v6(ip: Ipv6Addr) -> IpAddr {
    match ip.to_ipv4_mapped() {
        Some(v4) => IpAddr::V4(v4),
        None => IpAddr::V6(ip),
    }
}

/// Bytes the record of `rec` takes: the header and the five fields whole. May exceed
/// [`MAX_RECORD_LEN`]; writers refuse such a record before encoding it.
#[inline]
pub fn encoded_len(rec: &RecordFields<'_>) -> usize {
    rec.values()
        .iter()
        .fold(HEADER_LEN, |n, v| n.saturating_add(v.len()))
}

/// Where a record sits in its ring: the slots it takes and the slots skipped before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    pub span: u32,
    pub pad_before: u32,
}

impl Placement {
    /// One slot, nothing skipped (also what a record outside any ring says).
    pub const ONE: Placement = Placement {
        span: 1,
        pad_before: 0,
    };
}

/// Writes a record into `buf` (everything but the commit word) and returns its length.
///
/// `buf` is the record's slots; bytes past the record are zeroed, so reused slots never leak
/// old bytes. `crc_init` is `crc32c(seed.to_le_bytes())` of the ring the record belongs to.
/// The epoch is 0 (a record outside any ring writer). Panics if `buf` is shorter than
/// [`encoded_len`] (writers size it first).
pub fn encode(
    buf: &mut [u8],
    seq: u64,
    crc_init: u32,
    rec: &RecordFields<'_>,
    place: Placement,
) -> usize {
    encode_after_commit(&mut buf[OFF_CRC..], seq, 0, crc_init, rec, place)
}

/// [`encode`] into a record's slots without their first 8 bytes (the commit word, which the
/// ring stores atomically and separately), stamped with the ring writer's `epoch`. The length
/// counts from the record start.
#[inline]
pub fn encode_after_commit(
    payload: &mut [u8],
    seq: u64,
    epoch: u32,
    crc_init: u32,
    rec: &RecordFields<'_>,
    place: Placement,
) -> usize {
    const B: usize = OFF_CRC;
    let len = encoded_len(rec);
    assert!(
        len <= MAX_RECORD_LEN && len - B <= payload.len(),
        "record buffer too short"
    );
    let values = rec.values();
    let mut at = HEADER_LEN - B;
    for field in Field::ALL {
        let v = values[field as usize];
        payload[at..at + v.len()].copy_from_slice(v);
        put_u32(
            payload,
            OFF_FIELD_LENS + 4 * field as usize - B,
            v.len() as u32,
        );
        at += v.len();
    }
    payload[len - B..].fill(0);
    put_u32(payload, OFF_LEN - B, len as u32);
    put_u64(payload, OFF_SEQ - B, seq);
    put_u64(payload, OFF_TS - B, rec.ts_ns);
    put_u16(payload, OFF_CORE - B, rec.core);
    put_u16(payload, OFF_STATUS - B, rec.status);
    put_u32(payload, OFF_FLAGS - B, rec.flags & !flags::TRUNC_ANY);
    payload[OFF_PEER_IP - B..OFF_PEER_IP - B + 16].copy_from_slice(&rec.peer_ip.octets());
    put_u16(payload, OFF_PEER_PORT - B, rec.peer_port);
    payload[OFF_IP_SOURCE - B] = rec.ip_source as u8;
    payload[OFF_BODY_KIND - B] = rec.body_kind as u8;
    payload[OFF_CLIENT_IP - B..OFF_CLIENT_IP - B + 16].copy_from_slice(&rec.client_ip.octets());
    put_u32(payload, OFF_EPOCH - B, epoch);
    put_u32(payload, OFF_SPAN - B, place.span);
    put_u32(payload, OFF_PAD_BEFORE - B, place.pad_before);
    payload[OFF_METHOD - B] = rec.method as u8;
    payload[OFF_VERSION - B] = rec.http_minor;
    put_u16(payload, OFF_RECORD_VERSION - B, FORMAT_VERSION as u16);
    let crc = crc32c::crc32c_append(crc_init, &payload[CRC_START - B..len - B]);
    put_u32(payload, OFF_CRC - B, crc);
    len
}

/// The CRC start value for a ring with this seed.
pub fn crc_init(seed: u64) -> u32 {
    crc32c::crc32c(&seed.to_le_bytes())
}

fn put_u16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_le_bytes());
}
fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}
fn put_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}
fn get_u16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
fn get_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
fn get_u64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// The record layout version bytes 110..112 name (0 there means version 1).
fn layout_version(bytes: &[u8]) -> u16 {
    match get_u16(bytes, OFF_RECORD_VERSION) {
        0 => 1,
        v => v,
    }
}

/// The span a record's first slot declares (1 for version 1), or 0 for an unknown layout;
/// readers bound it before copying the rest of the record. `first_slot` is at least
/// [`HEADER_LEN`] bytes.
pub fn declared_span(first_slot: &[u8]) -> u32 {
    match layout_version(first_slot) {
        1 => 1,
        2 => get_u32(first_slot, OFF_SPAN),
        _ => 0,
    }
}

/// Why bytes are not a well-formed record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("record shorter than its {HEADER_LEN}-byte header ({0} bytes)")]
    Short(usize),
    #[error("record layout version {0}, this glint reads versions {OLDEST_FORMAT_VERSION} to {FORMAT_VERSION}")]
    Version(u16),
    #[error("record length field {len} is outside {HEADER_LEN}..={room}")]
    BadLen { len: usize, room: usize },
    #[error("inline field lengths add up to {sum}, record length says {len}")]
    FieldLens { sum: u64, len: usize },
    #[error("record span {span} slot(s) (and {pad} skipped before it) is outside 1..={MAX_SPAN}")]
    BadSpan { span: u32, pad: u32 },
}

/// A borrowed, validated view of one record's bytes (a ring slot or a segment entry), of
/// either layout version.
#[derive(Clone, Copy)]
pub struct RecordView<'a> {
    bytes: &'a [u8],
    v1: bool,
}

impl<'a> RecordView<'a> {
    /// Checks the version and length fields so every accessor below is in bounds. `bytes` may
    /// be the record's slots (with padding) or exactly the record; the CRC is not checked here.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, RecordError> {
        if bytes.len() < HEADER_LEN {
            return Err(RecordError::Short(bytes.len()));
        }
        let v1 = match layout_version(bytes) {
            1 => true,
            2 => false,
            other => return Err(RecordError::Version(other)),
        };
        let len = if v1 {
            usize::from(get_u16(bytes, v1::OFF_LEN))
        } else {
            get_u32(bytes, OFF_LEN) as usize
        };
        let room = bytes.len().min(MAX_RECORD_LEN);
        if !(HEADER_LEN..=room).contains(&len) {
            return Err(RecordError::BadLen { len, room });
        }
        let sum: u64 = (0..FIELD_COUNT)
            .map(|i| match v1 {
                true => u64::from(get_u16(bytes, v1::OFF_LENS + 2 * i)),
                false => u64::from(get_u32(bytes, OFF_FIELD_LENS + 4 * i)),
            })
            .sum();
        if HEADER_LEN as u64 + sum != len as u64 {
            return Err(RecordError::FieldLens { sum, len });
        }
        let view = RecordView {
            bytes: &bytes[..len],
            v1,
        };
        let (span, pad) = (view.span(), view.pad_before());
        if span == 0 || span as usize > MAX_SPAN || pad as usize >= MAX_SPAN {
            return Err(RecordError::BadSpan { span, pad });
        }
        Ok(view)
    }

    /// The record's bytes, without slot padding.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }
    pub fn len(&self) -> usize {
        self.bytes.len()
    }
    pub fn is_empty(&self) -> bool {
        false
    }
    /// The layout version of this record: 1 (first release) or 2.
    pub fn version(&self) -> u32 {
        if self.v1 {
            1
        } else {
            2
        }
    }
    pub fn commit(&self) -> u64 {
        get_u64(self.bytes, OFF_COMMIT)
    }
    pub fn crc(&self) -> u32 {
        get_u32(self.bytes, OFF_CRC)
    }
    /// Whether the stored CRC matches, for a ring whose seed gives `crc_init`.
    pub fn crc_ok(&self, crc_init: u32) -> bool {
        crc32c::crc32c_append(crc_init, &self.bytes[CRC_START..]) == self.crc()
    }
    pub fn seq(&self) -> u64 {
        get_u64(self.bytes, OFF_SEQ)
    }
    /// The ring writer epoch the record was written in (0 in version 1 rings: both layouts
    /// keep it at offset 76).
    pub fn epoch(&self) -> u32 {
        get_u32(self.bytes, OFF_EPOCH)
    }
    /// Ring slots the record takes (1 for a version 1 record).
    pub fn span(&self) -> u32 {
        if self.v1 {
            1
        } else {
            get_u32(self.bytes, OFF_SPAN)
        }
    }
    /// Slots skipped at the ring's end just before this record (0 for a version 1 record).
    pub fn pad_before(&self) -> u32 {
        if self.v1 {
            0
        } else {
            get_u32(self.bytes, OFF_PAD_BEFORE)
        }
    }
    /// The seqs this record accounts for: the skipped slots before it, and its own.
    pub fn seqs(&self) -> std::ops::Range<u64> {
        let seq = self.seq();
        seq.saturating_sub(u64::from(self.pad_before()))..seq.saturating_add(u64::from(self.span()))
    }
    pub fn ts_ns(&self) -> u64 {
        get_u64(self.bytes, OFF_TS)
    }
    pub fn core(&self) -> u16 {
        get_u16(self.bytes, OFF_CORE)
    }
    pub fn status(&self) -> u16 {
        get_u16(self.bytes, OFF_STATUS)
    }
    pub fn flags(&self) -> u32 {
        get_u32(self.bytes, OFF_FLAGS)
    }
    pub fn method(&self) -> Method {
        Method::from_code(self.bytes[if self.v1 { v1::OFF_METHOD } else { OFF_METHOD }])
    }
    pub fn http_minor(&self) -> u8 {
        self.bytes[if self.v1 {
            v1::OFF_VERSION
        } else {
            OFF_VERSION
        }]
    }
    pub fn peer_ip(&self) -> Ipv6Addr {
        ip16(self.bytes, OFF_PEER_IP)
    }
    pub fn peer_port(&self) -> u16 {
        get_u16(self.bytes, OFF_PEER_PORT)
    }
    pub fn client_ip(&self) -> Ipv6Addr {
        ip16(self.bytes, OFF_CLIENT_IP)
    }
    pub fn ip_source(&self) -> IpSource {
        IpSource::from_code(self.bytes[OFF_IP_SOURCE])
    }
    pub fn body_kind(&self) -> BodyKind {
        BodyKind::from_code(self.bytes[OFF_BODY_KIND])
    }
    /// Original length of an inline field, as the client sent it (a version 2 record stores
    /// every field whole, so this is its stored length).
    pub fn orig_len(&self, field: Field) -> u32 {
        if self.v1 {
            get_u32(self.bytes, v1::OFF_ORIG_LENS + 4 * field as usize)
        } else {
            self.stored_len(field) as u32
        }
    }
    /// Whether an inline field was cut to fit the slot (only ever in a version 1 record).
    pub fn truncated(&self, field: Field) -> bool {
        self.flags() & field.trunc_flag() != 0
    }
    fn stored_len(&self, field: Field) -> usize {
        let i = field as usize;
        if self.v1 {
            usize::from(get_u16(self.bytes, v1::OFF_LENS + 2 * i))
        } else {
            get_u32(self.bytes, OFF_FIELD_LENS + 4 * i) as usize
        }
    }
    /// The stored bytes of an inline field.
    pub fn field(&self, field: Field) -> &'a [u8] {
        let mut at = HEADER_LEN;
        for f in Field::ALL {
            let n = self.stored_len(f);
            if f == field {
                return &self.bytes[at..at + n];
            }
            at += n;
        }
        unreachable!("every Field is in Field::ALL")
    }
    pub fn target(&self) -> &'a [u8] {
        self.field(Field::Target)
    }
    pub fn user_agent(&self) -> &'a [u8] {
        self.field(Field::UserAgent)
    }
    pub fn referer(&self) -> &'a [u8] {
        self.field(Field::Referer)
    }
    pub fn cookie(&self) -> &'a [u8] {
        self.field(Field::Cookie)
    }
    pub fn body(&self) -> &'a [u8] {
        self.field(Field::Body)
    }
}

impl std::fmt::Debug for RecordView<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Record")
            .field("seq", &self.seq())
            .field("core", &self.core())
            .field("ts_ns", &self.ts_ns())
            .field("method", &self.method())
            .field("status", &self.status())
            .field("target", &String::from_utf8_lossy(self.target()))
            .finish_non_exhaustive()
    }
}

fn ip16(b: &[u8], at: usize) -> Ipv6Addr {
    let octets: [u8; 16] = b[at..at + 16].try_into().expect("16 bytes");
    Ipv6Addr::from(octets)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn fields<'a>(vals: &'a [Vec<u8>; 5], flags: u32) -> RecordFields<'a> {
        RecordFields {
            ts_ns: 1_700_000_000_123_456_789,
            core: 3,
            status: 200,
            method: Method::Get,
            http_minor: 1,
            flags,
            peer_ip: ip_to_v6("203.0.113.9".parse().unwrap()),
            peer_port: 51234,
            client_ip: "2001:db8::1".parse().unwrap(),
            ip_source: IpSource::XForwardedFor,
            body_kind: BodyKind::Json,
            target: &vals[0],
            user_agent: &vals[1],
            referer: &vals[2],
            cookie: &vals[3],
            body: &vals[4],
        }
    }

    #[test]
    fn stale_seed_fails_crc() {
        let vals = [b"/p.gif?e=1".to_vec(), vec![], vec![], vec![], vec![]];
        let mut slot = vec![0u8; 256];
        encode(&mut slot, 7, crc_init(1), &fields(&vals, 0), Placement::ONE);
        let view = RecordView::parse(&slot).unwrap();
        assert!(view.crc_ok(crc_init(1)));
        assert!(!view.crc_ok(crc_init(2)));
        slot[HEADER_LEN] ^= 1;
        assert!(!RecordView::parse(&slot).unwrap().crc_ok(crc_init(1)));
    }

    #[test]
    fn parse_rejects_inconsistent_lengths() {
        let mut slot = vec![0u8; 256];
        assert_eq!(
            RecordView::parse(&slot[..50]).unwrap_err(),
            RecordError::Short(50)
        );
        assert!(matches!(
            RecordView::parse(&slot),
            Err(RecordError::BadLen { len: 0, .. })
        ));
        put_u16(&mut slot, OFF_RECORD_VERSION, 2);
        put_u32(&mut slot, OFF_LEN, 120);
        assert!(matches!(
            RecordView::parse(&slot),
            Err(RecordError::FieldLens { sum: 0, len: 120 })
        ));
        // Field lengths whose u32 sum would wrap a 32-bit counter are still caught.
        put_u32(&mut slot, OFF_FIELD_LENS, u32::MAX);
        put_u32(&mut slot, OFF_FIELD_LENS + 4, 9);
        assert!(matches!(
            RecordView::parse(&slot),
            Err(RecordError::FieldLens { .. })
        ));
        put_u32(&mut slot, OFF_LEN, u32::MAX);
        assert!(matches!(
            RecordView::parse(&slot),
            Err(RecordError::BadLen { .. })
        ));
        put_u16(&mut slot, OFF_RECORD_VERSION, 3);
        assert_eq!(
            RecordView::parse(&slot).unwrap_err(),
            RecordError::Version(3)
        );
    }

    #[test]
    fn span_and_pad_are_bounded() {
        let vals = [b"/p".to_vec(), vec![], vec![], vec![], vec![]];
        let mut buf = vec![0u8; 256];
        let place = Placement {
            span: 3,
            pad_before: 5,
        };
        encode(&mut buf, 64, crc_init(1), &fields(&vals, 0), place);
        let v = RecordView::parse(&buf).unwrap();
        assert_eq!((v.span(), v.pad_before(), v.seqs()), (3, 5, 59..67));
        put_u32(&mut buf, OFF_SPAN, 0);
        assert!(matches!(
            RecordView::parse(&buf),
            Err(RecordError::BadSpan { span: 0, .. })
        ));
        put_u32(&mut buf, OFF_SPAN, MAX_SPAN as u32 + 1);
        assert!(RecordView::parse(&buf).is_err());
    }

    /// A version 1 record as the first release wrote it (layout in the module docs).
    fn v1_record(target: &[u8], orig_target: u32, flag_bits: u32) -> Vec<u8> {
        let mut b = vec![0u8; 256];
        let len = HEADER_LEN + target.len();
        put_u16(&mut b, v1::OFF_LEN, len as u16);
        b[v1::OFF_METHOD] = Method::Post as u8;
        b[v1::OFF_VERSION] = 0;
        put_u64(&mut b, OFF_SEQ, 9);
        put_u16(&mut b, OFF_STATUS, 204);
        put_u32(&mut b, OFF_FLAGS, flag_bits);
        put_u32(&mut b, v1::OFF_ORIG_LENS, orig_target);
        put_u16(&mut b, v1::OFF_LENS, target.len() as u16);
        b[HEADER_LEN..len].copy_from_slice(target);
        let crc = crc32c::crc32c_append(crc_init(5), &b[CRC_START..len]);
        put_u32(&mut b, OFF_CRC, crc);
        b
    }

    #[test]
    fn version_1_records_still_read_with_their_original_lengths() {
        let b = v1_record(b"/p?cut", 4000, flags::TRUNC_TARGET);
        let v = RecordView::parse(&b).unwrap();
        assert_eq!(v.version(), 1);
        assert!(v.crc_ok(crc_init(5)));
        assert_eq!(
            (v.method(), v.http_minor(), v.status()),
            (Method::Post, 0, 204)
        );
        assert_eq!(v.target(), b"/p?cut");
        assert_eq!(
            (v.orig_len(Field::Target), v.truncated(Field::Target)),
            (4000, true)
        );
        assert_eq!((v.span(), v.pad_before(), v.seqs()), (1, 0, 9..10));
        assert_eq!(v.len(), HEADER_LEN + 6);
    }

    proptest! {
        #[test]
        fn round_trip_every_field_whole(
            seq in any::<u64>(),
            ts in any::<u64>(),
            core in any::<u16>(),
            status in 100u16..600,
            method in 0u8..10,
            minor in 0u8..2,
            flags in any::<u32>(),
            peer in any::<[u8; 16]>(),
            port in any::<u16>(),
            client in any::<[u8; 16]>(),
            source in 0u8..5,
            kind in 0u8..5,
            seed in any::<u64>(),
            span in 1u32..100,
            pad in 0u32..100,
            vals in proptest::array::uniform5(proptest::collection::vec(any::<u8>(), 0..3000)),
        ) {
            let mut buf = vec![0xAAu8; 16 * 1024];
            let mut rec = fields(&vals, flags);
            rec.ts_ns = ts; rec.core = core; rec.status = status;
            rec.method = Method::from_code(method); rec.http_minor = minor;
            rec.peer_ip = Ipv6Addr::from(peer); rec.peer_port = port;
            rec.client_ip = Ipv6Addr::from(client);
            rec.ip_source = IpSource::from_code(source); rec.body_kind = BodyKind::from_code(kind);
            let place = Placement { span, pad_before: pad };
            let len = encode(&mut buf, seq, crc_init(seed), &rec, place);
            prop_assert_eq!(len, encoded_len(&rec));
            prop_assert!(buf[len..].iter().all(|b| *b == 0), "padding zeroed");
            let v = RecordView::parse(&buf).unwrap();
            prop_assert_eq!(v.len(), len);
            prop_assert_eq!(v.version(), 2);
            prop_assert!(v.crc_ok(crc_init(seed)));
            prop_assert_eq!((v.seq(), v.span(), v.pad_before()), (seq, span, pad));
            prop_assert_eq!(v.ts_ns(), ts);
            prop_assert_eq!(v.core(), core);
            prop_assert_eq!(v.status(), status);
            prop_assert_eq!(v.method() as u8, method);
            prop_assert_eq!(v.http_minor(), minor);
            prop_assert_eq!(v.flags(), flags & !flags::TRUNC_ANY, "never a truncation bit");
            prop_assert_eq!(v.peer_ip(), Ipv6Addr::from(peer));
            prop_assert_eq!(v.peer_port(), port);
            prop_assert_eq!(v.client_ip(), Ipv6Addr::from(client));
            prop_assert_eq!(v.ip_source() as u8, source);
            prop_assert_eq!(v.body_kind() as u8, kind);
            prop_assert_eq!(v.epoch(), 0, "no epoch outside a ring writer");
            for f in Field::ALL {
                prop_assert_eq!(v.field(f), &vals[f as usize][..], "stored whole");
                prop_assert_eq!(v.orig_len(f) as usize, vals[f as usize].len());
                prop_assert!(!v.truncated(f));
            }
        }
    }
}
