//! What the HTTP layer is told to do: limits, routes, CORS, redirects, privacy and client-IP
//! rules. Built once by the server from its flags, read by every core, never written after.

use super::parse::Limits;
use super::realip::RealIpPolicy;
use super::route::{CorsOrigins, Routes};

/// What GET and HEAD beacons are answered with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResponseKind {
    /// 200 with the 43-byte transparent GIF.
    Gif,
    /// 204 No Content.
    #[value(name = "204")]
    #[serde(rename = "204")]
    NoContent,
}

/// What to do with hits that carry `Sec-GPC: 1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GpcPolicy {
    /// Store them, with the GPC flag set.
    Flag,
    /// Answer them but store nothing.
    Drop,
}

/// The HTTP policy every core reads.
#[derive(Debug, Clone)]
pub struct HttpPolicy {
    pub limits: Limits,
    pub health_path: String,
    pub max_requests_per_conn: u64,
    /// Seconds a client has to send a whole request (head and body) once it starts.
    pub head_timeout_secs: u64,
    /// Seconds a kept-alive connection may sit idle between requests.
    pub idle_timeout_secs: u64,
    pub routes: Routes,
    pub cors: CorsOrigins,
    /// Hosts (and their subdomains) the click redirect may send browsers to.
    pub redirect_allow: Vec<String>,
    pub honor_gpc: GpcPolicy,
    /// Expect a PROXY protocol header first on every connection (from trusted peers only).
    pub proxy_protocol: bool,
    pub real_ip: RealIpPolicy,
    /// `--ip-anonymize` prefixes (IPv4, IPv6) applied before anything reaches the ring.
    pub anonymize: Option<(u8, u8)>,
    /// Name of the one cookie whose value is stored (`--capture-cookie`).
    pub capture_cookie: Option<Vec<u8>>,
}

impl Default for HttpPolicy {
    /// For tests and harnesses: default limits, the built-in routes answering the GIF,
    /// `/healthz`, no CORS, no redirect hosts, GPC hits flagged, peers taken as clients.
    fn default() -> HttpPolicy {
        HttpPolicy {
            limits: Limits::default(),
            health_path: "/healthz".into(),
            max_requests_per_conn: u64::MAX,
            head_timeout_secs: 10,
            idle_timeout_secs: 60,
            routes: Routes::new(vec![], ResponseKind::Gif).expect("built-in routes are valid"),
            cors: CorsOrigins::new(&[], 600),
            redirect_allow: vec![],
            honor_gpc: GpcPolicy::Flag,
            proxy_protocol: false,
            real_ip: RealIpPolicy::default(),
            anonymize: None,
            capture_cookie: None,
        }
    }
}
