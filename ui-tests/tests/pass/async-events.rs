//! Every event as an `async fn` taking `&mut self`.
#![deny(warnings)]

use axum::Router;
use wsroute::{CloseReason, Connection, Error, Message, Request, RouterExt, WebSockets};

struct Chat {
    name: String,
    messages: usize,
}

async fn lookup(name: &str) -> Option<String> {
    (!name.is_empty()).then(|| name.to_uppercase())
}

#[wsroute::websocket_route("/chat")]
impl Chat {
    async fn accept(req: Request) -> Option<Self> {
        let name = lookup(&req.query_param("name")?).await?;
        Some(Chat { name, messages: 0 })
    }

    async fn open(&mut self, conn: &Connection) {
        let greeting = lookup(&self.name).await;
        let _ = conn.send_text(format!("hello {greeting:?}"));
    }

    async fn message(&mut self, conn: &Connection, msg: Message) {
        self.messages += 1;
        tokio::task::yield_now().await;
        let _ = conn.send(msg);
    }

    async fn error(&mut self, _conn: &Connection, err: &Error) {
        tokio::task::yield_now().await;
        eprintln!("{}: {err}", self.name);
    }

    async fn close(&mut self, _conn: &Connection, reason: CloseReason) {
        tokio::task::yield_now().await;
        println!("{} sent {} messages: {reason}", self.name, self.messages);
    }
}

fn main() {
    let sockets = WebSockets::default();
    let _app: Router = Router::new().websocket::<Chat>(&sockets);
}
