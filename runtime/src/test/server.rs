//! The server side of a test connection: a router served by hyper over an
//! in-memory pipe, and the request that opens it.

use std::net::SocketAddr;
use std::panic::Location;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use http::{HeaderName, HeaderValue};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio_tungstenite::tungstenite::Error as WireError;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tower_service::Service;

use super::{TestError, TestSocket};

/// The remote address a test connection reports unless
/// [`TestRequest::remote_addr`] sets another.
pub const DEFAULT_REMOTE_ADDR: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 49152);

/// Bytes either end of the pipe buffers before a writer waits, as a
/// socket's buffer would.
const PIPE_CAPACITY: usize = 64 * 1024;

/// A router to open test connections to. Cheap to clone.
#[derive(Debug, Clone)]
pub struct TestServer {
    app: Router,
}

impl TestServer {
    /// Serves `app` (routes mounted with
    /// [`RouterExt::websocket`](crate::RouterExt::websocket), state given)
    /// to test connections only.
    pub fn new(app: Router) -> Self {
        Self { app }
    }

    /// A request to `path` (which may carry a query, `"/ws?name=ann"`), to
    /// add headers or a remote address to before connecting.
    pub fn request(&self, path: &str) -> TestRequest {
        TestRequest {
            app: self.app.clone(),
            path: path.to_owned(),
            headers: Vec::new(),
            remote_addr: DEFAULT_REMOTE_ADDR,
        }
    }

    /// Opens a WebSocket to `path`; panics, naming the path, if the server
    /// does not upgrade it.
    #[track_caller]
    pub fn connect(&self, path: &str) -> impl Future<Output = TestSocket> + Send + 'static {
        self.request(path).connect()
    }
}

/// The upgrade request of a test connection, built up with setters.
#[derive(Debug)]
pub struct TestRequest {
    app: Router,
    path: String,
    headers: Vec<(HeaderName, HeaderValue)>,
    remote_addr: SocketAddr,
}

impl TestRequest {
    /// Adds a header (repeat it for several values). Panics on a name or
    /// value that is not valid HTTP.
    #[track_caller]
    pub fn header(mut self, name: &str, value: &str) -> Self {
        let name = HeaderName::try_from(name)
            .unwrap_or_else(|e| panic!("header name {name:?} is not valid: {e}"));
        let value = HeaderValue::try_from(value)
            .unwrap_or_else(|e| panic!("header value {value:?} is not valid: {e}"));
        self.headers.push((name, value));
        self
    }

    /// Appends `key=value` to the query, URL-encoded.
    pub fn query(mut self, key: &str, value: &str) -> Self {
        let pair: String = form_urlencoded::Serializer::new(String::new())
            .append_pair(key, value)
            .finish();
        let separator = if self.path.contains('?') { '&' } else { '?' };
        self.path.push(separator);
        self.path.push_str(&pair);
        self
    }

    /// Offers a subprotocol (`Sec-WebSocket-Protocol`).
    pub fn protocol(self, protocol: &str) -> Self {
        self.header("sec-websocket-protocol", protocol)
    }

    /// The peer address the server sees, as `ConnectInfo<SocketAddr>`
    /// (what [`Connection::remote_addr`](crate::Connection::remote_addr)
    /// and [`Request::remote_addr`](crate::Request::remote_addr) report).
    pub fn remote_addr(mut self, addr: SocketAddr) -> Self {
        self.remote_addr = addr;
        self
    }

    /// Opens the WebSocket; panics with the server's answer if it is not
    /// upgraded.
    #[track_caller]
    pub fn connect(self) -> impl Future<Output = TestSocket> + Send + 'static {
        let caller = Location::caller();
        async move {
            let path = self.path.clone();
            match self.try_connect().await {
                Ok(socket) => socket,
                Err(e) => panic!("{caller}: connecting to {path}: {e}"),
            }
        }
    }

    /// Opens the WebSocket, or says why the server did not upgrade it.
    pub async fn try_connect(self) -> Result<TestSocket, TestError> {
        let mut request = format!("ws://localhost{}", self.path)
            .into_client_request()
            .map_err(TestError::Client)?;
        for (name, value) in self.headers {
            request.headers_mut().append(name, value);
        }
        let (client, server) = tokio::io::duplex(PIPE_CAPACITY);
        tokio::spawn(serve_pipe(server, self.app, self.remote_addr));
        match tokio_tungstenite::client_async(request, client).await {
            Ok((stream, _response)) => Ok(TestSocket::new(stream, self.path)),
            Err(WireError::Http(response)) => {
                let (parts, body) = response.into_parts();
                Err(TestError::Refused {
                    status: parts.status,
                    body: String::from_utf8_lossy(body.as_deref().unwrap_or_default()).into(),
                })
            }
            Err(e) => Err(TestError::Client(e)),
        }
    }
}

/// Serves one HTTP/1.1 connection over the pipe, as `wsroute::serve` does
/// over TCP: with upgrades, and the peer's address in `ConnectInfo`.
async fn serve_pipe(pipe: tokio::io::DuplexStream, app: Router, addr: SocketAddr) {
    let service = hyper::service::service_fn(move |mut request: http::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(addr));
        let mut app = app.clone();
        // A Router is always ready: `call` without `poll_ready`.
        app.call(request.map(Body::new))
    });
    let connection = http1::Builder::new()
        .serve_connection(TokioIo::new(pipe), service)
        .with_upgrades();
    if let Err(e) = connection.await {
        tracing::debug!(error = %e, "test connection ended with an HTTP error");
    }
}
