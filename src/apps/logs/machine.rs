//! The machine as the container sees it: CPUs and the cgroup's CPU quota, memory and its limit,
//! `/dev/shm`, the workspace disk, GPUs (from `nvidia-smi`, when there is one), uptime.
//! Read from /proc, /sys/fs/cgroup and statvfs; cgroup v2 first, then v1.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::Mutex;

use crate::supervisor::Supervisor;

/// Below this, PyTorch's data loaders fail ("bus error"); Docker's default is 64 MiB.
const SHM_WANTED: u64 = 1 << 30;
/// How long an answer is reused: the status page asks every 2 s per open tab.
const FRESH: Duration = Duration::from_millis(1500);

#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub cpus: usize,
    /// The cgroup's CPU limit, in cores; `None`: no limit.
    pub cpu_quota: Option<f64>,
    pub load: Option<[f64; 3]>,
    pub memory: Memory,
    pub shm: Option<Shm>,
    pub disk: Option<Disk>,
    pub gpus: Vec<Gpu>,
    pub uptime_s: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Memory {
    pub used: Option<u64>,
    pub limit: Option<u64>,
    pub total: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Shm {
    pub size: u64,
    pub used: u64,
    pub warning: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Disk {
    pub path: String,
    pub total: u64,
    pub used: u64,
    pub free: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Gpu {
    pub index: u32,
    pub name: String,
    pub utilization: Option<u32>,
    pub memory_used: Option<u64>,
    pub memory_total: Option<u64>,
    pub temperature: Option<u32>,
}

#[derive(Default)]
pub struct Cache {
    last: Mutex<Option<(Instant, Arc<Machine>)>>,
}

impl Cache {
    pub async fn get(&self, sup: &Supervisor, workspace: &Path) -> Arc<Machine> {
        // Held across the read: tabs asking at once share one `nvidia-smi`.
        let mut last = self.last.lock().await;
        if let Some((at, m)) = last.as_ref() {
            if at.elapsed() < FRESH {
                return m.clone();
            }
        }
        let gpus = gpus(sup).await;
        let ws = workspace.to_path_buf();
        let m = tokio::task::spawn_blocking(move || read(&ws, gpus)).await.map(Arc::new).unwrap_or_else(|_| {
            Arc::new(Machine {
                cpus: 0,
                cpu_quota: None,
                load: None,
                memory: Memory { used: None, limit: None, total: None },
                shm: None,
                disk: None,
                gpus: Vec::new(),
                uptime_s: None,
            })
        });
        *last = Some((Instant::now(), m.clone()));
        m
    }
}

fn read(workspace: &Path, gpus: Vec<Gpu>) -> Machine {
    let cpus = {
        // The machine's processors, not the share this container may use (available_parallelism
        // gives that). Neither nix (behind a feature) nor rustix offers it: one plain call.
        // SAFETY: sysconf has no preconditions.
        let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
        if n > 0 {
            n as usize
        } else {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        }
    };
    let shm = space("/dev/shm").map(|(total, used, _)| Shm {
        size: total,
        used,
        warning: (total < SHM_WANTED).then(|| {
            format!(
                "/dev/shm is only {}: PyTorch's data loaders need more (start the container with --shm-size=8g, or use fewer workers)",
                crate::human::bytes(total)
            )
        }),
    });
    let disk =
        space(workspace).map(|(total, used, free)| Disk { path: workspace.display().to_string(), total, used, free });
    Machine {
        cpus,
        cpu_quota: cpu_quota(),
        load: std::fs::read_to_string("/proc/loadavg").ok().and_then(|s| {
            let v: Vec<f64> = s.split_whitespace().take(3).filter_map(|x| x.parse().ok()).collect();
            (v.len() == 3).then(|| [v[0], v[1], v[2]])
        }),
        memory: memory(),
        shm,
        disk,
        gpus,
        uptime_s: std::fs::read_to_string("/proc/uptime")
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
            .map(|s| s as u64),
    }
}

fn read_trim(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok().map(|s| s.trim().to_string())
}

/// Cores the cgroup may use: `cpu.max` (v2) or `cpu.cfs_quota_us` / `cpu.cfs_period_us` (v1).
fn cpu_quota() -> Option<f64> {
    if let Some(max) = read_trim("/sys/fs/cgroup/cpu.max") {
        let mut parts = max.split_whitespace();
        let (quota, period) = (parts.next()?, parts.next()?);
        return match (quota.parse::<f64>(), period.parse::<f64>()) {
            (Ok(q), Ok(p)) if p > 0.0 => Some(q / p),
            _ => None,
        };
    }
    let quota: f64 = read_trim("/sys/fs/cgroup/cpu/cpu.cfs_quota_us")?.parse().ok()?;
    let period: f64 = read_trim("/sys/fs/cgroup/cpu/cpu.cfs_period_us")?.parse().ok()?;
    (quota > 0.0 && period > 0.0).then(|| quota / period)
}

fn meminfo(key: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with(key))?;
    line.split_whitespace().nth(1)?.parse::<u64>().ok().map(|kib| kib * 1024)
}

/// The cgroup's memory use and limit (v2, then v1), else the host's.
fn memory() -> Memory {
    let total = meminfo("MemTotal:");
    let limit_of = |s: Option<String>| s.and_then(|v| v.parse::<u64>().ok()).filter(|l| total.is_none_or(|t| *l < t));
    let (used, limit) = if Path::new("/sys/fs/cgroup/memory.current").exists() {
        (
            read_trim("/sys/fs/cgroup/memory.current").and_then(|v| v.parse().ok()),
            limit_of(read_trim("/sys/fs/cgroup/memory.max")),
        )
    } else if Path::new("/sys/fs/cgroup/memory/memory.usage_in_bytes").exists() {
        (
            read_trim("/sys/fs/cgroup/memory/memory.usage_in_bytes").and_then(|v| v.parse().ok()),
            limit_of(read_trim("/sys/fs/cgroup/memory/memory.limit_in_bytes")),
        )
    } else {
        (None, None)
    };
    let used = used.or_else(|| Some(total? - meminfo("MemAvailable:")?));
    Memory { used, limit, total }
}

/// Total, used and free bytes of the filesystem holding `path`.
fn space(path: impl AsRef<Path>) -> Option<(u64, u64, u64)> {
    let st = nix::sys::statvfs::statvfs(path.as_ref()).ok()?;
    let frsize = st.fragment_size() as u64;
    let total = st.blocks() as u64 * frsize;
    let free = st.blocks_available() as u64 * frsize;
    let used = total.saturating_sub(st.blocks_free() as u64 * frsize);
    Some((total, used, free))
}

/// GPUs from `nvidia-smi` (through the supervisor's reaper); none when it is absent or fails.
async fn gpus(sup: &Supervisor) -> Vec<Gpu> {
    let path = std::env::var("PATH").unwrap_or_default();
    let Some(exe) = crate::config::find_program("nvidia-smi", Path::new("/"), &path) else { return Vec::new() };
    let mut cmd = std::process::Command::new(exe);
    cmd.args([
        "--query-gpu=index,name,utilization.gpu,memory.used,memory.total,temperature.gpu",
        "--format=csv,noheader,nounits",
    ]);
    match sup.output(cmd, Duration::from_secs(5)).await {
        Some(out) => parse_nvidia_smi(&String::from_utf8_lossy(&out)),
        None => Vec::new(),
    }
}

/// `0, NVIDIA H100 80GB HBM3, 3, 1024, 81559, 40` per line; MiB for memory.
fn parse_nvidia_smi(text: &str) -> Vec<Gpu> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split(',').map(str::trim).collect();
            if f.len() < 6 {
                return None;
            }
            let mib = |s: &str| s.parse::<u64>().ok().map(|m| m << 20);
            Some(Gpu {
                index: f[0].parse().ok()?,
                name: f[1].to_string(),
                utilization: f[2].parse().ok(),
                memory_used: mib(f[3]),
                memory_total: mib(f[4]),
                temperature: f[5].parse().ok(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nvidia_smi_lines_parse_and_n_a_fields_are_none() {
        let gpus = parse_nvidia_smi(
            "0, NVIDIA H100 80GB HBM3, 3, 1024, 81559, 40\n1, NVIDIA A100, [N/A], 0, 40960, 35\nbad line\n",
        );
        assert_eq!(gpus.len(), 2);
        assert_eq!(
            (gpus[0].name.as_str(), gpus[0].utilization, gpus[0].memory_used),
            ("NVIDIA H100 80GB HBM3", Some(3), Some(1024 << 20))
        );
        assert_eq!((gpus[1].index, gpus[1].utilization, gpus[1].temperature), (1, None, Some(35)));
    }

    #[test]
    fn this_machine_reads() {
        let m = read(Path::new("/"), Vec::new());
        assert!(m.cpus >= 1);
        assert!(m.memory.total.is_some_and(|t| t > 0));
        assert!(m.disk.as_ref().is_some_and(|d| d.total > 0 && d.used <= d.total));
    }
}
