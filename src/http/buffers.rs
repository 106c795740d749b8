//! A connection's two buffers, the only memory an I/O backend reads into or writes from: the
//! read buffer (bytes received, a partial request kept at its front) and `out` (answers to send).

/// The read buffer and the answers of one connection. Allocated once at accept.
pub struct ConnBuffers {
    pub(super) buf: Box<[u8]>,
    /// Bytes `start..end` of `buf` are received and not yet consumed.
    pub(super) start: usize,
    pub(super) end: usize,
    /// Answers to write, in request order.
    pub out: Vec<u8>,
}

impl ConnBuffers {
    /// A read buffer of `read_len` bytes and room for `out_capacity` bytes of answers.
    pub fn new(read_len: usize, out_capacity: usize) -> ConnBuffers {
        ConnBuffers {
            buf: vec![0u8; read_len].into_boxed_slice(),
            start: 0,
            end: 0,
            out: Vec::with_capacity(out_capacity),
        }
    }

    /// The free tail of the read buffer; moves a partial request to the front first if needed.
    /// Never reallocates the buffer.
    pub fn read_buf(&mut self) -> &mut [u8] {
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
}
