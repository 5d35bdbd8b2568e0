//! Reading an HTTP response head off a raw socket, shared by the tests
//! that drive the server by hand.

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
