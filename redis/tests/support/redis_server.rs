//! A `redis-server` of the test's own, on a free loopback port, stopped
//! when dropped.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub(crate) struct RedisServer {
    pub(crate) port: u16,
    child: Option<Child>,
    /// Arguments of its own, after the test's defaults.
    args: Vec<String>,
}

impl RedisServer {
    /// Starts one on a free port.
    pub(crate) fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts one on a free port, with more `redis-server` arguments
    /// (`--requirepass x`, say).
    pub(crate) fn start_with(args: &[&str]) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let args = args.iter().map(|&a| a.to_owned()).collect();
        let mut server = Self {
            port,
            child: None,
            args,
        };
        server.restart();
        server
    }

    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts it (again) on the same port, and waits until it answers.
    pub(crate) fn restart(&mut self) {
        assert!(self.child.is_none(), "already running");
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--protected-mode", "no"])
            .args(&self.args)
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run redis-server ({e}): install it with `bash .ci/setup` (Debian's redis-server)")
            });
        self.child = Some(child);
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "redis-server did not start"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Stops it with SIGSTOP (`pause: true`: it holds its connections
    /// and answers nothing) or lets it go on with SIGCONT.
    #[allow(dead_code)] // by `faults.rs` only
    pub(crate) fn pause(&self, pause: bool) {
        let pid = self.child.as_ref().expect("running").id();
        let signal = if pause { "-STOP" } else { "-CONT" };
        let status = Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill {signal} {pid}");
    }

    /// Kills it (SIGKILL: no goodbye to its clients) and waits for it.
    pub(crate) fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub(crate) async fn connection(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .expect("connect to the test's redis-server")
    }

    /// `PUBSUB CHANNELS pattern`, sorted.
    pub(crate) async fn channels(&self, pattern: &str) -> Vec<String> {
        let mut channels: Vec<String> = redis::cmd("PUBSUB")
            .arg("CHANNELS")
            .arg(pattern)
            .query_async(&mut self.connection().await)
            .await
            .unwrap();
        channels.sort();
        channels
    }

    /// `PUBSUB NUMSUB` of each channel: how many nodes listen to it.
    pub(crate) async fn numsub(&self, channels: &[String]) -> Vec<i64> {
        let mut conn = self.connection().await;
        let mut counts = Vec::with_capacity(channels.len());
        for chunk in channels.chunks(500) {
            let pairs: Vec<(String, i64)> = redis::cmd("PUBSUB")
                .arg("NUMSUB")
                .arg(chunk)
                .query_async(&mut conn)
                .await
                .unwrap();
            counts.extend(pairs.into_iter().map(|(_, n)| n));
        }
        counts
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}
