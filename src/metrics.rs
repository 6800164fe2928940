//! Prometheus metrics: one [`Metrics`] value owns the registry and every family; it is
//! passed to whoever records, never global. Label values are bounded: upstream names come
//! from the configuration and methods from [`method_label`].

use prometheus::{
    CounterVec, Encoder, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter,
    IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

/// Latency buckets in seconds: 1 ms to 30 s.
const DURATION_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Every metric family the proxy exports.
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
    /// 1 when an upstream is healthy, else 0.
    pub upstream_up: IntGaugeVec,
    /// Last head an upstream reported.
    pub upstream_head: IntGaugeVec,
    /// Blocks an upstream trails the best head.
    pub upstream_lag: IntGaugeVec,
    /// 1 when an upstream reports another chain than the proxy serves.
    pub upstream_wrong_chain: IntGaugeVec,
    /// An upstream's current rank (1 = primary), so rules can find the primary by rank.
    pub upstream_rank: IntGaugeVec,
    /// Duration of each attempt against an upstream.
    pub upstream_duration: HistogramVec,
    /// Attempts against each upstream by outcome.
    pub upstream_attempts: IntCounterVec,
    /// Client request items by method, serving upstream and outcome.
    pub requests: IntCounterVec,
    /// Attempts that moved on to the next candidate, by the upstream left and why.
    pub failovers: IntCounterVec,
    /// Probes by upstream and outcome.
    pub probes: IntCounterVec,
    /// Health flips by upstream and new state.
    pub transitions: IntCounterVec,
    /// Best head among healthy upstreams.
    pub best_head: IntGauge,
    /// Client requests being served.
    pub in_flight: IntGauge,
    /// Bytes of upstream answers held now (the in-flight answer budget's use).
    pub answer_bytes: IntGauge,
    /// Calls that waited for room in the answer budget.
    pub answer_budget_waits: IntCounter,
    /// Chunked answers that gave their bytes back and were read again.
    pub answer_budget_gave_way: IntCounter,
    /// Whole client requests (single or batch) by duration.
    pub client_duration: Histogram,
    /// Retry rounds refused by the retry budget.
    pub retry_budget_exhausted: IntCounter,
    /// Requests in flight to each upstream.
    pub upstream_in_flight: IntGaugeVec,
    /// Circuit breaker flips by upstream and new state.
    pub breaker_transitions: IntCounterVec,
    /// 1 while an upstream's circuit breaker is open.
    pub breaker_open: IntGaugeVec,
    /// Calls refused by the method policy.
    pub denied: IntCounterVec,
    /// Configuration reloads by result.
    pub config_reloads: IntCounterVec,
    /// Methods an upstream answered "not available" for (counted once per TTL).
    pub unsupported: IntCounterVec,
    /// Methods an upstream is believed not to serve, now.
    pub upstream_unsupported: IntGaugeVec,
    /// 1 while an upstream is on a minority fork.
    pub upstream_forked: IntGaugeVec,
    /// 1 while an upstream says it is syncing.
    pub upstream_syncing: IntGaugeVec,
    /// Hedges sent, by the upstream asked in addition.
    pub hedges: IntCounterVec,
    /// Hedges whose answer was used, by the upstream that gave it.
    pub hedge_wins: IntCounterVec,
    /// Answers that failed verification, by upstream, method and check.
    pub wrong_answers: IntCounterVec,
    /// Answers that failed verification, by upstream only: created at 0 for every upstream,
    /// so an `increase()` alert fires on the first one.
    pub upstream_wrong_answers: IntCounterVec,
    /// Answers verified and served, by method.
    pub verified: IntCounterVec,
    /// Checks that could not run on an answer (an unknown transaction type, a node without
    /// `eth_getBlockReceipts`), by method and check: the answer was served with the rest checked.
    pub verify_skipped: IntCounterVec,
    /// Calls verification had to ask upstreams for (headers, block receipts), by method.
    pub verify_fetches: IntCounterVec,
    /// Calls answered from the verification cache instead, by kind (`header`, `receipts`).
    pub verify_cache_hits: IntCounterVec,
    /// Bytes held by the verification cache.
    pub verify_cache_bytes: IntGauge,
    /// 1 while an upstream is quarantined for wrong answers.
    pub upstream_quarantined: IntGaugeVec,
    /// Answer cache lookups by result (`hit`, `miss`).
    pub cache_lookups: IntCounterVec,
    /// Bytes of answers held by the answer cache.
    pub cache_bytes: IntGauge,
    /// Answer cache entries emptied because a reorg deeper than the final line changed their
    /// block.
    pub cache_purged: IntCounter,
    /// Reorgs deeper than the final line seen (each purged the answer cache from its height).
    pub cache_deep_reorgs: IntCounter,
    /// The answer cache's final line: answers about blocks at or below it are kept.
    pub cache_final_line: IntGauge,
    /// Calls per second each upstream is paced at (learned from its limit answers, under
    /// `max_rps`); 0 while unpaced.
    pub upstream_learned_rps: GaugeVec,
    /// Limit answers (HTTP 429, -32005, "rate limit") by upstream.
    pub rate_limited: IntCounterVec,
    /// Upstream requests that waited for their upstream's rate, by upstream.
    pub rate_limit_waits: IntCounterVec,
    /// Seconds upstream requests waited for their upstream's rate, by upstream.
    pub rate_limit_wait_seconds: CounterVec,
    /// Compute units billed to each upstream that has `credits`.
    pub credits_spent: IntCounterVec,
    /// Compute units spent this month (the fleet's, when shared), by upstream.
    pub month_credits: IntGaugeVec,
    /// The month's compute-unit budget, by upstream (absent: none).
    pub month_budget: IntGaugeVec,
    /// 1 while Redis answers, 0 while the sidecar serves on its local fallback.
    pub redis_up: IntGauge,
    /// Redis calls that failed or timed out.
    pub redis_errors: IntCounter,
    /// Requests to a shared-budget upstream admitted by the local limiter because Redis
    /// could not answer, by upstream.
    pub shared_fallbacks: IntCounterVec,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// A metric family's name, help text and label names.
struct Spec {
    name: &'static str,
    help: &'static str,
    labels: &'static [&'static str],
}

const UPSTREAM_IN_FLIGHT: Spec = Spec {
    name: "nodewatch_upstream_in_flight_requests",
    help: "Requests in flight to an upstream.",
    labels: &["upstream"],
};

const BREAKER_TRANSITIONS: Spec = Spec {
    name: "nodewatch_breaker_transitions_total",
    help: "Circuit breaker state changes by upstream and new state.",
    labels: &["upstream", "to"],
};

const BREAKER_OPEN: Spec = Spec {
    name: "nodewatch_upstream_breaker_open",
    help: "1 while the upstream's circuit breaker is open.",
    labels: &["upstream"],
};

const DENIED: Spec = Spec {
    name: "nodewatch_denied_requests_total",
    help: "Calls refused by the method policy, by method.",
    labels: &["method"],
};

const CONFIG_RELOADS: Spec = Spec {
    name: "nodewatch_config_reloads_total",
    help: "Configuration reloads by result.",
    labels: &["result"],
};

const UPSTREAM_UP: Spec = Spec {
    name: "nodewatch_upstream_up",
    help: "1 if the upstream is healthy.",
    labels: &["upstream"],
};

const UPSTREAM_HEAD: Spec = Spec {
    name: "nodewatch_upstream_head_block",
    help: "Last head block the upstream reported.",
    labels: &["upstream"],
};

const UPSTREAM_LAG: Spec = Spec {
    name: "nodewatch_upstream_lag_blocks",
    help: "Blocks the upstream trails the best head.",
    labels: &["upstream"],
};

const UPSTREAM_RANK: Spec = Spec {
    name: "nodewatch_upstream_rank",
    help: "Rank of the upstream in the configuration (1 = primary).",
    labels: &["upstream"],
};

const UPSTREAM_WRONG_CHAIN: Spec = Spec {
    name: "nodewatch_upstream_wrong_chain",
    help: "1 if the upstream reports another chain id than the proxy serves.",
    labels: &["upstream"],
};

const UPSTREAM_ATTEMPTS: Spec = Spec {
    name: "nodewatch_upstream_attempts_total",
    help: "Attempts against an upstream by outcome.",
    labels: &["upstream", "outcome"],
};

const REQUESTS: Spec = Spec {
    name: "nodewatch_requests_total",
    help: "Client request items by method, serving upstream and outcome.",
    labels: &["method", "upstream", "outcome"],
};

const FAILOVERS: Spec = Spec {
    name: "nodewatch_failovers_total",
    help: "Attempts that failed over to the next upstream, by the upstream left and why.",
    labels: &["upstream", "reason"],
};

const PROBES: Spec = Spec {
    name: "nodewatch_probes_total",
    help: "Health probes by upstream and outcome.",
    labels: &["upstream", "outcome"],
};

const TRANSITIONS: Spec = Spec {
    name: "nodewatch_upstream_transitions_total",
    help: "Health state changes by upstream and new state.",
    labels: &["upstream", "to"],
};

const UPSTREAM_DURATION: Spec = Spec {
    name: "nodewatch_upstream_request_duration_seconds",
    help: "Duration of one attempt against an upstream.",
    labels: &["upstream"],
};

const CLIENT_DURATION: Spec = Spec {
    name: "nodewatch_request_duration_seconds",
    help: "Duration of a whole client request, failover included.",
    labels: &[],
};

const BEST_HEAD: Spec = Spec {
    name: "nodewatch_best_head_block",
    help: "Highest head among healthy upstreams.",
    labels: &[],
};

const IN_FLIGHT: Spec = Spec {
    name: "nodewatch_in_flight_requests",
    help: "Client requests being served.",
    labels: &[],
};

const CACHE_BYTES: Spec = Spec {
    name: "nodewatch_cache_bytes",
    help: "Bytes of final answers held by the answer cache (bounded by cache.max_bytes).",
    labels: &[],
};

const CACHE_PURGED: Spec = Spec {
    name: "nodewatch_cache_purged_total",
    help: "Answer cache entries emptied because a reorg deeper than the final line changed their block.",
    labels: &[],
};

const CACHE_DEEP_REORGS: Spec = Spec {
    name: "nodewatch_cache_deep_reorgs_total",
    help:
        "Reorgs deeper than the answer cache's final line (each empties the cache from its height).",
    labels: &[],
};

const CACHE_FINAL_LINE: Spec = Spec {
    name: "nodewatch_cache_final_line",
    help: "The answer cache's final line: answers about blocks at or below it are kept.",
    labels: &[],
};

const VERIFY_CACHE_BYTES: Spec = Spec {
    name: "nodewatch_verify_cache_bytes",
    help: "Bytes of verified headers and receipt sets held (bounded by verify.cache_bytes).",
    labels: &[],
};

const ANSWER_BYTES: Spec = Spec {
    name: "nodewatch_answer_bytes_in_flight",
    help: "Bytes of upstream answers held now (bounded by proxy.max_inflight_bytes).",
    labels: &[],
};

const ANSWER_BUDGET_WAITS: Spec = Spec {
    name: "nodewatch_answer_budget_waits_total",
    help: "Calls that waited for room in the in-flight answer budget.",
    labels: &[],
};

const ANSWER_BUDGET_GAVE_WAY: Spec = Spec {
    name: "nodewatch_answer_budget_gave_way_total",
    help:
        "Chunked answers that gave their bytes back to the full answer budget and were read again.",
    labels: &[],
};

const RETRY_BUDGET_EXHAUSTED: Spec = Spec {
    name: "nodewatch_retry_budget_exhausted_total",
    help: "Retry rounds refused because the retry budget was spent.",
    labels: &[],
};

const UNSUPPORTED: Spec = Spec {
    name: "nodewatch_unsupported_methods_total",
    help: "Methods an upstream answered \"not available\" for, by upstream and method.",
    labels: &["upstream", "method"],
};
const UPSTREAM_UNSUPPORTED: Spec = Spec {
    name: "nodewatch_upstream_unsupported_methods",
    help: "Methods the upstream is believed not to serve (routed to others first).",
    labels: &["upstream"],
};
const UPSTREAM_FORKED: Spec = Spec {
    name: "nodewatch_upstream_forked",
    help: "1 while the upstream's blocks disagree with the majority (a minority fork).",
    labels: &["upstream"],
};
const UPSTREAM_SYNCING: Spec = Spec {
    name: "nodewatch_upstream_syncing",
    help: "1 while the upstream says it is syncing (eth_syncing).",
    labels: &["upstream"],
};
const HEDGES: Spec = Spec {
    name: "nodewatch_hedges_total",
    help: "Hedged attempts: calls sent to this upstream too because another was slow.",
    labels: &["upstream"],
};
const WRONG_ANSWERS: Spec = Spec {
    name: "nodewatch_wrong_answers_total",
    help: "Answers that failed verification against their block header, by upstream, method and check.",
    labels: &["upstream", "method", "check"],
};
const UPSTREAM_WRONG_ANSWERS: Spec = Spec {
    name: "nodewatch_upstream_wrong_answers_total",
    help: "Answers of the upstream that failed verification (all methods and checks).",
    labels: &["upstream"],
};
const VERIFIED: Spec = Spec {
    name: "nodewatch_verified_answers_total",
    help: "Answers verified against their block header and served, by method.",
    labels: &["method"],
};
const VERIFY_SKIPPED: Spec = Spec {
    name: "nodewatch_verify_skipped_total",
    help: "Checks that could not run on an answer (the rest ran), by method and check.",
    labels: &["method", "check"],
};
const VERIFY_FETCHES: Spec = Spec {
    name: "nodewatch_verify_fetches_total",
    help: "Calls verification sent upstream for headers and block receipts, by method.",
    labels: &["method"],
};
const VERIFY_CACHE_HITS: Spec = Spec {
    name: "nodewatch_verify_cache_hits_total",
    help: "Verified headers and receipt sets found in the verification cache, by kind.",
    labels: &["kind"],
};
const CACHE_LOOKUPS: Spec = Spec {
    name: "nodewatch_cache_lookups_total",
    help: "Answer cache lookups of final calls, by result (hit: served without an upstream call).",
    labels: &["result"],
};
const UPSTREAM_QUARANTINED: Spec = Spec {
    name: "nodewatch_upstream_quarantined",
    help: "1 while the upstream is quarantined for answering wrong data (last resort only).",
    labels: &["upstream"],
};
const HEDGE_WINS: Spec = Spec {
    name: "nodewatch_hedge_wins_total",
    help: "Hedged attempts whose answer was used, by the upstream that gave it.",
    labels: &["upstream"],
};

const UPSTREAM_LEARNED_RPS: Spec = Spec {
    name: "nodewatch_upstream_learned_rps",
    help: "Calls per second the upstream is paced at: learned from its limit answers, under max_rps (0: unpaced).",
    labels: &["upstream"],
};
const CREDITS_SPENT: Spec = Spec {
    name: "nodewatch_upstream_credits_total",
    help: "Compute units billed to the upstream (credits: each method its cost).",
    labels: &["upstream"],
};
const MONTH_CREDITS: Spec = Spec {
    name: "nodewatch_upstream_month_credits",
    help: "Compute units spent on the upstream this calendar month (UTC); the fleet's with a budget_key and Redis.",
    labels: &["upstream"],
};
const MONTH_BUDGET: Spec = Spec {
    name: "nodewatch_upstream_month_budget",
    help: "The upstream's monthly compute-unit budget (credits.per_month).",
    labels: &["upstream"],
};
const REDIS_UP: Spec = Spec {
    name: "nodewatch_redis_up",
    help: "1 while the shared Redis answers; 0 while budgets and cache are local (fallback).",
    labels: &[],
};
const REDIS_ERRORS: Spec = Spec {
    name: "nodewatch_redis_errors_total",
    help: "Redis calls that failed or passed redis.timeout.",
    labels: &[],
};
const SHARED_FALLBACKS: Spec = Spec {
    name: "nodewatch_shared_budget_fallbacks_total",
    help: "Requests to an upstream with a budget_key admitted by the local limiter because Redis could not answer.",
    labels: &["upstream"],
};
const RATE_LIMITED: Spec = Spec {
    name: "nodewatch_rate_limited_total",
    help: "Limit answers from the upstream (HTTP 429, JSON-RPC -32005, \"rate limit\"): back-pressure, not failures.",
    labels: &["upstream"],
};
const RATE_LIMIT_WAITS: Spec = Spec {
    name: "nodewatch_rate_limit_waits_total",
    help:
        "Upstream requests that waited for the upstream's rate (or its Retry-After) before going.",
    labels: &["upstream"],
};
const RATE_LIMIT_WAIT_SECONDS: Spec = Spec {
    name: "nodewatch_rate_limit_wait_seconds_total",
    help: "Seconds upstream requests waited for the upstream's rate (or its Retry-After).",
    labels: &["upstream"],
};

/// Creates families and registers them in one registry.
struct Families<'a>(&'a Registry);

impl Families<'_> {
    fn register<C: prometheus::core::Collector + Clone + 'static>(&self, family: C) -> C {
        self.0
            .register(Box::new(family.clone()))
            .expect("unique metric");
        family
    }

    fn opts(spec: &Spec) -> Opts {
        Opts::new(spec.name, spec.help)
    }

    fn histogram_opts(spec: &Spec) -> HistogramOpts {
        HistogramOpts::new(spec.name, spec.help).buckets(DURATION_BUCKETS.to_vec())
    }

    fn gauge_vec(&self, spec: &Spec) -> IntGaugeVec {
        self.register(IntGaugeVec::new(Self::opts(spec), spec.labels).expect("valid metric"))
    }

    fn counter_vec(&self, spec: &Spec) -> IntCounterVec {
        self.register(IntCounterVec::new(Self::opts(spec), spec.labels).expect("valid metric"))
    }

    fn gauge(&self, spec: &Spec) -> IntGauge {
        self.register(IntGauge::with_opts(Self::opts(spec)).expect("valid metric"))
    }

    fn counter(&self, spec: &Spec) -> IntCounter {
        self.register(IntCounter::with_opts(Self::opts(spec)).expect("valid metric"))
    }

    fn histogram(&self, spec: &Spec) -> Histogram {
        self.register(Histogram::with_opts(Self::histogram_opts(spec)).expect("valid metric"))
    }

    fn histogram_vec(&self, spec: &Spec) -> HistogramVec {
        let family = HistogramVec::new(Self::histogram_opts(spec), spec.labels);
        self.register(family.expect("valid metric"))
    }
}

/// One upstream's children of the families every attempt records, resolved once instead of
/// looked up by label on every request.
#[derive(Debug, Clone)]
pub struct UpstreamChildren {
    /// `nodewatch_upstream_in_flight_requests{upstream}`.
    pub in_flight: IntGauge,
    /// `nodewatch_upstream_request_duration_seconds{upstream}`.
    pub duration: Histogram,
    /// `nodewatch_upstream_attempts_total{upstream, outcome="ok"}`.
    pub ok: IntCounter,
}

impl Metrics {
    /// The per-attempt children for upstream `name`.
    pub fn upstream_children(&self, name: &str) -> UpstreamChildren {
        UpstreamChildren {
            in_flight: self.upstream_in_flight.with_label_values(&[name]),
            duration: self.upstream_duration.with_label_values(&[name]),
            ok: self.upstream_attempts.with_label_values(&[name, "ok"]),
        }
    }

    /// Creates and registers every family.
    pub fn new() -> Self {
        let registry = Registry::new();
        let f = Families(&registry);
        Self {
            upstream_in_flight: f.gauge_vec(&UPSTREAM_IN_FLIGHT),
            breaker_transitions: f.counter_vec(&BREAKER_TRANSITIONS),
            breaker_open: f.gauge_vec(&BREAKER_OPEN),
            denied: f.counter_vec(&DENIED),
            config_reloads: f.counter_vec(&CONFIG_RELOADS),
            upstream_up: f.gauge_vec(&UPSTREAM_UP),
            upstream_head: f.gauge_vec(&UPSTREAM_HEAD),
            upstream_lag: f.gauge_vec(&UPSTREAM_LAG),
            upstream_rank: f.gauge_vec(&UPSTREAM_RANK),
            upstream_wrong_chain: f.gauge_vec(&UPSTREAM_WRONG_CHAIN),
            upstream_attempts: f.counter_vec(&UPSTREAM_ATTEMPTS),
            requests: f.counter_vec(&REQUESTS),
            failovers: f.counter_vec(&FAILOVERS),
            probes: f.counter_vec(&PROBES),
            transitions: f.counter_vec(&TRANSITIONS),
            upstream_duration: f.histogram_vec(&UPSTREAM_DURATION),
            client_duration: f.histogram(&CLIENT_DURATION),
            best_head: f.gauge(&BEST_HEAD),
            in_flight: f.gauge(&IN_FLIGHT),
            answer_bytes: f.gauge(&ANSWER_BYTES),
            answer_budget_waits: f.counter(&ANSWER_BUDGET_WAITS),
            answer_budget_gave_way: f.counter(&ANSWER_BUDGET_GAVE_WAY),
            retry_budget_exhausted: f.counter(&RETRY_BUDGET_EXHAUSTED),
            unsupported: f.counter_vec(&UNSUPPORTED),
            upstream_unsupported: f.gauge_vec(&UPSTREAM_UNSUPPORTED),
            upstream_forked: f.gauge_vec(&UPSTREAM_FORKED),
            upstream_syncing: f.gauge_vec(&UPSTREAM_SYNCING),
            hedges: f.counter_vec(&HEDGES),
            hedge_wins: f.counter_vec(&HEDGE_WINS),
            wrong_answers: f.counter_vec(&WRONG_ANSWERS),
            upstream_wrong_answers: f.counter_vec(&UPSTREAM_WRONG_ANSWERS),
            verified: f.counter_vec(&VERIFIED),
            verify_skipped: f.counter_vec(&VERIFY_SKIPPED),
            verify_fetches: f.counter_vec(&VERIFY_FETCHES),
            verify_cache_hits: f.counter_vec(&VERIFY_CACHE_HITS),
            verify_cache_bytes: f.gauge(&VERIFY_CACHE_BYTES),
            upstream_quarantined: f.gauge_vec(&UPSTREAM_QUARANTINED),
            cache_lookups: f.counter_vec(&CACHE_LOOKUPS),
            cache_bytes: f.gauge(&CACHE_BYTES),
            cache_purged: f.counter(&CACHE_PURGED),
            cache_deep_reorgs: f.counter(&CACHE_DEEP_REORGS),
            cache_final_line: f.gauge(&CACHE_FINAL_LINE),
            upstream_learned_rps: f.register(
                GaugeVec::new(Families::opts(&UPSTREAM_LEARNED_RPS), &["upstream"])
                    .expect("valid metric"),
            ),
            rate_limited: f.counter_vec(&RATE_LIMITED),
            rate_limit_waits: f.counter_vec(&RATE_LIMIT_WAITS),
            rate_limit_wait_seconds: f.register(
                CounterVec::new(Families::opts(&RATE_LIMIT_WAIT_SECONDS), &["upstream"])
                    .expect("valid metric"),
            ),
            credits_spent: f.counter_vec(&CREDITS_SPENT),
            month_credits: f.gauge_vec(&MONTH_CREDITS),
            month_budget: f.gauge_vec(&MONTH_BUDGET),
            redis_up: f.gauge(&REDIS_UP),
            redis_errors: f.counter(&REDIS_ERRORS),
            shared_fallbacks: f.counter_vec(&SHARED_FALLBACKS),
            registry,
        }
    }

    /// The Prometheus text exposition of every family.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 * 1024);
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("text encoding into a Vec cannot fail");
        out
    }
}

/// Methods counted under their own name; everything else is `other`, so a client cannot
/// grow the label set.
const KNOWN_METHODS: &[&str] = &[
    "eth_blockNumber",
    "eth_call",
    "eth_chainId",
    "eth_estimateGas",
    "eth_feeHistory",
    "eth_gasPrice",
    "eth_getBalance",
    "eth_getBlockByHash",
    "eth_getBlockByNumber",
    "eth_getBlockReceipts",
    "eth_getBlockTransactionCountByHash",
    "eth_getBlockTransactionCountByNumber",
    "eth_getCode",
    "eth_getFilterChanges",
    "eth_getFilterLogs",
    "eth_getLogs",
    "eth_getProof",
    "eth_getStorageAt",
    "eth_getTransactionByBlockHashAndIndex",
    "eth_getTransactionByBlockNumberAndIndex",
    "eth_getTransactionByHash",
    "eth_getTransactionCount",
    "eth_getTransactionReceipt",
    "eth_getUncleByBlockHashAndIndex",
    "eth_getUncleByBlockNumberAndIndex",
    "eth_getUncleCountByBlockHash",
    "eth_getUncleCountByBlockNumber",
    "eth_maxPriorityFeePerGas",
    "eth_newBlockFilter",
    "eth_newFilter",
    "eth_newPendingTransactionFilter",
    "eth_sendRawTransaction",
    "eth_syncing",
    "eth_uninstallFilter",
    "net_listening",
    "net_peerCount",
    "net_version",
    "trace_block",
    "trace_transaction",
    "trace_replayBlockTransactions",
    "debug_traceBlockByNumber",
    "debug_traceTransaction",
    "web3_clientVersion",
    "web3_sha3",
];

/// The bounded `method` label for a method name.
pub fn method_label(method: &str) -> &'static str {
    KNOWN_METHODS
        .iter()
        .find(|m| **m == method)
        .copied()
        .unwrap_or("other")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_label_is_bounded() {
        assert_eq!(method_label("eth_getBlockByNumber"), "eth_getBlockByNumber");
        assert_eq!(method_label("eth_getBlockByNumberX"), "other");
        assert_eq!(method_label(&"x".repeat(1 << 20)), "other");
    }

    #[test]
    fn encodes_registered_families() {
        let m = Metrics::new();
        m.upstream_up.with_label_values(&["local"]).set(1);
        m.requests
            .with_label_values(&["eth_blockNumber", "local", "ok"])
            .inc();
        let text = String::from_utf8(m.encode()).unwrap();
        assert!(
            text.contains("nodewatch_upstream_up{upstream=\"local\"} 1"),
            "{text}"
        );
        assert!(text.contains(
            "nodewatch_requests_total{method=\"eth_blockNumber\",outcome=\"ok\",upstream=\"local\"} 1"
        ));
    }
}
