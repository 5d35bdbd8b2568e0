//! The chat's command line: `[--addr HOST:PORT | --port PORT] [--redis URL]`.

use std::net::SocketAddr;

/// Where to listen, and the Redis server shared with other nodes, if any.
pub(crate) struct Args {
    pub(crate) addr: SocketAddr,
    pub(crate) redis: Option<String>,
}

const DEFAULT_ADDR: &str = "127.0.0.1:3000";

impl Args {
    /// Reads the command line; exits with a usage message on anything else,
    /// so that a typo does not start a server on an unexpected address or
    /// a node that is silently alone.
    pub(crate) fn from_env() -> Self {
        match Self::parse(std::env::args().skip(1)) {
            Ok(args) => args,
            Err(why) => {
                let name = std::env::args().next().unwrap_or_default();
                eprintln!("{why}");
                eprintln!(
                    "usage: {name} [--addr HOST:PORT | --port PORT] [--redis redis://HOST:PORT]   (default {DEFAULT_ADDR}, one node)"
                );
                std::process::exit(2)
            }
        }
    }

    fn parse(mut args: impl Iterator<Item = String>) -> Result<Self, String> {
        let mut addr: SocketAddr = DEFAULT_ADDR.parse().map_err(|_| "bad default")?;
        let mut redis = None;
        while let Some(arg) = args.next() {
            let value = args.next().ok_or_else(|| format!("{arg} needs a value"))?;
            match arg.as_str() {
                "--addr" => {
                    addr = value
                        .parse()
                        .map_err(|_| format!("not a HOST:PORT address: {value}"))?;
                }
                "--port" => {
                    let port = value
                        .parse()
                        .map_err(|_| format!("not a port number: {value}"))?;
                    addr.set_port(port);
                }
                "--redis" => redis = Some(value),
                _ => return Err(format!("unknown argument: {arg}")),
            }
        }
        Ok(Self { addr, redis })
    }
}

/// `url` as it may be printed: any password in it replaced by `***`.
pub(crate) fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let host_end = rest.find('/').unwrap_or(rest.len());
    match rest[..host_end].rsplit_once('@') {
        Some((user, host)) => {
            let user = user.split_once(':').map_or(user, |(name, _)| name);
            format!("{scheme}://{user}:***@{host}{}", &rest[host_end..])
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_is_never_printed() {
        let cases = [
            ("redis://127.0.0.1:6379", "redis://127.0.0.1:6379"),
            ("redis://:s3cret@host:6379/0", "redis://:***@host:6379/0"),
            ("redis://app:s3cret@host", "redis://app:***@host"),
            ("rediss://app:p@ss@host/1", "rediss://app:***@host/1"),
        ];
        for (url, shown) in cases {
            assert_eq!(without_password(url), shown);
        }
    }
}
