//! The fixed-size beacon record: one per answered request, one per ring slot.
//!
//! Record format version [`FORMAT_VERSION`]. All integers little-endian, explicit offsets.
//! A slot is `slot_size` bytes (a power of two, 256..=4096, fixed per ring file); the record
//! uses its first `len` bytes and the rest is zero padding, which the compactor drops.
//!
//! | offset | size | field        | meaning                                                        |
//! |-------:|-----:|--------------|----------------------------------------------------------------|
//! |      0 |    8 | `commit`     | `seq + 1`, stored last with Release ordering; 0 = empty or being (over)written |
//! |      8 |    4 | `crc`        | CRC32C of the ring's 8-byte seed (LE) followed by bytes `12..len` |
//! |     12 |    2 | `len`        | bytes of the slot in use: [`HEADER_LEN`] + inline data          |
//! |     14 |    1 | `method`     | [`Method`] code                                                |
//! |     15 |    1 | `version`    | HTTP minor version: 0 = HTTP/1.0, 1 = HTTP/1.1                 |
//! |     16 |    8 | `seq`        | absolute per-core sequence number, never reused                |
//! |     24 |    8 | `ts_ns`      | wall clock, nanoseconds since the Unix epoch (UTC)             |
//! |     32 |    2 | `core`       | index of the worker that wrote the record                      |
//! |     34 |    2 | `status`     | HTTP status code sent                                          |
//! |     36 |    4 | `flags`      | bit set, see [`flags`]                                         |
//! |     40 |   16 | `peer_ip`    | socket peer; IPv4 as IPv4-mapped IPv6 (`::ffff:a.b.c.d`)       |
//! |     56 |    2 | `peer_port`  | socket peer port                                               |
//! |     58 |    1 | `ip_source`  | how `client_ip` was resolved, see [`IpSource`]                 |
//! |     59 |    1 | `body_kind`  | content type class of the body, see [`BodyKind`]               |
//! |     60 |   16 | `client_ip`  | resolved client IP (equals `peer_ip` when `ip_source` = peer)  |
//! |     76 |    4 | `epoch`      | ring writer epoch the record was written in (see `ring::format`); 0 outside rings |
//! |     80 |   20 | `orig_len[5]`| u32 original length of target, ua, referer, cookie, body       |
//! |    100 |   10 | `len[5]`     | u16 stored length of the same five fields                      |
//! |    110 |    2 | reserved     | zero                                                           |
//! |    112 |    … | inline data  | target ‖ ua ‖ referer ‖ cookie ‖ body, stored lengths as above |
//!
//! A field whose stored length is below its original length was truncated; its flag bit is set
//! too. When the five fields do not fit the room left in the slot, the room is shared by
//! water-filling: every field gets the same share, a field shorter than its share keeps its
//! whole value and leaves the rest to the others, and any last bytes go in field order.
//!
//! Records that belong to a ring are validated with [`RecordView::crc_ok`]: the seed is random
//! per ring file, so bytes left over from an earlier file never validate, and `commit = seq + 1`
//! means a slot left over from an earlier lap of the same ring never validates either.

use std::net::{IpAddr, Ipv6Addr};

/// Version of the record layout above. Readers refuse files with another version.
pub const FORMAT_VERSION: u32 = 1;
/// Bytes of fixed header before the inline data.
pub const HEADER_LEN: usize = 112;
/// Smallest slot size a ring may use.
pub const MIN_SLOT_SIZE: usize = 256;
/// Largest slot size a ring may use.
pub const MAX_SLOT_SIZE: usize = 4096;
/// Largest record (header and inline data) any writer may produce and any reader accepts: the
/// one bound that segment blocks and record buffers are sized from.
pub const MAX_RECORD_LEN: usize = 2 << 20;
const _: () = assert!(MAX_SLOT_SIZE <= MAX_RECORD_LEN);
/// Number of variable-length inline fields.
pub const FIELD_COUNT: usize = 5;

const OFF_COMMIT: usize = 0;
const OFF_CRC: usize = 8;
const OFF_LEN: usize = 12;
const OFF_METHOD: usize = 14;
const OFF_VERSION: usize = 15;
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
const OFF_ORIG_LENS: usize = 80;
const OFF_LENS: usize = 100;
/// First byte covered by the CRC: everything after the commit word and the CRC itself.
pub const CRC_START: usize = OFF_LEN;

const _: () = assert!(OFF_LENS + 2 * FIELD_COUNT + 2 == HEADER_LEN);
const _: () = assert!(OFF_ORIG_LENS + 4 * FIELD_COUNT == OFF_LENS);
const _: () = assert!(MAX_SLOT_SIZE <= u16::MAX as usize);
const _: () = assert!(HEADER_LEN < MIN_SLOT_SIZE);

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

/// Splits `room` bytes between fields of the given lengths by water-filling (see module docs).
pub fn share_room(lens: [usize; FIELD_COUNT], room: usize) -> [usize; FIELD_COUNT] {
    let total: usize = lens.iter().sum();
    if total <= room {
        return lens;
    }
    let mut out = [0usize; FIELD_COUNT];
    let mut done = [false; FIELD_COUNT];
    let mut left = room;
    loop {
        let open = done.iter().filter(|d| !**d).count();
        if open == 0 {
            return out;
        }
        let share = left / open;
        let mut settled = false;
        for i in 0..FIELD_COUNT {
            if !done[i] && lens[i] <= share {
                out[i] = lens[i];
                left -= lens[i];
                done[i] = true;
                settled = true;
            }
        }
        if !settled {
            let mut extra = left - share * open;
            for i in 0..FIELD_COUNT {
                if !done[i] {
                    out[i] = share + usize::from(extra > 0);
                    extra = extra.saturating_sub(1);
                }
            }
            return out;
        }
    }
}

/// Length and truncation bits of an encoded record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Encoded {
    pub len: usize,
    /// The `flags::TRUNC_*` bits that were set.
    pub truncated: u32,
}

/// Writes a record into `slot` (everything but the commit word).
///
/// `crc_init` is `crc32c(seed.to_le_bytes())` of the ring the slot belongs to. The slot's
/// padding beyond the returned length is zeroed, so a reused slot never leaks old bytes.
pub fn encode(slot: &mut [u8], seq: u64, crc_init: u32, rec: &RecordFields<'_>) -> Encoded {
    encode_after_commit(&mut slot[OFF_CRC..], seq, 0, crc_init, rec)
}

/// [`encode`] into a slot without its first 8 bytes (the commit word, which the ring stores
/// atomically and separately), stamped with the ring writer's `epoch`. The length counts from
/// the slot start.
pub fn encode_after_commit(
    payload: &mut [u8],
    seq: u64,
    epoch: u32,
    crc_init: u32,
    rec: &RecordFields<'_>,
) -> Encoded {
    const B: usize = OFF_CRC;
    let slot_size = payload.len() + B;
    debug_assert!((MIN_SLOT_SIZE..=MAX_SLOT_SIZE).contains(&slot_size));
    let values = rec.values();
    let lens = values.map(<[u8]>::len);
    let stored = share_room(lens, slot_size - HEADER_LEN);
    let mut flag_bits = rec.flags & !flags::TRUNC_ANY;
    let mut at = HEADER_LEN;
    for field in Field::ALL {
        let i = field as usize;
        if stored[i] < lens[i] {
            flag_bits |= field.trunc_flag();
        }
        payload[at - B..at - B + stored[i]].copy_from_slice(&values[i][..stored[i]]);
        put_u32(payload, OFF_ORIG_LENS + 4 * i - B, saturate_u32(lens[i]));
        put_u16(payload, OFF_LENS + 2 * i - B, stored[i] as u16);
        at += stored[i];
    }
    let len = at;
    payload[len - B..].fill(0);
    put_u16(payload, OFF_LEN - B, len as u16);
    payload[OFF_METHOD - B] = rec.method as u8;
    payload[OFF_VERSION - B] = rec.http_minor;
    put_u64(payload, OFF_SEQ - B, seq);
    put_u64(payload, OFF_TS - B, rec.ts_ns);
    put_u16(payload, OFF_CORE - B, rec.core);
    put_u16(payload, OFF_STATUS - B, rec.status);
    put_u32(payload, OFF_FLAGS - B, flag_bits);
    payload[OFF_PEER_IP - B..OFF_PEER_IP - B + 16].copy_from_slice(&rec.peer_ip.octets());
    put_u16(payload, OFF_PEER_PORT - B, rec.peer_port);
    payload[OFF_IP_SOURCE - B] = rec.ip_source as u8;
    payload[OFF_BODY_KIND - B] = rec.body_kind as u8;
    payload[OFF_CLIENT_IP - B..OFF_CLIENT_IP - B + 16].copy_from_slice(&rec.client_ip.octets());
    put_u32(payload, OFF_EPOCH - B, epoch);
    payload[110 - B..112 - B].fill(0);
    let crc = crc32c::crc32c_append(crc_init, &payload[CRC_START - B..len - B]);
    put_u32(payload, OFF_CRC - B, crc);
    Encoded {
        len,
        truncated: flag_bits & flags::TRUNC_ANY,
    }
}

/// The CRC start value for a ring with this seed.
pub fn crc_init(seed: u64) -> u32 {
    crc32c::crc32c(&seed.to_le_bytes())
}

fn saturate_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
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

/// Why bytes are not a well-formed record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("record shorter than its {HEADER_LEN}-byte header ({0} bytes)")]
    Short(usize),
    #[error("record length field {len} is outside {HEADER_LEN}..={room}")]
    BadLen { len: usize, room: usize },
    #[error("inline field lengths add up to {sum}, record length says {len}")]
    FieldLens { sum: usize, len: usize },
}

/// A borrowed, validated view of one record's bytes (a ring slot or a segment entry).
#[derive(Clone, Copy)]
pub struct RecordView<'a> {
    bytes: &'a [u8],
}

impl<'a> RecordView<'a> {
    /// Checks the length fields so every accessor below is in bounds. `bytes` may be a whole
    /// slot (with padding) or exactly the record; the CRC is not checked here.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, RecordError> {
        if bytes.len() < HEADER_LEN {
            return Err(RecordError::Short(bytes.len()));
        }
        let len = usize::from(get_u16(bytes, OFF_LEN));
        if !(HEADER_LEN..=bytes.len()).contains(&len) {
            return Err(RecordError::BadLen {
                len,
                room: bytes.len(),
            });
        }
        let sum: usize = (0..FIELD_COUNT)
            .map(|i| usize::from(get_u16(bytes, OFF_LENS + 2 * i)))
            .sum();
        if HEADER_LEN + sum != len {
            return Err(RecordError::FieldLens { sum, len });
        }
        Ok(RecordView {
            bytes: &bytes[..len],
        })
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
    /// The ring writer epoch the record was written in (0 in version 1 rings).
    pub fn epoch(&self) -> u32 {
        get_u32(self.bytes, OFF_EPOCH)
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
        Method::from_code(self.bytes[OFF_METHOD])
    }
    pub fn http_minor(&self) -> u8 {
        self.bytes[OFF_VERSION]
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
    /// Original length of an inline field, as the client sent it.
    pub fn orig_len(&self, field: Field) -> u32 {
        get_u32(self.bytes, OFF_ORIG_LENS + 4 * field as usize)
    }
    /// Whether an inline field was cut to fit the slot.
    pub fn truncated(&self, field: Field) -> bool {
        self.flags() & field.trunc_flag() != 0
    }
    /// The stored bytes of an inline field.
    pub fn field(&self, field: Field) -> &'a [u8] {
        let mut at = HEADER_LEN;
        for f in Field::ALL {
            let n = usize::from(get_u16(self.bytes, OFF_LENS + 2 * f as usize));
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
    fn share_room_keeps_short_fields_whole() {
        assert_eq!(share_room([10, 20, 30, 0, 0], 100), [10, 20, 30, 0, 0]);
        // 60 room, 3 non-empty fields: 5 and 10 fit under the share, target gets the rest.
        assert_eq!(share_room([500, 5, 10, 0, 0], 60), [45, 5, 10, 0, 0]);
        // Two long fields split evenly; the odd byte goes to the first.
        assert_eq!(share_room([100, 100, 0, 0, 0], 51), [26, 25, 0, 0, 0]);
    }

    #[test]
    fn stale_seed_fails_crc() {
        let vals = [b"/p.gif?e=1".to_vec(), vec![], vec![], vec![], vec![]];
        let mut slot = vec![0u8; 256];
        encode(&mut slot, 7, crc_init(1), &fields(&vals, 0));
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
        put_u16(&mut slot, OFF_LEN, 120);
        assert!(matches!(
            RecordView::parse(&slot),
            Err(RecordError::FieldLens { sum: 0, len: 120 })
        ));
    }

    proptest! {
        #[test]
        fn round_trip_every_field_every_slot_size(
            shift in 8u32..=12,
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
            vals in proptest::array::uniform5(proptest::collection::vec(any::<u8>(), 0..1500)),
        ) {
            let slot_size = 1usize << shift;
            let mut slot = vec![0xAAu8; slot_size];
            let mut rec = fields(&vals, flags & !flags::TRUNC_ANY);
            rec.ts_ns = ts; rec.core = core; rec.status = status;
            rec.method = Method::from_code(method); rec.http_minor = minor;
            rec.peer_ip = Ipv6Addr::from(peer); rec.peer_port = port;
            rec.client_ip = Ipv6Addr::from(client);
            rec.ip_source = IpSource::from_code(source); rec.body_kind = BodyKind::from_code(kind);
            let len = encode(&mut slot, seq, crc_init(seed), &rec).len;
            prop_assert!(slot[len..].iter().all(|b| *b == 0), "padding zeroed");
            let v = RecordView::parse(&slot).unwrap();
            prop_assert_eq!(v.len(), len);
            prop_assert!(v.crc_ok(crc_init(seed)));
            prop_assert_eq!(v.seq(), seq);
            prop_assert_eq!(v.ts_ns(), ts);
            prop_assert_eq!(v.core(), core);
            prop_assert_eq!(v.status(), status);
            prop_assert_eq!(v.method() as u8, method);
            prop_assert_eq!(v.http_minor(), minor);
            prop_assert_eq!(v.flags() & !flags::TRUNC_ANY, flags & !flags::TRUNC_ANY);
            prop_assert_eq!(v.peer_ip(), Ipv6Addr::from(peer));
            prop_assert_eq!(v.peer_port(), port);
            prop_assert_eq!(v.client_ip(), Ipv6Addr::from(client));
            prop_assert_eq!(v.ip_source() as u8, source);
            prop_assert_eq!(v.body_kind() as u8, kind);
            let room = slot_size - HEADER_LEN;
            let total: usize = vals.iter().map(Vec::len).sum();
            for f in Field::ALL {
                let sent = &vals[f as usize];
                let stored = v.field(f);
                prop_assert_eq!(v.orig_len(f) as usize, sent.len());
                prop_assert_eq!(stored, &sent[..stored.len()], "stored bytes are a prefix");
                prop_assert_eq!(v.truncated(f), stored.len() < sent.len());
                if total <= room { prop_assert_eq!(stored.len(), sent.len()); }
            }
            if total > room { prop_assert_eq!(len, slot_size, "a truncating record fills the slot"); }
        }
    }
}
