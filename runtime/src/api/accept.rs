//! What `accept` may return, and how each form answers the request.

// A refusal *is* the HTTP response, built once per refused upgrade, as in
// axum's own extractors; boxing it would add an allocation for nothing.
#![allow(clippy::result_large_err)]

use axum::response::{IntoResponse, Response};
use http::StatusCode;

/// A return type for `accept`: the per-connection state, or a rejection.
///
/// - `Option<Self>`: `None` answers `403 Forbidden`;
/// - `Result<Self, E>` with `E: IntoResponse`: `Err` answers with `E`;
/// - `bool` (Crow's form), when the state is `Default`: `false` answers
///   `403 Forbidden`.
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

impl<T: DefaultState> AcceptOutcome<T> for bool {
    fn into_outcome(self) -> Result<T, Response> {
        if self {
            Ok(T::default_state())
        } else {
            Err(forbidden())
        }
    }
}

/// A state that can be made without `accept`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` needs `Default` to be built without an `accept` that returns it",
    label = "no `Default` for this state",
    note = "derive or implement `Default` for `{Self}`, or write `accept` returning `Option<Self>` or `Result<Self, E>`"
)]
pub trait DefaultState: Sized {
    /// The state for a new connection.
    fn default_state() -> Self;
}

impl<T: Default> DefaultState for T {
    fn default_state() -> Self {
        T::default()
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
