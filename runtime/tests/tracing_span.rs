//! The connection's span and the crate's debug events, as a `tracing`
//! subscriber records them: an event a handler logs carries the route,
//! the connection id, the peer, the subprotocol and the extensions; the
//! close event carries the code, the reason and the traffic.

use std::io::Write;
use std::sync::{Arc, Mutex};

use axum::http::request::Parts;
use axum::response::Response;
use wsroute::test::TestServer;
use wsroute::{CloseCode, Config, Connection, Message, Route, RouterExt, WebSockets};

struct Logged;

impl Route for Logged {
    const PATH: &'static str = "/logged";

    async fn accept(_: &mut Parts, _: &()) -> Result<Self, Response> {
        Ok(Logged)
    }

    async fn message(&mut self, conn: &Connection, msg: Message) {
        tracing::info!(text = msg.as_text(), "handler got a message");
        conn.send(msg).unwrap();
    }
}

/// Everything the subscriber wrote, shared with the test.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn line_with(&self, needle: &str) -> String {
        let text = String::from_utf8(self.0.lock().unwrap().clone()).unwrap();
        text.lines()
            .find(|line| line.contains(needle))
            .unwrap_or_else(|| panic!("no line with {needle:?} in:\n{text}"))
            .to_owned()
    }
}

// One thread: the subscriber is this thread's default, and the
// connection's task runs on it too.
#[tokio::test(flavor = "current_thread")]
async fn handler_events_carry_the_connection_span_and_close_carries_the_counts() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let sockets = WebSockets::new(Config::default().protocols(["chat"]));
    let server = TestServer::new(axum::Router::new().websocket::<Logged>(&sockets));
    let mut client = server
        .request("/logged")
        .protocol("chat")
        // Offered only to have it named in the span: the test client speaks
        // no compression, so the messages stay below the compression floor.
        .header("sec-websocket-extensions", "permessage-deflate")
        .remote_addr("10.1.2.3:4567".parse().unwrap())
        .connect()
        .await;
    client.send_text("hello").await;
    assert_eq!(client.recv_text().await, "hello");
    client.send_text("again").await;
    assert_eq!(client.recv_text().await, "again");
    client.close(CloseCode::NORMAL, "bye").await;
    client.closed().await;
    client.ended().await;
    sockets.shutdown().await;

    let handler = captured.line_with("handler got a message");
    for field in [
        "websocket{",
        r#"route="/logged""#,
        "id=",
        "peer=10.1.2.3:4567",
        r#"protocol="chat""#,
        r#"extensions="permessage-deflate; server_no_context_takeover"#,
    ] {
        assert!(handler.contains(field), "{field} missing from {handler}");
    }
    assert!(
        captured
            .line_with("WebSocket opened")
            .contains("peer=10.1.2.3:4567")
    );
    let closed = captured.line_with("WebSocket closed");
    for field in [
        "peer=10.1.2.3:4567",
        "code=1000",
        r#"reason="bye""#,
        "clean=true",
        "duration=",
        "messages_in=2",
        "messages_out=2",
    ] {
        assert!(closed.contains(field), "{field} missing from {closed}");
    }
    // Both ways more than the payloads (frame headers, the close frames),
    // but not more than a few dozen bytes.
    for field in ["bytes_in=", "bytes_out="] {
        let value: u64 = closed
            .split(field)
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{field} missing from {closed}"));
        assert!((10..100).contains(&value), "{field}{value} in {closed}");
    }
}
