//! TLS to PostgreSQL: `sslmode` and `sslrootcert` in the store URL, with
//! libpq's meaning, over rustls with the ring provider.
//!
//! tokio-postgres parses `sslmode=disable|prefer|require` but neither the
//! verifying modes nor `sslrootcert`, and it leaves certificate checks to
//! the connector. So the store takes both parameters out of the URL before
//! tokio-postgres sees it and builds the connector itself:
//!
//! - `disable`: plain TCP;
//! - `prefer` (the default, as in libpq): TLS when the server offers it,
//!   certificate not checked; plain when it does not;
//! - `require`: TLS or no connection; the certificate is not checked, unless
//!   `sslrootcert` is given, which makes it `verify-ca` (as libpq does);
//! - `verify-ca`: TLS, the server's chain must lead to `sslrootcert`; the
//!   host name is not compared;
//! - `verify-full`: as `verify-ca`, and the certificate must name the host.
//!
//! `sslrootcert` is a PEM file of CA certificates; the verifying modes
//! without it read `~/.postgresql/root.crt`, like libpq, and fail clearly
//! when there is none.

use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::config::SslMode as PgSslMode;
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};

use crate::error::StoreError;

/// The `sslmode` values libpq knows (`allow` is taken as `prefer`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// No TLS.
    Disable,
    /// TLS if the server offers it, unchecked.
    Prefer,
    /// TLS, unchecked.
    Require,
    /// TLS, chain checked against the root certificates.
    VerifyCa,
    /// TLS, chain and host name checked.
    VerifyFull,
}

impl SslMode {
    fn parse(value: &str) -> Result<Self, StoreError> {
        Ok(match value {
            "disable" => Self::Disable,
            "allow" | "prefer" => Self::Prefer,
            "require" => Self::Require,
            "verify-ca" => Self::VerifyCa,
            "verify-full" => Self::VerifyFull,
            other => {
                return Err(StoreError::invalid(format!(
                    "bad postgres url: sslmode `{other}` is not one of disable, prefer, require, verify-ca, verify-full"
                )));
            }
        })
    }

    fn name(self) -> &'static str {
        match self {
            Self::Disable => "disable",
            Self::Prefer => "prefer",
            Self::Require => "require",
            Self::VerifyCa => "verify-ca",
            Self::VerifyFull => "verify-full",
        }
    }
}

/// The TLS parameters taken out of a store URL, and what is left of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitUrl {
    /// The URL without `sslmode` and `sslrootcert`, for tokio-postgres.
    pub rest: String,
    /// `sslmode`, if given.
    pub mode: Option<SslMode>,
    /// `sslrootcert`, if given.
    pub root_cert: Option<PathBuf>,
}

/// Takes `sslmode` and `sslrootcert` out of a `postgres://` URL's query
/// or out of a `key=value` connection string.
pub fn split_url(url: &str) -> Result<SplitUrl, StoreError> {
    let mut mode = None;
    let mut root_cert = None;
    let mut take = |key: &str, value: &str| -> Result<bool, StoreError> {
        match key {
            "sslmode" => mode = Some(SslMode::parse(value)?),
            "sslrootcert" => root_cert = Some(PathBuf::from(value)),
            _ => return Ok(false),
        }
        Ok(true)
    };
    let rest = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        // The query starts at the first `?` after the user info: a password
        // may hold a `?`, a host cannot.
        let after_auth = url.rfind('@').unwrap_or(0);
        match url[after_auth..].find('?').map(|i| i + after_auth) {
            None => url.to_owned(),
            Some(q) => {
                let mut kept = Vec::new();
                for pair in url[q + 1..].split('&').filter(|p| !p.is_empty()) {
                    let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                    if !take(&percent_decode(k), &percent_decode(v))? {
                        kept.push(pair);
                    }
                }
                if kept.is_empty() {
                    url[..q].to_owned()
                } else {
                    format!("{}?{}", &url[..q], kept.join("&"))
                }
            }
        }
    } else {
        let mut kept = Vec::new();
        for word in url.split_whitespace() {
            let taken = match word.split_once('=') {
                Some((k, v)) if !v.starts_with('\'') => take(k.trim(), v)?,
                _ => false,
            };
            if !taken {
                kept.push(word);
            }
        }
        kept.join(" ")
    };
    Ok(SplitUrl {
        rest,
        mode,
        root_cert,
    })
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                let v = hex(h).unwrap_or(0) * 16 + hex(l).unwrap_or(0);
                out.push(u8::try_from(v).unwrap_or(b'?'));
                i += 3;
            }
            (b'+', _, _) => {
                out.push(b' ');
                i += 1;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses a store URL into tokio-postgres's config and the TLS connector
/// its `sslmode` asks for.
pub fn prepare(url: &str) -> Result<(tokio_postgres::Config, MakeRustls), StoreError> {
    let split = split_url(url)?;
    let mut config: tokio_postgres::Config = split
        .rest
        .parse()
        .map_err(|e| StoreError::invalid(format!("bad postgres url: {e}")))?;
    let mut mode = split.mode.unwrap_or(SslMode::Prefer);
    if mode == SslMode::Require && split.root_cert.is_some() {
        mode = SslMode::VerifyCa;
    }
    config.ssl_mode(match mode {
        SslMode::Disable => PgSslMode::Disable,
        SslMode::Prefer => PgSslMode::Prefer,
        _ => PgSslMode::Require,
    });
    let tls = MakeRustls::new(mode, split.root_cert.as_deref())?;
    Ok((config, tls))
}

/// A tokio-postgres TLS connector over rustls (ring provider).
#[derive(Clone)]
pub struct MakeRustls {
    config: Arc<ClientConfig>,
    mode: SslMode,
}

impl MakeRustls {
    /// The connector for `mode`, trusting the CA certificates in `root_cert`.
    pub fn new(mode: SslMode, root_cert: Option<&Path>) -> Result<Self, StoreError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| StoreError::invalid(format!("postgres tls: {e}")))?;
        let config = match mode {
            SslMode::Disable | SslMode::Prefer | SslMode::Require => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(Unchecked(provider)))
                .with_no_client_auth(),
            SslMode::VerifyCa | SslMode::VerifyFull => {
                let roots = Arc::new(load_roots(mode, root_cert)?);
                let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider)
                    .build()
                    .map_err(|e| StoreError::invalid(format!("postgres tls: {e}")))?;
                if mode == SslMode::VerifyCa {
                    builder
                        .dangerous()
                        .with_custom_certificate_verifier(Arc::new(ChainOnly(webpki)))
                        .with_no_client_auth()
                } else {
                    builder.with_webpki_verifier(webpki).with_no_client_auth()
                }
            }
        };
        Ok(Self {
            config: Arc::new(config),
            mode,
        })
    }
}

fn load_roots(mode: SslMode, root_cert: Option<&Path>) -> Result<RootCertStore, StoreError> {
    let default = std::env::var_os("HOME").map(|h| Path::new(&h).join(".postgresql/root.crt"));
    let path = match (root_cert, default) {
        (Some(p), _) => p.to_owned(),
        (None, Some(d)) if d.exists() => d,
        _ => {
            return Err(StoreError::invalid(format!(
                "postgres tls: sslmode={} needs sslrootcert=FILE, the PEM file of the CA that signed the server's certificate (~/.postgresql/root.crt does not exist)",
                mode.name()
            )));
        }
    };
    let bad = |message: String| {
        StoreError::invalid(format!(
            "postgres tls: sslrootcert `{}`: {message}",
            path.display()
        ))
    };
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(&path).map_err(|e| bad(e.to_string()))? {
        let cert = cert.map_err(|e| bad(e.to_string()))?;
        roots.add(cert).map_err(|e| bad(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(bad("holds no PEM certificate".to_owned()));
    }
    Ok(roots)
}

/// `prefer` and `require`: encryption without authentication of the server,
/// as libpq does. Handshake signatures are still checked.
#[derive(Debug)]
struct Unchecked(Arc<CryptoProvider>);

impl ServerCertVerifier for Unchecked {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
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
            &self.0.signature_verification_algorithms,
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
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `verify-ca`: the full WebPKI check, less the host name. rustls checks
/// the chain first and the name last, so a name mismatch means the chain
/// was good.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

impl<S> MakeTlsConnect<S> for MakeRustls
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type TlsConnect = RustlsConnect;
    type Error = io::Error;

    fn make_tls_connect(&mut self, domain: &str) -> Result<RustlsConnect, io::Error> {
        // A Unix socket has no host name (`domain` is empty); fail only if
        // TLS is actually attempted over it.
        Ok(RustlsConnect {
            config: self.config.clone(),
            mode: self.mode,
            name: ServerName::try_from(domain.to_owned()).ok(),
        })
    }
}

/// Connects one stream; made by [`MakeRustls`].
pub struct RustlsConnect {
    config: Arc<ClientConfig>,
    mode: SslMode,
    name: Option<ServerName<'static>>,
}

type ConnectFuture<S> = Pin<Box<dyn Future<Output = io::Result<RustlsStream<S>>> + Send>>;

impl<S> TlsConnect<S> for RustlsConnect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type Error = io::Error;
    type Future = ConnectFuture<S>;

    fn connect(self, stream: S) -> ConnectFuture<S> {
        Box::pin(async move {
            let mode = self.mode.name();
            let Some(name) = self.name else {
                return Err(io::Error::other(format!(
                    "sslmode={mode}: TLS needs a host name to connect to"
                )));
            };
            tokio_rustls::TlsConnector::from(self.config)
                .connect(name, stream)
                .await
                .map(RustlsStream)
                .map_err(|e| io::Error::new(e.kind(), format!("{e} (sslmode={mode})")))
        })
    }
}

/// A TLS stream to PostgreSQL.
pub struct RustlsStream<S>(tokio_rustls::client::TlsStream<S>);

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for RustlsStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for RustlsStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> TlsStream for RustlsStream<S> {
    fn channel_binding(&self) -> ChannelBinding {
        // No tls-server-end-point binding: SCRAM runs without the `-PLUS`
        // variant, which libpq also does unless told `channel_binding=require`.
        ChannelBinding::none()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "a panic in a test is a failing test")]

    use super::*;

    #[test]
    fn tls_parameters_are_taken_out_of_the_url() {
        let s = split_url("postgres://u:p?x@h:5/db?sslmode=verify-full&sslrootcert=%2Ftmp%2Fca.pem&application_name=a").unwrap();
        assert_eq!(s.rest, "postgres://u:p?x@h:5/db?application_name=a");
        assert_eq!(s.mode, Some(SslMode::VerifyFull));
        assert_eq!(s.root_cert, Some(PathBuf::from("/tmp/ca.pem")));
        let s = split_url("postgres://h/db?sslmode=require").unwrap();
        assert_eq!(s.rest, "postgres://h/db");
        assert_eq!(s.mode, Some(SslMode::Require));
        let s = split_url("host=h dbname=d sslmode=verify-ca sslrootcert=/ca.pem").unwrap();
        assert_eq!(s.rest, "host=h dbname=d");
        assert_eq!(s.mode, Some(SslMode::VerifyCa));
        assert!(split_url("postgres://h/db?sslmode=bogus").is_err());
    }

    #[test]
    fn a_verifying_mode_without_a_root_certificate_is_refused_clearly() {
        let e = MakeRustls::new(SslMode::VerifyFull, Some(Path::new("/nonexistent/ca.pem")))
            .err()
            .unwrap();
        assert!(e.to_string().contains("sslrootcert"), "{e}");
    }
}
