//! TLS with rustls (ring provider): the client configuration built once per client
//! from [`TlsConfig`], and the handshake with its errors put in words.

use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::{TlsConfig, TlsVersion};
use crate::error::{Error, ErrorKind, Result};

/// Builds the connector for `tls`: reads the PEM files now, so a missing or bad
/// file fails `build()` rather than every connection.
pub(crate) fn connector(tls: &TlsConfig) -> Result<TlsConnector> {
    Ok(TlsConnector::from(Arc::new(client_config(tls)?)))
}

/// The rustls client configuration for `tls` (brokers, and the OAUTHBEARER token
/// endpoint over HTTPS).
pub(crate) fn client_config(tls: &TlsConfig) -> Result<rustls::ClientConfig> {
    let provider = Arc::new(provider(&tls.cipher_suites)?);
    let mut roots = RootCertStore::empty();
    match &tls.ca {
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        Some(pem) => {
            let bytes = pem.read("ssl.truststore.location")?;
            let certs = certificates(&bytes, "ssl.truststore.location")?;
            let (added, _) = roots.add_parsable_certificates(certs);
            if added == 0 {
                return Err(Error::config("ssl.truststore.location", "no usable CA certificate in the PEM"));
            }
        }
    }
    let versions: Vec<&'static rustls::SupportedProtocolVersion> = tls
        .versions
        .iter()
        .map(|v| match v {
            TlsVersion::Tls12 => &rustls::version::TLS12,
            TlsVersion::Tls13 => &rustls::version::TLS13,
        })
        .collect();
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| {
            let setting =
                if tls.cipher_suites.is_empty() { "ssl.enabled.protocols" } else { "ssl.cipher.suites" };
            Error::config(
                setting,
                format!("{e} (no cipher suite for the TLS versions of ssl.enabled.protocols)"),
            )
        })?;
    let roots = Arc::new(roots);
    let builder = if tls.verify_hostname {
        builder.with_root_certificates(roots)
    } else {
        let inner = WebPkiServerVerifier::builder_with_provider(roots, provider)
            .build()
            .map_err(|e| Error::config("ssl.truststore.location", e.to_string()))?;
        builder.dangerous().with_custom_certificate_verifier(Arc::new(NoHostnameCheck(inner)))
    };
    let config = match (&tls.client_cert, &tls.client_key) {
        (None, None) => builder.with_no_client_auth(),
        (Some(cert), Some(key)) => {
            let chain = certificates(
                &cert.read("ssl.keystore.certificate.chain")?,
                "ssl.keystore.certificate.chain",
            )?;
            let key_pem = key.read("ssl.keystore.key")?;
            let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
                Error::config(
                    "ssl.keystore.key",
                    format!("no unencrypted PEM private key (PKCS#8, PKCS#1 or SEC1): {e}"),
                )
            })?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| Error::config("ssl.keystore.key", format!("client certificate and key: {e}")))?
        }
        (Some(_), None) => {
            return Err(Error::config("ssl.key.location", "a client certificate needs its private key"));
        }
        (None, Some(_)) => {
            return Err(Error::config(
                "ssl.certificate.location",
                "a client private key needs its certificate",
            ));
        }
    };
    Ok(config)
}

/// rustls's ring provider, offering only the cipher suites `names` lists (by
/// their IANA names, as Java's `ssl.cipher.suites` spells them) when it lists any.
fn provider(names: &[String]) -> Result<rustls::crypto::CryptoProvider> {
    let mut provider = rustls::crypto::ring::default_provider();
    if names.is_empty() {
        return Ok(provider);
    }
    let all: Vec<String> = provider.cipher_suites.iter().map(|s| iana_name(s.suite())).collect();
    provider.cipher_suites.retain(|s| names.contains(&iana_name(s.suite())));
    if provider.cipher_suites.is_empty() {
        return Err(Error::config(
            "ssl.cipher.suites",
            format!("names none of the cipher suites herald offers: {}", all.join(", ")),
        ));
    }
    Ok(provider)
}

/// A suite's IANA name: `TLS_AES_128_GCM_SHA256` for what rustls calls
/// `TLS13_AES_128_GCM_SHA256`.
fn iana_name(suite: rustls::CipherSuite) -> String {
    let name = suite.as_str().unwrap_or_default();
    match name.strip_prefix("TLS13_") {
        Some(rest) => format!("TLS_{rest}"),
        None => name.to_owned(),
    }
}

fn certificates(pem: &[u8], setting: &str) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::config(setting, format!("bad PEM: {e}")))?;
    if certs.is_empty() {
        return Err(Error::config(
            setting,
            "no CERTIFICATE in the PEM (herald reads PEM only: convert a JKS or PKCS12 store, e.g. with \
             `keytool -exportcert -rfc`)",
        ));
    }
    Ok(certs)
}

/// The TLS handshake with `host`. Failures are [`ErrorKind::Tls`] errors that say
/// what was wrong with the broker's certificate, or that the port does not speak TLS.
pub(crate) async fn handshake(
    connector: &TlsConnector,
    tcp: TcpStream,
    host: &str,
    broker: &str,
) -> Result<TlsStream<TcpStream>> {
    let name = ServerName::try_from(host.to_owned())
        .map_err(|e| tls_error(broker, format!("{host:?} is not a valid TLS server name: {e}")))?;
    connector.connect(name, tcp).await.map_err(|e| tls_error(broker, explain(&e)))
}

pub(crate) fn tls_error(broker: &str, reason: String) -> Error {
    Error::new(ErrorKind::Tls { broker: broker.to_owned(), reason })
}

/// Puts a handshake failure in words, naming the likely cause.
fn explain(e: &std::io::Error) -> String {
    let inner = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>());
    match inner {
        Some(rustls::Error::InvalidCertificate(c)) => match c {
            CertificateError::UnknownIssuer => {
                "the broker's certificate is not signed by a trusted CA (UnknownIssuer); \
                 set ssl.truststore.location to the CA's PEM"
                    .to_owned()
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                format!("the broker's certificate has expired ({c:?})")
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                format!("the broker's certificate is not valid yet ({c:?})")
            }
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => format!(
                "hostname mismatch: the broker's certificate is not valid for the address herald connected to \
                 ({c:?}); ssl.endpoint.identification.algorithm= (empty) turns this check off"
            ),
            other => format!("the broker's certificate was refused: {other:?}"),
        },
        Some(other) => format!("TLS handshake failed: {other}"),
        None if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            "the broker closed the connection during the TLS handshake; is the listener plaintext \
             (PLAINTEXT or SASL_PLAINTEXT)? check security.protocol, or the broker requires a client \
             certificate (ssl.keystore.location)"
                .to_owned()
        }
        None => format!("TLS handshake failed: {e}"),
    }
}

/// With `ssl.endpoint.identification.algorithm` empty: the chain and validity are
/// checked as usual, only the host name is not.
#[derive(Debug)]
struct NoHostnameCheck(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for NoHostnameCheck {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        // webpki checks the chain before the name: a name error means the chain is good.
        match self.0.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
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
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The connector's error, if building one fails.
    fn with_suites(suites: &[&str], versions: &[TlsVersion]) -> std::result::Result<(), Error> {
        let tls = TlsConfig {
            cipher_suites: suites.iter().map(|s| s.to_string()).collect(),
            versions: versions.to_vec(),
            ..TlsConfig::default()
        };
        connector(&tls).map(drop)
    }

    #[test]
    fn cipher_suites_are_chosen_by_their_java_names() {
        let both = [TlsVersion::Tls12, TlsVersion::Tls13];
        with_suites(&[], &both).unwrap();
        // Java's names; ones herald does not have (CBC) are left out, not refused.
        with_suites(&["TLS_AES_256_GCM_SHA384", "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384"], &both).unwrap();
        let p = provider(&["TLS_AES_256_GCM_SHA384".to_owned()]).unwrap();
        assert_eq!(p.cipher_suites.len(), 1);
        let e = with_suites(&["TLS_RSA_WITH_AES_128_CBC_SHA"], &both).unwrap_err().to_string();
        assert!(e.contains("ssl.cipher.suites") && e.contains("TLS_AES_128_GCM_SHA256"), "{e}");
        // Only a TLS 1.3 suite with only TLS 1.2 enabled.
        let e = with_suites(&["TLS_AES_128_GCM_SHA256"], &[TlsVersion::Tls12]).unwrap_err().to_string();
        assert!(e.contains("ssl.cipher.suites"), "{e}");
    }
}
