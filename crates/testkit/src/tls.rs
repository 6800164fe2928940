//! An HTTPS upstream on 127.0.0.1: a [`Scripted`] TLS server (certificate for `localhost`
//! from a private CA made for the test, h2 and HTTP/1.1 by ALPN) relaying to a real node. It
//! records which HTTP version and `Authorization` header each request arrived with.

use std::path::PathBuf;

use crate::scripted::{self, Scripted};

/// A running TLS relay.
pub struct TlsRelay {
    /// `https://localhost:PORT`.
    pub url: String,
    /// PEM file of the CA that signed the server certificate.
    pub ca_file: PathBuf,
    server: Scripted,
}

impl TlsRelay {
    /// Starts a relay to `target` (an http URL).
    pub async fn start(target: &str) -> TlsRelay {
        let target = target.to_string();
        let server = Scripted::builder()
            .tls()
            .record()
            .start(move |req| {
                let target = target.clone();
                async move {
                    let text = scripted::forward(&target, &req).await.unwrap_or_default().1;
                    Ok(http::Response::new(scripted::body(text)))
                }
            })
            .await;
        TlsRelay {
            url: server.url(),
            ca_file: server.ca_file(),
            server,
        }
    }

    /// HTTP versions of the requests received, in order.
    pub fn versions(&self) -> Vec<http::Version> {
        self.server.seen().iter().map(|r| r.version).collect()
    }

    /// `Authorization` header of each request received, in order.
    pub fn authorization(&self) -> Vec<Option<String>> {
        let seen = self.server.seen();
        seen.iter()
            .map(|r| r.header("authorization").map(str::to_string))
            .collect()
    }
}
