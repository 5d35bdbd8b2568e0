//! The example of `websocket_route`'s documentation (macros/src/lib.rs),
//! kept identical so it is known to compile.
#![deny(warnings)]

use axum::extract::{Query, State};
use wsroute::{CloseReason, Connection, Error, Json, RouterExt, WebSockets};

#[derive(Clone)]
struct App {
    motd: String,
}

#[derive(serde::Deserialize)]
struct Join {
    name: String,
}

#[derive(serde::Deserialize)]
struct Say {
    text: String,
}

/// One connection's state.
struct Chat {
    name: String,
}

#[wsroute::websocket_route("/chat", max_payload = 65536)]
impl Chat {
    // Before the upgrade. `None` answers 403; without `?name=`, `Query`
    // answers 400 itself.
    async fn accept(State(app): State<App>, Query(join): Query<Join>) -> Option<Self> {
        println!("{} joins; {}", join.name, app.motd);
        (!join.name.is_empty()).then_some(Chat { name: join.name })
    }

    fn open(&mut self, conn: &Connection) {
        let _ = conn.send_text(format!("welcome, {}", self.name));
    }

    // A message that is not a `Say` goes to `error`; the connection stays open.
    async fn message(&mut self, conn: &Connection, Json(say): Json<Say>) {
        let _ = conn.send_text(format!("{}: {}", self.name, say.text));
    }

    fn error(&mut self, _conn: &Connection, err: &Error) {
        eprintln!("{}: {err}", self.name);
    }

    fn close(&self, _conn: &Connection, reason: CloseReason) {
        println!("{} left: {reason}", self.name);
    }
}

fn main() {
    let sockets = WebSockets::default();
    let motd = "be nice".to_owned();
    let app: axum::Router = axum::Router::new()
        .websocket::<Chat>(&sockets)
        .with_state(App { motd });
    let _ = app;
}
