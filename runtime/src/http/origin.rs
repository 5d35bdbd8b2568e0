//! The origin check against cross-site WebSocket hijacking: which pages
//! may open a WebSocket to this server. Entry point: [`check`].
//!
//! A browser lets any page open a WebSocket to any server, sending the
//! victim's cookies along, and the same-origin policy does not apply to
//! what the page then reads. The `Origin` header is the only sign of which
//! page asked, so it is checked here: by default it must name the server
//! itself (`Host`), or be absent (a client that is not a browser).

use http::header::{self, HeaderMap};

use crate::api::config::Origins;

/// Whether an upgrade with these `headers` may go on: `route` is the
/// route's own list (`origins = [...]`), which wins over `global`.
pub(crate) fn check(headers: &HeaderMap, route: Option<&[&str]>, global: &Origins) -> bool {
    if route.is_none() && *global == Origins::Any {
        return true;
    }
    let mut values = headers.get_all(header::ORIGIN).iter();
    let origin = match (values.next(), values.next()) {
        (None, _) => return true,
        (Some(origin), None) => match origin.to_str() {
            Ok(origin) => origin,
            Err(_) => return false,
        },
        // Browsers send one; two are not from one.
        (Some(_), Some(_)) => return false,
    };
    match (route, global) {
        (Some(list), _) => list.iter().any(|o| o.eq_ignore_ascii_case(origin)),
        (None, Origins::List(list)) => list.iter().any(|o| o.eq_ignore_ascii_case(origin)),
        (None, Origins::Any) => unreachable!("checked above"),
        (None, Origins::SameOrigin) => headers
            .get(header::HOST)
            .and_then(|host| host.to_str().ok())
            .is_some_and(|host| same_origin(origin, host)),
    }
}

/// Whether `origin` (`scheme://host[:port]`) names the server at `host`
/// (the `Host` header, `host[:port]`). A `Host` without a port stands for
/// the origin scheme's default one: `http://a` is `a` and `a:80`.
/// `null` (sandboxed pages, `file:` URLs) and anything unparsable fail.
fn same_origin(origin: &str, host: &str) -> bool {
    let Some((origin_host, origin_port, default_port)) = parse_origin(origin) else {
        return false;
    };
    let Some((host, port)) = split_host_port(host) else {
        return false;
    };
    let port = port.unwrap_or(default_port);
    origin_host.eq_ignore_ascii_case(host) && origin_port == port
}

/// `scheme://host[:port]` with scheme `http` or `https` → host, port
/// (the scheme's default when absent) and the scheme's default port.
fn parse_origin(origin: &str) -> Option<(&str, u16, u16)> {
    let (scheme, rest) = origin.split_once("://")?;
    let default_port = if scheme.eq_ignore_ascii_case("http") {
        80
    } else if scheme.eq_ignore_ascii_case("https") {
        443
    } else {
        return None;
    };
    if rest.contains(['/', '?', '#', '@']) {
        return None;
    }
    let (host, port) = split_host_port(rest)?;
    Some((host, port.unwrap_or(default_port), default_port))
}

/// `host[:port]`, with `[v6]` literals; `None` when empty or the port is
/// not a number.
fn split_host_port(authority: &str) -> Option<(&str, Option<u16>)> {
    let (host, port) = if authority.starts_with('[') {
        let end = authority.find(']')? + 1;
        let (host, rest) = authority.split_at(end);
        match rest {
            "" => (host, None),
            _ => (host, Some(rest.strip_prefix(':')?)),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return None;
    }
    let port = match port {
        Some(port) => Some(port.parse().ok()?),
        None => None,
    };
    Some((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(host: Option<&'static str>, origin: Option<&'static str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(host) = host {
            h.insert(header::HOST, HeaderValue::from_static(host));
        }
        if let Some(origin) = origin {
            h.insert(header::ORIGIN, HeaderValue::from_static(origin));
        }
        h
    }

    fn same(host: &'static str, origin: &'static str) -> bool {
        check(
            &headers(Some(host), Some(origin)),
            None,
            &Origins::SameOrigin,
        )
    }

    #[test]
    fn same_origin_compares_host_and_port_with_default_ports() {
        assert!(same("127.0.0.1:3000", "http://127.0.0.1:3000"));
        assert!(same("a.example", "http://a.example"));
        assert!(same("a.example:80", "http://a.example"));
        assert!(same("a.example", "http://a.example:80"));
        assert!(same("a.example", "https://a.example"));
        assert!(same("a.example:443", "https://a.example"));
        assert!(same("A.Example", "HTTPS://a.EXAMPLE"));
        assert!(same("[::1]:3000", "http://[::1]:3000"));
        assert!(!same("a.example:443", "http://a.example"));
        assert!(!same("a.example:80", "https://a.example"));
        assert!(!same("a.example", "http://a.example:8080"));
        assert!(!same("a.example:3000", "http://a.example:3001"));
        assert!(!same("a.example", "https://evil.example"));
        assert!(!same("a.example", "https://a.example.evil.example"));
    }

    #[test]
    fn null_and_unparsable_origins_are_refused() {
        for origin in [
            "null",
            "a.example",
            "ftp://a.example",
            "http://a.example/",
            "http://a.example/path",
            "http://user@a.example",
            "http://a.example:port",
            "http://",
            "http://:80",
        ] {
            assert!(!same("a.example", origin), "{origin}");
        }
        let no_host = headers(None, Some("http://a.example"));
        assert!(!check(&no_host, None, &Origins::SameOrigin));
    }

    #[test]
    fn requests_without_origin_always_pass() {
        let h = headers(Some("a.example"), None);
        assert!(check(&h, None, &Origins::SameOrigin));
        assert!(check(&h, None, &Origins::List(vec![])));
        assert!(check(&h, Some(&[]), &Origins::SameOrigin));
    }

    #[test]
    fn lists_are_exact_and_the_route_list_wins() {
        let h = headers(Some("api.example"), Some("https://App.example"));
        let list = Origins::List(vec!["https://app.example".into()]);
        assert!(check(&h, None, &list));
        assert!(!check(&h, None, &Origins::SameOrigin));
        assert!(check(&h, None, &Origins::Any));
        let other = Origins::List(vec!["https://app.example:8443".into()]);
        assert!(!check(&h, None, &other));
        // The route's list replaces the global rule, either way.
        assert!(check(
            &h,
            Some(&["https://app.example"]),
            &Origins::SameOrigin
        ));
        assert!(!check(&h, Some(&["https://other.example"]), &Origins::Any));
        let mut two = h.clone();
        two.append(
            header::ORIGIN,
            HeaderValue::from_static("https://app.example"),
        );
        assert!(!check(&two, None, &list));
        assert!(check(&two, None, &Origins::Any));
    }
}
