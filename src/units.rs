//! Byte sizes and durations as people type and read them: the one parser of size flags
//! (`--max-segment-bytes 512MiB`) and the formatters of sizes and latencies in glint's output.
//! Every size unit is a power of 1024. Integers in decoded records are written by `itoa`.

/// Size units, each 1024 times the one before.
const IEC: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
/// The same units as wrk prints them.
const WRK: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];

/// Parses `4096`, `64KiB`, `512MiB`, `1GiB`, `2TiB` (also `K`, `M`, `G`, `T`, `KB`, `MB`…, all
/// powers of 1024).
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let (num, unit) = split_number(text);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{text:?} is not a size (examples: 4096, 64KiB, 512MiB, 1GiB)"))?;
    let shift = match unit.trim_end_matches("iB").trim_end_matches('B') {
        "" => 0,
        "K" | "k" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        _ => {
            return Err(format!(
                "{text:?}: unknown size unit {unit:?} (use KiB, MiB, GiB or TiB)"
            ))
        }
    };
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("{text:?} is too large"))
}

fn split_number(text: &str) -> (&str, &str) {
    let text = text.trim();
    let at = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    (&text[..at], &text[at..])
}

/// `value` divided by 1024 until below it (or out of units), and the index of its unit.
fn scale(mut value: f64) -> (f64, usize) {
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < IEC.len() {
        value /= 1024.0;
        unit += 1;
    }
    (value, unit)
}

/// Bytes for people: `512 B`, `1.5 KiB`, `8.0 MiB`.
pub fn format_bytes(n: u64) -> String {
    match scale(n as f64) {
        (_, 0) => format!("{n} B"),
        (value, unit) => format!("{value:.1} {}", IEC[unit]),
    }
}

/// Bytes as wrk prints them (`512.00B`, `3.00MB`, powers of 1024), so `glint loadgen`'s
/// report reads like wrk's beside it.
pub fn format_bytes_wrk(bytes: f64) -> String {
    let (value, unit) = scale(bytes);
    format!("{value:.2}{}", WRK[unit])
}

/// Microseconds as wrk prints them: us below 1 ms, then ms, then s.
pub fn format_micros_wrk(us: f64) -> String {
    if us < 1000.0 {
        format!("{us:.2}us")
    } else if us < 1_000_000.0 {
        format!("{:.2}ms", us / 1000.0)
    } else {
        format!("{:.2}s", us / 1_000_000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_and_reject_clearly() {
        assert_eq!(parse_bytes("64KiB"), Ok(65_536));
        assert_eq!(parse_bytes("1G"), Ok(1 << 30));
        assert_eq!(parse_bytes("7"), Ok(7));
        assert!(parse_bytes("3PB")
            .unwrap_err()
            .contains("unknown size unit"));
        assert!(parse_bytes("99999999999999TiB")
            .unwrap_err()
            .contains("too large"));
    }

    #[test]
    fn sizes_format_for_people() {
        assert_eq!(format_bytes(0), "0 B");
        assert_eq!(format_bytes(1023), "1023 B");
        assert_eq!(format_bytes(1536), "1.5 KiB");
        assert_eq!(format_bytes(8 << 20), "8.0 MiB");
        assert_eq!(format_bytes(10 << 30), "10.0 GiB");
        // Past the last unit the number grows instead.
        assert_eq!(format_bytes(2048 << 40), "2048.0 TiB");
        // What the formatter prints, the parser reads back.
        assert_eq!(
            parse_bytes(&format_bytes(8 << 20).replace(".0 ", "")),
            Ok(8 << 20)
        );
    }

    #[test]
    fn units_read_like_wrk() {
        assert_eq!(format_micros_wrk(312.0), "312.00us");
        assert_eq!(format_micros_wrk(1020.0), "1.02ms");
        assert_eq!(format_micros_wrk(2_500_000.0), "2.50s");
        assert_eq!(format_bytes_wrk(512.0), "512.00B");
        assert_eq!(format_bytes_wrk(3.0 * 1024.0 * 1024.0), "3.00MB");
    }
}
