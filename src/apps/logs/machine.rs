//! The machine as the container sees it: CPUs and the cgroup's CPU quota, memory and its limit,
//! `/dev/shm`, the workspace disk, GPUs (the sampler's last reading, see `metrics/`), uptime.
//! Read from /proc, this process's cgroup (`metrics/cgroup.rs`; v2, then v1) and statvfs.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::metrics::sample::{cpu_quota, cpus, memory, space, Memory};
use tokio::sync::Mutex;

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

/// A GPU as the last sample read it (see `metrics/gpu.rs`).
pub type Gpu = crate::metrics::GpuReading;

pub struct Cache {
    last: Mutex<Option<(Instant, Arc<Machine>)>>,
    /// The GPUs come from the sampler's last reading (one reader of NVML or `nvidia-smi`).
    metrics: Arc<crate::metrics::Metrics>,
}

impl Cache {
    pub fn new(metrics: Arc<crate::metrics::Metrics>) -> Cache {
        Cache { last: Mutex::new(None), metrics }
    }

    pub async fn get(&self, workspace: &Path) -> Arc<Machine> {
        let mut last = self.last.lock().await;
        if let Some((at, m)) = last.as_ref() {
            if at.elapsed() < FRESH {
                return m.clone();
            }
        }
        let gpus = self.metrics.latest().map(|s| s.gpus.clone()).unwrap_or_default();
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
    let cpus = cpus();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_machine_reads() {
        let m = read(Path::new("/"), Vec::new());
        assert!(m.cpus >= 1);
        assert!(m.memory.total.is_some_and(|t| t > 0));
        assert!(m.disk.as_ref().is_some_and(|d| d.total > 0 && d.used <= d.total));
    }
}
