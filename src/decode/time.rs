//! Times on the command line and in the output: RFC 3339 UTC with microseconds, relative `-1h`.

use crate::clock::civil_from_days;

const NS_PER_SEC: u64 = 1_000_000_000;

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

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

/// `YYYY-MM-DDTHH:MM:SS.` for whole seconds since the epoch.
fn format_seconds(sec: u64) -> [u8; 20] {
    let (y, m, d) = civil_from_days((sec / 86_400) as i64);
    let s = sec % 86_400;
    let text = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.",
        y.clamp(0, 9999),
        m,
        d,
        s / 3600,
        s / 60 % 60,
        s % 60
    );
    text.as_bytes().try_into().expect("20 bytes")
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

fn digits(b: &[u8], at: usize, n: usize) -> Option<u32> {
    let s = b.get(at..at + n)?;
    s.iter().try_fold(0u32, |acc, &c| {
        c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
    })
}

fn parse_rfc3339(t: &str) -> Option<u64> {
    let b = t.as_bytes();
    let (y, m, d) = (digits(b, 0, 4)?, digits(b, 5, 2)?, digits(b, 8, 2)?);
    if b[4] != b'-' || b[7] != b'-' || !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let days = days_from_civil(i64::from(y), m, d);
    if civil_from_days(days) != (i64::from(y), m, d) {
        return None;
    }
    let day_ns = u64::try_from(days).ok()? * 86_400 * NS_PER_SEC;
    if b.len() == 10 {
        return Some(day_ns);
    }
    if !matches!(b[10], b'T' | b't' | b' ') || b.get(13) != Some(&b':') || b.get(16) != Some(&b':')
    {
        return None;
    }
    let (hh, mm, ss) = (digits(b, 11, 2)?, digits(b, 14, 2)?, digits(b, 17, 2)?);
    if hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    let mut at = 19;
    let mut frac_ns = 0u64;
    if b.get(at) == Some(&b'.') {
        at += 1;
        let start = at;
        while at < b.len() && b[at].is_ascii_digit() {
            if at - start < 9 {
                frac_ns = frac_ns * 10 + u64::from(b[at] - b'0');
            }
            at += 1;
        }
        if at == start {
            return None;
        }
        for _ in (at - start)..9 {
            frac_ns *= 10;
        }
    }
    let offset_s: i64 = match &b[at..] {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), ..] if b.len() == at + 6 && b[at + 3] == b':' => {
            let (oh, om) = (digits(b, at + 1, 2)?, digits(b, at + 4, 2)?);
            let off = i64::from(oh * 3600 + om * 60);
            if *sign == b'+' {
                off
            } else {
                -off
            }
        }
        _ => return None,
    };
    let local = day_ns + u64::from(hh * 3600 + mm * 60 + ss) * NS_PER_SEC + frac_ns;
    let shift = offset_s.unsigned_abs() * NS_PER_SEC;
    if offset_s >= 0 {
        local.checked_sub(shift)
    } else {
        local.checked_add(shift)
    }
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
        assert_eq!(parse_time("-1h", z), Ok(z - 3600 * NS_PER_SEC));
        assert_eq!(parse_time("now", z), Ok(z));
        for bad in [
            "2026-13-01",
            "2026-02-30",
            "2026-11-29T25:00:00Z",
            "yesterday",
            "-1x",
            "2026-11-29T05:00:00",
            "",
        ] {
            assert!(parse_time(bad, z).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn civil_round_trip() {
        for days in [-800_000i64, -1, 0, 59, 60, 11_016, 20_000, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}
