//! The seam between a backend and the protocol it serves: a [`Handler`] per core turns the bytes
//! a connection received into answers. Both backends are generic over it (monomorphised, no
//! dynamic dispatch on the request path); glint's handler is the HTTP layer's
//! [`Context`], and a bench can plug in its own on the very same drivers.

use crate::http::buffers::ConnBuffers;
use crate::http::conn::{Conn, Next};
use crate::http::context::Context;
use crate::ingest::Sink;
use std::net::SocketAddr;

/// What a backend drives on one core: bytes in, answers out.
///
/// The backend reads into and writes from the connection's [`ConnBuffers`] only; while the
/// kernel holds them (io_uring), it calls nothing of this trait for that connection.
pub trait Handler: 'static {
    /// One connection's protocol state.
    type Conn: 'static;

    /// A connection from `peer`, or `None` if it is refused at once (the handler counts why).
    fn open(&mut self, peer: SocketAddr) -> Option<Self::Conn>;
    /// The buffers the backend reads into and writes from.
    fn buffers(conn: &mut Self::Conn) -> &mut ConnBuffers;
    /// Answers what `conn` received into its `out` (see [`Next`]).
    fn process(&mut self, conn: &mut Self::Conn) -> Next;
    /// Whether a request is partly read (closing waits for it; a timeout answers it with 408).
    fn mid_request(conn: &Self::Conn) -> bool;
    /// The coarse second after which `conn` has timed out, given the current one.
    fn deadline(&self, conn: &mut Self::Conn, now_secs: u64) -> u64;
    /// `conn`'s deadline passed: whatever answer that deserves goes into `out`; always closes.
    fn timed_out(&mut self, conn: &mut Self::Conn) -> Next;
    /// The core's timer, at least once a second (the cached Date).
    fn tick(&mut self, unix_secs: u64);
    /// Shutdown began (health checks fail, answers close their connections) or was called off.
    fn set_draining(&mut self, draining: bool);
}

impl<S: Sink + 'static> Handler for Context<S> {
    type Conn = Conn;

    #[inline]
    fn open(&mut self, peer: SocketAddr) -> Option<Conn> {
        let conn = Conn::new(peer, self);
        (!conn.is_closed()).then_some(conn)
    }

    #[inline]
    fn buffers(conn: &mut Conn) -> &mut ConnBuffers {
        &mut conn.io
    }

    #[inline]
    fn process(&mut self, conn: &mut Conn) -> Next {
        conn.process(self)
    }

    #[inline]
    fn mid_request(conn: &Conn) -> bool {
        conn.mid_request()
    }

    #[inline]
    fn deadline(&self, conn: &mut Conn, now_secs: u64) -> u64 {
        conn.deadline(now_secs, self)
    }

    fn timed_out(&mut self, conn: &mut Conn) -> Next {
        conn.timed_out(self)
    }

    fn tick(&mut self, unix_secs: u64) {
        Context::tick(self, unix_secs);
    }

    fn set_draining(&mut self, draining: bool) {
        self.draining = draining;
    }
}
