//! Messages as handlers receive and send them.

use std::fmt;
use std::ops::Deref;

use bytes::Bytes;

/// A complete WebSocket data message.
///
/// The payload is the bytes the connection read, handed over without a
/// copy: cloning a `Message` is cheap (reference-counted).
///
/// Messages under a few KiB are cut out of a read buffer the connections
/// of a thread share (16 KiB), which is reused once every message cut from
/// it has been dropped. A message kept for long keeps that whole buffer
/// alive, so a handler that stores many small messages (a chat history,
/// say) should store [`detach`](Self::detach)ed copies.
#[derive(Clone, PartialEq, Eq)]
pub enum Message {
    /// A text message; always valid UTF-8.
    Text(Utf8Bytes),
    /// A binary message.
    Binary(Bytes),
}

impl Message {
    /// Whether this is a binary message — Crow's `is_binary`.
    pub fn is_binary(&self) -> bool {
        matches!(self, Self::Binary(_))
    }

    /// The payload bytes, text or binary.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Self::Text(text) => text.as_bytes(),
            Self::Binary(bytes) => bytes,
        }
    }

    /// A copy of this message in an allocation of its own, which keeps no
    /// read buffer alive.
    ///
    /// ```
    /// use wsroute::Message;
    ///
    /// let msg = Message::Text("hello".into());
    /// let kept = msg.detach();
    /// assert_eq!(kept, msg);
    /// assert_ne!(kept.as_bytes().as_ptr(), msg.as_bytes().as_ptr());
    /// ```
    pub fn detach(&self) -> Self {
        match self {
            Self::Text(text) => Self::Text(Utf8Bytes::from(text.as_str().to_owned())),
            Self::Binary(bytes) => Self::Binary(Bytes::copy_from_slice(bytes)),
        }
    }

    /// The text, for a text message.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Self::Text(text) => Some(text),
            Self::Binary(_) => None,
        }
    }

    /// The payload, text or binary, as shared bytes.
    pub fn into_bytes(self) -> Bytes {
        match self {
            Self::Text(text) => text.into_bytes(),
            Self::Binary(bytes) => bytes,
        }
    }

    /// The payload length in bytes.
    pub fn len(&self) -> usize {
        self.as_bytes().len()
    }

    /// Whether the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Text(text) => f.debug_tuple("Text").field(&text.as_str()).finish(),
            Self::Binary(bytes) => f.debug_tuple("Binary").field(bytes).finish(),
        }
    }
}

impl From<String> for Message {
    fn from(text: String) -> Self {
        Self::Text(text.into())
    }
}

impl From<&str> for Message {
    fn from(text: &str) -> Self {
        Self::Text(text.into())
    }
}

impl From<Bytes> for Message {
    fn from(bytes: Bytes) -> Self {
        Self::Binary(bytes)
    }
}

impl From<Vec<u8>> for Message {
    fn from(bytes: Vec<u8>) -> Self {
        Self::Binary(bytes.into())
    }
}

/// Shared bytes that are known to be valid UTF-8: a cheaply cloned `str`.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Utf8Bytes(Bytes);

impl Utf8Bytes {
    /// Checks `bytes` and wraps them.
    pub fn from_bytes(bytes: Bytes) -> Result<Self, std::str::Utf8Error> {
        std::str::from_utf8(&bytes)?;
        Ok(Self(bytes))
    }

    /// Wraps bytes the protocol core has already validated incrementally,
    /// without walking them again.
    ///
    /// # Safety
    ///
    /// `bytes` must be valid UTF-8: [`as_str`](Self::as_str) hands them out
    /// as a `str` unchecked.
    #[allow(unsafe_code)]
    pub(crate) unsafe fn from_validated(bytes: Bytes) -> Self {
        debug_assert!(std::str::from_utf8(&bytes).is_ok());
        Self(bytes)
    }

    /// A `'static` string, without copying.
    pub const fn from_static(text: &'static str) -> Self {
        Self(Bytes::from_static(text.as_bytes()))
    }

    /// The text.
    #[allow(unsafe_code)]
    pub fn as_str(&self) -> &str {
        // SAFETY: every constructor either checks the bytes (`from_bytes`,
        // `From<String>`, `From<&str>`, `from_static`) or takes bytes the
        // protocol core validated as UTF-8 before handing them over
        // (`from_validated`, an `unsafe fn` whose callers vouch for it,
        // debug-asserted). Re-checking here would walk
        // the whole message on every access.
        unsafe { std::str::from_utf8_unchecked(&self.0) }
    }

    /// The underlying bytes.
    pub fn into_bytes(self) -> Bytes {
        self.0
    }
}

impl Deref for Utf8Bytes {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Utf8Bytes {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Debug for Utf8Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Utf8Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_str(), f)
    }
}

impl From<String> for Utf8Bytes {
    fn from(text: String) -> Self {
        Self(Bytes::from(text.into_bytes()))
    }
}

impl From<&str> for Utf8Bytes {
    fn from(text: &str) -> Self {
        Self(Bytes::copy_from_slice(text.as_bytes()))
    }
}

impl PartialEq<str> for Utf8Bytes {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Utf8Bytes {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_bytes_reads_back_as_str() {
        let checked = Utf8Bytes::from_bytes(Bytes::from_static("héllo".as_bytes())).unwrap();
        assert_eq!(checked.as_str(), "héllo");
        assert!(Utf8Bytes::from_bytes(Bytes::from_static(&[0xFF])).is_err());
        assert_eq!(Utf8Bytes::from("x".to_string()), "x");
        assert_eq!(&*Utf8Bytes::from_static("static"), "static");
    }

    #[test]
    fn message_accessors() {
        let text = Message::from("hi");
        assert!(!text.is_binary());
        assert_eq!(text.as_text(), Some("hi"));
        let binary = Message::from(vec![1u8, 2]);
        assert!(binary.is_binary());
        assert_eq!(binary.as_bytes(), &[1, 2]);
        assert_eq!(binary.len(), 2);
        assert_eq!(binary.into_bytes(), Bytes::from_static(&[1, 2]));
    }
}
