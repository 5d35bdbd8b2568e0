//! `wsroute::serve`'s HTTP side: the handshake timeout, and a shutdown
//! that no client can hold up.

use std::time::{Duration, Instant};

use axum::http::request::Parts;
use axum::response::Response;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use wsroute::{Config, Route, RouterExt, WebSockets};

struct Echo;

impl Route for Echo {
    const PATH: &'static str = "/ws";

    async fn accept(_: &mut Parts, _: &()) -> Result<Self, Response> {
        Ok(Echo)
    }
}

const HALF_A_HEAD: &[u8] = b"GET /ws HTTP/1.1\r\nHost: x\r\n";

struct Server {
    addr: std::net::SocketAddr,
    stop: oneshot::Sender<()>,
    served: JoinHandle<std::io::Result<()>>,
}

async fn start(config: Config) -> Server {
    let sockets = WebSockets::new(config);
    let app = axum::Router::new().websocket::<Echo>(&sockets);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let served = tokio::spawn(async move {
        wsroute::serve(listener, app, &sockets, async {
            let _ = stopped.await;
        })
        .await
    });
    Server { addr, stop, served }
}

/// Reads until the server ends the connection; how long that took.
async fn time_to_eof(stream: &mut TcpStream) -> Duration {
    let start = Instant::now();
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut rest)).await;
    // A reset counts as closed as well as a FIN does.
    assert!(read.is_ok(), "the server kept the connection open");
    start.elapsed()
}

#[tokio::test]
async fn half_a_head_is_cut_off_after_the_handshake_timeout() {
    let server = start(Config::default().handshake_timeout(Duration::from_millis(300))).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream.write_all(HALF_A_HEAD).await.unwrap();
    let waited = time_to_eof(&mut stream).await;
    assert!(waited < Duration::from_secs(2), "{waited:?}");
    assert!(waited >= Duration::from_millis(200), "{waited:?}");
}

#[tokio::test]
async fn a_client_that_sends_nothing_is_cut_off_too() {
    let server = start(Config::default().handshake_timeout(Duration::from_millis(300))).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let waited = time_to_eof(&mut stream).await;
    assert!(waited < Duration::from_secs(2), "{waited:?}");
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_cut_off_too() {
    let server = start(Config::default().handshake_timeout(Duration::from_millis(300))).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    // A plain GET gets 426 and leaves the connection open for the next.
    stream
        .write_all(b"GET /ws HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 12];
    stream.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"HTTP/1.1 426");
    let waited = time_to_eof(&mut stream).await;
    assert!(waited < Duration::from_secs(2), "{waited:?}");
}

#[tokio::test]
async fn shutdown_is_not_held_up_by_a_half_sent_head() {
    // The handshake timeout is long: only the close timeout can end it.
    let config = Config::default()
        .handshake_timeout(Duration::from_secs(60))
        .close_timeout(Duration::from_millis(300));
    let server = start(config).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream.write_all(HALF_A_HEAD).await.unwrap();
    // Let the server accept it before the signal.
    tokio::time::sleep(Duration::from_millis(100)).await;
    server.stop.send(()).unwrap();
    let bound = Duration::from_millis(300) + Duration::from_secs(1);
    tokio::time::timeout(bound, server.served)
        .await
        .expect("serve did not return within close_timeout + 1 s")
        .unwrap()
        .unwrap();
    time_to_eof(&mut stream).await;
}
