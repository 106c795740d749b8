//! What one worker core owns: its ring, its Date, its counters, and the shared read-only config.

use super::stats::CoreStats;
use crate::clock::HttpDate;
use crate::http::parse::Limits;
use crate::record::RecordFields;
use crate::ring::{AppendError, RingWriter};
use std::sync::Arc;

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

/// Settings every core reads; built once from the command line, never written after start.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub limits: Limits,
    pub slot_size: usize,
    pub health_path: String,
    pub max_requests_per_conn: u64,
    pub sync_always: bool,
    /// Seconds a client has to send a whole request (head and body) once it starts.
    pub head_timeout_secs: u64,
    /// Seconds a kept-alive connection may sit idle between requests.
    pub idle_timeout_secs: u64,
    pub routes: crate::http::route::Routes,
    pub cors: crate::http::route::CorsOrigins,
    /// Hosts (and their subdomains) the click redirect may send browsers to.
    pub redirect_allow: Vec<String>,
    pub honor_gpc: GpcPolicy,
    /// Expect a PROXY protocol header first on every connection (from trusted peers only).
    pub proxy_protocol: bool,
    pub real_ip: crate::http::realip::RealIpPolicy,
    /// `--ip-anonymize` prefixes (IPv4, IPv6) applied before anything reaches the ring.
    pub anonymize: Option<(u8, u8)>,
    /// Name of the one cookie whose value is stored (`--capture-cookie`).
    pub capture_cookie: Option<Vec<u8>>,
}

/// One worker's state. Lives on that worker's thread only.
pub struct CoreState {
    pub id: u16,
    pub ring: RingWriter,
    pub date: HttpDate,
    pub cfg: Arc<ServeConfig>,
    pub stats: Arc<CoreStats>,
    /// Set when shutdown begins: health checks answer 503, connections close after each answer.
    pub draining: bool,
}

impl CoreState {
    /// The current second, as last refreshed by this core's timer (coarse, no syscall).
    pub fn now_secs(&self) -> u64 {
        self.date.secs()
    }

    /// Appends one record and counts it.
    #[inline]
    pub fn append(&mut self, fields: &RecordFields<'_>) -> Result<(), AppendError> {
        match self.ring.append(fields) {
            Ok(appended) => {
                self.stats
                    .recorded(self.ring.next_seq(), appended.slots, self.cfg.slot_size);
                Ok(())
            }
            Err(AppendError::Full) => {
                self.stats.ring_full();
                Err(AppendError::Full)
            }
            Err(e) => Err(e),
        }
    }
}
