//! permessage-deflate over a raw socket against a real server on
//! 127.0.0.1: what the handshake answers, compressed messages both ways,
//! and a decompression bomb.

use axum::http::request::Parts;
use axum::response::Response;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use wsroute::{Config, Connection, Error, Message, Route, RouterExt, WebSockets};

mod wire;

/// Echoes; reports its errors back as a text message is not possible
/// after a failure, so they are only counted by the close code seen.
struct Echo<const COMPRESSION: u8>;

impl<const COMPRESSION: u8> Route for Echo<COMPRESSION> {
    const PATH: &'static str = "/ws";
    const MAX_PAYLOAD: Option<u64> = Some(1 << 20);
    // 0: follow the config; 1: off; 2: on.
    const COMPRESSION: Option<bool> = match COMPRESSION {
        1 => Some(false),
        2 => Some(true),
        _ => None,
    };

    async fn accept(_: &mut Parts, _: &()) -> Result<Self, Response> {
        Ok(Echo)
    }

    async fn message(&mut self, conn: &Connection, msg: Message) {
        let _ = conn.send(msg);
    }

    async fn error(&mut self, _: &Connection, _: &Error) {}
}

async fn serve<const C: u8>(config: Config) -> std::net::SocketAddr {
    let sockets = WebSockets::new(config);
    let app = axum::Router::new().websocket::<Echo<C>>(&sockets);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        async move { wsroute::serve(listener, app, &sockets, std::future::pending()).await },
    );
    addr
}

/// Upgrades with `extensions` (if any) and returns the socket and the
/// response head, lowercased.
async fn upgrade(addr: std::net::SocketAddr, extensions: Option<&str>) -> (TcpStream, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let offer = extensions.map_or(String::new(), |e| {
        format!("Sec-WebSocket-Extensions: {e}\r\n")
    });
    let request = format!(
        "GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{offer}\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let head = wire::read_head(&mut stream).await.to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    (stream, head)
}

/// Raw deflate with a sync flush, the trailer stripped (RFC 7692 §7.2.1).
fn compress(data: &[u8]) -> Vec<u8> {
    let mut c = Compress::new_with_window_bits(Compression::new(6), false, 15);
    let mut out = Vec::with_capacity(data.len() + 1024);
    c.compress_vec(data, &mut out, FlushCompress::Sync).unwrap();
    out.truncate(out.len() - 4);
    out
}

fn inflate(payload: &[u8]) -> Vec<u8> {
    let mut input = payload.to_vec();
    input.extend_from_slice(&[0, 0, 0xff, 0xff]);
    let mut out = Vec::with_capacity(1 << 20);
    Decompress::new_with_window_bits(false, 15)
        .decompress_vec(&input, &mut out, FlushDecompress::Sync)
        .unwrap();
    out
}

const CHROMIUM_OFFER: &str = "permessage-deflate; client_max_window_bits";

fn json(n: usize) -> String {
    let rows: Vec<String> = (0..n)
        .map(|i| {
            format!(
                r#"{{"id":{i},"user":"user{}","text":"hello from the room","ts":{}}}"#,
                i % 7,
                1_700_000_000 + i
            )
        })
        .collect();
    format!("[{}]", rows.join(","))
}

#[tokio::test]
async fn a_browser_s_offer_is_answered_and_messages_are_compressed_both_ways() {
    let addr = serve::<0>(Config::default()).await;
    let (mut stream, head) = upgrade(addr, Some(CHROMIUM_OFFER)).await;
    let answer = head
        .lines()
        .find_map(|l| l.strip_prefix("sec-websocket-extensions: "))
        .expect("an extensions header in the 101");
    assert!(answer.starts_with("permessage-deflate"), "{answer}");
    assert!(
        answer.contains("client_no_context_takeover"),
        "asked, to spare an inflater: {answer}"
    );
    assert!(answer.contains("server_no_context_takeover"), "{answer}");

    let text = json(50);
    stream
        .write_all(&wire::masked_frame(0xC1, &compress(text.as_bytes())))
        .await
        .unwrap();
    let (first, payload) = wire::read_frame(&mut stream).await;
    assert_eq!(first, 0xC1, "FIN, RSV1, text");
    assert!(
        payload.len() < text.len() / 3,
        "{} of {}",
        payload.len(),
        text.len()
    );
    assert_eq!(inflate(&payload), text.as_bytes());

    // Uncompressed messages still work, and a short one comes back plain.
    stream
        .write_all(&wire::masked_frame(0x81, b"hi"))
        .await
        .unwrap();
    assert_eq!(wire::read_frame(&mut stream).await, (0x81, b"hi".to_vec()));
}

#[tokio::test]
async fn a_decompression_bomb_is_closed_with_1009() {
    let addr = serve::<0>(Config::default()).await;
    let (mut stream, _) = upgrade(addr, Some(CHROMIUM_OFFER)).await;
    // 64 MiB of zeros, about 64 KiB on the wire, against a 1 MiB limit.
    let bomb = compress(&vec![0u8; 64 << 20]);
    assert!(bomb.len() < 128 << 10);
    stream
        .write_all(&wire::masked_frame(0xC2, &bomb))
        .await
        .unwrap();
    let (first, payload) = wire::read_frame(&mut stream).await;
    assert_eq!(first, 0x88, "a close frame");
    assert_eq!(u16::from_be_bytes([payload[0], payload[1]]), 1009);
}

#[tokio::test]
async fn no_offer_no_extension() {
    let addr = serve::<0>(Config::default()).await;
    let (mut stream, head) = upgrade(addr, None).await;
    assert!(!head.contains("sec-websocket-extensions"), "{head}");
    // RSV1 without the extension breaks the protocol.
    stream
        .write_all(&wire::masked_frame(0xC1, &compress(b"hello")))
        .await
        .unwrap();
    let (first, payload) = wire::read_frame(&mut stream).await;
    assert_eq!(
        (first, u16::from_be_bytes([payload[0], payload[1]])),
        (0x88, 1002)
    );
}

#[tokio::test]
async fn compression_can_be_turned_off_globally_and_per_route() {
    let off = serve::<0>(Config::default().compression(false)).await;
    let (_, head) = upgrade(off, Some(CHROMIUM_OFFER)).await;
    assert!(!head.contains("sec-websocket-extensions"), "{head}");

    let route_off = serve::<1>(Config::default()).await;
    let (_, head) = upgrade(route_off, Some(CHROMIUM_OFFER)).await;
    assert!(!head.contains("sec-websocket-extensions"), "{head}");

    let route_on = serve::<2>(Config::default().compression(false)).await;
    let (_, head) = upgrade(route_on, Some(CHROMIUM_OFFER)).await;
    assert!(
        head.contains("sec-websocket-extensions: permessage-deflate"),
        "{head}"
    );
}
