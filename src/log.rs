//! One line per event on stderr, with a level prefix journald understands.
//!
//! Under systemd (`JOURNAL_STREAM` set) lines start with the sd-daemon priority prefix
//! (`<3>`, `<4>`, `<6>`), which journald turns into the entry's priority; on a terminal they
//! start with `error:`, `warn:` or `info:`. Nothing is logged per request.

use std::io::Write;
use std::sync::OnceLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Error,
    Warn,
    Info,
}

fn journald() -> bool {
    static J: OnceLock<bool> = OnceLock::new();
    *J.get_or_init(|| std::env::var_os("JOURNAL_STREAM").is_some())
}

/// Writes one log line; used through the `error!`, `warn!` and `info!` macros.
pub fn write(level: Level, args: std::fmt::Arguments<'_>) {
    let prefix = match (journald(), level) {
        (true, Level::Error) => "<3>",
        (true, Level::Warn) => "<4>",
        (true, Level::Info) => "<6>",
        (false, Level::Error) => "error: ",
        (false, Level::Warn) => "warn: ",
        (false, Level::Info) => "info: ",
    };
    let mut line = String::with_capacity(128);
    use std::fmt::Write as _;
    let _ = write!(line, "{prefix}{args}");
    line.retain(|c| c != '\n');
    line.push('\n');
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

#[macro_export]
macro_rules! info { ($($t:tt)*) => { $crate::log::write($crate::log::Level::Info, format_args!($($t)*)) } }
#[macro_export]
macro_rules! warn { ($($t:tt)*) => { $crate::log::write($crate::log::Level::Warn, format_args!($($t)*)) } }
#[macro_export]
macro_rules! error { ($($t:tt)*) => { $crate::log::write($crate::log::Level::Error, format_args!($($t)*)) } }
