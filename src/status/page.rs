//! The admin page at `/`: one self-contained HTML document (inline CSS and SVG, no external
//! assets) with the upstream table and each upstream's head over the last minutes.
//!
//! It refreshes itself every [`REFRESH_SECS`] seconds: a few lines of inline script fetch `/`
//! again and swap the `#main` element (no flicker, scroll position kept); without script a
//! `<noscript>` meta refresh reloads the page. Everything shown is escaped: upstream names and
//! errors come from configuration and remote nodes.

use std::fmt::Write as _;

use super::history::{History, SampleState};
use super::table::{ago, duration, has_recovered, latency};
use super::{UpstreamRow, View};

/// Seconds between two refreshes of the page.
pub const REFRESH_SECS: u64 = 2;
/// The chart never spans less than this, so a young history does not look stretched.
const MIN_SPAN_MS: u64 = 60_000;
/// Chart geometry (SVG user units).
const CHART_W: f64 = 820.0;
const CHART_H: f64 = 200.0;
const LEFT: f64 = 130.0;
const STRIP_H: f64 = 14.0;

/// One colour per rank (cycled): line, swatch and legend.
const COLOURS: &[&str] = &[
    "#2563eb", "#d97706", "#059669", "#db2777", "#7c3aed", "#0891b2",
];

/// Renders the page for `view` with `history`, as of `now_ms` (Unix milliseconds).
pub fn render(view: &View, history: &History, now_ms: u64) -> String {
    let doc = &view.doc;
    let mut html = String::with_capacity(16 * 1024);
    html.push_str(HEAD);
    let _ = write!(
        html,
        "<p id=\"conn\" role=\"status\"></p>\n<main id=\"main\">\n<h1>nodewatch \
         <span class=\"badge {}\">{}</span></h1>\n<p class=\"summary\">chain {} · best head {} · \
         serving <b>{}</b> · failed client requests <b>{}</b> · updated {}</p>\n",
        if doc.ready { "ok" } else { "bad" },
        if doc.ready { "READY" } else { "NOT READY" },
        opt(doc.chain_id),
        opt(doc.best_head),
        esc(doc.serving.as_deref().unwrap_or("none")),
        view.failed,
        clock(now_ms),
    );
    html.push_str(
        "<table>\n<thead><tr><th>Rank</th><th>Upstream</th><th>State</th><th>Head</th>\
         <th>Lag</th><th>Latency</th><th>Served</th><th>For</th><th>Last error</th></tr>\
         </thead>\n<tbody>\n",
    );
    for (i, u) in doc.upstreams.iter().enumerate() {
        let serving = doc.serving.as_deref() == Some(u.name.as_str());
        let _ = writeln!(
            html,
            "<tr class=\"{state}\"><td>{rank}</td><td><span class=\"sw\" style=\"background:{colour}\">\
             </span>{name}{serving}</td><td><span class=\"st {state}\">{state}</span></td>\
             <td class=\"n\">{head}</td><td class=\"n\">{lag}</td><td class=\"n\">{latency}</td>\
             <td class=\"n\">{served}</td><td>{age}</td>{error}</tr>",
            state = esc(u.state()),
            rank = u.rank,
            colour = colour(i),
            name = esc(&u.name),
            serving = if serving {
                " <span class=\"serving\">▶ serving</span>"
            } else {
                ""
            },
            head = opt(u.head),
            lag = opt(u.lag),
            latency = latency(u.latency_ms),
            served = view.served.get(&u.name).copied().unwrap_or(0),
            age = duration(u.status_age_secs),
            error = error_cell(u),
        );
    }
    html.push_str("</tbody>\n</table>\n");
    chart(&mut html, history, now_ms);
    html.push_str(
        "<p class=\"links\"><a href=\"/status\">/status</a> · <a href=\"/metrics\">/metrics</a> · \
         <a href=\"/healthz\">/healthz</a> · <a href=\"/readyz\">/readyz</a> · \
         <a href=\"/history\">/history</a></p>\n</main>\n",
    );
    html.push_str(SCRIPT);
    html.push_str("</body>\n</html>\n");
    html
}

/// The `Last error` cell: the error with how long ago it was seen, in the alarming colour
/// only while it is current (the upstream has not recovered since).
fn error_cell(u: &UpstreamRow) -> String {
    if let Some((why, age)) = &u.last_wrong {
        if u.last_error_age_secs.is_none_or(|e| *age <= e) || u.last_error.is_none() {
            // Wrong data is a fault while the upstream is quarantined, history after.
            let class = if u.quarantined { "err now" } else { "err" };
            let ago = ago(*age).map_or_else(String::new, |ago| {
                format!("<span class=\"ago\">{ago}:</span> ")
            });
            return format!(
                "<td class=\"{class}\">{} wrong answers, {ago}{}</td>",
                u.wrong_answers,
                esc(why)
            );
        }
    }
    let Some(error) = u.last_error.as_deref() else {
        return "<td class=\"err\"></td>".to_owned();
    };
    let class = if has_recovered(u) { "err" } else { "err now" };
    let ago = u
        .last_error_age_secs
        .and_then(ago)
        .map_or_else(String::new, |ago| {
            format!("<span class=\"ago\">{ago}:</span> ")
        });
    format!("<td class=\"{class}\">{ago}{}</td>", esc(error))
}

/// The head chart and, under it, one state strip per upstream.
fn chart(html: &mut String, history: &History, now_ms: u64) {
    let plot = Plot::of(history, now_ms);
    plot.frame(html);
    plot.head_lines(html, history);
    plot.state_strips(html, history);
    html.push_str(
        "</svg>\n<p class=\"legend\"><span class=\"st healthy\">healthy</span> \
         <span class=\"st lagging\">lagging</span> <span class=\"st unhealthy\">unhealthy</span> \
         <span class=\"st unknown\">unknown</span></p>\n",
    );
}

/// The chart's scales: the time span shown and the head range, mapped to SVG coordinates.
struct Plot {
    /// Now, in Unix milliseconds (the right edge).
    now_ms: u64,
    /// The left edge, in Unix milliseconds.
    start: u64,
    /// Milliseconds shown (at least [`MIN_SPAN_MS`]).
    span: u64,
    /// Lowest head shown (bottom).
    lo: u64,
    /// Highest head shown (top).
    hi: u64,
    /// Upstreams (one strip each).
    n: usize,
}

impl Plot {
    fn of(history: &History, now_ms: u64) -> Self {
        let oldest = history.samples.front().map_or(now_ms, |s| s.unix_ms);
        let span = now_ms.saturating_sub(oldest).max(MIN_SPAN_MS);
        let heads = history
            .samples
            .iter()
            .flat_map(|s| s.heads.iter().flatten());
        let (lo, hi) = heads.fold((u64::MAX, 0u64), |(lo, hi), &h| (lo.min(h), hi.max(h)));
        let (lo, hi) = if lo > hi {
            (0, 1)
        } else if lo == hi {
            (lo.saturating_sub(1), hi + 1)
        } else {
            (lo, hi)
        };
        Self {
            now_ms,
            start: now_ms.saturating_sub(span),
            span,
            lo,
            hi,
            n: history.names.len(),
        }
    }

    fn plot_w(&self) -> f64 {
        CHART_W - LEFT - 10.0
    }

    fn x(&self, t: u64) -> f64 {
        LEFT + self.plot_w() * (t.saturating_sub(self.start)) as f64 / self.span as f64
    }

    fn y(&self, h: u64) -> f64 {
        let range = (self.hi - self.lo).max(1) as f64;
        10.0 + (CHART_H - 20.0) * (self.hi - h.min(self.hi)) as f64 / range
    }

    /// The `<svg>` opening, the plot area and its axis labels.
    fn frame(&self, html: &mut String) {
        let (lo, hi, plot_w) = (self.lo, self.hi, self.plot_w());
        let height = CHART_H + 30.0 + STRIP_H * self.n as f64 + 10.0;
        let minutes = self.span as f64 / 60_000.0;
        let _ = writeln!(
            html,
            "<h2>Head per upstream, last {minutes:.0} min</h2>\n<svg id=\"heads\" \
             viewBox=\"0 0 {CHART_W} {height}\" width=\"{CHART_W}\" height=\"{height}\" role=\"img\" \
             aria-label=\"head block per upstream over time\">"
        );
        let _ = writeln!(
            html,
            "<rect x=\"{LEFT}\" y=\"10\" width=\"{plot_w}\" height=\"{}\" class=\"plot\"/>\
             <text x=\"{}\" y=\"16\" class=\"axis\" text-anchor=\"end\">{hi}</text>\
             <text x=\"{}\" y=\"{}\" class=\"axis\" text-anchor=\"end\">{lo}</text>\
             <text x=\"{LEFT}\" y=\"{}\" class=\"axis\">−{minutes:.0} min</text>\
             <text x=\"{}\" y=\"{}\" class=\"axis\" text-anchor=\"end\">now</text>",
            CHART_H - 20.0,
            LEFT - 6.0,
            LEFT - 6.0,
            CHART_H - 10.0,
            CHART_H + 4.0,
            LEFT + plot_w,
            CHART_H + 4.0,
        );
    }

    /// One line per upstream. Lower ranks are drawn first and wider, so upstreams at the
    /// same head show as nested stripes instead of hiding each other. A line breaks where
    /// the upstream was out.
    fn head_lines(&self, html: &mut String, history: &History) {
        for (i, name) in history.names.iter().enumerate() {
            let width = (2.0 + 2.5 * (self.n - i - 1) as f64).min(12.0);
            for points in self.segments(history, i) {
                let _ = writeln!(
                    html,
                    "<polyline class=\"head\" data-upstream=\"{}\" points=\"{}\" stroke=\"{}\" \
                     stroke-width=\"{width}\"/>",
                    esc(name),
                    points.trim_end(),
                    colour(i),
                );
            }
        }
    }

    /// Upstream `i`'s polyline points, one string per run of usable samples.
    fn segments(&self, history: &History, i: usize) -> Vec<String> {
        let mut points = String::new();
        let mut segments = Vec::new();
        for s in &history.samples {
            let usable = !matches!(
                s.states.get(i),
                Some(SampleState::Unhealthy | SampleState::Unknown) | None
            );
            match s.heads.get(i).copied().flatten() {
                Some(h) if usable => {
                    let _ = write!(points, "{:.1},{:.1} ", self.x(s.unix_ms), self.y(h));
                }
                _ if !points.is_empty() => segments.push(std::mem::take(&mut points)),
                _ => {}
            }
        }
        if !points.is_empty() {
            segments.push(points);
        }
        segments
    }

    /// State strips: runs of equal state coalesced into one rectangle each.
    fn state_strips(&self, html: &mut String, history: &History) {
        for (i, name) in history.names.iter().enumerate() {
            let top = CHART_H + 14.0 + STRIP_H * i as f64;
            let _ = writeln!(
                html,
                "<text x=\"{}\" y=\"{}\" class=\"axis\" text-anchor=\"end\">{}</text>",
                LEFT - 6.0,
                top + STRIP_H - 3.0,
                esc(&short(name))
            );
            let states = history.samples.iter().map(|s| {
                let state = s.states.get(i).copied().unwrap_or(SampleState::Unknown);
                (state, s.unix_ms)
            });
            let mut run: Option<(SampleState, u64)> = None;
            for (state, t) in states.chain(std::iter::once((SampleState::Unknown, u64::MAX))) {
                match run {
                    Some((current, _)) if current == state && t != u64::MAX => {}
                    Some((current, since)) => {
                        let end = if t == u64::MAX { self.now_ms } else { t };
                        self.strip(html, current, since, end, top);
                        run = Some((state, t));
                    }
                    None => run = Some((state, t)),
                }
            }
        }
    }

    fn strip(&self, html: &mut String, state: SampleState, since: u64, end: u64, top: f64) {
        let _ = writeln!(
            html,
            "<rect class=\"strip {}\" x=\"{:.1}\" y=\"{top:.1}\" width=\"{:.1}\" \
             height=\"{}\"/>",
            state_class(state),
            self.x(since),
            (self.x(end) - self.x(since)).max(1.0),
            STRIP_H - 3.0,
        );
    }
}

/// A name cut to fit the chart's left margin.
fn short(name: &str) -> String {
    const MAX: usize = 20;
    if name.chars().count() <= MAX {
        name.to_owned()
    } else {
        let cut: String = name.chars().take(MAX - 1).collect();
        format!("{cut}…")
    }
}

fn state_class(state: SampleState) -> &'static str {
    match state {
        SampleState::Unknown => "unknown",
        SampleState::Healthy => "healthy",
        SampleState::Lagging => "lagging",
        SampleState::Unhealthy => "unhealthy",
    }
}

fn colour(i: usize) -> &'static str {
    COLOURS[i % COLOURS.len()]
}

fn opt(v: Option<u64>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

/// `HH:MM:SS UTC` of a Unix time in milliseconds.
fn clock(unix_ms: u64) -> String {
    let s = (unix_ms / 1000) % 86_400;
    format!("{:02}:{:02}:{:02} UTC", s / 3600, (s % 3600) / 60, s % 60)
}

/// Escapes text for HTML element content and attribute values.
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

const HEAD: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>nodewatch status</title>
<noscript><meta http-equiv="refresh" content="5"></noscript>
<style>
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px;color:#111827;background:#f9fafb}
h1{font-size:22px;margin:0 0 4px}h2{font-size:15px;margin:24px 0 6px}
.badge{font-size:12px;padding:2px 8px;border-radius:10px;vertical-align:middle;color:#fff}
.badge.ok{background:#059669}.badge.bad{background:#dc2626}
.summary{color:#374151;margin:0 0 14px}
table{border-collapse:collapse;background:#fff;box-shadow:0 1px 2px #0002}
th,td{padding:6px 12px;border-bottom:1px solid #e5e7eb;text-align:left;white-space:nowrap}
th{background:#f3f4f6;font-weight:600}td.n{text-align:right;font-variant-numeric:tabular-nums}
td.err{white-space:normal;max-width:360px;color:#6b7280;font-size:12px}
td.err.now{color:#b91c1c}.ago{font-style:italic}
.sw{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:6px}
.serving{font-size:11px;color:#1d4ed8;margin-left:6px}
.st{padding:1px 8px;border-radius:8px;font-size:12px}
.st.healthy{background:#d1fae5;color:#065f46}.st.lagging,.st.syncing{background:#fef3c7;color:#92400e}
.st.unhealthy,.st.wrong-chain,.st.forked,.st.quarantined{background:#fee2e2;color:#991b1b}.st.unknown{background:#e5e7eb;color:#374151}
svg{background:#fff;box-shadow:0 1px 2px #0002}.plot{fill:#fafafa;stroke:#e5e7eb}
.axis{font-size:11px;fill:#6b7280}.head{fill:none;stroke-linejoin:round;stroke-linecap:round;opacity:.85}
.strip.healthy{fill:#34d399}.strip.lagging{fill:#fbbf24}.strip.unhealthy{fill:#f87171}.strip.unknown{fill:#d1d5db}
#conn{color:#b91c1c;min-height:1em;margin:0}.links,.legend{color:#6b7280;font-size:12px}
</style>
</head>
<body>
"#;

const SCRIPT: &str = r#"<script>
(function () {
  var refreshes = 0;
  setInterval(function () {
    fetch(location.pathname, {cache: "no-store"})
      .then(function (r) { if (!r.ok) { throw new Error("HTTP " + r.status); } return r.text(); })
      .then(function (text) {
        var next = new DOMParser().parseFromString(text, "text/html").getElementById("main");
        if (next) {
          document.getElementById("main").replaceWith(next);
          refreshes += 1;
          document.body.dataset.refreshes = String(refreshes);
          document.getElementById("conn").textContent = "";
        }
      })
      .catch(function () {
        document.getElementById("conn").textContent = "nodewatch is not answering; retrying…";
      });
  }, 2000);
})();
</script>
"#;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::history::Sample;
    use crate::status::{StatusDoc, UpstreamRow};

    #[test]
    fn page_escapes_and_draws_each_upstream() {
        let rows = vec![
            UpstreamRow {
                name: "u1".into(),
                rank: 1,
                status: "healthy".into(),
                head: Some(12),
                ..Default::default()
            },
            UpstreamRow {
                name: "<b>evil</b>".into(),
                rank: 2,
                status: "unhealthy".into(),
                last_error: Some("connect: \"refused\" & <gone>".into()),
                ..Default::default()
            },
        ];
        let view = View {
            doc: StatusDoc {
                ready: true,
                serving: Some("u1".into()),
                upstreams: rows,
                ..Default::default()
            },
            ..Default::default()
        };
        let mut history = History::new(vec!["u1".into(), "<b>evil</b>".into()], 10);
        for t in 0..5u64 {
            history.push(Sample {
                unix_ms: 1_000_000 + t * 1000,
                heads: vec![Some(10 + t), if t < 2 { Some(10 + t) } else { None }],
                states: vec![
                    SampleState::Healthy,
                    if t < 2 {
                        SampleState::Healthy
                    } else {
                        SampleState::Unhealthy
                    },
                ],
            });
        }
        let html = render(&view, &history, 1_005_000);
        assert!(!html.contains("<b>evil"), "names are escaped");
        assert!(html.contains("&lt;b&gt;evil&lt;/b&gt;"));
        assert!(html.contains("&quot;refused&quot; &amp; &lt;gone&gt;"));
        assert!(html.contains("▶ serving"));
        assert_eq!(html.matches("<polyline").count(), 2, "{html}");
        assert!(html.contains("strip unhealthy"));
        assert!(
            !html.contains("http://") && !html.contains("https://"),
            "no external assets"
        );
    }

    #[test]
    fn an_old_error_has_its_age_and_no_alarm_once_recovered() {
        let row = |name: &str, status: &str, age: Option<f64>| UpstreamRow {
            name: name.into(),
            status: status.into(),
            last_error: Some("connect: Connection refused".into()),
            last_error_age_secs: age,
            ..Default::default()
        };
        let view = View {
            doc: StatusDoc {
                upstreams: vec![
                    row("back", "healthy", Some(30.0)),
                    row("down", "unhealthy", Some(2.0)),
                    row("old-version", "unhealthy", None),
                    UpstreamRow {
                        name: "fine".into(),
                        status: "healthy".into(),
                        ..Default::default()
                    },
                ],
                ..Default::default()
            },
            ..Default::default()
        };
        let html = render(&view, &History::new(vec![], 1), 0);
        let cell = |name: &str| {
            let row = html
                .split("<tr")
                .find(|r| r.contains(&format!("</span>{name}<")))
                .unwrap_or_else(|| panic!("row {name}: {html}"));
            row[row.find("<td class=\"err").unwrap()..].to_owned()
        };
        assert_eq!(
            cell("back"),
            "<td class=\"err\"><span class=\"ago\">30 s ago:</span> connect: Connection \
             refused</td></tr>\n"
        );
        assert!(
            cell("down").starts_with("<td class=\"err now\"><span class=\"ago\">2 s ago:</span>"),
            "{html}"
        );
        assert!(
            cell("old-version").starts_with("<td class=\"err now\">connect:"),
            "{html}"
        );
        assert!(
            cell("fine").starts_with("<td class=\"err\"></td>"),
            "{html}"
        );
        assert!(
            html.contains("td.err.now{color:"),
            "the alarm colour is for current errors"
        );
    }

    #[test]
    fn empty_history_renders() {
        let html = render(&View::default(), &History::new(vec![], 1), 0);
        assert!(html.contains("NOT READY") && html.contains("</html>"));
    }
}
