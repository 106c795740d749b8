//! Stacked bar charts as inline SVG: one bar per time bucket, one coloured part per series.
//!
//! Buckets without records are kept as gaps, so the x axis is linear in time. Every bar part
//! has a `<title>` (its tooltip); the numbers themselves are also in the page's tables.

use super::html::esc;
use std::fmt::Write as _;

/// The drawing's coordinate space; the SVG scales to the page width.
const WIDTH: f64 = 480.0;
const HEIGHT: f64 = 200.0;
const LEFT: f64 = 40.0;
const RIGHT: f64 = 6.0;
const TOP: f64 = 8.0;
const BOTTOM: f64 = 18.0;

/// One stacked part: a name, its colour, and its count per bucket.
pub struct Series {
    pub name: String,
    pub color: &'static str,
    pub values: Vec<u64>,
}

/// The x axis: each bucket's label (shown for the first, middle and last bar).
pub struct Axis {
    pub labels: Vec<String>,
}

/// The smallest 1, 2 or 5 times a power of ten at or above `n` (at least 1).
fn nice_max(n: u64) -> u64 {
    let mut step = 1u64;
    loop {
        for m in [1, 2, 5] {
            if let Some(v) = step.checked_mul(m) {
                if v >= n {
                    return v;
                }
            }
        }
        match step.checked_mul(10) {
            Some(s) => step = s,
            None => return n,
        }
    }
}

/// An SVG of `series` stacked per bucket, described by `title` for screen readers.
pub fn stacked_bars(id: &str, title: &str, axis: &Axis, series: &[Series]) -> String {
    let buckets = axis.labels.len();
    let totals: Vec<u64> = (0..buckets)
        .map(|i| series.iter().map(|s| s.values[i]).sum())
        .collect();
    let max = nice_max(totals.iter().copied().max().unwrap_or(0));
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let bar_w = plot_w / buckets.max(1) as f64;
    let gap = if bar_w > 4.0 { bar_w * 0.15 } else { 0.0 };
    let y = |v: u64| TOP + plot_h - plot_h * v as f64 / max as f64;
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg id=\"{id}\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\" aria-label=\"{}\" \
         xmlns=\"http://www.w3.org/2000/svg\" font-size=\"10\" font-family=\"sans-serif\">",
        esc(title)
    );
    for v in [0, max / 2, max] {
        let _ = write!(
            s,
            "<line x1=\"{LEFT}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#ccc\" \
             stroke-width=\"0.5\"/><text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{v}</text>",
            WIDTH - RIGHT,
            LEFT - 3.0,
            y(v) + 3.5,
            y = y(v)
        );
    }
    for i in 0..buckets {
        let x = LEFT + i as f64 * bar_w + gap / 2.0;
        let mut base = 0u64;
        for part in series {
            let v = part.values[i];
            if v == 0 {
                continue;
            }
            let (top, bottom) = (y(base + v), y(base));
            let _ = write!(
                s,
                "<rect x=\"{x:.2}\" y=\"{top:.2}\" width=\"{:.2}\" height=\"{:.2}\" fill=\"{}\">\
                 <title>{} {}: {v}</title></rect>",
                bar_w - gap,
                bottom - top,
                part.color,
                esc(&axis.labels[i]),
                esc(&part.name),
            );
            base += v;
        }
    }
    let mut shown: Vec<usize> = vec![0, buckets / 2, buckets.saturating_sub(1)];
    shown.dedup();
    for i in shown.into_iter().filter(|&i| i < buckets) {
        let x = LEFT + (i as f64 + 0.5) * bar_w;
        let anchor = if i == 0 && buckets > 1 {
            "start"
        } else if i + 1 == buckets && buckets > 1 {
            "end"
        } else {
            "middle"
        };
        let x = match anchor {
            "start" => LEFT,
            "end" => WIDTH - RIGHT,
            _ => x,
        };
        let _ = write!(
            s,
            "<text x=\"{x:.1}\" y=\"{}\" text-anchor=\"{anchor}\">{}</text>",
            HEIGHT - 4.0,
            esc(&axis.labels[i])
        );
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_top_is_a_round_number() {
        assert_eq!(
            [0, 1, 3, 7, 10, 11, 99, 101, 4999].map(nice_max),
            [1, 1, 5, 10, 10, 20, 100, 200, 5000]
        );
        assert_eq!(nice_max(u64::MAX), u64::MAX);
    }

    #[test]
    fn bars_stack_to_each_bucket_total_and_names_are_escaped() {
        let axis = Axis {
            labels: vec!["16:00".into(), "16:01".into(), "16:02".into()],
        };
        let series = [
            Series {
                name: "<a>".into(),
                color: "#111",
                values: vec![3, 0, 1],
            },
            Series {
                name: "b".into(),
                color: "#222",
                values: vec![1, 0, 4],
            },
        ];
        let svg = stacked_bars("c", "title \"x\"", &axis, &series);
        assert_eq!(svg.matches("<rect").count(), 4, "empty parts are left out");
        assert!(svg.contains("<title>16:00 &lt;a&gt;: 3</title>"));
        assert!(svg.contains("aria-label=\"title &quot;x&quot;\""));
        assert!(!svg.contains("<a>"));
        // Bucket 2 (1 + 4 = 5) reaches the top of the axis (5): y = TOP.
        assert!(svg.contains(&format!("y=\"{TOP:.2}\"")), "{svg}");
    }
}
