//! An HTTPS upstream on 127.0.0.1: a [`Scripted`] TLS server (certificate for `localhost`
//! from a private CA made for the test, h2 and HTTP/1.1 by ALPN) relaying to a real node. It
//! records which HTTP version and `Authorization` header each request arrived with. Also
//! [`TestCa`]: a private CA made for one test, issuing server certificates (PEM) for servers
//! that take files, such as PostgreSQL.

use std::path::PathBuf;

use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};

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

/// A private certificate authority made for one test.
pub struct TestCa {
    /// The CA certificate, PEM: what a client trusts (`sslrootcert`).
    pub cert_pem: String,
    cert: rcgen::Certificate,
    key: KeyPair,
}

/// A certificate issued by a [`TestCa`], with its private key, both PEM.
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
}

impl TestCa {
    /// A new CA with a fresh key and `name` as its common name (webpki finds a certificate's
    /// issuer by name: two CAs of one name make a signature error, not an unknown issuer).
    pub fn new(name: &str) -> TestCa {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let cert = params.self_signed(&key).unwrap();
        TestCa {
            cert_pem: cert.pem(),
            cert,
            key,
        }
    }

    /// A server certificate for `names` (DNS names or IP addresses, as subjectAltNames).
    pub fn issue(&self, names: &[&str]) -> Issued {
        let key = KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let cert = CertificateParams::new(names)
            .unwrap()
            .signed_by(&key, &self.cert, &self.key)
            .unwrap();
        Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }
}
