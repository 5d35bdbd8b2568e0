//! Shared bits of the wsroute examples (see `examples/`).

use std::net::SocketAddr;

/// Reads `--addr HOST:PORT` from the command line, or returns `default`.
///
/// Exits with a usage message on anything else, so a typo does not start a
/// server on an unexpected address.
pub fn addr_from_args(default: &str) -> SocketAddr {
    let mut args = std::env::args().skip(1);
    let mut addr = default.to_owned();
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--addr", Some(value)) => addr = value,
            _ => usage(default),
        }
    }
    addr.parse().unwrap_or_else(|_| {
        eprintln!("not a HOST:PORT address: {addr}");
        usage(default)
    })
}

fn usage(default: &str) -> ! {
    let name = std::env::args().next().unwrap_or_default();
    eprintln!("usage: {name} [--addr HOST:PORT]   (default {default})");
    std::process::exit(2)
}
