//! `wsroute::test` itself: what a request carries to `accept`, and how the
//! client reports what a test awaits but does not get.

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::{ConnectInfo, Query};
use serde::{Deserialize, Serialize};
use wsroute::test::{TestError, TestServer};
use wsroute::{CloseCode, Config, Connection, Message, RouterExt, WebSockets};

#[derive(Deserialize)]
struct Hello {
    name: String,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Greeting {
    to: String,
    from: String,
    agent: String,
}

/// Greets by the query's name, from the address axum's extractor and
/// `wsroute::Request` both see; refuses a client without a user agent.
struct Greeter {
    name: String,
    agent: String,
    addr: SocketAddr,
}

#[wsroute::websocket_route("/greet")]
impl Greeter {
    async fn accept(
        Query(hello): Query<Hello>,
        ConnectInfo(addr): ConnectInfo<SocketAddr>,
        request: wsroute::Request,
    ) -> Option<Self> {
        assert_eq!(request.remote_addr(), Some(addr));
        let agent = request.header("user-agent")?.to_owned();
        Some(Greeter {
            name: hello.name,
            agent,
            addr,
        })
    }

    fn message(&mut self, conn: &Connection, msg: Message) {
        match msg.as_text() {
            Some("greet") => {
                let greeting = Greeting {
                    to: self.name.clone(),
                    from: self.addr.to_string(),
                    agent: self.agent.clone(),
                };
                conn.send_json(&greeting).unwrap();
            }
            Some("quiet") => {}
            Some("leave") => conn.close(CloseCode(4001), "asked to").unwrap(),
            _ => {
                let echo: Greeting = serde_json::from_slice(msg.as_bytes()).unwrap();
                conn.send_json(&echo).unwrap();
            }
        }
    }
}

fn server() -> TestServer {
    let sockets = WebSockets::new(Config::default());
    TestServer::new(axum::Router::new().websocket::<Greeter>(&sockets))
}

#[tokio::test]
async fn query_headers_and_remote_address_reach_accept() {
    let mut client = server()
        .request("/greet")
        .query("name", "ann & bob")
        .header("user-agent", "tests")
        .remote_addr("192.0.2.7:1234".parse().unwrap())
        .connect()
        .await;
    client.send_text("greet").await;
    let greeting: Greeting = client.recv_json().await;
    assert_eq!(
        greeting,
        Greeting {
            to: "ann & bob".into(),
            from: "192.0.2.7:1234".into(),
            agent: "tests".into(),
        }
    );
    client.send_json(&greeting).await;
    assert_eq!(client.recv_json::<Greeting>().await, greeting);
}

#[tokio::test]
async fn a_refused_upgrade_reports_its_status() {
    let refused = server().request("/greet?name=ann").try_connect().await;
    match refused {
        Err(TestError::Refused { status, .. }) => assert_eq!(status, 403),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn the_server_s_close_is_reported_to_recv_and_closed() {
    let mut client = server()
        .request("/greet?name=ann")
        .header("user-agent", "tests")
        .connect()
        .await;
    client.send_text("leave").await;
    let err = client.try_recv().await.unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"the server closed the connection (4001 "asked to") instead of sending a message"#
    );
    let close = client.closed().await;
    assert_eq!(
        (close.code, close.reason.as_str()),
        (CloseCode(4001), "asked to")
    );
    client.ended().await;
}

#[tokio::test]
async fn recv_fails_after_the_timeout_naming_what_it_awaited() {
    let mut client = server()
        .request("/greet?name=ann")
        .header("user-agent", "tests")
        .connect()
        .await;
    client.set_timeout(Duration::from_millis(50));
    client.send_text("quiet").await;
    let err = client.try_recv().await.unwrap_err();
    assert!(
        err.to_string()
            .starts_with("timed out after 50ms waiting for a message"),
        "{err}"
    );
}

#[tokio::test]
#[should_panic(expected = "tests/test_client.rs")]
async fn a_failing_helper_names_the_test_s_line() {
    let mut client = server()
        .request("/greet?name=ann")
        .header("user-agent", "tests")
        .connect()
        .await;
    client.set_timeout(Duration::from_millis(10));
    client.recv().await;
}
