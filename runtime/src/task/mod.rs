//! One connection's task: the driver that moves bytes between the
//! transport and the protocol core and calls the route's events, the
//! transport it reads on readiness, the cork that batches its publishes,
//! the keepalive clock shared by all connections, and the server-wide
//! memory budget they charge.

pub(crate) mod budget;
pub(crate) mod cork;
pub(crate) mod direct_socket;
pub(crate) mod driver;
pub(crate) mod keepalive;
pub(crate) mod shared_tcp;
pub(crate) mod transport;
