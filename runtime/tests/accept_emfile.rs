//! `wsroute::serve` out of file descriptors: the accept loop backs off,
//! logs the episode once (not once per failed accept), and serves again
//! once descriptors are free. Runs in a child process, since it lowers the
//! process's `RLIMIT_NOFILE`.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const CHILD: &str = "WSROUTE_EMFILE_CHILD";

#[test]
fn accept_loop_survives_running_out_of_file_descriptors() {
    if std::env::var_os(CHILD).is_some() {
        return child();
    }
    let output = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "accept_loop_survives_running_out_of_file_descriptors",
            "--nocapture",
        ])
        .env(CHILD, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("child done"), "{stdout}\n{stderr}");
}

fn child() {
    let limit = libc::rlimit {
        rlim_cur: 64,
        rlim_max: 64,
    };
    // SAFETY: `setrlimit` reads the struct we pass and touches no memory
    // of ours; lowering the limit only makes later `open`s fail.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) }, 0);
    let warnings = Arc::new(AtomicUsize::new(0));
    let _log = tracing::subscriber::set_default(CountWarnings(warnings.clone()));
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(run(&warnings));
    let usage = cpu_time();
    // Spinning on a failing accept for the half second below would burn
    // about that much CPU; backing off burns next to none.
    assert!(usage < Duration::from_millis(300), "CPU time {usage:?}");
    println!("child done");
}

async fn run(warnings: &AtomicUsize) {
    let sockets = wsroute::WebSockets::default();
    let app = axum::Router::new().route("/", axum::routing::get(|| async { "up" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        wsroute::serve(listener, app, &sockets, std::future::pending())
            .await
            .unwrap()
    });
    // Each connection takes two descriptors, the client's and the
    // server's; the last ones wait in the backlog, unaccepted.
    let mut clients = Vec::new();
    while let Ok(client) = TcpStream::connect(addr).await {
        clients.push(client);
        assert!(clients.len() < 1000, "the descriptor limit never hit");
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        warnings.load(Ordering::SeqCst),
        1,
        "one warning per episode"
    );
    drop(clients);
    // Once the server sees them close, it accepts again.
    let mut response = String::new();
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if let Ok(mut client) = TcpStream::connect(addr).await {
            client
                .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .await
                .unwrap();
            client.read_to_string(&mut response).await.unwrap();
            break;
        }
    }
    assert!(response.ends_with("up"), "{response}");
    assert_eq!(
        warnings.load(Ordering::SeqCst),
        2,
        "one more line when accepting works again"
    );
}

/// User and system CPU time of this process.
fn cpu_time() -> Duration {
    // SAFETY: `getrusage` fills the zeroed struct we own.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        assert_eq!(libc::getrusage(libc::RUSAGE_SELF, &mut usage), 0);
        usage
    };
    let time = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    time(usage.ru_utime) + time(usage.ru_stime)
}

/// Counts `warn!` events from `wsroute::serve`; records nothing else.
struct CountWarnings(Arc<AtomicUsize>);

impl tracing::Subscriber for CountWarnings {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let meta = event.metadata();
        if *meta.level() == tracing::Level::WARN
            && meta.target().starts_with("wsroute::http::serve")
        {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}
