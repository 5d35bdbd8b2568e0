//! A server against broken and hostile clients, over raw sockets: peers
//! that never read, go silent, trickle huge messages or flood the queue.
//! Each test bounds its own time and fails, rather than hangs, when the
//! server does.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::http::request::Parts;
use axum::response::Response;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wsroute::{
    CloseReason, Config, Connection, Error, ErrorKind, Message, Route, RouterExt, SlowConsumer,
    WebSockets,
};

mod event_log;
mod wire;

use event_log::Log;

/// Logs every event; text commands make it send.
struct Hardy {
    log: Log,
}

impl Route<Log> for Hardy {
    const PATH: &'static str = "/ws";

    async fn accept(_: &mut Parts, log: &Log) -> Result<Self, Response> {
        Ok(Self { log: log.clone() })
    }

    async fn open(&mut self, _: &Connection) {
        self.log.push("open".into());
    }

    async fn message(&mut self, conn: &Connection, msg: Message) {
        let words: Vec<&str> = msg.as_text().unwrap_or("").split(' ').collect();
        match words[..] {
            // Sends N messages of SIZE bytes at once, logging the first
            // refusal.
            ["flood", n, size] => {
                let (n, size): (usize, usize) = (n.parse().unwrap(), size.parse().unwrap());
                for i in 0..n {
                    if let Err(e) = conn.send_binary(vec![b'x'; size]) {
                        self.log.push(format!("refused at {i}: {e:?}"));
                        return;
                    }
                }
            }
            // Streams N numbered messages of SIZE bytes from another task,
            // waiting for room instead of failing.
            ["stream", n, size] => {
                let (n, size): (usize, usize) = (n.parse().unwrap(), size.parse().unwrap());
                let conn = conn.clone();
                let log = self.log.clone();
                tokio::spawn(async move {
                    for i in 0..n {
                        let mut body = format!("{i:08}").into_bytes();
                        body.resize(size, b'.');
                        if let Err(e) = conn.send_when_ready(Message::Binary(body.into())).await {
                            log.push(format!("stream failed at {i}: {e:?}"));
                            return;
                        }
                    }
                    log.push("streamed".into());
                });
            }
            _ => {
                if let Err(e) = conn.send(msg) {
                    self.log.push(format!("echo refused: {e:?}"));
                }
            }
        }
    }

    async fn error(&mut self, _: &Connection, err: &Error) {
        let kind = match err.kind() {
            ErrorKind::PeerTimeout => "peer-timeout",
            ErrorKind::SlowConsumer => "slow-consumer",
            ErrorKind::CloseTimeout => "close-timeout",
            ErrorKind::Io(_) => "io",
            ErrorKind::Protocol(_) => "protocol",
            _ => "other",
        };
        let code = err.close_code().map_or("-".into(), |c| c.0.to_string());
        self.log.push(format!("error {kind} {code}"));
    }

    async fn close(&mut self, _: &Connection, reason: CloseReason) {
        self.log.push(format!("close {}", reason.code().0));
    }
}

struct Server {
    addr: SocketAddr,
    log: Log,
    sockets: WebSockets,
}

/// The two ways a connection reaches the driver: straight from TCP
/// (`wsroute::serve`) or through hyper's wrapper (`axum::serve`).
#[derive(Debug, Clone, Copy)]
enum Via {
    WsrouteServe,
    AxumServe,
}

async fn serve(config: Config, via: Via) -> Server {
    let log = Log::default();
    let sockets = WebSockets::new(config);
    let app = axum::Router::new()
        .websocket::<Hardy>(&sockets)
        .with_state(log.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    match via {
        Via::WsrouteServe => {
            let sockets_for_serve = sockets.clone();
            tokio::spawn(async move {
                wsroute::serve(listener, app, &sockets_for_serve, std::future::pending())
                    .await
                    .unwrap()
            });
        }
        Via::AxumServe => {
            tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        }
    }
    Server { addr, log, sockets }
}

const UPGRADE: &[u8] = b"GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n\
    Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
    Sec-WebSocket-Version: 13\r\n\r\n";

/// Connects and upgrades; returns the stream past the 101's head.
async fn upgraded(addr: SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(UPGRADE).await.unwrap();
    let head = wire::read_head(&mut stream).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    stream
}

/// A server with `config` and one upgraded client that has sent `text`.
async fn client_sent(config: Config, via: Via, text: &str) -> (Server, TcpStream) {
    let server = serve(config, via).await;
    let mut stream = upgraded(server.addr).await;
    stream
        .write_all(&frame(0x81, text.as_bytes()))
        .await
        .unwrap();
    (server, stream)
}

/// The header of a masked client frame (key 0: the payload goes as is).
fn header(first: u8, len: usize) -> Vec<u8> {
    let mut out = vec![first];
    match len {
        0..=125 => out.push(0x80 | len as u8),
        126..=0xFFFF => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&[0; 4]);
    out
}

/// A masked client frame with a zero key.
fn frame(first: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = header(first, payload.len());
    out.extend_from_slice(payload);
    out
}

/// Reads one server frame: (first byte, payload); `None` at the end of
/// the stream or on a reset.
async fn read_frame(stream: &mut TcpStream) -> Option<(u8, Vec<u8>)> {
    let mut head = [0u8; 2];
    stream.read_exact(&mut head).await.ok()?;
    let len = match head[1] & 0x7F {
        126 => stream.read_u16().await.ok()? as usize,
        127 => stream.read_u64().await.ok()? as usize,
        n => n as usize,
    };
    let mut payload = vec![0u8; len];
    stream.read_exact(&mut payload).await.ok()?;
    Some((head[0], payload))
}

/// Reads frames until a close frame; returns its code.
async fn close_code(stream: &mut TcpStream) -> u16 {
    loop {
        match read_frame(stream).await {
            Some((0x88, payload)) => return u16::from_be_bytes([payload[0], payload[1]]),
            Some(_) => {}
            None => panic!("stream ended without a close frame"),
        }
    }
}

/// Waits up to `limit` for `done` to hold over the log's events.
async fn wait_for(log: &Log, limit: Duration, done: impl Fn(&[String]) -> bool) -> Vec<String> {
    let start = Instant::now();
    loop {
        let events = log.events();
        if done(&events) {
            return events;
        }
        assert!(start.elapsed() < limit, "gave up waiting: {events:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn count(events: &[String], prefix: &str) -> usize {
    events.iter().filter(|e| e.starts_with(prefix)).count()
}

// ---- 1. shutdown always completes ------------------------------------

/// Clients that flood the server with messages and never read its
/// echoes: every connection's output backs up. Shutdown must still end
/// within the close timeout, with one `close` per `open`.
async fn shutdown_with_clients_that_never_read(via: Via) {
    let close_timeout = Duration::from_millis(500);
    let server = serve(Config::default().close_timeout(close_timeout), via).await;
    let mut clients = Vec::new();
    let message = frame(0x82, &[7u8; 1024]);
    for _ in 0..20 {
        let mut stream = upgraded(server.addr).await;
        // 20k × 1 KiB, written until the socket takes no more: the
        // server's echoes fill its send buffer, then ours fills up.
        let flood = message.repeat(20_000);
        let _ = tokio::time::timeout(Duration::from_millis(100), stream.write_all(&flood)).await;
        clients.push(stream);
    }
    wait_for(&server.log, Duration::from_secs(5), |e| {
        count(e, "open") == 20
    })
    .await;
    let start = Instant::now();
    tokio::time::timeout(
        close_timeout * 2 + Duration::from_secs(1),
        server.sockets.shutdown(),
    )
    .await
    .expect("shutdown did not complete within the close timeout");
    eprintln!("shutdown took {:?}", start.elapsed());
    let events = server.log.events();
    assert_eq!(count(&events, "close"), 20, "{events:?}");
    assert_eq!(server.sockets.open_connections(), 0);
}

#[tokio::test]
async fn shutdown_completes_with_clients_that_never_read_from_tcp() {
    shutdown_with_clients_that_never_read(Via::WsrouteServe).await;
}

#[tokio::test]
async fn shutdown_completes_with_clients_that_never_read_through_hyper() {
    shutdown_with_clients_that_never_read(Via::AxumServe).await;
}

// ---- 2. keepalive ----------------------------------------------------

fn keepalive(interval_ms: u64, timeout_ms: u64) -> Config {
    Config::default()
        .ping_interval(Duration::from_millis(interval_ms))
        .ping_timeout(Duration::from_millis(timeout_ms))
}

#[tokio::test]
async fn a_silent_peer_is_pinged_then_dropped_with_1006() {
    let server = serve(keepalive(300, 300), Via::WsrouteServe).await;
    let mut stream = upgraded(server.addr).await;
    let start = Instant::now();
    let (first, payload) = tokio::time::timeout(Duration::from_secs(2), read_frame(&mut stream))
        .await
        .expect("no ping within 2 s")
        .expect("stream ended before the ping");
    assert_eq!(first, 0x89, "expected a ping");
    assert!(payload.is_empty());
    let pinged = start.elapsed();
    assert!(
        pinged >= Duration::from_millis(250),
        "pinged after {pinged:?}"
    );
    // No answer: the server gives up, without a close frame.
    let end = tokio::time::timeout(Duration::from_secs(2), read_frame(&mut stream)).await;
    assert!(
        matches!(end, Ok(None)),
        "expected the server to drop the connection: {end:?}"
    );
    let events = server.log.until_closed().await;
    assert_eq!(events, ["open", "error peer-timeout -", "close 1006"]);
}

// A client reading a long backlog sends nothing while it reads, and the
// server's ping waits behind the backlog: the reading, seen as the socket
// taking more once full, is its sign of life.
#[tokio::test]
async fn a_peer_slowly_reading_a_backlog_is_not_taken_for_dead() {
    let server = serve(keepalive(200, 1000), Via::WsrouteServe).await;
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    // Small, so that the backlog waits in the server, not in the kernel.
    socket.set_recv_buffer_size(16 * 1024).unwrap();
    let mut stream = socket.connect(server.addr).await.unwrap();
    stream.write_all(UPGRADE).await.unwrap();
    let head = wire::read_head(&mut stream).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    // 8 MiB read at about 3 MiB/s: more than twice the keepalive's 1.2 s.
    // (What the kernel holds at the end, a fraction of it, is read within
    // the keepalive: a ping behind it cannot be answered sooner.)
    stream
        .write_all(&frame(0x81, b"stream 256 32768"))
        .await
        .unwrap();
    let start = Instant::now();
    let mut got = 0;
    while got < 256 {
        match tokio::time::timeout(Duration::from_secs(2), read_frame(&mut stream)).await {
            Ok(Some((0x82, _))) => {
                got += 1;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Ok(Some((0x89, payload))) => stream.write_all(&frame(0x8A, &payload)).await.unwrap(),
            other => panic!(
                "after {got} messages and {:?}: {other:?}, {:?}",
                start.elapsed(),
                server.log.events()
            ),
        }
    }
    assert!(
        start.elapsed() > Duration::from_millis(1500),
        "read too fast to tell"
    );
    stream.write_all(&frame(0x81, b"alive")).await.unwrap();
    loop {
        match read_frame(&mut stream).await {
            Some((0x89, payload)) => stream.write_all(&frame(0x8A, &payload)).await.unwrap(),
            frame => {
                assert_eq!(frame, Some((0x81, b"alive".to_vec())));
                break;
            }
        }
    }
    assert_eq!(server.log.events(), ["open", "streamed"]);
}

#[tokio::test]
async fn a_peer_that_answers_pings_stays_open() {
    let server = serve(keepalive(200, 200), Via::AxumServe).await;
    let mut stream = upgraded(server.addr).await;
    let mut pings = 0;
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(1500) {
        match tokio::time::timeout(Duration::from_millis(500), read_frame(&mut stream)).await {
            Ok(Some((0x89, payload))) => {
                pings += 1;
                stream.write_all(&frame(0x8A, &payload)).await.unwrap();
            }
            Ok(other) => panic!("unexpected {other:?}"),
            Err(_) => {}
        }
    }
    assert!(pings >= 2, "{pings} pings in 1.5 s");
    // Still open: an echo comes back.
    stream.write_all(&frame(0x81, b"alive")).await.unwrap();
    assert_eq!(
        read_frame(&mut stream).await,
        Some((0x81, b"alive".to_vec()))
    );
    assert_eq!(server.log.events(), ["open"]);
}

#[tokio::test]
async fn any_frame_counts_as_life_and_zero_turns_keepalive_off() {
    // Data every 150 ms, interval 300 ms: never pinged.
    let server = serve(keepalive(300, 300), Via::WsrouteServe).await;
    let mut stream = upgraded(server.addr).await;
    for _ in 0..8 {
        stream.write_all(&frame(0x81, b"hi")).await.unwrap();
        assert_eq!(read_frame(&mut stream).await, Some((0x81, b"hi".to_vec())));
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    // Off: silent for 1 s, no ping, still open.
    let off = serve(keepalive(0, 100), Via::WsrouteServe).await;
    let mut silent = upgraded(off.addr).await;
    let nothing = tokio::time::timeout(Duration::from_secs(1), read_frame(&mut silent)).await;
    assert!(nothing.is_err(), "keepalive off, yet {nothing:?}");
    silent.write_all(&frame(0x81, b"still")).await.unwrap();
    assert_eq!(
        read_frame(&mut silent).await,
        Some((0x81, b"still".to_vec()))
    );
}

// ---- 4. bounded memory -------------------------------------------------

#[tokio::test]
async fn trickled_messages_past_the_budget_get_1013_and_small_ones_are_served() {
    let config = Config::default()
        .max_buffered(1 << 20)
        .max_payload(64 << 20);
    let server = serve(config, Via::WsrouteServe).await;
    // Six clients announce 8 MiB each and send 400 KiB of it: together
    // they would hold 2.4 MiB, more than the 1 MiB budget.
    let mut hogs = Vec::new();
    for _ in 0..6 {
        let mut stream = upgraded(server.addr).await;
        stream.write_all(&header(0x82, 8 << 20)).await.unwrap();
        for _ in 0..4 {
            stream.write_all(&[0u8; 100 * 1024]).await.unwrap();
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        hogs.push(stream);
    }
    let mut refused = 0;
    for stream in &mut hogs {
        if let Ok(code) = tokio::time::timeout(Duration::from_millis(300), close_code(stream)).await
        {
            assert_eq!(code, 1013);
            refused += 1;
        }
    }
    assert!((2..6).contains(&refused), "{refused} of 6 refused");
    // A well-behaved client is still served while the hogs hold the budget.
    let mut small = upgraded(server.addr).await;
    for _ in 0..10 {
        small.write_all(&frame(0x81, b"small")).await.unwrap();
        assert_eq!(
            read_frame(&mut small).await,
            Some((0x81, b"small".to_vec()))
        );
    }
}

#[tokio::test]
async fn a_message_larger_than_the_queue_bound_is_echoed() {
    let config = Config::default().max_send_queue(1024);
    let server = serve(config, Via::WsrouteServe).await;
    let mut stream = upgraded(server.addr).await;
    let big = vec![b'a'; 100 * 1024];
    stream.write_all(&frame(0x81, &big)).await.unwrap();
    let echo = tokio::time::timeout(Duration::from_secs(5), read_frame(&mut stream)).await;
    assert_eq!(echo.unwrap(), Some((0x81, big)));
}

#[tokio::test]
async fn a_full_queue_refuses_sends_by_default_and_keeps_the_connection() {
    let config = Config::default().max_send_queue(64 * 1024);
    let (server, mut stream) = client_sent(config, Via::WsrouteServe, "flood 100 16384").await;
    let events = wait_for(&server.log, Duration::from_secs(5), |e| {
        count(e, "refused") == 1
    })
    .await;
    assert_eq!(events[1], "refused at 4: QueueFull { limit: 65536 }");
    // What was queued arrives, then the connection still echoes.
    for _ in 0..4 {
        let (first, payload) = read_frame(&mut stream).await.unwrap();
        assert_eq!((first, payload.len()), (0x82, 16384));
    }
    stream.write_all(&frame(0x81, b"ok")).await.unwrap();
    assert_eq!(read_frame(&mut stream).await, Some((0x81, b"ok".to_vec())));
}

#[tokio::test]
async fn slow_consumer_close_closes_with_1008_and_reports_it() {
    let config = Config::default()
        .max_send_queue(64 * 1024)
        .slow_consumer(SlowConsumer::Close);
    // The route sends 100 × 16 KiB at once: far past the queue bound.
    let (server, mut stream) = client_sent(config, Via::WsrouteServe, "flood 100 16384").await;
    assert_eq!(close_code(&mut stream).await, 1008);
    stream
        .write_all(&frame(0x88, &1008u16.to_be_bytes()))
        .await
        .unwrap();
    let events = server.log.until_closed().await;
    assert_eq!(
        events[1..],
        [
            "refused at 4: QueueFull { limit: 65536 }",
            "error slow-consumer 1008",
            "close 1008"
        ]
    );
}

#[tokio::test]
async fn send_when_ready_streams_past_the_bound_without_loss() {
    let config = Config::default()
        .max_send_queue(32 * 1024)
        .slow_consumer(SlowConsumer::Close);
    let (server, mut stream) = client_sent(config, Via::AxumServe, "stream 300 16384").await;
    // Read slowly at first, so the producer must wait.
    tokio::time::sleep(Duration::from_millis(200)).await;
    for i in 0..300 {
        let (first, payload) = read_frame(&mut stream).await.unwrap();
        assert_eq!(first, 0x82);
        assert_eq!(&payload[..8], format!("{i:08}").as_bytes());
    }
    wait_for(&server.log, Duration::from_secs(5), |e| {
        e.contains(&"streamed".to_string())
    })
    .await;
    assert_eq!(count(&server.log.events(), "error"), 0);
}

#[tokio::test]
async fn a_message_in_too_many_fragments_gets_1009() {
    let server = serve(Config::default().max_fragments(100), Via::WsrouteServe).await;
    let mut stream = upgraded(server.addr).await;
    // 100 frames is the limit: accepted.
    let mut ok = frame(0x01, b"a");
    for _ in 0..98 {
        ok.extend(frame(0x00, b""));
    }
    ok.extend(frame(0x80, b"b"));
    stream.write_all(&ok).await.unwrap();
    assert_eq!(read_frame(&mut stream).await, Some((0x81, b"ab".to_vec())));
    // Empty continuations without end: refused at the 101st frame.
    let mut endless = frame(0x01, b"a");
    for _ in 0..10_000 {
        endless.extend(frame(0x00, b""));
    }
    let _ = stream.write_all(&endless).await;
    assert_eq!(close_code(&mut stream).await, 1009);
    let events = server.log.until_closed().await;
    assert_eq!(events[1..], ["error protocol 1009", "close 1009"]);
}

#[tokio::test]
async fn a_client_flooding_pings_without_reading_does_not_grow_the_server() {
    // Pongs are the core's own output: reading pauses once they back up.
    let server = serve(
        Config::default().close_timeout(Duration::from_millis(300)),
        Via::WsrouteServe,
    )
    .await;
    let mut stream = upgraded(server.addr).await;
    let ping = frame(0x89, &[0u8; 125]);
    let flood = ping.repeat(100_000); // 13 MB of pings
    let wrote = tokio::time::timeout(Duration::from_secs(2), stream.write_all(&flood)).await;
    assert!(
        wrote.is_err(),
        "the server kept reading pings nobody collected the pongs of"
    );
    tokio::time::timeout(Duration::from_secs(3), server.sockets.shutdown())
        .await
        .expect("shutdown hung");
}
