//! Every way a connection can end: the events the route saw, in order, and
//! the close code and reason on the wire. `close` must run exactly once in
//! each.
//!
//! Endings a client causes with frames run in process (`wsroute::test`,
//! through axum's upgrade path); those that need a real socket (a reset,
//! a FIN, raw bytes, `wsroute::serve`'s shutdown and direct TCP reads) use
//! tokio-tungstenite over TCP.

use std::time::Duration;

use axum::http::request::Parts;
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::{self, Message as WireMessage};
use wsroute::{
    CloseCode, CloseReason, Config, Connection, Error, ErrorKind, Message, Route, RouterExt,
    SendError, WebSockets,
};

mod event_log;

use wsroute::test::TestServer;

use event_log::Log;

/// Records events; commands in text messages make it act.
struct Scripted {
    log: Log,
}

impl Route<Log> for Scripted {
    const PATH: &'static str = "/ws";
    const MAX_PAYLOAD: Option<u64> = Some(1000);

    async fn accept(_: &mut Parts, log: &Log) -> Result<Self, Response> {
        Ok(Self { log: log.clone() })
    }

    async fn open(&mut self, conn: &Connection) {
        match conn.subprotocol() {
            Some(protocol) => self.log.push(format!("open {protocol}")),
            None => self.log.push("open".into()),
        }
    }

    async fn message(&mut self, conn: &Connection, msg: Message) {
        self.log
            .push(format!("message {}", msg.as_text().unwrap_or("<binary>")));
        match msg.as_text() {
            Some("close-me") => conn.close(CloseCode(4000), "as requested").unwrap(),
            Some("panic") => panic!("handler panics on purpose"),
            Some("who") => {
                let addr = conn.remote_addr().map(|a| a.ip().to_string());
                conn.send_text(addr.unwrap_or_default()).unwrap();
            }
            Some("from-another-task") => {
                let conn = conn.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    conn.send_text("pushed").unwrap();
                });
            }
            _ => conn.send(msg).unwrap(),
        }
    }

    async fn error(&mut self, _: &Connection, err: &Error) {
        let kind = match err.kind() {
            ErrorKind::Protocol(_) if err.is_payload_too_big() => "too-big",
            ErrorKind::Protocol(_) => "protocol",
            ErrorKind::Io(_) => "io",
            ErrorKind::CloseTimeout => "timeout",
            _ => "other",
        };
        let code = err.close_code().map_or("-".into(), |c| c.to_string());
        self.log.push(format!("error {kind} {code}"));
    }

    async fn close(&mut self, conn: &Connection, reason: CloseReason) {
        self.log.push(format!(
            "close {} {:?} clean={}",
            reason.code(),
            reason.reason(),
            reason.is_clean()
        ));
        assert_eq!(conn.send_text("too late"), Err(SendError::Closed));
    }
}

struct Server {
    url: String,
    addr: std::net::SocketAddr,
    log: Log,
    sockets: WebSockets,
}

async fn serve(config: Config) -> Server {
    let log = Log::default();
    let sockets = WebSockets::new(config);
    let app = axum::Router::new()
        .websocket::<Scripted>(&sockets)
        .with_state(log.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // wsroute::serve: upgraded connections are read straight from TCP.
    // (raw_socket.rs serves through axum::serve, the other transport.)
    let served = sockets.clone();
    tokio::spawn(async move {
        wsroute::serve(listener, app, &served, std::future::pending())
            .await
            .unwrap()
    });
    Server {
        url: format!("ws://{addr}/ws"),
        addr,
        log,
        sockets,
    }
}

/// The route served in process: no port, the same upgrade and task.
fn serve_in_process(config: Config) -> (TestServer, Log) {
    let log = Log::default();
    let sockets = WebSockets::new(config);
    let app = axum::Router::new()
        .websocket::<Scripted>(&sockets)
        .with_state(log.clone());
    (TestServer::new(app), log)
}

type Client = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

async fn connect(server: &Server) -> Client {
    tokio_tungstenite::connect_async(&server.url)
        .await
        .unwrap()
        .0
}

/// Reads until the server's close frame; returns its code and reason.
async fn server_close(client: &mut Client) -> (u16, String) {
    while let Some(msg) = client.next().await {
        if let WireMessage::Close(frame) = msg.unwrap() {
            let frame = frame.expect("close frame with a code");
            return (u16::from(frame.code), frame.reason.to_string());
        }
    }
    panic!("stream ended without a close frame");
}

#[tokio::test]
async fn peer_close() {
    let (server, log) = serve_in_process(Config::default());
    let mut client = server.connect("/ws").await;
    client.send_text("hi").await;
    assert_eq!(client.recv_text().await, "hi");
    client.close(CloseCode::NORMAL, "bye").await;
    let close = client.closed().await;
    assert_eq!((close.code, close.reason.as_str()), (CloseCode::NORMAL, ""));
    assert_eq!(
        log.until_closed().await,
        ["open", "message hi", r#"close 1000 "bye" clean=true"#]
    );
}

#[tokio::test]
async fn conn_close_from_a_handler() {
    let (server, log) = serve_in_process(Config::default());
    let mut client = server.connect("/ws").await;
    client.send_text("close-me").await;
    let close = client.closed().await;
    assert_eq!(
        (close.code.0, close.reason.as_str()),
        (4000, "as requested")
    );
    // tungstenite answers the close; the server then ends the stream.
    client.ended().await;
    assert_eq!(
        log.until_closed().await,
        [
            "open",
            "message close-me",
            r#"close 4000 "as requested" clean=true"#
        ]
    );
}

#[tokio::test]
async fn protocol_error() {
    use tungstenite::protocol::frame::coding::{Data, OpCode};
    use tungstenite::protocol::frame::{Frame, FrameHeader};
    let server = serve(Config::default()).await;
    let mut client = connect(&server).await;
    let header = FrameHeader {
        opcode: OpCode::Data(Data::Reserved(3)),
        ..FrameHeader::default()
    };
    client
        .send(WireMessage::Frame(Frame::from_payload(
            header,
            Vec::new().into(),
        )))
        .await
        .unwrap();
    let (code, reason) = server_close(&mut client).await;
    assert_eq!((code, reason.as_str()), (1002, "reserved opcode 0x3"));
    assert_eq!(
        server.log.until_closed().await,
        [
            "open",
            "error protocol 1002",
            r#"close 1002 "reserved opcode 0x3" clean=false"#
        ]
    );
}

#[tokio::test]
async fn payload_too_big() {
    let (server, log) = serve_in_process(Config::default());
    let mut client = server.connect("/ws").await;
    client.send_binary(vec![0u8; 1001]).await;
    assert_eq!(client.closed().await.code, CloseCode::MESSAGE_TOO_BIG);
    let events = log.until_closed().await;
    assert_eq!(events[..2], ["open", "error too-big 1009"]);
    assert!(
        events[2].starts_with("close 1009 \"message of 1001 bytes"),
        "{events:?}"
    );
    assert_eq!(events.len(), 3);
}

#[tokio::test]
async fn tcp_reset() {
    let server = serve(Config::default()).await;
    let client = connect(&server).await;
    let tcp = match client.into_inner() {
        tokio_tungstenite::MaybeTlsStream::Plain(tcp) => tcp,
        _ => unreachable!("plain ws://"),
    };
    // SO_LINGER 0: closing sends RST instead of FIN.
    tcp.set_zero_linger().unwrap();
    drop(tcp);
    let events = server.log.until_closed().await;
    assert_eq!(
        events,
        ["open", "error io -", r#"close 1006 "" clean=false"#]
    );
}

#[tokio::test]
async fn client_disappears_without_close_frame() {
    let server = serve(Config::default()).await;
    let client = connect(&server).await;
    drop(client); // FIN without a close frame
    assert_eq!(
        server.log.until_closed().await,
        ["open", "error io -", r#"close 1006 "" clean=false"#]
    );
}

#[tokio::test]
async fn close_handshake_timeout() {
    let server = serve(Config::default().close_timeout(Duration::from_millis(200))).await;
    // A raw client that asks for a close and then never answers it.
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    tcp.write_all(
        b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .await
    .unwrap();
    let mut payload = b"close-me".to_vec();
    let key = [1, 2, 3, 4];
    for (i, b) in payload.iter_mut().enumerate() {
        *b ^= key[i % 4];
    }
    let mut frame = vec![0x81, 0x80 | 8];
    frame.extend_from_slice(&key);
    frame.extend_from_slice(&payload);
    tcp.write_all(&frame).await.unwrap();
    // Read the 101 and the close frame, answer nothing; the server drops us.
    let mut everything = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut everything)).await;
    assert!(read.is_ok(), "server never dropped the connection");
    let close_frame = b"\x88\x0e\x0f\xa0as requested";
    assert!(everything.ends_with(close_frame), "{everything:x?}");
    assert_eq!(
        server.log.until_closed().await,
        [
            "open",
            "message close-me",
            "error timeout 4000",
            r#"close 4000 "as requested" clean=false"#
        ]
    );
}

/// Where [`Kept`] leaves its connection's handle for the test.
type Slot = std::sync::Arc<std::sync::Mutex<Option<Connection>>>;

/// Hands its connection to the test, which sends from outside the task.
struct Kept(Slot);

impl Route<Slot> for Kept {
    const PATH: &'static str = "/kept";

    async fn accept(_: &mut Parts, slot: &Slot) -> Result<Self, Response> {
        Ok(Self(slot.clone()))
    }

    async fn open(&mut self, conn: &Connection) {
        *self.0.lock().unwrap() = Some(conn.clone());
    }
}

// Sends and a close queued from another task just before shutdown: the
// task wakes to both at once, and what was queued first goes out first.
#[tokio::test]
async fn what_was_queued_before_shutdown_goes_out_before_its_1001() {
    let slot = Slot::default();
    let sockets = WebSockets::new(Config::default());
    let app = axum::Router::new()
        .websocket::<Kept>(&sockets)
        .with_state(slot.clone());
    let server = TestServer::new(app);
    let mut client = server.connect("/kept").await;
    let conn = loop {
        if let Some(conn) = slot.lock().unwrap().clone() {
            break conn;
        }
        tokio::task::yield_now().await;
    };
    conn.send_text("last words").unwrap();
    conn.close(CloseCode::NORMAL, "done").unwrap();
    // Signals every connection on its first poll; the connection's task
    // (on this one thread) runs only after that.
    let shutdown = sockets.shutdown();
    tokio::pin!(shutdown);
    assert!(futures_util::poll!(&mut shutdown).is_pending());
    assert_eq!(client.recv_text().await, "last words");
    let close = client.closed().await;
    assert_eq!(
        (close.code, close.reason.as_str()),
        (CloseCode::NORMAL, "done")
    );
    shutdown.await;
}

#[tokio::test]
async fn server_shutdown() {
    let server = serve(Config::default()).await;
    let mut first = connect(&server).await;
    let mut second = connect(&server).await;
    for client in [&mut first, &mut second] {
        client.send(WireMessage::text("x")).await.unwrap();
        client.next().await.unwrap().unwrap();
    }
    assert_eq!(server.sockets.open_connections(), 2);
    let sockets = server.sockets.clone();
    let shutdown = tokio::spawn(async move { sockets.shutdown().await });
    for client in [&mut first, &mut second] {
        assert_eq!(
            server_close(client).await,
            (1001, "server shutting down".to_owned())
        );
        // Polling on sends tungstenite's answer; then the server hangs up.
        assert!(client.next().await.is_none());
    }
    tokio::time::timeout(Duration::from_secs(5), shutdown)
        .await
        .expect("shutdown waits only for the close handshakes")
        .unwrap();
    let events = server.log.events();
    let closes = events.iter().filter(|e| e.starts_with("close")).count();
    assert_eq!(closes, 2, "{events:?}");
    assert!(events.contains(&r#"close 1001 "server shutting down" clean=true"#.to_owned()));
    assert_eq!(server.sockets.open_connections(), 0);

    // New upgrades are refused while shutting down.
    let refused = tokio_tungstenite::connect_async(&server.url).await;
    assert!(
        matches!(refused, Err(tungstenite::Error::Http(ref r)) if r.status() == 503),
        "{refused:?}"
    );
}

#[tokio::test]
async fn sends_from_another_task_reach_the_client() {
    let (server, _log) = serve_in_process(Config::default());
    let mut client = server.connect("/ws").await;
    client.send_text("from-another-task").await;
    assert_eq!(client.recv_text().await, "pushed");
}

#[tokio::test]
async fn a_burst_of_messages_is_answered_in_order() {
    let server = serve(Config::default()).await;
    let mut client = connect(&server).await;
    for i in 0..100 {
        client.feed(WireMessage::text(i.to_string())).await.unwrap();
    }
    client.flush().await.unwrap();
    for i in 0..100 {
        assert_eq!(
            client.next().await.unwrap().unwrap(),
            WireMessage::text(i.to_string())
        );
    }
}

#[tokio::test]
async fn subprotocol_is_negotiated() {
    let (server, log) = serve_in_process(Config::default().protocols(["v2.chat", "v1.chat"]));
    let mut client = server
        .request("/ws")
        .protocol("v1.chat, v2.chat")
        .connect()
        .await;
    client.close(CloseCode::NO_STATUS, "").await;
    client.closed().await;
    assert_eq!(
        log.until_closed().await,
        ["open v2.chat", r#"close 1005 "" clean=true"#]
    );
}

#[tokio::test]
async fn a_panicking_handler_closes_with_1011_and_close_still_runs() {
    let (server, log) = serve_in_process(Config::default());
    let mut client = server.connect("/ws").await;
    client.send_text("panic").await;
    let close = client.closed().await;
    assert_eq!(
        (close.code, close.reason.as_str()),
        (CloseCode::INTERNAL_ERROR, "internal error")
    );
    client.ended().await;
    assert_eq!(
        log.until_closed().await,
        [
            "open",
            "message panic",
            r#"close 1011 "internal error" clean=true"#
        ]
    );
}

#[tokio::test]
async fn frames_behind_the_handshake_and_the_remote_address() {
    let server = serve(Config::default()).await;
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    // The upgrade request and a masked "who" frame in one write.
    let mut bytes = b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        .to_vec();
    bytes.extend_from_slice(&[0x81, 0x83, 0, 0, 0, 0, b'w', b'h', b'o']);
    tcp.write_all(&bytes).await.unwrap();
    let expected = b"\x81\x09127.0.0.1";
    let mut received = Vec::new();
    while !received.ends_with(expected) {
        let mut chunk = [0u8; 512];
        let n = tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut chunk))
            .await
            .expect("no echo")
            .unwrap();
        assert!(n > 0, "closed: {:?}", String::from_utf8_lossy(&received));
        received.extend_from_slice(&chunk[..n]);
    }
    assert!(received.starts_with(b"HTTP/1.1 101"));
}
