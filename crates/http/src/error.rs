//! What can go wrong in one exchange with a node, typed, with messages that name no URL;
//! and when a node that refused asked to be called again (`Retry-After`).

use std::time::{Duration, SystemTime};

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

/// A failed exchange, with the wait the server asked for when it said (`Retry-After` on a
/// 429 or 503): what a caller that paces its calls needs beside the error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error}")]
pub struct SendFailure {
    /// What went wrong.
    pub error: SendError,
    /// The answer's `Retry-After`, as a wait from when it came.
    pub retry_after: Option<Duration>,
}

impl From<SendError> for SendFailure {
    fn from(error: SendError) -> Self {
        Self {
            error,
            retry_after: None,
        }
    }
}

/// Longest `Retry-After` read (a day); a larger one is taken as this.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(86_400);

/// The wait a `Retry-After` header asks for: delay-seconds (a fraction tolerated), or an HTTP
/// date, measured from the answer's own `Date` when it has one (so a skewed clock does not
/// matter), else from now. `None` without the header or when it does not parse.
pub fn retry_after(headers: &http::HeaderMap) -> Option<Duration> {
    let value = headers
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0)
            .then(|| Duration::from_secs_f64(secs.min(MAX_RETRY_AFTER.as_secs_f64())));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    let now = headers
        .get(http::header::DATE)
        .and_then(|d| httpdate::parse_http_date(d.to_str().ok()?).ok())
        .unwrap_or_else(SystemTime::now);
    Some(
        at.duration_since(now)
            .unwrap_or(Duration::ZERO)
            .min(MAX_RETRY_AFTER),
    )
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

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> http::HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| {
                (
                    http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                    http::HeaderValue::from_str(v).unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let secs = |v: &str| retry_after(&headers(&[("retry-after", v)]));
        assert_eq!(secs("1"), Some(Duration::from_secs(1)));
        assert_eq!(secs(" 30 "), Some(Duration::from_secs(30)));
        assert_eq!(secs("0.5"), Some(Duration::from_millis(500)));
        assert_eq!(secs("-1"), None);
        assert_eq!(secs("soon"), None);
        assert_eq!(secs("99999999999"), Some(MAX_RETRY_AFTER));
        assert_eq!(retry_after(&headers(&[])), None);
        // A date, against the answer's own Date: the local clock does not matter.
        let dated = headers(&[
            ("retry-after", "Wed, 21 Oct 2015 07:28:02 GMT"),
            ("date", "Wed, 21 Oct 2015 07:28:00 GMT"),
        ]);
        assert_eq!(retry_after(&dated), Some(Duration::from_secs(2)));
        // A date in the past (or without a Date, long gone): no wait.
        let past = headers(&[("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT")]);
        assert_eq!(retry_after(&past), Some(Duration::ZERO));
    }
}
