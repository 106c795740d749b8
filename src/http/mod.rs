//! HTTP/1.x: request parsing ([`parse`], [`chunked`], [`version`], [`proxy`]), canned answers
//! ([`response`]), routing and client IPs ([`route`], [`realip`]), and the backend-independent
//! connection state machine ([`conn`], [`answer`]). It knows no socket and no server: a core
//! hands it a [`context::Context`] (its [`policy`], the Date, draining, [`stats`] and an ingest
//! sink).
//!
//! Modules:
//! - [`answer`]: one complete request answered: routed, recorded if a beacon.
//! - [`buffers`]: a connection's read and write buffers.
//! - [`chunked`]: the chunked transfer coding, decoded incrementally.
//! - [`conn`]: one connection's state machine, the same for both backends.
//! - [`context`]: what a core's HTTP layer works with: policy, Date, draining, counters, sink.
//! - [`cookie`]: the one cookie `--capture-cookie` stores.
//! - [`parse`]: request heads: httparse plus the checks it leaves to the server.
//! - [`policy`]: limits, routes, CORS, redirects, privacy, client-IP rules.
//! - [`proxy`]: PROXY protocol v1 and v2 headers.
//! - [`realip`]: the client's real IP behind trusted proxies, and IP truncation.
//! - [`response`]: canned responses with the core's `Date` spliced in.
//! - [`route`]: per-path behaviour and click redirects.
//! - [`stats`]: the HTTP layer's counters of one core.
//! - [`version`]: the HTTP-version of a request line httparse refused.

pub mod answer;
pub mod buffers;
pub mod chunked;
pub mod conn;
pub mod context;
pub mod cookie;
pub mod parse;
pub mod policy;
pub mod proxy;
pub mod realip;
pub mod response;
pub mod route;
pub mod stats;
pub mod version;
