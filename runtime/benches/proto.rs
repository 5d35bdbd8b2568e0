//! Microbenchmarks of the sans-IO core's hot paths, in bytes (or messages)
//! per second, beside the same operations elsewhere:
//!
//! - `apply_mask`: wsroute's against fastwebsockets' `unmask` and a plain
//!   byte loop. tungstenite 0.28 keeps its `apply_mask` private
//!   (`protocol::frame::mask` is a private module), so it is not here.
//! - `utf8`: [`Utf8Validator`] against `std::str::from_utf8` and
//!   `simdutf8`, on ASCII and on multibyte text.
//! - `header_parse` / `header_encode`: [`FrameHeader`] against
//!   tungstenite's public `FrameHeader::parse` / `format`, over streams of
//!   many frames, so the figure is bytes of frames handled per second.
//! - `connection`: a [`ServerConnection`] fed a buffer of many small masked
//!   frames, every message echoed back: `receive` + `poll_event` + `send`
//!   + output taken, in messages per second.
//!
//! ```sh
//! cargo bench -p wsroute --features internals --bench proto              # all, about 3 minutes
//! cargo bench -p wsroute --features internals --bench proto -- utf8      # one group
//! ```

use std::hint::black_box;
use std::io::{Cursor, IoSlice};
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use wsroute::proto::internals::{Utf8Validator, apply_mask};
use wsroute::proto::{Event, FrameHeader, OpCode, ServerConnection};

const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

fn apply_mask_group(c: &mut Criterion) {
    let mut group = c.benchmark_group("apply_mask");
    for size in [16, 1024, 64 * 1024, 1024 * 1024] {
        let mut buf: Vec<u8> = (0..size).map(|i| i as u8).collect();
        group.throughput(Throughput::BytesDecimal(size as u64));
        group.bench_with_input(BenchmarkId::new("wsroute", size), &size, |b, _| {
            b.iter(|| apply_mask(black_box(&mut buf), black_box(KEY), 0))
        });
        group.bench_with_input(BenchmarkId::new("fastwebsockets", size), &size, |b, _| {
            b.iter(|| fastwebsockets::unmask(black_box(&mut buf), black_box(KEY)))
        });
        group.bench_with_input(BenchmarkId::new("byte_loop", size), &size, |b, _| {
            b.iter(|| byte_loop(black_box(&mut buf), black_box(KEY)))
        });
    }
    group.finish();
}

/// The definition, one byte at a time: the baseline.
#[inline(never)]
fn byte_loop(buf: &mut [u8], key: [u8; 4]) {
    for (i, byte) in buf.iter_mut().enumerate() {
        *byte ^= key[i & 3];
    }
}

fn utf8_group(c: &mut Criterion) {
    let mut group = c.benchmark_group("utf8");
    let ascii_unit = "{\"user\":\"ada\",\"text\":\"hello, world\",\"n\":42} ";
    // Two-, three- and four-byte code points mixed with ASCII.
    let multibyte_unit = "κόσμε → 日本語のテキスト 😀 naïve café ";
    for (name, unit) in [("ascii", ascii_unit), ("multibyte", multibyte_unit)] {
        for size in [1024, 64 * 1024] {
            let text = text_of_len(unit, size);
            let bytes = text.as_bytes();
            group.throughput(Throughput::BytesDecimal(bytes.len() as u64));
            let id = |who: &str| BenchmarkId::new(format!("{who}/{name}"), size);
            group.bench_function(id("wsroute"), |b| {
                b.iter(|| {
                    let mut v = Utf8Validator::default();
                    v.feed(black_box(bytes)).unwrap();
                    v.finish().unwrap();
                })
            });
            group.bench_function(id("std"), |b| {
                b.iter(|| std::str::from_utf8(black_box(bytes)).is_ok())
            });
            group.bench_function(id("simdutf8"), |b| {
                b.iter(|| simdutf8::basic::from_utf8(black_box(bytes)).is_ok())
            });
        }
    }
    group.finish();
}

/// `unit` repeated, cut to at most `len` bytes on a char boundary.
fn text_of_len(unit: &str, len: usize) -> String {
    let mut text = unit.repeat(len / unit.len() + 1);
    let mut cut = len;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    text.truncate(cut);
    text
}

/// `count` masked client frames of `payload` bytes each, back to back.
fn masked_frames(opcode: OpCode, payload: &[u8], count: usize) -> Vec<u8> {
    let header = FrameHeader {
        fin: true,
        rsv: 0,
        opcode,
        mask: Some(KEY),
        payload_len: payload.len() as u64,
    };
    let mut frame = Vec::new();
    header.encode(&mut frame);
    let start = frame.len();
    frame.extend_from_slice(payload);
    apply_mask(&mut frame[start..], KEY, 0);
    frame.repeat(count)
}

const FRAMES: usize = 1000;

fn header_parse_group(c: &mut Criterion) {
    let mut group = c.benchmark_group("header_parse");
    for payload_len in [16usize, 1024] {
        let stream = masked_frames(OpCode::Binary, &vec![b'x'; payload_len], FRAMES);
        group.throughput(Throughput::BytesDecimal(stream.len() as u64));
        group.bench_with_input(
            BenchmarkId::new("wsroute", payload_len),
            &stream,
            |b, stream| {
                b.iter(|| {
                    let mut at = 0;
                    while let Ok(Some((header, len))) = FrameHeader::parse(&stream[at..]) {
                        at += len + header.payload_len as usize;
                    }
                    black_box(at)
                })
            },
        );
        group.bench_with_input(
            BenchmarkId::new("tungstenite", payload_len),
            &stream,
            |b, stream| {
                use tungstenite::protocol::frame::FrameHeader as TFrameHeader;
                b.iter(|| {
                    let mut cursor = Cursor::new(&stream[..]);
                    while let Ok(Some((_header, len))) = TFrameHeader::parse(&mut cursor) {
                        cursor.set_position(cursor.position() + len);
                    }
                    black_box(cursor.position())
                })
            },
        );
    }
    group.finish();
}

fn header_encode_group(c: &mut Criterion) {
    use tungstenite::protocol::frame::FrameHeader as TFrameHeader;
    use tungstenite::protocol::frame::coding::{Data, OpCode as TOpCode};

    let mut group = c.benchmark_group("header_encode");
    // 2-, 4- and 10-byte headers.
    for payload_len in [16u64, 1024, 64 * 1024] {
        let ours = FrameHeader {
            fin: true,
            rsv: 0,
            opcode: OpCode::Binary,
            mask: None,
            payload_len,
        };
        group.throughput(Throughput::BytesDecimal(
            (ours.encoded_len() * FRAMES) as u64,
        ));
        let mut out = Vec::with_capacity(MAX_HEADERS_LEN);
        group.bench_function(BenchmarkId::new("wsroute", payload_len), |b| {
            b.iter(|| {
                out.clear();
                for _ in 0..FRAMES {
                    black_box(&ours).encode(&mut out);
                }
                black_box(out.len())
            })
        });
        let theirs = TFrameHeader {
            opcode: TOpCode::Data(Data::Binary),
            ..TFrameHeader::default()
        };
        group.bench_function(BenchmarkId::new("tungstenite", payload_len), |b| {
            b.iter(|| {
                out.clear();
                for _ in 0..FRAMES {
                    black_box(&theirs)
                        .format(black_box(payload_len), &mut out)
                        .unwrap();
                }
                black_box(out.len())
            })
        });
    }
    group.finish();
}

const MAX_HEADERS_LEN: usize = 14 * FRAMES;

/// How the echoed frames are taken out of the connection.
#[derive(Clone, Copy)]
enum Output {
    /// `take_output`: one `Vec` of everything.
    Take,
    /// `chunks_vectored` + `advance_output`, as the tokio driver does.
    Vectored,
}

fn connection_group(c: &mut Criterion) {
    let mut group = c.benchmark_group("connection");
    group.throughput(Throughput::Elements(FRAMES as u64));
    let cases = [
        ("binary_16B", OpCode::Binary, 16, Output::Take),
        ("text_16B", OpCode::Text, 16, Output::Take),
        ("text_1KiB", OpCode::Text, 1024, Output::Take),
        ("binary_16B_vectored", OpCode::Binary, 16, Output::Vectored),
    ];
    for (name, opcode, len, output) in cases {
        let payload = text_of_len("echo this, please ", len);
        let input = masked_frames(opcode, payload.as_bytes(), FRAMES);
        let mut ws = ServerConnection::new(None);
        group.bench_function(name, |b| {
            b.iter(|| {
                ws.receive(black_box(&input));
                let mut echoed = 0;
                while let Some(event) = ws.poll_event() {
                    if let Event::Message(msg) = event {
                        ws.send(msg).unwrap();
                        echoed += 1;
                    }
                }
                assert_eq!(echoed, FRAMES);
                match output {
                    Output::Take => black_box(ws.take_output().len()),
                    Output::Vectored => drain_vectored(&mut ws),
                }
            })
        });
    }
    group.finish();
}

/// Takes the output the way a vectored socket write would, 64 slices at a
/// time, without copying.
fn drain_vectored(ws: &mut ServerConnection) -> usize {
    let mut total = 0;
    while ws.output_len() > 0 {
        let mut slices = [IoSlice::new(&[]); 64];
        let n = ws.chunks_vectored(&mut slices);
        let written: usize = slices[..n].iter().map(|s| black_box(s.len())).sum();
        ws.advance_output(written);
        total += written;
    }
    total
}

criterion_group! {
    name = benches;
    // Short runs: the whole suite in about three minutes.
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30);
    targets = apply_mask_group, utf8_group, header_parse_group, header_encode_group,
        connection_group
}
criterion_main!(benches);
