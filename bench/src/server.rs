//! What every echo server of the benchmark shares: its command line
//! (`--addr HOST:PORT`, `--flavor`, `--no-nodelay`, `--tls`) and the tokio
//! runtime it runs on.
//!
//! All servers use the same runtime flavor, chosen here once:
//! current-thread by default. Pinned to one core, a multi-thread runtime
//! gets one worker whose local run queue (256 tasks) overflows at 1000
//! connections into a global queue it polls only every 61 tasks: some
//! connections are then served again and again while others wait, which
//! batches work (less CPU per message) at the price of a p99 latency ten
//! times higher. `--flavor multi` is there to measure that choice again
//! (see the bench README).

use std::future::Future;
use std::io;
use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpStream};

/// Which tokio scheduler a server runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// `Builder::new_current_thread()`: everything on the main thread.
    CurrentThread,
    /// `Builder::new_multi_thread()`, one worker per core the process may
    /// run on (one, when pinned with `taskset -c 0`).
    MultiThread,
}

/// A server's command line.
#[derive(Debug, Clone, Copy)]
pub struct ServerArgs {
    /// Where to listen.
    pub addr: SocketAddr,
    /// The runtime flavor.
    pub flavor: Flavor,
    /// Whether accepted sockets get `TCP_NODELAY` (the default: every
    /// server is measured with it, so Nagle's algorithm never holds a
    /// reply back waiting for a delayed ACK).
    pub nodelay: bool,
    /// Serve over TLS ([`crate::tls::server_config`]): a TLS cell.
    pub tls: bool,
}

const USAGE: &str = "[--addr HOST:PORT] [--flavor current|multi] [--no-nodelay] [--tls]";

impl ServerArgs {
    /// Reads the command line; exits with a usage message on anything
    /// unknown.
    pub fn from_env() -> Self {
        let mut args = Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 9001)),
            flavor: Flavor::CurrentThread,
            nodelay: true,
            tls: false,
        };
        let mut it = std::env::args().skip(1);
        while let Some(arg) = it.next() {
            match arg.as_str() {
                "--addr" => {
                    let value = it.next().unwrap_or_default();
                    args.addr = value
                        .parse()
                        .unwrap_or_else(|_| usage(&format!("not a HOST:PORT address: {value}")));
                }
                "--flavor" => {
                    args.flavor = match it.next().as_deref() {
                        Some("current") => Flavor::CurrentThread,
                        Some("multi") => Flavor::MultiThread,
                        _ => usage("--flavor takes `current` or `multi`"),
                    }
                }
                "--no-nodelay" => args.nodelay = false,
                "--tls" => args.tls = true,
                other => usage(&format!("unknown argument `{other}`")),
            }
        }
        args
    }
}

fn usage(problem: &str) -> ! {
    let name = std::env::args().next().unwrap_or_default();
    eprintln!("{problem}\nusage: {name} {USAGE}");
    std::process::exit(2)
}

/// Parses the command line, builds the runtime, binds the listener and runs
/// `serve` on it until it returns. Prints one line once listening.
pub fn run<F, Fut>(name: &str, serve: F) -> io::Result<()>
where
    F: FnOnce(TcpListener, ServerArgs) -> Fut,
    Fut: Future<Output = io::Result<()>>,
{
    let args = ServerArgs::from_env();
    let runtime = match args.flavor {
        Flavor::CurrentThread => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?,
        Flavor::MultiThread => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?,
    };
    runtime.block_on(async {
        let listener = TcpListener::bind(args.addr).await?;
        println!(
            "{name} listening on {} ({:?} runtime, nodelay {}, tls {})",
            listener.local_addr()?,
            args.flavor,
            args.nodelay,
            args.tls
        );
        serve(listener, args).await
    })
}

/// Applies the socket options every server uses to an accepted socket.
pub fn configure(stream: &TcpStream, args: &ServerArgs) {
    if args.nodelay {
        // Failure leaves the default, which only costs latency.
        let _ = stream.set_nodelay(true);
    }
}
