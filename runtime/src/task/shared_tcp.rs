//! A plain TCP connection shared by its task and the tasks that publish to
//! it.
//!
//! A publish to an idle subscriber writes the frame to the subscriber's
//! socket from the publishing task (see `Connection::send_frame`): one
//! `send` per subscriber, as a hand-written fan-out over raw sockets
//! would do, instead of a wake-up, a poll and a drain of the subscriber's
//! task. Both sides write through tokio's readiness (`try_write` on a
//! shared `&TcpStream`), so neither one's view of the socket goes stale;
//! the send queue's lock decides which side may write at a time.

use std::io::{self, IoSlice};
use std::net::Shutdown;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::BytesMut;
use tokio::io::{AsyncWrite, Interest};
use tokio::net::TcpStream;

use super::transport::Transport;

/// The task's end of a shared TCP socket.
#[derive(Debug)]
pub(crate) struct SharedTcp(Arc<TcpStream>);

impl SharedTcp {
    pub(crate) fn new(tcp: Arc<TcpStream>) -> Self {
        Self(tcp)
    }
}

impl Transport for SharedTcp {
    fn poll_readable(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.0.poll_read_ready(cx)
    }

    fn try_read_buf(&mut self, buf: &mut BytesMut) -> io::Result<Option<usize>> {
        // A read that does not fill the buffer shows the socket is
        // drained: reported to `try_io` as "would block", it clears the
        // readiness, so the next wait does not wake at once only for a
        // `recv` to find nothing (what `poll_read` does on an owned
        // stream, which a shared one cannot call).
        let mut short = None;
        let read = self.0.try_io(Interest::READABLE, || {
            let room = buf.capacity() - buf.len();
            let n = self.0.try_read_buf(buf)?;
            if n > 0 && n < room {
                short = Some(n);
                return Err(io::ErrorKind::WouldBlock.into());
            }
            Ok(n)
        });
        match read {
            Ok(n) => Ok(Some(n)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(short),
            Err(e) => Err(e),
        }
    }
}

impl AsyncWrite for SharedTcp {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        loop {
            ready!(self.0.poll_write_ready(cx))?;
            // Would block when the socket is full (which clears the
            // readiness, so the next poll waits) or a publisher found it
            // full first.
            match self.0.try_write(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                written => return Poll::Ready(written),
            }
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        loop {
            ready!(self.0.poll_write_ready(cx))?;
            match self.0.try_write_vectored(bufs) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                written => return Poll::Ready(written),
            }
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        // What `TcpStream::poll_shutdown` does, through a borrowed socket.
        Poll::Ready(socket2::SockRef::from(&*self.0).shutdown(Shutdown::Write))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    async fn pair() -> (SharedTcp, Arc<TcpStream>, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let server = Arc::new(server);
        (SharedTcp::new(Arc::clone(&server)), server, client)
    }

    #[tokio::test]
    async fn reads_writes_and_shuts_down_while_shared() {
        let (mut task, other, mut client) = pair().await;
        client.write_all(b"abc").await.unwrap();
        task.readable().await.unwrap();
        let mut buf = BytesMut::with_capacity(64);
        assert_eq!(task.try_read_buf(&mut buf).unwrap(), Some(3));
        assert_eq!(&buf[..], b"abc");
        // Drained by a short read: nothing more, without waiting.
        assert_eq!(task.try_read_buf(&mut buf).unwrap(), None);

        task.write_all(b"from the task ").await.unwrap();
        assert_eq!(other.try_write(b"and a publisher").unwrap(), 15);
        task.shutdown().await.unwrap();
        let mut got = Vec::new();
        client.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"from the task and a publisher");

        drop(client);
        task.readable().await.unwrap();
        assert_eq!(task.try_read_buf(&mut buf).unwrap(), Some(0));
    }
}
