//! Reading a running nodewatch from outside, over its admin listener: the [`View`] behind
//! `nodewatch status`, and the `/healthz` check behind `nodewatch healthcheck` (the
//! container `HEALTHCHECK`, so the image needs no curl).
//!
//! Every failure is one [`ClientError`] whose message is a single line naming the URL and
//! the cause; nothing here panics on a bad URL, a dead port or a strange answer.

use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};

use super::{StatusDoc, View};
use nodewatch_http::error::innermost_cause;
use nodewatch_http::{ClientOptions, HttpClient};

/// Where the admin listener is when nothing says otherwise (`admin_listen`'s default).
pub const DEFAULT_ADMIN_URL: &str = "http://127.0.0.1:9545";
/// Bound on one admin request.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);
/// Largest admin answer read (a `/metrics` page is a few tens of KiB).
const BODY_LIMIT: usize = 8 * 1024 * 1024;
/// The environment variable (the same one the proxy reads) that moves the admin listener.
pub const ADMIN_LISTEN_ENV: &str = "NODEWATCH__ADMIN_LISTEN";

/// Why the admin listener could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The admin URL cannot be used.
    #[error("admin URL {url:?}: {reason}")]
    BadUrl {
        /// As given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Connection refused, reset, DNS, ...
    #[error("cannot reach nodewatch admin at {url}: {reason}")]
    Unreachable {
        /// The URL asked.
        url: String,
        /// Innermost cause.
        reason: String,
    },
    /// No complete answer in time.
    #[error("nodewatch admin at {url} did not answer within {timeout:?}")]
    Timeout {
        /// The URL asked.
        url: String,
        /// The bound.
        timeout: Duration,
    },
    /// An answer other than 200.
    #[error("{url} answered HTTP {status}: {body}")]
    Status {
        /// The URL asked.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The first line of the answer.
        body: String,
    },
    /// A 200 that is not what nodewatch serves there.
    #[error("{url} is not a nodewatch status document: {reason}")]
    BadDocument {
        /// The URL asked.
        url: String,
        /// The parse error.
        reason: String,
    },
}

/// A client for one admin listener.
#[derive(Debug, Clone)]
pub struct AdminClient {
    /// `scheme://host:port`, no trailing slash.
    base: String,
    /// Bound on each request.
    timeout: Duration,
    /// HTTP(S) client (the same builder the proxy uses for upstreams).
    client: HttpClient,
}

impl AdminClient {
    /// A client for `admin`: `http://host:port`, `https://…`, or a bare `host:port`.
    pub fn new(admin: &str) -> Result<Self, ClientError> {
        Ok(AdminClient {
            base: normalise(admin)?,
            timeout: DEFAULT_TIMEOUT,
            client: nodewatch_http::client::build(&ClientOptions::default()),
        })
    }

    /// Sets the bound on each request (default [`DEFAULT_TIMEOUT`]).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The base URL, as shown in messages.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// GETs `path` (e.g. `/status`); any status code is returned, transport failures are
    /// errors.
    pub async fn get(&self, path: &str) -> Result<(StatusCode, Bytes), ClientError> {
        let url = format!("{}{path}", self.base);
        let uri: Uri = url
            .parse()
            .map_err(|e: http::uri::InvalidUri| ClientError::BadUrl {
                url: url.clone(),
                reason: e.to_string(),
            })?;
        let request = Request::get(uri)
            .body(Full::new(Bytes::new()))
            .map_err(|e| ClientError::BadUrl {
                url: url.clone(),
                reason: e.to_string(),
            })?;
        let exchange = async {
            let response = self.client.pooled().request(request).await.map_err(|e| {
                ClientError::Unreachable {
                    url: url.clone(),
                    reason: innermost_cause(&e),
                }
            })?;
            let status = response.status();
            let body = Limited::new(response.into_body(), BODY_LIMIT)
                .collect()
                .await
                .map_err(|e| ClientError::Unreachable {
                    url: url.clone(),
                    reason: format!("answer broke off: {e}"),
                })?
                .to_bytes();
            Ok((status, body))
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Ok(result) => result,
            Err(_) => Err(ClientError::Timeout {
                url,
                timeout: self.timeout,
            }),
        }
    }

    /// GETs `path` and requires a 200.
    pub async fn get_ok(&self, path: &str) -> Result<Bytes, ClientError> {
        let (status, body) = self.get(path).await?;
        if status != StatusCode::OK {
            let text = String::from_utf8_lossy(&body);
            return Err(ClientError::Status {
                url: format!("{}{path}", self.base),
                status: status.as_u16(),
                body: text
                    .lines()
                    .next()
                    .unwrap_or("")
                    .chars()
                    .take(200)
                    .collect(),
            });
        }
        Ok(body)
    }

    /// `/status` and `/metrics`, read together.
    pub async fn view(&self) -> Result<View, ClientError> {
        let (status, metrics) = tokio::join!(self.get_ok("/status"), self.get_ok("/metrics"));
        let status = status?;
        let doc: StatusDoc =
            serde_json::from_slice(&status).map_err(|e| ClientError::BadDocument {
                url: format!("{}/status", self.base),
                reason: e.to_string(),
            })?;
        Ok(View::new(doc, &String::from_utf8_lossy(&metrics?)))
    }
}

/// The admin URL to use when none is given: `$NODEWATCH__ADMIN_LISTEN` (as the proxy reads
/// it; an unspecified address such as `0.0.0.0` is reached on loopback), else
/// [`DEFAULT_ADMIN_URL`].
pub fn default_admin_url() -> String {
    match std::env::var(ADMIN_LISTEN_ENV) {
        Ok(listen) if !listen.trim().is_empty() => admin_url_for_listen(listen.trim()),
        _ => DEFAULT_ADMIN_URL.to_owned(),
    }
}

/// The URL a local client uses to reach a listener bound to `listen` (`0.0.0.0:9545` ->
/// `http://127.0.0.1:9545`). Unparseable input is passed through for [`AdminClient::new`]
/// to reject with a clear message.
pub fn admin_url_for_listen(listen: &str) -> String {
    match listen.parse::<std::net::SocketAddr>() {
        Ok(addr) if addr.ip().is_unspecified() => {
            let ip = if addr.is_ipv4() { "127.0.0.1" } else { "[::1]" };
            format!("http://{ip}:{}", addr.port())
        }
        Ok(addr) => format!("http://{addr}"),
        Err(_) => listen.to_owned(),
    }
}

fn normalise(admin: &str) -> Result<String, ClientError> {
    let bad = |reason: &str| ClientError::BadUrl {
        url: admin.to_owned(),
        reason: reason.to_owned(),
    };
    let trimmed = admin.trim();
    if trimmed.is_empty() {
        return Err(bad("empty"));
    }
    let with_scheme = if trimmed.contains("://") {
        trimmed.to_owned()
    } else {
        format!("http://{trimmed}")
    };
    let url = url::Url::parse(&with_scheme).map_err(|e| bad(&e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("scheme must be http or https"));
    }
    let host = match url.host() {
        Some(url::Host::Ipv6(ip)) => format!("[{ip}]"),
        Some(host) => host.to_string(),
        None => return Err(bad("no host")),
    };
    let port = url.port_or_known_default().ok_or_else(|| bad("no port"))?;
    Ok(format!("{}://{host}:{port}", url.scheme()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_admin_urls() {
        assert_eq!(
            normalise("127.0.0.1:9545").unwrap(),
            "http://127.0.0.1:9545"
        );
        assert_eq!(
            normalise("http://localhost:9545/").unwrap(),
            "http://localhost:9545"
        );
        assert_eq!(normalise("[::1]:9").unwrap(), "http://[::1]:9");
        for bad in ["", "ftp://x:1", "http://", "::::", "http://a b:1"] {
            assert!(normalise(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn listen_addresses_map_to_reachable_urls() {
        assert_eq!(
            admin_url_for_listen("0.0.0.0:9545"),
            "http://127.0.0.1:9545"
        );
        assert_eq!(admin_url_for_listen("[::]:9"), "http://[::1]:9");
        assert_eq!(admin_url_for_listen("10.1.2.3:9"), "http://10.1.2.3:9");
        assert_eq!(admin_url_for_listen("junk"), "junk");
    }

    #[tokio::test]
    async fn unreachable_admin_is_one_clear_line() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let client = AdminClient::new(&format!("127.0.0.1:{port}")).unwrap();
        let e = client.view().await.unwrap_err().to_string();
        assert!(
            e.starts_with("cannot reach nodewatch admin at http://127.0.0.1:"),
            "{e}"
        );
        assert_eq!(e.lines().count(), 1, "{e}");
    }
}
