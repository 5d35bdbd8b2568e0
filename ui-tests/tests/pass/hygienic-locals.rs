//! The macro's own locals cannot be captured by the user's items of the
//! same names in scope.
#![deny(warnings)]
#![allow(non_upper_case_globals, non_camel_case_types)]

use axum::Router;
use wsroute::{CloseReason, Connection, Error, Message, Request, RouterExt, WebSockets};

const __arg0: u8 = 0;
const __arg: u8 = 0;
const __conn: u8 = 0;
const __msg: u8 = 0;
const __error: u8 = 0;
const __reason: u8 = 0;
const __request: u8 = 0;
const __state: u8 = 0;
const __value: u8 = 0;
const __rejection: u8 = 0;

struct Chat;

#[wsroute::websocket_route("/chat")]
impl Chat {
    fn accept(_req: Request) -> Option<Self> {
        Some(Chat)
    }

    fn open(&mut self, _conn: &Connection) {}

    fn message(&mut self, _conn: &Connection, _msg: Message) {}

    fn error(&mut self, _conn: &Connection, _err: &Error) {}

    fn close(&mut self, _conn: &Connection, _reason: CloseReason) {}
}

fn main() {
    let _ = (__arg0, __arg, __conn, __msg, __error, __reason, __request, __state, __value, __rejection);
    let _app: Router = Router::new().websocket::<Chat>(&WebSockets::default());
}
