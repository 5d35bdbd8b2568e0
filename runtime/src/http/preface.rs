//! Telling HTTP/2 with prior knowledge from HTTP/1.1 by the first bytes a
//! client sends, without waiting on a timer.
//!
//! Nearly always the first peek decides, and the bare `TcpStream` goes to
//! hyper (and comes back whole on upgrade). A client whose first bytes are
//! a part of the preface (`P`, `PRI * HT`…) has them read instead, so the
//! task sleeps until more arrive rather than peeking again and again —
//! peek returns the same bytes at once, and a 1 ms retry let a thousand
//! such clients hold 38 % of a core for the whole handshake timeout. What
//! was read is replayed to hyper by [`Prefixed`].

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::serve::HttpVersion;

/// What an HTTP/2 client with prior knowledge sends first (RFC 9113 §3.4).
const H2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Which HTTP `tcp` speaks, and the bytes read from it to tell (empty
/// when a peek told, which is the usual case: nothing is consumed).
pub(crate) async fn http_version(tcp: &TcpStream) -> io::Result<(HttpVersion, Vec<u8>)> {
    let mut head = [0u8; H2_PREFACE.len()];
    let n = tcp.peek(&mut head).await?;
    if let Some(version) = decided(&head[..n]) {
        return Ok((version, Vec::new()));
    }
    // Part of the preface: take it, and wait on readiness for the rest.
    let mut len = 0;
    loop {
        tcp.readable().await?;
        match tcp.try_read(&mut head[len..]) {
            // At the end of the stream, hyper sees it too and ends.
            Ok(0) => return Ok((HttpVersion::Http1, head[..len].to_vec())),
            Ok(n) => len += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
        if let Some(version) = decided(&head[..len]) {
            return Ok((version, head[..len].to_vec()));
        }
    }
}

/// Decided at the first byte that differs from the preface, or once all of
/// it is there; `None` while what came is a part of it.
fn decided(head: &[u8]) -> Option<HttpVersion> {
    if head.is_empty() || head != &H2_PREFACE[..head.len()] {
        Some(HttpVersion::Http1)
    } else if head.len() == H2_PREFACE.len() {
        Some(HttpVersion::Http2)
    } else {
        None
    }
}

/// A stream whose first bytes were already read: they are read again first.
#[derive(Debug)]
pub(crate) struct Prefixed<IO> {
    head: Vec<u8>,
    read: usize,
    io: IO,
}

impl<IO> Prefixed<IO> {
    pub(crate) fn new(head: Vec<u8>, io: IO) -> Self {
        Prefixed { head, read: 0, io }
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Prefixed<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let rest = &this.head[this.read..];
        if rest.is_empty() {
            return Pin::new(&mut this.io).poll_read(cx, buf);
        }
        let n = rest.len().min(buf.remaining());
        buf.put_slice(&rest[..n]);
        this.read += n;
        if this.read == this.head.len() {
            this.head = Vec::new();
            this.read = 0;
        }
        Poll::Ready(Ok(()))
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Prefixed<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    async fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        (client, server)
    }

    #[tokio::test]
    async fn a_whole_request_is_told_by_a_peek_and_left_in_the_socket() {
        let (mut client, server) = pair().await;
        client.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        let (version, head) = http_version(&server).await.unwrap();
        assert_eq!((version, head.len()), (HttpVersion::Http1, 0));
        let mut first = [0u8; 3];
        server.peek(&mut first).await.unwrap();
        assert_eq!(&first, b"GET");
    }

    #[tokio::test]
    async fn a_preface_in_pieces_is_read_and_replayed() {
        let (mut client, server) = pair().await;
        client.write_all(b"PRI * HT").await.unwrap();
        let sniff = tokio::spawn(async move {
            let (version, head) = http_version(&server).await.unwrap();
            (version, head, server)
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        client.write_all(&H2_PREFACE[8..]).await.unwrap();
        client.write_all(b"rest").await.unwrap();
        let (version, head, server) = sniff.await.unwrap();
        assert_eq!(version, HttpVersion::Http2);
        let mut replayed = Prefixed::new(head, server);
        let mut all = vec![0u8; H2_PREFACE.len() + 4];
        replayed.read_exact(&mut all).await.unwrap();
        assert_eq!(&all[..24], H2_PREFACE);
        assert_eq!(&all[24..], b"rest");
    }

    #[tokio::test]
    async fn a_method_that_starts_like_the_preface_is_http1_with_its_bytes() {
        let (mut client, server) = pair().await;
        client.write_all(b"P").await.unwrap();
        let sniff = tokio::spawn(async move { http_version(&server).await.unwrap() });
        tokio::time::sleep(Duration::from_millis(20)).await;
        client.write_all(b"UT / HTTP/1.1\r\n").await.unwrap();
        let (version, head) = sniff.await.unwrap();
        assert_eq!(version, HttpVersion::Http1);
        assert_eq!(head, b"PUT / HTTP/1.1\r\n");
    }

    // A client that sends part of the preface and stops must cost nothing
    // until it sends more: the task waits on the socket, not on a timer.
    // Counted in polls under a paused clock, where a retry timer fires
    // as fast as the runtime can advance it.
    #[tokio::test(start_paused = true)]
    async fn a_stalled_preface_is_not_polled_again_until_bytes_come() {
        let (mut client, server) = pair().await;
        client.write_all(b"P").await.unwrap();
        let polls = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&polls);
        let mut sniff = Box::pin(http_version(&server));
        let task = std::future::poll_fn(move |cx| {
            counted.fetch_add(1, Ordering::Relaxed);
            sniff.as_mut().poll(cx)
        });
        let waited = tokio::time::timeout(Duration::from_secs(5), task).await;
        assert!(waited.is_err(), "decided without a second byte");
        let polls = polls.load(Ordering::Relaxed);
        assert!(polls <= 4, "polled {polls} times in 5 s while nothing came");
    }
}
