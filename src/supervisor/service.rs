//! One task per service: starts it when its dependencies are ready, watches it, restarts it by
//! its policy, and stops it on request. Its state is published on a `watch` channel, which is how
//! dependents wait for readiness and how readers take snapshots.

use std::time::{Duration, Instant, SystemTime};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::sync::{mpsc, oneshot, watch};

use super::backoff::BackoffState;
use super::probe;
use super::spawn::{spawn, Running};
use super::status::{ms_since_epoch, ServiceStatus, State};
use crate::config::{RestartPolicy, Service};
use crate::logs::Hub;
use crate::process::{ExitInfo, Reaper};

/// Requests to a service task; each carries a sender that is answered when the request has
/// taken effect.
pub enum Ctl {
    Start(oneshot::Sender<()>),
    Stop(oneshot::Sender<()>),
    Restart(oneshot::Sender<()>),
}

pub struct Task {
    pub spec: Service,
    pub status: watch::Sender<ServiceStatus>,
    pub deps: Vec<watch::Receiver<ServiceStatus>>,
    pub ctl: mpsc::UnboundedReceiver<Ctl>,
    pub hub: Hub,
    pub reaper: Reaper,
}

/// Why a running process ended, from the task's point of view.
enum Ending {
    /// It exited by itself.
    Exited(ExitInfo),
    /// It was stopped on request; `restart` says whether to start it again at once.
    Stopped { exit: ExitInfo, restart: bool },
}

impl Task {
    fn event(&self, text: String) {
        self.hub.event(format!("{}: {text}", self.spec.name));
    }

    fn set(&self, f: impl FnOnce(&mut ServiceStatus)) {
        self.status.send_modify(|s| {
            let before = s.state;
            f(s);
            if s.state != before {
                s.changed_at_ms = ms_since_epoch(SystemTime::now());
            }
        });
    }

    fn rest(&self, state: State) {
        self.set(|s| {
            s.state = state;
            s.pid = None;
            s.ready = state == State::Done;
            s.restart_delay_ms = None;
        });
    }

    pub async fn run(mut self) {
        let mut backoff = BackoffState::new(self.spec.backoff);
        let mut acks: Vec<oneshot::Sender<()>> = Vec::new();
        let mut first_start = true;
        loop {
            // Wait for dependencies, unless told to stop meanwhile.
            self.set(|s| s.state = State::Waiting);
            if !self.deps_ready() {
                answer(&mut acks);
                tokio::select! {
                    _ = wait_deps(&mut self.deps) => {}
                    req = self.ctl.recv() => match req {
                        None => return,
                        Some(Ctl::Stop(ack)) => {
                            acks.push(ack);
                            if !self.idle(State::Stopped, &mut acks).await { return }
                            continue;
                        }
                        // Already on its way to starting: answer and keep waiting.
                        Some(Ctl::Start(ack) | Ctl::Restart(ack)) => {
                            let _ = ack.send(());
                            continue;
                        }
                    },
                }
            }

            if !first_start {
                self.set(|s| s.restarts += 1);
            }
            first_start = false;
            let started = Instant::now();
            let ending = match spawn(&self.spec, &self.reaper, &self.hub) {
                Ok(running) => {
                    answer(&mut acks);
                    self.supervise(running, started, &mut acks).await
                }
                Err(e) => {
                    let program = &self.spec.command[0];
                    self.event(format!("cannot start `{program}`: {e}"));
                    self.set(|s| s.error = Some(format!("cannot start `{program}`: {e}")));
                    answer(&mut acks);
                    Ending::Exited(ExitInfo::Code(127))
                }
            };

            let exit = match ending {
                Ending::Stopped { exit, restart } => {
                    self.set(|s| s.last_exit = Some(exit));
                    if restart {
                        continue;
                    }
                    if !self.idle(State::Stopped, &mut acks).await {
                        return;
                    }
                    continue;
                }
                Ending::Exited(exit) => exit,
            };
            self.set(|s| s.last_exit = Some(exit));
            let ran_for = started.elapsed();

            // Each state is in place before the log says so: a reader of the log then finds it.
            if self.spec.oneshot && exit.success() {
                self.rest(State::Done);
                self.event(format!("finished successfully after {}", crate::human::duration(ran_for)));
                if !self.idle(State::Done, &mut acks).await {
                    return;
                }
                continue;
            }
            let restart = match self.spec.restart {
                RestartPolicy::Always => true,
                RestartPolicy::OnFailure => !exit.success(),
                RestartPolicy::Never => false,
            };
            if !restart {
                let state = if exit.success() { State::Exited } else { State::Failed };
                self.rest(state);
                self.event(format!(
                    "{exit} after {}; not restarting (restart = \"{}\")",
                    crate::human::duration(ran_for),
                    policy_name(self.spec.restart)
                ));
                if !self.idle(state, &mut acks).await {
                    return;
                }
                continue;
            }
            let delay = backoff.after_exit(ran_for);
            self.set(|s| {
                s.state = State::Backoff;
                s.pid = None;
                s.ready = false;
                s.restart_delay_ms = Some(delay.as_millis() as u64);
            });
            self.event(format!(
                "{exit} after {}; restarting in {}",
                crate::human::duration(ran_for),
                crate::human::duration(delay)
            ));
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                req = self.ctl.recv() => match req {
                    None => return,
                    Some(Ctl::Stop(ack)) => {
                        acks.push(ack);
                        if !self.idle(State::Stopped, &mut acks).await { return }
                    }
                    Some(Ctl::Start(ack) | Ctl::Restart(ack)) => acks.push(ack),
                },
            }
        }
    }

    fn deps_ready(&self) -> bool {
        self.deps.iter().all(|d| d.borrow().ready)
    }

    /// Rests in `state` until asked to start again. Returns false when the supervisor is gone.
    async fn idle(&mut self, state: State, acks: &mut Vec<oneshot::Sender<()>>) -> bool {
        self.rest(state);
        answer(acks);
        loop {
            match self.ctl.recv().await {
                None => return false,
                Some(Ctl::Stop(ack)) => {
                    let _ = ack.send(());
                }
                Some(Ctl::Start(ack) | Ctl::Restart(ack)) => {
                    acks.push(ack);
                    return true;
                }
            }
        }
    }

    /// Watches a running process until it ends, handling readiness and stop requests.
    async fn supervise(
        &mut self,
        mut running: Running,
        started: Instant,
        acks: &mut Vec<oneshot::Sender<()>>,
    ) -> Ending {
        let pid = running.pid;
        self.event(format!("started (pid {pid})"));
        let probe = self.spec.ready.clone();
        self.set(|s| {
            s.state = State::Starting;
            s.pid = Some(pid);
            s.started_at = Some(SystemTime::now());
            s.started_at_ms = Some(ms_since_epoch(SystemTime::now()));
            s.error = None;
            s.restart_delay_ms = None;
        });
        if probe.is_none() {
            // A oneshot is ready (for its dependents) only once it has finished successfully.
            let ready = !self.spec.oneshot;
            self.set(|s| {
                s.state = State::Running;
                s.ready = ready;
            });
        }
        let mut ready = probe.is_none();
        let probing = async {
            match &probe {
                Some(p) => probe::wait_ready(p).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(probing);

        // Set once a stop was requested: whether to restart after, and when to give up waiting.
        let mut stopping: Option<(bool, tokio::time::Instant)> = None;
        let far = tokio::time::Instant::now() + Duration::from_secs(86400 * 365);
        let exit = loop {
            let kill_at = stopping.map_or(far, |(_, at)| at);
            tokio::select! {
                exit = &mut running.exit => break exit.unwrap_or(ExitInfo::Code(-1)),
                _ = &mut probing, if !ready && stopping.is_none() => {
                    ready = true;
                    // The state first, then the word: whoever reads "ready" in the log finds the
                    // service ready (the proxy answered a waiting page in between, now and then).
                    self.set(|s| { s.state = State::Running; s.ready = true; });
                    self.event(format!("ready after {}", crate::human::duration(started.elapsed())));
                }
                _ = tokio::time::sleep_until(kill_at), if stopping.is_some() => {
                    self.event(format!("did not stop within {}; sending SIGKILL to its process group", crate::human::duration(self.spec.stop_timeout)));
                    let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
                    stopping = stopping.map(|(restart, _)| (restart, far));
                }
                req = self.ctl.recv() => match req {
                    Some(Ctl::Start(ack)) => { let _ = ack.send(()); }
                    Some(Ctl::Stop(ack)) | Some(Ctl::Restart(ack)) if stopping.is_some() => acks.push(ack),
                    Some(req) => {
                        let restart = matches!(req, Ctl::Restart(_));
                        if let Ctl::Stop(ack) | Ctl::Restart(ack) = req { acks.push(ack) }
                        stopping = Some((restart, self.begin_stop(pid)));
                    }
                    None => {
                        // The supervisor is gone (gpubox is exiting): stop without acknowledging.
                        if stopping.is_none() {
                            stopping = Some((false, self.begin_stop(pid)));
                        }
                    }
                },
            }
        };

        // Whatever the main process left in its group goes with it, so that a restart never finds
        // a port still held by a straggler.
        let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
        // The output ends when the last holder of the pipes is gone; one that left the group
        // (`setsid`) may hold them for good: half a second for all of them, not two per stream.
        let pumps: Vec<_> = running.pumps.drain(..).collect();
        let _ = tokio::time::timeout(Duration::from_millis(500), futures_util::future::join_all(pumps)).await;
        match stopping {
            Some((restart, _)) => {
                if !restart {
                    // Stopped for good: the state before the word (see `run`).
                    self.set(|s| s.last_exit = Some(exit));
                    self.rest(State::Stopped);
                }
                self.event(format!("stopped ({exit})"));
                Ending::Stopped { exit, restart }
            }
            None => Ending::Exited(exit),
        }
    }

    fn begin_stop(&self, pid: i32) -> tokio::time::Instant {
        let sig = self.spec.stop_signal;
        self.event(format!("stopping: {} to process group {pid}", sig.as_str()));
        self.set(|s| {
            s.state = State::Stopping;
            s.ready = false;
        });
        let _ = killpg(Pid::from_raw(pid), sig);
        tokio::time::Instant::now() + self.spec.stop_timeout
    }
}

async fn wait_deps(deps: &mut [watch::Receiver<ServiceStatus>]) {
    loop {
        for d in deps.iter_mut() {
            if d.wait_for(|s| s.ready).await.is_err() {
                std::future::pending::<()>().await;
            }
        }
        // A dependency may have gone down while we waited for another one.
        if deps.iter().all(|d| d.borrow().ready) {
            return;
        }
    }
}

fn answer(acks: &mut Vec<oneshot::Sender<()>>) {
    for ack in acks.drain(..) {
        let _ = ack.send(());
    }
}

fn policy_name(p: RestartPolicy) -> &'static str {
    match p {
        RestartPolicy::Always => "always",
        RestartPolicy::OnFailure => "on-failure",
        RestartPolicy::Never => "never",
    }
}
