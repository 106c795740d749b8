//! The command line of `glint loadgen` and its validation into a [`Plan`].

use super::target::Target;
use crate::clock::parse_duration;
use std::path::PathBuf;
use std::time::Duration;

/// HTTP methods the load generator can send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LoadMethod {
    #[value(name = "GET")]
    Get,
    #[value(name = "HEAD")]
    Head,
    #[value(name = "POST")]
    Post,
}

impl LoadMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            LoadMethod::Get => "GET",
            LoadMethod::Head => "HEAD",
            LoadMethod::Post => "POST",
        }
    }
}

/// Options of `glint loadgen` (the flags wrk and wrk2 have mean the same here).
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = AFTER_HELP)]
pub struct LoadgenArgs {
    /// Target URL, http:// only, e.g. http://127.0.0.1:8080/p.gif?e=open
    #[arg(value_name = "URL")]
    pub url: String,
    /// Open connections in total, shared out over the threads.
    #[arg(
        short = 'c',
        long = "connections",
        value_name = "N",
        default_value_t = 10
    )]
    pub connections: usize,
    /// Threads, each with its own event loop and share of the connections.
    #[arg(short = 't', long = "threads", value_name = "N", default_value_t = 2)]
    pub threads: usize,
    /// How long to run, e.g. 10s, 500ms, 1m [default: 10s unless -n is given].
    #[arg(short = 'd', long = "duration", value_name = "DUR", value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Stop after this many requests in total (connect failures count as attempts).
    #[arg(short = 'n', long = "requests", value_name = "N")]
    pub requests: Option<u64>,
    /// Open loop at this total rate in requests per second (wrk2): latency counts from the
    /// planned send time, so a stalled server shows in the percentiles.
    #[arg(short = 'R', long = "rate", value_name = "REQ/S")]
    pub rate: Option<f64>,
    /// Requests in flight per connection (1 = no pipelining). Closed loop sends them as one
    /// batch and the next batch when all are answered (as wrk's pipeline script); open loop
    /// sends each when due while fewer than N are outstanding.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub pipeline: usize,
    /// Extra request header; repeat for several. Replaces the default Host or User-Agent.
    #[arg(short = 'H', long = "header", value_name = "'Name: value'")]
    pub headers: Vec<String>,
    /// Request method [default: GET, or POST when --body is given].
    #[arg(long, value_enum, value_name = "METHOD")]
    pub method: Option<LoadMethod>,
    /// Request body for POST: the text itself, or @FILE for a file's contents.
    #[arg(long, value_name = "TEXT|@FILE")]
    pub body: Option<String>,
    /// Fill each request from realistic templates: event, campaign and user ids, rotating
    /// real-world User-Agent and Referer strings, some longer than a 512-byte slot.
    #[arg(long)]
    pub vary: bool,
    /// Add a unique increasing id to every request's query string under this name.
    #[arg(long, value_name = "NAME")]
    pub id_param: Option<String>,
    /// Write the ids (--id-param) of requests that got a complete 2xx answer, one per line, in
    /// the order the answers arrived on each thread.
    #[arg(long, value_name = "FILE", requires = "id_param")]
    pub acked_out: Option<PathBuf>,
    /// A request not answered within this time counts as a timeout error (and its connection
    /// is reopened); a connect that takes longer counts as a connect error.
    #[arg(long, value_name = "DUR", default_value = "2s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Print the summary as one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    /// Also print the detailed latency percentile spectrum.
    #[arg(long)]
    pub latency: bool,
}

const AFTER_HELP: &str = "\
Every run ends by itself (-d or -n). Ctrl-C ends it early; the summary is still printed and
marked interrupted. The summary goes to stdout (text, or JSON with --json); a live progress
line goes to stderr when it is a terminal. Counts always add up: sent = completed + read,
write, timeout and protocol errors + in flight at end. Exit status 0 after a run, 1 on a bad
flag or an unreachable host name.";

/// A validated run description.
#[derive(Debug, Clone)]
pub struct Plan {
    pub target: Target,
    pub connections: usize,
    pub threads: usize,
    pub duration: Option<Duration>,
    pub requests: Option<u64>,
    pub rate: Option<f64>,
    pub pipeline: usize,
    pub method: LoadMethod,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
    pub vary: bool,
    pub id_param: Option<String>,
    pub acked_out: Option<PathBuf>,
    pub timeout: Duration,
}

impl Plan {
    /// Checks every flag; each problem is one line naming the flag.
    pub fn from_args(args: &LoadgenArgs) -> Result<Plan, String> {
        let target = Target::parse(&args.url)?;
        if args.connections == 0 {
            return Err("-c/--connections must be at least 1".into());
        }
        if args.threads == 0 {
            return Err("-t/--threads must be at least 1".into());
        }
        if !(1..=1024).contains(&args.pipeline) {
            return Err(format!(
                "--pipeline {} must be from 1 to 1024",
                args.pipeline
            ));
        }
        if let Some(r) = args.rate {
            if !(r.is_finite() && r > 0.0) {
                return Err(format!("-R/--rate {r} must be a positive number"));
            }
        }
        if args.requests == Some(0) {
            return Err("-n/--requests must be at least 1".into());
        }
        if args.duration.is_some_and(|d| d.is_zero()) {
            return Err("-d/--duration must be longer than zero".into());
        }
        if args.timeout.is_zero() {
            return Err("--timeout must be longer than zero".into());
        }
        let headers = args
            .headers
            .iter()
            .map(|h| parse_header(h))
            .collect::<Result<Vec<_>, _>>()?;
        let body = args.body.as_deref().map(load_body).transpose()?;
        let method = match (args.method, &body) {
            (Some(m @ (LoadMethod::Get | LoadMethod::Head)), Some(_)) => {
                return Err(format!("--body needs --method POST, not {}", m.as_str()))
            }
            (Some(m), _) => m,
            (None, Some(_)) => LoadMethod::Post,
            (None, None) => LoadMethod::Get,
        };
        if let Some(name) = &args.id_param {
            if name.is_empty() || !name.bytes().all(is_query_name_byte) {
                return Err(format!(
                    "--id-param {name:?} must be a non-empty query parameter name (letters, digits, - _ .)"
                ));
            }
        }
        let duration = match (args.duration, args.requests) {
            (None, None) => Some(Duration::from_secs(10)),
            (d, _) => d,
        };
        Ok(Plan {
            target,
            connections: args.connections,
            // wrk's rule: never more threads than connections.
            threads: args.threads.min(args.connections),
            duration,
            requests: args.requests,
            rate: args.rate,
            pipeline: args.pipeline,
            method,
            headers,
            body,
            vary: args.vary,
            id_param: args.id_param.clone(),
            acked_out: args.acked_out.clone(),
            timeout: args.timeout,
        })
    }
}

fn is_query_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')
}

fn parse_header(text: &str) -> Result<(String, String), String> {
    let (name, value) = text
        .split_once(':')
        .ok_or_else(|| format!("-H {text:?}: expected 'Name: value'"))?;
    let name = name.trim();
    let ok_name = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if !ok_name {
        return Err(format!("-H {text:?}: {name:?} is not a valid header name"));
    }
    let value = value.trim();
    if value.bytes().any(|b| b == b'\r' || b == b'\n') {
        return Err(format!("-H {text:?}: the value must not contain CR or LF"));
    }
    Ok((name.to_string(), value.to_string()))
}

fn load_body(spec: &str) -> Result<Vec<u8>, String> {
    match spec.strip_prefix('@') {
        Some(path) => std::fs::read(path).map_err(|e| format!("--body @{path}: cannot read: {e}")),
        None => Ok(spec.as_bytes().to_vec()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: LoadgenArgs,
    }

    fn plan(argv: &[&str]) -> Result<Plan, String> {
        let cli = Cli::try_parse_from(std::iter::once("loadgen").chain(argv.iter().copied()))
            .map_err(|e| e.to_string())?;
        Plan::from_args(&cli.args)
    }

    #[test]
    fn wrk_style_flags_parse() {
        let p = plan(&[
            "http://127.0.0.1:8080/p.gif",
            "-c",
            "64",
            "-t",
            "2",
            "-d",
            "3s",
            "-R",
            "1000",
            "-H",
            "X-A: b",
        ])
        .unwrap();
        assert_eq!((p.connections, p.threads, p.pipeline), (64, 2, 1));
        assert_eq!(p.duration, Some(Duration::from_secs(3)));
        assert_eq!(p.rate, Some(1000.0));
        assert_eq!(p.headers, vec![("X-A".to_string(), "b".to_string())]);
        assert_eq!(p.method, LoadMethod::Get);
    }

    #[test]
    fn defaults_and_derived_values() {
        let p = plan(&["http://h/", "-c", "1", "-t", "4", "--body", "x"]).unwrap();
        assert_eq!(p.threads, 1, "threads capped by connections");
        assert_eq!(p.method, LoadMethod::Post);
        assert_eq!(p.duration, Some(Duration::from_secs(10)));
        let p = plan(&["http://h/", "-n", "5"]).unwrap();
        assert_eq!((p.duration, p.requests), (None, Some(5)));
    }

    #[test]
    fn bad_flags_are_one_clear_error() {
        for (argv, needle) in [
            (&["http://h/", "-c", "0"][..], "--connections"),
            (&["http://h/", "--pipeline", "0"], "--pipeline"),
            (&["http://h/", "-R", "0"], "--rate"),
            (&["http://h/", "-H", "NoColon"], "Name: value"),
            (&["http://h/", "-H", "Bad Name: v"], "valid header name"),
            (&["http://h/", "--method", "GET", "--body", "x"], "POST"),
            (&["http://h/", "--body", "@/nonexistent/x"], "cannot read"),
            (&["http://h/", "--id-param", "a&b"], "--id-param"),
            (&["https://h/"], "http://"),
            (&["http://h/", "-d", "0s"], "--duration"),
        ] {
            let err = plan(argv).unwrap_err();
            assert!(err.contains(needle), "{argv:?}: {err}");
        }
        assert!(plan(&["http://h/", "--acked-out", "f"]).is_err());
    }
}
