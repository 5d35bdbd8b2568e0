//! Starting things: building the binaries, a pinned server, the pinned load
//! generator; and the process limits they need.

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::plan::{Build, Server};

/// Where the binaries are and how to pin them.
#[derive(Debug, Clone)]
pub(crate) struct Toolbox {
    /// The workspace root, where `cargo build` runs.
    pub(crate) workspace: PathBuf,
    /// `target/release`.
    pub(crate) bin_dir: PathBuf,
    /// The core servers run on, and the one the load generator runs on;
    /// `None` without `taskset` pinning (fewer than two cores).
    pub(crate) cores: Option<(usize, usize)>,
    /// Server output goes here, one file per server.
    pub(crate) log_dir: PathBuf,
    /// Extra arguments for this crate's servers (not for `examples/echo`,
    /// which takes only `--addr`).
    pub(crate) server_args: Vec<String>,
}

impl Toolbox {
    pub(crate) fn binary(&self, server: &Server) -> PathBuf {
        match server.build {
            Build::BenchBin => self.bin_dir.join(server.name),
            Build::Example => self.bin_dir.join("examples").join("echo"),
        }
    }

    pub(crate) fn loadgen(&self) -> PathBuf {
        self.bin_dir.join("loadgen")
    }

    /// `taskset -c CORE program` (or just `program` when not pinning).
    fn pinned(&self, core: impl Fn((usize, usize)) -> usize, program: &Path) -> Command {
        match self.cores {
            Some(cores) => {
                let mut cmd = Command::new("taskset");
                cmd.arg("-c").arg(core(cores).to_string()).arg(program);
                cmd
            }
            None => Command::new(program),
        }
    }
}

/// Builds, in release mode, the load generator and every server binary in
/// `servers`.
pub(crate) fn build(workspace: &Path, servers: &[Server]) -> io::Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut bins = vec!["loadgen"];
    bins.extend(
        servers
            .iter()
            .filter(|s| s.build == Build::BenchBin)
            .map(|s| s.name),
    );
    let mut cmd = Command::new(&cargo);
    cmd.current_dir(workspace)
        .args(["build", "--release", "-p", "wsroute-bench"]);
    for bin in &bins {
        cmd.args(["--bin", bin]);
    }
    run_cargo(cmd)?;
    if servers.iter().any(|s| s.build == Build::Example) {
        let mut cmd = Command::new(&cargo);
        cmd.current_dir(workspace).args([
            "build",
            "--release",
            "-p",
            "wsroute-examples",
            "--example",
            "echo",
        ]);
        run_cargo(cmd)?;
    }
    Ok(())
}

fn run_cargo(mut cmd: Command) -> io::Result<()> {
    eprintln!("runner: {cmd:?}");
    let status = cmd.status()?;
    if status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!("{cmd:?} failed: {status}")))
    }
}

/// Checks that `taskset` (util-linux) is there when pinning is wanted.
pub(crate) fn check_taskset() -> io::Result<()> {
    match Command::new("taskset")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(status) if status.success() => Ok(()),
        _ => Err(io::Error::new(
            io::ErrorKind::NotFound,
            "`taskset` not found: install util-linux (Debian: apt-get install util-linux)",
        )),
    }
}

/// Raises the open-file limit (soft and, as root, hard) to at least
/// `needed`, for this process and so for the servers and load generator it
/// starts. Returns the soft limit in force.
pub(crate) fn raise_fd_limit(needed: u64) -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write the struct passed in.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 0;
        }
        if limit.rlim_cur >= needed {
            return limit.rlim_cur;
        }
        let wanted = libc::rlimit {
            rlim_cur: needed,
            rlim_max: limit.rlim_max.max(needed),
        };
        if libc::setrlimit(libc::RLIMIT_NOFILE, &wanted) != 0 {
            // Not allowed to raise the hard limit: go as far as it allows.
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
    }
    limit.rlim_cur
}

/// A free port on 127.0.0.1 (a new one per run, so that connections left in
/// TIME_WAIT by the last run never collide with the next).
pub(crate) fn free_addr() -> io::Result<SocketAddr> {
    TcpListener::bind("127.0.0.1:0")?.local_addr()
}

/// A running server, killed when dropped.
#[derive(Debug)]
pub(crate) struct RunningServer {
    child: Child,
    pub(crate) addr: SocketAddr,
}

impl RunningServer {
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        // Only our own child, by its handle.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `server` pinned to the server core (over TLS when `tls`) and
/// waits until it accepts connections.
pub(crate) fn start_server(
    tools: &Toolbox,
    server: &Server,
    tls: bool,
) -> io::Result<RunningServer> {
    let addr = free_addr()?;
    let log = std::fs::File::create(tools.log_dir.join(format!("{}.log", server.name)))?;
    let mut cmd = tools.pinned(|(server_core, _)| server_core, &tools.binary(server));
    cmd.arg("--addr").arg(addr.to_string());
    if server.build == Build::BenchBin {
        cmd.args(&tools.server_args);
    }
    if tls {
        cmd.arg("--tls");
    }
    let child = cmd
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()?;
    let mut running = RunningServer { child, addr };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            // Let the accept of that probe connection settle.
            std::thread::sleep(Duration::from_millis(50));
            return Ok(running);
        }
        if let Some(status) = running.child.try_wait()? {
            return Err(io::Error::other(format!(
                "{} exited at start ({status}); see {}",
                server.name,
                tools.log_dir.join(format!("{}.log", server.name)).display()
            )));
        }
        if Instant::now() > deadline {
            return Err(io::Error::other(format!(
                "{} did not listen on {addr} within 20 s",
                server.name
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs the load generator pinned to its core with `args`, and returns the
/// JSON line it printed last. Killed after `timeout`.
pub(crate) fn run_loadgen(
    tools: &Toolbox,
    args: &[String],
    timeout: Duration,
) -> io::Result<String> {
    let mut child = tools
        .pinned(|(_, load_core)| load_core, &tools.loadgen())
        .args(args)
        .arg("--json")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let deadline = Instant::now() + timeout;
    while child.try_wait()?.is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("loadgen took over {timeout:?}"),
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    match stdout.lines().rev().find(|line| line.starts_with('{')) {
        Some(line) if output.status.success() => Ok(line.to_owned()),
        _ => Err(io::Error::other(format!(
            "loadgen failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ))),
    }
}
