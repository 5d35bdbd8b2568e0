//! The attribute's arguments:
//! `("/path", max_payload = 65536, origins = ["https://app.example"], state = App,
//! compression = false)`.

use proc_macro2::{Span, TokenStream};
use syn::ext::IdentExt;
use syn::parse::{ParseStream, Parser};
use syn::{
    Error, Expr, ExprArray, ExprLit, ExprUnary, Ident, Lit, LitBool, LitInt, LitStr, PathArguments,
    Token, Type, UnOp,
};

use crate::errors::Errors;
use crate::{path, suggest};

// The keys kept in `RouteArgs` for their span. Keys are matched on the
// unraw'd name rather than parsed as these keywords, which would not see
// `r#origins` as `origins`.
mod kw {
    syn::custom_keyword!(max_payload);
    syn::custom_keyword!(origins);
}

/// The keys accepted after the path, for suggestions.
const KEYS: &[&str] = &["max_payload", "origins", "state", "compression"];

/// The arguments, checked: the path is a literal starting with `/`, the
/// limit a positive `u64`.
pub(crate) struct RouteArgs {
    pub(crate) path: LitStr,
    pub(crate) max_payload: Option<MaxPayload>,
    pub(crate) origins: Option<OriginList>,
    /// `state = App`: the router state the route mounts on.
    pub(crate) state: Option<Type>,
    /// `compression = false`: this route's permessage-deflate switch.
    pub(crate) compression: Option<LitBool>,
}

/// `origins = ["https://a.example", ...]`, each checked to be
/// `scheme://host[:port]`.
pub(crate) struct OriginList {
    pub(crate) key: kw::origins,
    pub(crate) origins: Vec<LitStr>,
}

/// `max_payload = N`, with the key kept so generated code can point at it.
pub(crate) struct MaxPayload {
    pub(crate) key: kw::max_payload,
    pub(crate) bytes: u64,
}

/// Parses and checks the arguments, reporting every mistake at once.
pub(crate) fn parse(tokens: TokenStream) -> syn::Result<RouteArgs> {
    let mut errors = Errors::default();
    let parsed = (|input: ParseStream| parse_args(input, &mut errors)).parse2(tokens);
    let args = errors.take(parsed).flatten();
    errors.finish()?;
    Ok(args.expect("a path that is missing or invalid is an error"))
}

/// Returns `None` when a mistake was recorded in `errors`; a syntax error
/// that stops parsing is returned as `Err`.
fn parse_args(input: ParseStream, errors: &mut Errors) -> syn::Result<Option<RouteArgs>> {
    if input.is_empty() {
        return Err(Error::new(
            Span::call_site(),
            "missing route path: write `#[websocket_route(\"/ws\")]`",
        ));
    }
    // `(max_payload = 1)`: the path is missing, and the first key needs no
    // comma before it.
    let mut first = input.peek(Ident::peek_any) && input.peek2(Token![=]);
    let path = if first && input.fork().call(Ident::parse_any)?.unraw() == "path" {
        // `path = "/ws"`, as other attributes spell it: one error, and the
        // path is read as such.
        let key = input.call(Ident::parse_any)?;
        input.parse::<Token![=]>()?;
        let value = match input.parse::<LitStr>() {
            Ok(path) => quote::ToTokens::to_token_stream(&path).to_string(),
            Err(_) => "\"/ws\"".to_owned(),
        };
        skip_argument(input);
        let message =
            format!("write the path first, without `path =`: `#[websocket_route({value})]`");
        errors.push(Error::new(key.span(), message));
        first = false;
        None
    } else if first {
        errors.push(Error::new(
            input.span(),
            "missing route path: write it first, `#[websocket_route(\"/ws\", ...)]`",
        ));
        None
    } else {
        parse_path(input, errors)?
    };

    let mut max_payload = None;
    let mut seen_max_payload = false;
    let mut origins = None;
    let mut seen_origins = false;
    let mut state = None;
    let mut seen_state = false;
    let mut compression = None;
    let mut seen_compression = false;
    while !input.is_empty() {
        if !first {
            input.parse::<Token![,]>()?;
            if input.is_empty() {
                break;
            }
        }
        first = false;

        if !input.peek(Ident::peek_any) {
            return Err(input.error(
                "expected an argument: `max_payload = <bytes>`, `origins = [...]`, `state = AppState` or `compression = false`",
            ));
        }
        // Matched on the unraw'd name, so `r#state` is `state`.
        let key = input.call(Ident::parse_any)?;
        let name = key.unraw().to_string();
        if KEYS.contains(&name.as_str()) && !has_value(input) {
            errors.push(missing_value(&key, &name));
            skip_argument(input);
            continue;
        }
        if name == "max_payload" {
            let key = kw::max_payload { span: key.span() };
            input.parse::<Token![=]>()?;
            let value: Expr = input.parse()?;
            if seen_max_payload {
                errors.push(Error::new(key.span, "`max_payload` given twice"));
            } else if let Some(bytes) = errors.take(max_payload_bytes(&value)) {
                max_payload = Some(MaxPayload { key, bytes });
            }
            seen_max_payload = true;
        } else if name == "origins" {
            let key = kw::origins { span: key.span() };
            input.parse::<Token![=]>()?;
            let value: Expr = input.parse()?;
            if seen_origins {
                errors.push(Error::new(key.span, "`origins` given twice"));
            } else if let Some(list) = errors.take(origin_list(&value)) {
                origins = Some(OriginList { key, origins: list });
            }
            seen_origins = true;
        } else if name == "state" {
            input.parse::<Token![=]>()?;
            let value = state_type(input);
            if seen_state {
                errors.push(Error::new(key.span(), "`state` given twice"));
            } else if let Some(ty) = errors.take(value) {
                state = Some(ty);
            }
            seen_state = true;
        } else if name == "compression" {
            input.parse::<Token![=]>()?;
            let value: Expr = input.parse()?;
            if seen_compression {
                errors.push(Error::new(key.span(), "`compression` given twice"));
            } else if let Some(on) = errors.take(compression_switch(&value)) {
                compression = Some(on);
            }
            seen_compression = true;
        } else {
            if input.peek(Token![=]) {
                input.parse::<Token![=]>()?;
                input.parse::<Expr>()?;
            }
            errors.push(unknown_key(&key));
        }
    }
    Ok(path.map(|path| RouteArgs {
        path,
        max_payload,
        origins,
        state,
        compression,
    }))
}

/// `= value` follows the key.
fn has_value(input: ParseStream) -> bool {
    input.peek(Token![=]) && !input.peek2(Token![,]) && {
        let fork = input.fork();
        fork.parse::<Token![=]>().is_ok() && !fork.is_empty()
    }
}

/// `max_payload` alone, or `max_payload =`: said on the key, with a value.
fn missing_value(key: &Ident, name: &str) -> Error {
    let example = match name {
        "max_payload" => "max_payload = 65536",
        "origins" => "origins = [\"https://app.example.com\"]",
        "state" => "state = AppState",
        _ => "compression = false",
    };
    Error::new(key.span(), format!("`{name}` needs a value: `{example}`"))
}

/// Skips to the comma ending the argument, to report the ones after it.
fn skip_argument(input: ParseStream) {
    let _ = input.step(|cursor| {
        let mut rest = *cursor;
        while let Some((tree, next)) = rest.token_tree() {
            if matches!(&tree, proc_macro2::TokenTree::Punct(p) if p.as_char() == ',') {
                break;
            }
            rest = next;
        }
        Ok(((), rest))
    });
}

/// `compression = true | false`, and nothing else.
fn compression_switch(value: &Expr) -> syn::Result<LitBool> {
    match value {
        Expr::Lit(ExprLit {
            lit: Lit::Bool(on), ..
        }) => Ok(on.clone()),
        other => Err(Error::new_spanned(
            other,
            "`compression` is `true` or `false`: write `compression = false` to turn permessage-deflate off for this route",
        )),
    }
}

/// The first argument. An invalid path is recorded in `errors` and parsing
/// goes on, to report the other arguments' mistakes too.
fn parse_path(input: ParseStream, errors: &mut Errors) -> syn::Result<Option<LitStr>> {
    if input.peek(LitStr) {
        let path: LitStr = input.parse()?;
        return Ok(errors.take(path::check(&path).map(|()| path)));
    }
    let expr: Expr = input.parse()?;
    errors.push(Error::new_spanned(
        &expr,
        "the route path must be a string literal, e.g. `\"/ws\"` (constants cannot be used here)",
    ));
    Ok(None)
}

fn max_payload_bytes(value: &Expr) -> syn::Result<u64> {
    const HELP: &str =
        "write a number of bytes, e.g. `max_payload = 65536`, or `u64::MAX` for no limit";
    match value {
        Expr::Lit(ExprLit {
            lit: Lit::Int(int), ..
        }) => positive_int(int),
        Expr::Path(path) if path.qself.is_none() && is_u64_max(&path.path) => Ok(u64::MAX),
        Expr::Unary(ExprUnary {
            op: UnOp::Neg(_), ..
        }) => Err(Error::new_spanned(
            value,
            format!("`max_payload` cannot be negative: {HELP}"),
        )),
        _ => Err(Error::new_spanned(
            value,
            format!("`max_payload` must be an integer literal: {HELP}"),
        )),
    }
}

/// `state = App`: a type naming the router's state. Anything else (a
/// string, an expression) is an error on it, and parsing goes on after it.
fn state_type(input: ParseStream) -> syn::Result<Type> {
    const HELP: &str = "write the router's state type, e.g. `state = AppState`";
    let fork = input.fork();
    let is_type_then_end =
        fork.parse::<Type>().is_ok() && (fork.is_empty() || fork.peek(Token![,]));
    if !is_type_then_end {
        // Not a type: skip it as an expression to report the other
        // arguments too.
        let value: Expr = input.parse()?;
        let message = match &value {
            Expr::Lit(ExprLit {
                lit: Lit::Str(name),
                ..
            }) => format!(
                "`state` is a type, not a string: write `state = {}`",
                name.value()
            ),
            _ => format!("`state` must be a type: {HELP}"),
        };
        return Err(Error::new_spanned(value, message));
    }
    let ty: Type = input.parse()?;
    let state_like = match &ty {
        Type::Path(path) => path
            .path
            .segments
            .iter()
            .all(|s| !matches!(s.arguments, PathArguments::Parenthesized(_))),
        Type::Tuple(_) | Type::Paren(_) => true,
        _ => false,
    };
    if !state_like {
        return Err(Error::new_spanned(
            ty,
            format!("`state` must be a named type such as a struct: {HELP}"),
        ));
    }
    Ok(ty)
}

fn origin_list(value: &Expr) -> syn::Result<Vec<LitStr>> {
    let Expr::Array(ExprArray { elems, .. }) = value else {
        return Err(Error::new_spanned(
            value,
            "`origins` must be an array of string literals: write `origins = [\"https://app.example.com\"]`",
        ));
    };
    let mut errors: Option<Error> = None;
    let mut list = Vec::new();
    for elem in elems {
        let checked = match elem {
            Expr::Lit(ExprLit {
                lit: Lit::Str(origin),
                ..
            }) => check_origin(origin).map(|()| origin.clone()),
            _ => Err(Error::new_spanned(
                elem,
                "`origins` entries must be string literals: write `\"https://app.example.com\"`",
            )),
        };
        match checked {
            Ok(origin) => list.push(origin),
            Err(e) => match &mut errors {
                Some(all) => all.combine(e),
                None => errors = Some(e),
            },
        }
    }
    match errors {
        Some(e) => Err(e),
        None => Ok(list),
    }
}

/// An origin as a browser sends it: `http` or `https`, `://`, a host, an
/// optional port, and nothing after (the `Origin` header has no path).
fn check_origin(origin: &LitStr) -> syn::Result<()> {
    let value = origin.value();
    let fix = |example: String| {
        let message = format!(
            "an origin is `scheme://host[:port]` with scheme `http` or `https` and no path: write `\"{example}\"`"
        );
        Err(Error::new(origin.span(), message))
    };
    let Some((scheme, rest)) = value.split_once("://") else {
        return fix(format!("https://{}", value.trim_end_matches('/')));
    };
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return fix(format!("https://{rest}"));
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) if !authority.ends_with(']') => (host, Some(port)),
        _ => (authority, None),
    };
    if host.contains('*') {
        let message = "origins are matched exactly, without wildcards: list each one, e.g. `origins = [\"https://app.example.com\", \"https://admin.example.com\"]`";
        return Err(Error::new(origin.span(), message));
    }
    let port_ok = port.is_none_or(|p| p.parse::<u16>().is_ok());
    if !host_ok(host) || !port_ok {
        return fix("https://app.example.com".to_owned());
    }
    if authority.len() != rest.len() {
        return fix(format!("{scheme}://{authority}"));
    }
    Ok(())
}

/// A name (letters, digits, `-`, `.`) or a bracketed IPv6 address: what a
/// browser can put in an `Origin`, so an entry that could never match one
/// is caught here.
fn host_ok(host: &str) -> bool {
    match host.strip_prefix('[') {
        Some(v6) => v6
            .strip_suffix(']')
            .is_some_and(|a| a.parse::<std::net::Ipv6Addr>().is_ok()),
        None => {
            !host.is_empty()
                && host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        }
    }
}

fn positive_int(int: &LitInt) -> syn::Result<u64> {
    if !matches!(int.suffix(), "" | "u64") {
        let message = format!(
            "`max_payload` is a `u64`: write `{}` without the `{}` suffix",
            int.base10_digits(),
            int.suffix()
        );
        return Err(Error::new(int.span(), message));
    }
    match int.base10_parse::<u64>() {
        Ok(0) => Err(Error::new(
            int.span(),
            "`max_payload = 0` would refuse every non-empty message: write a number of bytes, e.g. `65536`, or `u64::MAX` for no limit",
        )),
        Ok(bytes) => Ok(bytes),
        Err(_) => Err(Error::new(
            int.span(),
            "`max_payload` is at most `u64::MAX`, which turns the limit off: write `u64::MAX`",
        )),
    }
}

fn is_u64_max(path: &syn::Path) -> bool {
    let names: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    path.segments.iter().all(|s| s.arguments.is_none())
        && matches!(names[..], ["u64", "MAX"] | ["core" | "std", "u64", "MAX"])
}

fn unknown_key(key: &Ident) -> Error {
    let name = key.unraw().to_string();
    let message = match suggest::nearest(&name, KEYS) {
        Some(known) => format!("unknown argument `{name}`, did you mean `{known}`?"),
        None => format!(
            "unknown argument `{name}`: after the path, the arguments are `max_payload = <bytes>`, `origins = [\"https://host\"]`, `state = AppState` and `compression = false`"
        ),
    };
    Error::new(key.span(), message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn error_of(tokens: TokenStream) -> String {
        match parse(tokens) {
            Ok(_) => panic!("expected an error"),
            Err(e) => e
                .into_iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join(" | "),
        }
    }

    #[test]
    fn parses_path_and_limit() {
        let args = parse(quote!("/rooms/{id}", max_payload = 65536,)).unwrap();
        assert_eq!(args.path.value(), "/rooms/{id}");
        assert_eq!(args.max_payload.unwrap().bytes, 65536);

        let args = parse(quote!("/ws")).unwrap();
        assert!(args.max_payload.is_none());
    }

    #[test]
    fn accepts_u64_max_spelt_either_way() {
        for tokens in [
            quote!("/", max_payload = u64::MAX),
            quote!("/", max_payload = 18446744073709551615),
            quote!("/", max_payload = 18_446_744_073_709_551_615u64),
            quote!("/", max_payload = core::u64::MAX),
        ] {
            assert_eq!(parse(tokens).unwrap().max_payload.unwrap().bytes, u64::MAX);
        }
    }

    #[test]
    fn explains_bad_paths() {
        assert_eq!(
            error_of(quote!()),
            "missing route path: write `#[websocket_route(\"/ws\")]`"
        );
        assert!(error_of(quote!(max_payload = 1)).starts_with("missing route path"));
        assert!(error_of(quote!(PATH)).starts_with("the route path must be a string literal"));
        assert_eq!(
            error_of(quote!("ws")),
            "route path must start with `/`: write `\"/ws\"`"
        );
        assert_eq!(
            error_of(quote!("/rooms/:id/*rest")),
            "path parameters are written in braces: write `\"/rooms/{id}/{*rest}\"`"
        );
        assert!(error_of(quote!("/files/*")).ends_with("`\"/files/{*rest}\"`"));
        assert!(error_of(quote!("/files/*rest/x")).ends_with("`\"/files/{*rest}\"`"));
    }

    #[test]
    fn explains_captures_axum_refuses() {
        for (bad, fix) in [
            ("/rooms/{id", "/rooms/{id}"),
            ("/rooms/{id/messages", "/rooms/{id}/messages"),
            ("/rooms/id}", "/rooms/{id}"),
            ("/rooms/{}", "/rooms/{id}"),
            ("/files/{*}", "/files/{*rest}"),
            ("/files/{*rest}/x", "/files/{*rest}"),
            ("/files/{a*b}", "/files/{ab}"),
            ("/files/{name}.json", "/files/{name}"),
            ("/{a}{b}", "/{a}"),
            ("/{é", "/{é}"),
        ] {
            let error = error_of(quote!(#bad));
            assert!(
                error.contains(&format!("write `\"{fix}\"`")),
                "{bad}: {error}"
            );
        }
        // Valid in axum 0.8: escaped braces, a prefix before a capture.
        for good in [
            "/{{literal}}",
            "/a/{{/{id}",
            "/file-{name}",
            "/{*rest}",
            "/{id}/x",
        ] {
            assert!(parse(quote!(#good)).is_ok(), "{good}");
        }
    }

    #[test]
    fn explains_bad_limits() {
        assert!(error_of(quote!("/", max_payload = 0)).starts_with("`max_payload = 0`"));
        assert!(error_of(quote!("/", max_payload = -1)).contains("cannot be negative"));
        assert!(error_of(quote!("/", max_payload = "64")).contains("must be an integer literal"));
        assert!(error_of(quote!("/", max_payload = 1.5)).contains("must be an integer literal"));
        assert!(error_of(quote!("/", max_payload = 64 * 1024)).contains("integer literal"));
        assert!(error_of(quote!("/", max_payload = 5u8)).contains("without the `u8` suffix"));
        assert!(error_of(quote!("/", max_payload = 18446744073709551616)).contains("at most"));
    }

    #[test]
    fn explains_bad_keys() {
        assert_eq!(
            error_of(quote!("/", max_paylod = 1)),
            "unknown argument `max_paylod`, did you mean `max_payload`?"
        );
        assert!(error_of(quote!("/", timeout = 1)).contains("the arguments are"));
        assert_eq!(
            error_of(quote!("/", origin = ["https://a.example"])),
            "unknown argument `origin`, did you mean `origins`?"
        );
        assert_eq!(
            error_of(quote!("/", max_payload = 1, max_payload = 2)),
            "`max_payload` given twice"
        );
    }

    #[test]
    fn parses_and_checks_origins() {
        let args = parse(quote!(
            "/",
            origins = ["https://a.example", "http://localhost:3000"]
        ))
        .unwrap();
        let list: Vec<String> = args
            .origins
            .unwrap()
            .origins
            .iter()
            .map(LitStr::value)
            .collect();
        assert_eq!(list, ["https://a.example", "http://localhost:3000"]);
        assert!(parse(quote!("/", origins = ["http://[::1]:8080"])).is_ok());
        assert!(error_of(quote!("/", origins = "https://a.example")).contains("must be an array"));
        assert!(error_of(quote!("/", origins = [ORIGIN])).contains("must be string literals"));
        for (bad, fix) in [
            ("https://a.example/", "`\"https://a.example\"`"),
            ("https://a.example/app", "`\"https://a.example\"`"),
            ("a.example", "`\"https://a.example\"`"),
            ("ws://a.example", "`\"https://a.example\"`"),
            ("https://a.example:port", "`\"https://app.example.com\"`"),
            ("https://", "`\"https://app.example.com\"`"),
        ] {
            let error = error_of(quote!("/", origins = [#bad]));
            assert!(error.ends_with(fix), "{bad}: {error}");
        }
        assert_eq!(
            error_of(quote!("/", origins = [], origins = [])),
            "`origins` given twice"
        );
    }

    #[test]
    fn parses_and_checks_the_state() {
        let args = parse(quote!("/", state = app::App, max_payload = 1)).unwrap();
        assert_eq!(
            quote::ToTokens::to_token_stream(&args.state.unwrap()).to_string(),
            "app :: App"
        );
        assert!(parse(quote!("/", state = ())).unwrap().state.is_some());
        assert!(
            parse(quote!("/", state = Shared<Db>))
                .unwrap()
                .state
                .is_some()
        );
        assert_eq!(
            error_of(quote!("/", state = "App")),
            "`state` is a type, not a string: write `state = App`"
        );
        assert!(error_of(quote!("/", state = 1)).contains("`state = AppState`"));
        assert!(error_of(quote!("/", state = App::new())).contains("`state = AppState`"));
        assert!(error_of(quote!("/", state = impl Clone)).contains("a named type"));
        assert_eq!(
            error_of(quote!("/", state = App, state = App)),
            "`state` given twice"
        );
        assert_eq!(
            error_of(quote!("/", sate = App)),
            "unknown argument `sate`, did you mean `state`?"
        );
        // The value of a bad `state` is skipped: the next mistake is found.
        let all = error_of(quote!("/", state = 1 + 2, max_payload = 0));
        assert_eq!(all.matches(" | ").count(), 1, "{all}");
    }

    #[test]
    fn explains_keys_without_values_and_path_as_a_key() {
        assert_eq!(
            error_of(quote!(path = "/ws")),
            "write the path first, without `path =`: `#[websocket_route(\"/ws\")]`"
        );
        assert_eq!(
            error_of(quote!("/ws", max_payload)),
            "`max_payload` needs a value: `max_payload = 65536`"
        );
        assert_eq!(
            error_of(quote!("/ws", compression =, max_payload = 0))
                .split(" | ")
                .count(),
            2
        );
        assert!(error_of(quote!("/ws", origins =)).starts_with("`origins` needs a value"));
    }

    #[test]
    fn takes_raw_keys_as_keys() {
        let args = parse(quote!("/", r#max_payload = 5, r#state = App)).unwrap();
        assert_eq!(args.max_payload.unwrap().bytes, 5);
        assert!(args.state.is_some());
    }

    #[test]
    fn reports_every_mistake() {
        let all = error_of(quote!("ws", max_payload = 0, size = 1));
        assert_eq!(all.matches(" | ").count(), 2, "{all}");
    }
}
