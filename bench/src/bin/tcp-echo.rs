//! Raw TCP echo on tokio: the limit every websocket server is measured
//! against. It sends back exactly the bytes it reads (the load generator's
//! masked frames), with no framing at all.
//!
//! Each read goes into one buffer shared by all connections and is written
//! straight back, so an idle connection holds no buffer and a busy one
//! costs a read and a write system call per burst: the floor for both CPU
//! and memory.
//!
//! With `--tls` it is the limit of the TLS cells: it decrypts what it
//! reads and encrypts it back, record layer and nothing else.

use std::cell::RefCell;
use std::io;

use tokio::io::{AsyncReadExt, AsyncWriteExt, Interest};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use wsroute_bench::server::{self, ServerArgs};
use wsroute_bench::tls;

/// Big enough that a 64 KiB message and its header arrive in one read.
const SCRATCH_LEN: usize = 256 * 1024;

thread_local! {
    static SCRATCH: RefCell<Vec<u8>> = RefCell::new(vec![0; SCRATCH_LEN]);
}

fn main() -> io::Result<()> {
    server::run("tcp-echo", |listener, args: ServerArgs| async move {
        let acceptor = args.tls.then(|| TlsAcceptor::from(tls::server_config()));
        loop {
            let (stream, _) = listener.accept().await?;
            server::configure(&stream, &args);
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // Boxed, so the TLS state is not in every plain
                // connection's task: the plain echo is the memory floor.
                let _ = match acceptor {
                    None => echo(stream).await,
                    Some(acceptor) => Box::pin(echo_tls(acceptor, stream)).await,
                };
            });
        }
    })
}

/// What one read-and-write left to do.
enum Step {
    /// All read bytes were written back; wait for more.
    Done,
    /// The peer closed the connection.
    Eof,
    /// The socket's send buffer filled up: these bytes still go out.
    Unsent(Vec<u8>),
}

async fn echo(mut stream: TcpStream) -> io::Result<()> {
    loop {
        stream.readable().await?;
        match SCRATCH.with_borrow_mut(|buf| echo_once(&stream, buf)) {
            Ok(Step::Done) => {}
            Ok(Step::Eof) => return Ok(()),
            Ok(Step::Unsent(rest)) => stream.write_all(&rest).await?,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
}

fn echo_once(stream: &TcpStream, buf: &mut [u8]) -> io::Result<Step> {
    let n = stream.try_read(buf)?;
    if n == 0 {
        return Ok(Step::Eof);
    }
    if n < buf.len() {
        // A short read drained the socket: forget the readiness now rather
        // than pay a read that returns WouldBlock next time (tokio's own
        // `poll_read` does the same).
        let _ = stream.try_io(Interest::READABLE, || {
            Err::<(), _>(io::ErrorKind::WouldBlock.into())
        });
    }
    let mut sent = 0;
    while sent < n {
        match stream.try_write(&buf[sent..n]) {
            Ok(k) => sent += k,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                return Ok(Step::Unsent(buf[sent..n].to_vec()));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(Step::Done)
}

/// The TLS echo: one plaintext buffer per connection (a read across an
/// `.await` cannot borrow the shared one), as big as a TLS record's
/// plaintext can be, so each read returns what one record held.
async fn echo_tls(acceptor: TlsAcceptor, stream: TcpStream) -> io::Result<()> {
    let mut stream = acceptor.accept(stream).await?;
    let mut buf = vec![0; 16 * 1024];
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        stream.write_all(&buf[..n]).await?;
        stream.flush().await?;
    }
}
