//! Compile-fail and compile-pass tests of the `#[websocket_route]` macro.
