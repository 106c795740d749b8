//! Parsing of the byte-size flags (`4096`, `64KiB`, `512MiB`, `1GiB`).

/// Parses `4096`, `64KiB`, `512MiB`, `1GiB`, `2TiB` (also `K`, `M`, `G`, `T`, `KB`, `MB`…, all powers of 1024).
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
}
