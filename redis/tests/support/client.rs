//! A WebSocket client of a node.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

pub(crate) struct Client {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Client {
    pub(crate) async fn connect(url: &str) -> Self {
        let (ws, _) = connect_async(url)
            .await
            .unwrap_or_else(|e| panic!("connect {url}: {e}"));
        Self { ws }
    }

    /// Subscribes to `topics` and waits for the node to confirm.
    pub(crate) async fn subscribe(&mut self, topics: &[String]) {
        self.send(format!("sub {}", topics.join(" "))).await;
        let answer = self.recv().await.expect("an answer to sub");
        assert_eq!(answer, format!("ok {}", topics.len()));
    }

    pub(crate) async fn publish(&mut self, topic: &str, payload: &str) {
        self.send(format!("pub {topic} {payload}")).await;
    }

    pub(crate) async fn send(&mut self, text: String) {
        self.ws.send(Message::text(text)).await.expect("send");
    }

    /// The next text message, or `None` if none comes within 5 s.
    pub(crate) async fn recv(&mut self) -> Option<String> {
        self.recv_within(Duration::from_secs(5)).await
    }

    pub(crate) async fn recv_within(&mut self, limit: Duration) -> Option<String> {
        loop {
            match tokio::time::timeout(limit, self.ws.next()).await {
                Err(_) => return None,
                Ok(Some(Ok(Message::Text(text)))) => return Some(text.to_string()),
                Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
                Ok(other) => panic!("expected a text message, got {other:?}"),
            }
        }
    }

    /// Messages until none comes for `quiet`.
    pub(crate) async fn drain(&mut self, quiet: Duration) -> Vec<String> {
        let mut got = Vec::new();
        while let Some(text) = self.recv_within(quiet).await {
            got.push(text);
        }
        got
    }

    pub(crate) async fn close(mut self) {
        let _ = self.ws.close(None).await;
        while let Some(Ok(_)) = self.ws.next().await {}
    }
}
