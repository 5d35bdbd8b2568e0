//! A route written with `#[websocket_route]`, served and driven by a real
//! client (tokio-tungstenite): the generated impl runs the extractors,
//! forwards each event, sends undecodable JSON to `error` and keeps the
//! connection open, and applies `max_payload`; a route with `state = App`
//! takes its sub-states from the router's state.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{FromRef, Path, Query, State};
use axum::http::StatusCode;
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::{self, Message as WireMessage};
use wsroute::{CloseReason, Connection, Error, ErrorKind, Json, RouterExt, WebSockets};

#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<String>>>);

impl Log {
    fn push(&self, event: impl Into<String>) {
        self.0.lock().unwrap().push(event.into());
    }

    async fn until_closed(&self) -> Vec<String> {
        for _ in 0..500 {
            let events = self.0.lock().unwrap().clone();
            if events.iter().any(|e| e.starts_with("close")) {
                return events;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("no close event: {:?}", self.0.lock().unwrap());
    }
}

#[derive(serde::Deserialize)]
struct Join {
    name: String,
}

#[derive(serde::Deserialize)]
struct Say {
    text: String,
}

struct Chat {
    name: String,
    log: Log,
}

#[wsroute::websocket_route("/rooms/{room}", max_payload = 64)]
impl Chat {
    async fn accept(
        State(log): State<Log>,
        Path(room): Path<String>,
        Query(join): Query<Join>,
    ) -> Result<Self, StatusCode> {
        if join.name.is_empty() {
            return Err(StatusCode::BAD_REQUEST);
        }
        log.push(format!("accept {room} {}", join.name));
        Ok(Chat {
            name: join.name,
            log,
        })
    }

    fn open(&mut self, conn: &Connection) {
        self.log.push("open");
        conn.send_text(format!("hello {}", self.name)).unwrap();
    }

    async fn message(&mut self, conn: &Connection, Json(say): Json<Say>) {
        self.log.push(format!("message {}", say.text));
        conn.send_text(format!("{}: {}", self.name, say.text))
            .unwrap();
    }

    fn error(&self, conn: &Connection, err: &Error) {
        match err.kind() {
            ErrorKind::Json { .. } => {
                self.log.push("error json");
                conn.send_text("not a Say").unwrap();
            }
            _ if err.is_payload_too_big() => self.log.push("error too big"),
            _ => self.log.push(format!("error {err}")),
        }
    }

    async fn close(&mut self, _conn: &Connection, reason: CloseReason) {
        self.log.push(format!("close {}", reason.code().0));
    }
}

async fn serve(log: &Log) -> std::net::SocketAddr {
    let sockets = WebSockets::default();
    let app = axum::Router::new()
        .websocket::<Chat>(&sockets)
        .with_state(log.clone());
    listen(app).await
}

async fn listen(app: axum::Router) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

fn text(message: Option<Result<WireMessage, tungstenite::Error>>) -> String {
    match message {
        Some(Ok(WireMessage::Text(text))) => text.to_string(),
        other => panic!("expected a text message, got {other:?}"),
    }
}

#[tokio::test]
async fn events_run_in_order_and_bad_json_goes_to_error() {
    let log = Log::default();
    let addr = serve(&log).await;
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/rooms/lobby?name=ann"))
        .await
        .unwrap();

    assert_eq!(text(ws.next().await), "hello ann");
    ws.send(WireMessage::text(r#"{"text":"hi"}"#))
        .await
        .unwrap();
    assert_eq!(text(ws.next().await), "ann: hi");
    ws.send(WireMessage::text("not json")).await.unwrap();
    assert_eq!(text(ws.next().await), "not a Say");
    // Still open after the decoding error.
    ws.send(WireMessage::text(r#"{"text":"again"}"#))
        .await
        .unwrap();
    assert_eq!(text(ws.next().await), "ann: again");
    ws.close(None).await.unwrap();

    assert_eq!(
        log.until_closed().await,
        [
            "accept lobby ann",
            "open",
            "message hi",
            "error json",
            "message again",
            "close 1005",
        ]
    );
}

#[tokio::test]
async fn accept_refusal_answers_the_request() {
    let log = Log::default();
    let addr = serve(&log).await;
    let refused = tokio_tungstenite::connect_async(format!("ws://{addr}/rooms/lobby?name="))
        .await
        .unwrap_err();
    match refused {
        tungstenite::Error::Http(response) => assert_eq!(response.status(), 400),
        other => panic!("expected an HTTP refusal, got {other:?}"),
    }
    // A failed extractor answers with its own rejection.
    let refused = tokio_tungstenite::connect_async(format!("ws://{addr}/rooms/lobby"))
        .await
        .unwrap_err();
    match refused {
        tungstenite::Error::Http(response) => assert_eq!(response.status(), 400),
        other => panic!("expected an HTTP refusal, got {other:?}"),
    }
    assert!(log.0.lock().unwrap().is_empty());
}

#[tokio::test]
async fn max_payload_applies_to_the_route() {
    let log = Log::default();
    let addr = serve(&log).await;
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/rooms/big?name=bob"))
        .await
        .unwrap();
    assert_eq!(text(ws.next().await), "hello bob");
    let too_big = format!(r#"{{"text":"{}"}}"#, "x".repeat(64));
    ws.send(WireMessage::text(too_big)).await.unwrap();
    match ws.next().await {
        Some(Ok(WireMessage::Close(Some(frame)))) => assert_eq!(u16::from(frame.code), 1009),
        other => panic!("expected a 1009 close, got {other:?}"),
    }
    assert_eq!(
        log.until_closed().await,
        ["accept big bob", "open", "error too big", "close 1009"]
    );
}

/// The router's state, of which `Lobby` takes two parts.
#[derive(Clone)]
struct App {
    log: Log,
    greeting: Greeting,
}

#[derive(Clone)]
struct Greeting(String);

impl FromRef<App> for Log {
    fn from_ref(app: &App) -> Log {
        app.log.clone()
    }
}

impl FromRef<App> for Greeting {
    fn from_ref(app: &App) -> Greeting {
        app.greeting.clone()
    }
}

struct Lobby {
    log: Log,
}

#[wsroute::websocket_route("/lobby", state = App)]
impl Lobby {
    fn accept(State(log): State<Log>, State(Greeting(greeting)): State<Greeting>) -> Option<Self> {
        log.push(format!("accept {greeting}"));
        Some(Lobby { log })
    }

    fn open(&mut self, conn: &Connection) {
        conn.send_text("in the lobby").unwrap();
    }

    fn close(&mut self, _conn: &Connection, reason: CloseReason) {
        self.log.push(format!("close {}", reason.code().0));
    }
}

#[tokio::test]
async fn a_state_key_route_takes_sub_states_of_the_router_state() {
    let log = Log::default();
    let state = App {
        log: log.clone(),
        greeting: Greeting("hi".to_owned()),
    };
    let sockets = WebSockets::default();
    let app: axum::Router = axum::Router::new()
        .websocket::<Lobby>(&sockets)
        .with_state(state);
    let addr = listen(app).await;

    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/lobby"))
        .await
        .unwrap();
    assert_eq!(text(ws.next().await), "in the lobby");
    ws.close(None).await.unwrap();
    assert_eq!(log.until_closed().await, ["accept hi", "close 1005"]);
}
