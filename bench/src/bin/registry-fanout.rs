//! Fan-out by hand on wsroute, as `examples/examples/chat/main.rs` does
//! it: members in an `Arc<Mutex<HashMap<u64, Connection>>>`, joined in
//! `open`, left in `close`, and a loop of `conn.send(msg.clone())` — each
//! subscriber's frame encoded in its own task. The baseline wsroute's
//! topics are measured against (`fanout-runner`, see `bench/README.md`).
//!
//! `GET /sub` upgrades a member; `GET /pub` a publisher, whose messages go
//! to every member.

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex, PoisonError};

use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use wsroute::{CloseReason, Config, Connection, Message, Route, RouterExt, WebSockets};
use wsroute_bench::server::{self, ServerArgs};

/// The members, shared by all connections (the router's state).
#[derive(Clone, Default)]
struct Registry {
    members: Arc<Mutex<HashMap<u64, Connection>>>,
}

/// One connection, by the path it upgraded on.
enum Role {
    Member(Registry),
    Publisher(Registry),
}

impl Route<Registry> for Role {
    const PATH: &'static str = "/{role}";

    async fn accept(request: &mut Parts, registry: &Registry) -> Result<Self, Response> {
        match request.uri.path() {
            "/sub" => Ok(Role::Member(registry.clone())),
            "/pub" => Ok(Role::Publisher(registry.clone())),
            _ => Err((StatusCode::NOT_FOUND, "upgrade on /sub or /pub").into_response()),
        }
    }

    async fn open(&mut self, conn: &Connection) {
        if let Role::Member(registry) = self {
            lock(registry).insert(conn.id(), conn.clone());
        }
    }

    async fn message(&mut self, _conn: &Connection, msg: Message) {
        if let Role::Publisher(registry) = self {
            for member in lock(registry).values() {
                // A full queue or a closing member misses this one; the
                // load generator counts what every member received.
                let _ = member.send(msg.clone());
            }
        }
    }

    async fn close(&mut self, conn: &Connection, _reason: CloseReason) {
        if let Role::Member(registry) = self {
            lock(registry).remove(&conn.id());
        }
    }
}

fn lock(registry: &Registry) -> std::sync::MutexGuard<'_, HashMap<u64, Connection>> {
    // Each update is one insert or remove: a panic cannot leave it torn.
    registry
        .members
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
}

fn main() -> io::Result<()> {
    server::run("registry-fanout", |listener, args: ServerArgs| async move {
        // wsroute::serve sets TCP_NODELAY itself; the runtime flavor applies.
        let _ = args;
        let sockets = WebSockets::new(Config::default().compression(false));
        let app = axum::Router::new()
            .websocket::<Role>(&sockets)
            .with_state(Registry::default());
        wsroute::serve(listener, app, &sockets, std::future::pending()).await
    })
}
