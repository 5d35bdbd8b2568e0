//! A process's CPU time and resident memory, read from `/proc`.

use std::io;
use std::time::Duration;

/// User plus system CPU time of every thread of process `pid` so far
/// (`/proc/PID/stat` fields 14 and 15, in clock ticks, usually 10 ms).
pub fn cpu_time(pid: u32) -> io::Result<Duration> {
    Ok(cpu_times(pid)?.total())
}

/// [`cpu_time`] split into the time in user space and in the kernel.
pub fn cpu_times(pid: u32) -> io::Result<CpuTimes> {
    cpu_times_from(&format!("/proc/{pid}/stat"))
}

/// CPU time in user space (`utime`) and in the kernel (`stime`): the
/// kernel's share — system calls, and on loopback the receiving side's TCP
/// stack, which runs on the sender's CPU — is what a server cannot save
/// however little it does itself.
#[derive(Debug, Clone, Copy)]
pub struct CpuTimes {
    pub user: Duration,
    pub system: Duration,
}

impl CpuTimes {
    pub fn total(&self) -> Duration {
        self.user + self.system
    }

    /// The time spent since `before`.
    pub fn since(&self, before: &CpuTimes) -> CpuTimes {
        CpuTimes {
            user: self.user.saturating_sub(before.user),
            system: self.system.saturating_sub(before.system),
        }
    }
}

/// [`cpu_time`] of the calling process.
pub fn own_cpu_time() -> io::Result<Duration> {
    Ok(cpu_times_from("/proc/self/stat")?.total())
}

fn cpu_times_from(path: &str) -> io::Result<CpuTimes> {
    let stat = std::fs::read_to_string(path)?;
    let (user, system) = parse_stat_ticks(&stat).ok_or_else(|| {
        io::Error::new(io::ErrorKind::InvalidData, format!("cannot parse {path}"))
    })?;
    let secs = |ticks: u64| Duration::from_secs_f64(ticks as f64 / clock_ticks_per_second());
    Ok(CpuTimes {
        user: secs(user),
        system: secs(system),
    })
}

/// utime and stime from the text of `/proc/PID/stat`. The command name
/// (field 2) is in parentheses and may hold spaces, so fields are counted
/// from the last `)`.
fn parse_stat_ticks(stat: &str) -> Option<(u64, u64)> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    // After the name come field 3 (state) onwards: utime is field 14, so
    // the 12th here (index 11), stime the 13th.
    let mut fields = after_name.split_ascii_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime, stime))
}

fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf only reads a configuration value.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as f64 } else { 100.0 }
}

/// Resident memory of process `pid` in KiB (`VmRSS` of `/proc/PID/status`).
pub fn rss_kib(pid: u32) -> io::Result<u64> {
    status_kib(pid, "VmRSS:")
}

/// Peak resident memory of process `pid` in KiB (`VmHWM` of
/// `/proc/PID/status`): the high-water mark since it started, so a short
/// spike between two readings is not missed.
pub fn peak_rss_kib(pid: u32) -> io::Result<u64> {
    status_kib(pid, "VmHWM:")
}

fn status_kib(pid: u32, field: &str) -> io::Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path)?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.split_ascii_whitespace().next()?.parse().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, format!("no {field} in {path}")))
}

/// How many file descriptors process `pid` has open (`/proc/PID/fd`).
pub fn fd_count(pid: u32) -> io::Result<usize> {
    Ok(std::fs::read_dir(format!("/proc/{pid}/fd"))?.count())
}

/// Established (or half-closed by the peer: `CLOSE_WAIT`) TCP connections
/// whose local port is `port`, from `/proc/net/tcp`, counted by the
/// peer's IPv4 address. On loopback these are the server's ends of its
/// clients' connections.
pub fn connections_on_port(port: u16) -> io::Result<Vec<(std::net::Ipv4Addr, usize)>> {
    let table = std::fs::read_to_string("/proc/net/tcp")?;
    let mut counts: Vec<(std::net::Ipv4Addr, usize)> = Vec::new();
    for line in table.lines().skip(1) {
        let mut fields = line.split_ascii_whitespace().skip(1);
        let (Some(local), Some(remote), Some(state)) =
            (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        // 01 ESTABLISHED, 08 CLOSE_WAIT.
        if state != "01" && state != "08" {
            continue;
        }
        let Some(local_port) = local
            .split(':')
            .nth(1)
            .and_then(|p| u16::from_str_radix(p, 16).ok())
        else {
            continue;
        };
        if local_port != port {
            continue;
        }
        // The address is the kernel's u32 in host (little-endian) order.
        let peer = remote
            .split(':')
            .next()
            .and_then(|a| u32::from_str_radix(a, 16).ok())
            .map(|a| std::net::Ipv4Addr::from(a.swap_bytes()))
            .unwrap_or(std::net::Ipv4Addr::UNSPECIFIED);
        match counts.iter_mut().find(|(ip, _)| *ip == peer) {
            Some((_, n)) => *n += 1,
            None => counts.push((peer, 1)),
        }
    }
    Ok(counts)
}

/// The CPUs process `pid` may run on (`Cpus_allowed_list`), to confirm
/// pinning.
pub fn cpus_allowed(pid: u32) -> io::Result<String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    Ok(status
        .lines()
        .find_map(|line| line.strip_prefix("Cpus_allowed_list:"))
        .unwrap_or("?")
        .trim()
        .to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_name() {
        let stat = "4242 (tcp echo) S 1 4242 4242 0 -1 4194560 170 0 0 0 \
                    37 5 0 0 20 0 1 0 812 9834496 1120 18446744073709551615";
        assert_eq!(parse_stat_ticks(stat), Some((37, 5)));
    }

    #[test]
    fn own_process_has_cpu_time_and_memory() {
        assert!(own_cpu_time().is_ok());
        assert!(rss_kib(std::process::id()).unwrap() > 0);
    }
}
