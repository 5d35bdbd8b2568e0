//! The TLS both ends of the TLS cells use: rustls 0.23 with the ring
//! provider (the stack `wsroute::serve_tls` is built on), TLS 1.3, HTTP/1.1
//! by ALPN, so every server is measured over the same record layer and
//! only the websocket work differs.
//!
//! Each server makes a fresh self-signed certificate when it starts. The
//! load generator accepts whatever certificate it is given but still checks
//! the handshake's signature with it, so a connection costs the server the
//! same work as with a client that trusts its chain; none of it falls in a
//! measured interval anyway, which starts after every handshake.

use std::sync::Arc;

use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::crypto::{CryptoProvider, ring, verify_tls13_signature};
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use tokio_rustls::rustls::{
    ClientConfig, DigitallySignedStruct, Error, ServerConfig, SignatureScheme, version,
};

/// The ALPN both ends agree on: WebSockets over HTTP/1.1 upgrades, the
/// path every peer in the comparison has.
const ALPN: &[u8] = b"http/1.1";

fn provider() -> Arc<CryptoProvider> {
    Arc::new(ring::default_provider())
}

/// A server config with a new self-signed certificate for `localhost` and
/// `127.0.0.1`.
pub fn server_config() -> Arc<ServerConfig> {
    let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
    let made = rcgen::generate_simple_self_signed(names).expect("rcgen makes a certificate");
    let key = PrivatePkcs8KeyDer::from(made.signing_key.serialize_der());
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&version::TLS13])
        .expect("ring supports TLS 1.3")
        .with_no_client_auth()
        .with_single_cert(vec![made.cert.der().clone()], key.into())
        .expect("rcgen's key fits its certificate");
    config.alpn_protocols = vec![ALPN.to_vec()];
    Arc::new(config)
}

/// A client config that takes any server certificate (see the module
/// docs) and offers HTTP/1.1.
pub fn client_config() -> Arc<ClientConfig> {
    let provider = provider();
    let mut config = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&version::TLS13])
        .expect("ring supports TLS 1.3")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        .with_no_client_auth();
    config.alpn_protocols = vec![ALPN.to_vec()];
    Arc::new(config)
}

/// The name the load generator asks for (the certificate carries it).
pub fn server_name() -> ServerName<'static> {
    ServerName::try_from("localhost").expect("a valid DNS name")
}

#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        Err(Error::General("TLS 1.2 is not offered".into()))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls13_signature(
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

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn the_two_configs_agree_on_tls_1_3_and_http_1_1() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let acceptor = tokio_rustls::TlsAcceptor::from(server_config());
            let mut tls = acceptor.accept(tcp).await.unwrap();
            let mut byte = [0; 1];
            tls.read_exact(&mut byte).await.unwrap();
            tls.write_all(&byte).await.unwrap();
            tls.flush().await.unwrap();
        });
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let connector = tokio_rustls::TlsConnector::from(client_config());
        let mut tls = connector.connect(server_name(), tcp).await.unwrap();
        let (_, session) = tls.get_ref();
        assert_eq!(session.protocol_version(), Some(version::TLS13.version));
        assert_eq!(session.alpn_protocol(), Some(ALPN));
        tls.write_all(b"x").await.unwrap();
        tls.flush().await.unwrap();
        let mut byte = [0; 1];
        tls.read_exact(&mut byte).await.unwrap();
        assert_eq!(&byte, b"x");
        server.await.unwrap();
    }
}
