//! `wsroute::serve_tls`: a third-party client (tungstenite over
//! tokio-rustls) gets the served certificate, echoes and closes; a client
//! that stalls its TLS handshake holds up nobody and is cut off.

use std::sync::Arc;
use std::time::Duration;

use axum::http::request::Parts;
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use wsroute::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use wsroute::rustls::{ClientConfig, RootCertStore, ServerConfig};
use wsroute::{Config, Connection, Message, Route, RouterExt, WebSockets};

struct Echo;

impl Route for Echo {
    const PATH: &'static str = "/echo";

    async fn accept(_: &mut Parts, _: &()) -> Result<Self, Response> {
        Ok(Echo)
    }

    async fn message(&mut self, conn: &Connection, msg: Message) {
        let _ = conn.send(msg);
    }
}

/// A self-signed certificate for `localhost`, and the server config for it.
fn server_config() -> (CertificateDer<'static>, Arc<ServerConfig>) {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let der = cert.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(cert.signing_key.serialize_der()));
    let mut config = ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![der.clone()], key)
        .unwrap();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    (der, Arc::new(config))
}

/// A client that trusts only `cert`.
fn client_config(cert: &CertificateDer<'static>) -> ClientConfig {
    let mut roots = RootCertStore::empty();
    roots.add(cert.clone()).unwrap();
    ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth()
}

async fn start(config: Config, tls: Arc<ServerConfig>) -> std::net::SocketAddr {
    let sockets = WebSockets::new(config);
    let app = axum::Router::new().websocket::<Echo>(&sockets);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        wsroute::serve_tls(listener, tls, app, &sockets, std::future::pending()).await
    });
    addr
}

async fn tls_connect(
    addr: std::net::SocketAddr,
    cert: &CertificateDer<'static>,
) -> tokio_rustls::client::TlsStream<TcpStream> {
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client_config(cert)));
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    connector.connect(name, tcp).await.unwrap()
}

#[tokio::test]
async fn a_wss_client_gets_the_served_certificate_echoes_and_closes() {
    let (cert, tls) = server_config();
    let addr = start(Config::default(), tls).await;
    let stream = tls_connect(addr, &cert).await;
    let chain = stream.get_ref().1.peer_certificates().unwrap().to_vec();
    assert_eq!(
        chain,
        vec![cert.clone()],
        "the leaf is the served certificate"
    );

    let (mut ws, response) = tokio_tungstenite::client_async("wss://localhost/echo", stream)
        .await
        .unwrap();
    assert_eq!(response.status(), 101);
    for text in ["hello", "über TLS"] {
        ws.send(WsMessage::text(text)).await.unwrap();
        assert_eq!(ws.next().await.unwrap().unwrap(), WsMessage::text(text));
    }
    let big = vec![7u8; 100_000];
    ws.send(WsMessage::binary(big.clone())).await.unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap(), WsMessage::binary(big));

    ws.close(Some(CloseFrame {
        code: CloseCode::Away,
        reason: "bye".into(),
    }))
    .await
    .unwrap();
    match ws.next().await.unwrap().unwrap() {
        WsMessage::Close(Some(frame)) => assert_eq!(frame.code, CloseCode::Away),
        other => panic!("expected the close echoed, got {other:?}"),
    }
}

#[tokio::test]
async fn a_stalled_tls_handshake_holds_up_nobody_and_is_cut_off() {
    let (cert, tls) = server_config();
    let config = Config::default().handshake_timeout(Duration::from_millis(500));
    let addr = start(config, tls).await;
    // Connected, but never sends a ClientHello.
    let mut stalled = TcpStream::connect(addr).await.unwrap();

    let other = tokio::time::timeout(Duration::from_millis(400), async {
        let stream = tls_connect(addr, &cert).await;
        let (mut ws, _) = tokio_tungstenite::client_async("wss://localhost/echo", stream)
            .await
            .unwrap();
        ws.send(WsMessage::text("next")).await.unwrap();
        ws.next().await.unwrap().unwrap()
    })
    .await;
    assert_eq!(
        other.expect("a stalled handshake held up the next client"),
        WsMessage::text("next")
    );

    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(3), stalled.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "the stalled connection was kept open");
}
