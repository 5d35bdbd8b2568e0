//! The generated code names only absolute paths: it compiles in a module
//! that shadows the prelude's names.
#![deny(warnings)]
#![allow(non_camel_case_types)]

// Outside `chat`: serde's derive itself needs the real `u64` and `str`.
#[derive(serde::Deserialize)]
pub struct Say {
    text: String,
}

mod chat {
    use super::Say;
    use wsroute::{CloseReason, Connection, Error, Json, Request};

    pub struct Result;
    pub struct Option;
    pub struct Box;
    pub struct Future;
    pub trait Send {}
    pub trait Sync {}
    pub struct Some;
    pub struct None;
    pub struct Ok;
    pub struct Err;
    pub struct u64;
    pub struct str;
    pub mod core {}

    pub struct Chat;

    #[wsroute::websocket_route("/chat", max_payload = 1024)]
    impl Chat {
        async fn accept(_req: Request) -> ::core::option::Option<Self> {
            ::core::option::Option::Some(Chat)
        }

        fn open(&mut self, _conn: &Connection) {}

        fn message(&mut self, conn: &Connection, Json(say): Json<Say>) {
            let _ = conn.send_text(say.text);
        }

        fn error(&mut self, _conn: &Connection, _err: &Error) {}

        fn close(&mut self, _conn: &Connection, _reason: CloseReason) {}
    }

    pub fn shadows() -> (Result, Option, Box, Future, Some, None, Ok, Err, u64, str) {
        (Result, Option, Box, Future, Some, None, Ok, Err, u64, str)
    }

    impl Send for Chat {}
    impl Sync for Chat {}
}

use wsroute::RouterExt;

fn main() {
    let _ = chat::shadows();
    let sockets = wsroute::WebSockets::default();
    let _app: axum::Router = axum::Router::new().websocket::<chat::Chat>(&sockets);
}
