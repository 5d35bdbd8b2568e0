//! Mounting routes on an axum `Router`.

use axum::Router;
use axum::extract::{Request, State};
use axum::routing::MethodRouter;

use crate::api::route::Route;
use crate::api::websockets::WebSockets;

impl WebSockets {
    /// The axum handler for route `R`, to mount yourself
    /// (`router.route(R::PATH, sockets.handler::<R, _>())`);
    /// [`RouterExt::websocket`] does both in one call.
    pub fn handler<R, S>(&self) -> MethodRouter<S>
    where
        R: Route<S>,
        S: Clone + Send + Sync + 'static,
    {
        let sockets = self.clone();
        axum::routing::get(move |State(state): State<S>, request: Request| {
            let sockets = sockets.clone();
            async move { sockets.upgrade::<R, S>(state, request).await }
        })
    }
}

/// Mounts WebSocket routes on an axum [`Router`] in one call.
pub trait RouterExt<S> {
    /// Adds route `R` at `R::PATH`, with `sockets`' settings.
    fn websocket<R: Route<S>>(self, sockets: &WebSockets) -> Self;
}

impl<S: Clone + Send + Sync + 'static> RouterExt<S> for Router<S> {
    fn websocket<R: Route<S>>(self, sockets: &WebSockets) -> Self {
        self.route(R::PATH, sockets.handler::<R, S>())
    }
}
