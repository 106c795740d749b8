//! Times on the command line and in the output: RFC 3339 UTC with microseconds, relative `-1h`.

use jiff::civil::Date;
use jiff::{tz::Offset, Timestamp};
use std::io::Write;

const NS_PER_SEC: u64 = 1_000_000_000;

/// Formats `ts_ns` as `YYYY-MM-DDTHH:MM:SS.ffffffZ`, caching the date and time of the last second.
#[derive(Default)]
pub struct TsFormatter {
    cached_sec: Option<u64>,
    prefix: [u8; 20],
}

/// Length of a formatted timestamp.
pub const TS_LEN: usize = 27;

impl TsFormatter {
    pub fn format(&mut self, ts_ns: u64) -> [u8; TS_LEN] {
        let sec = ts_ns / NS_PER_SEC;
        if self.cached_sec != Some(sec) {
            self.prefix = format_seconds(sec);
            self.cached_sec = Some(sec);
        }
        let mut out = [0u8; TS_LEN];
        out[..20].copy_from_slice(&self.prefix);
        let mut micros = (ts_ns % NS_PER_SEC) / 1000;
        for i in (20..26).rev() {
            out[i] = b'0' + (micros % 10) as u8;
            micros /= 10;
        }
        out[26] = b'Z';
        out
    }
}

/// `YYYY-MM-DDTHH:MM:SS.` for whole seconds since the epoch (a u64 of seconds ends in 2554,
/// inside jiff's range, so the fallback never shows).
fn format_seconds(sec: u64) -> [u8; 20] {
    let mut out = *b"1970-01-01T00:00:00.";
    if let Ok(Ok(ts)) = i64::try_from(sec).map(Timestamp::from_second) {
        let _ = write!(&mut out[..], "{}", ts.strftime("%Y-%m-%dT%H:%M:%S."));
    }
    out
}

/// Formats a timestamp as RFC 3339 with microseconds (for summaries; the hot path uses [`TsFormatter`]).
pub fn format_rfc3339(ts_ns: u64) -> String {
    let b = TsFormatter::default().format(ts_ns);
    String::from_utf8_lossy(&b).into_owned()
}

/// Parses `--from`/`--to`: RFC 3339 (`2026-11-29T05:00:00Z`, offsets, fractions), a date
/// (`2026-11-29`, midnight UTC), `now`, or a time relative to now (`-1h`, `-30m`, `-2d`).
pub fn parse_time(text: &str, now_ns: u64) -> Result<u64, String> {
    let t = text.trim();
    if t == "now" {
        return Ok(now_ns);
    }
    if let Some(rel) = t.strip_prefix('-') {
        let d = crate::clock::parse_duration(rel)?;
        let ago = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        return Ok(now_ns.saturating_sub(ago));
    }
    parse_rfc3339(t).ok_or_else(|| {
        format!(
            "invalid time {text:?}: expected RFC 3339 (2026-11-29T05:00:00Z, 2026-11-29T06:00:00+01:00), \
             a date (2026-11-29), now, or a relative time (-1h, -30m, -2d)"
        )
    })
}

/// RFC 3339 with an offset (`Z`, `+01:30`; `T`, `t` or a space between date and time), or a
/// bare date meaning midnight UTC; `None` before 1970 or when it is neither.
fn parse_rfc3339(t: &str) -> Option<u64> {
    let ts = if t.len() == "2026-11-29".len() {
        let midnight = t
            .parse::<Date>()
            .ok()?
            .to_datetime(jiff::civil::Time::midnight());
        Offset::UTC.to_timestamp(midnight).ok()?
    } else {
        t.parse::<Timestamp>().ok()?
    };
    u64::try_from(ts.as_nanosecond()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses_back() {
        let ts = 1_764_000_123_456_789_012;
        let text = format_rfc3339(ts);
        assert_eq!(text, "2025-11-24T16:02:03.456789Z");
        assert_eq!(parse_time(&text, 0), Ok(ts / 1000 * 1000));
        assert_eq!(format_rfc3339(0), "1970-01-01T00:00:00.000000Z");
    }

    #[test]
    fn offsets_dates_and_relative_forms() {
        let z = parse_time("2026-11-29T05:00:00Z", 0).unwrap();
        assert_eq!(parse_time("2026-11-29T06:30:00+01:30", 0), Ok(z));
        assert_eq!(parse_time("2026-11-29T00:00:00-05:00", 0), Ok(z));
        assert_eq!(parse_time("2026-11-29", 0), Ok(z - 5 * 3600 * NS_PER_SEC));
        assert_eq!(parse_time("2026-11-29t05:00:00.5z", 0), Ok(z + 500_000_000));
        assert_eq!(parse_time("2026-11-29 05:00:00Z", 0), Ok(z));
        assert_eq!(parse_time("-1h30m", z), Ok(z - 5400 * NS_PER_SEC));
        assert_eq!(parse_time("-1h", z), Ok(z - 3600 * NS_PER_SEC));
        assert_eq!(parse_time("now", z), Ok(z));
        for bad in [
            "2026-13-01",
            "2026-02-30",
            "2026-11-29T25:00:00Z",
            "yesterday",
            "-1x",
            "2026-11-29T05:00:00",
            "1969-12-31T23:59:59Z",
            "",
        ] {
            assert!(parse_time(bad, z).is_err(), "{bad} should be refused");
        }
    }
}
