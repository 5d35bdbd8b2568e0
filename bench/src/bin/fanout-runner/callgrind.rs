//! Instructions per delivery under `valgrind --tool=callgrind`: a count
//! that other processes on the machine do not change, unlike CPU time.
//!
//! Each server runs twice under callgrind, with `SHORT` and then `LONG`
//! measured bursts at N subscribers; the difference of the two totals
//! over the difference of the deliveries (warm-up included in both) is
//! what one more delivery costs, start-up and handshakes cancelling out.

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{Options, SERVERS, Server, load, start_server};

const SHORT: u64 = 10;
const LONG: u64 = 50;
/// The message size of the count.
pub(crate) const SIZE: usize = 64;

/// One server's count at one subscriber count.
#[derive(Debug, Clone)]
pub(crate) struct Count {
    pub(crate) server: Server,
    pub(crate) subscribers: usize,
    pub(crate) burst: usize,
    /// Instructions per delivery, or why there is none.
    pub(crate) per_delivery: Result<f64, String>,
    /// The long run's profile, for `callgrind_annotate`.
    pub(crate) profile: PathBuf,
}

pub(crate) fn run_all(o: &Options, logs: &Path) -> io::Result<Vec<Count>> {
    let mut counts = Vec::new();
    for &burst in &o.bursts {
        for &n in &o.callgrind {
            for server in SERVERS {
                counts.push(count(server, n, burst, logs));
            }
        }
    }
    Ok(counts)
}

fn count(server: Server, n: usize, burst: usize, logs: &Path) -> Count {
    let short = counted_run(server, n, burst, SHORT, logs);
    let long = counted_run(server, n, burst, LONG, logs);
    let per_delivery = match (short, long) {
        (Ok((i1, d1)), Ok((i2, d2))) if d2 > d1 => Ok((i2 as f64 - i1 as f64) / (d2 - d1) as f64),
        (Err(e), _) | (_, Err(e)) => Err(e),
        _ => Err("the long run delivered no more than the short one".into()),
    };
    eprintln!(
        "callgrind {} n={n} burst={burst}: {per_delivery:?}",
        server.name
    );
    Count {
        server,
        subscribers: n,
        burst,
        per_delivery,
        profile: profile_path(logs, server, n, burst, LONG),
    }
}

fn profile_path(logs: &Path, server: Server, n: usize, burst: usize, bursts: u64) -> PathBuf {
    logs.join(format!(
        "callgrind.{}.{n}.{burst}x{bursts}.out",
        server.name
    ))
}

/// The server's total instructions and the deliveries of one run.
fn counted_run(
    server: Server,
    n: usize,
    burst: usize,
    bursts: u64,
    logs: &Path,
) -> Result<(u64, u64), String> {
    let profile = profile_path(logs, server, n, burst, bursts);
    let _ = std::fs::remove_file(&profile);
    let prefix = [
        "valgrind".to_owned(),
        "--tool=callgrind".to_owned(),
        format!("--callgrind-out-file={}", profile.display()),
    ];
    let log = logs.join(format!(
        "callgrind-{}-{n}-{burst}x{bursts}.log",
        server.name
    ));
    let mut spawned = start_server(server, n, &prefix, &log).map_err(|e| e.to_string())?;
    let report = load(
        server,
        &spawned,
        n,
        SIZE,
        &[
            "--publishes",
            &bursts.to_string(),
            "--burst",
            &burst.to_string(),
            "--timeout",
            "120",
        ],
    );
    // Callgrind writes its profile as the process ends, on SIGTERM too
    // (SIGINT is not delivered while the server waits in epoll under
    // valgrind).
    // SAFETY: kill only sends a signal to our own child.
    unsafe { libc::kill(spawned.pid as libc::pid_t, libc::SIGTERM) };
    let sent = Instant::now();
    while !spawned.exited() && sent.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(50));
    }
    spawned.kill();
    let report = report?;
    let deliveries = report["all_deliveries"]
        .as_u64()
        .ok_or("no all_deliveries in the report")?;
    let text = std::fs::read_to_string(&profile)
        .map_err(|e| format!("{}: {e}; see {}", profile.display(), log.display()))?;
    let total = total_instructions(&text)
        .ok_or_else(|| format!("no summary line in {}", profile.display()))?;
    Ok((total, deliveries))
}

/// The `summary:` (or `totals:`) line of a callgrind profile: Ir.
fn total_instructions(profile: &str) -> Option<u64> {
    profile
        .lines()
        .find_map(|l| {
            l.strip_prefix("summary:")
                .or_else(|| l.strip_prefix("totals:"))
        })
        .and_then(|rest| rest.split_ascii_whitespace().next()?.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_line_is_the_total() {
        let profile = "events: Ir\nfn=main\n3 5\nsummary: 123456\ntotals: 7\n";
        assert_eq!(total_instructions(profile), Some(123456));
        assert_eq!(total_instructions("events: Ir\n"), None);
    }
}
