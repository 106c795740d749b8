//! `glint report`: rings and segments summarised as one self-contained HTML page.
//!
//! The records are read and selected exactly as `glint decode` reads them (same inputs,
//! merge, dedup and `--from`/`--to`/`--where` filter) and counted by the same
//! [`Summary`] as `decode --stats`, so the page and the terminal show the same numbers.
//! [`html`] lays out the page, [`chart`] draws its SVG charts.

#![forbid(unsafe_code)]

pub mod chart;
pub mod html;

use crate::decode::source::{discover, Problems};
use crate::decode::stats::{Summary, DEFAULT_TOP};
use crate::decode::{open_merger, DecodeArgs, Format, Plan};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// How often progress is printed on stderr while reading.
const PROGRESS_EVERY: Duration = Duration::from_secs(2);

/// Options of `glint report`.
#[derive(Debug, Clone, clap::Args)]
#[command(after_long_help = AFTER_HELP)]
pub struct ReportArgs {
    /// Data dirs, ring files (ring-NNN.glr) or segment files (*.gls), read as `glint decode`
    /// reads them: merged in time order, each record counted once.
    #[arg(value_name = "PATH", default_value = "./glint-data")]
    pub paths: Vec<PathBuf>,
    /// Write the page to FILE (written as FILE.partial, renamed when complete); without it the
    /// page goes to stdout.
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Only records at or after TIME: RFC 3339 (2026-11-29T05:00:00Z), a date (2026-11-29),
    /// `now`, or relative to now (-1h, -30m, -7d).
    #[arg(long, value_name = "TIME", allow_hyphen_values = true)]
    pub from: Option<String>,
    /// Only records before TIME (same forms as --from).
    #[arg(long, value_name = "TIME", allow_hyphen_values = true)]
    pub to: Option<String>,
    /// Only records where FIELD=VALUE, FIELD!=VALUE or FIELD~TEXT holds, as in
    /// decode's --where (e.g. path=/open.gif, status=200). Repeat to require several.
    #[arg(long = "where", value_name = "COND")]
    pub conditions: Vec<String>,
    /// Also count hits per group of these keys, with a column per agent class (people's
    /// browsers apart from mail proxies, scanners, bots): a decode field (status, path, agent,
    /// referer, ...), or any other name, or q.NAME, for that query parameter. Repeat or use a
    /// comma list: --by cid,e shows opens per campaign and event.
    #[arg(long, value_name = "KEYS")]
    pub by: Vec<String>,
    /// Entries in each top list (paths, agents, referers, user agents) and --by groups shown
    /// (0: all).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_TOP)]
    pub top: usize,
    /// Label agents with the rules of this file instead of the built-in ones (as decode).
    #[arg(long, value_name = "FILE")]
    pub agents: Option<PathBuf>,
    /// Read on past damaged segment blocks and unusable PATHs (each reported on stderr and
    /// counted on the page; the exit status is then 1), as `glint decode --skip-bad`.
    #[arg(long)]
    pub skip_bad: bool,
    /// The page's title (default: "glint report" and the PATHs).
    #[arg(long, value_name = "TEXT")]
    pub title: Option<String>,
}

const AFTER_HELP: &str = "\
The page holds: hits per minute (per hour for spans over 3 hours, per day over 7 days) as
charts by status and by agent class, agent classes and labels, the --by groups, statuses, top
paths, referers and user agents, truncated records, error answers, damaged inputs, the time
span, instances and cores. Every count is the one `glint decode --stats` prints for the same
PATHs and options. The page fetches nothing (inline CSS and SVG, a Content-Security-Policy of
default-src 'none', no script) and fits a phone's width.

Progress goes to stderr every 2 s while reading.

Exit status: 0 when every input read cleanly, 1 when an input is damaged (each problem is one
line on stderr naming the file and byte offset) or an argument is invalid.
";

impl ReportArgs {
    /// The same selection as `glint decode --stats` options.
    fn decode_args(&self) -> DecodeArgs {
        DecodeArgs {
            paths: self.paths.clone(),
            format: Format::Jsonl,
            output: None,
            from: self.from.clone(),
            to: self.to.clone(),
            fields: None,
            conditions: self.conditions.clone(),
            expand_query: false,
            follow: false,
            verify: false,
            skip_bad: self.skip_bad,
            stats: true,
            by: self.by.clone(),
            top: self.top,
            agents: self.agents.clone(),
        }
    }

    /// The selecting options as given, for the page's footer.
    fn selection(&self) -> Vec<String> {
        let mut list = Vec::new();
        if let Some(t) = &self.from {
            list.push(format!("--from {t}"));
        }
        if let Some(t) = &self.to {
            list.push(format!("--to {t}"));
        }
        for c in &self.conditions {
            list.push(format!("--where {c}"));
        }
        list
    }
}

/// Runs `glint report`.
pub fn run(args: ReportArgs) -> Result<ExitCode, crate::BoxError> {
    let now = crate::clock::now_ns();
    let decode = args.decode_args();
    let mut plan = Plan::new(&decode, now)?;
    let mut problems = Problems::default();
    let inputs = discover(&decode.paths, decode.skip_bad.then_some(&mut problems))?;
    let mut merger = open_merger(&inputs, &plan, decode.skip_bad, &mut problems);
    let mut summary = Summary::new(plan.agents.clone(), plan.by.clone());
    let started = Instant::now();
    let mut last = started;
    summary.read_all(&mut merger, &mut plan.filter, &mut problems, &mut |read| {
        if last.elapsed() >= PROGRESS_EVERY {
            last = Instant::now();
            crate::info!(
                "glint report: {read} records read ({:.0} s)",
                started.elapsed().as_secs_f64()
            );
        }
    });
    let default_title = format!(
        "glint report: {}",
        args.paths
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let info = html::PageInfo {
        title: args.title.as_deref().unwrap_or(&default_title),
        inputs: args.paths.iter().map(|p| p.display().to_string()).collect(),
        selection: args.selection(),
        problems: problems.count,
        generated_ns: now,
        top: args.top,
    };
    let page = html::render(&summary, &info);
    match &args.output {
        Some(path) => {
            use std::io::Write;
            let mut file = crate::decode::output::PartialFile::create(path)?;
            file.write_all(page.as_bytes())
                .map_err(|e| format!("{}: {e}", path.display()))?;
            file.complete()?;
        }
        None => {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            match out.write_all(page.as_bytes()).and_then(|()| out.flush()) {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                    return Err(format!("writing the page: {e}").into())
                }
                _ => {}
            }
        }
    }
    Ok(if problems.count > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
