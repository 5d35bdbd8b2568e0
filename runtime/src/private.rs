//! Everything the `#[websocket_route]` macro's generated code names, in one
//! place: generated code refers only to `::wsroute::__private::…` and
//! `::core::…`, so it works whatever the user's module imports or shadows.
//! Not a stable API.
//!
//! Generated code calls the public traits (`FromRequestParts`,
//! `FromMessage`, `AcceptOutcome`) directly rather than through wrapper
//! functions here, so that rustc's "required by a bound in" notes name
//! items a user can look up.

pub use core::future::Future;
pub use core::marker::{Send, Sync};

pub use axum::extract::{FromRef, FromRequestParts, State};
pub use axum::response::{IntoResponse, Response};
pub use http::request::Parts;

pub use crate::api::accept::AcceptOutcome;
pub use crate::api::connection::Connection;
pub use crate::api::error::{CloseReason, Error};
pub use crate::api::json::FromMessage;
pub use crate::api::route::Route;
pub use crate::proto::Message;

/// Asserted of the impl's self type by a never-called function, so that a
/// state that is not `Send` is an error on that type even if the route is
/// never mounted. `do_not_recommend` makes rustc report this trait, with
/// its note, instead of the field's bare `Send`, which has no advice.
#[diagnostic::on_unimplemented(
    message = "the route's state `{Self}` must be `Send`",
    label = "not `Send`",
    note = "each connection runs on a tokio task, which may move between threads: use `Arc` and `Mutex` instead of `Rc` and `RefCell`, or keep the value out of the state"
)]
pub trait StateIsSend {}

#[diagnostic::do_not_recommend]
impl<T: ?Sized + Send> StateIsSend for T {}

/// What `State<X>`, an argument of `accept`, needs of `X` on a router whose
/// state is `S`: what axum's `State` extractor needs, stated as its own
/// trait so the error says what to do.
#[diagnostic::on_unimplemented(
    message = "`State<{Self}>` needs `{Self}` to be the route's state `{S}` or to implement `FromRef<{S}>`",
    label = "not `{S}`, and no `FromRef<{S}>`",
    note = "implement `axum::extract::FromRef<{S}>` for `{Self}` (or derive `FromRef` on `{S}`), or take `State<{S}>`"
)]
pub trait SubState<S>: Sized {
    /// `X` taken out of the router's state.
    fn from_state(state: &S) -> Self;
}

#[diagnostic::do_not_recommend]
impl<X: FromRef<S>, S> SubState<S> for X {
    fn from_state(state: &S) -> X {
        X::from_ref(state)
    }
}
