//! The route path, checked as axum 0.8's router reads it: what it would
//! refuse with a panic at startup is a compile error here, with a path
//! that works as the fix.

use syn::{Error, LitStr};

/// Whether axum 0.8 will take `path`, with the fix if not.
pub(crate) fn check(path: &LitStr) -> syn::Result<()> {
    let value = path.value();
    if !value.starts_with('/') {
        let message = format!("route path must start with `/`: write `\"/{value}\"`");
        return Err(Error::new(path.span(), message));
    }
    // axum 0.8 panics at startup on the 0.7 syntax; say it at compile time.
    if value
        .split('/')
        .any(|s| s.starts_with(':') || s.starts_with('*'))
    {
        let fixed: Vec<String> = value
            .split('/')
            .map(|segment| match segment.strip_prefix(':') {
                Some("") => "{id}".to_owned(),
                Some(name) => format!("{{{name}}}"),
                None if segment == "*" => "{*rest}".to_owned(),
                None if segment.starts_with('*') => format!("{{{segment}}}"),
                None => segment.to_owned(),
            })
            .collect();
        let message = format!(
            "path parameters are written in braces: write `\"{}\"`",
            without_capture_mistakes(fixed.join("/"))
        );
        return Err(Error::new(path.span(), message));
    }
    check_captures(&value).map_err(|message| Error::new(path.span(), message))
}

/// What axum 0.8's router (matchit 0.8) refuses with a panic at startup:
/// braces that do not pair (`{{` and `}}` are literal braces), a capture
/// without a name, `*` or `/` inside a name, text after a capture in its
/// segment, a catch-all `{*name}` before the end. The fix offered is the
/// path with every such mistake fixed, so it is one that works.
fn check_captures(path: &str) -> Result<(), String> {
    let Some(first) = capture_mistake(path) else {
        return Ok(());
    };
    let fixed = without_capture_mistakes(first.fixed);
    Err(format!(
        "{}: write `\"{fixed}\"`{}",
        first.problem, first.note
    ))
}

fn without_capture_mistakes(mut path: String) -> String {
    // Each fix removes a mistake, or moves one on; a few suffice.
    for _ in 0..8 {
        match capture_mistake(&path) {
            Some(next) => path = next.fixed,
            None => break,
        }
    }
    path
}

/// The first capture mistake in a path, and the path with it fixed.
struct CaptureMistake {
    problem: &'static str,
    fixed: String,
    /// Said after the fix.
    note: &'static str,
}

fn capture_mistake(path: &str) -> Option<CaptureMistake> {
    let mistake = |problem, fixed, note| {
        Some(CaptureMistake {
            problem,
            fixed,
            note,
        })
    };
    let bytes = path.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'{' | b'}' if bytes.get(i + 1) == Some(&bytes[i]) => i += 2,
            b'}' => {
                let (before, after) = path.split_at(i);
                let start = before.rfind('/').map_or(0, |s| s + 1);
                let fixed = format!("{}{{{}{}", &before[..start], &before[start..], after);
                return mistake(
                    "`}` without its `{`",
                    fixed,
                    " for a capture, or `}}` for a literal `}`",
                );
            }
            b'{' => {
                let Some(close) = closing_brace(bytes, i + 1) else {
                    let end = path[i..].find('/').map_or(path.len(), |n| i + n);
                    let fixed = format!("{}}}{}", &path[..end], &path[end..]);
                    return mistake(
                        "this capture has no closing `}`",
                        fixed,
                        " (or `{{` for a literal `{`)",
                    );
                };
                let name = &path[i + 1..close];
                let end = close + 1;
                let catch_all = name.starts_with('*');
                let with_name = |name: &str| format!("{}{{{name}}}{}", &path[..i], &path[end..]);
                let unstarred = name.replace('*', "");
                if unstarred.is_empty() {
                    return match catch_all {
                        true => mistake("a catch-all needs a name", with_name("*rest"), ""),
                        false => mistake("a capture needs a name", with_name("id"), ""),
                    };
                }
                if name.chars().skip(1).any(|c| c == '*') {
                    let star = if catch_all { "*" } else { "" };
                    return mistake(
                        "`*` goes only first in a capture, for a catch-all",
                        with_name(&format!("{star}{unstarred}")),
                        "",
                    );
                }
                if catch_all && end != path.len() {
                    return mistake(
                        "a catch-all takes the rest of the path, so it must end it",
                        path[..end].to_owned(),
                        "",
                    );
                }
                if end < path.len() && bytes[end] != b'/' {
                    let segment_end = path[end..].find('/').map_or(path.len(), |n| end + n);
                    return mistake(
                        "a capture must end its segment (`/file-{name}` is allowed, `/{name}.json` is not)",
                        format!("{}{}", &path[..end], &path[segment_end..]),
                        "",
                    );
                }
                i = end;
            }
            _ => i += 1,
        }
    }
    None
}

/// Where the capture whose name starts at `start` closes, as matchit reads
/// it: the name's first byte is anything but `}`, and `}}` within it is a
/// literal brace. `None` for a name that reaches a `/`, or the end, first.
/// A `*` later in the name stops here too: the caller reports it.
fn closing_brace(bytes: &[u8], start: usize) -> Option<usize> {
    if bytes.get(start) == Some(&b'}') {
        return Some(start);
    }
    let mut k = start + 1;
    while k < bytes.len() {
        match bytes[k] {
            b'}' if bytes.get(k + 1) == Some(&b'}') => k += 2,
            b'}' => return Some(k),
            b'/' => return None,
            _ => k += 1,
        }
    }
    None
}
