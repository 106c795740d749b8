//! A strict checker of Prometheus text exposition format 0.0.4, for the admin listener's tests
//! (`tests/admin.rs`), `tests/metrics.rs` and the shipper's metrics (`tests/ship.rs`).

use std::collections::{BTreeMap, HashMap, HashSet};

/// Checks Prometheus text format 0.0.4: every line a HELP, a TYPE or a sample
/// `name{label="value",...} value`; every family has one HELP and one TYPE before its samples;
/// samples of a family are contiguous; no series appears twice. Returns series -> value.
pub fn check_exposition(text: &str) -> Result<BTreeMap<String, f64>, String> {
    let mut help = HashSet::new();
    let mut types: HashMap<String, String> = HashMap::new();
    let mut finished = HashSet::new();
    let mut current: Option<String> = None;
    let mut series = BTreeMap::new();
    if !text.ends_with('\n') {
        return Err("exposition must end with a newline".into());
    }
    for (n, line) in text.lines().enumerate() {
        let at = |e: &str| format!("line {}: {e}: {line:?}", n + 1);
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, doc) = rest
                .split_once(' ')
                .ok_or_else(|| at("HELP without text"))?;
            if !metric_name(name) || doc.is_empty() || !help.insert(name.to_string()) {
                return Err(at("bad or repeated HELP"));
            }
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest
                .split_once(' ')
                .ok_or_else(|| at("TYPE without kind"))?;
            let known = ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind);
            if !known || !help.contains(name) || types.insert(name.into(), kind.into()).is_some() {
                return Err(at("bad TYPE, TYPE before HELP, or repeated TYPE"));
            }
        } else if line.starts_with('#') {
            return Err(at("unexpected comment"));
        } else {
            let (name, labels, value) = sample(line).map_err(at)?;
            let kind = types.get(&name).ok_or_else(|| at("sample without TYPE"))?;
            if kind == "counter" && (value.is_nan() || value < 0.0) {
                return Err(at("negative counter"));
            }
            if current.as_deref() != Some(name.as_str()) {
                if let Some(done) = current.replace(name.clone()) {
                    finished.insert(done);
                }
                if finished.contains(&name) {
                    return Err(at("samples of one family are not contiguous"));
                }
            }
            let key = format!("{name}{{{}}}", labels.join(","));
            if series.insert(key, value).is_some() {
                return Err(at("duplicate series"));
            }
        }
    }
    if help.len() != types.len() {
        return Err("a HELP has no TYPE".into());
    }
    Ok(series)
}

fn metric_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// Parses `name{a="x",b="y"} value` into the name, sorted `k="v"` labels and the value.
fn sample(line: &str) -> Result<(String, Vec<String>, f64), &'static str> {
    let name_end = line.find(['{', ' ']).ok_or("no value")?;
    let name = &line[..name_end];
    if !metric_name(name) {
        return Err("bad metric name");
    }
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(mut body) = rest.strip_prefix('{') {
        while !body.starts_with('}') {
            let (key, after) = body.split_once("=\"").ok_or("label without =\"")?;
            let key_ok = metric_name(key) && !key.contains(':') && !key.starts_with("__");
            if !key_ok
                || labels
                    .iter()
                    .any(|l: &String| l.starts_with(&format!("{key}=")))
            {
                return Err("bad or repeated label name");
            }
            let mut end = None;
            let mut escaped = false;
            for (i, c) in after.char_indices() {
                match (escaped, c) {
                    (false, '\\') => escaped = true,
                    (false, '"') => {
                        end = Some(i);
                        break;
                    }
                    (false, '\n') => return Err("raw newline in label value"),
                    (true, '\\' | '"' | 'n') => escaped = false,
                    (true, _) => return Err("bad escape in label value"),
                    _ => {}
                }
            }
            let end = end.ok_or("unterminated label value")?;
            labels.push(format!("{key}=\"{}\"", &after[..end]));
            body = &after[end + 1..];
            body = body.strip_prefix(',').unwrap_or(body);
        }
        rest = &body[1..];
    }
    labels.sort();
    let value = rest.strip_prefix(' ').ok_or("no space before the value")?;
    let value = value.split(' ').next().unwrap_or("");
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        v => v.parse().map_err(|_| "value is not a number")?,
    };
    Ok((name.to_string(), labels, value))
}
