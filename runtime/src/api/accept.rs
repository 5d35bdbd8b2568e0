//! What `accept` may return, and how each form answers the request.

// A refusal *is* the HTTP response, built once per refused upgrade, as in
// axum's own extractors; boxing it would add an allocation for nothing.
#![allow(clippy::result_large_err)]

use axum::response::{IntoResponse, Response};
use http::StatusCode;

/// What the `accept` event of a [`websocket_route`](crate::websocket_route)
/// may return: the per-connection state `T`, or a refusal that answers the
/// request instead of upgrading it.
///
/// - `Option<T>`: `None` answers `403 Forbidden`;
/// - `Result<T, E>` with `E: IntoResponse`: `Err` answers with `E`;
/// - `bool` (Crow's form), when `T: Default`: `true` upgrades with
///   `T::default()`, `false` answers `403 Forbidden`.
///
/// ```
/// use axum::http::StatusCode;
/// use wsroute::AcceptOutcome;
///
/// let refused: Result<u8, StatusCode> = Err(StatusCode::UNAUTHORIZED);
/// let response = refused.into_outcome().unwrap_err();
/// assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
/// let upgraded: Result<u8, _> = true.into_outcome();
/// assert_eq!(upgraded.unwrap(), 0);
/// ```
#[diagnostic::on_unimplemented(
    message = "`accept` cannot return `{Self}`",
    label = "not a state or a rejection",
    note = "return `Option<Self>`, `Result<Self, E>` with `E: IntoResponse`, or `bool` when `Self: Default`"
)]
pub trait AcceptOutcome<T> {
    /// The state, or the response that refuses the upgrade.
    fn into_outcome(self) -> Result<T, Response>;
}

impl<T> AcceptOutcome<T> for Option<T> {
    fn into_outcome(self) -> Result<T, Response> {
        self.ok_or_else(forbidden)
    }
}

impl<T, E: IntoResponse> AcceptOutcome<T> for Result<T, E> {
    fn into_outcome(self) -> Result<T, Response> {
        self.map_err(IntoResponse::into_response)
    }
}

impl<T: Default> AcceptOutcome<T> for bool {
    fn into_outcome(self) -> Result<T, Response> {
        if self {
            Ok(T::default())
        } else {
            Err(forbidden())
        }
    }
}

fn forbidden() -> Response {
    (StatusCode::FORBIDDEN, "WebSocket connection refused").into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_form_accepts_and_refuses() {
        assert!(Some(1).into_outcome().is_ok());
        let none: Option<u8> = None;
        assert_eq!(
            none.into_outcome().unwrap_err().status(),
            StatusCode::FORBIDDEN
        );
        let teapot: Result<u8, StatusCode> = Err(StatusCode::IM_A_TEAPOT);
        assert_eq!(
            teapot.into_outcome().unwrap_err().status(),
            StatusCode::IM_A_TEAPOT
        );
        let ok: Result<u8, Response> = true.into_outcome();
        assert_eq!(ok.unwrap(), 0);
        let refused: Result<u8, Response> = false.into_outcome();
        assert_eq!(refused.unwrap_err().status(), StatusCode::FORBIDDEN);
    }
}
