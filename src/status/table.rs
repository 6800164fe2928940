//! The upstream table as text: one header line, then one row per upstream in rank order.
//!
//! ```text
//! nodewatch http://127.0.0.1:9545  ready  chain 31337  best head 57  failed requests 0
//!   RANK  UPSTREAM  STATE      HEAD  LAG  LATENCY  SERVED  FOR   LAST ERROR
//! > 1     u1        healthy      57    0   0.4 ms     812  41s   -
//!   2     u2        lagging      49    8   0.5 ms      96  3s    30 s ago: timed out after 2s
//! ```
//!
//! `>` marks the upstream requests go to first. The last error says how long ago it was
//! seen: on a healthy upstream it is history, not a current fault. An upstream that is
//! paced (a rate learned from its limit answers, or `max_rps`) gets a line of its own under
//! the table: `  u2 paced at 108 calls/s, 3 limit answers (last 12 s ago)`. Pure: no I/O, so
//! it is unit-tested here and reused by `nodewatch status`, `--watch` and `make demo`.

use std::fmt::Write as _;

use super::{UpstreamRow, View};
use crate::shared::SharedView;

/// Longest `LAST ERROR` text shown; the rest is cut with `…`.
const MAX_ERROR_CHARS: usize = 60;

/// Renders `view` (read from `source`, shown in the header) as a table ending in a newline.
pub fn render(view: &View, source: &str) -> String {
    let doc = &view.doc;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "nodewatch {source}  {}  chain {}  best head {}{}  failed requests {}",
        if doc.ready { "ready" } else { "NOT READY" },
        opt(doc.chain_id),
        opt(doc.best_head),
        doc.final_line
            .map_or_else(String::new, |line| format!(" (final {line})")),
        view.failed,
    );
    let header = [
        "RANK",
        "UPSTREAM",
        "STATE",
        "HEAD",
        "LAG",
        "LATENCY",
        "SERVED",
        "FOR",
        "LAST ERROR",
    ];
    let rows: Vec<[String; 9]> = doc
        .upstreams
        .iter()
        .map(|u| {
            [
                u.rank.to_string(),
                u.name.clone(),
                u.state().to_owned(),
                opt(u.head),
                opt(u.lag),
                latency(u.latency_ms),
                view.served.get(&u.name).copied().unwrap_or(0).to_string(),
                duration(u.status_age_secs),
                last_error(u),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    // Numbers are right-aligned, words left-aligned; the last column is not padded.
    let right = [false, false, false, true, true, true, true, false, false];
    let line = |marker: &str, cells: &[String]| {
        let mut s = format!("{marker} ");
        for (i, cell) in cells.iter().enumerate() {
            let pad = widths[i].saturating_sub(cell.chars().count());
            if i + 1 == cells.len() {
                s.push_str(cell);
            } else if right[i] {
                let _ = write!(s, "{}{cell}  ", " ".repeat(pad));
            } else {
                let _ = write!(s, "{cell}{}  ", " ".repeat(pad));
            }
        }
        s.trim_end().to_owned()
    };
    let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    let _ = writeln!(out, "{}", line(" ", &header));
    for (u, row) in doc.upstreams.iter().zip(&rows) {
        let serving = doc.serving.as_deref() == Some(u.name.as_str());
        let _ = writeln!(out, "{}", line(if serving { ">" } else { " " }, row));
    }
    if doc.upstreams.is_empty() {
        out.push_str("  (no upstreams)\n");
    }
    for u in &doc.upstreams {
        if let Some(line) = pace(u) {
            let _ = writeln!(out, "  {line}");
        }
    }
    if let Some(redis) = &doc.redis {
        let _ = writeln!(out, "  {}", redis_line(redis));
    }
    out
}

/// `redis redis://host:6379/0 up`, or down with its error: budgets and cache are local.
fn redis_line(redis: &SharedView) -> String {
    if redis.up {
        return format!("redis {} up: budgets shared", redis.url);
    }
    let why = redis.last_error.as_deref().unwrap_or("no answer");
    format!(
        "redis {} DOWN ({why}): budgets and cache local (fallback)",
        redis.url
    )
}

/// `u2 paced at 108 calls/s, 3 limit answers (last 12 s ago)`, for a paced upstream or one
/// that gave limit answers.
fn pace(u: &UpstreamRow) -> Option<String> {
    let budgeted = u.month_budget.is_some() || u.budget_key.is_some();
    if u.learned_rps.is_none() && u.rate_limited == 0 && !budgeted {
        return None;
    }
    let unit = match u.rate_unit.as_str() {
        "" => "calls",
        unit => unit,
    };
    let rate = match u.learned_rps {
        Some(rps) if rps.is_finite() => format!("paced at {rps:.0} {unit}/s"),
        _ => "not paced".to_owned(),
    };
    let last = u
        .rate_limited_age_secs
        .and_then(ago)
        .map_or_else(String::new, |ago| format!(" (last {ago})"));
    let answers = match u.rate_limited {
        1 => "1 limit answer".to_owned(),
        n => format!("{n} limit answers"),
    };
    let mut line = format!("{} {rate}, {answers}{last}", u.name);
    if let (Some(spent), Some(budget)) = (u.month_credits, u.month_budget) {
        let left = if spent >= budget { " SPENT" } else { "" };
        line += &format!("; month {spent} of {budget} {unit}{left}");
    }
    match (&u.budget_key, u.budget_shared) {
        (Some(key), Some(false)) => line += &format!("; budget {key:?} LOCAL (Redis down)"),
        (Some(key), _) => line += &format!("; budget {key:?} shared"),
        _ => {}
    }
    Some(line)
}

fn opt(v: Option<u64>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

/// `0.4 ms`, `12 ms`, `1.2 s`, or `-`.
pub fn latency(ms: Option<f64>) -> String {
    match ms {
        Some(ms) if ms.is_finite() && ms >= 0.0 => {
            if ms < 10.0 {
                format!("{ms:.1} ms")
            } else if ms < 1000.0 {
                format!("{ms:.0} ms")
            } else {
                format!("{:.1} s", ms / 1000.0)
            }
        }
        _ => "-".to_owned(),
    }
}

/// `41s`, `3m05s`, `2h10m`.
pub fn duration(secs: f64) -> String {
    if !secs.is_finite() || secs < 0.0 {
        return "-".to_owned();
    }
    let s = secs as u64;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// `just now`, `30 s ago`, `4 min ago`, `2 h ago`, `3 d ago`; `None` for a nonsense age.
pub fn ago(secs: f64) -> Option<String> {
    if !secs.is_finite() || secs < 0.0 {
        return None;
    }
    let s = secs as u64;
    Some(match s {
        0 => "just now".to_owned(),
        1..=59 => format!("{s} s ago"),
        60..=3599 => format!("{} min ago", s / 60),
        3600..=86_399 => format!("{} h ago", s / 3600),
        _ => format!("{} d ago", s / 86_400),
    })
}

/// Whether `u`'s last error is history: the upstream answers its probes again. Only a
/// current error is shown as a fault (the page's colour); an old one keeps its age.
pub fn has_recovered(u: &UpstreamRow) -> bool {
    u.status == "healthy"
}

/// The last error, or the last wrong answer when that is newer (with how many there were):
/// a node that answers wrong data is the fault an operator must see first.
fn last_error(u: &UpstreamRow) -> String {
    if let Some((why, age)) = &u.last_wrong {
        if u.last_error_age_secs.is_none_or(|e| *age <= e) || u.last_error.is_none() {
            let text = one_line(why);
            let ago = ago(*age).map(|a| format!("{a}: ")).unwrap_or_default();
            return format!("{} wrong, {ago}{text}", u.wrong_answers);
        }
    }
    match &u.last_error {
        None if !u.unsupported_methods.is_empty() => {
            format!("lacks {}", u.unsupported_methods.join(", "))
        }
        None => "-".to_owned(),
        Some(e) => {
            let text = one_line(e);
            match u.last_error_age_secs.and_then(ago) {
                Some(ago) => format!("{ago}: {text}"),
                None => text,
            }
        }
    }
}

/// `e` on one line, cut to [`MAX_ERROR_CHARS`].
fn one_line(e: &str) -> String {
    let one_line = e.replace(['\n', '\r'], " ");
    if one_line.chars().count() > MAX_ERROR_CHARS {
        let cut: String = one_line.chars().take(MAX_ERROR_CHARS - 1).collect();
        format!("{cut}…")
    } else {
        one_line
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::{StatusDoc, UpstreamRow};

    fn row(name: &str, rank: usize, status: &str, head: u64, lag: u64) -> UpstreamRow {
        UpstreamRow {
            name: name.into(),
            rank,
            status: status.into(),
            head: Some(head),
            lag: Some(lag),
            lagging: lag > 5,
            latency_ms: Some(0.42),
            status_age_secs: 75.0,
            ..Default::default()
        }
    }

    #[test]
    fn renders_aligned_rows_and_marks_the_serving_upstream() {
        let mut down = row("provider-b", 3, "unhealthy", 40, 17);
        down.last_error = Some("connect: Connection refused\n(os error 111)".into());
        down.latency_ms = None;
        let view = View {
            doc: StatusDoc {
                ready: true,
                best_head: Some(57),
                final_line: Some(53),
                chain_id: Some(31337),
                serving: Some("u1".into()),
                upstreams: vec![
                    row("u1", 1, "healthy", 57, 0),
                    row("u2", 2, "healthy", 49, 8),
                    down,
                ],
                redis: None,
            },
            served: [("u1".to_owned(), 812), ("u2".to_owned(), 96)].into(),
            failed: 0,
        };
        let text = render(&view, "http://127.0.0.1:9545");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 5, "{text}");
        assert!(lines[0].contains("ready  chain 31337  best head 57 (final 53)  failed requests 0"));
        assert!(lines[2].starts_with("> 1"), "{text}");
        assert!(
            lines[2].contains("healthy") && lines[2].contains("812"),
            "{text}"
        );
        assert!(lines[3].contains("lagging"), "{text}");
        assert!(
            lines[4].contains("unhealthy")
                && lines[4].ends_with("connect: Connection refused (os error 111)"),
            "{text}"
        );
        // Columns line up: HEAD values end where the HEAD header ends.
        let head_end = lines[1].find("HEAD").unwrap() + 4;
        assert_eq!(&lines[2][head_end - 2..head_end], "57", "{text}");
        assert_eq!(&lines[4][head_end - 2..head_end], "40", "{text}");
    }

    #[test]
    fn the_last_error_says_how_long_ago_it_was_seen() {
        let mut recovered = row("u1", 1, "healthy", 57, 0);
        recovered.last_error = Some("connect: Connection refused".into());
        recovered.last_error_age_secs = Some(30.4);
        let mut down = row("u2", 2, "unhealthy", 40, 17);
        down.last_error = Some("timed out after 2s".into());
        down.last_error_age_secs = Some(0.3);
        let mut long = row("u3", 3, "unhealthy", 40, 17);
        long.last_error = Some("x".repeat(200));
        long.last_error_age_secs = Some(7300.0);
        let view = View {
            doc: StatusDoc {
                serving: Some("u1".into()),
                upstreams: vec![recovered, down, long],
                ..Default::default()
            },
            ..Default::default()
        };
        let text = render(&view, "x");
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[2].starts_with("> 1")
                && lines[2].contains(" healthy ")
                && lines[2].ends_with("  30 s ago: connect: Connection refused"),
            "{text}"
        );
        assert!(
            lines[3].ends_with("  just now: timed out after 2s"),
            "{text}"
        );
        let cut = format!("  2 h ago: {}…", "x".repeat(MAX_ERROR_CHARS - 1));
        assert!(lines[4].ends_with(&cut), "the age survives the cut: {text}");
        let [recovered, down, _] = &view.doc.upstreams[..] else {
            unreachable!()
        };
        assert!(has_recovered(recovered) && !has_recovered(down));
        assert_eq!(ago(59.9).as_deref(), Some("59 s ago"));
        assert_eq!(ago(61.0).as_deref(), Some("1 min ago"));
        assert_eq!(ago(3.0 * 86_400.0).as_deref(), Some("3 d ago"));
        assert_eq!(ago(f64::NAN), None);
        assert_eq!(ago(-1.0), None);
    }

    #[test]
    fn a_newer_wrong_answer_shows_before_the_last_error() {
        let mut u = row("u1", 1, "healthy", 57, 0);
        u.quarantined = true;
        u.wrong_answers = 4;
        u.last_wrong = Some((
            "eth_getBlockReceipts: block 17: receipts root check failed".into(),
            12.0,
        ));
        u.last_error = Some("connect: Connection refused".into());
        u.last_error_age_secs = Some(300.0);
        let view = View {
            doc: StatusDoc {
                upstreams: vec![u.clone()],
                ..Default::default()
            },
            ..Default::default()
        };
        let text = render(&view, "x");
        let line = text.lines().nth(2).unwrap();
        assert!(line.contains(" quarantined "), "{text}");
        assert!(
            line.ends_with(
                "4 wrong, 12 s ago: eth_getBlockReceipts: block 17: receipts root check failed"
            ),
            "{text}"
        );
        u.last_error_age_secs = Some(1.0);
        assert!(
            last_error(&u).starts_with("1 s ago: connect"),
            "a newer error wins"
        );
    }

    #[test]
    fn a_paced_upstream_gets_a_line_under_the_table() {
        let mut paced = row("provider", 2, "healthy", 57, 0);
        paced.learned_rps = Some(107.6);
        paced.rate_limited = 3;
        paced.rate_limited_age_secs = Some(12.2);
        let view = View {
            doc: StatusDoc {
                upstreams: vec![row("u1", 1, "healthy", 57, 0), paced],
                ..Default::default()
            },
            ..Default::default()
        };
        let text = render(&view, "x");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 5, "{text}");
        assert_eq!(
            lines[4],
            "  provider paced at 108 calls/s, 3 limit answers (last 12 s ago)"
        );
    }

    #[test]
    fn budgets_and_a_redis_on_the_fallback_are_said_under_the_table() {
        let mut paid = row("paid", 1, "healthy", 57, 0);
        paid.rate_unit = "compute units".into();
        paid.learned_rps = Some(330.0);
        (paid.month_credits, paid.month_budget) = (Some(300), Some(300));
        (paid.budget_key, paid.budget_shared) = (Some("key".into()), Some(false));
        let view = View {
            doc: StatusDoc {
                upstreams: vec![paid],
                redis: Some(SharedView {
                    url: "redis://redis:6379/0".into(),
                    up: false,
                    last_error: Some("redis did not answer within 100ms".into()),
                    last_error_age_secs: Some(3.0),
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        let text = render(&view, "x");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[3],
            "  paid paced at 330 compute units/s, 0 limit answers; month 300 of 300 compute \
             units SPENT; budget \"key\" LOCAL (Redis down)",
            "{text}"
        );
        assert!(
            lines[4].contains("DOWN (redis did not answer within 100ms)"),
            "{text}"
        );
    }

    #[test]
    fn empty_and_odd_values_do_not_panic() {
        let text = render(&View::default(), "x");
        assert!(text.contains("NOT READY") && text.contains("(no upstreams)"));
        assert_eq!(latency(Some(f64::NAN)), "-");
        assert_eq!(latency(Some(1500.0)), "1.5 s");
        assert_eq!(duration(-1.0), "-");
        assert_eq!(duration(3725.0), "1h02m");
        let long = UpstreamRow {
            last_error: Some("é".repeat(500)),
            ..Default::default()
        };
        assert_eq!(last_error(&long).chars().count(), MAX_ERROR_CHARS);
    }
}
