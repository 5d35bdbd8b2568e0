//! The socket of a plain TCP connection as its publishers write to it,
//! with its descriptor kept in the send queue itself.
//!
//! A `SockRef` made from the `TcpStream` reads the descriptor out of the
//! stream's own allocation: at 10,000 subscribers, a cache miss on every
//! subscriber at every write a publish makes. The fan-out profile put
//! 2.5 % of the server's time on that one load (`TcpStream::as_fd`).
//! Copied here, the descriptor sits on the line of the queue that the
//! write reads anyway.

use std::sync::Arc;

use tokio::net::TcpStream;

/// A connection's socket, shared with its task, and its descriptor.
#[derive(Debug)]
pub(crate) struct DirectSocket {
    #[cfg(unix)]
    fd: std::os::fd::RawFd,
    /// Keeps the descriptor open (and on Windows, gives it).
    #[cfg_attr(unix, allow(dead_code))]
    stream: Arc<TcpStream>,
}

impl DirectSocket {
    pub(crate) fn new(stream: Arc<TcpStream>) -> Self {
        Self {
            #[cfg(unix)]
            fd: std::os::fd::AsRawFd::as_raw_fd(&*stream),
            stream,
        }
    }
}

#[cfg(unix)]
impl std::os::fd::AsFd for DirectSocket {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        // SAFETY: `fd` is the descriptor of `stream`, which `self` owns a
        // handle to: a `TcpStream` closes its descriptor only when
        // dropped, and it outlives this borrow of `self`.
        #[allow(unsafe_code)]
        unsafe {
            std::os::fd::BorrowedFd::borrow_raw(self.fd)
        }
    }
}

#[cfg(windows)]
impl std::os::windows::io::AsSocket for DirectSocket {
    fn as_socket(&self) -> std::os::windows::io::BorrowedSocket<'_> {
        std::os::windows::io::AsSocket::as_socket(&*self.stream)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn writes_through_the_copied_descriptor_reach_the_peer() {
        use tokio::io::AsyncReadExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap());
        let (client, accepted) = tokio::join!(client, listener.accept());
        let socket = DirectSocket::new(Arc::new(accepted.unwrap().0));
        let sent = socket2::SockRef::from(&socket).send(b"hello").unwrap();
        assert_eq!(sent, 5);
        let mut got = [0; 5];
        client.unwrap().read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"hello");
    }
}
