//! The opening handshake (RFC 6455 §4.2): checking the client's upgrade
//! request and building the `101 Switching Protocols` answer — or, over
//! HTTP/2, the extended CONNECT (RFC 8441 §4) and its `200`.

use axum::body::Body;
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::request::Parts;
use http::{Method, StatusCode, Version};
use sha1::{Digest, Sha1};

/// Appended to the client's key before hashing (§1.3).
const ACCEPT_GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Why an upgrade request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rejection {
    NotGet,
    /// A plain request, without `Upgrade`.
    NotAnUpgrade,
    NotHttp11,
    UpgradeNotWebsocket,
    ConnectionNotUpgrade,
    UnsupportedVersion,
    BadKey,
    /// `Content-Length` other than 0, or a `Transfer-Encoding`: the bytes
    /// after the head would be taken for frames (§4.1 sends no body).
    HasBody,
    /// No `Host` header (§4.2.1 item 2), more than one, or one that names
    /// no host (RFC 9112 §3.2: answered with 400).
    BadHost,
    /// More than one `Sec-WebSocket-Version` (§11.3.5: it appears once).
    RepeatedVersion,
    /// An `Origin` the route or [`Config`](crate::Config) does not allow.
    CrossOrigin,
    /// An HTTP/2 CONNECT whose `:protocol` is missing or not `websocket`.
    ConnectNotWebsocket,
}

impl Rejection {
    pub(crate) fn into_response(self) -> Response {
        let (status, message) = match self {
            Self::NotGet => (
                StatusCode::METHOD_NOT_ALLOWED,
                "a WebSocket upgrade must be a GET request",
            ),
            Self::NotAnUpgrade => (
                StatusCode::UPGRADE_REQUIRED,
                "this is a WebSocket endpoint: connect with a WebSocket client",
            ),
            Self::NotHttp11 => (
                StatusCode::BAD_REQUEST,
                "a WebSocket upgrade needs HTTP/1.1",
            ),
            Self::UpgradeNotWebsocket => (
                StatusCode::BAD_REQUEST,
                "the Upgrade header must name `websocket`",
            ),
            Self::ConnectionNotUpgrade => (
                StatusCode::BAD_REQUEST,
                "the Connection header must include `upgrade`",
            ),
            Self::UnsupportedVersion => (
                StatusCode::UPGRADE_REQUIRED,
                "only WebSocket version 13 is supported",
            ),
            Self::BadKey => (
                StatusCode::BAD_REQUEST,
                "exactly one Sec-WebSocket-Key header, of 16 bytes in base64, is required",
            ),
            Self::HasBody => (
                StatusCode::BAD_REQUEST,
                "a WebSocket upgrade request has no body: send no Content-Length or Transfer-Encoding",
            ),
            Self::BadHost => (
                StatusCode::BAD_REQUEST,
                "a WebSocket upgrade needs exactly one Host header, naming the server as host[:port]",
            ),
            Self::RepeatedVersion => (
                StatusCode::BAD_REQUEST,
                "send one Sec-WebSocket-Version header: `Sec-WebSocket-Version: 13`",
            ),
            Self::ConnectNotWebsocket => (
                StatusCode::BAD_REQUEST,
                "a WebSocket over HTTP/2 is an extended CONNECT with `:protocol` websocket (RFC 8441)",
            ),
            Self::CrossOrigin => (
                StatusCode::FORBIDDEN,
                "WebSocket upgrades from this Origin are not allowed: list it in Config::allowed_origins([...]) or the route's `origins = [...]`",
            ),
        };
        let mut response = reject(status, message);
        let h = response.headers_mut();
        match self {
            // RFC 9110 §15.5.6: a 405 says which methods would do.
            Self::NotGet => {
                h.insert(header::ALLOW, HeaderValue::from_static("GET"));
            }
            Self::NotAnUpgrade => {
                h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
                h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
            }
            Self::UnsupportedVersion => {
                h.insert(
                    header::SEC_WEBSOCKET_VERSION,
                    HeaderValue::from_static("13"),
                );
            }
            _ => {}
        }
        response
    }
}

/// Checks that `request` is a valid WebSocket upgrade; returns the
/// `Sec-WebSocket-Accept` value to answer with, or `None` for an HTTP/2
/// extended CONNECT, which is answered without one.
///
/// A plain GET (no `Upgrade` header) gets `426 Upgrade Required`, naming
/// the protocol to upgrade to, so a browser or curl user sees at once that
/// this is a WebSocket endpoint.
pub(crate) fn check(request: &Parts) -> Result<Option<HeaderValue>, Rejection> {
    let headers = &request.headers;
    if request.method == Method::CONNECT && request.version == Version::HTTP_2 {
        return check_extended_connect(request).map(|()| None);
    }
    if request.method != Method::GET {
        return Err(Rejection::NotGet);
    }
    if !headers.contains_key(header::UPGRADE) {
        return Err(Rejection::NotAnUpgrade);
    }
    if request.version != Version::HTTP_11 {
        return Err(Rejection::NotHttp11);
    }
    if !has_token(headers, header::UPGRADE, "websocket") {
        return Err(Rejection::UpgradeNotWebsocket);
    }
    if !has_token(headers, header::CONNECTION, "upgrade") {
        return Err(Rejection::ConnectionNotUpgrade);
    }
    check_host(headers)?;
    let has_body = headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get_all(header::CONTENT_LENGTH)
            .iter()
            .any(|v| v.as_bytes() != b"0");
    if has_body {
        return Err(Rejection::HasBody);
    }
    check_version(headers)?;
    let mut keys = headers.get_all(header::SEC_WEBSOCKET_KEY).iter();
    match (keys.next(), keys.next()) {
        (Some(key), None) if is_valid_key(key.as_bytes()) => Ok(Some(accept_key(key.as_bytes()))),
        _ => Err(Rejection::BadKey),
    }
}

/// RFC 8441 §4–5: `:protocol` names `websocket`; the version is checked
/// as over HTTP/1.1, but there is no key (the stream itself is the proof
/// the server understood), no `Upgrade`/`Connection`, and the stream's
/// DATA frames are the WebSocket, so a body is expected.
fn check_extended_connect(request: &Parts) -> Result<(), Rejection> {
    let protocol = request.extensions.get::<hyper::ext::Protocol>();
    if protocol.map(hyper::ext::Protocol::as_str) != Some("websocket") {
        return Err(Rejection::ConnectNotWebsocket);
    }
    check_version(&request.headers)
}

/// HTTP/2 carries the host in `:authority`, which hyper puts in the URI,
/// not in a `Host` header; the same-origin check reads the header, so an
/// extended CONNECT gets one, as its HTTP/1.1 upgrade would have had.
pub(crate) fn authority_as_host(request: &mut Parts) {
    if request.version != Version::HTTP_2 || request.headers.contains_key(header::HOST) {
        return;
    }
    let host = request
        .uri
        .authority()
        .and_then(|authority| HeaderValue::from_str(authority.as_str()).ok());
    if let Some(host) = host {
        request.headers.insert(header::HOST, host);
    }
}

fn check_version(headers: &HeaderMap) -> Result<(), Rejection> {
    let mut versions = headers.get_all(header::SEC_WEBSOCKET_VERSION).iter();
    match (versions.next(), versions.next()) {
        (Some(version), None) if version.as_bytes() == b"13" => Ok(()),
        (Some(_), Some(_)) => Err(Rejection::RepeatedVersion),
        _ => Err(Rejection::UnsupportedVersion),
    }
}

/// One `Host`, an authority without user information: what the
/// same-origin check compares the `Origin` with.
fn check_host(headers: &HeaderMap) -> Result<(), Rejection> {
    let mut hosts = headers.get_all(header::HOST).iter();
    let (Some(host), None) = (hosts.next(), hosts.next()) else {
        return Err(Rejection::BadHost);
    };
    match http::uri::Authority::try_from(host.as_bytes()) {
        Ok(authority) if !authority.as_str().contains('@') && !authority.host().is_empty() => {
            Ok(())
        }
        _ => Err(Rejection::BadHost),
    }
}

/// The first of the server's `supported` subprotocols that the client
/// offers (§4.2.2 step 5.4: the server picks one of the client's values).
pub(crate) fn choose_protocol<'a>(headers: &HeaderMap, supported: &'a [String]) -> Option<&'a str> {
    let offered: Vec<&str> = headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    supported
        .iter()
        .map(String::as_str)
        .find(|p| offered.contains(p))
}

/// The `101 Switching Protocols` response completing the handshake, or
/// for an extended CONNECT (`accept` is `None`) its `200` (RFC 8441 §5),
/// which has no `Upgrade`, `Connection` or `Sec-WebSocket-Accept`.
pub(crate) fn switching_protocols(
    accept: Option<HeaderValue>,
    protocol: Option<&str>,
    extensions: Option<HeaderValue>,
) -> Response {
    let mut response = Response::new(Body::empty());
    let h = response.headers_mut();
    if let Some(accept) = accept {
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        h.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    }
    *response.status_mut() = if h.contains_key(header::SEC_WEBSOCKET_ACCEPT) {
        StatusCode::SWITCHING_PROTOCOLS
    } else {
        StatusCode::OK
    };
    let h = response.headers_mut();
    if let Some(value) = protocol.and_then(|p| HeaderValue::from_str(p).ok()) {
        h.insert(header::SEC_WEBSOCKET_PROTOCOL, value);
    }
    if let Some(value) = extensions {
        h.insert(header::SEC_WEBSOCKET_EXTENSIONS, value);
    }
    response
}

/// `base64(SHA-1(key ++ GUID))` (§4.2.2).
pub(crate) fn accept_key(key: &[u8]) -> HeaderValue {
    let mut sha1 = Sha1::new();
    sha1.update(key);
    sha1.update(ACCEPT_GUID);
    let encoded = BASE64.encode(sha1.finalize());
    HeaderValue::from_str(&encoded).expect("base64 is a valid header value")
}

/// A plain-text error response.
pub(crate) fn reject(status: StatusCode, message: &'static str) -> Response {
    let mut response = Response::new(Body::from(message));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

fn is_valid_key(key: &[u8]) -> bool {
    // 16 bytes encode to 24 characters ending in "==".
    key.len() == 24 && BASE64.decode(key).is_ok_and(|raw| raw.len() == 16)
}

/// Whether any of the `name` headers holds `token` in its comma-separated
/// list, compared case-insensitively (`Connection: keep-alive, Upgrade`).
fn has_token(headers: &HeaderMap, name: HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Request;

    const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

    fn request(edit: impl FnOnce(&mut http::request::Builder)) -> Parts {
        let mut b = Request::builder()
            .method("GET")
            .uri("/ws")
            .header("host", "example.com")
            .header("upgrade", "websocket")
            .header("connection", "Upgrade")
            .header("sec-websocket-version", "13")
            .header("sec-websocket-key", KEY);
        edit(&mut b);
        b.body(()).unwrap().into_parts().0
    }

    fn status(parts: &Parts) -> StatusCode {
        check(parts)
            .err()
            .map_or(StatusCode::SWITCHING_PROTOCOLS, |r| {
                r.into_response().status()
            })
    }

    #[test]
    fn rfc_sample_key_gives_the_rfc_accept_value() {
        // §1.3's worked example.
        assert_eq!(accept_key(KEY.as_bytes()), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        assert_eq!(
            check(&request(|_| {})).unwrap().unwrap(),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn token_lists_and_case_are_accepted() {
        let parts = request(|b| {
            let h = b.headers_mut().unwrap();
            h.insert(
                "connection",
                HeaderValue::from_static("keep-alive, UPGRADE"),
            );
            h.insert("upgrade", HeaderValue::from_static("WebSocket"));
        });
        assert!(check(&parts).is_ok());
    }

    #[test]
    fn plain_get_gets_426_naming_websocket() {
        let parts = request(|b| {
            let h = b.headers_mut().unwrap();
            h.remove("upgrade");
            h.remove("connection");
        });
        let response = check(&parts).unwrap_err().into_response();
        assert_eq!(response.status(), StatusCode::UPGRADE_REQUIRED);
        assert_eq!(response.headers()["upgrade"], "websocket");
    }

    #[test]
    fn wrong_method_version_or_headers_are_refused() {
        let post = request(|b| {
            *b = std::mem::take(b).method("POST");
        });
        assert_eq!(status(&post), StatusCode::METHOD_NOT_ALLOWED);
        let http10 = request(|b| {
            *b = std::mem::take(b).version(Version::HTTP_10);
        });
        assert_eq!(status(&http10), StatusCode::BAD_REQUEST);
        let not_ws = request(|b| {
            b.headers_mut()
                .unwrap()
                .insert("upgrade", HeaderValue::from_static("h2c"));
        });
        assert_eq!(status(&not_ws), StatusCode::BAD_REQUEST);
        let no_conn = request(|b| {
            b.headers_mut()
                .unwrap()
                .insert("connection", HeaderValue::from_static("keep-alive"));
        });
        assert_eq!(status(&no_conn), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn a_repeated_or_malformed_host_gets_400() {
        for hosts in [
            &["a.example", "b.example"][..],
            &["a/b"],
            &["user@a.example"],
            &[":80"],
            &[""],
        ] {
            let parts = request(|b| {
                let h = b.headers_mut().unwrap();
                h.remove("host");
                for host in hosts {
                    h.append("host", HeaderValue::from_static(host));
                }
            });
            assert_eq!(check(&parts), Err(Rejection::BadHost), "{hosts:?}");
        }
        for host in ["a.example", "a.example:8080", "127.0.0.1:9001", "[::1]:80"] {
            let parts = request(|b| {
                let h = b.headers_mut().unwrap();
                h.insert("host", HeaderValue::from_static(host));
            });
            assert!(check(&parts).is_ok(), "{host}");
        }
    }

    // §11.3.5: the header appears once; a second must not be able to
    // change what was agreed, whichever comes first.
    #[test]
    fn a_repeated_version_gets_400() {
        for second in ["8", "13"] {
            let parts = request(|b| {
                b.headers_mut()
                    .unwrap()
                    .append("sec-websocket-version", HeaderValue::from_static(second));
            });
            assert_eq!(
                check(&parts),
                Err(Rejection::RepeatedVersion),
                "13, {second}"
            );
            assert_eq!(status(&parts), StatusCode::BAD_REQUEST);
        }
    }

    #[test]
    fn a_405_says_get_would_do() {
        let head = request(|b| {
            *b = std::mem::take(b).method("HEAD");
        });
        let response = check(&head).unwrap_err().into_response();
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(response.headers()["allow"], "GET");
    }

    #[test]
    fn a_body_or_a_missing_host_gets_400() {
        for (name, value) in [
            ("content-length", "5"),
            ("transfer-encoding", "chunked"),
            ("transfer-encoding", "identity"),
        ] {
            let parts = request(|b| {
                b.headers_mut()
                    .unwrap()
                    .insert(name, HeaderValue::from_static(value));
            });
            assert_eq!(check(&parts), Err(Rejection::HasBody), "{name}: {value}");
            assert_eq!(status(&parts), StatusCode::BAD_REQUEST);
        }
        let empty = request(|b| {
            b.headers_mut()
                .unwrap()
                .insert("content-length", HeaderValue::from_static("0"));
        });
        assert!(check(&empty).is_ok());
        let no_host = request(|b| {
            b.headers_mut().unwrap().remove("host");
        });
        assert_eq!(check(&no_host), Err(Rejection::BadHost));
        assert_eq!(status(&no_host), StatusCode::BAD_REQUEST);
        assert_eq!(
            Rejection::CrossOrigin.into_response().status(),
            StatusCode::FORBIDDEN
        );
    }

    #[test]
    fn other_versions_get_426_with_the_supported_version() {
        for version in Some("8").into_iter().map(Some).chain([None]) {
            let parts = request(|b| {
                let h = b.headers_mut().unwrap();
                match version {
                    Some(v) => h.insert("sec-websocket-version", HeaderValue::from_static(v)),
                    None => h.remove("sec-websocket-version"),
                };
            });
            let response = check(&parts).unwrap_err().into_response();
            assert_eq!(response.status(), StatusCode::UPGRADE_REQUIRED);
            assert_eq!(response.headers()["sec-websocket-version"], "13");
        }
    }

    #[test]
    fn the_first_supported_protocol_the_client_offers_is_chosen() {
        let supported = ["v2.chat".to_owned(), "v1.chat".to_owned()];
        let parts = request(|b| {
            let h = b.headers_mut().unwrap();
            h.append(
                "sec-websocket-protocol",
                HeaderValue::from_static("other, v1.chat"),
            );
            h.append(
                "sec-websocket-protocol",
                HeaderValue::from_static("v2.chat"),
            );
        });
        assert_eq!(choose_protocol(&parts.headers, &supported), Some("v2.chat"));
        let none = request(|_| {});
        assert_eq!(choose_protocol(&none.headers, &supported), None);
        let response = switching_protocols(Some(accept_key(KEY.as_bytes())), Some("v1.chat"), None);
        assert_eq!(response.headers()["sec-websocket-protocol"], "v1.chat");
    }

    #[test]
    fn keys_that_are_not_16_bytes_of_base64_get_400() {
        for key in [
            "",
            "short",
            "dGhlIHNhbXBsZSBub25jZQ",
            "dGhlIHNhbXBsZSBub25jZQ=!",
            "dGhlIHNhbXBsZSBub25jZXg=",
        ] {
            let parts = request(|b| {
                b.headers_mut()
                    .unwrap()
                    .insert("sec-websocket-key", HeaderValue::from_str(key).unwrap());
            });
            assert_eq!(status(&parts), StatusCode::BAD_REQUEST, "key {key:?}");
        }
        let missing = request(|b| {
            b.headers_mut().unwrap().remove("sec-websocket-key");
        });
        assert_eq!(status(&missing), StatusCode::BAD_REQUEST);
        let twice = request(|b| {
            b.headers_mut()
                .unwrap()
                .append("sec-websocket-key", HeaderValue::from_static(KEY));
        });
        assert_eq!(status(&twice), StatusCode::BAD_REQUEST);
    }

    fn extended_connect(protocol: Option<&'static str>, version: &str) -> Parts {
        let mut b = Request::builder()
            .method("CONNECT")
            .version(Version::HTTP_2)
            .uri("https://example.com/ws")
            .header("sec-websocket-version", version);
        if let Some(protocol) = protocol {
            b = b.extension(hyper::ext::Protocol::from_static(protocol));
        }
        b.body(()).unwrap().into_parts().0
    }

    #[test]
    fn an_extended_connect_is_answered_200_without_an_accept_key() {
        let parts = extended_connect(Some("websocket"), "13");
        assert_eq!(check(&parts), Ok(None));
        let response = switching_protocols(None, Some("v1.chat"), None);
        assert_eq!(response.status(), StatusCode::OK);
        for name in ["sec-websocket-accept", "upgrade", "connection"] {
            assert!(!response.headers().contains_key(name), "{name}");
        }
        assert_eq!(response.headers()["sec-websocket-protocol"], "v1.chat");

        assert_eq!(
            check(&extended_connect(Some("chat"), "13")),
            Err(Rejection::ConnectNotWebsocket)
        );
        assert_eq!(
            check(&extended_connect(None, "13")),
            Err(Rejection::ConnectNotWebsocket)
        );
        assert_eq!(
            check(&extended_connect(Some("websocket"), "8")),
            Err(Rejection::UnsupportedVersion)
        );
    }

    #[test]
    fn the_authority_stands_in_for_host_over_http2_only() {
        let mut parts = extended_connect(Some("websocket"), "13");
        authority_as_host(&mut parts);
        assert_eq!(parts.headers["host"], "example.com");
        let mut http11 = request(|b| {
            b.headers_mut().unwrap().remove("host");
        });
        authority_as_host(&mut http11);
        assert!(!http11.headers.contains_key("host"));
    }
}
