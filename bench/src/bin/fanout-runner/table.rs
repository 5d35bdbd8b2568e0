//! `bench/results/fanout.md`: one table per message size (rows the
//! subscriber counts, per server the CPU per delivery, latency and
//! deliveries per second, medians of the rounds with their spread, and
//! the ratios the issue sets targets for), the callgrind counts, the load
//! generator's own CPU and every failed run.

use std::fmt::Write;
use std::time::Duration;

use super::callgrind::{Count, SIZE};
use super::{Options, Record, SERVERS, Server};

/// Median, lowest and highest of the rounds.
#[derive(Debug, Clone, Copy)]
struct Spread {
    median: f64,
    min: f64,
    max: f64,
}

impl Spread {
    fn of(mut values: Vec<f64>) -> Option<Self> {
        values.retain(|v| v.is_finite());
        if values.is_empty() {
            return None;
        }
        values.sort_by(f64::total_cmp);
        let mid = values.len() / 2;
        let median = if values.len() % 2 == 1 {
            values[mid]
        } else {
            (values[mid - 1] + values[mid]) / 2.0
        };
        Some(Self {
            median,
            min: values[0],
            max: values[values.len() - 1],
        })
    }

    fn show(&self, digits: usize) -> String {
        format!(
            "{:.d$} ({:.d$}–{:.d$})",
            self.median,
            self.min,
            self.max,
            d = digits
        )
    }
}

/// Which runs a figure is taken from.
#[derive(Debug, Clone, Copy)]
struct Cell {
    n: usize,
    size: usize,
    burst: usize,
}

fn figure(records: &[Record], server: Server, cell: Cell, key: &str) -> Option<Spread> {
    Spread::of(
        records
            .iter()
            .filter(|r| {
                r.server == server
                    && r.subscribers == cell.n
                    && r.size == cell.size
                    && r.burst == cell.burst
            })
            .filter_map(|r| r.report.as_ref().ok()?.get(key)?.as_f64())
            .collect(),
    )
}

/// Every cell of the matrix, by burst, then size, then subscribers.
fn cells(o: &Options) -> Vec<Cell> {
    let mut cells = Vec::new();
    for &burst in &o.bursts {
        for &size in &o.sizes {
            for &n in &o.subscribers {
                cells.push(Cell { n, size, burst });
            }
        }
    }
    cells
}

/// The first columns of a row of [`cells`]: burst, size, subscribers.
fn cell_columns(cell: Cell) -> String {
    format!("| {} | {} | {} |", cell.burst, cell.size, cell.n)
}

/// The median alone.
fn median(spread: Option<Spread>, digits: usize) -> String {
    spread.map_or("–".into(), |s| format!("{:.digits$}", s.median))
}

fn show(spread: Option<Spread>, digits: usize) -> String {
    spread.map_or("–".into(), |s| s.show(digits))
}

fn ratio(a: Option<Spread>, b: Option<Spread>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b.median > 0.0 => format!("{:.2}", a.median / b.median),
        _ => "–".into(),
    }
}

pub(crate) fn render(o: &Options, records: &[Record], counts: &[Count], took: Duration) -> String {
    let mut md = String::new();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let _ = writeln!(md, "# Fan-out on one node\n");
    let _ = writeln!(
        md,
        "Written by `fanout-runner` (see `bench/README.md`, \"Fan-out\"). Commit `{commit}`, \
         {} round(s) of {} s measured per run, whole matrix in {:.0} s; load average at the \
         end: {}. Each server pinned to core 0 (`taskset -c 0`, current-thread tokio \
         runtime), `fanout-load` to core 1. Closed loop: the publisher writes a burst of B \
         messages at once (B = 1: one message in flight) and the next burst once every \
         subscriber has received the last of this one; every message checked exactly once \
         and in order. The machine is shared with other builds: CPU times are noisy, the \
         callgrind counts below are not.\n",
        o.rounds,
        o.seconds,
        took.as_secs_f64(),
        load.trim()
    );
    let _ = writeln!(
        md,
        "CPU µs/del: server utime+stime (`/proc`) over the measured phase / deliveries. \
         p50, p99: publish-to-last-delivery latency of a burst in µs (publisher's write to \
         the last subscriber's read of its last message, one clock in `fanout-load`). del/s: deliveries per second. \
         Medians of the rounds, (lowest–highest). Ratios of the CPU medians; targets: \
         wsroute/tcp ≤ 1.2 and wsroute/registry ≤ 0.5 at 1000 and 10,000 subscribers.\n"
    );
    for &burst in &o.bursts {
        for &size in &o.sizes {
            size_table(&mut md, o, records, size, burst);
        }
    }
    split_table(&mut md, o, records);
    callgrind_table(&mut md, counts);
    loadgen_table(&mut md, o, records);
    let failed: Vec<&Record> = records.iter().filter(|r| r.report.is_err()).collect();
    if !failed.is_empty() {
        let _ = writeln!(md, "## Failed runs\n");
        for r in failed {
            let _ = writeln!(
                md,
                "- {} n={} size={} burst={}: {}",
                r.server.name,
                r.subscribers,
                r.size,
                r.burst,
                r.report.as_ref().err().map_or("", String::as_str)
            );
        }
        md.push('\n');
    }
    md
}

fn size_table(md: &mut String, o: &Options, records: &[Record], size: usize, burst: usize) {
    let title = match burst {
        1 => "one message in flight".to_owned(),
        b => format!("bursts of {b}"),
    };
    let _ = writeln!(md, "## {size} B messages, {title}\n");
    let mut head = String::from("| subscribers |");
    let mut rule = String::from("|---:|");
    for s in SERVERS {
        let short = s.name.trim_end_matches("-fanout");
        let _ = write!(
            head,
            " {short} CPU µs/del | {short} p50 | {short} p99 | {short} del/s |"
        );
        rule.push_str("---:|---:|---:|---:|");
    }
    head.push_str(" wsroute/tcp CPU | wsroute/registry CPU |");
    rule.push_str("---:|---:|");
    let _ = writeln!(md, "{head}\n{rule}");
    for &n in &o.subscribers {
        let cell = Cell { n, size, burst };
        let mut row = format!("| {n} |");
        for s in SERVERS {
            let _ = write!(
                row,
                " {} | {} | {} | {} |",
                show(figure(records, s, cell, "cpu_us_per_delivery"), 3),
                show(figure(records, s, cell, "p50_us"), 0),
                show(figure(records, s, cell, "p99_us"), 0),
                show(figure(records, s, cell, "deliveries_per_second"), 0),
            );
        }
        let cpu = |s: Server| figure(records, s, cell, "cpu_us_per_delivery");
        let _ = write!(
            row,
            " {} | {} |",
            ratio(cpu(SERVERS[0]), cpu(SERVERS[1])),
            ratio(cpu(SERVERS[0]), cpu(SERVERS[2]))
        );
        let _ = writeln!(md, "{row}");
    }
    md.push('\n');
}

/// The CPU of the tables above split into user space and kernel.
fn split_table(md: &mut String, o: &Options, records: &[Record]) {
    let _ = writeln!(
        md,
        "## User space and kernel\n\n\
         The CPU µs/del above split into utime (user) and stime (kernel), medians of the \
         rounds. Ticks of 10 ms: a short run's split is coarse, the total is not. The \
         kernel's share (the `send` calls and, on loopback, the receiving side's TCP stack) \
         is much the same for every server; the user column is each server's own work.\n"
    );
    let mut head = String::from("| burst | size | subscribers |");
    let mut rule = String::from("|---:|---:|---:|");
    for s in SERVERS {
        let short = s.name.trim_end_matches("-fanout");
        let _ = write!(head, " {short} user | {short} kernel |");
        rule.push_str("---:|---:|");
    }
    head.push_str(" wsroute/registry user |");
    rule.push_str("---:|");
    let _ = writeln!(md, "{head}\n{rule}");
    for cell in cells(o) {
        let user = |s: Server| figure(records, s, cell, "user_us_per_delivery");
        let mut row = cell_columns(cell);
        for s in SERVERS {
            let kernel = figure(records, s, cell, "system_us_per_delivery");
            let _ = write!(row, " {} | {} |", median(user(s), 3), median(kernel, 3));
        }
        let _ = write!(row, " {} |", ratio(user(SERVERS[0]), user(SERVERS[2])));
        let _ = writeln!(md, "{row}");
    }
    md.push('\n');
}

fn callgrind_table(md: &mut String, counts: &[Count]) {
    if counts.is_empty() {
        return;
    }
    let _ = writeln!(
        md,
        "## Instructions per delivery (callgrind, {SIZE} B)\n\n\
         `valgrind --tool=callgrind` on the server, two runs of 10 and 50 measured \
         bursts; (instructions of the long run − the short) / (deliveries of the long − \
         the short). Independent of the machine's load.\n\n\
         | burst | subscribers | server | instructions / delivery | wsroute / this | profile of the long run |\n\
         |---:|---:|---|---:|---:|---|"
    );
    for c in counts {
        let wsroute = counts
            .iter()
            .find(|w| {
                w.subscribers == c.subscribers && w.burst == c.burst && w.server == SERVERS[0]
            })
            .and_then(|w| w.per_delivery.as_ref().ok());
        let (value, vs) = match (&c.per_delivery, wsroute) {
            (Ok(v), Some(w)) => (format!("{v:.0}"), format!("{:.2}", w / v)),
            (Ok(v), None) => (format!("{v:.0}"), "–".into()),
            (Err(e), _) => (format!("failed: {e}"), "–".into()),
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {value} | {vs} | `{}` |",
            c.burst,
            c.subscribers,
            c.server.name,
            c.profile.display()
        );
    }
    md.push('\n');
}

fn loadgen_table(md: &mut String, o: &Options, records: &[Record]) {
    let _ = writeln!(
        md,
        "## Load generator CPU (share of its core, median)\n\n\
         Near 1.0 the load generator, not the server, sets the latency and the rate.\n"
    );
    let mut head = String::from("| burst | size | subscribers |");
    let mut rule = String::from("|---:|---:|---:|");
    for s in SERVERS {
        let _ = write!(head, " {} |", s.name);
        rule.push_str("---:|");
    }
    let _ = writeln!(md, "{head}\n{rule}");
    for cell in cells(o) {
        let mut row = cell_columns(cell);
        for s in SERVERS {
            let share = figure(records, s, cell, "loadgen_cpu_share");
            let _ = write!(row, " {} |", median(share, 2));
        }
        let _ = writeln!(md, "{row}");
    }
    md.push('\n');
}
