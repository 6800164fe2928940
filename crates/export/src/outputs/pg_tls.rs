//! TLS for the PostgreSQL output, read from the URL's query as libpq reads
//! it: `sslmode` (`disable`, `allow`, `prefer` — libpq's default —,
//! `require`, `verify-ca`, `verify-full`), `sslrootcert` (a PEM file, or
//! `system` for the webpki roots), `sslcert` and `sslkey` (a client
//! certificate). rustls with ring, as in nodewatch-http.
//!
//! libpq's rules, kept here:
//! * a root certificate (`sslrootcert`, or `~/.postgresql/root.crt` when it
//!   exists) makes every TLS connection verify the server's chain; without
//!   one, `allow`, `prefer` and `require` encrypt without verifying, and
//!   `verify-ca` and `verify-full` refuse to start;
//! * `verify-full` also checks the host name (or IP address) of the URL
//!   against the certificate;
//! * `prefer` tries TLS first and falls back to plain text when the server
//!   declines or the TLS connection fails; `allow` tries plain text first;
//! * `sslrootcert=system` implies, and requires, `verify-full`;
//! * `~/.postgresql/postgresql.crt` and `.key` are the client certificate
//!   when both exist and `sslcert`/`sslkey` are not given.
//!
//! Certificate files are read once, when the URL is parsed: a missing or
//! unreadable file is a usage error before anything connects.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres_rustls::MakeRustlsConnect;

/// libpq's default `sslmode`.
pub const DEFAULT_SSL_MODE: SslMode = SslMode::Prefer;
/// libpq's root certificate file when `sslrootcert` is not given, under `$HOME`.
const DEFAULT_ROOT_CERT: &str = ".postgresql/root.crt";
/// libpq's client certificate and key files, under `$HOME`.
const DEFAULT_CLIENT_CERT: &str = ".postgresql/postgresql.crt";
const DEFAULT_CLIENT_KEY: &str = ".postgresql/postgresql.key";

/// libpq's `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// Plain text only.
    Disable,
    /// Plain text first, TLS (unverified unless a root certificate is set) if that fails.
    Allow,
    /// TLS first (unverified unless a root certificate is set), plain text if that fails.
    Prefer,
    /// TLS only (unverified unless a root certificate is set).
    Require,
    /// TLS only, the server's chain checked against the root certificate.
    VerifyCa,
    /// As `VerifyCa`, and the certificate must name the host.
    VerifyFull,
}

impl SslMode {
    const ALL: [SslMode; 6] = [
        SslMode::Disable,
        SslMode::Allow,
        SslMode::Prefer,
        SslMode::Require,
        SslMode::VerifyCa,
        SslMode::VerifyFull,
    ];

    /// libpq's name of the mode.
    pub fn name(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    fn verifies(self) -> bool {
        matches!(self, SslMode::VerifyCa | SslMode::VerifyFull)
    }
}

/// One way of connecting; [`PgTls::attempts`] lists them in the order tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// No TLS.
    Plain,
    /// TLS if the server offers it, else plain text on the same connection.
    TlsIfOffered,
    /// TLS or fail.
    Tls,
}

/// Where the server's certificate chain must lead.
#[derive(Debug, Clone)]
enum Roots {
    /// Not verified (libpq without a root certificate).
    Unverified,
    /// The certificates of a PEM file.
    File(PathBuf),
    /// `sslrootcert=system`: the webpki roots.
    System,
}

/// The TLS settings of one PostgreSQL URL, with the connector built from them.
#[derive(Clone)]
pub struct PgTls {
    mode: SslMode,
    roots: Roots,
    /// `None` with `sslmode=disable`.
    connector: Option<MakeRustlsConnect>,
}

impl PgTls {
    /// The URL parameters read here.
    pub const PARAMS: [&'static str; 4] = ["sslmode", "sslrootcert", "sslcert", "sslkey"];

    /// Takes libpq's TLS parameters out of `params` (the URL's query,
    /// decoded; the rest is left for tokio-postgres) and loads the files they
    /// name. The error says what is wrong, for a usage message.
    pub fn from_params(params: &mut Vec<(String, String)>) -> Result<PgTls, String> {
        let mut take = |key: &str| {
            let i = params.iter().rposition(|(k, _)| k == key)?;
            let value = params.remove(i).1;
            params.retain(|(k, _)| k != key);
            Some(value)
        };
        let [mode, root, cert, key] = Self::PARAMS.map(&mut take);
        let mode = match mode.as_deref() {
            None => None,
            Some(m) => Some(
                SslMode::ALL
                    .into_iter()
                    .find(|s| s.name() == m)
                    .ok_or_else(|| {
                        format!(
                        "invalid sslmode {m:?} (disable, allow, prefer, require, verify-ca or verify-full)"
                    )
                    })?,
            ),
        };
        let home = std::env::var_os("HOME").map(PathBuf::from);
        let roots = match root.as_deref() {
            Some("system") => Roots::System,
            Some(path) => Roots::File(PathBuf::from(path)),
            None => match home.as_ref().map(|h| h.join(DEFAULT_ROOT_CERT)) {
                Some(path) if path.is_file() => Roots::File(path),
                _ => Roots::Unverified,
            },
        };
        let mode = match (&roots, mode) {
            (Roots::System, None) => SslMode::VerifyFull,
            (Roots::System, Some(m)) if m != SslMode::VerifyFull => {
                return Err(format!(
                "weak sslmode {:?} may not be used with sslrootcert=system (use \"verify-full\")",
                m.name()
            ))
            }
            (_, m) => m.unwrap_or(DEFAULT_SSL_MODE),
        };
        if mode.verifies() && matches!(roots, Roots::Unverified) {
            return Err(format!(
                "sslmode={} needs the server's root certificate: set sslrootcert=<PEM file> \
                 (or sslrootcert=system for the system's trusted roots); ~/{DEFAULT_ROOT_CERT} does not exist",
                mode.name()
            ));
        }
        let client = client_cert(cert, key, home.as_deref())?;
        let connector = match mode {
            SslMode::Disable => None,
            _ => Some(connector(&roots, mode, client)?),
        };
        Ok(PgTls {
            mode,
            roots,
            connector,
        })
    }

    /// The mode's first connection attempt and the one made if it fails.
    pub fn attempts(&self) -> (Attempt, Option<Attempt>) {
        match self.mode {
            SslMode::Disable => (Attempt::Plain, None),
            SslMode::Allow => (Attempt::Plain, Some(Attempt::Tls)),
            SslMode::Prefer => (Attempt::TlsIfOffered, Some(Attempt::Plain)),
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => (Attempt::Tls, None),
        }
    }

    /// The rustls connector (`None` with `sslmode=disable`).
    pub fn connector(&self) -> Option<MakeRustlsConnect> {
        self.connector.clone()
    }

    /// The mode.
    #[cfg(test)]
    pub fn mode(&self) -> SslMode {
        self.mode
    }

    /// `sslmode=..., sslrootcert=...`, for messages.
    pub fn describe(&self) -> String {
        let root = match &self.roots {
            Roots::Unverified => "none (not verified)".to_owned(),
            Roots::File(p) => p.display().to_string(),
            Roots::System => "system".to_owned(),
        };
        format!("sslmode={}, sslrootcert={root}", self.mode.name())
    }

    /// A TLS failure in words, or `None` when `e` is not about TLS.
    pub fn explain(&self, e: &tokio_postgres::Error) -> Option<String> {
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
        while let Some(s) = source {
            if s.to_string() == "server does not support TLS" {
                return Some(format!(
                    "server does not support TLS but sslmode={}",
                    self.mode.name()
                ));
            }
            let tls = s
                .downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
                .or_else(|| s.downcast_ref::<rustls::Error>());
            if let Some(tls) = tls {
                return Some(match tls {
                    rustls::Error::InvalidCertificate(_) => format!(
                        "the server's TLS certificate is rejected ({}): {tls}",
                        self.describe()
                    ),
                    _ => format!("TLS handshake failed ({}): {tls}", self.describe()),
                });
            }
            source = s.source();
        }
        None
    }
}

/// The client certificate and key: both given, or both default files present.
fn client_cert(
    cert: Option<String>,
    key: Option<String>,
    home: Option<&Path>,
) -> Result<Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>, String> {
    let default = |name: &str| home.map(|h| h.join(name)).filter(|p| p.is_file());
    let (cert, key) = match (cert, key) {
        (None, None) => match (default(DEFAULT_CLIENT_CERT), default(DEFAULT_CLIENT_KEY)) {
            (Some(c), Some(k)) => (c, k),
            _ => return Ok(None),
        },
        (Some(c), Some(k)) => (PathBuf::from(c), PathBuf::from(k)),
        (Some(_), None) => return Err("sslcert is given without sslkey".into()),
        (None, Some(_)) => return Err("sslkey is given without sslcert".into()),
    };
    let certs = CertificateDer::pem_file_iter(&cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("sslcert {}: {e}", cert.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "sslcert {}: no certificate in the file",
            cert.display()
        ));
    }
    let key =
        PrivateKeyDer::from_pem_file(&key).map_err(|e| format!("sslkey {}: {e}", key.display()))?;
    Ok(Some((certs, key)))
}

fn connector(
    roots: &Roots,
    mode: SslMode,
    client: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
) -> Result<MakeRustlsConnect, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let store = match roots {
        Roots::Unverified => None,
        Roots::System => Some(RootCertStore::from_iter(
            webpki_roots::TLS_SERVER_ROOTS.iter().cloned(),
        )),
        Roots::File(path) => {
            let certs = nodewatch_http::client::load_ca_file(path)
                .map_err(|e| format!("sslrootcert: {e}"))?;
            let mut store = RootCertStore::empty();
            store.add_parsable_certificates(certs);
            Some(store)
        }
    };
    let chain = match store {
        None => None,
        Some(store) => Some(
            WebPkiServerVerifier::builder_with_provider(Arc::new(store), provider.clone())
                .build()
                .map_err(|e| format!("sslrootcert: {e}"))?,
        ),
    };
    let verifier = Verifier {
        chain,
        check_name: mode == SslMode::VerifyFull,
        provider: provider.clone(),
    };
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("the ring provider supports the default protocol versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier));
    let mut config = match client {
        None => builder.with_no_client_auth(),
        Some((certs, key)) => builder
            .with_client_auth_cert(certs, key)
            .map_err(|e| format!("sslcert/sslkey: {e}"))?,
    };
    // What libpq 17 sends; required by servers with sslnegotiation=direct.
    config.alpn_protocols = vec![b"postgresql".to_vec()];
    Ok(MakeRustlsConnect::new(config))
}

/// libpq's checks: the chain when there are roots, the name only for
/// `verify-full`; the handshake signatures always.
#[derive(Debug)]
struct Verifier {
    /// `None`: any certificate is accepted (libpq without a root certificate).
    chain: Option<Arc<WebPkiServerVerifier>>,
    /// Whether the certificate must name the host (`verify-full`).
    check_name: bool,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        // webpki checks the name after the chain: a name error means the chain is good.
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.check_name => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(query: &[(&str, &str)]) -> Result<PgTls, String> {
        let mut params = query
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        PgTls::from_params(&mut params)
    }

    #[test]
    fn modes_are_read_as_libpq_reads_them() {
        // No ~/.postgresql/root.crt in the tests' home is assumed by the "unverified" cases.
        let home_root = std::env::var_os("HOME")
            .map(|h| PathBuf::from(h).join(DEFAULT_ROOT_CERT))
            .is_some_and(|p| p.exists());
        let mode = |q: &[(&str, &str)]| parse(q).map(|t| (t.mode(), t.attempts()));
        assert_eq!(
            mode(&[]).unwrap(),
            (
                SslMode::Prefer,
                (Attempt::TlsIfOffered, Some(Attempt::Plain))
            )
        );
        assert_eq!(
            mode(&[("sslmode", "disable")]).unwrap(),
            (SslMode::Disable, (Attempt::Plain, None))
        );
        assert_eq!(
            mode(&[("sslmode", "allow")]).unwrap(),
            (SslMode::Allow, (Attempt::Plain, Some(Attempt::Tls)))
        );
        assert_eq!(
            mode(&[("sslmode", "require")]).unwrap().1,
            (Attempt::Tls, None)
        );
        assert_eq!(
            mode(&[("sslrootcert", "system")]).unwrap().0,
            SslMode::VerifyFull
        );
        let weak = mode(&[("sslrootcert", "system"), ("sslmode", "require")]).unwrap_err();
        assert!(weak.contains("weak sslmode \"require\""), "{weak}");
        let bad = mode(&[("sslmode", "on")]).unwrap_err();
        assert!(bad.starts_with("invalid sslmode \"on\""), "{bad}");
        if !home_root {
            let e = mode(&[("sslmode", "verify-full")]).unwrap_err();
            assert!(e.contains("needs the server's root certificate"), "{e}");
        }
        let e = mode(&[
            ("sslmode", "verify-ca"),
            ("sslrootcert", "/nonexistent/root.crt"),
        ])
        .unwrap_err();
        assert!(e.contains("/nonexistent/root.crt"), "{e}");
        let e = mode(&[("sslcert", "/x.crt")]).unwrap_err();
        assert_eq!(e, "sslcert is given without sslkey");
    }

    #[test]
    fn only_the_tls_parameters_are_taken() {
        let mut params = vec![
            ("connect_timeout".to_string(), "3".to_string()),
            ("sslmode".to_string(), "disable".to_string()),
        ];
        let tls = PgTls::from_params(&mut params).unwrap();
        assert_eq!(tls.mode(), SslMode::Disable);
        assert!(tls.connector().is_none());
        assert_eq!(params, [("connect_timeout".to_string(), "3".to_string())]);
    }
}
