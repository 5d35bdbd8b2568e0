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
        let handler = move |State(state): State<S>, request: Request| {
            let sockets = sockets.clone();
            async move { sockets.upgrade::<R, S>(state, request).await }
        };
        // GET for HTTP/1.1, CONNECT for HTTP/2 (RFC 8441).
        axum::routing::get(handler.clone()).connect(handler)
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
