//! The one place where gpubox waits for child processes.
//!
//! When gpubox is PID 1 (a container's CMD), every orphan in the container is re-parented to it;
//! when it is not, it makes itself a *child subreaper* so that orphans of its services still come
//! to it instead of the host's init. Either way it must reap what comes, or zombies pile up.
//!
//! So every exit is collected here with `waitpid(-1)`. A spawned service's exit status goes to
//! the task that waits for it; anything else is an orphan and is just counted. Because
//! `waitpid(-1)` would also steal the status of any child spawned elsewhere, **every** process
//! gpubox starts must be spawned through [`Reaper::spawn`]. Spawning and reaping share one lock,
//! so a child that exits at once cannot be reaped before its waiter is registered.

use std::collections::HashMap;
use std::io;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use serde::Serialize;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::oneshot;

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitInfo {
    Code(i32),
    Signal(i32),
}

impl ExitInfo {
    pub fn success(self) -> bool {
        self == ExitInfo::Code(0)
    }

    /// The code a shell would report: the exit code, or 128 + the signal number.
    pub fn as_code(self) -> i32 {
        match self {
            ExitInfo::Code(c) => c,
            ExitInfo::Signal(s) => 128 + s,
        }
    }
}

pub fn signal_name(sig: i32) -> String {
    nix::sys::signal::Signal::try_from(sig).map_or_else(|_| format!("signal {sig}"), |s| s.as_str().to_string())
}

impl std::fmt::Display for ExitInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExitInfo::Code(c) => write!(f, "exit code {c}"),
            ExitInfo::Signal(s) => write!(f, "killed by {}", signal_name(*s)),
        }
    }
}

impl Serialize for ExitInfo {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("ExitInfo", 3)?;
        match self {
            ExitInfo::Code(c) => {
                st.serialize_field("code", c)?;
                st.serialize_field("signal", &None::<String>)?;
            }
            ExitInfo::Signal(sig) => {
                st.serialize_field("code", &None::<i32>)?;
                st.serialize_field("signal", &signal_name(*sig))?;
            }
        }
        st.serialize_field("text", &self.to_string())?;
        st.end()
    }
}

#[derive(Clone)]
pub struct Reaper {
    waiting: Arc<Mutex<HashMap<i32, oneshot::Sender<ExitInfo>>>>,
    orphans: Arc<AtomicU64>,
}

impl Reaper {
    /// Starts reaping on every SIGCHLD (and every few seconds, in case one was coalesced away).
    /// Must be called inside the tokio runtime, before anything is spawned.
    pub fn start() -> io::Result<Reaper> {
        let mut sigchld = signal(SignalKind::child())?;
        let reaper = Reaper { waiting: Arc::default(), orphans: Arc::default() };
        let r = reaper.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            loop {
                tokio::select! {
                    _ = sigchld.recv() => {}
                    _ = tick.tick() => {}
                }
                r.reap();
            }
        });
        Ok(reaper)
    }

    /// Spawns `cmd`; the receiver gets its exit status.
    pub fn spawn(&self, cmd: &mut Command) -> io::Result<(Child, oneshot::Receiver<ExitInfo>)> {
        let mut waiting = self.waiting.lock().expect("reaper lock");
        let child = cmd.spawn()?;
        let (tx, rx) = oneshot::channel();
        waiting.insert(child.id() as i32, tx);
        Ok((child, rx))
    }

    /// Orphans reaped so far (processes that were not gpubox's own children).
    pub fn orphans_reaped(&self) -> u64 {
        self.orphans.load(Ordering::Relaxed)
    }

    fn reap(&self) {
        let mut waiting = self.waiting.lock().expect("reaper lock");
        loop {
            let (pid, info) = match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) => (pid, ExitInfo::Code(code)),
                Ok(WaitStatus::Signaled(pid, sig, _)) => (pid, ExitInfo::Signal(sig as i32)),
                Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => return,
                Err(Errno::EINTR) => continue,
                Ok(_) => continue,
                Err(_) => return,
            };
            match waiting.remove(&pid.as_raw()) {
                Some(tx) => {
                    let _ = tx.send(info);
                }
                None => {
                    self.orphans.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
}

/// Makes this process the reaper of its descendants' orphans when it is not PID 1.
pub fn become_subreaper() {
    // SAFETY: prctl with PR_SET_CHILD_SUBREAPER takes plain integers.
    unsafe {
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    }
}
