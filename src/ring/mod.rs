//! Per-core ring files: the durable hand-off between a server core and the compactor.
//!
//! One writer (a server core) appends fixed-size records; readers (compactor, decoder) copy
//! committed slots and validate them. See [`mod@format`] for the file layout and
//! [`crate::record`] for the slot layout.
//!
//! Modules:
//! - [`mod@format`]: the header page and slot geometry.
//! - `mapped`: opening an existing ring: header validated, geometry mapped.
//! - `raw`: the shared memory map and the unsafe code on it.
//! - [`reader`]: reading a live or crashed ring.
//! - [`recover`]: the scan a reopening writer runs.
//! - [`slot`]: validating one record, the rule every reader shares.
//! - [`writer`]: create or reopen, recover, append, sync.

pub mod format;
mod mapped;
mod raw;
pub mod reader;
pub mod recover;
pub mod slot;
pub mod writer;

pub use format::{ring_file_name, RingError, RingHeader};
pub use reader::RingReader;
pub use recover::Recovery;
pub use slot::max_span;
pub use slot::SlotState;
pub use writer::{record_clean_stop, AppendError, Appended, RingOptions, RingWriter};

#[cfg(test)]
mod tests;
