//! The report page: one HTML file with its CSS and SVG charts inline and nothing to fetch.
//!
//! A Content-Security-Policy of `default-src 'none'` (styles inline only) makes the browser
//! refuse any request the page could make, and the page has no script. Every value taken from
//! records (paths, referers, User-Agents, query values) is attacker-controlled and goes through
//! [`esc`]. Numbers are in table cells with `data-n` attributes: the same counts
//! `decode --stats` prints, from the same [`Summary`].

use super::chart::{stacked_bars, Axis, Series};
use crate::agent::AgentClass;
use crate::decode::stats::group::key_values;
use crate::decode::stats::{
    bucket_name, others_name, shown, shown_entry, top_entries, Summary, DAY_NS,
};
use crate::decode::time::format_rfc3339;
use std::collections::HashMap;
use std::fmt::Write as _;

/// The page's Content-Security-Policy: nothing may be fetched, no script runs.
pub const CSP: &str =
    "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'";

const CSS: &str = "\
:root{color-scheme:light dark;--fg:#222;--mute:#666;--line:#ddd;--bg:#fff}
*{box-sizing:border-box}
body{margin:0 auto;max-width:62rem;padding:.75rem;background:var(--bg);color:var(--fg);\
font:15px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif}
h1{font-size:1.35rem;margin:.2rem 0}
h2{font-size:1.1rem;margin:1.4rem 0 .4rem;border-bottom:1px solid var(--line)}
p.sub{margin:.1rem 0;color:var(--mute);overflow-wrap:anywhere}
dl.facts{display:grid;grid-template-columns:repeat(auto-fill,minmax(8.5rem,1fr));gap:.5rem;margin:.5rem 0}
dl.facts div{border:1px solid var(--line);border-radius:6px;padding:.35rem .6rem}
dt{font-size:.8rem;color:var(--mute)}
dd{margin:0;font-size:1.15rem;font-variant-numeric:tabular-nums;overflow-wrap:anywhere}
.scroll{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;width:100%;font-size:.9rem}
th,td{padding:.25rem .4rem;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
th{font-weight:600;color:var(--mute)}
.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.k{overflow-wrap:anywhere;word-break:break-word;min-width:8rem}
td.none{color:var(--mute);font-style:italic}
figure{margin:.6rem 0}
figcaption{font-size:.9rem;color:var(--mute)}
svg{display:block;width:100%;max-width:46rem;height:auto}
svg text{fill:var(--fg)}
ul.legend{display:flex;flex-wrap:wrap;gap:.2rem .9rem;font-size:.85rem;list-style:none;padding:0;margin:.2rem 0}
.sw{display:inline-block;width:.8em;height:.8em;margin-right:.3em;vertical-align:-.05em;border-radius:2px}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(100%,24rem),1fr));gap:0 1.5rem}
footer{margin-top:2rem;font-size:.8rem;color:var(--mute);overflow-wrap:anywhere}
@media (max-width:40rem){body{font-size:14px;padding:.5rem}}
@media (prefers-color-scheme:dark){:root{--fg:#ddd;--mute:#9a9a9a;--line:#444;--bg:#121212}}
";

/// What the page says about how it was made.
pub struct PageInfo<'a> {
    pub title: &'a str,
    /// The PATHs read, as given.
    pub inputs: Vec<String>,
    /// The options that selected records (`--from ...`, `--where ...`), as given.
    pub selection: Vec<String>,
    /// Damaged inputs found while reading.
    pub problems: u64,
    pub generated_ns: u64,
    /// Entries per top list and groups (0: all).
    pub top: usize,
}

/// Escapes text for HTML element content and quoted attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A colour per agent class (people green, machines in warm colours).
pub fn class_color(class: AgentClass) -> &'static str {
    match class {
        AgentClass::Browser => "#1b7837",
        AgentClass::EmailProxy => "#7b3294",
        AgentClass::Scanner => "#e08214",
        AgentClass::Bot => "#c2185b",
        AgentClass::Unknown => "#9e9e9e",
    }
}

/// A colour per status: greens for 2xx, blues 3xx, oranges 4xx, reds 5xx; `nth` is the
/// status's place among the shown statuses of its hundred.
pub fn status_color(status: u16, nth: usize) -> &'static str {
    let shades: &[&str] = match status / 100 {
        2 => &["#2e7d32", "#81c784", "#1b5e20"],
        3 => &["#1565c0", "#64b5f6"],
        4 => &["#ef6c00", "#ffb74d", "#bf360c"],
        5 => &["#c62828", "#ef9a9a"],
        _ => &["#616161", "#bdbdbd"],
    };
    shades[nth % shades.len()]
}

fn num(s: &mut String, n: u64) {
    let _ = write!(s, "<td class=\"n\" data-n=\"{n}\">{n}</td>");
}

fn fact(s: &mut String, id: &str, name: &str, value: &str, n: Option<u64>) {
    let data = n.map(|n| format!(" data-n=\"{n}\"")).unwrap_or_default();
    let _ = write!(
        s,
        "<div><dt>{name}</dt><dd id=\"{id}\"{data}>{}</dd></div>",
        esc(value)
    );
}

/// The whole page.
pub fn render(sum: &Summary, info: &PageInfo<'_>) -> String {
    let mut s = String::with_capacity(64 * 1024);
    let _ = write!(
        s,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"{CSP}\">\
         <meta name=\"referrer\" content=\"no-referrer\">\
         <meta name=\"generator\" content=\"glint {}\">\
         <title>{}</title><style>{CSS}</style></head>\n<body>\n",
        env!("CARGO_PKG_VERSION"),
        esc(info.title)
    );
    let _ = write!(s, "<header><h1>{}</h1>", esc(info.title));
    match sum.first_ns {
        Some(first) => {
            let _ = write!(
                s,
                "<p class=\"sub\" id=\"span\">{} .. {}</p>",
                format_rfc3339(first),
                format_rfc3339(sum.last_ns)
            );
        }
        None => s.push_str("<p class=\"sub\" id=\"span\">no records</p>"),
    }
    s.push_str("</header>\n");
    overview(&mut s, sum, info);
    if sum.total > 0 {
        over_time(&mut s, sum);
        agents(&mut s, sum, info.top);
        if !sum.by.keys.is_empty() {
            groups(&mut s, sum, info.top);
        }
        s.push_str("<section><h2>Statuses and paths</h2><div class=\"grid\">");
        let statuses: HashMap<String, u64> = sum
            .per_status
            .iter()
            .map(|(k, n)| (k.to_string(), *n))
            .collect();
        top_table(&mut s, "statuses", "status", &statuses, 0, 0);
        let paths = &sum.paths;
        top_table(&mut s, "paths", "path", &paths.map, paths.other, info.top);
        s.push_str("</div></section>\n<section><h2>Referers and user agents</h2>");
        let refs = &sum.referers;
        top_table(
            &mut s, "referers", "referer", &refs.map, refs.other, info.top,
        );
        let uas = &sum.user_agents;
        top_table(
            &mut s,
            "user-agents",
            "user agent",
            &uas.map,
            uas.other,
            info.top,
        );
        s.push_str("</section>\n");
        sources(&mut s, sum);
    }
    footer(&mut s, info);
    s.push_str("</body></html>\n");
    s
}

fn overview(s: &mut String, sum: &Summary, info: &PageInfo<'_>) {
    s.push_str("<section><h2>Overview</h2><dl class=\"facts\">");
    let share = |n: u64| {
        if sum.total == 0 {
            String::new()
        } else {
            format!(" ({:.2}%)", 100.0 * n as f64 / sum.total as f64)
        }
    };
    fact(
        s,
        "records",
        "records",
        &sum.total.to_string(),
        Some(sum.total),
    );
    let human = sum.classes[AgentClass::Browser as usize];
    let text = format!("{human}{}", share(human));
    fact(s, "people", "from browsers (people)", &text, Some(human));
    let machines = sum.total - human;
    let text = format!("{machines}{}", share(machines));
    fact(
        s,
        "machines",
        "from machines, unknown",
        &text,
        Some(machines),
    );
    let text = format!("{}{}", sum.errors(), share(sum.errors()));
    fact(
        s,
        "errors",
        "error answers (4xx, 5xx)",
        &text,
        Some(sum.errors()),
    );
    let text = format!("{}{}", sum.truncated, share(sum.truncated));
    fact(
        s,
        "truncated",
        "truncated records",
        &text,
        Some(sum.truncated),
    );
    let text = info.problems.to_string();
    fact(s, "problems", "damaged inputs", &text, Some(info.problems));
    let span = format!("{:.3} s", sum.span_ns() as f64 / 1e9);
    fact(s, "duration", "time span", &span, None);
    let instances: Vec<String> = sorted_instances(sum)
        .iter()
        .map(|(id, name, _)| format!("{name} ({})", &id[..8.min(id.len())]))
        .collect();
    let text = if instances.is_empty() {
        "unknown".to_string()
    } else {
        instances.join(", ")
    };
    fact(s, "instances", "instances", &text, None);
    s.push_str("</dl></section>\n");
}

fn sorted_instances(sum: &Summary) -> Vec<(&str, &str, u64)> {
    let mut list: Vec<(&str, &str, u64)> = sum
        .per_instance
        .iter()
        .map(|(id, (name, n))| (id.as_str(), name.as_str(), *n))
        .collect();
    list.sort_by(|a, b| (a.1, a.0).cmp(&(b.1, b.0)));
    list
}

fn legend(s: &mut String, series: &[Series]) {
    s.push_str("<ul class=\"legend\">");
    for part in series {
        let total: u64 = part.values.iter().sum();
        let _ = write!(
            s,
            "<li><span class=\"sw\" style=\"background:{}\"></span>{} ({total})</li>",
            part.color,
            esc(&part.name)
        );
    }
    s.push_str("</ul>");
}

/// The charts over time, by status and by agent class, and their numbers in a table.
fn over_time(s: &mut String, sum: &Summary) {
    let unit = sum.unit();
    let buckets = sum.buckets();
    let first = buckets.first().map_or(0, |b| b.0);
    let last = buckets.last().map_or(0, |b| b.0);
    let count = usize::try_from((last - first) / unit.ns + 1).unwrap_or(usize::MAX);
    let same_day = first / DAY_NS == last / DAY_NS;
    let labels = (0..count as u64)
        .map(|i| {
            let name = bucket_name(first + i * unit.ns, unit);
            match (unit.ns == DAY_NS, same_day) {
                (false, true) => name[11..].to_string(),
                (false, false) => name[5..].replace('T', " "),
                (true, _) => name,
            }
        })
        .collect();
    let axis = Axis { labels };
    let index = |start: u64| ((start - first) / unit.ns) as usize;
    let statuses: Vec<u16> = sum.per_status.keys().copied().collect();
    let mut status_series: Vec<Series> = Vec::new();
    for (i, &status) in statuses.iter().enumerate() {
        let nth = statuses[..i]
            .iter()
            .filter(|s| **s / 100 == status / 100)
            .count();
        let mut values = vec![0; count];
        for (start, tally) in &buckets {
            values[index(*start)] = tally.status(status);
        }
        status_series.push(Series {
            name: status.to_string(),
            color: status_color(status, nth),
            values,
        });
    }
    let class_series: Vec<Series> = AgentClass::ALL
        .iter()
        .map(|&class| {
            let mut values = vec![0; count];
            for (start, tally) in &buckets {
                values[index(*start)] = tally.classes[class as usize];
            }
            Series {
                name: class.as_str().to_string(),
                color: class_color(class),
                values,
            }
        })
        .collect();
    let _ = write!(s, "<section><h2>Hits per {}</h2>", unit.name);
    for (id, what, series) in [
        ("chart-status", "status", &status_series),
        ("chart-agent", "agent class", &class_series),
    ] {
        let title = format!("hits per {} by {what}", unit.name);
        let _ = write!(s, "<figure><figcaption>By {what}</figcaption>");
        s.push_str(&stacked_bars(id, &title, &axis, series));
        legend(s, series);
        s.push_str("</figure>");
    }
    let _ = write!(
        s,
        "<details><summary>Numbers per {}</summary><div class=\"scroll\"><table id=\"per-unit\">\
         <thead><tr><th>{}</th><th class=\"n\">hits</th>",
        unit.name, unit.name
    );
    for status in &statuses {
        let _ = write!(s, "<th class=\"n\">{status}</th>");
    }
    for class in AgentClass::ALL {
        let _ = write!(s, "<th class=\"n\">{}</th>", class.as_str());
    }
    s.push_str("</tr></thead><tbody>");
    for (start, tally) in &buckets {
        let _ = write!(s, "<tr><td>{}</td>", bucket_name(*start, unit));
        num(s, tally.total);
        for status in &statuses {
            num(s, tally.status(*status));
        }
        for class in AgentClass::ALL {
            num(s, tally.classes[class as usize]);
        }
        s.push_str("</tr>");
    }
    s.push_str("</tbody></table></div></details></section>\n");
}

fn agents(s: &mut String, sum: &Summary, top: usize) {
    s.push_str("<section><h2>Who sent the hits</h2><div class=\"grid\"><div class=\"scroll\">");
    s.push_str(
        "<table id=\"classes\"><thead><tr><th>agent class</th><th class=\"n\">hits</th>\
         </tr></thead><tbody>",
    );
    for class in AgentClass::ALL {
        let _ = write!(
            s,
            "<tr><td class=\"k\"><span class=\"sw\" style=\"background:{}\"></span>{}</td>",
            class_color(class),
            class.as_str()
        );
        num(s, sum.classes[class as usize]);
        s.push_str("</tr>");
    }
    s.push_str("</tbody></table></div>");
    top_table(s, "agents", "agent", &sum.labels, 0, top);
    s.push_str("</div></section>\n");
}

/// The `--by` table: key values, count, then one column per agent class.
fn groups(s: &mut String, sum: &Summary, top: usize) {
    let names: Vec<&str> = sum.by.keys.iter().map(|k| k.name()).collect();
    let _ = write!(
        s,
        "<section><h2>By {}</h2><p class=\"sub\">{} groups; browsers are people, the other \
         columns machines (mail proxies, scanners, bots) or unknown.</p><div class=\"scroll\">\
         <table id=\"groups\"><thead><tr>",
        esc(&names.join(", ")),
        sum.groups.map.len()
    );
    for name in &names {
        let _ = write!(s, "<th>{}</th>", esc(name));
    }
    s.push_str("<th class=\"n\">hits</th>");
    for class in AgentClass::ALL {
        let _ = write!(s, "<th class=\"n\">{}</th>", class.as_str());
    }
    s.push_str("</tr></thead><tbody>");
    for (key, counts) in sum.top_groups(top) {
        s.push_str("<tr>");
        for value in key_values(key) {
            match value {
                Some(v) => {
                    let _ = write!(s, "<td class=\"k\">{}</td>", esc(&shown(v)));
                }
                None => s.push_str("<td class=\"k none\">(none)</td>"),
            }
        }
        num(s, counts.iter().sum());
        for class in AgentClass::ALL {
            num(s, counts[class as usize]);
        }
        s.push_str("</tr>");
    }
    let other = &sum.groups.other;
    if other.iter().sum::<u64>() > 0 {
        let _ = write!(
            s,
            "<tr><td class=\"k none\" colspan=\"{}\">{}</td>",
            names.len(),
            others_name()
        );
        num(s, other.iter().sum());
        for class in AgentClass::ALL {
            num(s, other[class as usize]);
        }
        s.push_str("</tr>");
    }
    s.push_str("</tbody></table></div></section>\n");
}

fn top_table<K: AsRef<[u8]> + Ord>(
    s: &mut String,
    id: &str,
    what: &str,
    map: &HashMap<K, u64>,
    other: u64,
    top: usize,
) {
    let _ = write!(
        s,
        "<div class=\"scroll\"><table id=\"{id}\"><thead><tr><th>{what} ({} distinct)</th>\
         <th class=\"n\">hits</th></tr></thead><tbody>",
        map.len()
    );
    for (key, n) in top_entries(map, top) {
        let _ = write!(
            s,
            "<tr><td class=\"k\">{}</td>",
            esc(&shown_entry(key.as_ref()))
        );
        num(s, n);
        s.push_str("</tr>");
    }
    if other > 0 {
        let _ = write!(s, "<tr><td class=\"k none\">{}</td>", others_name());
        num(s, other);
        s.push_str("</tr>");
    }
    s.push_str("</tbody></table></div>");
}

fn sources(s: &mut String, sum: &Summary) {
    s.push_str("<section><h2>Instances and cores</h2><div class=\"grid\"><div class=\"scroll\">");
    s.push_str(
        "<table id=\"instances\"><thead><tr><th>instance</th><th>id</th><th class=\"n\">hits\
         </th></tr></thead><tbody>",
    );
    for (id, name, n) in sorted_instances(sum) {
        let _ = write!(
            s,
            "<tr><td class=\"k\">{}</td><td class=\"k\">{id}</td>",
            esc(name)
        );
        num(s, n);
        s.push_str("</tr>");
    }
    s.push_str(
        "</tbody></table></div><div class=\"scroll\"><table id=\"cores\"><thead><tr>\
         <th>core</th><th class=\"n\">hits</th></tr></thead><tbody>",
    );
    for (core, n) in &sum.per_core {
        let _ = write!(s, "<tr><td>{core}</td>");
        num(s, *n);
        s.push_str("</tr>");
    }
    s.push_str("</tbody></table></div></div></section>\n");
}

fn footer(s: &mut String, info: &PageInfo<'_>) {
    let _ = write!(
        s,
        "<footer>Made by glint {} at {} from {}",
        env!("CARGO_PKG_VERSION"),
        &format_rfc3339(info.generated_ns)[..19],
        esc(&info.inputs.join(", "))
    );
    if !info.selection.is_empty() {
        let _ = write!(
            s,
            "; records selected by {}",
            esc(&info.selection.join(" "))
        );
    }
    s.push_str(
        ". Agent classes come from User-Agent patterns and IP lists (data/agents.toml or \
         --agents): a machine that sends a browser's User-Agent from an unlisted network \
         counts as a browser.</footer>\n",
    );
}
