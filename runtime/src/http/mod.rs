//! The HTTP side: checking an upgrade request (the RFC 6455 handshake and
//! the origin), answering it, mounting routes on a `Router`, the request
//! `accept` sees, and [`serve`](crate::serve), which hands upgraded
//! connections back as plain TCP streams.

pub(crate) mod handshake;
pub(crate) mod mount;
pub(crate) mod origin;
pub(crate) mod request;
pub(crate) mod serve;
pub(crate) mod upgrade;
