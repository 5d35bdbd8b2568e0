//! The markdown report: throughput, CPU per message, latency, ratios and
//! memory, medians with their min–max spread.

use std::fmt::Write;

use crate::machine::Machine;
use crate::plan::{Cell, Role, Server};
use crate::results::{Results, Spread};

/// What the tables are about, for their headings.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Setup<'a> {
    pub(crate) machine: &'a Machine,
    /// The servers of the section being written: the uncompressed
    /// matrix's at the top level.
    pub(crate) servers: &'a [Server],
    /// The servers of the compressed cells.
    pub(crate) deflate_servers: &'a [Server],
    /// Every server that ran, for the legend.
    pub(crate) all_servers: &'a [Server],
    /// The cells of the section being written (all of them at the top).
    pub(crate) cells: &'a [Cell],
    pub(crate) rounds: usize,
    pub(crate) warmup: f64,
    pub(crate) duration: f64,
    pub(crate) memory_connections: usize,
    pub(crate) pinned: bool,
    /// Extra arguments the bench servers got (`--flavor multi`, `--no-nodelay`).
    pub(crate) server_args: &'a [String],
}

pub(crate) fn render(setup: &Setup<'_>, results: &Results) -> String {
    let mut md = String::new();
    let s = setup;
    let _ = writeln!(md, "Measured on {}.", s.machine.one_line());
    let _ = writeln!(
        md,
        "\nEach server {}; median of {} round{} ({} s measured after {} s warm-up), \
         min–max in brackets. Servers: {}.",
        if s.pinned {
            "pinned to core 0 (`taskset -c 0`), the load generator to core 1"
        } else {
            "and the load generator unpinned (fewer than 2 cores)"
        },
        s.rounds,
        if s.rounds == 1 { "" } else { "s" },
        s.duration,
        s.warmup,
        s.all_servers
            .iter()
            .map(|sv| format!("`{}` = {}", sv.short, sv.what))
            .collect::<Vec<_>>()
            .join("; ")
    );

    let multi = s.server_args.iter().any(|a| a == "multi");
    let nagle = s.server_args.iter().any(|a| a == "--no-nodelay");
    let _ = writeln!(
        md,
        "\nThe bench's servers run on a {} tokio runtime with {} on accepted sockets; \
         `examples/echo` runs as written.",
        if multi {
            "multi-thread (one worker)"
        } else {
            "current-thread"
        },
        if nagle {
            "Nagle's algorithm left on"
        } else {
            "`TCP_NODELAY`"
        }
    );

    let plain_cells: Vec<Cell> = s.cells.iter().filter(|c| !c.deflate).copied().collect();
    let deflate_cells: Vec<Cell> = s.cells.iter().filter(|c| c.deflate).copied().collect();
    if !plain_cells.is_empty() {
        let plain = Setup {
            cells: &plain_cells,
            ..*s
        };
        plain_section(&mut md, &plain, results);
    }
    if !deflate_cells.is_empty() || (s.memory_connections > 0 && !s.deflate_servers.is_empty()) {
        let deflate = Setup {
            cells: &deflate_cells,
            servers: s.deflate_servers,
            ..*s
        };
        deflate_section(&mut md, &deflate, results);
    }
    failures(&mut md, results);
    md
}

/// The uncompressed matrix: throughput, CPU, latency, ratios, memory.
fn plain_section(md: &mut String, s: &Setup<'_>, results: &Results) {
    let _ = writeln!(md, "\n### Throughput (messages/s)\n");
    let _ = writeln!(
        md,
        "† the load generator used ≥ 90 % of its core: the server may have had \
         room to spare, so compare CPU per message there.\n"
    );
    common_tables(md, s, results, "###");
    ratio_tables(md, s, results, "###");
    if s.memory_connections > 0 && !s.servers.is_empty() {
        memory_table(md, s, results, false, "###");
    }
}

/// Throughput, CPU per message and latency of the section's cells; the
/// throughput heading is the caller's.
fn common_tables(md: &mut String, s: &Setup<'_>, results: &Results, level: &str) {
    cell_table(md, s, |cell, server| {
        match results.throughput(cell, server) {
            Some(t) => {
                let mark = if results.loadgen_bound(cell, server) {
                    " †"
                } else {
                    ""
                };
                format!("{}{mark}", spread(t, rate))
            }
            None => failure(results.error(cell, server)),
        }
    });

    let _ = writeln!(md, "\n{level} Server CPU per message (µs, user + system)\n");
    cell_table(md, s, |cell, server| {
        match results.cpu_per_msg(cell, server) {
            Some(c) => spread(c, micros),
            None => failure(results.error(cell, server)),
        }
    });

    let _ = writeln!(
        md,
        "\n{level} Round-trip latency, p50 / p99 (µs, medians)\n"
    );
    cell_table(md, s, |cell, server| match results.latency(cell, server) {
        Some((p50, p99)) => format!("{} / {}", micros(p50), micros(p99)),
        None => failure(results.error(cell, server)),
    });
}

/// The compressed cells: what each server agreed to, then the same
/// tables as the matrix's, wire bytes per message, ratios and memory.
fn deflate_section(md: &mut String, s: &Setup<'_>, results: &Results) {
    let offered = results
        .runs
        .iter()
        .filter_map(|r| r.report.as_ref()?.deflate.as_ref())
        .map(|d| d.offered.clone())
        .next()
        .unwrap_or_default();
    let _ = writeln!(md, "\n### Compressed echo (permessage-deflate)\n");
    let _ = writeln!(
        md,
        "Text messages of realistic JSON (an array of chat messages with ids, users, \
         timestamps, tags and reactions, made from a fixed seed: the same bytes for every \
         server), one in flight per connection. The load generator offers `{offered}` and, \
         when the server agrees, compresses each message (zlib level 6, 15-bit window, no \
         context kept between messages) and inflates the echoes it checks. A server that \
         declines gets its messages plain (\"not negotiated\"). `tcp` gets the frames \
         compressed as if agreed and returns them byte for byte: the limit, with no \
         (de)compression at all."
    );
    let _ = writeln!(md, "\n#### Negotiated\n");
    let _ = writeln!(md, "| server | `Sec-WebSocket-Extensions` answered |");
    let _ = writeln!(md, "|---|---|");
    for server in s.servers {
        let answer = results
            .deflate_answer(server)
            .unwrap_or_else(|| "–".to_owned());
        let _ = writeln!(md, "| {} | `{answer}` |", server.short);
    }
    if !s.cells.is_empty() {
        let _ = writeln!(md, "\n#### Throughput, compressed (messages/s)\n");
        let _ = writeln!(
            md,
            "† as above: the load generator used ≥ 90 % of its core.\n"
        );
        common_tables(md, s, results, "####");

        let _ = writeln!(
            md,
            "\n#### Wire bytes per message, sent / received (frame headers included; \
             in brackets the JSON size over the bytes received)\n"
        );
        cell_table(md, s, |cell, server| {
            match results.wire_bytes(cell, server) {
                Some((sent, received)) => format!(
                    "{sent:.0} / {received:.0} ({:.1}×)",
                    cell.size as f64 / received.max(1.0)
                ),
                None => failure(results.error(cell, server)),
            }
        });
        let _ = writeln!(
            md,
            "\nIn the ratios, – marks a cell where one server of the pair compressed and \
             the other did not (\"not negotiated\"): different work, not compared."
        );
        ratio_tables(md, s, results, "####");
    }
    if s.memory_connections > 0 {
        memory_table(md, s, results, true, "####");
    }
}

fn failures(md: &mut String, results: &Results) {
    let runs = results.runs.iter().filter_map(|r| {
        let e = r.error.as_ref()?;
        Some(format!(
            "{}, {}, round {}: {e}",
            r.server,
            r.cell.label(),
            r.round + 1
        ))
    });
    let memory = results.memory.iter().filter_map(|r| {
        let e = r.error.as_ref()?;
        Some(format!(
            "{}, memory run, round {}: {e}",
            r.server,
            r.round + 1
        ))
    });
    let all: Vec<String> = runs.chain(memory).collect();
    if !all.is_empty() {
        let _ = writeln!(md, "\n### Failures\n");
        for line in all {
            let _ = writeln!(md, "- {}", line.replace('\n', " "));
        }
    }
}

fn cell_table(md: &mut String, s: &Setup<'_>, value: impl Fn(&Cell, &Server) -> String) {
    let _ = write!(md, "| cell |");
    for server in s.servers {
        let _ = write!(md, " {} |", server.short);
    }
    let _ = write!(md, "\n|---|");
    for _ in s.servers {
        let _ = write!(md, "---:|");
    }
    md.push('\n');
    for cell in s.cells {
        let _ = write!(md, "| {} |", cell.label());
        for server in s.servers {
            let _ = write!(md, " {} |", value(cell, server));
        }
        md.push('\n');
    }
}

/// A column of ratios: `a / b` of one figure in every cell.
struct RatioColumn<'a> {
    a: &'a Server,
    b: &'a Server,
}

/// Ratios of medians: every server to tcp-echo, every wsroute server to
/// each peer, and the macro-built echo to the hand-written one; a
/// geometric mean over the cells closes each column.
fn ratio_tables(md: &mut String, s: &Setup<'_>, results: &Results, level: &str) {
    let limit = s.servers.iter().find(|sv| sv.role == Role::Limit);
    let peers: Vec<&Server> = s
        .servers
        .iter()
        .filter(|sv| sv.role == Role::Peer)
        .collect();
    let subjects: Vec<&Server> = s
        .servers
        .iter()
        .filter(|sv| sv.role == Role::Subject)
        .collect();

    let mut throughput_columns = Vec::new();
    if let Some(limit) = limit {
        for server in s.servers.iter().filter(|sv| sv.role != Role::Limit) {
            throughput_columns.push(RatioColumn {
                a: server,
                b: limit,
            });
        }
    }
    let mut cpu_columns = Vec::new();
    for subject in &subjects {
        for peer in &peers {
            throughput_columns.push(RatioColumn {
                a: subject,
                b: peer,
            });
            cpu_columns.push(RatioColumn {
                a: subject,
                b: peer,
            });
        }
    }
    if let [first, second, ..] = subjects[..] {
        throughput_columns.push(RatioColumn {
            a: second,
            b: first,
        });
        cpu_columns.push(RatioColumn {
            a: second,
            b: first,
        });
    }
    if let Some(limit) = limit {
        for subject in &subjects {
            cpu_columns.push(RatioColumn {
                a: subject,
                b: limit,
            });
        }
    }

    if !throughput_columns.is_empty() {
        let _ = writeln!(
            md,
            "\n{level} Throughput ratios (higher is better for the first)\n"
        );
        ratio_table(md, s, results, &throughput_columns, |cell, server| {
            results.throughput(cell, server).map(|t| t.median)
        });
    }
    if !cpu_columns.is_empty() {
        let _ = writeln!(
            md,
            "\n{level} Server CPU per message ratios (lower is better for the first)\n"
        );
        ratio_table(md, s, results, &cpu_columns, |cell, server| {
            results.cpu_per_msg(cell, server).map(|c| c.median)
        });
    }
}

fn ratio_table(
    md: &mut String,
    s: &Setup<'_>,
    results: &Results,
    columns: &[RatioColumn<'_>],
    figure: impl Fn(&Cell, &Server) -> Option<f64>,
) {
    let _ = write!(md, "| cell |");
    for c in columns {
        let _ = write!(md, " {} / {} |", c.a.short, c.b.short);
    }
    let _ = write!(md, "\n|---|");
    for _ in columns {
        let _ = write!(md, "---:|");
    }
    md.push('\n');
    let mut logs = vec![Vec::new(); columns.len()];
    for cell in s.cells {
        let _ = write!(md, "| {} |", cell.label());
        for (i, c) in columns.iter().enumerate() {
            // A compressing server against one that sent plain compares
            // two different workloads: left out.
            let comparable =
                !cell.deflate || results.compressed(cell, c.a) == results.compressed(cell, c.b);
            match (figure(cell, c.a), figure(cell, c.b)) {
                (Some(a), Some(b)) if b > 0.0 && a > 0.0 && comparable => {
                    logs[i].push((a / b).ln());
                    let _ = write!(md, " {:.2}× |", a / b);
                }
                _ => md.push_str(" – |"),
            }
        }
        md.push('\n');
    }
    let _ = write!(md, "| **geometric mean** |");
    for l in &logs {
        if l.is_empty() {
            md.push_str(" – |");
        } else {
            let mean = (l.iter().sum::<f64>() / l.len() as f64).exp();
            let _ = write!(md, " **{mean:.2}×** |");
        }
    }
    md.push('\n');
}

fn memory_table(md: &mut String, s: &Setup<'_>, results: &Results, deflate: bool, level: &str) {
    let _ = writeln!(
        md,
        "\n{level} Server memory per connection{} (KiB of RSS, {} connections)\n",
        if deflate {
            ", permessage-deflate offered"
        } else {
            ""
        },
        s.memory_connections
    );
    let _ = writeln!(
        md,
        "(RSS with every connection open, minus RSS before the first; after each \
         connection echoed one message and 1 s passed.{})\n",
        if deflate {
            " The messages are JSON text, compressed where the server agreed (see \
             \"Negotiated\"); a 16 B message is under sockudo-ws's threshold and goes \
             back plain."
        } else {
            ""
        }
    );
    let (small, large) = if deflate {
        ("16 B JSON", "64 KiB JSON")
    } else {
        ("16 B", "64 KiB")
    };
    let _ = writeln!(
        md,
        "| server | idle | after one {small} echo | after one {large} echo |"
    );
    let _ = writeln!(md, "|---|---:|---:|---:|");
    for server in s.servers {
        let figures = [
            results.memory_figure(server, deflate, |r| r.idle_kib_per_conn),
            results.memory_figure(server, deflate, |r| r.after_16b_kib_per_conn),
            results.memory_figure(server, deflate, |r| r.after_64k_kib_per_conn),
        ];
        let _ = write!(md, "| {} |", server.short);
        for f in figures {
            match f {
                Some(f) => {
                    let _ = write!(md, " {} |", spread(f, kib));
                }
                None => {
                    let _ = write!(md, " {} |", failure(results.memory_error(server, deflate)));
                }
            }
        }
        md.push('\n');
    }
}

/// "58.4k (57.1k–59.0k)"; the range only when there is more than one run.
fn spread(s: Spread, fmt: fn(f64) -> String) -> String {
    if s.n > 1 {
        format!("{} ({}–{})", fmt(s.median), fmt(s.min), fmt(s.max))
    } else {
        fmt(s.median)
    }
}

fn failure(error: Option<&str>) -> String {
    match error {
        Some(_) => "failed".into(),
        None => "–".into(),
    }
}

pub(crate) fn rate(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if v >= 1e3 {
        format!("{}k", three_digits(v / 1e3))
    } else {
        format!("{v:.0}")
    }
}

fn micros(v: f64) -> String {
    three_digits(v)
}

fn kib(v: f64) -> String {
    format!("{v:.1}")
}

/// Three significant digits for values from 0.01 up.
fn three_digits(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_read_at_a_glance() {
        assert_eq!(rate(58_391.0), "58.4k");
        assert_eq!(rate(1_234_567.0), "1.23M");
        assert_eq!(rate(512.4), "512");
        assert_eq!(rate(123_456.0), "123k");
    }
}
