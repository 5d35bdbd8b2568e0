//! The server's reasons to refuse an upgrade, as a client on the wire sees
//! them: a body or no `Host` (400), a cross-site `Origin` (403), too many
//! connections (503).

use axum::http::request::Parts;
use axum::response::Response;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wsroute::{Config, Route, RouterExt, WebSockets};

mod wire;

struct Open;

impl Route for Open {
    const PATH: &'static str = "/ws";

    async fn accept(_: &mut Parts, _: &()) -> Result<Self, Response> {
        Ok(Open)
    }
}

/// A route with its own origin list.
struct Listed;

impl Route for Listed {
    const PATH: &'static str = "/listed";
    const ORIGINS: Option<&'static [&'static str]> = Some(&["https://app.example"]);

    async fn accept(_: &mut Parts, _: &()) -> Result<Self, Response> {
        Ok(Listed)
    }
}

struct Server {
    addr: std::net::SocketAddr,
    sockets: WebSockets,
}

async fn serve(config: Config) -> Server {
    let sockets = WebSockets::new(config);
    let app = axum::Router::new()
        .websocket::<Open>(&sockets)
        .websocket::<Listed>(&sockets);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let served = sockets.clone();
    tokio::spawn(async move {
        wsroute::serve(listener, app, &served, std::future::pending())
            .await
            .unwrap()
    });
    Server { addr, sockets }
}

/// An upgrade request for `path` with `Host: host` and `extra` headers
/// (each ending in `\r\n`).
fn upgrade(path: &str, host: &str, extra: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    )
}

/// Sends `request` on a new connection; returns the stream and the
/// response head.
async fn send(server: &Server, request: &str) -> (TcpStream, String) {
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let head = wire::read_head(&mut stream).await;
    (stream, head)
}

async fn status(server: &Server, request: &str) -> String {
    let (_, head) = send(server, request).await;
    head.get(9..12).unwrap_or(&head).to_owned()
}

#[tokio::test]
async fn upgrades_with_a_body_or_without_host_get_400() {
    let server = serve(Config::default()).await;
    let with_length = upgrade("/ws", "x", "Content-Length: 5\r\n") + "hello";
    let chunked = upgrade("/ws", "x", "Transfer-Encoding: chunked\r\n") + "5\r\nhello\r\n0\r\n\r\n";
    let no_host = upgrade("/ws", "x", "").replace("Host: x\r\n", "");
    for request in [&with_length, &chunked, &no_host] {
        let (mut stream, head) = send(&server, request).await;
        assert!(head.starts_with("HTTP/1.1 400"), "{request:?} -> {head}");
        // No upgrade: whatever follows is not a WebSocket.
        let mut rest = [0u8; 64];
        let n = stream.read(&mut rest).await.unwrap_or(0);
        assert!(!rest[..n].starts_with(b"HTTP/1.1 101"));
    }
    let empty = upgrade("/ws", "x", "Content-Length: 0\r\n");
    assert_eq!(status(&server, &empty).await, "101");
    assert_eq!(server.sockets.config().get_max_connections(), None);
}

#[tokio::test]
async fn cross_site_origins_get_403_with_how_to_allow_them() {
    let server = serve(Config::default()).await;
    let host = server.addr.to_string();
    let origin = |o: &str| format!("Origin: {o}\r\n");
    let cross = upgrade("/ws", &host, &origin("https://evil.example"));
    let (mut stream, head) = send(&server, &cross).await;
    assert!(head.starts_with("HTTP/1.1 403"), "{head}");
    let mut body = vec![0u8; 200];
    let n = stream.read(&mut body).await.unwrap();
    let body = String::from_utf8_lossy(&body[..n]);
    assert!(body.contains("Config::allowed_origins"), "{body}");
    assert!(body.contains("origins = [...]"), "{body}");

    let same = upgrade("/ws", &host, &origin(&format!("http://{host}")));
    assert_eq!(status(&server, &same).await, "101");
    assert_eq!(status(&server, &upgrade("/ws", &host, "")).await, "101");
    let null = upgrade("/ws", &host, &origin("null"));
    assert_eq!(status(&server, &null).await, "403");
}

#[tokio::test]
async fn listed_any_and_route_origins_decide_as_configured() {
    let listed = serve(Config::default().allowed_origins(["https://app.example"])).await;
    let from_app = upgrade("/ws", "api.example", "Origin: https://APP.example\r\n");
    assert_eq!(status(&listed, &from_app).await, "101");
    let from_other = upgrade("/ws", "api.example", "Origin: https://other.example\r\n");
    assert_eq!(status(&listed, &from_other).await, "403");

    let any = serve(Config::default().allow_any_origin()).await;
    assert_eq!(status(&any, &from_other).await, "101");

    // The route's own list wins over the global rule, both ways.
    let route_app = upgrade("/listed", "api.example", "Origin: https://app.example\r\n");
    let default = serve(Config::default()).await;
    assert_eq!(status(&default, &route_app).await, "101");
    let route_other = upgrade(
        "/listed",
        "api.example",
        "Origin: https://other.example\r\n",
    );
    assert_eq!(status(&any, &route_other).await, "403");
}

#[tokio::test]
async fn upgrades_past_max_connections_get_503() {
    let server = serve(Config::default().max_connections(1)).await;
    let (first, head) = send(&server, &upgrade("/ws", "x", "")).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let (mut refused, head) = send(&server, &upgrade("/ws", "x", "")).await;
    assert!(head.starts_with("HTTP/1.1 503"), "{head}");
    let mut body = vec![0u8; 100];
    let n = refused.read(&mut body).await.unwrap();
    assert!(String::from_utf8_lossy(&body[..n]).contains("too many"));
    // Once the first is gone, there is room again.
    drop(first);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while server.sockets.open_connections() > 0 {
        assert!(std::time::Instant::now() < deadline, "first never closed");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(status(&server, &upgrade("/ws", "x", "")).await, "101");
}
