//! The pieces of the wsroute benchmark that its binaries share.
//!
//! Binaries (see `bench/README.md`):
//! - `runner`: builds and starts every server pinned to one core, drives
//!   `loadgen` from the other, and writes `results/latest.{md,json}` and
//!   `results/throughput.svg`;
//! - `loadgen`: the load generator (echo throughput and latency, or the
//!   idle-memory run);
//! - `tcp-echo`, `axum-echo`, `fastwebsockets-echo`, `sockudo-echo`
//!   (permessage-deflate), `wsroute-hand-echo`: the echo servers, all on
//!   [`server::run`];
//! - `fanout-runner`, `fanout-load` and the fan-out servers
//!   `wsroute-fanout` (topics), `registry-fanout` (a hand-written member
//!   loop) and `tcp-fanout` (raw TCP): one publish to N subscribers,
//!   written to `results/fanout.md`.
//!
//! This library holds what more than one of them needs: the servers'
//! command line and runtime ([`server`]), reading a process's CPU time and
//! memory from `/proc` ([`procfs`]), the TLS of the TLS cells ([`tls`]), and the JSON reports `loadgen` prints
//! and `runner` reads ([`report`]).

pub mod procfs;
pub mod raw_client;
pub mod report;
pub mod server;
pub mod spawned;
pub mod tls;
