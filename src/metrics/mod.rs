//! The machine's and the GPUs' history: a sample every `[metrics] interval` (5 s), the last
//! `keep` (24 h) of them in memory (`history.rs` states the size), saved under the state folder
//! every ten minutes and when gpubox stops, and read back when it starts.
//!
//! One task samples; nothing it does runs on a serving thread: file reads and NVML calls go to
//! the blocking pool (an NVML call that hangs is waited for no longer than 4 s, and not asked
//! again until it returns), `nvidia-smi` runs through the supervisor's reaper with a 4 s limit
//! and is asked only once a minute after three failures in a row.
//!
//! Readers: the charts (`GET /api/metrics`), the home page's sparklines and gauges, the alerts
//! (OOM kills, a full disk, an idle GPU) and the idle stop, which follow [`Metrics::watch`].

pub mod cgroup;
pub mod gpu;
mod history;
pub mod sample;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::watch;

pub use gpu::GpuReading;
pub use history::Columns;
pub use sample::System;

use crate::config::MetricsSettings;
use crate::supervisor::Supervisor;

/// The file the history is saved to, under the state folder.
pub const FILE: &str = "metrics.json";
/// How often the history is saved besides at stop (a crash loses at most this much).
const SAVE_EVERY: Duration = Duration::from_secs(600);
/// The longest a GPU reading may take before the sample goes without it.
const GPU_WAIT: Duration = Duration::from_secs(4);
/// The most points a range is thinned to.
pub const POINTS: usize = 720;

/// One sample: the machine and every GPU.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    /// Seconds since the Unix epoch.
    pub t: u32,
    #[serde(flatten)]
    pub system: System,
    pub gpus: Vec<GpuReading>,
    /// A GPU may be at work unseen: its reading failed or timed out this time, it reports no
    /// utilization (MIG), or the container has NVIDIA devices but nothing to read them with.
    /// The idle stop takes that as busy.
    pub gpu_unknown: bool,
}

/// Where the GPU readings come from.
enum Source {
    Nvml(Arc<gpu::Nvml>),
    Smi(PathBuf),
    None,
}

pub struct Metrics {
    pub interval: Duration,
    keep: Duration,
    history: Mutex<history::History>,
    latest: watch::Sender<Option<Arc<Snapshot>>>,
    /// Where GPU readings come from, in words (`NVML`, `nvidia-smi`, or why none).
    source: Mutex<String>,
    file: PathBuf,
    /// Why the saved history could not be read back, if it could not.
    pub load_problem: Option<String>,
}

/// An answer of `GET /api/metrics`.
#[derive(Serialize)]
pub struct Answer {
    pub interval: u64,
    pub range: u64,
    pub gpu_source: String,
    /// The newest sample (limits, names, the OOM count), if any yet.
    pub latest: Option<Arc<Snapshot>>,
    #[serde(flatten)]
    pub columns: Columns,
}

fn now_s() -> u32 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as u32)
}

impl Metrics {
    /// Reads the saved history back and starts sampling.
    pub fn start(
        settings: &MetricsSettings,
        sup: Arc<Supervisor>,
        workspace: PathBuf,
        state_dir: &Path,
    ) -> Arc<Metrics> {
        let cap = (settings.keep.as_secs() / settings.interval.as_secs().max(1)).max(1) as usize;
        let file = state_dir.join(FILE);
        let since = now_s().saturating_sub(settings.keep.as_secs() as u32);
        let (history, load_problem) = match history::History::load(&file, cap, since, now_s().saturating_add(60)) {
            Ok(h) => (h, None),
            Err(e) => (history::History::new(cap), Some(e)),
        };
        let (latest, _) = watch::channel(None);
        let m = Arc::new(Metrics {
            interval: settings.interval,
            keep: settings.keep,
            history: Mutex::new(history),
            latest,
            source: Mutex::new("not read yet".into()),
            file,
            load_problem,
        });
        tokio::spawn(sample_loop(m.clone(), sup, workspace));
        m
    }

    /// The newest sample, and every one after it as it comes.
    pub fn watch(&self) -> watch::Receiver<Option<Arc<Snapshot>>> {
        self.latest.subscribe()
    }

    pub fn latest(&self) -> Option<Arc<Snapshot>> {
        self.latest.borrow().clone()
    }

    pub fn gpu_source(&self) -> String {
        self.source.lock().expect("metrics lock").clone()
    }

    /// The last `range` (at most `keep`), thinned to [`POINTS`].
    pub fn query(&self, range: Duration) -> Answer {
        let range = range.min(self.keep);
        let from = now_s().saturating_sub(range.as_secs() as u32);
        let columns =
            self.history.lock().expect("metrics lock").range(from, POINTS, self.interval.as_secs().max(1) as u32);
        Answer {
            interval: self.interval.as_secs(),
            range: range.as_secs(),
            gpu_source: self.gpu_source(),
            latest: self.latest(),
            columns,
        }
    }

    /// Writes the history to the state folder (at stop, and every ten minutes).
    pub fn save(&self) -> std::io::Result<()> {
        // A copy under the lock; the writing (and its fsync) outside it, so that the pages
        // reading the history never wait for the disk.
        let columns = {
            let h = self.history.lock().expect("metrics lock");
            if h.len() == 0 {
                return Ok(());
            }
            h.all()
        };
        history::save(columns, &self.file)
    }

    fn record(&self, snap: Snapshot) {
        let mut row: Vec<(String, f32)> = Vec::with_capacity(7 + 4 * snap.gpus.len());
        let s = &snap.system;
        let mut put = |name: String, v: Option<f32>| row.push((name, v.unwrap_or(f32::NAN)));
        put("cpu".into(), s.cpu);
        put("mem".into(), s.mem_used.map(|v| v as f32));
        put("disk".into(), s.disk_used.map(|v| v as f32));
        put("net_rx".into(), s.net_rx);
        put("net_tx".into(), s.net_tx);
        for g in &snap.gpus {
            put(format!("gpu{}_util", g.index), g.utilization);
            put(format!("gpu{}_mem", g.index), g.memory_used.map(|v| v as f32));
            put(format!("gpu{}_temp", g.index), g.temperature);
            put(format!("gpu{}_power", g.index), g.power);
        }
        self.history.lock().expect("metrics lock").push(snap.t, &row);
        self.latest.send_replace(Some(Arc::new(snap)));
    }
}

/// Picks the GPU source: NVML where the driver's library loads, else `nvidia-smi` on the PATH.
async fn find_source() -> (Source, String) {
    // A driver whose initialisation hangs must not keep the machine's samples from starting.
    let why = match tokio::time::timeout(Duration::from_secs(10), tokio::task::spawn_blocking(gpu::Nvml::load)).await {
        Ok(Ok(Ok(nvml))) => return (Source::Nvml(Arc::new(nvml)), "NVML (libnvidia-ml.so.1)".into()),
        Ok(Ok(Err(why))) => why,
        Ok(Err(_)) => "NVML's loading failed".to_string(),
        Err(_) => "NVML did not answer within 10 s".to_string(),
    };
    let path = std::env::var("PATH").unwrap_or_default();
    match crate::config::find_program("nvidia-smi", Path::new("/"), &path) {
        Some(exe) => (Source::Smi(exe), format!("nvidia-smi ({why})")),
        None if nvidia_devices() => (
            Source::None,
            format!(
                "GPU usage cannot be read: the container has NVIDIA devices but {why}, and no nvidia-smi on the PATH"
            ),
        ),
        None => (Source::None, format!("no GPU seen: {why}, and no nvidia-smi on the PATH")),
    }
}

/// Whether the container was given NVIDIA devices (`/dev/nvidiactl`, `/dev/nvidia0`).
fn nvidia_devices() -> bool {
    Path::new("/dev/nvidiactl").exists() || Path::new("/dev/nvidia0").exists()
}

async fn sample_loop(m: Arc<Metrics>, sup: Arc<Supervisor>, workspace: PathBuf) {
    let (source, said) = find_source().await;
    let devices = nvidia_devices();
    *m.source.lock().expect("metrics lock") = said;
    let mut tick = tokio::time::interval(m.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut counters: Option<sample::Counters> = None;
    // An NVML call still running from an earlier sample: no new one until it returns.
    let mut pending: Option<tokio::task::JoinHandle<Result<Vec<GpuReading>, String>>> = None;
    let mut smi_failures = 0u32;
    let mut smi_next = tokio::time::Instant::now();
    let mut saved = tokio::time::Instant::now();
    loop {
        tick.tick().await;
        if sup.is_shutting_down() {
            return;
        }
        let ws = workspace.clone();
        let before = counters;
        let Ok((system, now)) = tokio::task::spawn_blocking(move || sample::read(&ws, before)).await else {
            continue;
        };
        counters = Some(now);
        // Whether this sample could read the GPUs it should have.
        let mut read = true;
        let gpus = match &source {
            Source::Nvml(nvml) => {
                let mut job = match pending.take() {
                    Some(j) => j,
                    None => {
                        let nvml = nvml.clone();
                        tokio::task::spawn_blocking(move || nvml.read())
                    }
                };
                match tokio::time::timeout(GPU_WAIT, &mut job).await {
                    Ok(Ok(Ok(g))) => g,
                    Ok(_) => {
                        read = false;
                        Vec::new()
                    }
                    Err(_) => {
                        pending = Some(job);
                        read = false;
                        Vec::new()
                    }
                }
            }
            Source::Smi(exe) if tokio::time::Instant::now() >= smi_next => {
                let mut cmd = std::process::Command::new(exe);
                cmd.args([gpu::SMI_QUERY, "--format=csv,noheader,nounits"]);
                match sup.output(cmd, GPU_WAIT).await.map(|out| gpu::parse_smi(&String::from_utf8_lossy(&out))) {
                    Some(g) if !g.is_empty() => {
                        smi_failures = 0;
                        g
                    }
                    _ => {
                        smi_failures += 1;
                        if smi_failures >= 3 {
                            smi_next = tokio::time::Instant::now() + Duration::from_secs(60);
                        }
                        read = false;
                        Vec::new()
                    }
                }
            }
            // nvidia-smi failed three times in a row: asked again once a minute.
            Source::Smi(_) => {
                read = false;
                Vec::new()
            }
            Source::None => {
                read = !devices;
                Vec::new()
            }
        };
        let gpu_unknown = !read || gpus.iter().any(|g| g.utilization.is_none());
        m.record(Snapshot { t: now_s(), system, gpus, gpu_unknown });
        if saved.elapsed() >= SAVE_EVERY {
            saved = tokio::time::Instant::now();
            let m = m.clone();
            let _ = tokio::task::spawn_blocking(move || {
                if let Err(e) = m.save() {
                    eprintln!("[gpubox] cannot save the metrics history to {}: {e}", m.file.display());
                }
            })
            .await;
        }
    }
}
