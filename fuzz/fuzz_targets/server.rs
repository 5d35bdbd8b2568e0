//! The whole server end to end: fuzzer bytes written, in fuzzer-chosen
//! pieces after fuzzer-chosen virtual delays, into an in-memory stream
//! served by hyper's HTTP/1.1 with upgrades and an axum router with a
//! wsroute echo route at `/ws` — the per-connection set-up of
//! `wsroute::serve`, without a socket. The clock is tokio's paused one.
//!
//! Input layout: byte 0, low 4 bits: the number of write steps; two bytes
//! per step: the piece's length (0..=255) and the delay before it (0:
//! none; 1..=199: that many ms; 200..=255: that many seconds minus 199);
//! the steps repeat until the rest, the client's bytes, is written.
//!
//! Checked: the whole exchange ends within 60 virtual seconds of the
//! client shutting its side, and `WebSockets::shutdown` within 60 more (a
//! hang panics); per connection, the route sees `open`, then messages,
//! at most one `error`, then `close` exactly once, and nothing after;
//! every text message is valid UTF-8.
#![no_main]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use libfuzzer_sys::fuzz_target;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower_service::Service;
use axum::http::request::Parts;
use axum::response::Response;
use wsroute::{CloseReason, Config, Connection, Error, Message, Route, RouterExt, WebSockets};

const HANG: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    Open,
    Message,
    Error,
    Close,
}

/// Every route event, with its connection's id.
type Log = Arc<Mutex<Vec<(u64, Seen)>>>;

struct Echo {
    log: Log,
}

impl Echo {
    fn record(&self, conn: &Connection, seen: Seen) {
        self.log.lock().unwrap().push((conn.id(), seen));
    }
}

impl Route<Log> for Echo {
    const PATH: &'static str = "/ws";

    async fn accept(_: &mut Parts, log: &Log) -> Result<Self, Response> {
        Ok(Echo { log: log.clone() })
    }

    async fn open(&mut self, conn: &Connection) {
        self.record(conn, Seen::Open);
    }

    async fn message(&mut self, conn: &Connection, msg: Message) {
        if let Message::Text(text) = &msg {
            assert!(
                std::str::from_utf8(text.as_bytes()).is_ok(),
                "invalid UTF-8 text"
            );
        }
        self.record(conn, Seen::Message);
        let _ = conn.send(msg);
    }

    async fn error(&mut self, conn: &Connection, _: &Error) {
        self.record(conn, Seen::Error);
    }

    async fn close(&mut self, conn: &Connection, _: CloseReason) {
        self.record(conn, Seen::Close);
    }
}

fn steps(data: &[u8]) -> (Vec<(usize, Duration)>, &[u8]) {
    let Some((&n, rest)) = data.split_first() else {
        return (Vec::new(), data);
    };
    let n = usize::from(n & 0x0f).min(rest.len() / 2);
    let (plan, stream) = rest.split_at(2 * n);
    let plan = plan
        .chunks_exact(2)
        .map(|s| {
            let delay = match s[1] {
                0 => Duration::ZERO,
                d @ 1..200 => Duration::from_millis(u64::from(d)),
                d => Duration::from_secs(u64::from(d) - 199),
            };
            (usize::from(s[0]), delay)
        })
        .collect();
    (plan, stream)
}

/// Checks one connection's events: open, messages, at most one error,
/// close once, nothing after.
fn check_order(id: u64, seen: &[Seen]) {
    let mut at = 0;
    let ok = (|| {
        if seen.get(at) != Some(&Seen::Open) {
            return false;
        }
        at += 1;
        while seen.get(at) == Some(&Seen::Message) {
            at += 1;
        }
        if seen.get(at) == Some(&Seen::Error) {
            at += 1;
        }
        if seen.get(at) != Some(&Seen::Close) {
            return false;
        }
        at + 1 == seen.len()
    })();
    assert!(ok, "connection {id}: events out of order: {seen:?}");
}

async fn exchange(data: &[u8]) {
    let log: Log = Arc::default();
    let sockets = WebSockets::new(Config::default().max_payload(1024));
    let app: Router = Router::new()
        .websocket::<Echo>(&sockets)
        .with_state(log.clone());

    let (client, server) = tokio::io::duplex(16 * 1024);
    let http = tokio::spawn(async move {
        let service = hyper::service::service_fn(move |request: http::Request<Incoming>| {
            let mut app = app.clone();
            app.call(request.map(Body::new))
        });
        let _ = http1::Builder::new()
            .serve_connection(TokioIo::new(server), service)
            .with_upgrades()
            .await;
    });

    let (mut reader, mut writer) = tokio::io::split(client);
    // Read everything the server writes, so it never waits on us.
    let drain = tokio::spawn(async move {
        let mut buf = vec![0; 16 * 1024];
        while let Ok(n) = reader.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    });

    let (plan, mut stream) = steps(data);
    let plan = if plan.is_empty() {
        vec![(usize::MAX, Duration::ZERO)]
    } else {
        plan
    };
    let mut i = 0;
    let mut empty = 0;
    while !stream.is_empty() && empty < 64 {
        let (len, delay) = plan[i % plan.len()];
        i += 1;
        if len == 0 {
            empty += 1;
        }
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let (piece, rest) = stream.split_at(len.min(stream.len()));
        stream = rest;
        // The server may close first; the remaining bytes then go nowhere.
        match tokio::time::timeout(HANG, writer.write_all(piece)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => break,
            Err(_) => panic!("hang: the server read nothing for {HANG:?}"),
        }
    }
    let _ = writer.shutdown().await;

    if tokio::time::timeout(HANG, http).await.is_err() {
        panic!("hang: HTTP connection not finished {HANG:?} after the client's end");
    }
    if tokio::time::timeout(HANG, sockets.shutdown())
        .await
        .is_err()
    {
        panic!("hang: WebSockets::shutdown not finished within {HANG:?}");
    }
    drop(writer);
    if tokio::time::timeout(HANG, drain).await.is_err() {
        panic!("hang: the server's side never reached EOF");
    }

    let log = log.lock().unwrap();
    let mut ids: Vec<u64> = log.iter().map(|&(id, _)| id).collect();
    ids.sort_unstable();
    ids.dedup();
    for id in ids {
        let seen: Vec<Seen> = log.iter().filter(|e| e.0 == id).map(|e| e.1).collect();
        check_order(id, &seen);
    }
}

fuzz_target!(|data: &[u8]| {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    runtime.block_on(exchange(data));
});
