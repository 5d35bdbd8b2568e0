//! wsroute: WebSocket routes for axum.
#![warn(missing_docs)]

mod message;
pub mod proto;

pub use message::{Message, Utf8Bytes};
pub use proto::{CloseCode, CloseFrame};
