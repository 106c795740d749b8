//! `glint decode`: rings and segments as JSON Lines, CSV or TSV; `--verify`; `--stats`.
//!
//! Inputs ([`source`]) are ring files, segment files or data dirs (rings and `segments/`
//! together). Each is read in its stored order and all of them are merged by
//! (ts, core, seq) ([`merge`]); a record found in a segment and still in its ring is printed
//! once (dedup by (instance, core, seq): records of different boxes are never merged). `--from`/`--to` skip whole segments by their index and seek
//! inside the others ([`filter`]). Output is written by hand into one reused buffer
//! ([`json`], [`csv`]); bytes that are not UTF-8 are kept losslessly as described in
//! [`escape`]. `--follow` ([`follow`]) polls for new records every 100 ms.
//!
//! Modules:
//! - [`columns`]: the output columns: names, defaults, values.
//! - [`csv`]: CSV and TSV rows.
//! - [`escape`]: byte-level writers: JSON strings, delimited fields, base64, integers.
//! - [`filter`]: `--from`/`--to` and `--where`.
//! - [`follow`]: `--follow`: new records as they are written.
//! - [`json`]: JSON Lines objects.
//! - [`merge`]: the k-way merge of all sources, each record once.
//! - [`output`]: the output stream: big writes, a closed pipe ends quietly.
//! - [`parquet`]: `--format parquet`: one typed Parquet file.
//! - [`query`]: `--expand-query`: the query string as an object.
//! - [`source`]: which files a PATH names, and reading records out of them.
//! - [`stats`]: `--stats`: a summary instead of the records.
//! - [`time`]: RFC 3339 and relative times in and out.
//! - [`verify`]: `--verify`: every record and block checked, seq gaps and torn tails found.

pub mod columns;
pub mod csv;
pub mod escape;
pub mod filter;
pub mod follow;
pub mod json;
pub mod merge;
pub mod output;
pub mod parquet;
pub mod query;
pub mod source;
pub mod stats;
pub mod time;
pub mod verify;

use crate::agent::Classifier;
use crate::record::RecordView;
use columns::Selection;
use filter::{Condition, Filter};
use merge::Merger;
use output::{Output, OutputError};
use source::{discover, open_sources, Origin, Origins, Problems};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// JSON Lines: one object per record.
    Jsonl,
    /// RFC 4180 CSV with a header row (CRLF line ends).
    Csv,
    /// Tab-separated with a header row; tab, CR, LF and backslash escaped as \t \r \n \\.
    Tsv,
    /// One typed Parquet file (zstd; needs -o FILE); schema in docs/analytics.md.
    Parquet,
}

/// Options of `glint decode`.
#[derive(Debug, Clone, clap::Args)]
#[command(after_long_help = after_help())]
pub struct DecodeArgs {
    /// Ring files (ring-NNN.glr), segment files (*.gls, *.gls.open) or data dirs (their rings
    /// and DIR/segments/ together). Records of all inputs are merged in time order and each
    /// (instance, core, seq) is printed once, so a record both in a segment and in its ring
    /// shows once, and several boxes' data dirs or segments can be decoded together.
    #[arg(value_name = "PATH", default_value = "./glint-data")]
    pub paths: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value = "jsonl")]
    pub format: Format,
    /// Write to FILE instead of stdout (needed by --format parquet). The file appears whole:
    /// it is written as FILE.partial and renamed when complete.
    #[arg(short = 'o', long, value_name = "FILE", conflicts_with = "follow")]
    pub output: Option<PathBuf>,
    /// Only records at or after TIME: RFC 3339 (2026-11-29T05:00:00Z, with an offset or a
    /// fraction), a date (2026-11-29 = midnight UTC), `now`, or relative to now (-1h, -30m, -7d).
    /// Segments whose index shows no record in range are not read.
    #[arg(long, value_name = "TIME", allow_hyphen_values = true)]
    pub from: Option<String>,
    /// Only records before TIME (same forms as --from).
    #[arg(long, value_name = "TIME", allow_hyphen_values = true)]
    pub to: Option<String>,
    /// Comma-separated fields to print, in this order (default: the fields marked * in the
    /// list below: all but target, the *_b64 ones and q; instance and instance_id only when
    /// known, cookie, body and body_kind only when the record has them).
    #[arg(long, value_name = "LIST")]
    pub fields: Option<String>,
    /// Print only records where FIELD=VALUE (exact), FIELD!=VALUE or FIELD~TEXT (contains)
    /// holds, comparing the field as printed in CSV (e.g. status=404, method=POST, ua~bot,
    /// path=/p.gif, dnt=true). Repeat to require several.
    #[arg(long = "where", value_name = "COND")]
    pub conditions: Vec<String>,
    /// Add `q`: an object of the percent-decoded query parameters (repeated keys as arrays).
    #[arg(long)]
    pub expand_query: bool,
    /// After printing what is there, keep printing new records as the server writes them
    /// (polls rings and new segments every 100 ms) until interrupted (Ctrl-C).
    #[arg(long, conflicts_with_all = ["verify", "stats"])]
    pub follow: bool,
    /// Check instead of print: every ring record CRC and segment block CRC, per-core seq gaps, torn ring tails,
    /// format errors (file and offset). Prints a summary; exit 1 when anything is corrupt.
    #[arg(long, conflicts_with = "stats")]
    pub verify: bool,
    /// Read on past damage: a damaged segment block is reported (file and offset) and the
    /// segment is read on from its next block; a sealed segment whose trailer or index is
    /// damaged is read by walking its blocks; a PATH that is missing or not a glint file is
    /// reported and left out. Without it a damaged segment is read up to the damage only, and
    /// an unusable PATH stops the run before anything is printed. Either way every problem is
    /// one line on stderr and the exit status is 1.
    #[arg(long)]
    pub skip_bad: bool,
    /// Print a summary instead of records: total, time span, truncated records, error answers
    /// (status 400 and up), counts per core, instance, status and agent class, counts per
    /// minute (per hour for spans over 3 hours, per day over 7 days), top paths, agents,
    /// referers and user agents.
    #[arg(long)]
    pub stats: bool,
    /// With --stats: also count records per group of these keys, sorted by count, with a column
    /// per agent class (people's browsers apart from mail proxies, scanners, bots, unknown).
    /// A key is a field of the list below (status, path, agent, referer, ...), or any other
    /// name, or q.NAME, for that query parameter (percent-decoded, its first value when
    /// repeated; `(none)` when absent). Repeat or use a comma list: --by cid,e --by agent.
    #[arg(long, value_name = "KEYS", requires = "stats")]
    pub by: Vec<String>,
    /// With --stats: entries in each top list and --by groups shown (0: all).
    #[arg(long, value_name = "N", default_value_t = stats::DEFAULT_TOP, requires = "stats")]
    pub top: usize,
    /// Label records' `agent` with the rules of this file instead of the built-in ones
    /// (data/agents.toml in the source: UA patterns and CIDR lists, each with its source and
    /// date; copy and edit it).
    #[arg(long, value_name = "FILE")]
    pub agents: Option<PathBuf>,
}

const AFTER_HELP: &str = "\
Non-UTF-8 bytes: a string is printed as is when it is valid UTF-8. When it is not, it is
printed with U+FFFD in place of each invalid sequence and a second key <name>_b64 holds the
exact bytes in base64, so the output is valid JSON and lossless (CSV/TSV: ask for the
*_b64 columns with --fields).

Exit status: 0 when every input read cleanly (also when a reader such as `head` closes the
pipe early), 1 when an input is damaged (each problem is one line on stderr naming the file
and byte offset) or an argument is invalid.
";

fn after_help() -> String {
    format!("{AFTER_HELP}\n{}", columns::fields_help())
}

/// What the options ask for, parsed and checked.
pub struct Plan {
    pub filter: Filter,
    pub selection: Selection,
    pub agents: Arc<Classifier>,
    /// The `--by` keys.
    pub by: Vec<stats::group::GroupKey>,
}

impl Plan {
    pub fn new(args: &DecodeArgs, now_ns: u64) -> Result<Plan, String> {
        let parse = |t: &Option<String>| {
            t.as_deref()
                .map(|t| time::parse_time(t, now_ns))
                .transpose()
        };
        let (from, to) = (parse(&args.from)?, parse(&args.to)?);
        if let (Some(f), Some(t)) = (from, to) {
            if f >= t {
                return Err("--from must be before --to".into());
            }
        }
        if args.format == Format::Parquet {
            if args.output.is_none() {
                return Err("--format parquet needs -o FILE".into());
            }
            if args.follow || args.verify || args.stats {
                return Err(
                    "--format parquet writes records: not with --follow, --verify or --stats"
                        .into(),
                );
            }
        }
        let conditions = args
            .conditions
            .iter()
            .map(|c| Condition::parse(c))
            .collect::<Result<Vec<_>, _>>()?;
        let agents = Arc::new(Classifier::builtin_or(args.agents.as_deref())?);
        Ok(Plan {
            filter: Filter::new(from, to, conditions, agents.clone()),
            selection: Selection::new(args.fields.as_deref(), args.expand_query)?,
            agents,
            by: stats::group::parse_keys(&args.by)?,
        })
    }
}

/// Turns records into output lines (or Parquet row groups).
pub enum Printer {
    Json(json::JsonWriter),
    Delimited(csv::DelimitedWriter),
    Parquet(Box<parquet::ParquetFile>),
}

impl Printer {
    /// A printer of `format`; Parquet goes to `file`.
    pub fn new(
        format: Format,
        sel: &Selection,
        file: Option<&std::path::Path>,
        agents: Arc<Classifier>,
    ) -> Result<Printer, String> {
        Ok(match format {
            Format::Jsonl => Printer::Json(json::JsonWriter::new(sel, agents)),
            Format::Csv => Printer::Delimited(csv::DelimitedWriter::new(sel, b',', agents)),
            Format::Tsv => Printer::Delimited(csv::DelimitedWriter::new(sel, b'\t', agents)),
            Format::Parquet => {
                let file = file.ok_or("--format parquet needs -o FILE")?;
                Printer::Parquet(Box::new(parquet::ParquetFile::create(file, sel, agents)?))
            }
        })
    }

    pub fn header(&self, out: &mut Vec<u8>) {
        if let Printer::Delimited(w) = self {
            w.write_header(out);
        }
    }

    /// Writes one record of instance `origin` (`None`: not known).
    #[inline]
    pub fn write(
        &mut self,
        out: &mut Vec<u8>,
        rec: &RecordView<'_>,
        origin: Option<&Origin>,
    ) -> Result<(), OutputError> {
        match self {
            Printer::Json(w) => w.write(out, rec, origin),
            Printer::Delimited(w) => w.write(out, rec, origin),
            Printer::Parquet(w) => return w.write(rec, origin),
        }
        Ok(())
    }

    /// Completes the output (the Parquet footer and the file's rename).
    pub fn finish(self) -> Result<(), OutputError> {
        match self {
            Printer::Parquet(w) => w.finish(),
            Printer::Json(_) | Printer::Delimited(_) => Ok(()),
        }
    }
}

/// Runs `glint decode` on stdout, or on the file of `-o` (Parquet opens it itself).
pub fn run(args: DecodeArgs) -> Result<ExitCode, crate::BoxError> {
    match &args.output {
        Some(path) if args.format != Format::Parquet => {
            let mut file = output::PartialFile::create(path)?;
            let code = run_to(&args, &mut file)?;
            file.complete()?;
            Ok(code)
        }
        _ => {
            let stdout = std::io::stdout();
            let mut lock = stdout.lock();
            run_to(&args, &mut lock)
        }
    }
}

/// Runs `glint decode` writing records to `sink` (the benchmark passes a sink).
pub fn run_to(
    args: &DecodeArgs,
    sink: &mut dyn std::io::Write,
) -> Result<ExitCode, crate::BoxError> {
    let mut plan = Plan::new(args, crate::clock::now_ns())?;
    let mut problems = Problems::default();
    let inputs = match discover(&args.paths, args.skip_bad.then_some(&mut problems)) {
        Ok(inputs) => inputs,
        // Following a data dir the server has not written to yet is fine: rings will appear.
        Err(_) if args.follow && args.paths.iter().all(|p| p.is_dir()) => Vec::new(),
        Err(e) => return Err(e.into()),
    };
    let mut out = Output::new(sink);
    let result = if args.verify {
        verify::run(&inputs, args.skip_bad, &mut out, &mut problems)
    } else {
        let mut merger = open_merger(&inputs, &plan, args.skip_bad, &mut problems);
        if args.stats {
            let mut summary = stats::Summary::new(plan.agents.clone(), plan.by.clone());
            stats::run(
                &mut merger,
                &mut plan.filter,
                &mut summary,
                args.top,
                &mut out,
                &mut problems,
            )
        } else {
            let mut printer = Printer::new(
                args.format,
                &plan.selection,
                args.output.as_deref(),
                plan.agents.clone(),
            )?;
            printer.header(&mut out.buf);
            let printed = print_records(
                &mut merger,
                &mut plan.filter,
                &mut printer,
                &mut out,
                &mut problems,
            );
            match printed.and_then(|_| out.flush()) {
                Ok(()) if args.follow => follow::run(
                    args,
                    &inputs,
                    &mut merger,
                    &mut plan.filter,
                    &mut printer,
                    &mut out,
                    &mut problems,
                ),
                Ok(()) => printer.finish(),
                other => other,
            }
        }
    };
    match result {
        Ok(()) | Err(OutputError::Closed) => {}
        Err(OutputError::Io(e)) => return Err(format!("writing output: {e}").into()),
    }
    Ok(if problems.count > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Opens `inputs` (skipping segments outside the plan's time range) and merges them.
pub fn open_merger(
    inputs: &[source::Input],
    plan: &Plan,
    skip_bad: bool,
    problems: &mut Problems,
) -> Merger {
    let mut origins = Origins::default();
    let sources = open_sources(
        inputs,
        plan.filter.from_ns,
        plan.filter.to_ns,
        skip_bad,
        &mut origins,
        problems,
    );
    let mut merger = Merger::new(sources, origins);
    merger.prime(problems);
    merger
}

/// Prints every record the merger has that passes the filter.
pub fn print_records(
    merger: &mut Merger,
    filter: &mut Filter,
    printer: &mut Printer,
    out: &mut Output<'_>,
    problems: &mut Problems,
) -> Result<(), OutputError> {
    while let Some((bytes, origin)) = merger.next(problems) {
        let rec = RecordView::parse(bytes).expect("sources hold validated records");
        if filter.matches(&rec, origin) {
            printer.write(&mut out.buf, &rec, origin)?;
            out.maybe_flush()?;
        }
    }
    Ok(())
}
