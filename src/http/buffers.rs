//! A connection's two buffers, the only memory an I/O backend reads into or writes from: the
//! read buffer (bytes received, a partial request kept at its front) and `out` (answers to send).
//!
//! Neither is owned for the connection's whole life: a connection between requests holds no
//! read buffer and an empty `out` without capacity, so an idle kept-alive connection costs no
//! buffer memory. A backend takes both from its core's [`BufferPool`] when bytes arrive
//! ([`ConnBuffers::equip`]) and gives them back when a batch is answered and written
//! ([`ConnBuffers::release`]); a partial request keeps its read buffer until it is complete.
//! Without a pool (tests, a bench handler) the buffers are allocated on first use.

/// The read buffer and the answers of one connection.
pub struct ConnBuffers {
    /// Empty while the connection holds no read buffer.
    pub(super) buf: Box<[u8]>,
    /// Bytes `start..end` of `buf` are received and not yet consumed.
    pub(super) start: usize,
    pub(super) end: usize,
    /// Answers to write, in request order. Its capacity is [`ConnBuffers::out_capacity`] from
    /// [`ConnBuffers::equip`] or [`ConnBuffers::reserve_out`] until [`ConnBuffers::release`].
    pub out: Vec<u8>,
    read_len: usize,
    out_capacity: usize,
}

impl ConnBuffers {
    /// Buffers of a read buffer of `read_len` bytes and room for `out_capacity` bytes of
    /// answers, once taken; allocates nothing yet.
    pub fn new(read_len: usize, out_capacity: usize) -> ConnBuffers {
        ConnBuffers {
            buf: Box::default(),
            start: 0,
            end: 0,
            out: Vec::new(),
            read_len,
            out_capacity,
        }
    }

    /// The length of the read buffer when one is held.
    pub fn read_len(&self) -> usize {
        self.read_len
    }

    /// The capacity of `out` when it is held.
    pub fn out_capacity(&self) -> usize {
        self.out_capacity
    }

    /// Whether a read buffer is held (a partial request, or bytes just read).
    pub fn holds_read_buf(&self) -> bool {
        !self.buf.is_empty()
    }

    /// The free tail of the read buffer (allocated first if none is held); moves a partial
    /// request to the front first if needed. Never reallocates a held buffer.
    pub fn read_buf(&mut self) -> &mut [u8] {
        if self.buf.is_empty() {
            self.buf = vec![0u8; self.read_len].into_boxed_slice();
        }
        if self.start > 0 && (self.start == self.end || self.end == self.buf.len()) {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        &mut self.buf[self.end..]
    }

    /// Records that `n` bytes were read into [`ConnBuffers::read_buf`].
    pub fn filled(&mut self, n: usize) {
        self.end += n;
        debug_assert!(self.end <= self.buf.len());
    }

    /// Bytes read but not yet consumed.
    pub fn received(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Marks the first `n` received bytes consumed.
    pub fn consume(&mut self, n: usize) {
        self.start += n.min(self.end - self.start);
    }

    /// How many bytes are read but not yet consumed (a partial request).
    pub fn buffered(&self) -> usize {
        self.end - self.start
    }

    /// Gives `out` its capacity if it has none (allocating): for callers without a pool. A
    /// no-op after [`ConnBuffers::equip`].
    pub fn reserve_out(&mut self) {
        if self.out.capacity() < self.out_capacity {
            self.out.reserve_exact(self.out_capacity - self.out.len());
        }
    }

    /// Takes a read buffer and an `out` from `pool` for whichever of the two is not held.
    pub fn equip(&mut self, pool: &mut BufferPool) {
        if self.buf.is_empty() {
            self.install_read_buf(pool.take_read(self.read_len));
        }
        if self.out.capacity() < self.out_capacity && self.out.is_empty() {
            self.out = pool.take_out(self.out_capacity);
        }
    }

    /// Makes `buf` (of [`ConnBuffers::read_len`] bytes, contents irrelevant) the read buffer,
    /// with nothing received yet. Only when none is held.
    pub fn install_read_buf(&mut self, buf: Box<[u8]>) {
        debug_assert!(self.buf.is_empty() && buf.len() == self.read_len);
        self.buf = buf;
        self.start = 0;
        self.end = 0;
    }

    /// Hands the read buffer back if it holds no partial request.
    pub fn take_read_buf(&mut self) -> Option<Box<[u8]>> {
        if self.buf.is_empty() || self.start != self.end {
            return None;
        }
        self.start = 0;
        self.end = 0;
        Some(std::mem::take(&mut self.buf))
    }

    /// Hands `out` back if it is empty and has capacity.
    pub fn take_out(&mut self) -> Option<Vec<u8>> {
        (self.out.is_empty() && self.out.capacity() > 0).then(|| std::mem::take(&mut self.out))
    }

    /// Gives back to `pool` the read buffer unless it holds a partial request, and `out` if
    /// it is empty: what a connection waiting for its next request keeps is nothing.
    pub fn release(&mut self, pool: &mut BufferPool) {
        if let Some(buf) = self.take_read_buf() {
            pool.put_read(buf);
        }
        if let Some(out) = self.take_out() {
            pool.put_out(out);
        }
    }
}

/// A core's spare buffers, lent to connections only while they have bytes to work on. Keeps at
/// most `limit` of each kind; what is given back beyond that is freed.
pub struct BufferPool {
    reads: Vec<Box<[u8]>>,
    outs: Vec<Vec<u8>>,
    limit: usize,
}

impl BufferPool {
    /// A pool keeping at most `limit` spare buffers of each kind.
    pub fn new(limit: usize) -> BufferPool {
        BufferPool {
            reads: Vec::with_capacity(limit),
            outs: Vec::with_capacity(limit),
            limit,
        }
    }

    /// A read buffer of `len` bytes: a spare one, or a new one.
    pub fn take_read(&mut self, len: usize) -> Box<[u8]> {
        match self.reads.pop() {
            Some(buf) if buf.len() == len => buf,
            _ => vec![0u8; len].into_boxed_slice(),
        }
    }

    /// An empty `out` with room for `capacity` bytes: a spare one, or a new one.
    pub fn take_out(&mut self, capacity: usize) -> Vec<u8> {
        match self.outs.pop() {
            Some(out) if out.capacity() >= capacity => out,
            _ => Vec::with_capacity(capacity),
        }
    }

    /// Keeps `buf` for the next [`BufferPool::take_read`], unless the pool is full.
    pub fn put_read(&mut self, buf: Box<[u8]>) {
        if self.reads.len() < self.limit {
            self.reads.push(buf);
        }
    }

    /// Keeps `out` (cleared) for the next [`BufferPool::take_out`], unless the pool is full.
    pub fn put_out(&mut self, mut out: Vec<u8>) {
        if self.outs.len() < self.limit {
            out.clear();
            self.outs.push(out);
        }
    }

    /// Spare buffers held: (read buffers, `out`s).
    pub fn spares(&self) -> (usize, usize) {
        (self.reads.len(), self.outs.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_idle_connection_gives_both_buffers_back_and_a_partial_request_keeps_its_own() {
        let mut pool = BufferPool::new(4);
        let mut io = ConnBuffers::new(64, 128);
        assert!(
            !io.holds_read_buf() && io.out.capacity() == 0,
            "nothing owned at open"
        );
        io.equip(&mut pool);
        assert_eq!((io.read_buf().len(), io.out.capacity() >= 128), (64, true));
        io.read_buf()[..5].copy_from_slice(b"GET /");
        io.filled(5);
        io.release(&mut pool);
        assert_eq!(
            pool.spares(),
            (0, 1),
            "the partial request keeps its read buffer"
        );
        assert_eq!(io.received(), b"GET /");
        io.consume(5);
        io.release(&mut pool);
        assert_eq!(pool.spares(), (1, 1));
        assert!(!io.holds_read_buf() && io.out.capacity() == 0);
        // The same buffers come back, with nothing received in them.
        io.equip(&mut pool);
        assert_eq!((io.buffered(), pool.spares()), (0, (0, 0)));
    }

    #[test]
    fn out_with_answers_in_it_is_never_given_back() {
        let mut pool = BufferPool::new(4);
        let mut io = ConnBuffers::new(64, 128);
        io.equip(&mut pool);
        io.out.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
        io.release(&mut pool);
        assert_eq!(io.out, b"HTTP/1.1 200 OK\r\n");
        assert_eq!(pool.spares(), (1, 0));
    }

    #[test]
    fn the_pool_keeps_at_most_its_limit() {
        let mut pool = BufferPool::new(1);
        pool.put_read(vec![0; 8].into_boxed_slice());
        pool.put_read(vec![0; 8].into_boxed_slice());
        assert_eq!(pool.spares(), (1, 0));
        assert_eq!(
            pool.take_read(16).len(),
            16,
            "a spare of another size is not lent"
        );
    }

    #[test]
    fn without_a_pool_the_buffers_are_allocated_on_first_use() {
        let mut io = ConnBuffers::new(32, 64);
        assert_eq!(io.read_buf().len(), 32);
        io.reserve_out();
        assert!(io.out.capacity() >= 64);
    }
}
