//! `accept` refusing with a status code: `Result<Self, StatusCode>`.
#![deny(warnings)]

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use wsroute::{Connection, Message, RouterExt, WebSockets};

struct Authed {
    user: String,
}

#[wsroute::websocket_route("/private")]
impl Authed {
    fn accept(headers: HeaderMap) -> Result<Self, StatusCode> {
        let user = headers
            .get("x-user")
            .and_then(|v| v.to_str().ok())
            .ok_or(StatusCode::UNAUTHORIZED)?;
        Ok(Authed {
            user: user.to_owned(),
        })
    }

    fn message(&mut self, conn: &Connection, msg: Message) {
        let _ = conn.send_text(format!("{} said {} bytes", self.user, msg.len()));
    }
}

fn main() {
    let sockets = WebSockets::default();
    let _app: Router = Router::new().websocket::<Authed>(&sockets);
}
