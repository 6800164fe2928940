//! Prometheus metrics: one [`Metrics`] value owns the registry and every family; it is
//! passed to whoever records, never global. Label values are bounded: upstream names come
//! from the configuration and methods from [`method_label`].

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
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
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Creates and registers every family.
    pub fn new() -> Self {
        let registry = Registry::new();
        let gauge_vec = |name: &str, help: &str, labels: &[&str]| {
            let g = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric");
            registry
                .register(Box::new(g.clone()))
                .expect("unique metric");
            g
        };
        let counter_vec = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
            registry
                .register(Box::new(c.clone()))
                .expect("unique metric");
            c
        };
        let upstream_duration = HistogramVec::new(
            HistogramOpts::new(
                "nodewatch_upstream_request_duration_seconds",
                "Duration of one attempt against an upstream.",
            )
            .buckets(DURATION_BUCKETS.to_vec()),
            &["upstream"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(upstream_duration.clone()))
            .expect("unique metric");
        let client_duration = Histogram::with_opts(
            HistogramOpts::new(
                "nodewatch_request_duration_seconds",
                "Duration of a whole client request, failover included.",
            )
            .buckets(DURATION_BUCKETS.to_vec()),
        )
        .expect("valid metric");
        registry
            .register(Box::new(client_duration.clone()))
            .expect("unique metric");
        let best_head = IntGauge::new(
            "nodewatch_best_head_block",
            "Highest head among healthy upstreams.",
        )
        .expect("valid metric");
        registry
            .register(Box::new(best_head.clone()))
            .expect("unique metric");
        let in_flight = IntGauge::new(
            "nodewatch_in_flight_requests",
            "Client requests being served.",
        )
        .expect("valid metric");
        registry
            .register(Box::new(in_flight.clone()))
            .expect("unique metric");
        let retry_budget_exhausted = IntCounter::new(
            "nodewatch_retry_budget_exhausted_total",
            "Retry rounds refused because the retry budget was spent.",
        )
        .expect("valid metric");
        registry
            .register(Box::new(retry_budget_exhausted.clone()))
            .expect("unique metric");
        Self {
            retry_budget_exhausted,
            upstream_in_flight: gauge_vec(
                "nodewatch_upstream_in_flight_requests",
                "Requests in flight to an upstream.",
                &["upstream"],
            ),
            breaker_transitions: counter_vec(
                "nodewatch_breaker_transitions_total",
                "Circuit breaker state changes by upstream and new state.",
                &["upstream", "to"],
            ),
            breaker_open: gauge_vec(
                "nodewatch_upstream_breaker_open",
                "1 while the upstream's circuit breaker is open.",
                &["upstream"],
            ),
            denied: counter_vec(
                "nodewatch_denied_requests_total",
                "Calls refused by the method policy, by method.",
                &["method"],
            ),
            config_reloads: counter_vec(
                "nodewatch_config_reloads_total",
                "Configuration reloads by result.",
                &["result"],
            ),
            upstream_up: gauge_vec(
                "nodewatch_upstream_up",
                "1 if the upstream is healthy.",
                &["upstream"],
            ),
            upstream_head: gauge_vec(
                "nodewatch_upstream_head_block",
                "Last head block the upstream reported.",
                &["upstream"],
            ),
            upstream_lag: gauge_vec(
                "nodewatch_upstream_lag_blocks",
                "Blocks the upstream trails the best head.",
                &["upstream"],
            ),
            upstream_rank: gauge_vec(
                "nodewatch_upstream_rank",
                "Rank of the upstream in the configuration (1 = primary).",
                &["upstream"],
            ),
            upstream_wrong_chain: gauge_vec(
                "nodewatch_upstream_wrong_chain",
                "1 if the upstream reports another chain id than the proxy serves.",
                &["upstream"],
            ),
            upstream_duration,
            upstream_attempts: counter_vec(
                "nodewatch_upstream_attempts_total",
                "Attempts against an upstream by outcome.",
                &["upstream", "outcome"],
            ),
            requests: counter_vec(
                "nodewatch_requests_total",
                "Client request items by method, serving upstream and outcome.",
                &["method", "upstream", "outcome"],
            ),
            failovers: counter_vec(
                "nodewatch_failovers_total",
                "Attempts that failed over to the next upstream, by the upstream left and why.",
                &["upstream", "reason"],
            ),
            probes: counter_vec(
                "nodewatch_probes_total",
                "Health probes by upstream and outcome.",
                &["upstream", "outcome"],
            ),
            transitions: counter_vec(
                "nodewatch_upstream_transitions_total",
                "Health state changes by upstream and new state.",
                &["upstream", "to"],
            ),
            best_head,
            in_flight,
            client_duration,
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
