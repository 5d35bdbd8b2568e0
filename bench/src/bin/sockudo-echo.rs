//! Echo server on sockudo-ws 3.1, with permessage-deflate: the handshake
//! as the crate's own standalone server (`autobahn/server.rs`) writes it
//! — `handshake::parse_request`, `deflate::negotiate_server_deflate`
//! against a policy, `handshake::build_response` — then its high-level
//! `CompressedWebSocketStream` (or `WebSocketStream` when the client
//! offered nothing), `Config::default()`, text echoed as text and binary
//! as binary.
//!
//! The policy is the one the wsroute default will have ([`policy`]): no
//! context takeover either way, 15-bit windows, and zlib level
//! [`LEVEL`]; the crate compresses messages of at least
//! [`THRESHOLD`] bytes (its default) and sends smaller ones plain.

use std::io;

use bytes::BytesMut;
use futures_util::{SinkExt, StreamExt};
use sockudo_ws::deflate::{DeflateConfig, negotiate_server_deflate};
use sockudo_ws::handshake::{build_response, generate_accept_key, parse_request};
use sockudo_ws::{CompressedWebSocketStream, Config, DeflateWindowBits, Message, WebSocketStream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wsroute_bench::server::{self, ServerArgs};

/// zlib level of the server's compressor: zlib's (and sockudo-ws's)
/// default. Shown in the runner's legend.
pub const LEVEL: u32 = 6;

/// Messages shorter than this go out uncompressed (sockudo-ws's default).
pub const THRESHOLD: usize = 32;

/// What the server agrees to: the wsroute default's parameters.
fn policy() -> DeflateConfig {
    DeflateConfig {
        server_max_window_bits: DeflateWindowBits::Bits15,
        client_max_window_bits: DeflateWindowBits::Bits15,
        server_no_context_takeover: true,
        client_no_context_takeover: true,
        compression_level: LEVEL,
        compression_threshold: THRESHOLD,
    }
}

fn main() -> io::Result<()> {
    server::run("sockudo-echo", |listener, args: ServerArgs| async move {
        loop {
            let (stream, _) = listener.accept().await?;
            server::configure(&stream, &args);
            tokio::spawn(async move {
                // Errors are the load generator hanging up at the end of a run.
                let _ = connection(stream).await;
            });
        }
    })
}

async fn connection(mut stream: TcpStream) -> sockudo_ws::error::Result<()> {
    let mut buf = BytesMut::with_capacity(4096);
    let (deflate, leftover) = loop {
        if stream.read_buf(&mut buf).await? == 0 {
            return Ok(());
        }
        let Some((request, consumed)) = parse_request(&buf)? else {
            continue;
        };
        let accept = generate_accept_key(request.key);
        let negotiated = request
            .extensions
            .and_then(|offers| negotiate_server_deflate(offers, &policy()));
        let answer = negotiated.as_ref().map(|n| n.to_response_header());
        stream
            .write_all(&build_response(&accept, None, answer.as_deref()))
            .await?;
        let leftover = buf.split_off(consumed).freeze();
        break (negotiated.map(|n| n.config), leftover);
    };
    let leftover = (!leftover.is_empty()).then_some(leftover);
    match deflate {
        Some(deflate) => {
            let ws = CompressedWebSocketStream::server_with_leftover(
                stream,
                Config::default(),
                deflate,
                leftover,
            );
            echo(ws).await
        }
        None => {
            echo(WebSocketStream::from_raw_with_leftover(
                stream,
                sockudo_ws::Role::Server,
                Config::default(),
                leftover,
            ))
            .await
        }
    }
}

async fn echo<W>(mut ws: W) -> sockudo_ws::error::Result<()>
where
    W: futures_util::Stream<Item = sockudo_ws::error::Result<Message>>
        + futures_util::Sink<Message, Error = sockudo_ws::Error>
        + Unpin,
{
    while let Some(message) = ws.next().await {
        match message? {
            message @ (Message::Text(_) | Message::Binary(_)) => ws.send(message).await?,
            Message::Close(_) => break,
            // Pongs are answered by the stream itself.
            Message::Ping(_) | Message::Pong(_) => {}
        }
    }
    Ok(())
}
