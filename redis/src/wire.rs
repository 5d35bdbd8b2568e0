//! How a published message travels through Redis: a channel name per
//! topic, and a payload that says which node sent it and what kind of
//! message it is.
//!
//! Payload: one byte of format version and kind, the sending node's id
//! (8 bytes, little endian), then the message as published. The id lets
//! a node skip its own messages when Redis sends them back to it — its
//! own subscribers got them directly.

use bytes::{BufMut, Bytes, BytesMut};
use wsroute::{Message, Utf8Bytes};

const TEXT: u8 = 0x10;
const BINARY: u8 = 0x11;
const HEADER: usize = 9;

/// The Redis channel of `topic`.
pub(crate) fn channel(prefix: &str, topic: &str) -> String {
    let mut name = String::with_capacity(prefix.len() + topic.len());
    name.push_str(prefix);
    name.push_str(topic);
    name
}

/// The topic of a Redis `channel`, if it is one of ours.
pub(crate) fn topic<'a>(prefix: &str, channel: &'a str) -> Option<&'a str> {
    channel.strip_prefix(prefix)
}

pub(crate) fn encode(node: u64, message: &Message) -> Bytes {
    let mut out = BytesMut::with_capacity(HEADER + message.len());
    out.put_u8(if message.is_binary() { BINARY } else { TEXT });
    out.put_u64_le(node);
    out.put_slice(message.as_bytes());
    out.freeze()
}

/// Why a payload from Redis was not delivered.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Undeliverable {
    /// Not written by wsroute-redis (or by a newer format).
    Foreign,
    /// Marked as text but not UTF-8.
    InvalidText,
}

/// The node that sent `payload`, if it is one of ours.
pub(crate) fn sender(payload: &[u8]) -> Option<u64> {
    let node = payload.get(1..HEADER)?;
    Some(u64::from_le_bytes(node.try_into().expect("8 bytes")))
}

/// The sending node and the message of a payload; the message shares
/// the payload's buffer.
pub(crate) fn decode(payload: Bytes) -> Result<(u64, Message), Undeliverable> {
    let node = sender(&payload).ok_or(Undeliverable::Foreign)?;
    let kind = payload[0];
    let body = payload.slice(HEADER..);
    let message = match kind {
        TEXT => Message::Text(Utf8Bytes::from_bytes(body).map_err(|_| Undeliverable::InvalidText)?),
        BINARY => Message::Binary(body),
        _ => return Err(Undeliverable::Foreign),
    };
    Ok((node, message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_comes_back_as_it_went_with_its_node() {
        for message in [
            Message::from("héllo"),
            Message::from(vec![0u8, 255, 7]),
            Message::from(""),
        ] {
            let payload = encode(0x0102_0304_0506_0708, &message);
            assert_eq!(payload.len(), 9 + message.len());
            assert_eq!(sender(&payload), Some(0x0102_0304_0506_0708));
            assert_eq!(decode(payload), Ok((0x0102_0304_0506_0708, message)));
        }
    }

    #[test]
    fn foreign_or_broken_payloads_are_refused_not_delivered() {
        assert_eq!(sender(b"hello"), None);
        assert_eq!(
            decode(Bytes::from_static(b"hello")),
            Err(Undeliverable::Foreign)
        );
        assert_eq!(
            decode(Bytes::from_static(b"plain text from redis-cli")),
            Err(Undeliverable::Foreign)
        );
        let mut bad = encode(1, &Message::from("ok")).to_vec();
        bad.extend_from_slice(&[0xff, 0xfe]);
        assert_eq!(decode(bad.into()), Err(Undeliverable::InvalidText));
    }

    #[test]
    fn channels_are_the_prefix_and_the_topic() {
        assert_eq!(channel("wsroute:", "room/1"), "wsroute:room/1");
        assert_eq!(topic("wsroute:", "wsroute:room/1"), Some("room/1"));
        assert_eq!(topic("wsroute:", "other:room"), None);
    }
}
