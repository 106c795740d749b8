use super::*;
use std::collections::{BTreeMap, HashMap, HashSet};

/// Checks Prometheus text format 0.0.4: every line a HELP, a TYPE or a sample
/// `name{label="value",...} value`; every family has one HELP and one TYPE before its samples;
/// samples of a family are contiguous; no series appears twice. Returns series -> value.
fn check_exposition(text: &str) -> Result<BTreeMap<String, f64>, String> {
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

#[test]
fn checker_refuses_broken_expositions() {
    let ok = "# HELP a_total A.\n# TYPE a_total counter\na_total{core=\"0\"} 1\n";
    assert!(check_exposition(ok).is_ok());
    for bad in [
        "a_total 1\n",
        "# TYPE a_total counter\na_total 1\n",
        "# HELP a_total A.\n# TYPE a_total counter\na_total{core=\"0\"} 1\na_total{core=\"0\"} 2\n",
        "# HELP a_total A.\n# TYPE a_total counter\na_total{core=\"0\",core=\"1\"} 1\n",
        "# HELP a_total A.\n# TYPE a_total counter\na_total{core=\"0} 1\n",
        "# HELP a_total A.\n# TYPE a_total counter\na_total{core=\"0\"} x\n",
        "# HELP a_total A.\n# TYPE a_total counter\na_total -1\n",
        "# HELP a_total A.\n# TYPE a_total counter\na_total 1",
        "# HELP a A.\n# TYPE a gauge\n# HELP b B.\n# TYPE b gauge\na 1\nb 1\na{x=\"1\"} 1\n",
        "# HELP a A.\n# TYPE a gauge\n# TYPE a gauge\na 1\n",
        "# HELP a A.\n# TYPE a gauge\n1a 1\n",
    ] {
        assert!(check_exposition(bad).is_err(), "accepted {bad:?}");
    }
}

fn cores(n: usize) -> Vec<Arc<CoreStats>> {
    (0..n).map(|_| Arc::new(CoreStats::default())).collect()
}

#[test]
fn render_is_valid_and_complete() {
    let stats = cores(2);
    stats[1].answered(204);
    stats[1].answered(302);
    stats[0].recorded(
        0,
        crate::record::flags::TRUNC_TARGET << Field::Referer as u32,
        512,
    );
    stats[1].rejected(crate::http::parse::Reject::UriTooLong);
    stats[0].conn_opened();
    stats[0].timed_out(true);
    let info = AdminInfo {
        rings: vec![
            RingOccupancy {
                used: 7,
                capacity: 1024,
            },
            RingOccupancy {
                used: 0,
                capacity: 1024,
            },
        ],
    };
    let mut text = String::new();
    render(&mut text, &stats, "uring", &info);
    let series = check_exposition(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let get = |k: &str| *series.get(k).unwrap_or_else(|| panic!("no {k} in\n{text}"));
    assert_eq!(get("glint_requests_total{core=\"1\",status=\"2xx\"}"), 1.0);
    assert_eq!(get("glint_requests_total{core=\"1\",status=\"3xx\"}"), 1.0);
    assert_eq!(get("glint_requests_total{core=\"1\",status=\"4xx\"}"), 1.0);
    assert_eq!(get("glint_requests_total{core=\"0\",status=\"5xx\"}"), 0.0);
    assert_eq!(get("glint_requests_total{core=\"0\",status=\"4xx\"}"), 1.0);
    assert_eq!(get("glint_request_timeouts_total{core=\"0\"}"), 1.0);
    assert_eq!(get("glint_records_written_total{core=\"0\"}"), 1.0);
    assert_eq!(get("glint_record_bytes_total{core=\"0\"}"), 512.0);
    assert_eq!(
        get("glint_truncated_fields_total{core=\"0\",field=\"referer\"}"),
        1.0
    );
    assert_eq!(
        get("glint_truncated_fields_total{core=\"0\",field=\"target\"}"),
        0.0
    );
    assert_eq!(
        get("glint_parse_errors_total{core=\"1\",reason=\"uri_too_long\"}"),
        1.0
    );
    assert_eq!(get("glint_connections_open{core=\"0\"}"), 1.0);
    assert_eq!(get("glint_connections_accepted_total{core=\"0\"}"), 1.0);
    assert_eq!(get("glint_ring_slots_used{core=\"0\"}"), 7.0);
    assert_eq!(get("glint_ring_slots{core=\"1\"}"), 1024.0);
    assert_eq!(get("glint_io_backend{backend=\"uring\"}"), 1.0);
    let build = format!(
        "glint_build_info{{version=\"{}\"}}",
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(get(&build), 1.0);
    for family in [
        "glint_ring_full_rejections_total",
        "glint_connections_refused_total",
        "glint_accept_errors_total",
        "glint_msync_errors_total",
        "glint_idle_timeouts_total",
        "glint_redirects_refused_total",
        "glint_gpc_dropped_total",
    ] {
        assert_eq!(get(&format!("{family}{{core=\"1\"}}")), 0.0);
    }
    // Bounded labels: 2 cores give a fixed number of series, whatever the traffic was.
    assert_eq!(
        get("glint_proxy_protocol_errors_total{core=\"0\",reason=\"malformed\"}"),
        0.0
    );
    let proxy_reasons = crate::http::proxy::PROXY_ERROR_REASONS.len();
    let per_core = 4 + PER_CORE.len() + REJECT_REASONS.len() + Field::ALL.len() + proxy_reasons + 2;
    assert_eq!(series.len(), 2 * per_core + 2);
}

fn state(stats: Vec<Arc<CoreStats>>) -> Arc<AdminState> {
    Arc::new(AdminState::new(
        stats,
        "epoll",
        Box::new(|core| RingOccupancy {
            used: core as u64,
            capacity: 64,
        }),
    ))
}

/// Sends `request` on a fresh connection and reads until the server closes it.
fn exchange(addr: SocketAddr, request: &str) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).unwrap();
    reply
}

fn get(addr: SocketAddr, path: &str) -> (String, String) {
    let reply = exchange(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"),
    );
    let (head, body) = reply.split_once("\r\n\r\n").expect("a complete answer");
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .expect("Content-Length");
    assert_eq!(length.parse::<usize>().unwrap(), body.len(), "{head}");
    (head.to_string(), body.to_string())
}

fn stop(state: &AdminState, handle: JoinHandle<()>) {
    state.stop.store(true, Relaxed);
    let deadline = Instant::now() + Duration::from_secs(3);
    while !handle.is_finished() {
        assert!(Instant::now() < deadline, "admin thread did not stop");
        std::thread::sleep(Duration::from_millis(10));
    }
    handle.join().unwrap();
}

#[test]
fn admin_listener_serves_metrics_that_move() {
    let stats = cores(2);
    let st = state(stats.clone());
    let (addr, handle) = spawn_admin("127.0.0.1:0".parse().unwrap(), st.clone()).unwrap();
    let key = "glint_requests_total{core=\"1\",status=\"2xx\"}";
    let (head, body) = get(addr, "/metrics");
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(
        head.contains("Content-Type: text/plain; version=0.0.4"),
        "{head}"
    );
    let before = check_exposition(&body).unwrap();
    assert_eq!(before[key], 0.0);
    assert_eq!(before["glint_ring_slots_used{core=\"1\"}"], 1.0);
    stats[1].answered(200);
    stats[1].answered(204);
    let after = check_exposition(&get(addr, "/metrics?x=1").1).unwrap();
    assert_eq!(after[key], 2.0);
    let (health_head, health_body) = get(addr, "/healthz");
    assert!(
        health_head.starts_with("HTTP/1.1 200 OK\r\n"),
        "{health_head}"
    );
    assert_eq!(health_body, "ok\n");
    st.draining.store(true, Relaxed);
    assert!(get(addr, "/healthz").0.starts_with("HTTP/1.1 503 "));
    assert!(get(addr, "/nope").0.starts_with("HTTP/1.1 404 "));
    let post = exchange(
        addr,
        "POST /metrics HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    );
    assert!(
        post.starts_with("HTTP/1.1 405 ") && post.contains("Allow: GET, HEAD"),
        "{post}"
    );
    let bad = exchange(
        addr,
        "GET /metrics HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc",
    );
    assert!(bad.starts_with("HTTP/1.1 400 "), "{bad}");
    assert!(exchange(addr, "\x16\x03\x01garbage\r\n\r\n").starts_with("HTTP/1.1 400 "));
    stop(&st, handle);
    assert!(
        TcpStream::connect(addr).is_err(),
        "listener still open after stop"
    );
}

#[test]
fn admin_keeps_alive_answers_head_and_closes_idle_connections() {
    let mut st = AdminState::new(cores(1), "uring", Box::new(|_| RingOccupancy::default()));
    st.idle_timeout = Duration::from_millis(300);
    let st = Arc::new(st);
    let (addr, handle) = spawn_admin("127.0.0.1:0".parse().unwrap(), st.clone()).unwrap();
    let two = exchange(
        addr,
        "GET /healthz HTTP/1.1\r\nHost: a\r\n\r\nHEAD /metrics HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    );
    let (first, second) = two.split_once("ok\n").expect("first answer");
    assert!(first.starts_with("HTTP/1.1 200 OK\r\n"), "{two}");
    assert!(
        second.starts_with("HTTP/1.1 200 OK\r\n") && second.ends_with("\r\n\r\n"),
        "{second}"
    );
    assert!(
        !second.contains("Content-Length: 0\r\n"),
        "HEAD keeps the GET length: {second}"
    );
    // An idle connection is closed by the server after idle_timeout.
    let mut idle = TcpStream::connect(addr).unwrap();
    idle.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let started = Instant::now();
    assert_eq!(idle.read(&mut [0u8; 16]).unwrap(), 0);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    stop(&st, handle);
}
