//! Close frames (§5.5.1, §7.4): status codes and their payload.

use std::fmt;

use bytes::{BufMut, Bytes};

use super::ProtocolError;

/// A close status code (RFC 6455 §7.4).
///
/// Any `u16` can be held, but only [valid](Self::is_valid) codes go on the
/// wire: [`NO_STATUS`](Self::NO_STATUS), [`ABNORMAL`](Self::ABNORMAL) and
/// [`TLS`](Self::TLS) only *report* what happened.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CloseCode(pub u16);

impl CloseCode {
    /// 1000: the purpose of the connection has been fulfilled.
    pub const NORMAL: Self = Self(1000);
    /// 1001: the server is going down, or a browser left the page.
    pub const GOING_AWAY: Self = Self(1001);
    /// 1002: the peer broke the protocol.
    pub const PROTOCOL_ERROR: Self = Self(1002);
    /// 1003: a data type the endpoint cannot accept.
    pub const UNSUPPORTED_DATA: Self = Self(1003);
    /// 1005: the close frame carried no status code. Never sent.
    pub const NO_STATUS: Self = Self(1005);
    /// 1006: the connection ended without a close frame. Never sent.
    pub const ABNORMAL: Self = Self(1006);
    /// 1007: a text message, or a close reason, that is not UTF-8.
    pub const INVALID_PAYLOAD: Self = Self(1007);
    /// 1008: the message violates the endpoint's policy.
    pub const POLICY_VIOLATION: Self = Self(1008);
    /// 1009: the message is larger than the endpoint accepts.
    pub const MESSAGE_TOO_BIG: Self = Self(1009);
    /// 1010: the client expected an extension the server did not agree to.
    pub const MANDATORY_EXTENSION: Self = Self(1010);
    /// 1011: the server hit an unexpected condition.
    pub const INTERNAL_ERROR: Self = Self(1011);
    /// 1012: the service is restarting.
    pub const SERVICE_RESTART: Self = Self(1012);
    /// 1013: try again later.
    pub const TRY_AGAIN_LATER: Self = Self(1013);
    /// 1014: a gateway got an invalid response upstream.
    pub const BAD_GATEWAY: Self = Self(1014);
    /// 1015: the TLS handshake failed. Never sent.
    pub const TLS: Self = Self(1015);

    /// Whether the code may appear in a close frame: 1000–1003, 1007–1014
    /// (defined or registered with IANA) and 3000–4999 (libraries,
    /// applications).
    pub fn is_valid(self) -> bool {
        matches!(self.0, 1000..=1003 | 1007..=1014 | 3000..=4999)
    }
}

impl fmt::Debug for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CloseCode({})", self.0)
    }
}

impl fmt::Display for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl From<u16> for CloseCode {
    fn from(code: u16) -> Self {
        Self(code)
    }
}

impl From<CloseCode> for u16 {
    fn from(code: CloseCode) -> Self {
        code.0
    }
}

/// What a close frame said: a status code, if any, and a reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseFrame {
    /// The status code; `None` for an empty close frame.
    pub code: Option<CloseCode>,
    /// The reason, at most 123 bytes of UTF-8 on the wire.
    pub reason: String,
}

/// The most reason text that fits a control frame after the 2-byte code.
pub const MAX_REASON_LEN: usize = 123;

impl CloseFrame {
    /// Parses a received close frame's (unmasked) payload.
    pub fn parse(payload: &[u8]) -> Result<Self, ProtocolError> {
        match payload {
            [] => Ok(Self {
                code: None,
                reason: String::new(),
            }),
            [_] => Err(ProtocolError::InvalidClosePayload),
            [hi, lo, reason @ ..] => {
                let code = CloseCode(u16::from_be_bytes([*hi, *lo]));
                if !code.is_valid() {
                    return Err(ProtocolError::InvalidCloseCode(code.0));
                }
                let reason =
                    std::str::from_utf8(reason).map_err(|_| ProtocolError::InvalidCloseReason)?;
                Ok(Self {
                    code: Some(code),
                    reason: reason.to_owned(),
                })
            }
        }
    }

    /// The payload to send for this close frame.
    ///
    /// Codes that must not go on the wire (1005, 1006, 1015, or anything
    /// else invalid) are sent as an empty close frame, without the reason,
    /// since a reason needs a code before it. A reason longer than 123
    /// bytes is cut at a character boundary.
    pub fn to_payload(&self) -> Bytes {
        let Some(code) = self.code.filter(|c| c.is_valid()) else {
            return Bytes::new();
        };
        let reason = truncate_at_char_boundary(&self.reason, MAX_REASON_LEN);
        let mut payload = Vec::with_capacity(2 + reason.len());
        payload.put_u16(code.0);
        payload.extend_from_slice(reason.as_bytes());
        Bytes::from(payload)
    }
}

fn truncate_at_char_boundary(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_and_invalid_codes() {
        for ok in [
            1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014,
        ] {
            assert!(CloseCode(ok).is_valid(), "{ok}");
        }
        for ok in [3000, 3999, 4000, 4999] {
            assert!(CloseCode(ok).is_valid(), "{ok}");
        }
        for bad in [
            0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
        ] {
            assert!(!CloseCode(bad).is_valid(), "{bad}");
            let payload = bad.to_be_bytes();
            assert_eq!(
                CloseFrame::parse(&payload),
                Err(ProtocolError::InvalidCloseCode(bad))
            );
        }
    }

    #[test]
    fn parses_empty_code_only_and_code_with_reason() {
        assert_eq!(CloseFrame::parse(&[]).unwrap().code, None);
        let f = CloseFrame::parse(&[0x03, 0xE8]).unwrap();
        assert_eq!((f.code, f.reason.as_str()), (Some(CloseCode::NORMAL), ""));
        let f = CloseFrame::parse(b"\x0f\xa0bye \xce\xba").unwrap();
        assert_eq!(
            (f.code, f.reason.as_str()),
            (Some(CloseCode(4000)), "bye κ")
        );
    }

    #[test]
    fn one_byte_payload_and_bad_reason_are_errors() {
        assert_eq!(
            CloseFrame::parse(&[0x03]),
            Err(ProtocolError::InvalidClosePayload)
        );
        assert_eq!(
            CloseFrame::parse(&[0x03, 0xE8, 0xCE]),
            Err(ProtocolError::InvalidCloseReason)
        );
    }

    #[test]
    fn reporting_only_codes_never_go_on_the_wire() {
        for code in [CloseCode::NO_STATUS, CloseCode::ABNORMAL, CloseCode::TLS] {
            let f = CloseFrame {
                code: Some(code),
                reason: "x".into(),
            };
            assert!(f.to_payload().is_empty());
        }
    }

    #[test]
    fn long_reasons_are_cut_at_a_char_boundary() {
        let f = CloseFrame {
            code: Some(CloseCode::NORMAL),
            reason: "é".repeat(100),
        };
        let payload = f.to_payload();
        assert!(payload.len() <= 125);
        let parsed = CloseFrame::parse(&payload).unwrap();
        assert_eq!(parsed.reason, "é".repeat(61));
    }
}
