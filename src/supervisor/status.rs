//! What the supervisor knows about each service, as readers see it.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::process::ExitInfo;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Waiting for its dependencies to be ready.
    Waiting,
    /// Process started; its readiness probe has not passed yet.
    Starting,
    /// Process running and ready.
    Running,
    /// Exited; will be started again after a delay.
    Backoff,
    /// Stop signal sent; waiting for it to exit.
    Stopping,
    /// Stopped on request (`gpubox stop`, shutdown); starts again only on request.
    Stopped,
    /// Exited and, by its restart policy, not restarted.
    Exited,
    /// A oneshot that failed, or a service that exited with an error and is not restarted.
    Failed,
    /// A oneshot that finished successfully.
    Done,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Waiting => "waiting",
            State::Starting => "starting",
            State::Running => "running",
            State::Backoff => "backoff",
            State::Stopping => "stopping",
            State::Stopped => "stopped",
            State::Exited => "exited",
            State::Failed => "failed",
            State::Done => "done",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServiceStatus {
    pub name: String,
    pub state: State,
    pub ready: bool,
    pub oneshot: bool,
    pub pid: Option<i32>,
    /// When the current process started (ms since the Unix epoch).
    pub started_at_ms: Option<u64>,
    /// How long the current process has run, filled in when a snapshot is taken.
    pub uptime_ms: Option<u64>,
    /// Times the service was started again after its first start.
    pub restarts: u32,
    pub last_exit: Option<ExitInfo>,
    /// The last exit followed a stop or restart that was asked for (not a crash).
    #[serde(default)]
    pub last_exit_asked: bool,
    /// In backoff: milliseconds until the next start, counted from `changed_at_ms`.
    pub restart_delay_ms: Option<u64>,
    /// When `state` last changed (ms since the Unix epoch).
    pub changed_at_ms: u64,
    /// Set when the last start failed before the program ran (not found, permission denied).
    pub error: Option<String>,
    #[serde(skip)]
    pub started_at: Option<SystemTime>,
}

impl ServiceStatus {
    pub fn new(name: &str, oneshot: bool) -> ServiceStatus {
        ServiceStatus {
            name: name.to_string(),
            state: State::Waiting,
            ready: false,
            oneshot,
            pid: None,
            started_at_ms: None,
            uptime_ms: None,
            restarts: 0,
            last_exit: None,
            last_exit_asked: false,
            restart_delay_ms: None,
            changed_at_ms: ms_since_epoch(SystemTime::now()),
            error: None,
            started_at: None,
        }
    }

    /// A copy with `uptime_ms` computed for now.
    pub fn snapshot(&self) -> ServiceStatus {
        let mut s = self.clone();
        s.uptime_ms =
            s.started_at.filter(|_| s.pid.is_some()).and_then(|t| t.elapsed().ok()).map(|d| d.as_millis() as u64);
        s
    }
}

pub fn ms_since_epoch(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}
