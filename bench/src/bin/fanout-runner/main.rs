//! The fan-out benchmark's runner: builds `wsroute-fanout`,
//! `registry-fanout`, `tcp-fanout` and `fanout-load` in release mode,
//! then, round by round, starts each server pinned to core 0 and drives
//! it with `fanout-load` pinned to core 1, for every subscriber count and
//! message size, the servers alternating within each cell. With
//! `--callgrind N` it also counts the servers' instructions per delivery
//! under valgrind at N subscribers. Writes `bench/results/fanout.md`.
//!
//! ```sh
//! cargo run --release -p wsroute-bench --bin fanout-runner
//! cargo run --release -p wsroute-bench --bin fanout-runner -- --quick
//! ```

mod callgrind;
mod table;

use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use wsroute_bench::spawned::{ServerCommand, Spawned};

const USAGE: &str = "\
usage: fanout-runner [options]
  --quick              1 round of 0.5 s, 1 and 1000 subscribers, no callgrind (a smoke test)
  --rounds R           rounds (default 3)
  --seconds S          seconds measured per run (default 2)
  --subscribers a,b    subscriber counts (default 1,100,1000,10000)
  --sizes a,b          message sizes in bytes (default 64,1024)
  --bursts a,b         messages the publisher writes at once (default 1,16)
  --callgrind a,b      subscriber counts of the valgrind instruction count
                       (default 1000; `none` skips it)
  --no-build           use the binaries already in target/release
  --out FILE           where to write the report (default bench/results/fanout.md)";

/// A server of the benchmark: its binary, and whether the load generator
/// talks plain TCP to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Server {
    pub(crate) name: &'static str,
    pub(crate) tcp: bool,
}

pub(crate) const SERVERS: [Server; 3] = [
    Server {
        name: "wsroute-fanout",
        tcp: false,
    },
    Server {
        name: "tcp-fanout",
        tcp: true,
    },
    Server {
        name: "registry-fanout",
        tcp: false,
    },
];

#[derive(Debug)]
pub(crate) struct Options {
    pub(crate) rounds: usize,
    pub(crate) seconds: f64,
    pub(crate) subscribers: Vec<usize>,
    pub(crate) sizes: Vec<usize>,
    pub(crate) bursts: Vec<usize>,
    pub(crate) callgrind: Vec<usize>,
    build: bool,
    out: PathBuf,
}

fn parse_options() -> Result<Options, String> {
    let mut o = Options {
        rounds: 3,
        seconds: 2.0,
        subscribers: vec![1, 100, 1000, 10_000],
        sizes: vec![64, 1024],
        bursts: vec![1, 16],
        callgrind: vec![1000],
        build: true,
        out: bench_dir().join("results/fanout.md"),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--quick" => {
                o.rounds = 1;
                o.seconds = 0.5;
                o.subscribers = vec![1, 1000];
                o.callgrind = Vec::new();
            }
            "--rounds" => o.rounds = number(&value()?)?,
            "--seconds" => o.seconds = number(&value()?)?,
            "--subscribers" => o.subscribers = list(&value()?)?,
            "--sizes" => o.sizes = list(&value()?)?,
            "--bursts" => o.bursts = list(&value()?)?,
            "--callgrind" => {
                let v = value()?;
                o.callgrind = if v == "none" { Vec::new() } else { list(&v)? };
            }
            "--no-build" => o.build = false,
            "--out" => o.out = PathBuf::from(value()?),
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    if o.rounds == 0 {
        return Err("--rounds must be at least 1".into());
    }
    if o.bursts.contains(&0) {
        return Err("a burst is at least 1 message".into());
    }
    Ok(o)
}

fn number<T: std::str::FromStr>(s: &str) -> Result<T, String> {
    s.parse().map_err(|_| format!("not a number: {s}"))
}

fn list(s: &str) -> Result<Vec<usize>, String> {
    s.split(',').map(number).collect()
}

fn bench_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub(crate) fn release_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir).join("release"),
        None => bench_dir().join("../target/release"),
    }
}

fn main() {
    let o = parse_options().unwrap_or_else(|e| {
        eprintln!("{e}\n{USAGE}");
        std::process::exit(2)
    });
    if let Err(e) = run(&o) {
        eprintln!("fanout-runner: {e}");
        std::process::exit(1);
    }
}

/// One run's figures (`fanout-load`'s JSON line), or why it failed.
#[derive(Debug, Clone)]
pub(crate) struct Record {
    pub(crate) server: Server,
    pub(crate) subscribers: usize,
    pub(crate) size: usize,
    pub(crate) burst: usize,
    pub(crate) report: Result<serde_json::Value, String>,
}

fn run(o: &Options) -> io::Result<()> {
    let start = Instant::now();
    if o.build {
        build()?;
    }
    let logs = std::env::temp_dir().join("wsroute-fanout-logs");
    std::fs::create_dir_all(&logs)?;
    let mut records = Vec::new();
    for round in 1..=o.rounds {
        for &burst in &o.bursts {
            for &size in &o.sizes {
                for &n in &o.subscribers {
                    for server in SERVERS {
                        let report = one_run(server, n, size, burst, o.seconds, &logs);
                        eprintln!(
                            "round {round} {} n={n} size={size} burst={burst}: {}",
                            server.name,
                            match &report {
                                Ok(v) => v.to_string(),
                                Err(e) => format!("FAILED {e}"),
                            }
                        );
                        records.push(Record {
                            server,
                            subscribers: n,
                            size,
                            burst,
                            report,
                        });
                    }
                }
            }
        }
    }
    let counts = callgrind::run_all(o, &logs)?;
    let md = table::render(o, &records, &counts, start.elapsed());
    std::fs::write(&o.out, md)?;
    eprintln!(
        "wrote {} in {:.0} s",
        o.out.display(),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

fn build() -> io::Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(bench_dir().join(".."))
        .args(["build", "--release", "-p", "wsroute-bench"]);
    for bin in ["fanout-load"]
        .iter()
        .chain(SERVERS.iter().map(|s| &s.name))
    {
        cmd.args(["--bin", bin]);
    }
    eprintln!("fanout-runner: {cmd:?}");
    let status = cmd.status()?;
    if !status.success() {
        return Err(io::Error::other(format!("{cmd:?} failed: {status}")));
    }
    Ok(())
}

/// `taskset -c 0 SERVER` (with `prefix` before the binary, e.g. valgrind),
/// its open-file limit raised for `n` subscribers.
pub(crate) fn start_server(
    server: Server,
    n: usize,
    prefix: &[String],
    log: &Path,
) -> io::Result<Spawned> {
    let mut args = vec!["-c".to_owned(), "0".to_owned()];
    args.extend_from_slice(prefix);
    args.push(release_dir().join(server.name).display().to_string());
    let cmd = ServerCommand {
        program: PathBuf::from("taskset"),
        args,
        nofile: Some(n as u64 + 1024),
    };
    Spawned::start(&cmd, log)
}

/// `taskset -c 1 fanout-load …` against `spawned`; its JSON line.
pub(crate) fn load(
    server: Server,
    spawned: &Spawned,
    n: usize,
    size: usize,
    extra: &[&str],
) -> Result<serde_json::Value, String> {
    let mut cmd = Command::new("taskset");
    cmd.arg("-c")
        .arg("1")
        .arg(release_dir().join("fanout-load"))
        .args(["--addr", &spawned.addr.to_string()])
        .args(["--server-pid", &spawned.pid.to_string()])
        .args(["--subscribers", &n.to_string()])
        .args(["--size", &size.to_string()])
        .args(extra);
    if server.tcp {
        cmd.arg("--tcp");
    }
    let out = cmd.output().map_err(|e| format!("fanout-load: {e}"))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_owned());
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("fanout-load output: {e}"))
}

fn one_run(
    server: Server,
    n: usize,
    size: usize,
    burst: usize,
    seconds: f64,
    logs: &Path,
) -> Result<serde_json::Value, String> {
    let log = logs.join(format!("{}-{n}-{size}-{burst}.log", server.name));
    let mut spawned = start_server(server, n, &[], &log).map_err(|e| e.to_string())?;
    let report = load(
        server,
        &spawned,
        n,
        size,
        &[
            "--seconds",
            &seconds.to_string(),
            "--burst",
            &burst.to_string(),
        ],
    );
    spawned.kill();
    report
}
