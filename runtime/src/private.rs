//! Everything the `#[websocket_route]` macro's generated code names, in one
//! place: generated code refers only to `::wsroute::__private::…` and
//! `::core::…`, so it works whatever the user's module imports or shadows.
//! Not a stable API.

// A refusal *is* the HTTP response, built once per refused upgrade, as in
// axum's own extractors; boxing it would add an allocation for nothing.
#![allow(clippy::result_large_err)]

pub use core::future::Future;
pub use core::marker::{Send, Sync};

pub use axum::extract::FromRequestParts;
pub use axum::response::Response;
pub use http::request::Parts;

pub use crate::api::accept::{AcceptOutcome, DefaultState};
pub use crate::api::connection::Connection;
pub use crate::api::error::{CloseReason, Error};
pub use crate::api::json::FromMessage;
pub use crate::api::route::Route;
pub use crate::proto::Message;

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

/// Passes an event's argument to the user's method, whose parameter has
/// type `T`: `T` must be `A`, the type the event is given. A mismatch is
/// reported under the user's parameter type, with the signatures to write.
#[diagnostic::on_unimplemented(
    message = "this parameter of the event is `{A}`, not `{Self}`",
    label = "expected `{A}`",
    note = "the events are `open(&mut self, conn: &Connection)`, `message(&mut self, conn: &Connection, msg: Message)`, `error(&mut self, conn: &Connection, err: &Error)` and `close(&mut self, conn: &Connection, reason: CloseReason)`"
)]
pub trait EventArg<A>: Sized {
    /// The argument, unchanged.
    fn from_arg(arg: A) -> Self;
}

impl<A> EventArg<A> for A {
    fn from_arg(arg: A) -> A {
        arg
    }
}

/// See [`EventArg`].
pub fn event_arg<T: EventArg<A>, A>(arg: A) -> T {
    T::from_arg(arg)
}

/// Converts a received message to the type `message` takes.
pub fn from_message<T: FromMessage>(message: Message) -> Result<T, Error> {
    T::from_message(message)
}
