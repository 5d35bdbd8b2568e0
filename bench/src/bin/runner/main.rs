//! The benchmark runner: builds every server and the load generator in
//! release mode, then, round by round, starts each server pinned to core 0
//! and drives it from core 1 through every cell of the matrix, the servers
//! alternating within each cell; then the idle-memory run. Writes
//! `bench/results/latest.md`, `latest.json` and `throughput.svg`.
//!
//! ```sh
//! cargo run --release -p wsroute-bench --bin runner            # the full run
//! cargo run --release -p wsroute-bench --bin runner -- --quick # a smoke test
//! cargo run --release -p wsroute-bench --bin runner -- --cells deflate # compressed cells
//! ```

mod machine;
mod plan;
mod process;
mod results;
mod svg;
mod table;

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use wsroute_bench::report::{LoadReport, MemoryReport};

use machine::Machine;
use plan::{Cell, SERVERS, Server, Suites};
use process::Toolbox;
use results::{MemoryRecord, Results, RunRecord};

const USAGE: &str = "\
usage: runner [options]
  --quick                 1 round, short runs, a subset of the cells (a smoke test)
  --cells C               plain (default): the uncompressed matrix; deflate: only the
                          compressed cells (JSON, permessage-deflate offered); all: both;
                          tls: only the TLS cells, on the servers that take --tls
  --servers a,b,c         servers to run in every selected cell (default: all of each
                          suite's): tcp-echo, axum-echo, fastwebsockets-echo,
                          sockudo-echo, wsroute-hand-echo, wsroute-echo. The plain
                          matrix runs all but sockudo-echo; the compressed cells run
                          tcp-echo, sockudo-echo and the two wsroute servers
  --rounds N              rounds (default 3)
  --duration S            seconds measured per run (default 3)
  --warmup S              seconds of warm-up per run (default 1)
  --memory-connections N  connections of the idle-memory run (default 10000; 0 skips it)
  --no-memory             skip the idle-memory run
  --loadgen-threads T     load generator threads (default 1; all on its one core)
  --server-flavor F       tokio runtime of the bench servers: current (default) or multi
  --no-nodelay            bench servers leave Nagle's algorithm on (default: TCP_NODELAY)
  --no-build              use the binaries already in target/release
  --out DIR               where to write latest.{md,json} and throughput.svg
                          (default bench/results)
  --update-readme         also paste the tables into bench/README.md";

#[derive(Debug)]
struct Options {
    quick: bool,
    /// `--servers`, when given: every selected cell runs these.
    servers: Option<Vec<Server>>,
    suites: Suites,
    rounds: usize,
    duration: f64,
    warmup: f64,
    memory_connections: usize,
    loadgen_threads: usize,
    /// Extra arguments for the bench servers (`--flavor`, `--no-nodelay`).
    server_args: Vec<String>,
    build: bool,
    out: PathBuf,
    update_readme: bool,
}

fn bench_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn parse_options() -> Result<Options, String> {
    let mut o = Options {
        quick: false,
        servers: None,
        suites: Suites::Plain,
        rounds: 3,
        duration: 3.0,
        warmup: 1.0,
        memory_connections: 10_000,
        loadgen_threads: 1,
        server_args: Vec::new(),
        build: true,
        out: bench_dir().join("results"),
        update_readme: false,
    };
    let (mut rounds, mut duration, mut warmup) = (None, None, None);
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--quick" => o.quick = true,
            "--servers" => {
                let names = value()?;
                let servers = names
                    .split(',')
                    .map(|name| {
                        SERVERS
                            .iter()
                            .find(|s| s.name == name.trim() || s.short == name.trim())
                            .copied()
                            .ok_or(format!("unknown server `{name}`"))
                    })
                    .collect::<Result<_, _>>()?;
                o.servers = Some(servers);
            }
            "--cells" => {
                o.suites = match value()?.as_str() {
                    "plain" => Suites::Plain,
                    "deflate" => Suites::Deflate,
                    "all" => Suites::All,
                    "tls" => Suites::Tls,
                    other => {
                        return Err(format!(
                            "--cells takes plain, deflate, all or tls, not `{other}`"
                        ));
                    }
                }
            }
            "--rounds" => rounds = Some(number::<usize>(&value()?)?.max(1)),
            "--duration" => duration = Some(number(&value()?)?),
            "--warmup" => warmup = Some(number(&value()?)?),
            "--memory-connections" => o.memory_connections = number(&value()?)?,
            "--no-memory" => o.memory_connections = 0,
            "--loadgen-threads" => o.loadgen_threads = number::<usize>(&value()?)?.max(1),
            "--server-flavor" => {
                let flavor = value()?;
                if flavor != "current" && flavor != "multi" {
                    return Err("--server-flavor takes `current` or `multi`".into());
                }
                o.server_args.extend(["--flavor".to_owned(), flavor]);
            }
            "--no-nodelay" => o.server_args.push("--no-nodelay".into()),
            "--no-build" => o.build = false,
            "--out" => o.out = PathBuf::from(value()?),
            "--update-readme" => o.update_readme = true,
            "--help" | "-h" => {
                println!("{USAGE}");
                std::process::exit(0)
            }
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    if o.quick {
        o.rounds = 1;
        o.duration = 1.0;
        o.warmup = 0.3;
    }
    o.rounds = rounds.unwrap_or(o.rounds);
    o.duration = duration.unwrap_or(o.duration);
    o.warmup = warmup.unwrap_or(o.warmup);
    if o.suites == Suites::Tls {
        // Idle memory is the plain matrix's measurement.
        o.memory_connections = 0;
    }
    Ok(o)
}

impl Options {
    /// The servers of the uncompressed matrix (none if not selected).
    fn plain_servers(&self) -> Vec<Server> {
        if self.suites == Suites::Tls {
            // Only the servers that can serve over TLS, even if named.
            let mut servers = self.suite_servers(true, |s| s.tls);
            servers.retain(|s| s.tls);
            return servers;
        }
        self.suite_servers(self.suites.plain(), |s| s.plain)
    }

    /// The servers of the compressed cells (none if not selected).
    fn deflate_servers(&self) -> Vec<Server> {
        self.suite_servers(self.suites.deflate(), |s| s.deflate)
    }

    fn suite_servers(&self, selected: bool, by_default: fn(&Server) -> bool) -> Vec<Server> {
        match (&self.servers, selected) {
            (_, false) => Vec::new(),
            (Some(servers), true) => servers.clone(),
            (None, true) => SERVERS.iter().filter(|s| by_default(s)).copied().collect(),
        }
    }

    /// Every server that runs at all, in table order.
    fn all_servers(&self) -> Vec<Server> {
        let (plain, deflate) = (self.plain_servers(), self.deflate_servers());
        SERVERS
            .iter()
            .filter(|s| plain.iter().chain(&deflate).any(|t| t.name == s.name))
            .copied()
            .collect()
    }
}

fn number<T: std::str::FromStr>(s: &str) -> Result<T, String> {
    s.parse().map_err(|_| format!("not a number: `{s}`"))
}

fn main() {
    let options = parse_options().unwrap_or_else(|problem| {
        eprintln!("{problem}\n{USAGE}");
        std::process::exit(2)
    });
    if let Err(e) = run(&options) {
        eprintln!("runner: {e}");
        std::process::exit(1);
    }
}

fn run(o: &Options) -> io::Result<()> {
    let workspace = bench_dir()
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(bench_dir);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let pinned = cores >= 2;
    if pinned {
        process::check_taskset()?;
    } else {
        eprintln!("runner: fewer than 2 cores: running unpinned, numbers will not compare");
    }
    let (plain_servers, deflate_servers) = (o.plain_servers(), o.deflate_servers());
    let all_servers = o.all_servers();
    if o.build {
        process::build(&workspace, &all_servers)?;
    }
    let bin_dir = std::env::current_exe()?
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| workspace.join("target/release"));
    let log_dir = std::env::temp_dir().join("wsroute-bench-logs");
    std::fs::create_dir_all(&log_dir)?;
    let tools = Toolbox {
        workspace: workspace.clone(),
        bin_dir,
        cores: pinned.then_some((0, 1)),
        log_dir,
        server_args: o.server_args.clone(),
    };
    let needed = (o.memory_connections.max(1000) + 1024) as u64;
    let fd_limit = process::raise_fd_limit(needed);
    if fd_limit < needed {
        eprintln!(
            "runner: open-file limit {fd_limit} < {needed}; raise it (`ulimit -n {needed}`) \
             or the 1000-connection and memory runs fail"
        );
    }

    let mut cells = Vec::new();
    if o.suites == Suites::Tls {
        cells.extend(if o.quick {
            plan::quick_tls_matrix()
        } else {
            plan::tls_matrix()
        });
    } else if o.suites.plain() {
        cells.extend(if o.quick {
            plan::quick_matrix()
        } else {
            plan::full_matrix()
        });
    }
    if o.suites.deflate() {
        cells.extend(if o.quick {
            plan::quick_deflate_matrix()
        } else {
            plan::deflate_matrix()
        });
    }
    let mut machine = Machine::describe(&tools.workspace);
    eprintln!(
        "runner: {} servers × {} cells × {} rounds, {} s + {} s warm-up each; {}",
        all_servers.len(),
        cells.len(),
        o.rounds,
        o.duration,
        o.warmup,
        machine.one_line()
    );

    let mut results = Results::default();
    for round in 0..o.rounds {
        // Rotate the order each round, so no server always runs first.
        let rotated = |servers: &[Server]| {
            let mut order = servers.to_vec();
            let shift = round % order.len().max(1);
            order.rotate_left(shift);
            order
        };
        let (plain_order, deflate_order) = (rotated(&plain_servers), rotated(&deflate_servers));
        for cell in &cells {
            let order = if cell.deflate {
                &deflate_order
            } else {
                &plain_order
            };
            for server in order {
                let record = echo_run(&tools, o, round, server, cell);
                results.runs.push(record);
            }
        }
        if o.memory_connections > 0 {
            for server in &plain_order {
                results
                    .memory
                    .push(memory_run(&tools, o, round, server, false));
            }
            for server in &deflate_order {
                results
                    .memory
                    .push(memory_run(&tools, o, round, server, true));
            }
        }
    }
    machine.load_after = machine::load_average();

    let setup = table::Setup {
        machine: &machine,
        servers: &plain_servers,
        deflate_servers: &deflate_servers,
        all_servers: &all_servers,
        cells: &cells,
        rounds: o.rounds,
        warmup: o.warmup,
        duration: o.duration,
        memory_connections: o.memory_connections,
        pinned,
        server_args: &o.server_args,
    };
    write_outputs(o, &setup, &results)
}

fn echo_run(tools: &Toolbox, o: &Options, round: usize, server: &Server, cell: &Cell) -> RunRecord {
    let outcome = (|| -> io::Result<LoadReport> {
        let running = process::start_server(tools, server, cell.tls)?;
        let mut args = vec![
            "--addr".to_owned(),
            running.addr.to_string(),
            "--connections".into(),
            cell.connections.to_string(),
            "--size".into(),
            cell.size.to_string(),
            if cell.text { "--text" } else { "--binary" }.into(),
            "--in-flight".into(),
            cell.in_flight.to_string(),
            "--warmup".into(),
            o.warmup.to_string(),
            "--duration".into(),
            o.duration.to_string(),
            "--threads".into(),
            o.loadgen_threads.to_string(),
            "--server-pid".into(),
            running.pid().to_string(),
        ];
        if server.raw {
            args.push("--raw".into());
        }
        if cell.deflate {
            args.extend(["--content".into(), "json".into(), "--deflate".into()]);
        }
        if cell.tls {
            args.push("--tls".into());
        }
        let timeout = Duration::from_secs_f64(o.warmup + o.duration + 60.0);
        let line = process::run_loadgen(tools, &args, timeout)?;
        serde_json::from_str(&line).map_err(io::Error::other)
    })();
    let label = format!(
        "[round {}/{}] {:<28} {:<8}",
        round + 1,
        o.rounds,
        cell.label(),
        server.short
    );
    match &outcome {
        Ok(r) => {
            eprintln!(
                "{label} {:>8} msg/s {:>7.3} µs/msg  p99 {:>8.1} µs  server {:>3.0}%  loadgen {:>3.0}%",
                table::rate(r.msgs_per_s),
                r.server_cpu_us_per_msg.unwrap_or(f64::NAN),
                r.p99_us,
                r.server_cpu_util.unwrap_or(f64::NAN) * 100.0,
                r.loadgen_cpu_util * 100.0
            );
            if let Some(d) = &r.deflate {
                eprintln!(
                    "{:>w$} wire {:.0} / {:.0} B per message, deflate: {}",
                    "",
                    r.wire_sent_per_msg.unwrap_or(f64::NAN),
                    r.wire_received_per_msg.unwrap_or(f64::NAN),
                    d.answer_or_declined(),
                    w = label.chars().count()
                );
            }
        }
        Err(e) => eprintln!("{label} FAILED: {e}"),
    }
    let (report, error) = split(outcome);
    RunRecord {
        round,
        server: server.name,
        cell: *cell,
        report,
        error,
    }
}

fn memory_run(
    tools: &Toolbox,
    o: &Options,
    round: usize,
    server: &Server,
    deflate: bool,
) -> MemoryRecord {
    let outcome = (|| -> io::Result<MemoryReport> {
        let running = process::start_server(tools, server, false)?;
        let mut args = vec![
            "--memory".to_owned(),
            "--addr".into(),
            running.addr.to_string(),
            "--connections".into(),
            o.memory_connections.to_string(),
            "--server-pid".into(),
            running.pid().to_string(),
        ];
        if server.raw {
            args.push("--raw".into());
        }
        if deflate {
            args.push("--deflate".into());
        }
        let line = process::run_loadgen(tools, &args, Duration::from_secs(180))?;
        serde_json::from_str(&line).map_err(io::Error::other)
    })();
    let label = format!(
        "[round {}/{}] memory{}, {} conns  {:<8}",
        round + 1,
        o.rounds,
        if deflate { " (deflate)" } else { "" },
        o.memory_connections,
        server.short
    );
    match &outcome {
        Ok(r) => eprintln!(
            "{label} KiB/conn: idle {:.2}, after 16 B {:.2}, after 64 KiB {:.2}",
            r.idle_kib_per_conn, r.after_16b_kib_per_conn, r.after_64k_kib_per_conn
        ),
        Err(e) => eprintln!("{label} FAILED: {e}"),
    }
    let (report, error) = split(outcome);
    MemoryRecord {
        round,
        server: server.name,
        deflate,
        report,
        error,
    }
}

fn split<T>(outcome: io::Result<T>) -> (Option<T>, Option<String>) {
    match outcome {
        Ok(r) => (Some(r), None),
        Err(e) => (None, Some(e.to_string())),
    }
}

const README_START: &str = "<!-- last-measured:start -->";
const README_END: &str = "<!-- last-measured:end -->";

fn write_outputs(o: &Options, setup: &table::Setup<'_>, results: &Results) -> io::Result<()> {
    std::fs::create_dir_all(&o.out)?;
    let tables = table::render(setup, results);
    let md = format!(
        "# wsroute echo benchmark: last run\n\n\
         Reproduce with `cargo run --release -p wsroute-bench --bin runner` (see `bench/README.md`).\n\n\
         ![throughput relative to tcp-echo](throughput.svg)\n\n{tables}"
    );
    std::fs::write(o.out.join("latest.md"), &md)?;
    let json = serde_json::json!({
        "machine": setup.machine,
        "settings": {
            "quick": o.quick,
            "rounds": o.rounds,
            "duration_s": o.duration,
            "warmup_s": o.warmup,
            "memory_connections": o.memory_connections,
            "loadgen_threads": o.loadgen_threads,
            "bench_server_args": o.server_args,
            "pinned": setup.pinned,
        },
        "servers": setup.all_servers,
        "plain_servers": setup.servers.iter().map(|s| s.name).collect::<Vec<_>>(),
        "deflate_servers": setup.deflate_servers.iter().map(|s| s.name).collect::<Vec<_>>(),
        "cells": setup.cells,
        "runs": results.runs,
        "memory_runs": results.memory,
    });
    std::fs::write(
        o.out.join("latest.json"),
        serde_json::to_string_pretty(&json).map_err(io::Error::other)? + "\n",
    )?;
    // The plot shows the uncompressed matrix, or the compressed cells when
    // only those ran.
    let plain_cells: Vec<Cell> = setup.cells.iter().filter(|c| !c.deflate).copied().collect();
    let deflate_cells: Vec<Cell> = setup.cells.iter().filter(|c| c.deflate).copied().collect();
    let plot = if plain_cells.is_empty() {
        table::Setup {
            cells: &deflate_cells,
            servers: setup.deflate_servers,
            ..*setup
        }
    } else {
        table::Setup {
            cells: &plain_cells,
            ..*setup
        }
    };
    std::fs::write(o.out.join("throughput.svg"), svg::render(&plot, results))?;
    if o.update_readme {
        update_readme(&tables)?;
    }
    println!("{tables}");
    eprintln!(
        "runner: wrote {}/latest.md, latest.json, throughput.svg",
        o.out.display()
    );
    Ok(())
}

/// Replaces the text between the "last measured" markers of the README.
fn update_readme(tables: &str) -> io::Result<()> {
    let path = bench_dir().join("README.md");
    let readme = std::fs::read_to_string(&path)?;
    let (Some(start), Some(end)) = (readme.find(README_START), readme.find(README_END)) else {
        return Err(io::Error::other(format!(
            "{} lacks the {README_START} / {README_END} markers",
            path.display()
        )));
    };
    let updated = format!(
        "{}{README_START}\n\n![throughput relative to tcp-echo](results/throughput.svg)\n\n{tables}\n{}",
        &readme[..start],
        &readme[end..]
    );
    std::fs::write(path, updated)
}
