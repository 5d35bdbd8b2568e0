//! WebSockets over HTTP/2 (RFC 8441) under `wsroute::serve`: h2c prior
//! knowledge, extended CONNECT, several WebSockets on one connection,
//! driven by the `h2` crate as the client.

use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use http::{Method, Request, StatusCode};
use tokio::net::TcpStream;
use wsroute::{RouterExt, WebSockets};

#[path = "wire/mod.rs"]
#[allow(dead_code)]
mod wire;

mod echo;
use echo::Echo;

async fn start() -> std::net::SocketAddr {
    let sockets = WebSockets::default();
    let app = axum::Router::new().websocket::<Echo>(&sockets);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        async move { wsroute::serve(listener, app, &sockets, std::future::pending()).await },
    );
    addr
}

/// The same routes under `axum::serve` (axum's `http2` feature), whose
/// auto builder enables extended CONNECT too.
async fn start_axum() -> std::net::SocketAddr {
    let sockets = WebSockets::default();
    let app = axum::Router::new().websocket::<Echo>(&sockets);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// An HTTP/2 connection (prior knowledge) once the server's SETTINGS
/// allowed extended CONNECT.
async fn h2_connect(addr: std::net::SocketAddr) -> h2::client::SendRequest<Bytes> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (client, connection) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let mut client = client.ready().await.unwrap();
    for _ in 0..400 {
        if client.is_extended_connect_protocol_enabled() {
            return client;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
        client = client.ready().await.unwrap();
    }
    panic!("the server did not send SETTINGS_ENABLE_CONNECT_PROTOCOL");
}

fn connect_request(protocol: &'static str, version: &'static str) -> Request<()> {
    Request::builder()
        .method(Method::CONNECT)
        .uri("http://localhost/echo")
        .header("sec-websocket-version", version)
        // Same-origin, as a browser sends it: HTTP/2 has no Host header,
        // so this passes only if `:authority` stands in for it.
        .header("origin", "http://localhost")
        .extension(h2::ext::Protocol::from_static(protocol))
        .body(())
        .unwrap()
}

/// One WebSocket on an HTTP/2 stream.
struct Stream {
    send: h2::SendStream<Bytes>,
    recv: h2::RecvStream,
    buf: BytesMut,
}

impl Stream {
    async fn open(client: &mut h2::client::SendRequest<Bytes>) -> Stream {
        let (response, send) = client
            .send_request(connect_request("websocket", "13"), false)
            .unwrap();
        let response = response.await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert!(!response.headers().contains_key("sec-websocket-accept"));
        Stream {
            send,
            recv: response.into_body(),
            buf: BytesMut::new(),
        }
    }

    fn send_frame(&mut self, first: u8, payload: &[u8]) {
        let frame = wire::masked_frame(first, payload);
        self.send.send_data(Bytes::from(frame), false).unwrap();
    }

    /// The next server frame: first byte and payload.
    async fn frame(&mut self) -> (u8, Vec<u8>) {
        let read = async {
            loop {
                if let Some(frame) = parse(&mut self.buf) {
                    return frame;
                }
                let data = self.recv.data().await.expect("stream ended").unwrap();
                let _ = self.recv.flow_control().release_capacity(data.len());
                self.buf.extend_from_slice(&data);
            }
        };
        tokio::time::timeout(Duration::from_secs(10), read)
            .await
            .expect("no frame within 10 s")
    }
}

/// A whole unmasked server frame off the front of `buf`, if there is one.
fn parse(buf: &mut BytesMut) -> Option<(u8, Vec<u8>)> {
    if buf.len() < 2 {
        return None;
    }
    assert_eq!(buf[1] & 0x80, 0, "server frames are not masked");
    let (len, head) = match buf[1] & 0x7f {
        126 if buf.len() >= 4 => (u64::from(u16::from_be_bytes([buf[2], buf[3]])), 4),
        127 if buf.len() >= 10 => (u64::from_be_bytes(buf[2..10].try_into().unwrap()), 10),
        126 | 127 => return None,
        n => (u64::from(n), 2),
    };
    let total = head + len as usize;
    if buf.len() < total {
        return None;
    }
    let first = buf[0];
    buf.advance(head);
    let payload = buf.split_to(len as usize).to_vec();
    Some((first, payload))
}

const TEXT: u8 = 0x81;
const CLOSE: u8 = 0x88;

#[tokio::test]
async fn several_websockets_share_one_connection_and_close_on_their_own() {
    several_websockets_on_one_connection(start().await).await;
}

#[tokio::test]
async fn under_axum_serve_too() {
    several_websockets_on_one_connection(start_axum().await).await;
}

async fn several_websockets_on_one_connection(addr: std::net::SocketAddr) {
    let mut client = h2_connect(addr).await;
    let mut streams = Vec::new();
    for _ in 0..3 {
        streams.push(Stream::open(&mut client).await);
    }
    for (i, stream) in streams.iter_mut().enumerate() {
        stream.send_frame(TEXT, format!("hello {i}").as_bytes());
    }
    for (i, stream) in streams.iter_mut().enumerate() {
        assert_eq!(
            stream.frame().await,
            (TEXT, format!("hello {i}").into_bytes())
        );
    }

    // Close the middle one with 1000: the server answers 1000 on it alone.
    streams[1].send_frame(CLOSE, &1000u16.to_be_bytes());
    let (first, payload) = streams[1].frame().await;
    assert_eq!(first, CLOSE);
    assert_eq!(&payload[..2], &1000u16.to_be_bytes());

    // An unmasked frame is a protocol error (1002) on that stream only.
    let mut unmasked = vec![TEXT, 2];
    unmasked.extend_from_slice(b"hi");
    streams[2]
        .send
        .send_data(Bytes::from(unmasked), false)
        .unwrap();
    if cfg!(feature = "enforce-ws-spec") {
        let (first, payload) = streams[2].frame().await;
        assert_eq!(first, CLOSE);
        assert_eq!(&payload[..2], &1002u16.to_be_bytes());
    }

    // The others go on, and a new one opens on the same connection.
    streams[0].send_frame(TEXT, b"still here");
    assert_eq!(streams[0].frame().await, (TEXT, b"still here".to_vec()));
    let mut fourth = Stream::open(&mut client).await;
    let big = vec![b'x'; 70_000];
    fourth.send_frame(TEXT, &big);
    assert_eq!(fourth.frame().await, (TEXT, big));
}

#[tokio::test]
async fn a_connect_for_another_protocol_or_version_is_refused() {
    let addr = start().await;
    let mut client = h2_connect(addr).await;
    let (response, _send) = client
        .send_request(connect_request("chat", "13"), true)
        .unwrap();
    assert_eq!(response.await.unwrap().status(), StatusCode::BAD_REQUEST);

    let (response, _send) = client
        .send_request(connect_request("websocket", "8"), true)
        .unwrap();
    let response = response.await.unwrap();
    assert_eq!(response.status(), StatusCode::UPGRADE_REQUIRED);
    assert_eq!(response.headers()["sec-websocket-version"], "13");
}
