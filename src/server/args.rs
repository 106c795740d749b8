//! The command line of `glint serve`.

use crate::clock::parse_duration;
use crate::http::parse::{DEFAULT_MAX_HEAD, DEFAULT_MAX_TARGET};
use crate::http::policy::{GpcPolicy, ResponseKind};
use crate::http::realip::{Cidr, ClientIpHeader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// I/O backend choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum IoBackend {
    /// io_uring if this kernel and process allow it, else epoll (with a log line saying why).
    Auto,
    /// io_uring only; fail at start if unavailable.
    Uring,
    /// A tokio current-thread runtime (epoll) per core.
    Epoll,
}

/// When ring records are made durable against power loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SyncMode {
    /// msync each batch's records before its answers are sent.
    Always,
    /// fdatasync every ring each --sync-interval (a process crash loses nothing either way).
    Interval,
}

/// Options of `glint serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// TOML file with any of these flags as keys (kebab-case) and `[[route]]` tables; flags given here override it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address to listen on; repeat for several. Every worker binds each one with SO_REUSEPORT.
    #[arg(long = "listen", value_name = "ADDR", default_value = "0.0.0.0:8080")]
    pub listen: Vec<SocketAddr>,
    /// Directory for the per-core ring files (created if missing).
    #[arg(long, value_name = "DIR", default_value = "./glint-data")]
    pub data_dir: PathBuf,
    /// Name of this box in its records (decode's `instance` field); default: the name stored
    /// in DATA_DIR/instance.toml, created with the host name. A new name replaces the stored one.
    #[arg(long, value_name = "NAME", value_parser = crate::instance::parse_name)]
    pub instance_name: Option<String>,
    /// Worker threads, one pinned per CPU [default: the CPUs this process may use].
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// I/O backend.
    #[arg(long, value_enum, default_value_t = IoBackend::Auto)]
    pub io: IoBackend,
    /// Bytes per ring slot: a power of two from 256 to 4096, fixed per ring file. A record takes as many consecutive slots as it needs (every field is stored whole).
    #[arg(long, value_name = "BYTES", default_value_t = 512)]
    pub slot_size: usize,
    /// Slots per ring: a power of two from 2 to 2^32, and slot-size x ring-slots at most 4 TiB.
    /// Each core's ring file is slot-size x ring-slots + 4 KiB, preallocated.
    #[arg(long, value_name = "N", default_value_t = 1 << 20)]
    pub ring_slots: u64,
    /// With --sync interval, how often rings are flushed to disk: bounds what a power loss can take.
    #[arg(long, value_name = "DUR", default_value = "1s", value_parser = parse_duration)]
    pub sync_interval: Duration,
    /// Durability mode against power loss.
    #[arg(long, value_enum, default_value_t = SyncMode::Interval)]
    pub sync: SyncMode,
    /// Answer to GET and HEAD beacons: the 43-byte GIF or 204 No Content.
    #[arg(long, value_enum, default_value_t = ResponseKind::Gif)]
    pub response: ResponseKind,
    /// Listen backlog (capped by net.core.somaxconn).
    #[arg(long, value_name = "N", default_value_t = 4096)]
    pub backlog: i32,
    /// Largest request head (request line plus headers) in bytes; larger gets 431. Must hold --max-target plus 64.
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_HEAD)]
    pub max_head_size: usize,
    /// Most header fields in one request; more gets 431.
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub max_headers: usize,
    /// Longest request target in bytes; longer gets 414 (RFC 9112 recommends request lines of 8,000 octets or more).
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_TARGET)]
    pub max_target: usize,
    /// Largest request body in bytes; larger gets 413. Bodies are stored whole (with the head, at most 2 MiB per record).
    #[arg(long, value_name = "BYTES", default_value_t = 65536)]
    pub max_body: u64,
    /// Requests served on one connection before it is closed.
    #[arg(long, value_name = "N", default_value_t = 100_000)]
    pub max_requests_per_conn: u64,
    /// Open connections per worker; beyond it new connections are closed at once and counted.
    #[arg(long, value_name = "N", default_value_t = 65_536)]
    pub max_conns: usize,
    /// Time a client has to send a whole request once its first byte arrived; then 408 and close.
    #[arg(long, value_name = "DUR", default_value = "10s", value_parser = parse_duration)]
    pub head_timeout: Duration,
    /// Time a kept-alive connection may sit idle between requests before it is closed.
    #[arg(long, value_name = "DUR", default_value = "60s", value_parser = parse_duration)]
    pub idle_timeout: Duration,
    /// Path answered 200 (503 while draining) without writing a record, for load balancer checks.
    #[arg(long, value_name = "PATH", default_value = "/healthz")]
    pub health_path: String,
    /// Browser origin allowed to send beacons with CORS (repeatable or comma-separated; `*` for any).
    #[arg(long, value_name = "ORIGIN")]
    pub cors_origin: Vec<String>,
    /// How long browsers may cache a CORS preflight answer.
    #[arg(long, value_name = "DUR", default_value = "1d", value_parser = parse_duration)]
    pub cors_max_age: Duration,
    /// Domain the click redirect (`/r?u=URL`) may send browsers to, with its subdomains (repeatable).
    #[arg(long, value_name = "DOMAIN")]
    pub redirect_allow: Vec<String>,
    /// Hits with `Sec-GPC: 1`: store them with a flag, or answer them and store nothing.
    #[arg(long, value_enum, default_value_t = GpcPolicy::Flag)]
    pub honor_gpc: GpcPolicy,
    /// On shutdown, how long health checks answer 503 before the listeners close.
    #[arg(long, value_name = "DUR", default_value = "0s", value_parser = parse_duration)]
    pub drain_delay: Duration,
    /// On shutdown, how long open connections may take to finish after the listeners close.
    #[arg(long, value_name = "DUR", default_value = "5s", value_parser = parse_duration)]
    pub drain_timeout: Duration,
    /// Expect a PROXY protocol v1/v2 header first on every connection; peers outside --trusted-proxy are refused.
    #[arg(long)]
    pub proxy_protocol: bool,
    /// Load balancer address or CIDR whose PROXY header and forwarding headers are believed (repeatable).
    #[arg(long, value_name = "CIDR")]
    pub trusted_proxy: Vec<Cidr>,
    /// Header trusted proxies set with the client IP: x-forwarded-for, forwarded, or a CDN header such as CF-Connecting-IP.
    #[arg(long, value_name = "NAME", default_value = "x-forwarded-for")]
    pub client_ip_header: ClientIpHeader,
    /// Truncate client IPs (and the peer, unless it is a trusted proxy) before they reach disk.
    #[arg(long)]
    pub ip_anonymize: bool,
    /// IPv4 prefix kept by --ip-anonymize.
    #[arg(long, value_name = "BITS", default_value_t = 24, value_parser = clap::value_parser!(u8).range(0..=32))]
    pub ipv4_prefix: u8,
    /// IPv6 prefix kept by --ip-anonymize.
    #[arg(long, value_name = "BITS", default_value_t = 48, value_parser = clap::value_parser!(u8).range(0..=128))]
    pub ipv6_prefix: u8,
    /// Store the value of this one cookie (a visitor id the site sets); the Cookie header itself is never stored.
    #[arg(long, value_name = "NAME")]
    pub capture_cookie: Option<String>,
    /// Admin listener for Prometheus metrics (GET /metrics) and health; `off` disables it. Never the public port.
    #[arg(long, value_name = "ADDR|off", default_value = "127.0.0.1:9100")]
    pub admin_listen: String,
}
