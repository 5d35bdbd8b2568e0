//! A route at `/echo` that sends every message back: for the tests of a
//! transport (TLS, HTTP/2), where the route is not what is under test.

use axum::http::request::Parts;
use axum::response::Response;
use wsroute::{Connection, Message, Route};

pub(crate) struct Echo;

impl Route for Echo {
    const PATH: &'static str = "/echo";

    async fn accept(_: &mut Parts, _: &()) -> Result<Self, Response> {
        Ok(Echo)
    }

    async fn message(&mut self, conn: &Connection, msg: Message) {
        let _ = conn.send(msg);
    }
}
