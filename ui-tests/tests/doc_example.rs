//! The example in `websocket_route`'s documentation is `ignore`d there (the
//! macro crate cannot depend on `wsroute`); `tests/pass/doc-example.rs`
//! compiles it. This test keeps the two the same.

#[test]
fn documented_example_is_the_compiled_one() {
    let docs = include_str!("../../macros/src/lib.rs");
    let compiled = include_str!("pass/doc-example.rs");

    let start = docs.find("/// ```ignore\n").expect("the doc example") + "/// ```ignore\n".len();
    let end = start + docs[start..].find("/// ```\n").expect("its end");
    let example: Vec<&str> = docs[start..end]
        .lines()
        .map(|line| line.trim_start_matches("///").trim())
        .filter(|line| !line.is_empty())
        .collect();
    let mut compiled_lines = compiled.lines().map(str::trim);
    for line in &example {
        assert!(
            compiled_lines.any(|c| c == *line),
            "`{line}` of the doc example is missing from (or out of order in) tests/pass/doc-example.rs"
        );
    }
}
