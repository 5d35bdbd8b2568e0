//! Reading an HTTP response head off a raw socket, shared by the tests
//! that drive the server by hand.

use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// Reads up to the end of the response head (`\r\n\r\n`), byte by byte so
/// that nothing behind it is taken; less if the server ends the stream.
pub(crate) async fn read_head(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8];
        if stream.read(&mut byte).await.unwrap() == 0 {
            break;
        }
        head.push(byte[0]);
    }
    String::from_utf8(head).unwrap()
}

/// A masked client frame with the given first byte (FIN, RSV, opcode).
#[allow(dead_code)]
pub(crate) fn masked_frame(first: u8, payload: &[u8]) -> Vec<u8> {
    let key = [1, 2, 3, 4];
    let mut out = vec![first];
    match payload.len() {
        n @ 0..=125 => out.push(0x80 | n as u8),
        n @ 126..=0xFFFF => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&key);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    out
}

/// Reads one server frame: its first byte and payload, within 10 s.
#[allow(dead_code)]
pub(crate) async fn read_frame(stream: &mut TcpStream) -> (u8, Vec<u8>) {
    let read = async {
        let mut head = [0u8; 2];
        stream.read_exact(&mut head).await.unwrap();
        let len = match head[1] & 0x7f {
            126 => u64::from(stream.read_u16().await.unwrap()),
            127 => stream.read_u64().await.unwrap(),
            n => u64::from(n),
        };
        let mut payload = vec![0; len as usize];
        stream.read_exact(&mut payload).await.unwrap();
        (head[0], payload)
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .expect("a frame in time")
}
