//! Hostile clients against a wsroute example, one attack per fresh server
//! (the attacks of issue 8), each bounded in time; prints one table row per
//! attack.
//!
//! ```text
//! attacks --echo target/release/examples/echo --chat target/release/examples/chat \
//!         [--quick] [--only A1,A5a] [--exit-cap 30] [--hold-cap 90] [--log-dir DIR]
//! ```
//!
//! Every server gets `--addr 127.0.0.1:PORT` appended to its command (a
//! free port per attack); `--echo "PATH ARGS…"` passes more arguments
//! (e.g. shorter keepalive settings, once the examples take them).

mod cases;

use std::path::PathBuf;
use std::time::Duration;

use wsroute_bench::spawned::{Exit, ServerCommand, Spawned, raise_own_fd_limit};

const USAGE: &str = "\
usage: attacks --echo 'PROGRAM [ARGS]' --chat 'PROGRAM [ARGS]' [options]
  --quick          smaller attacks and shorter caps (about 2 minutes in all)
  --only A1,A4     only these attacks (A1 A2 A2b A3 A4 A5a A5b A6 A7 A8 A9a A9b A10)
  --exit-cap S     how long to wait for exit after SIGINT (default 30, quick 10)
  --hold-cap S     how long to watch silent peers (A4) (default 90, quick 20)
  --log-dir DIR    server output (default target/attacks)";

/// What every attack gets.
#[derive(Debug)]
pub(crate) struct Ctx {
    pub(crate) echo: ServerCommand,
    pub(crate) chat: ServerCommand,
    pub(crate) quick: bool,
    pub(crate) exit_cap: Duration,
    pub(crate) hold_cap: Duration,
    pub(crate) log_dir: PathBuf,
}

impl Ctx {
    /// `full` normally, `quick` with `--quick`.
    pub(crate) fn size<T>(&self, full: T, quick: T) -> T {
        if self.quick { quick } else { full }
    }

    pub(crate) fn start(&self, chat: bool, id: &str) -> std::io::Result<Spawned> {
        let cmd = if chat { &self.chat } else { &self.echo };
        let mut cmd = cmd.clone();
        cmd.nofile = Some(4096);
        Spawned::start(&cmd, &self.log_dir.join(format!("{id}.log")))
    }
}

/// One line of the table.
#[derive(Debug, Default)]
pub(crate) struct Row {
    pub(crate) id: &'static str,
    pub(crate) server: &'static str,
    pub(crate) did: String,
    pub(crate) rss_peak_kib: Option<u64>,
    pub(crate) exit: Option<Exit>,
    pub(crate) held: String,
    pub(crate) close: String,
    pub(crate) http: String,
    pub(crate) note: String,
}

fn main() {
    let ctx = match parse_args() {
        Ok(ctx) => ctx,
        Err(problem) => {
            eprintln!("{problem}\n{USAGE}");
            std::process::exit(2)
        }
    };
    raise_own_fd_limit(8192);
    let _ = std::fs::create_dir_all(&ctx.log_dir);
    let only: Vec<String> = std::env::args()
        .skip_while(|a| a != "--only")
        .nth(1)
        .map(|list| {
            list.split(',')
                .map(|s| s.trim().to_ascii_uppercase())
                .collect()
        })
        .unwrap_or_default();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let mut rows = Vec::new();
    for (id, attack) in cases::ALL {
        if !only.is_empty() && !only.iter().any(|o| o == &id.to_ascii_uppercase()) {
            continue;
        }
        eprintln!("attacks: running {id}…");
        let row = runtime.block_on(attack(&ctx)).unwrap_or_else(|e| Row {
            id,
            note: format!("attack failed: {e}"),
            ..Row::default()
        });
        eprintln!("attacks: {id} done: {}", line(&row));
        rows.push(row);
    }
    println!(
        "| attack | server | what the client did | server RSS peak | SIGINT → exit | held | close code seen | HTTP status | note |"
    );
    println!("|---|---|---|---:|---:|---|---|---|---|");
    for row in &rows {
        println!("{}", line(row));
    }
}

fn line(r: &Row) -> String {
    let rss = r
        .rss_peak_kib
        .map(|k| format!("{:.0} MiB", k as f64 / 1024.0))
        .unwrap_or_else(|| "–".into());
    let exit = r.exit.map(|e| e.to_string()).unwrap_or_else(|| "–".into());
    let dash = |s: &str| {
        if s.is_empty() {
            "–".to_owned()
        } else {
            s.to_owned()
        }
    };
    format!(
        "| {} | {} | {} | {rss} | {exit} | {} | {} | {} | {} |",
        r.id,
        r.server,
        r.did,
        dash(&r.held),
        dash(&r.close),
        dash(&r.http),
        dash(&r.note)
    )
}

fn parse_args() -> Result<Ctx, String> {
    let mut echo = None;
    let mut chat = None;
    let mut quick = false;
    let mut exit_cap = None;
    let mut hold_cap = None;
    let mut log_dir = PathBuf::from("target/attacks");
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        let secs = |s: String| {
            s.parse::<f64>()
                .map(Duration::from_secs_f64)
                .map_err(|_| format!("not seconds: {s}"))
        };
        match flag.as_str() {
            "--echo" => echo = ServerCommand::parse(&value()?),
            "--chat" => chat = ServerCommand::parse(&value()?),
            "--quick" => quick = true,
            "--only" => {
                value()?;
            }
            "--exit-cap" => exit_cap = Some(secs(value()?)?),
            "--hold-cap" => hold_cap = Some(secs(value()?)?),
            "--log-dir" => log_dir = PathBuf::from(value()?),
            "--help" | "-h" => {
                println!("{USAGE}");
                std::process::exit(0)
            }
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    Ok(Ctx {
        echo: echo.ok_or("--echo is required")?,
        chat: chat.ok_or("--chat is required")?,
        quick,
        exit_cap: exit_cap.unwrap_or(Duration::from_secs(if quick { 10 } else { 30 })),
        hold_cap: hold_cap.unwrap_or(Duration::from_secs(if quick { 20 } else { 90 })),
        log_dir,
    })
}
