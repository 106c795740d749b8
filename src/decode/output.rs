//! The output stream: one large buffer flushed in big writes; a closed pipe ends quietly.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

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

/// A file written as `FILE.partial` and renamed to `FILE` once complete, so that no reader
/// ever sees half of it; dropped before [`PartialFile::complete`], the partial file is removed.
pub struct PartialFile {
    file: Option<BufWriter<std::fs::File>>,
    partial: PathBuf,
    path: PathBuf,
}

impl PartialFile {
    pub fn create(path: &Path) -> Result<PartialFile, String> {
        let mut name = path.as_os_str().to_owned();
        name.push(".partial");
        let partial = PathBuf::from(name);
        let file =
            std::fs::File::create(&partial).map_err(|e| format!("{}: {e}", partial.display()))?;
        Ok(PartialFile {
            file: Some(BufWriter::with_capacity(1 << 20, file)),
            partial,
            path: path.to_owned(),
        })
    }

    /// Flushes, syncs and renames the file to its name.
    pub fn complete(mut self) -> Result<(), String> {
        let file = self.file.take().expect("completed once");
        let err = |e: std::io::Error| format!("{}: {e}", self.partial.display());
        let file = file.into_inner().map_err(|e| err(e.into_error()))?;
        file.sync_all().map_err(err)?;
        std::fs::rename(&self.partial, &self.path).map_err(err)?;
        Ok(())
    }
}

impl Write for PartialFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.file.as_mut().expect("not completed").write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.file.as_mut().expect("not completed").flush()
    }
}

impl Drop for PartialFile {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = std::fs::remove_file(&self.partial);
        }
    }
}
