//! `wsroute::serve_tls`: a third-party client (tungstenite over
//! tokio-rustls) gets the served certificate, echoes and closes; a client
//! that stalls its TLS handshake holds up nobody and is cut off.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use wsroute::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use wsroute::rustls::{ClientConfig, RootCertStore, ServerConfig};
use wsroute::{Config, RouterExt, WebSockets};

mod echo;
use echo::Echo;

/// A self-signed certificate for `localhost`, and the server config for it.
fn server_config() -> (CertificateDer<'static>, Arc<ServerConfig>) {
    server_config_with(&[b"http/1.1"])
}

fn server_config_with(alpn: &[&[u8]]) -> (CertificateDer<'static>, Arc<ServerConfig>) {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let der = cert.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(cert.signing_key.serialize_der()));
    let mut config = ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![der.clone()], key)
        .unwrap();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
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
    tls_connect_with(addr, cert, &[]).await
}

async fn tls_connect_with(
    addr: std::net::SocketAddr,
    cert: &CertificateDer<'static>,
    alpn: &[&[u8]],
) -> tokio_rustls::client::TlsStream<TcpStream> {
    let mut config = client_config(cert);
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
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

#[tokio::test]
async fn alpn_h2_serves_websockets_as_extended_connect_streams() {
    let (cert, tls) = server_config_with(&[b"h2", b"http/1.1"]);
    let addr = start(Config::default(), tls).await;
    let stream = tls_connect_with(addr, &cert, &[b"h2"]).await;
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (client, connection) = h2::client::handshake(stream).await.unwrap();
    tokio::spawn(connection);
    let mut client = client.ready().await.unwrap();
    for _ in 0..400 {
        if client.is_extended_connect_protocol_enabled() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
        client = client.ready().await.unwrap();
    }
    let request = http::Request::builder()
        .method(http::Method::CONNECT)
        .uri("https://localhost/echo")
        .header("sec-websocket-version", "13")
        .extension(h2::ext::Protocol::from_static("websocket"))
        .body(())
        .unwrap();
    let (response, mut send) = client.send_request(request, false).unwrap();
    let response = response.await.unwrap();
    assert_eq!(response.status(), 200);
    // A masked "hi" (key 0): the echo is an unmasked text frame.
    send.send_data(
        bytes::Bytes::from_static(&[0x81, 0x82, 0, 0, 0, 0, b'h', b'i']),
        false,
    )
    .unwrap();
    let mut body = response.into_body();
    let mut echoed = Vec::new();
    while echoed.len() < 4 {
        let data = tokio::time::timeout(Duration::from_secs(10), body.data())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        echoed.extend_from_slice(&data);
    }
    assert_eq!(echoed, [0x81, 2, b'h', b'i']);
}
