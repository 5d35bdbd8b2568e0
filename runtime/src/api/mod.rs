//! What an application touches: the [`Route`](crate::Route) trait and
//! what `accept` may return, the [`Connection`](crate::Connection) handle
//! and its [`SendError`](crate::SendError), the [`Error`](crate::Error) and
//! [`CloseReason`](crate::CloseReason) the events report, typed messages,
//! and the server-wide [`WebSockets`](crate::WebSockets) and its
//! [`Config`](crate::Config).

pub(crate) mod accept;
pub(crate) mod broker;
pub(crate) mod config;
pub(crate) mod connection;
pub(crate) mod error;
pub(crate) mod json;
pub(crate) mod route;
pub(crate) mod send_error;
pub(crate) mod topics;
pub(crate) mod websockets;
