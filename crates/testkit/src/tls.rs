//! An HTTPS upstream on 127.0.0.1: a TLS relay (certificate for `localhost` from a private CA
//! made for the test) in front of a real node, offering h2 and HTTP/1.1 by ALPN. It records
//! which HTTP version each request arrived with.

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use tokio::net::TcpListener;
use tokio_rustls::rustls;

use crate::rpc;

/// A running TLS relay.
pub struct TlsRelay {
    /// `https://localhost:PORT`.
    pub url: String,
    /// PEM file of the CA that signed the server certificate.
    pub ca_file: PathBuf,
    /// HTTP versions of the requests received, in order.
    pub versions: Arc<Mutex<Vec<http::Version>>>,
    /// `Authorization` header of each request received, in order.
    pub authorization: Arc<Mutex<Vec<Option<String>>>>,
    _dir: tempfile::TempDir,
    task: tokio::task::JoinHandle<()>,
}

impl TlsRelay {
    /// Starts a relay to `target` (an http URL).
    pub async fn start(target: &str) -> TlsRelay {
        let dir = tempfile::tempdir().unwrap();
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let server_key = KeyPair::generate().unwrap();
        let server = CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .signed_by(&server_key, &ca, &ca_key)
            .unwrap();
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, ca.pem()).unwrap();

        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![server.der().clone()],
            rustls::pki_types::PrivateKeyDer::try_from(server_key.serialize_der()).unwrap(),
        )
        .unwrap();
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));

        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "https://localhost:{}",
            listener.local_addr().unwrap().port()
        );
        let versions = Arc::new(Mutex::new(Vec::new()));
        let authorization = Arc::new(Mutex::new(Vec::new()));
        let (seen, auth, target) = (versions.clone(), authorization.clone(), target.to_string());
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (acceptor, seen, auth, target) =
                    (acceptor.clone(), seen.clone(), auth.clone(), target.clone());
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(stream).await else {
                        return;
                    };
                    let service = service_fn(move |req: http::Request<hyper::body::Incoming>| {
                        let (seen, auth, target) = (seen.clone(), auth.clone(), target.clone());
                        async move {
                            seen.lock().unwrap().push(req.version());
                            let header = req
                                .headers()
                                .get("authorization")
                                .and_then(|v| v.to_str().ok());
                            auth.lock().unwrap().push(header.map(str::to_string));
                            let body = req
                                .into_body()
                                .collect()
                                .await
                                .map(|b| b.to_bytes())
                                .unwrap_or_default();
                            let text =
                                rpc::try_post(&target, std::str::from_utf8(&body).unwrap_or(""))
                                    .await
                                    .map(|(_, t)| t)
                                    .unwrap_or_default();
                            Ok::<_, Infallible>(http::Response::new(Full::new(bytes::Bytes::from(
                                text,
                            ))))
                        }
                    });
                    let _ = auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        TlsRelay {
            url,
            ca_file,
            versions,
            authorization,
            _dir: dir,
            task,
        }
    }
}

impl Drop for TlsRelay {
    fn drop(&mut self) {
        self.task.abort();
    }
}
