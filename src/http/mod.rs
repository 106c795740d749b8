//! HTTP/1.x: request parsing ([`parse`], [`chunked`], [`version`]), canned answers
//! ([`response`]) and the backend-independent connection state machine ([`conn`]).

pub mod answer;
pub mod chunked;
pub mod conn;
pub mod parse;
pub mod proxy;
pub mod realip;
pub mod response;
pub mod route;
pub mod version;
