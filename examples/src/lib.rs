//! Runnable examples for wsroute: see `examples/`.
