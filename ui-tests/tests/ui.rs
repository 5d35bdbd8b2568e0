//! Compile-pass and compile-fail cases of `#[websocket_route]`: one
//! supported form or one mistake per file, named after it. Regenerate the
//! expected errors with `TRYBUILD=overwrite cargo test -p wsroute-ui-tests`
//! and read each `.stderr` as a user would.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/pass/*.rs");
    t.compile_fail("tests/fail/*.rs");
}
