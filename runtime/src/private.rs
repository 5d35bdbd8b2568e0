//! Everything the `#[websocket_route]` macro's generated code names, in one
//! place: generated code refers only to `::wsroute::__private::…` and
//! `::core::…`, so it works whatever the user's module imports or shadows.
//! Not a stable API.

pub use core::future::Future;
pub use core::marker::{Send, Sync};

pub use axum::extract::FromRequestParts;
pub use axum::response::Response;
pub use http::request::Parts;

pub use crate::accept::{AcceptOutcome, DefaultState};
pub use crate::connection::Connection;
pub use crate::error::{CloseReason, Error};
pub use crate::json::FromMessage;
pub use crate::message::Message;
pub use crate::route::Route;

/// Runs one extractor of `accept`'s arguments; its rejection answers the
/// request.
pub async fn extract<T, S>(parts: &mut Parts, state: &S) -> Result<T, Response>
where
    T: FromRequestParts<S>,
    S: Send + Sync,
{
    match T::from_request_parts(parts, state).await {
        Ok(value) => Ok(value),
        Err(rejection) => Err(axum::response::IntoResponse::into_response(rejection)),
    }
}

/// Turns what `accept` returned into the state or the refusal.
pub fn accept_outcome<T, O: AcceptOutcome<T>>(outcome: O) -> Result<T, Response> {
    outcome.into_outcome()
}

/// The state of a route without `accept`.
pub fn default_state<T: DefaultState>() -> Result<T, Response> {
    Ok(T::default_state())
}

/// Converts a received message to the type `message` takes.
pub fn from_message<T: FromMessage>(message: Message) -> Result<T, Error> {
    T::from_message(message)
}
