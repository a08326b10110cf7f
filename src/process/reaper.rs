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
//!
//! Every child is forked by one long-lived thread, the spawner: children ask the kernel to kill
//! them when gpubox dies (`PR_SET_PDEATHSIG`, see `spawn::own_session`), and the kernel means the
//! thread that forked them, so a pool thread that exits when idle must never be that thread.
//! At shutdown, what is left of gpubox's descendants (a `setsid` grandchild that outlived its
//! service, re-parented to gpubox) is ended too ([`Reaper::end_orphans`]).

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

/// Read back from its serialized form (`gpubox status` reads what the running gpubox sent).
impl<'de> serde::Deserialize<'de> for ExitInfo {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<ExitInfo, D::Error> {
        #[derive(serde::Deserialize)]
        struct Wire {
            code: Option<i32>,
            signal: Option<String>,
        }
        let w = Wire::deserialize(d)?;
        match (w.code, w.signal) {
            (Some(c), _) => Ok(ExitInfo::Code(c)),
            (None, Some(name)) => name
                .parse::<nix::sys::signal::Signal>()
                .map(|s| ExitInfo::Signal(s as i32))
                .or_else(|_| name.trim_start_matches("signal ").parse().map(ExitInfo::Signal))
                .map_err(|_| serde::de::Error::custom(format!("unknown signal {name}"))),
            (None, None) => Err(serde::de::Error::custom("an exit has a code or a signal")),
        }
    }
}

type Spawned = io::Result<(Child, oneshot::Receiver<ExitInfo>)>;

#[derive(Clone)]
pub struct Reaper {
    waiting: Arc<Mutex<HashMap<i32, oneshot::Sender<ExitInfo>>>>,
    orphans: Arc<AtomicU64>,
    spawner: std::sync::mpsc::Sender<(Command, std::sync::mpsc::SyncSender<Spawned>)>,
}

impl Reaper {
    /// Starts reaping on every SIGCHLD (and every few seconds, in case one was coalesced away).
    /// Must be called inside the tokio runtime, before anything is spawned.
    pub fn start() -> io::Result<Reaper> {
        let mut sigchld = signal(SignalKind::child())?;
        let waiting: Arc<Mutex<HashMap<i32, oneshot::Sender<ExitInfo>>>> = Arc::default();
        let (spawner, requests) = std::sync::mpsc::channel::<(Command, std::sync::mpsc::SyncSender<Spawned>)>();
        let w = waiting.clone();
        std::thread::Builder::new().name("spawner".into()).spawn(move || {
            for (mut cmd, reply) in requests {
                let result = {
                    // Never a panic here: this thread's end would take every child with it
                    // (their PR_SET_PDEATHSIG names it).
                    let mut waiting = w.lock().unwrap_or_else(|e| e.into_inner());
                    cmd.spawn().map(|child| {
                        let (tx, rx) = oneshot::channel();
                        waiting.insert(child.id() as i32, tx);
                        (child, rx)
                    })
                };
                // Closes gpubox's copies of the child's ends (a PTY slave, pipes) before answering.
                drop(cmd);
                let _ = reply.send(result);
            }
        })?;
        let reaper = Reaper { waiting, orphans: Arc::default(), spawner };
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
    /// Forking takes well under a millisecond; the caller waits for the spawner's answer.
    pub fn spawn(&self, cmd: Command) -> io::Result<(Child, oneshot::Receiver<ExitInfo>)> {
        let (reply, answer) = std::sync::mpsc::sync_channel(1);
        self.spawner.send((cmd, reply)).map_err(|_| io::Error::other("the spawner thread is gone"))?;
        answer.recv().map_err(|_| io::Error::other("the spawner thread is gone"))?
    }

    /// Ends gpubox's remaining descendants once every service has stopped: processes re-parented
    /// to gpubox (a `setsid` grandchild that outlived its service) get SIGTERM, then SIGKILL after
    /// `grace`; their own children come next, a few rounds at most.
    pub async fn end_orphans(&self, grace: Duration) -> usize {
        let mut ended = 0;
        for _ in 0..4 {
            let left = children_of(std::process::id() as i32);
            if left.is_empty() {
                break;
            }
            for &pid in &left {
                let _ = nix::sys::signal::kill(Pid::from_raw(pid), nix::sys::signal::Signal::SIGTERM);
            }
            let until = std::time::Instant::now() + grace;
            while std::time::Instant::now() < until && left.iter().any(|&p| alive(p)) {
                tokio::time::sleep(Duration::from_millis(20)).await;
                self.reap();
            }
            // Only those still gpubox's children: a pid reaped meanwhile may already be another
            // process's.
            let still = children_of(std::process::id() as i32);
            for &pid in left.iter().filter(|p| still.contains(p)) {
                let _ = nix::sys::signal::kill(Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
            self.reap();
            ended += left.len();
        }
        ended
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

/// The processes whose parent is `parent` (from `/proc`), zombies left out.
fn children_of(parent: i32) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|st| {
                // `pid (comm) state ppid …`: comm may hold spaces and parentheses.
                let rest = st.rsplit_once(')').map_or("", |(_, r)| r);
                let mut f = rest.split_whitespace();
                let state = f.next().unwrap_or("");
                f.next().and_then(|p| p.parse::<i32>().ok()) == Some(parent) && state != "Z"
            })
        })
        .collect()
}

/// Whether `pid` still runs (a zombie does not).
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|st| st.rsplit_once(')').is_some_and(|(_, r)| !r.trim_start().starts_with('Z')))
}

/// Makes this process the reaper of its descendants' orphans when it is not PID 1.
pub fn become_subreaper() {
    let _ = nix::sys::prctl::set_child_subreaper(true);
}
