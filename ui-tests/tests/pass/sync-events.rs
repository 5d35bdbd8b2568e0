//! Every event as a plain `fn` taking `&mut self`.
#![deny(warnings)]

use axum::Router;
use wsroute::{CloseReason, Connection, Error, Message, Request, RouterExt, WebSockets};

struct Chat {
    name: String,
    messages: usize,
}

#[wsroute::websocket_route("/chat")]
impl Chat {
    fn accept(req: Request) -> Option<Self> {
        let name = req.query_param("name")?.into_owned();
        Some(Chat { name, messages: 0 })
    }

    fn open(&mut self, conn: &Connection) {
        let _ = conn.send_text(format!("hello {}", self.name));
    }

    fn message(&mut self, conn: &Connection, msg: Message) {
        self.messages += 1;
        let _ = conn.send(msg);
    }

    fn error(&mut self, _conn: &Connection, err: &Error) {
        eprintln!("{}: {err}", self.name);
    }

    fn close(&mut self, _conn: &Connection, reason: CloseReason) {
        println!("{} sent {} messages: {reason}", self.name, self.messages);
    }
}

fn main() {
    let sockets = WebSockets::default();
    let _app: Router = Router::new().websocket::<Chat>(&sockets);
}
