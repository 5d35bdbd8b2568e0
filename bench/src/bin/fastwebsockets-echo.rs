//! Echo server on fastwebsockets, as its `examples/echo_server.rs` writes
//! it: hyper's HTTP/1 server with `upgrade::upgrade`, a `FragmentCollector`
//! (which reassembles fragments and validates text as UTF-8), auto-close
//! and auto-pong left on (the default), and the connection task run
//! `unconstrained` as the example does. `--tls`: the same over
//! tokio-rustls.

use std::io;

use fastwebsockets::{FragmentCollector, OpCode, WebSocketError, upgrade};
use http_body_util::Empty;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::TlsAcceptor;
use wsroute_bench::server::{self, ServerArgs};
use wsroute_bench::tls;

fn main() -> io::Result<()> {
    server::run(
        "fastwebsockets-echo",
        |listener, args: ServerArgs| async move {
            let acceptor = args.tls.then(|| TlsAcceptor::from(tls::server_config()));
            loop {
                let (stream, _) = listener.accept().await?;
                server::configure(&stream, &args);
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    match acceptor {
                        None => serve(stream).await,
                        // Boxed, so plain connections' tasks do not
                        // carry the TLS state.
                        Some(acceptor) => {
                            Box::pin(async move {
                                if let Ok(stream) = acceptor.accept(stream).await {
                                    serve(stream).await;
                                }
                            })
                            .await
                        }
                    }
                });
            }
        },
    )
}

async fn serve<S>(stream: S)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let connection = http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service_fn(server_upgrade))
        .with_upgrades();
    let _ = connection.await;
}

async fn server_upgrade(
    mut req: Request<Incoming>,
) -> Result<Response<Empty<Bytes>>, WebSocketError> {
    let (response, fut) = upgrade::upgrade(&mut req)?;
    tokio::spawn(async move {
        // Errors are the load generator hanging up at the end of a run.
        let _ = tokio::task::unconstrained(echo(fut)).await;
    });
    Ok(response)
}

async fn echo(fut: upgrade::UpgradeFut) -> Result<(), WebSocketError> {
    let mut ws = FragmentCollector::new(fut.await?);
    loop {
        let frame = ws.read_frame().await?;
        match frame.opcode {
            OpCode::Close => break,
            OpCode::Text | OpCode::Binary => ws.write_frame(frame).await?,
            _ => {}
        }
    }
    Ok(())
}
