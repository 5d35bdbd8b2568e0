//! The client side of a test connection.

use std::fmt;
use std::panic::Location;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::io::DuplexStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message as WireMessage;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;

use super::TestError;
use crate::proto::{CloseCode, Message};

/// How long a `recv` or `closed` waits unless
/// [`TestSocket::set_timeout`] says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// The close frame the server sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedClose {
    /// Its code; 1005 (no status) for a close frame without one.
    pub code: CloseCode,
    /// Its reason, possibly empty.
    pub reason: String,
}

/// The client end of one test WebSocket, from
/// [`TestServer::connect`](super::TestServer::connect).
pub struct TestSocket {
    stream: WebSocketStream<DuplexStream>,
    path: String,
    timeout: Duration,
    /// The server's close frame, once seen.
    close: Option<ReceivedClose>,
}

impl fmt::Debug for TestSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestSocket")
            .field("path", &self.path)
            .field("timeout", &self.timeout)
            .field("close", &self.close)
            .finish_non_exhaustive()
    }
}

impl TestSocket {
    pub(super) fn new(stream: WebSocketStream<DuplexStream>, path: String) -> Self {
        Self {
            stream,
            path,
            timeout: DEFAULT_TIMEOUT,
            close: None,
        }
    }

    /// How long `recv` and `closed` wait before failing the test
    /// ([`DEFAULT_TIMEOUT`] at first).
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// Sends a text message; panics if the connection is gone.
    #[track_caller]
    pub fn send_text(&mut self, text: impl Into<String>) -> impl Future<Output = ()> + Send + '_ {
        self.send_wire(WireMessage::text(text.into()), Location::caller())
    }

    /// Sends a binary message; panics if the connection is gone.
    #[track_caller]
    pub fn send_binary(&mut self, bytes: impl Into<Bytes>) -> impl Future<Output = ()> + Send + '_ {
        self.send_wire(WireMessage::binary(bytes.into()), Location::caller())
    }

    /// Sends `value` as a JSON text message; panics if it does not
    /// serialize or the connection is gone.
    #[track_caller]
    pub fn send_json<T: Serialize + ?Sized>(
        &mut self,
        value: &T,
    ) -> impl Future<Output = ()> + Send + '_ {
        let caller = Location::caller();
        let json = serde_json::to_string(value)
            .unwrap_or_else(|e| panic!("{caller}: the value does not serialize to JSON: {e}"));
        self.send_wire(WireMessage::text(json), caller)
    }

    /// Sends a message, text or binary as it is.
    pub async fn try_send(&mut self, message: Message) -> Result<(), TestError> {
        let wire = match message {
            Message::Text(text) => WireMessage::text(text.as_str()),
            Message::Binary(bytes) => WireMessage::binary(bytes),
        };
        self.stream.send(wire).await.map_err(TestError::Client)
    }

    async fn send_wire(&mut self, message: WireMessage, caller: &'static Location<'static>) {
        if let Err(e) = self.stream.send(message).await {
            panic!(
                "{caller}: sending on {}: {}",
                self.path,
                TestError::Client(e)
            );
        }
    }

    /// The next message from the server. Fails the test if none comes
    /// within the timeout, or the server closes instead.
    #[track_caller]
    pub fn recv(&mut self) -> impl Future<Output = Message> + Send + '_ {
        let caller = Location::caller();
        async move {
            match self.try_recv().await {
                Ok(message) => message,
                Err(e) => panic!("{caller}: on {}: {e}", self.path),
            }
        }
    }

    /// The next text message; fails the test on a binary one.
    #[track_caller]
    pub fn recv_text(&mut self) -> impl Future<Output = String> + Send + '_ {
        let caller = Location::caller();
        async move {
            let text = self.try_recv().await.and_then(|message| match message {
                Message::Text(text) => Ok(text.as_str().to_owned()),
                Message::Binary(bytes) => Err(TestError::Unexpected(format!(
                    "expected a text message, got a binary one of {} bytes",
                    bytes.len()
                ))),
            });
            text.unwrap_or_else(|e| panic!("{caller}: on {}: {e}", self.path))
        }
    }

    /// The next message, parsed as JSON into `T`; fails the test if it is
    /// not.
    #[track_caller]
    pub fn recv_json<T: DeserializeOwned>(&mut self) -> impl Future<Output = T> + Send + '_ {
        let caller = Location::caller();
        async move {
            let value = self.try_recv().await.and_then(|message| {
                serde_json::from_slice(message.as_bytes()).map_err(|e| {
                    TestError::Unexpected(format!(
                        "the message {message:?} is not JSON of type {}: {e}",
                        std::any::type_name::<T>()
                    ))
                })
            });
            value.unwrap_or_else(|e| panic!("{caller}: on {}: {e}", self.path))
        }
    }

    /// The next message, or why there is none. Pings and pongs are skipped
    /// (the client answers pings itself).
    pub async fn try_recv(&mut self) -> Result<Message, TestError> {
        if let Some(close) = &self.close {
            return Err(TestError::Closed(close.clone()));
        }
        loop {
            match self.next_frame("a message").await? {
                WireMessage::Text(text) => return Ok(Message::from(text.as_str())),
                WireMessage::Binary(bytes) => return Ok(Message::Binary(bytes)),
                WireMessage::Close(frame) => {
                    let close = received_close(frame);
                    self.close = Some(close.clone());
                    return Err(TestError::Closed(close));
                }
                WireMessage::Ping(_) | WireMessage::Pong(_) | WireMessage::Frame(_) => {}
            }
        }
    }

    /// Starts the close handshake with `code` and `reason`; the server's
    /// answer is [`closed`](Self::closed). [`CloseCode::NO_STATUS`] sends a
    /// close frame without a code (1005 itself may not be sent). Any other
    /// code is sent as it is, valid or not, to test the server's checks.
    /// Panics if the connection is gone.
    #[track_caller]
    pub fn close(&mut self, code: CloseCode, reason: &str) -> impl Future<Output = ()> + Send + '_ {
        let frame = (code != CloseCode::NO_STATUS).then(|| CloseFrame {
            code: u16::from(code).into(),
            reason: reason.into(),
        });
        self.send_wire(WireMessage::Close(frame), Location::caller())
    }

    /// Waits for the server's close frame (its answer to
    /// [`close`](Self::close), or the server's own close) and returns it;
    /// messages still arriving before it are dropped. Fails the test if
    /// none comes within the timeout or the stream ends without one.
    #[track_caller]
    pub fn closed(&mut self) -> impl Future<Output = ReceivedClose> + Send + '_ {
        let caller = Location::caller();
        async move {
            match self.try_closed().await {
                Ok(close) => close,
                Err(e) => panic!("{caller}: on {}: {e}", self.path),
            }
        }
    }

    /// The server's close frame, or why none came.
    pub async fn try_closed(&mut self) -> Result<ReceivedClose, TestError> {
        if let Some(close) = &self.close {
            return Ok(close.clone());
        }
        loop {
            if let WireMessage::Close(frame) = self.next_frame("the close frame").await? {
                let close = received_close(frame);
                self.close = Some(close.clone());
                return Ok(close);
            }
        }
    }

    /// Waits until the server ends the stream, after its close frame:
    /// fails the test if the server keeps it open past the timeout.
    #[track_caller]
    pub fn ended(&mut self) -> impl Future<Output = ()> + Send + '_ {
        let caller = Location::caller();
        async move {
            let after = self.timeout;
            let end = async {
                while let Some(frame) = self.stream.next().await {
                    if frame.is_err() {
                        break;
                    }
                }
            };
            if tokio::time::timeout(after, end).await.is_err() {
                let e = TestError::Timeout {
                    awaited: "the end of the stream",
                    after,
                };
                panic!("{caller}: on {}: {e}", self.path);
            }
        }
    }

    async fn next_frame(&mut self, awaited: &'static str) -> Result<WireMessage, TestError> {
        let after = self.timeout;
        match tokio::time::timeout(after, self.stream.next()).await {
            Err(_) => Err(TestError::Timeout { awaited, after }),
            Ok(None) => Err(TestError::Ended),
            Ok(Some(Err(e))) => Err(TestError::Client(e)),
            Ok(Some(Ok(frame))) => Ok(frame),
        }
    }
}

fn received_close(frame: Option<CloseFrame>) -> ReceivedClose {
    match frame {
        Some(frame) => ReceivedClose {
            code: CloseCode(u16::from(frame.code)),
            reason: frame.reason.as_str().to_owned(),
        },
        None => ReceivedClose {
            code: CloseCode::NO_STATUS,
            reason: String::new(),
        },
    }
}
