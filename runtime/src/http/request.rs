//! The upgrade request as `accept` sees it — Crow's `const crow::request&`.

use std::borrow::Cow;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts, RawPathParams};
use http::request::Parts;
use http::{HeaderMap, Method, Uri};

/// The HTTP request that asks for the WebSocket upgrade. Take it as an
/// argument of `accept` (it is an axum extractor, like `Query` or `State`).
///
/// ```
/// # use wsroute::Request;
/// fn name_of(req: &Request) -> Option<String> {
///     req.query_param("name").map(|n| n.into_owned()).filter(|n| !n.is_empty())
/// }
/// ```
#[derive(Debug, Clone)]
pub struct Request {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    remote_addr: Option<SocketAddr>,
    path_params: Vec<(String, String)>,
}

impl Request {
    /// Reads what `accept` may look at from the request head.
    pub fn from_parts(parts: &Parts) -> Self {
        Self {
            method: parts.method.clone(),
            uri: parts.uri.clone(),
            headers: parts.headers.clone(),
            remote_addr: parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|info| info.0),
            path_params: Vec::new(),
        }
    }

    /// The request method (always `GET` for an upgrade).
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The request URI: path and query.
    pub fn uri(&self) -> &Uri {
        &self.uri
    }

    /// The request headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// One header's value, if present and valid text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The client's address: always under [`wsroute::serve`](crate::serve);
    /// under `axum::serve`, when the router was served with
    /// `into_make_service_with_connect_info::<SocketAddr>()`.
    pub fn remote_addr(&self) -> Option<SocketAddr> {
        self.remote_addr
    }

    /// The raw query string, without `?`.
    pub fn query(&self) -> Option<&str> {
        self.uri.query()
    }

    /// The first value of a query parameter, percent-decoded.
    pub fn query_param(&self, name: &str) -> Option<Cow<'_, str>> {
        let query = self.uri.query()?;
        form_urlencoded::parse(query.as_bytes())
            .find(|(key, _)| key == name)
            .map(|(_, value)| value)
    }

    /// A path parameter of the route (`/rooms/{id}` → `path_param("id")`),
    /// percent-decoded.
    pub fn path_param(&self, name: &str) -> Option<&str> {
        self.path_params
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// All path parameters, in route order.
    pub fn path_params(&self) -> impl Iterator<Item = (&str, &str)> {
        self.path_params
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Request {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let mut request = Self::from_parts(parts);
        // Absent outside a router with path parameters: then there are none.
        if let Ok(params) = RawPathParams::from_request_parts(parts, state).await {
            request.path_params = params
                .iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
        }
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_method_uri_headers_and_query() {
        let (mut parts, ()) = http::Request::builder()
            .uri("/ws?name=J%C3%BCrgen&room=a+b&flag")
            .header("x-token", "t")
            .body(())
            .unwrap()
            .into_parts();
        let req = Request::from_request_parts(&mut parts, &()).await.unwrap();
        assert_eq!(req.method(), Method::GET);
        assert_eq!(req.uri().path(), "/ws");
        assert_eq!(req.header("x-token"), Some("t"));
        assert_eq!(req.query_param("name").as_deref(), Some("Jürgen"));
        assert_eq!(req.query_param("room").as_deref(), Some("a b"));
        assert_eq!(req.query_param("flag").as_deref(), Some(""));
        assert_eq!(req.query_param("missing"), None);
        assert_eq!(req.path_param("id"), None);
        assert_eq!(req.remote_addr(), None);
    }
}
