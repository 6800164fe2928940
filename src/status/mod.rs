//! Status at a glance: the upstream table that `nodewatch status`, the admin page at `/` and
//! `make demo` all show, and the head history behind the page's chart.
//!
//! - [`View`]: one moment's state as an operator reads it — the `/status` document
//!   ([`StatusDoc`]) plus the requests each upstream served (from `/metrics`).
//! - [`table`]: renders a [`View`] as a fixed-width terminal table (pure).
//! - [`client`]: fetches a [`View`] from a running nodewatch's admin listener, with a
//!   timeout and one-line errors; also the `healthcheck` probe.
//! - [`history`]: a bounded ring of per-upstream heads and states, sampled in the background.
//! - [`page`]: the self-contained HTML page (table + head chart) served at admin `/`.
//!
//! Everything here reads what the admin listener already publishes; nothing is on the
//! request path.

pub mod client;
pub mod history;
pub mod page;
pub mod table;

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::shared::SharedView;
use crate::upstream::health::Status;
use crate::upstream::{Snapshot, UpstreamState};

/// The `/status` document, owned and tolerant: fields a newer or older nodewatch lacks fall
/// back to their defaults, so `nodewatch status` works across versions.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct StatusDoc {
    /// Whether `/readyz` answers 200.
    pub ready: bool,
    /// Highest head among healthy upstreams.
    pub best_head: Option<u64>,
    /// Chain id served.
    pub chain_id: Option<u64>,
    /// The answer cache's final line: blocks at or below it are final.
    pub final_line: Option<u64>,
    /// The upstream a request would go to first.
    pub serving: Option<String>,
    /// Every upstream in rank order.
    pub upstreams: Vec<UpstreamRow>,
    /// The shared Redis, when configured.
    pub redis: Option<SharedView>,
}

/// One upstream as `/status` shows it.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct UpstreamRow {
    /// Display name.
    pub name: String,
    /// Rank (1 = primary).
    pub rank: usize,
    /// `unknown`, `healthy` or `unhealthy`.
    pub status: String,
    /// Last reported head.
    pub head: Option<u64>,
    /// Blocks behind the best head.
    pub lag: Option<u64>,
    /// Whether it lags by more than `health.max_lag`.
    pub lagging: bool,
    /// Latency EWMA in milliseconds.
    pub latency_ms: Option<f64>,
    /// Chain id the node reports.
    pub chain_id: Option<u64>,
    /// Whether it is on another chain (never used).
    pub wrong_chain: bool,
    /// Whether its blocks differ from the majority's (never used while so).
    pub forked: bool,
    /// Whether it says it is syncing.
    pub syncing: bool,
    /// Its answers that failed verification since start.
    pub wrong_answers: u64,
    /// The last wrong answer's evidence and its age in seconds.
    pub last_wrong: Option<(String, f64)>,
    /// Quarantined for wrong answers: used only as a last resort.
    pub quarantined: bool,
    /// Methods it answered "not available" for lately.
    pub unsupported_methods: Vec<String>,
    /// Last failure, redacted.
    pub last_error: Option<String>,
    /// Seconds since the last failure was seen (absent from older nodewatch versions).
    pub last_error_age_secs: Option<f64>,
    /// Calls per second it is paced at (learned from its limit answers, under `max_rps`).
    pub learned_rps: Option<f64>,
    /// Its limit answers (429, -32005) since start.
    pub rate_limited: u64,
    /// Seconds since its last limit answer.
    pub rate_limited_age_secs: Option<f64>,
    /// What its pace counts: `calls`, or `compute units`.
    pub rate_unit: String,
    /// Compute units spent this month, with a monthly budget.
    pub month_credits: Option<u64>,
    /// The monthly compute-unit budget.
    pub month_budget: Option<u64>,
    /// The `budget_key` it shares through Redis.
    pub budget_key: Option<String>,
    /// Whether Redis decides its budget now (false: the local fallback).
    pub budget_shared: Option<bool>,
    /// Seconds since the status last changed.
    pub status_age_secs: f64,
    /// When the status last changed, Unix seconds.
    pub since_unix: Option<u64>,
}

impl UpstreamRow {
    /// The one word an operator needs: `healthy`, `lagging`, `syncing`, `unhealthy`,
    /// `unknown`, `wrong-chain`, `forked` or `quarantined` (for wrong data).
    pub fn state(&self) -> &str {
        if self.wrong_chain {
            "wrong-chain"
        } else if self.forked {
            "forked"
        } else if self.quarantined {
            "quarantined"
        } else if self.status == "healthy" && self.syncing {
            "syncing"
        } else if self.status == "healthy" && self.lagging {
            "lagging"
        } else if self.status.is_empty() {
            "unknown"
        } else {
            &self.status
        }
    }
}

impl From<&UpstreamState> for UpstreamRow {
    fn from(u: &UpstreamState) -> Self {
        UpstreamRow {
            name: u.name.clone(),
            rank: u.rank,
            status: status_word(u.status).to_owned(),
            head: u.head,
            lag: u.lag,
            lagging: u.lagging,
            latency_ms: u.latency_ms,
            chain_id: u.chain_id,
            wrong_chain: u.wrong_chain,
            forked: u.forked,
            syncing: u.syncing,
            wrong_answers: u.wrong_answers,
            last_wrong: u.last_wrong.clone(),
            quarantined: u.quarantined,
            unsupported_methods: u.unsupported_methods.clone(),
            last_error: u.last_error.clone(),
            last_error_age_secs: u.last_error_age_secs,
            learned_rps: u.learned_rps,
            rate_limited: u.rate_limited,
            rate_limited_age_secs: u.rate_limited_age_secs,
            rate_unit: u.rate_unit.to_owned(),
            month_credits: u.month_credits,
            month_budget: u.month_budget,
            budget_key: u.budget_key.clone(),
            budget_shared: u.budget_shared,
            status_age_secs: u.status_age_secs,
            since_unix: u.since_unix,
        }
    }
}

/// The `/status` spelling of a health status.
pub fn status_word(status: Status) -> &'static str {
    match status {
        Status::Unknown => "unknown",
        Status::Healthy => "healthy",
        Status::Unhealthy => "unhealthy",
    }
}

impl StatusDoc {
    /// The document of a snapshot, as `/status` serves it.
    pub fn of(snapshot: &Snapshot, serving: Option<&str>) -> Self {
        StatusDoc {
            ready: snapshot.is_ready(),
            best_head: snapshot.best_head,
            chain_id: snapshot.chain_id,
            final_line: snapshot.final_line,
            serving: serving.map(str::to_owned),
            upstreams: snapshot.upstreams.iter().map(UpstreamRow::from).collect(),
            redis: None,
        }
    }
}

/// One moment's state: the status document and the request counters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct View {
    /// The `/status` document.
    pub doc: StatusDoc,
    /// Client request items served (outcome `ok` or `error`) per upstream name.
    pub served: BTreeMap<String, u64>,
    /// Client request items that no upstream could answer (outcome `failed`).
    pub failed: u64,
}

impl View {
    /// Combines a status document with the Prometheus text of `/metrics`.
    pub fn new(doc: StatusDoc, metrics_text: &str) -> Self {
        let (served, failed) = request_counts(metrics_text);
        View {
            doc,
            served,
            failed,
        }
    }
}

/// Sums `nodewatch_requests_total` per upstream from Prometheus text: (served per upstream,
/// failed). Lines that do not parse are ignored.
pub fn request_counts(metrics_text: &str) -> (BTreeMap<String, u64>, u64) {
    let mut served = BTreeMap::new();
    let mut failed = 0u64;
    for line in metrics_text.lines() {
        let Some(rest) = line.strip_prefix("nodewatch_requests_total{") else {
            continue;
        };
        let Some((labels, value)) = rest.rsplit_once('}') else {
            continue;
        };
        let Ok(value) = value.trim().parse::<f64>() else {
            continue;
        };
        let value = value.max(0.0) as u64;
        let labels = parse_labels(labels);
        match labels.get("outcome").map(String::as_str) {
            Some("failed") => failed += value,
            Some(_) => {
                if let Some(upstream) = labels.get("upstream") {
                    *served.entry(upstream.clone()).or_insert(0) += value;
                }
            }
            None => {}
        }
    }
    (served, failed)
}

/// `a="x",b="y"` into a map; handles `\"` and `\\` escapes in values.
fn parse_labels(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let name: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if name.is_empty() || chars.next() != Some('"') {
            return out;
        }
        let mut value = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some('n') => value.push('\n'),
                    Some(other) => value.push(other),
                    None => return out,
                },
                '"' => break,
                c => value.push(c),
            }
        }
        out.insert(name.trim().to_owned(), value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_requests_per_upstream_and_failed() {
        let text = "\
# HELP nodewatch_requests_total x
nodewatch_requests_total{method=\"eth_call\",outcome=\"ok\",upstream=\"u1\"} 5
nodewatch_requests_total{method=\"eth_getLogs\",outcome=\"error\",upstream=\"u1\"} 2
nodewatch_requests_total{method=\"eth_call\",outcome=\"ok\",upstream=\"a,\\\"b\"} 3
nodewatch_requests_total{method=\"eth_call\",outcome=\"failed\",upstream=\"none\"} 4
nodewatch_requests_total{broken
nodewatch_requests_total_other{outcome=\"ok\",upstream=\"u9\"} 1
";
        let (served, failed) = request_counts(text);
        assert_eq!(served.get("u1"), Some(&7));
        assert_eq!(served.get("a,\"b"), Some(&3));
        assert_eq!(served.get("u9"), None);
        assert_eq!(failed, 4);
    }

    #[test]
    fn tolerant_status_document() {
        let doc: StatusDoc =
            serde_json::from_str(r#"{"ready":true,"upstreams":[{"name":"a","new_field":1}]}"#)
                .unwrap();
        assert!(doc.ready);
        assert_eq!(doc.upstreams[0].state(), "unknown");
        let row = UpstreamRow {
            status: "healthy".into(),
            lagging: true,
            ..Default::default()
        };
        assert_eq!(row.state(), "lagging");
    }
}
