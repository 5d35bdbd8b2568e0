//! The byte stream under a connection, read on readiness.
//!
//! Waiting for readiness first and reading only then means an idle
//! connection holds no read buffer at all, and one wake-up drains every
//! byte the kernel has, so all the frames a burst delivered are handled —
//! and answered — together.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};

/// A stream the driver can wait on without lending it a buffer.
pub(crate) trait Transport: AsyncWrite + Unpin + Send {
    /// Ready when a read will not block (bytes, end of stream or error).
    /// A poll, not a future, so the driver can wait on reading and writing
    /// the same stream at once.
    fn poll_readable(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;

    /// Waits until a read will not block.
    fn readable(&mut self) -> impl Future<Output = io::Result<()>> + Send {
        std::future::poll_fn(|cx| self.poll_readable(cx))
    }

    /// Reads what is there into `buf` without waiting: `Ok(None)` when
    /// nothing is, `Ok(Some(0))` at the end of the stream.
    fn try_read_buf(&mut self, buf: &mut BytesMut) -> io::Result<Option<usize>>;
}

// Plain TCP is `SharedTcp` (`shared_tcp.rs`): shared with the
// connection's handle, for publishes that write to it directly.

/// Any other stream (TLS, a test pipe, an IO type hyper could not hand
/// back): readiness is found by reading into a small buffer of its own.
#[derive(Debug)]
pub(crate) struct Buffered<IO> {
    io: IO,
    pending: BytesMut,
    /// The result of the last read, until it is taken.
    ready: Option<io::Result<usize>>,
}

/// The read size of [`Buffered`].
const BUFFERED_READ: usize = 4 * 1024;

impl<IO> Buffered<IO> {
    pub(crate) fn new(io: IO) -> Self {
        Self {
            io,
            pending: BytesMut::new(),
            ready: None,
        }
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin + Send> Transport for Buffered<IO> {
    fn poll_readable(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.ready.is_none() {
            self.pending.reserve(BUFFERED_READ);
            let read = std::pin::pin!(self.io.read_buf(&mut self.pending)).poll(cx);
            match read {
                Poll::Ready(result) => self.ready = Some(result),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Ok(()))
    }

    fn try_read_buf(&mut self, buf: &mut BytesMut) -> io::Result<Option<usize>> {
        match self.ready.take() {
            None => Ok(None),
            Some(Err(e)) => Err(e),
            Some(Ok(n)) => {
                if buf.is_empty() {
                    std::mem::swap(buf, &mut self.pending);
                } else {
                    buf.extend_from_slice(&self.pending);
                    self.pending.clear();
                }
                Ok(Some(n))
            }
        }
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Buffered<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn buffered_reports_bytes_then_end_of_stream() {
        let (client, server) = tokio::io::duplex(64);
        let mut server = Buffered::new(server);
        let mut client = client;
        client.write_all(b"abc").await.unwrap();
        let mut buf = BytesMut::new();
        assert_eq!(server.try_read_buf(&mut buf).unwrap(), None);
        server.readable().await.unwrap();
        assert_eq!(server.try_read_buf(&mut buf).unwrap(), Some(3));
        assert_eq!(&buf[..], b"abc");
        drop(client);
        server.readable().await.unwrap();
        assert_eq!(server.try_read_buf(&mut buf).unwrap(), Some(0));
    }
}
