//! A real server on 127.0.0.1, driven by hand-written frames over a raw TCP
//! socket: what goes on the wire, and which events the route sees.

use std::time::Duration;

use axum::http::request::Parts;
use axum::response::Response;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wsroute::{CloseReason, Config, Connection, Error, Message, Route, RouterExt, WebSockets};

mod event_log;
mod wire;

use event_log::Log;

/// Echoes, and logs every event. Generic over the route's limit.
struct Recorder<const LIMIT: u64> {
    log: Log,
}

impl<const LIMIT: u64> Route<Log> for Recorder<LIMIT> {
    const PATH: &'static str = "/ws";
    // 0 stands for "no limit of its own": use the global one.
    const MAX_PAYLOAD: Option<u64> = if LIMIT == 0 { None } else { Some(LIMIT) };

    async fn accept(_: &mut Parts, log: &Log) -> Result<Self, Response> {
        log.push("accept".into());
        Ok(Self { log: log.clone() })
    }

    async fn open(&mut self, _: &Connection) {
        self.log.push("open".into());
    }

    async fn message(&mut self, conn: &Connection, msg: Message) {
        self.log.push(format!("message {}", msg.len()));
        conn.send(msg).unwrap();
    }

    async fn error(&mut self, _: &Connection, err: &Error) {
        let code = err.close_code().map(|c| c.0);
        self.log.push(format!("error {code:?} {err}"));
    }

    async fn close(&mut self, _: &Connection, reason: CloseReason) {
        self.log.push(format!("close {}", reason.code().0));
    }
}

struct Server {
    addr: std::net::SocketAddr,
    log: Log,
    sockets: WebSockets,
}

async fn serve<const LIMIT: u64>(config: Config) -> Server {
    let log = Log::default();
    let sockets = WebSockets::new(config);
    let app = axum::Router::new()
        .websocket::<Recorder<LIMIT>>(&sockets)
        .with_state(log.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // axum::serve: upgraded connections are read through hyper's wrapper.
    // (lifecycle.rs serves through wsroute::serve, straight from TCP.)
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Server { addr, log, sockets }
}

const UPGRADE: &str = "GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n\
    Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
    Sec-WebSocket-Version: 13\r\n\r\n";

/// Sends `request` and returns the response head.
async fn http(stream: &mut TcpStream, request: &str) -> String {
    stream.write_all(request.as_bytes()).await.unwrap();
    wire::read_head(stream).await
}

async fn upgraded(server: &Server) -> TcpStream {
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let head = http(&mut stream, UPGRADE).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    stream
}

/// A client frame; masked unless `mask` is false.
fn frame(first: u8, payload: &[u8], mask: bool) -> Vec<u8> {
    let mut out = vec![first];
    let bit = if mask { 0x80 } else { 0 };
    match payload.len() {
        n @ 0..=125 => out.push(bit | n as u8),
        n => {
            out.push(bit | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
    }
    let key = [0x11, 0x22, 0x33, 0x44];
    if mask {
        out.extend_from_slice(&key);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    } else {
        out.extend_from_slice(payload);
    }
    out
}

/// Reads one server frame: (first byte, payload).
async fn read_frame(stream: &mut TcpStream) -> (u8, Vec<u8>) {
    let mut head = [0u8; 2];
    stream.read_exact(&mut head).await.unwrap();
    assert_eq!(head[1] & 0x80, 0, "server frames are not masked");
    let len = match head[1] & 0x7F {
        126 => stream.read_u16().await.unwrap() as usize,
        127 => stream.read_u64().await.unwrap() as usize,
        n => n as usize,
    };
    let mut payload = vec![0u8; len];
    stream.read_exact(&mut payload).await.unwrap();
    (head[0], payload)
}

/// Reads a close frame and returns its code, then expects the server to end
/// the TCP connection.
async fn read_close_then_eof(stream: &mut TcpStream) -> u16 {
    let (first, payload) = read_frame(stream).await;
    assert_eq!(first, 0x88, "expected a close frame, payload {payload:?}");
    let code = u16::from_be_bytes([payload[0], payload[1]]);
    // Answer the close, as a client should, then see the server hang up.
    stream
        .write_all(&frame(0x88, &payload[..2], true))
        .await
        .unwrap();
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut rest)).await;
    assert!(
        matches!(read, Ok(Ok(0))),
        "server did not end TCP: {read:?} {rest:?}"
    );
    code
}

#[tokio::test]
async fn unmasked_text_frame_follows_the_build_mode() {
    let server = serve::<0>(Config::default()).await;
    let mut ws = upgraded(&server).await;
    ws.write_all(&frame(0x81, b"plain", false)).await.unwrap();
    if cfg!(feature = "enforce-ws-spec") {
        assert_eq!(read_close_then_eof(&mut ws).await, 1002);
        let events = server.log.until_closed().await;
        assert_eq!(events.len(), 4, "{events:?}");
        assert_eq!(events[..2], ["accept", "open"]);
        assert!(events[2].starts_with("error Some(1002) protocol error: unmasked"));
        assert_eq!(events[3], "close 1002");
    } else {
        assert_eq!(read_frame(&mut ws).await, (0x81, b"plain".to_vec()));
    }
}

#[tokio::test]
async fn masked_frames_are_echoed_in_both_modes() {
    let server = serve::<0>(Config::default()).await;
    let mut ws = upgraded(&server).await;
    ws.write_all(&frame(0x81, b"text", true)).await.unwrap();
    ws.write_all(&frame(0x82, &[0, 159, 255], true))
        .await
        .unwrap();
    assert_eq!(read_frame(&mut ws).await, (0x81, b"text".to_vec()));
    assert_eq!(read_frame(&mut ws).await, (0x82, vec![0, 159, 255]));
    // A close from the client is echoed, and ends TCP.
    ws.write_all(&frame(0x88, &1000u16.to_be_bytes(), true))
        .await
        .unwrap();
    assert_eq!(
        read_frame(&mut ws).await,
        (0x88, 1000u16.to_be_bytes().to_vec())
    );
    let mut rest = Vec::new();
    assert_eq!(ws.read_to_end(&mut rest).await.unwrap(), 0);
    assert_eq!(
        server.log.until_closed().await,
        ["accept", "open", "message 4", "message 3", "close 1000"]
    );
}

fn assert_one_too_big_error(events: &[String]) {
    assert_eq!(events.len(), 4, "{events:?}");
    assert_eq!(events[..2], ["accept", "open"]);
    assert!(
        events[2].starts_with("error Some(1009) protocol error: message of"),
        "{}",
        events[2]
    );
    assert_eq!(events[3], "close 1009");
}

#[tokio::test]
async fn message_over_the_route_limit_gets_1009_and_one_error() {
    let server = serve::<16>(Config::default()).await;
    let mut ws = upgraded(&server).await;
    ws.write_all(&frame(0x82, &[7; 16], true)).await.unwrap();
    assert_eq!(read_frame(&mut ws).await, (0x82, vec![7; 16]));
    ws.write_all(&frame(0x82, &[7; 17], true)).await.unwrap();
    assert_eq!(read_close_then_eof(&mut ws).await, 1009);
    let mut events = server.log.until_closed().await;
    assert_eq!(events.remove(2), "message 16");
    assert_one_too_big_error(&events);
}

#[tokio::test]
async fn fragments_under_the_limit_but_over_it_together_get_1009_and_one_error() {
    let server = serve::<16>(Config::default()).await;
    let mut ws = upgraded(&server).await;
    ws.write_all(&frame(0x01, b"12345678", true)).await.unwrap();
    ws.write_all(&frame(0x00, b"12345678", true)).await.unwrap();
    ws.write_all(&frame(0x80, b"9", true)).await.unwrap();
    assert_eq!(read_close_then_eof(&mut ws).await, 1009);
    assert_one_too_big_error(&server.log.until_closed().await);
}

#[tokio::test]
async fn global_limit_applies_and_route_u64_max_turns_it_off() {
    let server = serve::<0>(Config::default().max_payload(100)).await;
    let mut ws = upgraded(&server).await;
    ws.write_all(&frame(0x82, &[1; 101], true)).await.unwrap();
    assert_eq!(read_close_then_eof(&mut ws).await, 1009);

    let server = serve::<{ u64::MAX }>(Config::default().max_payload(100)).await;
    let mut ws = upgraded(&server).await;
    ws.write_all(&frame(0x82, &[1; 1000], true)).await.unwrap();
    assert_eq!(read_frame(&mut ws).await, (0x82, vec![1; 1000]));
}

#[tokio::test]
async fn plain_get_gets_426_and_bad_handshakes_get_4xx() {
    let server = serve::<0>(Config::default()).await;
    let cases = [
        ("GET /ws HTTP/1.1\r\nHost: x\r\n\r\n", "426"),
        (
            &*UPGRADE.replace("dGhlIHNhbXBsZSBub25jZQ==", "tooshort"),
            "400",
        ),
        (&*UPGRADE.replace("Version: 13", "Version: 8"), "426"),
        (
            &*UPGRADE.replace("Upgrade: websocket", "Upgrade: h2c"),
            "400",
        ),
        (&*UPGRADE.replace("GET", "POST"), "405"),
    ];
    for (request, status) in cases {
        let mut stream = TcpStream::connect(server.addr).await.unwrap();
        let head = http(&mut stream, request).await;
        assert!(
            head.starts_with(&format!("HTTP/1.1 {status}")),
            "{request:?} -> {head}"
        );
    }
    assert!(server.log.events().is_empty(), "accept never ran");
}

#[tokio::test]
async fn shutdown_sends_1001_and_waits_for_the_close_event() {
    let server = serve::<0>(Config::default()).await;
    let mut ws = upgraded(&server).await;
    ws.write_all(&frame(0x81, b"hi", true)).await.unwrap();
    read_frame(&mut ws).await;
    let sockets = server.sockets.clone();
    let shutdown = tokio::spawn(async move { sockets.shutdown().await });
    assert_eq!(read_close_then_eof(&mut ws).await, 1001);
    shutdown.await.unwrap();
    assert_eq!(
        server.log.until_closed().await,
        ["accept", "open", "message 2", "close 1001"]
    );
    assert_eq!(server.sockets.open_connections(), 0);
}

#[tokio::test]
async fn frames_sent_together_with_the_handshake_are_not_lost() {
    let server = serve::<0>(Config::default()).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    // One write: the upgrade request and two frames behind it, which the
    // HTTP server reads along with the request.
    let mut bytes = UPGRADE.as_bytes().to_vec();
    bytes.extend(frame(0x81, b"early", true));
    bytes.extend(frame(0x81, b"bird", true));
    stream.write_all(&bytes).await.unwrap();
    let head = http(&mut stream, "").await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert_eq!(read_frame(&mut stream).await, (0x81, b"early".to_vec()));
    assert_eq!(read_frame(&mut stream).await, (0x81, b"bird".to_vec()));
}

#[tokio::test]
async fn a_frame_behind_the_handshake_survives_every_tcp_split() {
    let server = serve::<0>(Config::default()).await;
    let mut bytes = UPGRADE.as_bytes().to_vec();
    bytes.extend(frame(0x81, b"early", true));
    for k in 1..bytes.len() {
        let mut stream = TcpStream::connect(server.addr).await.unwrap();
        // Without Nagle's delay and with a pause, the two writes arrive
        // as two reads on the server.
        stream.set_nodelay(true).unwrap();
        stream.write_all(&bytes[..k]).await.unwrap();
        stream.flush().await.unwrap();
        tokio::time::sleep(Duration::from_millis(2)).await;
        stream.write_all(&bytes[k..]).await.unwrap();
        let head = http(&mut stream, "").await;
        assert!(head.starts_with("HTTP/1.1 101"), "split at {k}: {head}");
        assert_eq!(
            read_frame(&mut stream).await,
            (0x81, b"early".to_vec()),
            "split at {k}"
        );
    }
}
