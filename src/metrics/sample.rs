//! One reading of the machine as the container sees it, for the history: CPU and memory from the
//! cgroup (v2, then v1, then the host's), the cgroup's OOM kills, the workspace disk, network
//! bytes. Counters (CPU time, network bytes) become rates between two readings.

use std::path::Path;

/// Cumulative counters, kept from one reading to the next.
#[derive(Debug, Clone, Copy)]
pub struct Counters {
    /// When the reading was taken.
    pub at: std::time::Instant,
    /// CPU time used by the cgroup, microseconds.
    pub cpu_us: Option<u64>,
    pub rx: Option<u64>,
    pub tx: Option<u64>,
}

/// The machine at one moment (`None`: not read), as the API shows it too.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct System {
    /// Percent of the CPUs this container may use (its quota, else every CPU).
    pub cpu: Option<f32>,
    pub mem_used: Option<u64>,
    pub mem_limit: Option<u64>,
    pub disk_used: Option<u64>,
    pub disk_total: Option<u64>,
    /// Bytes per second, every interface but loopback.
    pub net_rx: Option<f32>,
    pub net_tx: Option<f32>,
    /// Processes of this cgroup killed by an OOM killer since it was made.
    pub oom_kills: Option<u64>,
}

/// `key value` lines (cgroup v2's flat-keyed files): the value of `key`.
pub fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let mut it = l.split_whitespace();
        (it.next()? == key).then(|| it.next()?.parse().ok())?
    })
}

/// CPU time the cgroup has used, microseconds: `cpu.stat` (v2), `cpuacct.usage` (v1, ns), else
/// every non-idle tick of `/proc/stat` (the host's; USER_HZ is 100 on Linux).
fn cpu_us() -> Option<u64> {
    use super::cgroup;
    if cgroup::v2() {
        if let Some(v) = cgroup::read("cpu.stat", None).and_then(|s| keyed(&s, "usage_usec")) {
            return Some(v);
        }
    } else if let Some(ns) =
        cgroup::read("", Some((cgroup::v1_cpu(), "cpuacct.usage"))).and_then(|v| v.parse::<u64>().ok())
    {
        return Some(ns / 1000);
    }
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let cpu = stat.lines().find(|l| l.starts_with("cpu "))?;
    let f: Vec<u64> = cpu.split_whitespace().skip(1).filter_map(|v| v.parse().ok()).collect();
    // user nice system idle iowait irq softirq steal: all but idle and iowait
    let busy: u64 = f.iter().enumerate().filter(|(i, _)| *i != 3 && *i != 4 && *i < 8).map(|(_, v)| v).sum();
    Some(busy * 10_000)
}

/// `/proc/net/dev`: received and sent bytes over every interface but loopback.
pub fn net_bytes(text: &str) -> Option<(u64, u64)> {
    let mut total = (0u64, 0u64);
    let mut any = false;
    for line in text.lines().skip(2) {
        let Some((name, rest)) = line.split_once(':') else { continue };
        if name.trim() == "lo" {
            continue;
        }
        let f: Vec<u64> = rest.split_whitespace().filter_map(|v| v.parse().ok()).collect();
        if f.len() >= 9 {
            total.0 += f[0];
            total.1 += f[8];
            any = true;
        }
    }
    any.then_some(total)
}

/// The cgroup's OOM kills: `memory.events` (v2), else `memory.oom_control` (v1, newer kernels).
fn oom_kills() -> Option<u64> {
    let events = super::cgroup::read("memory.events", Some((super::cgroup::v1_memory(), "memory.oom_control")))?;
    keyed(&events, "oom_kill")
}

/// Reads the machine; `before`: the last reading's counters (none at the first).
pub fn read(workspace: &Path, before: Option<Counters>) -> (System, Counters) {
    let now = Counters { at: std::time::Instant::now(), cpu_us: cpu_us(), rx: None, tx: None };
    let (rx, tx) = std::fs::read_to_string("/proc/net/dev").ok().and_then(|t| net_bytes(&t)).unzip();
    let now = Counters { rx, tx, ..now };
    let cores = cpu_quota().unwrap_or_else(|| cpus() as f64);
    let mem = memory();
    let disk = space(workspace);
    let mut sys = System {
        cpu: None,
        mem_used: mem.used,
        mem_limit: mem.limit.or(mem.total),
        disk_used: disk.map(|d| d.1),
        disk_total: disk.map(|d| d.0),
        net_rx: None,
        net_tx: None,
        oom_kills: oom_kills(),
    };
    if let Some(b) = before {
        let secs = now.at.duration_since(b.at).as_secs_f64();
        if secs > 0.0 {
            let rate = |a: Option<u64>, z: Option<u64>| Some((z?.checked_sub(a?)? as f64 / secs) as f32);
            sys.cpu = match (b.cpu_us, now.cpu_us) {
                (Some(a), Some(z)) if cores > 0.0 => {
                    Some(((z.saturating_sub(a) as f64 / 1e6 / secs / cores * 100.0).min(100.0)) as f32)
                }
                _ => None,
            };
            sys.net_rx = rate(b.rx, now.rx);
            sys.net_tx = rate(b.tx, now.tx);
        }
    }
    (sys, now)
}

/// Memory in use, the cgroup's limit (none: no limit below the machine's), the machine's.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Memory {
    pub used: Option<u64>,
    pub limit: Option<u64>,
    pub total: Option<u64>,
}

/// The machine's processors, not the share this container may use (available_parallelism gives
/// that). Neither nix (behind a feature) nor rustix offers it: one plain call.
pub fn cpus() -> usize {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    if n > 0 {
        n as usize
    } else {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    }
}

/// Cores the cgroup may use: `cpu.max` (v2) or `cpu.cfs_quota_us` / `cpu.cfs_period_us` (v1).
pub fn cpu_quota() -> Option<f64> {
    use super::cgroup;
    if cgroup::v2() {
        let max = cgroup::read("cpu.max", None)?;
        let mut parts = max.split_whitespace();
        let (quota, period) = (parts.next()?, parts.next()?);
        return match (quota.parse::<f64>(), period.parse::<f64>()) {
            (Ok(q), Ok(p)) if p > 0.0 => Some(q / p),
            _ => None,
        };
    }
    let quota: f64 = cgroup::read("", Some((cgroup::v1_cpu(), "cpu.cfs_quota_us")))?.parse().ok()?;
    let period: f64 = cgroup::read("", Some((cgroup::v1_cpu(), "cpu.cfs_period_us")))?.parse().ok()?;
    (quota > 0.0 && period > 0.0).then(|| quota / period)
}

fn meminfo(key: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with(key))?;
    line.split_whitespace().nth(1)?.parse::<u64>().ok().map(|kib| kib * 1024)
}

/// The cgroup's memory use and limit (v2, then v1), else the host's.
pub fn memory() -> Memory {
    use super::cgroup;
    let total = meminfo("MemTotal:");
    let limit_of = |s: Option<String>| s.and_then(|v| v.parse::<u64>().ok()).filter(|l| total.is_none_or(|t| *l < t));
    let mem = cgroup::v1_memory();
    let used = cgroup::read("memory.current", Some((mem, "memory.usage_in_bytes"))).and_then(|v| v.parse().ok());
    let limit = limit_of(cgroup::read("memory.max", Some((mem, "memory.limit_in_bytes"))));
    let used = used.or_else(|| Some(total? - meminfo("MemAvailable:")?));
    Memory { used, limit, total }
}

/// Total, used and free bytes of the filesystem holding `path`.
pub fn space(path: impl AsRef<Path>) -> Option<(u64, u64, u64)> {
    let st = nix::sys::statvfs::statvfs(path.as_ref()).ok()?;
    let frsize = st.fragment_size() as u64;
    let total = st.blocks() as u64 * frsize;
    let free = st.blocks_available() as u64 * frsize;
    let used = total.saturating_sub(st.blocks_free() as u64 * frsize);
    Some((total, used, free))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn net_dev_sums_every_interface_but_loopback() {
        let text = "Inter-|   Receive                                                |  Transmit\n \
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    \
lo: 1000      10    0    0    0     0          0         0     1000      10    0    0    0     0       0          0\n  \
eth0: 123456789012 100 0 0 0 0 0 0 987654321 50 0 0 0 0 0 0\n\
wlan0:5 1 0 0 0 0 0 0 7 1 0 0 0 0 0 0\n";
        assert_eq!(net_bytes(text), Some((123456789017, 987654328)));
        assert_eq!(net_bytes("a\nb\n    lo: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n"), None);
    }

    #[test]
    fn flat_keyed_files_read_by_key() {
        let events = "low 0\nhigh 0\nmax 12\noom 3\noom_kill 2\noom_group_kill 0\n";
        assert_eq!(keyed(events, "oom_kill"), Some(2));
        assert_eq!(keyed(events, "oom"), Some(3));
        assert_eq!(keyed("usage_usec 5\n", "nope"), None);
    }

    #[test]
    fn this_machine_reads_and_busy_cpu_shows() {
        let (_, first) = read(Path::new("/"), None);
        let until = std::time::Instant::now() + std::time::Duration::from_millis(300);
        let mut x = 0u64;
        while std::time::Instant::now() < until {
            x = x.wrapping_add(std::hint::black_box(1));
        }
        let (sys, _) = read(Path::new("/"), Some(first));
        let cpu = sys.cpu.expect("a CPU reading");
        assert!(cpu > 1.0 && cpu <= 100.0, "{cpu} ({x})");
        assert!(sys.mem_used.is_some() && sys.disk_total.is_some_and(|t| t > 0));
    }
}
