//! A server under test started by `attacks` and `soak`: on a free
//! loopback port, its output in a log file, with a raised open-file limit;
//! and how it is stopped (SIGINT, then how long it takes to exit).

use std::fs::File;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How to start a server: a program and its arguments, to which
/// `--addr 127.0.0.1:PORT` is appended (every server of this crate and
/// every wsroute example takes it).
#[derive(Debug, Clone)]
pub struct ServerCommand {
    /// The program, e.g. `target/release/examples/echo`.
    pub program: PathBuf,
    /// Arguments before `--addr`.
    pub args: Vec<String>,
    /// The soft and hard `RLIMIT_NOFILE` the server gets, if set.
    pub nofile: Option<u64>,
}

impl ServerCommand {
    /// Splits `"PROGRAM ARG…"` on whitespace.
    pub fn parse(line: &str) -> Option<Self> {
        let mut words = line.split_ascii_whitespace().map(str::to_owned);
        Some(Self {
            program: PathBuf::from(words.next()?),
            args: words.collect(),
            nofile: None,
        })
    }
}

/// How a SIGINT ended.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Exit {
    /// The process exited this long after the signal.
    After(Duration),
    /// Still running when we stopped waiting (then it was killed).
    StillRunning(Duration),
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Exit::After(d) => write!(f, "{:.2} s", d.as_secs_f64()),
            Exit::StillRunning(cap) => write!(f, "alive > {:.0} s", cap.as_secs_f64()),
        }
    }
}

/// A running server; killed when dropped.
#[derive(Debug)]
pub struct Spawned {
    child: Child,
    /// Its process id.
    pub pid: u32,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its stdout and stderr.
    pub log: PathBuf,
}

impl Spawned {
    /// Starts `cmd` on a free loopback port, output to `log`, and waits
    /// (up to 10 s) until it accepts connections.
    pub fn start(cmd: &ServerCommand, log: &Path) -> io::Result<Self> {
        let addr = free_port()?;
        let out = File::create(log)?;
        let mut command = Command::new(&cmd.program);
        command
            .args(&cmd.args)
            .arg("--addr")
            .arg(addr.to_string())
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out);
        if let Some(limit) = cmd.nofile {
            // SAFETY: the closure runs in the child between fork and exec
            // and only calls setrlimit, which is async-signal-safe.
            unsafe {
                command.pre_exec(move || {
                    let rlim = libc::rlimit {
                        rlim_cur: limit as libc::rlim_t,
                        rlim_max: limit as libc::rlim_t,
                    };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &rlim) != 0 {
                        return Err(io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let child = command.spawn().map_err(|e| {
            io::Error::new(e.kind(), format!("starting {}: {e}", cmd.program.display()))
        })?;
        let mut server = Self {
            pid: child.id(),
            child,
            addr,
            log: log.to_owned(),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(server);
            }
            if let Some(status) = server.child.try_wait()? {
                return Err(io::Error::other(format!(
                    "{} exited ({status}) before listening; see {}",
                    cmd.program.display(),
                    log.display()
                )));
            }
            if Instant::now() > deadline {
                return Err(io::Error::other(format!(
                    "{} not listening on {addr} after 10 s; see {}",
                    cmd.program.display(),
                    log.display()
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether it has exited.
    pub fn exited(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends SIGINT and waits up to `cap` for it to exit; kills it if it
    /// has not.
    pub fn interrupt(&mut self, cap: Duration) -> Exit {
        if self.exited() {
            return Exit::After(Duration::ZERO);
        }
        // SAFETY: kill only sends a signal to our own child.
        unsafe { libc::kill(self.pid as libc::pid_t, libc::SIGINT) };
        let sent = Instant::now();
        while sent.elapsed() < cap {
            if self.exited() {
                return Exit::After(sent.elapsed());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.kill();
        Exit::StillRunning(cap)
    }

    /// SIGKILL, and reap it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        self.kill();
    }
}

fn free_port() -> io::Result<SocketAddr> {
    TcpListener::bind("127.0.0.1:0")?.local_addr()
}

/// Raises this process's soft open-file limit to at least `needed`, up to
/// the hard limit; returns the soft limit now in force.
pub fn raise_own_fd_limit(needed: u64) -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write the struct passed in.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < needed {
            limit.rlim_cur = limit.rlim_max.min(needed);
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
    limit.rlim_cur
}
