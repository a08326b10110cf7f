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
    /// The service's configuration changed (`gpubox reload`): stop the process if one runs, then
    /// start again with the new one.
    Replace(Box<Replacement>),
}

/// A new configuration for a service, and its dependencies' status channels.
pub struct Replacement {
    pub spec: Service,
    pub deps: Vec<watch::Receiver<ServiceStatus>>,
    /// Answered once the change shows in the published state (stopping, or waiting to start):
    /// from then on nobody reads the old process's state as the new one's.
    pub taken: oneshot::Sender<()>,
}

pub struct Task {
    spec: Service,
    status: watch::Sender<ServiceStatus>,
    deps: Vec<watch::Receiver<ServiceStatus>>,
    ctl: mpsc::UnboundedReceiver<Ctl>,
    hub: Hub,
    reaper: Reaper,
    backoff: BackoffState,
    /// Requests waiting to be answered until they have taken effect.
    acks: Vec<oneshot::Sender<()>>,
    /// The process was started before: the next start is a restart.
    started_once: bool,
    /// A new configuration that waits for the process to stop.
    replacement: Option<(Service, Vec<watch::Receiver<ServiceStatus>>)>,
}

/// Where a service's task is in its life. [`Task::run`] moves from phase to phase; each phase's
/// method returns the next. The published [`State`] changes in one place, [`Task::enter`].
///
/// | phase | on | next |
/// | --- | --- | --- |
/// | Waiting | dependencies ready | Start |
/// | | stop | Rest(stopped) |
/// | Start | spawned | Run |
/// | | cannot start (an exit with code 127) | as Run on an exit |
/// | Run | exit: a oneshot's success | Rest(done) |
/// | | exit: the restart policy says no | Rest(exited or failed) |
/// | | exit: otherwise | Backoff(delay) |
/// | | stop · restart | Rest(stopped) · Waiting |
/// | Backoff | the delay is over · start · restart | Waiting |
/// | | stop | Rest(stopped) |
/// | Rest | start · restart | Waiting |
/// | any but Run | replace | Waiting (with the new configuration) |
/// | Run | replace | as restart, then Waiting with the new configuration |
/// | any | the supervisor is gone | Gone |
///
/// Drawn in docs/architecture.md.
enum Phase {
    /// Waiting for the dependencies to be ready.
    Waiting,
    /// Starting the process.
    Start,
    /// The process runs (starting, running once ready, stopping after a request).
    Run(Running, Instant),
    /// Exited; started again after the delay.
    Backoff(Duration),
    /// At rest until asked to start: stopped, exited, failed or done.
    Rest(State),
    /// The supervisor is gone: the task ends.
    Gone,
}

impl Task {
    pub fn new(
        spec: Service,
        status: watch::Sender<ServiceStatus>,
        deps: Vec<watch::Receiver<ServiceStatus>>,
        ctl: mpsc::UnboundedReceiver<Ctl>,
        hub: Hub,
        reaper: Reaper,
    ) -> Task {
        let backoff = BackoffState::new(spec.backoff);
        Task { spec, status, deps, ctl, hub, reaper, backoff, acks: Vec::new(), started_once: false, replacement: None }
    }

    /// Takes a new configuration (between processes): the backoff starts over.
    fn replace(&mut self, spec: Service, deps: Vec<watch::Receiver<ServiceStatus>>) {
        self.spec = spec;
        self.deps = deps;
        self.backoff = BackoffState::new(self.spec.backoff);
        let oneshot = self.spec.oneshot;
        self.note(|s| s.oneshot = oneshot);
        self.event("configuration changed: starting with the new one".into());
    }

    fn event(&self, text: String) {
        self.hub.event(format!("{}: {text}", self.spec.name));
    }

    /// The one place the published state changes, with what follows from it: readiness, the
    /// pid (none unless a process runs) and the restart delay (only in backoff). `detail` sets
    /// the rest of the status.
    fn enter(&self, state: State, detail: impl FnOnce(&mut ServiceStatus)) {
        // A oneshot is ready (for its dependents) once done, or once its probe passed.
        let ready_running = !self.spec.oneshot || self.spec.ready.is_some();
        self.status.send_modify(|s| {
            if s.state != state {
                s.changed_at_ms = ms_since_epoch(SystemTime::now());
            }
            s.state = state;
            s.ready = match state {
                State::Done => true,
                State::Running => ready_running,
                _ => false,
            };
            if !matches!(state, State::Starting | State::Running | State::Stopping) {
                s.pid = None;
            }
            if state != State::Backoff {
                s.restart_delay_ms = None;
            }
            detail(s);
        });
    }

    /// Changes what the status says besides its state (restarts, the last exit, an error).
    fn note(&self, f: impl FnOnce(&mut ServiceStatus)) {
        self.status.send_modify(|s| {
            let state = s.state;
            f(s);
            debug_assert_eq!(s.state, state, "states change in `enter` only");
        });
    }

    /// Answers the requests that have taken effect.
    fn answer(&mut self) {
        for ack in self.acks.drain(..) {
            let _ = ack.send(());
        }
    }

    pub async fn run(mut self) {
        let mut phase = Phase::Waiting;
        loop {
            phase = match phase {
                Phase::Waiting => self.waiting().await,
                Phase::Start => self.start(),
                Phase::Run(running, started) => self.supervise(running, started).await,
                Phase::Backoff(delay) => self.backoff(delay).await,
                Phase::Rest(state) => self.rest(state).await,
                Phase::Gone => return,
            };
        }
    }

    /// Waits for the dependencies, unless told to stop meanwhile.
    async fn waiting(&mut self) -> Phase {
        self.enter(State::Waiting, |_| {});
        if self.deps_ready() {
            return Phase::Start;
        }
        self.answer();
        tokio::select! {
            _ = wait_deps(&mut self.deps) => Phase::Start,
            // A start is already on its way: answered at once.
            req = self.ctl.recv() => self.asked(req, true),
        }
    }

    /// A request while no process runs: a stop rests the service, a start or restart leads to
    /// `Waiting` (and is answered once the process started, or at once with `answer_start`).
    fn asked(&mut self, req: Option<Ctl>, answer_start: bool) -> Phase {
        match req {
            None => Phase::Gone,
            Some(Ctl::Stop(ack)) => {
                self.acks.push(ack);
                Phase::Rest(State::Stopped)
            }
            Some(Ctl::Start(ack) | Ctl::Restart(ack)) => {
                if answer_start {
                    let _ = ack.send(());
                } else {
                    self.acks.push(ack);
                }
                Phase::Waiting
            }
            Some(Ctl::Replace(r)) => self.replaced(*r),
        }
    }

    /// A new configuration while no process runs: taken at once, and the service goes on to wait
    /// for its dependencies and start.
    fn replaced(&mut self, r: Replacement) -> Phase {
        self.replace(r.spec, r.deps);
        self.enter(State::Waiting, |_| {});
        let _ = r.taken.send(());
        Phase::Waiting
    }

    fn start(&mut self) -> Phase {
        if self.started_once {
            self.note(|s| s.restarts += 1);
        }
        self.started_once = true;
        let started = Instant::now();
        match spawn(&self.spec, &self.reaper, &self.hub) {
            Ok(running) => {
                self.answer();
                Phase::Run(running, started)
            }
            Err(e) => {
                let program = &self.spec.command[0];
                self.event(format!("cannot start `{program}`: {e}"));
                self.note(|s| s.error = Some(format!("cannot start `{program}`: {e}")));
                self.answer();
                self.exited(ExitInfo::Code(127), started.elapsed())
            }
        }
    }

    /// The process exited by itself: done, at rest, or restarting after a delay, by the
    /// service's kind and restart policy. Each state is in place before the log says so: a
    /// reader of the log then finds it.
    fn exited(&mut self, exit: ExitInfo, ran_for: Duration) -> Phase {
        self.note(|s| {
            s.last_exit = Some(exit);
            s.last_exit_asked = false;
        });
        if self.spec.oneshot && exit.success() {
            self.enter(State::Done, |_| {});
            self.event(format!("finished successfully after {}", crate::human::duration(ran_for)));
            return Phase::Rest(State::Done);
        }
        let restart = match self.spec.restart {
            RestartPolicy::Always => true,
            RestartPolicy::OnFailure => !exit.success(),
            RestartPolicy::Never => false,
        };
        if !restart {
            let state = if exit.success() { State::Exited } else { State::Failed };
            self.enter(state, |_| {});
            self.event(format!(
                "{exit} after {}; not restarting (restart = \"{}\")",
                crate::human::duration(ran_for),
                policy_name(self.spec.restart)
            ));
            return Phase::Rest(state);
        }
        let delay = self.backoff.after_exit(ran_for);
        self.enter(State::Backoff, |s| s.restart_delay_ms = Some(delay.as_millis() as u64));
        self.event(format!(
            "{exit} after {}; restarting in {}",
            crate::human::duration(ran_for),
            crate::human::duration(delay)
        ));
        Phase::Backoff(delay)
    }

    /// Waits out the restart delay, unless told to stop (or to start at once) meanwhile.
    async fn backoff(&mut self, delay: Duration) -> Phase {
        tokio::select! {
            _ = tokio::time::sleep(delay) => Phase::Waiting,
            req = self.ctl.recv() => self.asked(req, false),
        }
    }

    fn deps_ready(&self) -> bool {
        self.deps.iter().all(|d| d.borrow().ready)
    }

    /// Rests in `state` until asked to start again.
    async fn rest(&mut self, state: State) -> Phase {
        self.enter(state, |_| {});
        self.answer();
        loop {
            match self.ctl.recv().await {
                None => return Phase::Gone,
                Some(Ctl::Stop(ack)) => {
                    let _ = ack.send(());
                }
                Some(Ctl::Start(ack) | Ctl::Restart(ack)) => {
                    self.acks.push(ack);
                    return Phase::Waiting;
                }
                Some(Ctl::Replace(r)) => return self.replaced(*r),
            }
        }
    }

    /// Watches a running process until it ends, handling readiness and stop requests. Long because
    /// everything that can happen while a process runs (its exit, readiness, the kill timer, a
    /// request) is one `select!`.
    async fn supervise(&mut self, mut running: Running, started: Instant) -> Phase {
        let pid = running.pid;
        self.event(format!("started (pid {pid})"));
        let probe = self.spec.ready.clone();
        self.enter(State::Starting, |s| {
            s.pid = Some(pid);
            s.started_at = Some(SystemTime::now());
            s.started_at_ms = Some(ms_since_epoch(SystemTime::now()));
            s.error = None;
        });
        if probe.is_none() {
            self.enter(State::Running, |_| {});
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
        // The supervisor let go of this service (gpubox exits, or a reload removed it): no more
        // requests will come, and `recv` would answer `None` at once, again and again.
        let mut orphaned = false;
        let far = tokio::time::Instant::now() + Duration::from_secs(86400 * 365);
        let exit = loop {
            let kill_at = stopping.map_or(far, |(_, at)| at);
            tokio::select! {
                exit = &mut running.exit => break exit.unwrap_or(ExitInfo::Code(-1)),
                _ = &mut probing, if !ready && stopping.is_none() => {
                    ready = true;
                    // The state first, then the word: whoever reads "ready" in the log finds the
                    // service ready (the proxy answered a waiting page in between, now and then).
                    self.enter(State::Running, |_| {});
                    self.event(format!("ready after {}", crate::human::duration(started.elapsed())));
                }
                _ = tokio::time::sleep_until(kill_at), if stopping.is_some() => {
                    self.event(format!("did not stop within {}; sending SIGKILL to its process group", crate::human::duration(self.spec.stop_timeout)));
                    let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
                    stopping = stopping.map(|(restart, _)| (restart, far));
                }
                req = self.ctl.recv(), if !orphaned => match req {
                    Some(Ctl::Start(ack)) => { let _ = ack.send(()); }
                    Some(Ctl::Replace(r)) => {
                        let r = *r;
                        self.replacement = Some((r.spec, r.deps));
                        // Started again once stopped, also when a stop was asked before.
                        stopping = Some(match stopping {
                            Some((_, at)) => (true, at),
                            None => (true, self.begin_stop(pid)),
                        });
                        let _ = r.taken.send(());
                    }
                    // Already stopping: a stop makes it for good (a restart or new configuration
                    // under way is called off), a restart only waits.
                    Some(Ctl::Stop(ack)) if stopping.is_some() => {
                        self.acks.push(ack);
                        stopping = stopping.map(|(_, at)| (false, at));
                    }
                    Some(Ctl::Restart(ack)) if stopping.is_some() => self.acks.push(ack),
                    Some(req) => {
                        let restart = matches!(req, Ctl::Restart(_));
                        if let Ctl::Stop(ack) | Ctl::Restart(ack) = req { self.acks.push(ack) }
                        stopping = Some((restart, self.begin_stop(pid)));
                    }
                    None => {
                        // The supervisor is gone: stop without acknowledging.
                        orphaned = true;
                        if stopping.is_none() {
                            stopping = Some((false, self.begin_stop(pid)));
                        }
                        stopping = stopping.map(|(_, at)| (false, at));
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
                self.note(|s| {
                    s.last_exit = Some(exit);
                    s.last_exit_asked = true;
                });
                if !restart {
                    // Stopped for good: the state before the word (see `exited`).
                    self.enter(State::Stopped, |_| {});
                }
                self.event(format!("stopped ({exit})"));
                if let Some((spec, deps)) = self.replacement.take() {
                    self.replace(spec, deps);
                }
                if restart {
                    Phase::Waiting
                } else {
                    Phase::Rest(State::Stopped)
                }
            }
            None => self.exited(exit, started.elapsed()),
        }
    }

    fn begin_stop(&self, pid: i32) -> tokio::time::Instant {
        let sig = self.spec.stop_signal;
        self.event(format!("stopping: {} to process group {pid}", sig.as_str()));
        self.enter(State::Stopping, |_| {});
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

fn policy_name(p: RestartPolicy) -> &'static str {
    match p {
        RestartPolicy::Always => "always",
        RestartPolicy::OnFailure => "on-failure",
        RestartPolicy::Never => "never",
    }
}
