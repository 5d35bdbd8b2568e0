//! Typed messages: `Json<T>` as a `message` argument.

use serde::de::DeserializeOwned;

use crate::api::error::{Error, ErrorKind};
use crate::proto::Message;

/// A message decoded from JSON. Write `msg: Json<T>` as the `message`
/// event's argument to receive `T` instead of raw text; a message that
/// does not decode fires the `error` event and the connection stays open.
///
/// ```
/// #[derive(serde::Deserialize)]
/// struct Chat { text: String }
///
/// let wsroute::Json(chat) = wsroute::Json::<Chat>::decode(r#"{"text":"hi"}"#.into()).unwrap();
/// assert_eq!(chat.text, "hi");
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Json<T>(pub T);

impl<T: DeserializeOwned> Json<T> {
    /// Decodes a text or binary message as JSON.
    pub fn decode(message: Message) -> Result<Self, Error> {
        match serde_json::from_slice(message.as_bytes()) {
            Ok(value) => Ok(Json(value)),
            Err(error) => {
                let message = Box::new(message);
                Err(Error::new(ErrorKind::Json { error, message }, None))
            }
        }
    }
}

/// What the `message` event can take as its message argument: [`Message`]
/// as it arrived, or [`Json<T>`] decoded.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be received as a WebSocket message",
    label = "not a message type",
    note = "take `msg: wsroute::Message`, or `msg: wsroute::Json<T>` with `T: serde::Deserialize`"
)]
pub trait FromMessage: Sized {
    /// Converts the received message; an error goes to the `error` event.
    fn from_message(message: Message) -> Result<Self, Error>;
}

impl FromMessage for Message {
    fn from_message(message: Message) -> Result<Self, Error> {
        Ok(message)
    }
}

impl<T: DeserializeOwned> FromMessage for Json<T> {
    fn from_message(message: Message) -> Result<Self, Error> {
        Self::decode(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Deserialize)]
    struct Point {
        x: i32,
    }

    #[test]
    fn decodes_text_and_reports_bad_json() {
        let Json(p) = Json::<Point>::from_message(r#"{"x":3}"#.into()).unwrap();
        assert_eq!(p, Point { x: 3 });
        let err = Json::<Point>::from_message("nope".into()).unwrap_err();
        assert!(
            matches!(err.kind(), ErrorKind::Json { message, .. } if message.as_text() == Some("nope"))
        );
        assert_eq!(err.close_code(), None);
        assert!(err.to_string().ends_with(r#"got "nope""#), "{err}");
    }

    #[test]
    fn an_error_shows_a_long_message_cut_and_a_binary_one_by_size() {
        let long = format!("{{\"y\":\"{}\"}}", "é".repeat(100));
        let err = Json::<Point>::from_message(long.clone().into()).unwrap_err();
        let shown = err.to_string();
        assert!(
            shown.contains(&format!("({} bytes)", long.len())),
            "{shown}"
        );
        assert!(shown.len() < 200, "{shown}");
        let err = Json::<Point>::from_message(Message::Binary(vec![0xFF; 300].into())).unwrap_err();
        assert!(
            err.to_string()
                .ends_with("got a binary message of 300 bytes"),
            "{err}"
        );
    }
}
