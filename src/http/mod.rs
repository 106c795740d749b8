//! HTTP/1.x: request parsing ([`parse`], [`chunked`], [`version`], [`proxy`]), canned answers
//! ([`response`]), routing and client IPs ([`route`], [`realip`]), and the backend-independent
//! connection state machine ([`conn`], [`answer`]). It knows no socket and no server: a core
//! hands it a [`context::Context`] (its [`policy`], the Date, draining, [`stats`] and an ingest
//! sink).

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
