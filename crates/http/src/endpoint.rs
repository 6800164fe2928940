//! A node's address, parsed and checked once: the URI requests go to, the headers they carry
//! (Basic credentials from the URL's user info among them) and the names it may be shown by.

use base64::Engine as _;
use http::{HeaderMap, HeaderName, HeaderValue, Uri};
use percent_encoding::percent_decode_str;
use url::Url;

/// Why a URL or header cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    /// Not a URL at all.
    #[error("not a URL: {0}")]
    NotAUrl(String),
    /// A scheme other than http or https (`file:` for IPC, `ws:`, …).
    #[error("scheme must be http or https, not {0:?}")]
    Scheme(String),
    /// `http://` and nothing else.
    #[error("URL has no host")]
    NoHost,
    /// User info that is not a valid header value once encoded.
    #[error("bad user info")]
    UserInfo,
    /// A header name that HTTP does not allow.
    #[error("bad header name {0:?}")]
    HeaderName(String),
    /// A header value that HTTP does not allow (the value itself is never shown).
    #[error("bad value for header {0:?}")]
    HeaderValue(String),
}

/// A checked http(s) endpoint. Its URI and header values are secret (API keys live in
/// paths, query strings and headers): show it by [`Endpoint::default_name`] or
/// [`Endpoint::redacted`] only.
#[derive(Clone)]
pub struct Endpoint {
    /// The URI requests are sent to, without user info (hyper would not send it, and its
    /// pool logs would print it).
    uri: Uri,
    /// Headers sent with every request, marked sensitive.
    headers: HeaderMap,
    /// `host:port`, the name an upstream gets when none is configured.
    default_name: String,
    /// `scheme://host:port/…`, for messages.
    redacted: String,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("url", &self.redacted)
            .finish_non_exhaustive()
    }
}

impl Endpoint {
    /// Parses `raw`: http or https with a host. User info becomes an `Authorization: Basic`
    /// header (percent-decoded, as Python's requests does).
    pub fn parse(raw: &str) -> Result<Self, EndpointError> {
        let mut url = parse_url(raw)?;
        let mut headers = HeaderMap::new();
        if let Some(basic) = basic_credentials(&url) {
            let mut value = HeaderValue::try_from(basic).map_err(|_| EndpointError::UserInfo)?;
            value.set_sensitive(true);
            headers.insert(http::header::AUTHORIZATION, value);
        }
        let _ = url.set_username("");
        let _ = url.set_password(None);
        let uri: Uri = url
            .as_str()
            .parse()
            .map_err(|e: http::uri::InvalidUri| EndpointError::NotAUrl(e.to_string()))?;
        let default_name = default_name(&url);
        let redacted = format!("{}://{default_name}/…", url.scheme());
        Ok(Self {
            uri,
            headers,
            default_name,
            redacted,
        })
    }

    /// Adds a header sent with every request (a configured `Authorization` replaces the one
    /// made from user info).
    pub fn with_header(mut self, name: &str, value: &str) -> Result<Self, EndpointError> {
        let name =
            HeaderName::try_from(name).map_err(|_| EndpointError::HeaderName(name.to_string()))?;
        let mut value = HeaderValue::try_from(value)
            .map_err(|_| EndpointError::HeaderValue(name.to_string()))?;
        value.set_sensitive(true);
        self.headers.insert(name, value);
        Ok(self)
    }

    /// The URI requests go to (secret: never print it).
    pub fn uri(&self) -> &Uri {
        &self.uri
    }

    /// The headers every request carries (secret values).
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// `host:port`.
    pub fn default_name(&self) -> &str {
        &self.default_name
    }

    /// `scheme://host:port/…`: safe to print.
    pub fn redacted(&self) -> &str {
        &self.redacted
    }
}

/// Parses and checks a URL: http or https with a host.
pub fn parse_url(raw: &str) -> Result<Url, EndpointError> {
    let url = Url::parse(raw).map_err(|e| EndpointError::NotAUrl(e.to_string()))?;
    match url.scheme() {
        "http" | "https" => {}
        other => return Err(EndpointError::Scheme(other.to_string())),
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(EndpointError::NoHost);
    }
    Ok(url)
}

/// `host:port` of a URL (the known default port when none is written).
pub fn default_name(url: &Url) -> String {
    let host = url.host_str().unwrap_or("upstream");
    match url.port_or_known_default() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    }
}

/// `scheme://host:port/…` of a URL given as text, or `<unparseable URL>`: what a message may
/// show of a URL that failed to validate.
pub fn redact_url(raw: &str) -> String {
    match Url::parse(raw) {
        Ok(url) if url.host_str().is_some() => {
            format!("{}://{}/…", url.scheme(), default_name(&url))
        }
        _ => "<unparseable URL>".to_string(),
    }
}

/// `Basic <base64(user:password)>` for a URL with user info (percent-decoded), else `None`.
fn basic_credentials(url: &Url) -> Option<String> {
    if url.username().is_empty() && url.password().is_none() {
        return None;
    }
    let mut raw: Vec<u8> = percent_decode_str(url.username()).collect();
    raw.push(b':');
    raw.extend(percent_decode_str(url.password().unwrap_or("")));
    Some(format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_info_becomes_basic_credentials_and_leaves_the_uri() {
        let e = Endpoint::parse("https://user:p%40ss@node.example/rpc").unwrap();
        assert_eq!(
            e.headers()[http::header::AUTHORIZATION],
            "Basic dXNlcjpwQHNz"
        );
        assert!(e.headers()[http::header::AUTHORIZATION].is_sensitive());
        assert_eq!(e.uri().to_string(), "https://node.example/rpc");
        assert_eq!(e.default_name(), "node.example:443");
        assert_eq!(e.redacted(), "https://node.example:443/…");
        let plain = Endpoint::parse("http://127.0.0.1:8545").unwrap();
        assert!(plain.headers().is_empty());
        let user_only = Endpoint::parse("http://u%20s@h:1/").unwrap();
        assert_eq!(
            user_only.headers()[http::header::AUTHORIZATION],
            "Basic dSBzOg=="
        );
    }

    #[test]
    fn bad_urls_say_why() {
        assert!(matches!(
            Endpoint::parse("not a url"),
            Err(EndpointError::NotAUrl(_))
        ));
        assert_eq!(
            Endpoint::parse("file:///tmp/geth.ipc").unwrap_err(),
            EndpointError::Scheme("file".into())
        );
        assert_eq!(
            Endpoint::parse("ws://h:1").unwrap_err(),
            EndpointError::Scheme("ws".into())
        );
        assert!(Endpoint::parse("http://").is_err());
    }

    #[test]
    fn headers_are_sensitive_and_checked() {
        let e = Endpoint::parse("http://u:p@h:1/")
            .unwrap()
            .with_header("authorization", "Bearer k")
            .unwrap()
            .with_header("x-api-key", "k2")
            .unwrap();
        assert_eq!(e.headers()[http::header::AUTHORIZATION], "Bearer k");
        assert!(e.headers()["x-api-key"].is_sensitive());
        let bad = Endpoint::parse("http://h:1/").unwrap();
        assert_eq!(
            bad.clone().with_header("bad name", "v").unwrap_err(),
            EndpointError::HeaderName("bad name".into())
        );
        assert!(matches!(
            bad.with_header("x", "a\nb"),
            Err(EndpointError::HeaderValue(_))
        ));
        assert!(!format!("{e:?}").contains("k2"));
    }

    #[test]
    fn redaction_keeps_scheme_host_and_port_only() {
        assert_eq!(
            redact_url("https://user:pw@h.example/v3/KEY?x=1"),
            "https://h.example:443/…"
        );
        assert_eq!(redact_url("garbage"), "<unparseable URL>");
    }
}
