//! The output stream: one large buffer flushed in big writes; a closed pipe ends quietly.

use std::io::Write;

/// Bytes gathered before one write to stdout.
const FLUSH_AT: usize = 1 << 20;

/// Why output stopped.
#[derive(Debug)]
pub enum OutputError {
    /// The reader went away (`glint decode | head`): not an error for the user.
    Closed,
    Io(std::io::Error),
}

/// Buffered record output.
pub struct Output<'w> {
    pub buf: Vec<u8>,
    sink: &'w mut dyn Write,
}

impl<'w> Output<'w> {
    pub fn new(sink: &'w mut dyn Write) -> Output<'w> {
        Output {
            buf: Vec::with_capacity(FLUSH_AT + 64 * 1024),
            sink,
        }
    }

    /// Writes the buffer out once it is large.
    #[inline]
    pub fn maybe_flush(&mut self) -> Result<(), OutputError> {
        if self.buf.len() >= FLUSH_AT {
            self.flush()?;
        }
        Ok(())
    }

    pub fn flush(&mut self) -> Result<(), OutputError> {
        let result = self
            .sink
            .write_all(&self.buf)
            .and_then(|()| self.sink.flush());
        self.buf.clear();
        result.map_err(|e| match e.kind() {
            std::io::ErrorKind::BrokenPipe => OutputError::Closed,
            _ => OutputError::Io(e),
        })
    }
}
