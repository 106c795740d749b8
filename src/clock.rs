//! Wall-clock time and the per-core cached HTTP `Date` value.

use std::time::{SystemTime, UNIX_EPOCH};

/// Nanoseconds since the Unix epoch (0 if the clock is before 1970).
#[inline]
pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Whole seconds since the Unix epoch, from the real clock (not a core's cached second).
#[inline]
pub fn now_secs() -> u64 {
    now_ns() / 1_000_000_000
}

/// Length of an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`).
pub const HTTP_DATE_LEN: usize = 29;

/// One core's current `Date` header value, refreshed by that core's own timer once a second.
#[derive(Clone)]
pub struct HttpDate {
    bytes: [u8; HTTP_DATE_LEN],
    secs: u64,
}

impl Default for HttpDate {
    fn default() -> Self {
        let mut d = HttpDate {
            bytes: [b' '; HTTP_DATE_LEN],
            secs: u64::MAX,
        };
        d.refresh(now_ns() / 1_000_000_000);
        d
    }
}

impl HttpDate {
    /// Re-renders the value if `unix_secs` is a new second.
    pub fn refresh(&mut self, unix_secs: u64) {
        if unix_secs != self.secs {
            self.secs = unix_secs;
            self.bytes = format_imf_fixdate(unix_secs);
        }
    }

    /// The second the value was rendered for.
    pub fn secs(&self) -> u64 {
        self.secs
    }

    pub fn as_bytes(&self) -> &[u8; HTTP_DATE_LEN] {
        &self.bytes
    }
}

/// Formats seconds since the epoch as an RFC 9110 IMF-fixdate (httpdate), without allocating.
pub fn format_imf_fixdate(unix_secs: u64) -> [u8; HTTP_DATE_LEN] {
    use std::io::Write as _;
    // httpdate panics past year 9999.
    const LAST_SECOND_OF_9999: u64 = 253_402_300_799;
    let secs = unix_secs.min(LAST_SECOND_OF_9999);
    let date = httpdate::HttpDate::from(UNIX_EPOCH + std::time::Duration::from_secs(secs));
    let mut out = *b"Thu, 01 Jan 1970 00:00:00 GMT";
    let _ = write!(&mut out[..], "{date}");
    out
}

/// Days since 1970-01-01 to (year, month 1..=12, day 1..=31), proleptic Gregorian
/// (Howard Hinnant's `civil_from_days`).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Parses a duration in jiff's friendly format: `250ms`, `1s`, `1.5s`, `5m`, `1h30m`, `7d`
/// (a day is 24 hours here); a bare number is seconds.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let t = text.trim();
    let invalid = |why: &dyn std::fmt::Display| {
        format!("invalid duration {text:?}: {why} (write a number and a unit such as 500ms, 1s, 5m, 1h, 7d)")
    };
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        let secs: f64 = t.parse().map_err(|e| invalid(&e))?;
        return std::time::Duration::try_from_secs_f64(secs).map_err(|e| invalid(&e));
    }
    let span: jiff::Span = t.parse().map_err(|e| invalid(&e))?;
    let exact = span
        .to_duration(jiff::SpanRelativeTo::days_are_24_hours())
        .map_err(|e| invalid(&e))?;
    std::time::Duration::try_from(exact).map_err(|e| invalid(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        use std::time::Duration;
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert!(parse_duration("fast")
            .unwrap_err()
            .contains("invalid duration"));
        assert!(parse_duration("3 fortnights")
            .unwrap_err()
            .contains("unit designator"));
        for (t, want) in [
            ("7d", 7 * 86_400_000),
            ("1h30m", 5_400_000),
            ("500 ms", 500),
            ("0.25", 250),
            ("1.5h", 5_400_000),
        ] {
            assert_eq!(parse_duration(t), Ok(Duration::from_millis(want)), "{t}");
        }
        for bad in ["", "-1s", "1e3", "2 months", "1.5.5s", "inf"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn imf_fixdate_matches_rfc_example_and_leap_days() {
        assert_eq!(
            &format_imf_fixdate(784_111_777),
            b"Sun, 06 Nov 1994 08:49:37 GMT"
        );
        assert_eq!(&format_imf_fixdate(0), b"Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(
            &format_imf_fixdate(951_782_400),
            b"Tue, 29 Feb 2000 00:00:00 GMT"
        );
        assert_eq!(
            &format_imf_fixdate(1_798_761_599),
            b"Thu, 31 Dec 2026 23:59:59 GMT"
        );
        assert_eq!(
            &format_imf_fixdate(u64::MAX),
            b"Fri, 31 Dec 9999 23:59:59 GMT"
        );
    }
}
