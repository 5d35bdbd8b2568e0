//! The HTTP side: checking an upgrade request (the RFC 6455 handshake and
//! the origin), answering it, mounting routes on a `Router`, the request
//! `accept` sees, and [`serve`](crate::serve) (and `serve_tls`), which
//! hand connections upgraded over HTTP/1.1 back as plain streams.

pub(crate) mod handshake;
pub(crate) mod mount;
pub(crate) mod origin;
pub(crate) mod preface;
pub(crate) mod request;
pub(crate) mod serve;
#[cfg(feature = "tls")]
pub(crate) mod tls;
pub(crate) mod upgrade;
