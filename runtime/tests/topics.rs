//! Topics on one node, with real clients on 127.0.0.1: who gets a
//! publish, counts, leaving on close, ordering, slow subscribers, and
//! subscribers that negotiated permessage-deflate.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::http::request::Parts;
use axum::response::Response;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
use futures_util::{SinkExt, StreamExt};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as WireMessage;
use wsroute::{
    Config, Connection, DEFAULT_MAX_PAYLOAD, Error, Message, Route, RouterExt, SlowConsumer,
    WebSockets,
};

mod wire;

/// Subscribes to the room of its query (`?room=NAME`, default `lobby`) on
/// open; text commands make it act:
/// - `pub TOPIC TEXT`: publish TEXT to TOPIC, answer `published N`;
/// - `burst TOPIC N`: publish `TOPIC 0` … `TOPIC N-1`, answer `burst done`;
/// - `sleep MS`: count itself in [`SLEEPING`], wait MS milliseconds,
///   answer `slept`;
/// - `sub TOPIC` / `unsub TOPIC`: answer `subscribed TOPIC` / `unsubscribed TOPIC`;
/// - anything else is answered `echo …`.
struct Member {
    room: String,
}

/// Handlers that started a `sleep`, so far.
static SLEEPING: AtomicUsize = AtomicUsize::new(0);

impl Route for Member {
    const PATH: &'static str = "/ws";
    const MAX_PAYLOAD: Option<u64> = Some(DEFAULT_MAX_PAYLOAD);

    async fn accept(parts: &mut Parts, _: &()) -> Result<Self, Response> {
        let room = parts
            .uri
            .query()
            .and_then(|q| q.strip_prefix("room="))
            .unwrap_or("lobby");
        Ok(Self { room: room.into() })
    }

    async fn open(&mut self, conn: &Connection) {
        assert_eq!(conn.subscribe(&self.room), Ok(true));
    }

    async fn message(&mut self, conn: &Connection, msg: Message) {
        let text = msg.as_text().unwrap_or_default().to_owned();
        let mut words = text.splitn(3, ' ');
        let reply = match (words.next(), words.next(), words.next()) {
            (Some("pub"), Some(topic), Some(body)) => {
                let report = conn.publish(topic, body.to_owned());
                format!("published {}", report.delivered)
            }
            (Some("burst"), Some(topic), Some(n)) => {
                for i in 0..n.parse::<usize>().unwrap() {
                    let report = conn.publish(topic, format!("{topic} {i}"));
                    assert_eq!(report.skipped(), 0);
                }
                "burst done".into()
            }
            (Some("sleep"), Some(ms), None) => {
                SLEEPING.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(ms.parse().unwrap())).await;
                "slept".into()
            }
            (Some("sub"), Some(topic), None) => {
                conn.subscribe(topic).unwrap();
                format!("subscribed {topic}")
            }
            (Some("unsub"), Some(topic), None) => {
                assert!(conn.unsubscribe(topic));
                format!("unsubscribed {topic}")
            }
            _ => format!("echo {text}"),
        };
        conn.send_text(reply).unwrap();
    }

    async fn error(&mut self, _: &Connection, _: &Error) {}
}

struct Server {
    addr: std::net::SocketAddr,
    sockets: WebSockets,
}

async fn serve(config: Config) -> Server {
    let sockets = WebSockets::new(config);
    let app = axum::Router::new().websocket::<Member>(&sockets);
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

type Client = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

/// Connects to `room` and waits until the server counts it subscribed.
async fn join(server: &Server, room: &str) -> Client {
    let before = server.sockets.subscribers(room);
    let url = format!("ws://{}/ws?room={room}", server.addr);
    let client = tokio_tungstenite::connect_async(url).await.unwrap().0;
    until(|| server.sockets.subscribers(room) == before + 1).await;
    client
}

/// Waits up to five seconds for `done`.
async fn until(done: impl Fn() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < Duration::from_secs(5), "gave up waiting");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn next_text(client: &mut Client) -> String {
    let msg = tokio::time::timeout(Duration::from_secs(10), client.next())
        .await
        .expect("a message in time")
        .expect("the stream goes on")
        .unwrap();
    msg.into_text().unwrap().to_string()
}

/// Sends `command` and returns the answer.
async fn ask(client: &mut Client, command: &str) -> String {
    client.send(WireMessage::text(command)).await.unwrap();
    next_text(client).await
}

/// Nothing arrives within a short while.
async fn nothing_more(client: &mut Client) {
    let next = tokio::time::timeout(Duration::from_millis(100), client.next()).await;
    assert!(next.is_err(), "unexpected {next:?}");
}

#[tokio::test]
async fn a_publish_reaches_the_topic_s_subscribers_only() {
    let server = serve(Config::default()).await;
    let mut a1 = join(&server, "a").await;
    let mut a2 = join(&server, "a").await;
    let mut b1 = join(&server, "b").await;
    assert_eq!(server.sockets.subscribers("a"), 2);
    assert_eq!(server.sockets.subscribers("b"), 1);
    assert_eq!(server.sockets.subscribers("c"), 0);
    assert_eq!(server.sockets.topic_count(), 2);

    // From a connection: the other member of the room, not the sender.
    assert_eq!(ask(&mut a1, "pub a hello").await, "published 1");
    assert_eq!(next_text(&mut a2).await, "hello");
    nothing_more(&mut a1).await;
    nothing_more(&mut b1).await;

    // From the server: everyone in the room.
    let report = server.sockets.publish("a", "to all of a");
    assert_eq!((report.delivered, report.skipped()), (2, 0));
    assert_eq!(next_text(&mut a1).await, "to all of a");
    assert_eq!(next_text(&mut a2).await, "to all of a");
    nothing_more(&mut b1).await;
    assert_eq!(server.sockets.publish("nobody", "x").delivered, 0);

    // A publisher need not subscribe to the topic.
    assert_eq!(ask(&mut b1, "pub a from b").await, "published 2");
    assert_eq!(next_text(&mut a1).await, "from b");
    assert_eq!(next_text(&mut a2).await, "from b");

    // JSON, as for send_json.
    let report = server.sockets.publish_json("b", &[1, 2, 3]).unwrap();
    assert_eq!(report.delivered, 1);
    assert_eq!(next_text(&mut b1).await, "[1,2,3]");

    // Subscribe and unsubscribe at run time.
    assert_eq!(ask(&mut b1, "sub a").await, "subscribed a");
    assert_eq!(server.sockets.subscribers("a"), 3);
    assert_eq!(server.sockets.publish("a", "three").delivered, 3);
    for client in [&mut a1, &mut a2, &mut b1] {
        assert_eq!(next_text(client).await, "three");
    }
    assert_eq!(ask(&mut a2, "unsub a").await, "unsubscribed a");
    assert_eq!(server.sockets.subscribers("a"), 2);
    assert_eq!(server.sockets.publish("a", "two").delivered, 2);
    assert_eq!(next_text(&mut a1).await, "two");
    assert_eq!(next_text(&mut b1).await, "two");
    nothing_more(&mut a2).await;
}

#[tokio::test]
async fn a_closed_connection_leaves_its_topics() {
    let server = serve(Config::default()).await;
    let mut a = join(&server, "a").await;
    let mut stays = join(&server, "a").await;
    assert_eq!(ask(&mut a, "sub other").await, "subscribed other");
    assert_eq!(server.sockets.topic_count(), 2);

    a.close(None).await.unwrap();
    until(|| server.sockets.subscribers("a") == 1).await;
    assert_eq!(server.sockets.subscribers("other"), 0);
    assert_eq!(server.sockets.topic_count(), 1, "`other` is gone");

    // A client that just drops its TCP connection leaves too.
    assert_eq!(ask(&mut stays, "still here").await, "echo still here");
    drop(stays);
    until(|| server.sockets.topic_count() == 0).await;
    assert_eq!(server.sockets.subscribers("a"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_keep_their_order_per_publisher_and_beside_direct_sends() {
    const N: usize = 1000;
    let server = serve(Config::default()).await;
    let subscriber = join(&server, "room").await;
    let mut publisher = join(&server, "pubs").await;

    // Three streams at once towards `subscriber`: a connection's burst,
    // a task's publishes, and the answers to its own messages.
    publisher
        .send(WireMessage::text(format!("burst room {N}")))
        .await
        .unwrap();
    let sockets = server.sockets.clone();
    // Corked: what it publishes between two yields leaves at the yield.
    let from_task = tokio::spawn(wsroute::corked(async move {
        for i in 0..N {
            assert_eq!(sockets.publish("room", format!("task {i}")).delivered, 1);
            if i % 50 == 0 {
                tokio::task::yield_now().await;
            }
        }
    }));
    let (mut sink, mut stream) = subscriber.split();
    let replies = tokio::spawn(async move {
        for i in 0..N {
            sink.send(WireMessage::text(format!("mine {i}")))
                .await
                .unwrap();
        }
        sink
    });

    let (mut burst, mut task, mut mine) = (0, 0, 0);
    while burst + task + mine < 3 * N {
        let msg = tokio::time::timeout(Duration::from_secs(20), stream.next())
            .await
            .expect("in time")
            .unwrap()
            .unwrap();
        let text = msg.into_text().unwrap();
        let (kind, n) = text.rsplit_once(' ').unwrap();
        let n: usize = n.parse().unwrap();
        let next = match kind {
            "room" => &mut burst,
            "task" => &mut task,
            "echo mine" => &mut mine,
            other => panic!("unexpected {other:?}"),
        };
        assert_eq!(n, *next, "{kind} out of order");
        *next += 1;
    }
    from_task.await.unwrap();
    let _sink = replies.await.unwrap();
    assert_eq!(next_text(&mut publisher).await, "burst done");
}

/// Upgrades a raw socket into `room` with `extensions` offered, and waits
/// until it is subscribed; returns the socket and the response head.
async fn raw_join(server: &Server, room: &str, extensions: &str) -> (TcpStream, String) {
    let before = server.sockets.subscribers(room);
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let request = format!(
        "GET /ws?room={room} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n{extensions}\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let head = wire::read_head(&mut stream).await.to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    until(|| server.sockets.subscribers(room) == before + 1).await;
    (stream, head)
}

/// Fills a subscriber that never reads; returns the reports, in order.
async fn flood(server: &Server, topic: &str) -> Vec<wsroute::Published> {
    let payload = vec![b'x'; 16 * 1024];
    let mut reports = Vec::new();
    let start = Instant::now();
    // Until a publish finds the queue full, then a few more: the socket's
    // buffers take what the task writes, the queue the rest, up to its
    // bound.
    while reports.len() < 20_000 {
        let report = server
            .sockets
            .publish(topic, Message::Binary(payload.clone().into()));
        reports.push(report);
        if report.skipped() > 0 && reports.len() % 64 == 0 {
            break;
        }
        if reports.len() % 16 == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "publish never waits"
    );
    reports
}

#[tokio::test]
async fn a_subscriber_that_does_not_read_is_skipped_and_its_queue_stays_bounded() {
    let server = serve(Config::default().max_send_queue(64 * 1024)).await;
    let (_never_reads, _) = raw_join(&server, "t", "").await;
    let reports = flood(&server, "t").await;
    let first_full = reports.iter().position(|r| r.full > 0).expect("fills up");
    // Once full, a burst of publishes without a pause queues at most the
    // bound (4 × 16 KiB), however many there are.
    let before = reports[..first_full]
        .iter()
        .map(|r| r.delivered)
        .sum::<usize>();
    let burst: Vec<_> = (0..1000)
        .map(|_| server.sockets.publish("t", vec![b'y'; 16 * 1024]))
        .collect();
    let queued = burst.iter().map(|r| r.delivered).sum::<usize>();
    assert!(queued <= 4, "{queued} queued past the bound");
    assert!(burst.iter().filter(|r| r.full == 1).count() >= 996);
    eprintln!("{before} messages of 16 KiB queued before the first refusal");
    // What the socket's buffers take, plus the queue's bound; far below
    // the server's `max_buffered` budget (256 MiB), which an unbounded
    // queue would fill first.
    assert!(before > 0);
    assert!(before * 16 * 1024 < 48 << 20, "{before} queued");
    // The connection is still open: the default policy only refuses.
    assert_eq!(server.sockets.subscribers("t"), 1);
    assert_eq!(reports.last().unwrap().closed, 0);
}

#[tokio::test]
async fn a_subscriber_that_does_not_read_is_closed_with_1008_under_slow_consumer_close() {
    let config = Config::default()
        .max_send_queue(64 * 1024)
        .slow_consumer(SlowConsumer::Close)
        // Longer than `until` waits: the count must drop before it.
        .close_timeout(Duration::from_secs(30));
    let server = serve(config).await;
    let (mut never_reads, _) = raw_join(&server, "t", "").await;
    let publish = || server.sockets.publish("t", vec![b'x'; 16 * 1024]);
    while publish().full == 0 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    // The subscriber is closing: skipped as such, until its task has seen
    // the close, and then no longer a subscriber at all, though its close
    // handshake waits for a client that does not read.
    let report = publish();
    assert_eq!((report.delivered, report.full), (0, 0));
    until(|| server.sockets.subscribers("t") == 0).await;
    assert_eq!(publish().skipped(), 0);
    // Reading at last: the queued messages, then close 1008.
    let code = loop {
        let (first, payload) = wire::read_frame(&mut never_reads).await;
        if first == 0x88 {
            break u16::from_be_bytes([payload[0], payload[1]]);
        }
        assert_eq!(first, 0x82);
    };
    assert_eq!(code, 1008);
    never_reads
        .write_all(&wire::masked_frame(0x88, &1008u16.to_be_bytes()))
        .await
        .unwrap();
    until(|| server.sockets.topic_count() == 0).await;
}

/// Sends `text` compressed; its echo comes back compressed.
async fn round_trip(stream: &mut TcpStream, ends: &mut (Compress, Decompress), text: &str) {
    let sent = compress(&mut ends.0, text.as_bytes());
    stream
        .write_all(&wire::masked_frame(0xC1, &sent))
        .await
        .unwrap();
    let (first, payload) = wire::read_frame(stream).await;
    assert_eq!(first, 0xC1, "FIN, RSV1, text");
    assert!(payload.len() < text.len() / 3);
    assert_eq!(
        inflate(&mut ends.1, &payload),
        format!("echo {text}").as_bytes()
    );
}

/// Raw deflate with a sync flush, the trailer stripped (RFC 7692 §7.2.1),
/// from a compressor that keeps its context.
fn compress(c: &mut Compress, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 1024);
    c.compress_vec(data, &mut out, FlushCompress::Sync).unwrap();
    out.truncate(out.len() - 4);
    out
}

fn inflate(d: &mut Decompress, payload: &[u8]) -> Vec<u8> {
    let mut input = payload.to_vec();
    input.extend_from_slice(&[0, 0, 0xff, 0xff]);
    let mut out = Vec::with_capacity(1 << 20);
    d.decompress_vec(&input, &mut out, FlushDecompress::Sync)
        .unwrap();
    out
}

#[tokio::test]
async fn a_subscriber_with_permessage_deflate_gets_published_messages_and_keeps_its_context() {
    // Context takeover both ways: the server's compressor keeps its window
    // between messages, so a publish that bypassed it wrongly would break
    // the next compressed message.
    let deflate = wsroute::proto::DeflateConfig {
        server_context_takeover: true,
        client_context_takeover: true,
        ..Default::default()
    };
    let server = serve(Config::default().deflate(deflate)).await;
    let (mut stream, head) = raw_join(
        &server,
        "z",
        "Sec-WebSocket-Extensions: permessage-deflate\r\n",
    )
    .await;
    assert!(head.contains("permessage-deflate"), "{head}");
    assert!(!head.contains("server_no_context_takeover"), "{head}");
    let compressor = Compress::new_with_window_bits(Compression::new(6), false, 15);
    let inflater = Decompress::new_with_window_bits(false, 15);

    let text = "a message long enough to be compressed, repeated: ".repeat(20);
    let mut ends = (compressor, inflater);
    round_trip(&mut stream, &mut ends, &text).await;
    round_trip(&mut stream, &mut ends, &text).await;

    let report = server.sockets.publish("z", text.clone());
    assert_eq!(report.delivered, 1);
    let (first, payload) = wire::read_frame(&mut stream).await;
    assert_eq!(first, 0x81, "published uncompressed");
    assert_eq!(payload, text.as_bytes());

    // The compressor's context is intact on both sides.
    round_trip(&mut stream, &mut ends, &text).await;
    let big = "x".repeat(100_000);
    assert_eq!(server.sockets.publish("z", big.clone()).delivered, 1);
    assert_eq!(
        wire::read_frame(&mut stream).await,
        (0x81, big.into_bytes())
    );
    round_trip(&mut stream, &mut ends, &text).await;
}

#[tokio::test]
async fn subscribers_with_the_default_deflate_get_published_messages_compressed() {
    let server = serve(Config::default()).await;
    let offer = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n";
    let (mut first, head) = raw_join(&server, "z", offer).await;
    assert!(head.contains("server_no_context_takeover"), "{head}");
    let (mut second, _) = raw_join(&server, "z", offer).await;
    let (mut plain, _) = raw_join(&server, "z", "").await;
    let text = "a message long enough to be compressed, repeated: ".repeat(20);
    assert_eq!(server.sockets.publish("z", text.clone()).delivered, 3);
    for stream in [&mut first, &mut second] {
        let (first_byte, payload) = wire::read_frame(stream).await;
        assert_eq!(first_byte, 0xC1, "FIN, RSV1, text");
        assert!(payload.len() < text.len() / 4);
        // A fresh inflater for each message: no context is kept.
        let mut inflater = Decompress::new_with_window_bits(false, 15);
        assert_eq!(inflate(&mut inflater, &payload), text.as_bytes());
    }
    assert_eq!(
        wire::read_frame(&mut plain).await,
        (0x81, text.into_bytes())
    );
}

/// Publishes `n` binary messages to `topic` from a task of their own, each
/// of its own length and filling (see [`check_big`]), pausing now and
/// then; returns how many subscribers each reached, in all.
fn publish_big(server: &Server, topic: &'static str, n: usize) -> tokio::task::JoinHandle<usize> {
    let sockets = server.sockets.clone();
    tokio::spawn(async move {
        let mut delivered = 0;
        for i in 0..n {
            let body = vec![b'a' + (i % 26) as u8; 64 * 1024 + i];
            delivered += sockets.publish(topic, body).delivered;
            if i % 8 == 0 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        delivered
    })
}

/// Message `i` of [`publish_big`], whole.
fn check_big(i: usize, body: &[u8]) {
    assert_eq!(body.len(), 64 * 1024 + i, "message {i}");
    assert!(
        body.iter().all(|&b| b == b'a' + (i % 26) as u8),
        "message {i}"
    );
}

// Publishes to an idle subscriber are written to its socket by the
// publishing task; a frame the socket takes in part is finished by the
// subscriber's task, before the pongs and the close it queued meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_publishes_to_a_slow_reader_stay_whole_beside_its_pongs_and_its_close() {
    const N: usize = 200;
    let server = serve(Config::default().max_send_queue(64 << 20)).await;
    let (mut sink, mut stream) = join(&server, "big").await.split();
    let publisher = publish_big(&server, "big", N);
    let (mut pings, mut pongs, mut i) = (0, 0, 0);
    while i < N {
        if pings < 100 {
            sink.send(WireMessage::Ping(pings.to_string().into()))
                .await
                .unwrap();
            pings += 1;
        }
        let msg = tokio::time::timeout(Duration::from_secs(20), stream.next())
            .await
            .expect("in time")
            .unwrap()
            .unwrap();
        match msg {
            WireMessage::Binary(body) => {
                check_big(i, &body);
                i += 1;
                if i % 20 == 0 {
                    // Slow: the socket fills and the publisher's writes
                    // find it full or take a frame in part.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            WireMessage::Pong(payload) => {
                assert_eq!(&payload[..], pongs.to_string().as_bytes());
                pongs += 1;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(publisher.await.unwrap(), N, "nothing skipped");

    // The client closes while publishes keep coming: every frame up to
    // the server's close is whole, and the close comes last.
    let publisher = publish_big(&server, "big", N);
    tokio::time::sleep(Duration::from_millis(5)).await;
    sink.send(WireMessage::Close(None)).await.unwrap();
    let mut after = 0;
    loop {
        let next = tokio::time::timeout(Duration::from_secs(20), stream.next())
            .await
            .expect("in time");
        match next {
            Some(Ok(WireMessage::Binary(body))) => {
                check_big(after, &body);
                after += 1;
            }
            Some(Ok(WireMessage::Pong(_))) => pongs += 1,
            Some(Ok(WireMessage::Close(_))) => {}
            None => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(pongs, pings);
    let delivered = publisher.await.unwrap();
    assert!(after <= delivered, "{after} received, {delivered} accepted");
    until(|| server.sockets.subscribers("big") == 0).await;
}

// A pong the subscriber's task queued while a publish wrote to its socket
// directly, and the socket took that frame in part: the pong waits for the
// rest of the frame.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_written_in_part_by_a_publish_is_finished_before_a_pong_queued_meanwhile() {
    let server = serve(Config::default().max_send_queue(64 << 20)).await;
    let (mut client, _) = raw_join(&server, "part", "").await;
    // In one write, so one read: the ping's pong is queued, then the
    // handler sleeps with the task still counted idle for publishes.
    let mut both = wire::masked_frame(0x89, b"p");
    both.extend(wire::masked_frame(0x81, b"sleep 1000"));
    let sleeping = SLEEPING.load(Ordering::SeqCst);
    client.write_all(&both).await.unwrap();
    // Not a fixed pause: on a loaded machine the handler may not have
    // started yet, and the publish would then go ahead of the pong.
    until(|| SLEEPING.load(Ordering::SeqCst) > sleeping).await;
    // More than the loopback socket takes while the client does not read.
    let big = vec![b'z'; 8 << 20];
    assert_eq!(server.sockets.publish("part", big.clone()).delivered, 1);
    let (first, payload) = wire::read_frame(&mut client).await;
    assert_eq!(first, 0x82);
    assert!(payload == big, "the published frame, whole");
    assert_eq!(wire::read_frame(&mut client).await, (0x8A, b"p".to_vec()));
    assert_eq!(
        wire::read_frame(&mut client).await,
        (0x81, b"slept".to_vec())
    );
}

/// Message `i` of [`a_corked_burst_to_a_reader_that_stops_comes_out_whole_and_in_order`]:
/// its number, then a filling of its own length (1 to 3000 bytes more).
fn small(i: u32) -> Vec<u8> {
    let mut body = i.to_le_bytes().to_vec();
    body.resize(4 + (i as usize * 7919) % 3000 + 1, b'a' + (i % 26) as u8);
    body
}

// Corked publishes of small frames leave packed together, many frames to
// a write; a reader that stops reading makes a write take a pack in part,
// cut anywhere in a frame. What follows must pick up at that byte.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corked_burst_to_a_reader_that_stops_comes_out_whole_and_in_order() {
    const N: u32 = 20_000;
    let server = serve(Config::default().max_send_queue(256 << 20)).await;
    let (mut client, _) = raw_join(&server, "packs", "").await;
    let sockets = server.sockets.clone();
    let publisher = tokio::spawn(wsroute::corked(async move {
        for i in 0..N {
            let report = sockets.publish("packs", small(i));
            assert_eq!(report.delivered, 1, "message {i}");
            // Packs of a varying number of frames, some past one write.
            if i % (7 + i % 50) == 0 {
                tokio::task::yield_now().await;
            }
        }
    }));
    // Some 30 MB: more than the loopback socket holds while nobody reads.
    tokio::time::sleep(Duration::from_millis(300)).await;
    for i in 0..N {
        let (first, payload) = wire::read_frame(&mut client).await;
        assert_eq!(first, 0x82, "message {i}");
        assert!(payload == small(i), "message {i} whole and in its place");
    }
    publisher.await.unwrap();
}

// A corked write packs a subscriber's frames once and sends the same pack
// to the next subscriber that holds the very same frames. Here the
// subscribers' queues share a head and part ways (`a` only, `a` and `b`
// interleaved, `b` only), and the two topics' messages are of the same
// lengths: each subscriber must still get its own frames.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corked_subscribers_of_different_topics_each_get_their_own_frames() {
    const N: usize = 3000;
    let server = serve(Config::default().max_send_queue(64 << 20)).await;
    let mut a1 = join(&server, "a").await;
    let mut both = join(&server, "a").await;
    assert_eq!(ask(&mut both, "sub b").await, "subscribed b");
    let mut b = join(&server, "b").await;
    let mut a2 = join(&server, "a").await;
    let body = |topic: &str, i: usize| format!("{topic} {i:05} {}", "x".repeat(i % 97));
    let sockets = server.sockets.clone();
    let publisher = tokio::spawn(wsroute::corked(async move {
        for i in 0..N {
            // Runs of `a` with a `b` now and then, in bursts of varying length.
            assert_eq!(sockets.publish("a", body("a", i)).delivered, 3);
            if i % 3 == 0 {
                assert_eq!(sockets.publish("b", body("b", i)).delivered, 2);
            }
            if i % (5 + i % 40) == 0 {
                tokio::task::yield_now().await;
            }
        }
    }));
    for i in 0..N {
        assert_eq!(next_text(&mut a1).await, body("a", i));
        assert_eq!(next_text(&mut a2).await, body("a", i));
        assert_eq!(next_text(&mut both).await, body("a", i));
        if i % 3 == 0 {
            assert_eq!(next_text(&mut both).await, body("b", i));
            assert_eq!(next_text(&mut b).await, body("b", i));
        }
    }
    publisher.await.unwrap();
    for client in [&mut a1, &mut a2, &mut both, &mut b] {
        nothing_more(client).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corked_bursts_from_two_threads_to_the_same_subscribers_keep_each_publisher_s_order() {
    const N: usize = 4000;
    let server = serve(Config::default().max_send_queue(64 << 20)).await;
    let mut clients = [join(&server, "a").await, join(&server, "a").await];
    let body = |p: usize, i: usize| format!("p{p} {i:05} {}", "y".repeat(i % 53));
    let publishers: Vec<_> = (0..2)
        .map(|p| {
            let sockets = server.sockets.clone();
            tokio::spawn(wsroute::corked(async move {
                for i in 0..N {
                    assert_eq!(sockets.publish("a", body(p, i)).delivered, 2);
                    if i % (3 + (i + p) % 29) == 0 {
                        tokio::task::yield_now().await;
                    }
                }
            }))
        })
        .collect();
    for client in &mut clients {
        let mut next = [0; 2];
        for _ in 0..2 * N {
            let text = next_text(client).await;
            let p = usize::from(text.as_bytes()[1] - b'0');
            assert!(p < 2, "{text}");
            assert_eq!(text, body(p, next[p]), "publisher {p}'s next");
            next[p] += 1;
        }
    }
    for publisher in publishers {
        publisher.await.unwrap();
    }
    for client in &mut clients {
        nothing_more(client).await;
    }
}
