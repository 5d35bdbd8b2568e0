//! Procedural macros for `wsroute`. Use them through the `wsroute` crate,
//! which re-exports them and provides everything the generated code names.
