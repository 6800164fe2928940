//! Typed errors of the request path.
//!
//! [`UpstreamError`] is one failed attempt against one upstream; it knows whether the next
//! candidate should be tried ([`UpstreamError::is_retryable`]) and whether it says something
//! about the upstream's health ([`UpstreamError::is_health_failure`]). [`ClientError`] is what
//! a client did wrong and maps to a JSON-RPC error object or an HTTP status. [`AnswerError`]
//! says why an upstream's body is not an answer to what was sent.
//!
//! Messages name upstreams by their configured name only: URLs (paths, query keys) and header
//! values never appear in an error.

use std::fmt;

/// JSON-RPC: invalid JSON.
pub const PARSE_ERROR: i64 = -32700;
/// JSON-RPC: not a valid request object.
pub const INVALID_REQUEST: i64 = -32600;
/// JSON-RPC: internal error; used when no upstream could answer.
pub const INTERNAL_ERROR: i64 = -32603;
/// JSON-RPC: method not found; used for denied and unsupported methods.
pub const METHOD_NOT_FOUND: i64 = -32601;
/// JSON-RPC: invalid params.
pub const INVALID_PARAMS: i64 = -32602;
/// JSON-RPC: server error, as nodes answer "filter not found".
pub const SERVER_ERROR: i64 = -32000;

/// One failed attempt against one upstream.
#[derive(Debug, thiserror::Error)]
#[error("upstream {upstream}: {kind}")]
pub struct UpstreamError {
    /// The upstream's configured name.
    pub upstream: String,
    /// What went wrong.
    pub kind: UpstreamErrorKind,
}

/// The ways one attempt fails.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamErrorKind {
    /// TCP/TLS connect failed or the connection broke before the answer's head.
    #[error("connection failed: {0}")]
    Connect(String),
    /// The answer's head came (200), then its body broke off mid-read: the node took the
    /// request, and the connection or the node failed while answering.
    #[error("answer body broke off: {0}")]
    BodyBroken(String),
    /// No complete answer within the attempt timeout.
    #[error("timed out after {0:?}")]
    Timeout(std::time::Duration),
    /// The HTTP status was not 200 (429, 5xx, redirects, ...).
    #[error("HTTP status {0}")]
    Status(u16),
    /// The body was not a JSON-RPC answer to what was sent (garbage, short batch, wrong ids).
    #[error("invalid answer: {0}")]
    InvalidAnswer(#[source] AnswerError),
    /// The answer exceeded the response limit.
    #[error("answer larger than {0} bytes")]
    TooLarge(usize),
    /// A JSON-RPC error that signals node trouble (e.g. "header not found", rate limit).
    #[error("node error {code}: {message}")]
    NodeError {
        /// JSON-RPC error code.
        code: i64,
        /// The node's message.
        message: String,
    },
    /// The upstream reports a different chain than the one the proxy serves.
    #[error("wrong chain id {0}")]
    WrongChain(u64),
    /// No concurrency or rate slot within the queue timeout.
    #[error("busy: no free slot within {0:?}")]
    Busy(std::time::Duration),
    /// Its circuit breaker is half-open and another request holds the trial.
    #[error("circuit breaker open")]
    BreakerOpen,
    /// The in-flight answer budget could not hold the answer: larger than the whole budget,
    /// or no room in time. Not the node's fault, and no other node would do better.
    #[error("{0}")]
    AnswerBudget(String),
    /// The upstream's month of compute units is spent (`credits.per_month`): not sent; the
    /// next candidate may take the call.
    #[error("{0}")]
    BudgetSpent(String),
}

impl UpstreamError {
    /// Builds an error for the named upstream.
    pub fn new(upstream: impl Into<String>, kind: UpstreamErrorKind) -> Self {
        Self {
            upstream: upstream.into(),
            kind,
        }
    }

    /// Whether the same request should be tried on the next candidate. Every kind is (each
    /// says this upstream could not give a trustworthy answer, not that the request is
    /// bad) but the answer budget's: the answer would be as large from any node.
    pub fn is_retryable(&self) -> bool {
        match self.kind {
            UpstreamErrorKind::Connect(_)
            | UpstreamErrorKind::BodyBroken(_)
            | UpstreamErrorKind::Timeout(_)
            | UpstreamErrorKind::Status(_)
            | UpstreamErrorKind::InvalidAnswer(_)
            | UpstreamErrorKind::TooLarge(_)
            | UpstreamErrorKind::NodeError { .. }
            | UpstreamErrorKind::WrongChain(_)
            | UpstreamErrorKind::Busy(_)
            | UpstreamErrorKind::BudgetSpent(_)
            | UpstreamErrorKind::BreakerOpen => true,
            UpstreamErrorKind::AnswerBudget(_) => false,
        }
    }

    /// Whether this attempt counts against the upstream's circuit breaker: the forward
    /// itself failed (not one item's answer, not our own admission control).
    pub fn is_breaker_failure(&self) -> bool {
        match self.kind {
            UpstreamErrorKind::Connect(_)
            | UpstreamErrorKind::BodyBroken(_)
            | UpstreamErrorKind::Timeout(_)
            | UpstreamErrorKind::Status(_)
            | UpstreamErrorKind::InvalidAnswer(_)
            | UpstreamErrorKind::TooLarge(_) => true,
            UpstreamErrorKind::NodeError { .. }
            | UpstreamErrorKind::WrongChain(_)
            | UpstreamErrorKind::Busy(_)
            | UpstreamErrorKind::BudgetSpent(_)
            | UpstreamErrorKind::BreakerOpen
            | UpstreamErrorKind::AnswerBudget(_) => false,
        }
    }

    /// Whether this attempt counts as a failed health observation (passive health): the node
    /// could not be reached, broke off its answer, did not answer in time, or answered with a
    /// server error.
    pub fn is_health_failure(&self) -> bool {
        match &self.kind {
            UpstreamErrorKind::Connect(_)
            | UpstreamErrorKind::BodyBroken(_)
            | UpstreamErrorKind::Timeout(_) => true,
            UpstreamErrorKind::Status(code) => *code >= 500,
            UpstreamErrorKind::InvalidAnswer(_)
            | UpstreamErrorKind::TooLarge(_)
            | UpstreamErrorKind::NodeError { .. }
            | UpstreamErrorKind::WrongChain(_)
            | UpstreamErrorKind::Busy(_)
            | UpstreamErrorKind::BudgetSpent(_)
            | UpstreamErrorKind::BreakerOpen
            | UpstreamErrorKind::AnswerBudget(_) => false,
        }
    }

    /// A short, bounded label for metrics (`outcome`).
    pub fn outcome(&self) -> &'static str {
        match self.kind {
            UpstreamErrorKind::Connect(_) => "connect_error",
            UpstreamErrorKind::BodyBroken(_) => "body_broken",
            UpstreamErrorKind::Timeout(_) => "timeout",
            UpstreamErrorKind::Status(_) => "http_error",
            UpstreamErrorKind::InvalidAnswer(_) | UpstreamErrorKind::TooLarge(_) => {
                "invalid_answer"
            }
            UpstreamErrorKind::NodeError { .. } => "node_error",
            UpstreamErrorKind::WrongChain(_) => "wrong_chain",
            UpstreamErrorKind::Busy(_) => "busy",
            UpstreamErrorKind::BreakerOpen => "breaker_open",
            UpstreamErrorKind::AnswerBudget(_) => "answer_budget",
            UpstreamErrorKind::BudgetSpent(_) => "budget_spent",
        }
    }
}

/// Why [`crate::jsonrpc::parse_answers`] rejected an upstream's body. Such a body is never passed on:
/// the attempt fails as [`UpstreamErrorKind::InvalidAnswer`] and the calls move
/// on to the next candidate.
#[derive(Debug, thiserror::Error)]
pub enum AnswerError {
    /// Not JSON of the wanted shape (an array for a batch, an object for a single call).
    #[error("expected {wanted} ({source}); body starts {head:?}")]
    Malformed {
        /// What was wanted: "a batch answer array" or "an answer object".
        wanted: &'static str,
        /// The JSON parser's reason.
        source: serde_json::Error,
        /// The body's first bytes, control characters blanked, for the log.
        head: String,
    },
    /// Not one answer per call.
    #[error("batch answer has {got} items for {expected} requests")]
    Count {
        /// Answers in the body.
        got: usize,
        /// Calls sent.
        expected: usize,
    },
    /// An answer without a numeric id (nodewatch sends ids `0..n`).
    #[error("answer without a numeric id")]
    NoId,
    /// An id that was not sent.
    #[error("answer with unknown id {0}")]
    UnknownId(u64),
    /// Two answers for one call.
    #[error("two answers with id {0}")]
    DuplicateId(u64),
    /// Neither or both of `result` and `error`.
    #[error("answer {0} must have exactly one of result and error")]
    NotResultOrError(u64),
    /// An `error` member that is not an object with an integer `code`.
    #[error("error object without an integer code")]
    ErrorWithoutCode,
    /// A well-formed answer whose `result` is not what the call asks for (a probe's
    /// `eth_blockNumber` that is not a hex quantity).
    #[error("not {wanted}: {got}")]
    Unexpected {
        /// What the call asks for.
        wanted: &'static str,
        /// The start of the result as the node wrote it.
        got: String,
    },
}

impl AnswerError {
    /// A body that is not JSON of the `wanted` shape.
    pub(crate) fn malformed(body: &[u8], wanted: &'static str, source: serde_json::Error) -> Self {
        let head = String::from_utf8_lossy(&body[..body.len().min(64)])
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        Self::Malformed {
            wanted,
            source,
            head,
        }
    }

    /// A result that is not `wanted`: its first 40 characters are kept.
    pub fn unexpected(wanted: &'static str, result: &str) -> Self {
        Self::Unexpected {
            wanted,
            got: result.chars().take(40).collect(),
        }
    }
}

/// Error messages of JSON-RPC errors in the node-trouble code range that are nevertheless
/// answers every node gives alike; they are returned to the client, never failed over.
const DETERMINISTIC_MESSAGES: &[&str] = &[
    "execution reverted",
    "revert",
    "nonce too low",
    "nonce too high",
    "insufficient funds",
    "gas required exceeds",
    "intrinsic gas too low",
    "out of gas",
    "invalid opcode",
    "already known",
    "replacement transaction underpriced",
    "transaction underpriced",
    "max fee per gas less than block base fee",
    "exceeds block gas limit",
    "invalid sender",
    "invalid signature",
    "stack underflow",
    "stack overflow",
    "invalid jump",
];

/// Whether a JSON-RPC error from an upstream signals node trouble (fail over) rather than a
/// result every node would give the same (return it as it is).
///
/// Node trouble: -32603 and the server-error range -32000..=-32099, unless the message is a
/// deterministic execution or transaction-pool answer.
pub fn is_node_trouble(code: i64, message: &str) -> bool {
    if !(code == INTERNAL_ERROR || (-32099..=-32000).contains(&code)) {
        return false;
    }
    let message = message.to_ascii_lowercase();
    !DETERMINISTIC_MESSAGES.iter().any(|m| message.contains(m))
}

/// What a client did wrong, or why no answer could be had.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The body is not JSON.
    #[error("parse error: {0}")]
    Parse(String),
    /// JSON, but not a request (or an empty batch, wrong version, missing method).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// A batch with more items than allowed.
    #[error("invalid request: batch of {got} items exceeds the limit of {max}")]
    BatchTooLarge {
        /// Items sent.
        got: usize,
        /// The limit.
        max: usize,
    },
    /// Every candidate failed.
    #[error("no upstream could answer: {0}")]
    NoUpstream(AttemptSummary),
    /// The method policy denies this method.
    #[error("method not allowed: {0}")]
    MethodNotAllowed(String),
    /// nodewatch does not serve this method.
    #[error("method not supported by nodewatch: {0}")]
    Unsupported(String),
    /// An unknown or expired filter id.
    #[error("filter not found")]
    FilterNotFound,
    /// A request whose params nodewatch must read are malformed.
    #[error("invalid params: {0}")]
    InvalidParams(String),
    /// A resource limit of nodewatch's own was reached.
    #[error("limit exceeded: {0}")]
    Limit(String),
}

impl ClientError {
    /// The JSON-RPC error code for this error.
    pub fn code(&self) -> i64 {
        match self {
            ClientError::Parse(_) => PARSE_ERROR,
            ClientError::InvalidRequest(_) | ClientError::BatchTooLarge { .. } => INVALID_REQUEST,
            ClientError::NoUpstream(_) => INTERNAL_ERROR,
            ClientError::MethodNotAllowed(_) | ClientError::Unsupported(_) => METHOD_NOT_FOUND,
            ClientError::FilterNotFound | ClientError::Limit(_) => SERVER_ERROR,
            ClientError::InvalidParams(_) => INVALID_PARAMS,
        }
    }
}

/// The attempts of a request that no upstream could answer, summarised for the client
/// (names and error kinds only).
#[derive(Debug, Default)]
pub struct AttemptSummary(pub Vec<UpstreamError>);

impl fmt::Display for AttemptSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("no upstream is configured or usable");
        }
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_trouble_codes_fail_over() {
        assert!(is_node_trouble(-32000, "header not found"));
        assert!(is_node_trouble(-32000, "missing trie node 0xabc"));
        assert!(is_node_trouble(-32005, "rate limit exceeded"));
        assert!(is_node_trouble(-32603, "internal error"));
    }

    #[test]
    fn deterministic_answers_do_not_fail_over() {
        assert!(!is_node_trouble(3, "execution reverted"));
        assert!(!is_node_trouble(-32000, "execution reverted: paused"));
        assert!(!is_node_trouble(-32000, "nonce too low"));
        assert!(!is_node_trouble(
            -32000,
            "insufficient funds for gas * price + value"
        ));
        assert!(!is_node_trouble(-32602, "invalid params"));
        assert!(!is_node_trouble(-32601, "method not found"));
    }

    #[test]
    fn health_failures_are_connect_timeout_and_5xx() {
        let e = |kind| UpstreamError::new("a", kind);
        assert!(e(UpstreamErrorKind::Connect("refused".into())).is_health_failure());
        assert!(e(UpstreamErrorKind::Timeout(std::time::Duration::from_secs(
            1
        )))
        .is_health_failure());
        assert!(e(UpstreamErrorKind::Status(502)).is_health_failure());
        assert!(!e(UpstreamErrorKind::Status(429)).is_health_failure());
        assert!(e(UpstreamErrorKind::Status(429)).is_retryable());
        let invalid = UpstreamErrorKind::InvalidAnswer(AnswerError::NoId);
        assert!(!e(invalid).is_health_failure());
    }

    #[test]
    fn an_unexpected_result_keeps_only_its_start() {
        let e = AnswerError::unexpected("a hex quantity", &"\"ab".repeat(50));
        assert!(matches!(&e, AnswerError::Unexpected { got, .. } if got.chars().count() == 40));
        assert!(e.to_string().starts_with("not a hex quantity: \"ab\"ab"));
    }

    #[test]
    fn a_broken_off_body_is_its_own_kind_and_still_fails_over() {
        let broken = UpstreamError::new(
            "a",
            UpstreamErrorKind::BodyBroken("connection reset".into()),
        );
        assert_eq!(broken.outcome(), "body_broken");
        assert!(broken.is_retryable());
        assert!(broken.is_breaker_failure());
        assert!(broken.is_health_failure());
        assert_eq!(
            broken.to_string(),
            "upstream a: answer body broke off: connection reset"
        );
    }

    #[test]
    fn summary_names_upstreams_only() {
        let s = AttemptSummary(vec![
            UpstreamError::new("local", UpstreamErrorKind::Status(503)),
            UpstreamError::new("provider", UpstreamErrorKind::Connect("refused".into())),
        ]);
        assert_eq!(
            s.to_string(),
            "upstream local: HTTP status 503; upstream provider: connection failed: refused"
        );
    }
}
