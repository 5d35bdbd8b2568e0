//! Echo over wss:// served directly, HTTP/2 (RFC 8441) or HTTP/1.1 as the
//! client's ALPN chooses, with a page at `/` to try it from a browser.
//!
//! ```sh
//! # a certificate chain and key from PEM files (e.g. Let's Encrypt's):
//! cargo run -p wsroute-examples --example tls -- --cert fullchain.pem --key privkey.pem
//! # or a self-signed one for localhost, made at start-up:
//! cargo run -p wsroute-examples --example tls -- --self-signed --addr 127.0.0.1:8443
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::http::Version;
use axum::response::Html;
use wsroute::rustls::ServerConfig;
use wsroute::rustls::pki_types::pem::PemObject;
use wsroute::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use wsroute::{Config, Connection, Message, RouterExt, WebSockets, websocket_route};

/// Echoes every message, after telling the client which HTTP version its
/// WebSocket came over: a browser that reached the page over HTTP/2 opens
/// it as a stream of that connection (RFC 8441), and says `HTTP/2.0`.
struct Echo {
    version: Version,
}

#[websocket_route("/echo")]
impl Echo {
    async fn accept(version: Version) -> Option<Self> {
        Some(Echo { version })
    }

    fn open(&mut self, conn: &Connection) {
        let _ = conn.send_text(format!("over {:?}", self.version));
    }

    fn message(&mut self, conn: &Connection, msg: Message) {
        let _ = conn.send(msg);
    }
}

const PAGE: &str = r#"<!doctype html><meta charset="utf-8"><title>wss echo</title>
<pre id="log"></pre><script>
const log = (line) => document.getElementById("log").textContent += line + "\n";
const ws = new WebSocket(`wss://${location.host}/echo`);
ws.onopen = () => { log("open"); ws.send("hello over TLS"); };
ws.onmessage = (e) => {
  log("got: " + e.data);
  if (e.data === "hello over TLS") ws.close(1000, "done");
};
ws.onclose = (e) => log(`closed ${e.code}${e.wasClean ? " clean" : ""} ${e.reason}`.trim());
</script>"#;

/// Where the certificate comes from.
enum Certificate {
    Files { cert: PathBuf, key: PathBuf },
    SelfSigned,
}

struct Args {
    addr: SocketAddr,
    certificate: Certificate,
}

const USAGE: &str =
    "usage: tls (--cert CHAIN.pem --key KEY.pem | --self-signed) [--addr HOST:PORT]";

fn args() -> Result<Args, String> {
    let (mut addr, mut cert, mut key, mut self_signed) =
        ("127.0.0.1:8443".to_owned(), None, None, false);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--self-signed" => self_signed = true,
            "--addr" | "--cert" | "--key" => {
                let value = args.next().ok_or(format!("{arg} needs a value"))?;
                match arg.as_str() {
                    "--addr" => addr = value,
                    "--cert" => cert = Some(PathBuf::from(value)),
                    _ => key = Some(PathBuf::from(value)),
                }
            }
            _ => return Err(format!("unknown argument {arg}")),
        }
    }
    let certificate = match (cert, key, self_signed) {
        (Some(cert), Some(key), false) => Certificate::Files { cert, key },
        (None, None, true) => Certificate::SelfSigned,
        _ => return Err("give --cert and --key, or --self-signed".to_owned()),
    };
    let addr = addr
        .parse()
        .map_err(|_| format!("not a HOST:PORT address: {addr}"))?;
    Ok(Args { addr, certificate })
}

/// The chain (leaf first) and its key.
fn load(
    certificate: &Certificate,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), String> {
    match certificate {
        Certificate::Files { cert, key } => {
            let chain = CertificateDer::pem_file_iter(cert)
                .and_then(Iterator::collect::<Result<Vec<_>, _>>)
                .map_err(|e| format!("{}: no PEM certificates: {e}", cert.display()))?;
            if chain.is_empty() {
                return Err(format!("{}: no PEM certificates", cert.display()));
            }
            let key = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| format!("{}: no PEM private key: {e}", key.display()))?;
            Ok((chain, key))
        }
        Certificate::SelfSigned => {
            let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
            let made = rcgen::generate_simple_self_signed(names).map_err(|e| e.to_string())?;
            let key = PrivatePkcs8KeyDer::from(made.signing_key.serialize_der());
            Ok((vec![made.cert.der().clone()], key.into()))
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = args().unwrap_or_else(|e| {
        eprintln!("{e}\n{USAGE}");
        std::process::exit(2)
    });
    let (chain, key) = load(&args.certificate)?;
    let mut tls = ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    // HTTP/2 first: browsers then open their WebSockets as streams of it.
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];

    let sockets = WebSockets::new(Config::default());
    let app = axum::Router::new()
        .route("/", axum::routing::get(|| async { Html(PAGE) }))
        .websocket::<Echo>(&sockets);
    let listener = tokio::net::TcpListener::bind(args.addr).await?;
    println!(
        "serving https://{0}/ and wss://{0}/echo",
        listener.local_addr()?
    );
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    wsroute::serve_tls(listener, Arc::new(tls), app, &sockets, ctrl_c).await?;
    Ok(())
}
