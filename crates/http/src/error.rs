//! What can go wrong in one exchange with a node, typed, with messages that name no URL.

use std::time::Duration;

/// Why an exchange gave no answer body. Messages name no URL (show the endpoint by its
/// redacted form or name next to them).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// TCP/TLS connect failed, or the connection broke before the answer's head.
    #[error("{0}")]
    Connect(String),
    /// No complete answer within the timeout.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// An HTTP status other than 200, with the start of the body as the server wrote it.
    #[error("HTTP {status}: {snippet}")]
    Status {
        /// The status code.
        status: u16,
        /// Up to 200 bytes of the body, lossily decoded.
        snippet: String,
    },
    /// The answer is larger than the limit.
    #[error("answer larger than {0} bytes")]
    TooLarge(usize),
    /// The body broke off after the head.
    #[error("answer body broke off: {0}")]
    Body(String),
}

impl SendError {
    /// Every kind is worth another try (on this node later, or on another one): none says
    /// the request itself is wrong.
    pub fn is_retryable(&self) -> bool {
        true
    }
}

/// The innermost cause of an error chain, as text. hyper's and hyper-util's errors name no
/// URL, and only their causes' messages are shown, so the text is safe to print.
pub fn innermost_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut source = e;
    while let Some(next) = source.source() {
        source = next;
    }
    source.to_string()
}
