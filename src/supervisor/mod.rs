//! The supervisor: child processes, restart policy and backoff, readiness, dependency order,
//! PID 1 duties (through `process`'s reaper) and shutdown. It knows nothing about HTTP; readers get
//! snapshots ([`Supervisor::status`]) and send requests ([`Supervisor::control`]).

mod backoff;
mod probe;
mod service;
mod spawn;
pub mod status;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Instant;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::sync::{mpsc, oneshot, watch};

use crate::config::{Config, Service};
use crate::logs::Hub;
pub use crate::process::Reaper;
pub use status::{ServiceStatus, State};

/// What a user can ask of one service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Start,
    Stop,
    Restart,
}

#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    #[error("no service named \"{name}\" (services: {known})")]
    UnknownService { name: String, known: String },
    #[error("gpubox is shutting down")]
    ShuttingDown,
}

struct Cell {
    spec: Service,
    status: watch::Receiver<ServiceStatus>,
    ctl: mpsc::UnboundedSender<service::Ctl>,
    /// Length of the longest dependency chain below this service: stop order is by decreasing level.
    level: usize,
}

pub struct Supervisor {
    /// The services, in the configuration's order; replaced whole by [`Supervisor::reconfigure`].
    cells: RwLock<Vec<Arc<Cell>>>,
    hub: Hub,
    reaper: Reaper,
    shutting_down: AtomicBool,
    /// Held while a new configuration is applied: one at a time.
    reconfiguring: tokio::sync::Mutex<()>,
}

/// What [`Supervisor::reconfigure`] did, by service name.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Changes {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub changed: Vec<String>,
    pub unchanged: Vec<String>,
}

impl Supervisor {
    /// Starts a task for every service; each starts its process once its dependencies are ready.
    pub fn start(config: &Config, hub: Hub, reaper: Reaper, since: Instant) -> Arc<Supervisor> {
        let sup = Arc::new(Supervisor {
            cells: RwLock::new(Vec::new()),
            hub,
            reaper,
            shutting_down: AtomicBool::new(false),
            reconfiguring: tokio::sync::Mutex::new(()),
        });
        let (cells, _) = sup.arrange(&config.services, &[]);
        *sup.cells.write().expect("cells lock") = cells;
        sup.announce_when_ready(since);
        sup
    }

    /// The cells for `services`: those of `keep` (by name) with their new configuration and
    /// level, and new ones, whose tasks are started here. Also returns, for the kept services
    /// whose configuration changed, the dependencies to give them with it.
    #[allow(clippy::type_complexity)]
    fn arrange(
        &self,
        services: &[Service],
        keep: &[Arc<Cell>],
    ) -> (Vec<Arc<Cell>>, Vec<(Arc<Cell>, Vec<watch::Receiver<ServiceStatus>>)>) {
        let levels = levels(services);
        let mut statuses: HashMap<String, watch::Receiver<ServiceStatus>> =
            keep.iter().map(|c| (c.spec.name.clone(), c.status.clone())).collect();
        let mut fresh = HashMap::new();
        let kept: Vec<String> = statuses.keys().cloned().collect();
        for spec in services.iter().filter(|s| !kept.contains(&s.name)) {
            self.hub.register(&spec.name);
            let (tx, rx) = watch::channel(ServiceStatus::new(&spec.name, spec.oneshot));
            statuses.insert(spec.name.clone(), rx);
            fresh.insert(spec.name.clone(), tx);
        }
        let deps_of = |spec: &Service| -> Vec<_> { spec.depends_on.iter().map(|d| statuses[d].clone()).collect() };
        let mut cells = Vec::new();
        let mut changed = Vec::new();
        for spec in services {
            let level = levels[&spec.name];
            if let Some(status_tx) = fresh.remove(&spec.name) {
                let (ctl_tx, ctl_rx) = mpsc::unbounded_channel();
                let task = service::Task::new(
                    spec.clone(),
                    status_tx,
                    deps_of(spec),
                    ctl_rx,
                    self.hub.clone(),
                    self.reaper.clone(),
                );
                tokio::spawn(task.run());
                cells.push(Arc::new(Cell {
                    spec: spec.clone(),
                    status: statuses[&spec.name].clone(),
                    ctl: ctl_tx,
                    level,
                }));
                continue;
            }
            let old = keep.iter().find(|c| c.spec.name == spec.name).expect("kept or fresh");
            let cell = Arc::new(Cell { spec: spec.clone(), status: old.status.clone(), ctl: old.ctl.clone(), level });
            if old.spec != *spec {
                changed.push((cell.clone(), deps_of(spec)));
            }
            cells.push(cell);
        }
        (cells, changed)
    }

    /// Applies a new set of services (`gpubox reload`): removed ones are stopped (dependents
    /// first) and forgotten, changed ones stopped and started again with their new
    /// configuration, new ones started; the rest keep running untouched. Returns once the
    /// removed ones are stopped and the others were asked; starting goes on after.
    pub async fn reconfigure(&self, services: &[Service]) -> Result<Changes, SupervisorError> {
        let _one = self.reconfiguring.lock().await;
        if self.is_shutting_down() {
            return Err(SupervisorError::ShuttingDown);
        }
        let old = self.cells();
        let wanted = |name: &str| services.iter().any(|s| s.name == name);
        let removed: Vec<Arc<Cell>> = old.iter().filter(|c| !wanted(&c.spec.name)).cloned().collect();
        let top = removed.iter().map(|c| c.level).max().unwrap_or(0);
        for level in (0..=top).rev() {
            let pending: Vec<_> =
                removed.iter().filter(|c| c.level == level).filter_map(|c| request(c, Action::Stop)).collect();
            for done in pending {
                let _ = done.await;
            }
        }
        let keep: Vec<Arc<Cell>> = old.iter().filter(|c| wanted(&c.spec.name)).cloned().collect();
        let (cells, changed) = self.arrange(services, &keep);
        let mut changes = Changes {
            removed: removed.iter().map(|c| c.spec.name.clone()).collect(),
            changed: changed.iter().map(|(c, _)| c.spec.name.clone()).collect(),
            ..Changes::default()
        };
        for c in &cells {
            let name = &c.spec.name;
            if !old.iter().any(|o| o.spec.name == *name) {
                changes.added.push(name.clone());
            } else if !changes.changed.contains(name) {
                changes.unchanged.push(name.clone());
            }
        }
        // The removed cells go with the old list: their tasks end when their senders do.
        *self.cells.write().expect("cells lock") = cells;
        let mut taken = Vec::new();
        for (cell, deps) in changed {
            let (tx, rx) = oneshot::channel();
            let r = service::Replacement { spec: cell.spec.clone(), deps, taken: tx };
            if cell.ctl.send(service::Ctl::Replace(Box::new(r))).is_ok() {
                taken.push(rx);
            }
        }
        // Each changed service shows the change before this returns: a reader of the status
        // right after (`gpubox reload` waiting for readiness) does not see the old process ready.
        for rx in taken {
            let _ = rx.await;
        }
        Ok(changes)
    }

    /// A copy of the list of services (cheap: the cells are shared).
    fn cells(&self) -> Vec<Arc<Cell>> {
        self.cells.read().expect("cells lock").clone()
    }

    /// Logs one line once every service is ready (or done), with the time since `since`: the
    /// figure the cold-start benchmark reads.
    fn announce_when_ready(self: &Arc<Self>, since: Instant) {
        let mut rx: Vec<_> = self.cells().iter().map(|c| c.status.clone()).collect();
        let hub = self.hub.clone();
        let n = rx.len();
        tokio::spawn(async move {
            for r in rx.iter_mut() {
                if r.wait_for(|s| s.ready).await.is_err() {
                    return;
                }
            }
            hub.event(format!("all {n} services ready in {:.1} ms", since.elapsed().as_secs_f64() * 1000.0));
        });
    }

    /// Runs a short helper program (such as `nvidia-smi`) through the reaper, which must see
    /// every child gpubox starts; returns its stdout if it exits successfully within `timeout`,
    /// and kills it otherwise.
    pub async fn output(&self, mut cmd: std::process::Command, timeout: std::time::Duration) -> Option<Vec<u8>> {
        use std::io::Read;
        cmd.stdin(std::process::Stdio::null()).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::null());
        let (mut child, exit) = self.reaper.spawn(cmd).ok()?;
        let pid = child.id() as i32;
        let stdout = child.stdout.take()?;
        let read = tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            stdout.take(1 << 20).read_to_end(&mut out).map(|_| out)
        });
        match tokio::time::timeout(timeout, async { (read.await, exit.await) }).await {
            Ok((Ok(Ok(out)), Ok(status))) if status.success() => Some(out),
            Ok(_) => None,
            Err(_) => {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
                None
            }
        }
    }

    /// The reaper, through which every child gpubox starts must be spawned.
    pub fn reaper(&self) -> &Reaper {
        &self.reaper
    }

    pub fn status(&self) -> Vec<ServiceStatus> {
        self.cells.read().expect("cells lock").iter().map(|c| c.status.borrow().snapshot()).collect()
    }

    /// One service's status (cheaper than [`Supervisor::status`] on a hot path).
    pub fn status_of(&self, name: &str) -> Option<ServiceStatus> {
        let cells = self.cells.read().expect("cells lock");
        cells.iter().find(|c| c.spec.name == name).map(|c| c.status.borrow().snapshot())
    }

    /// Whether a service is ready, without copying its status: asked on every proxied request.
    pub fn is_ready(&self, name: &str) -> Option<bool> {
        let cells = self.cells.read().expect("cells lock");
        cells.iter().find(|c| c.spec.name == name).map(|c| c.status.borrow().ready)
    }

    pub fn service_names(&self) -> Vec<String> {
        self.cells.read().expect("cells lock").iter().map(|c| c.spec.name.clone()).collect()
    }

    pub fn orphans_reaped(&self) -> u64 {
        self.reaper.orphans_reaped()
    }

    fn cell(&self, name: &str) -> Result<Arc<Cell>, SupervisorError> {
        self.cells().into_iter().find(|c| c.spec.name == name).ok_or_else(|| SupervisorError::UnknownService {
            name: name.to_string(),
            known: self.service_names().join(", "),
        })
    }

    /// Starts, stops or restarts one service; returns once that has taken effect (stopped: the
    /// process is gone; started: the process was spawned, or it waits for its dependencies).
    pub async fn control(&self, name: &str, action: Action) -> Result<ServiceStatus, SupervisorError> {
        let cell = self.cell(name)?;
        if self.shutting_down.load(Ordering::SeqCst) && action != Action::Stop {
            return Err(SupervisorError::ShuttingDown);
        }
        if let Some(done) = request(&cell, action) {
            let _ = done.await;
        }
        let now = cell.status.borrow().snapshot();
        Ok(now)
    }

    /// Stops every service, dependents before their dependencies (services on one level of the
    /// dependency graph stop together); returns when all are stopped.
    pub async fn shutdown(&self) {
        if self.shutting_down.swap(true, Ordering::SeqCst) {
            return;
        }
        // A reload under way finishes first (it is bounded by the stop timeouts of what it
        // stops), so that every service it started is in the list stopped here.
        let _one = self.reconfiguring.lock().await;
        let cells = self.cells();
        let top = cells.iter().map(|c| c.level).max().unwrap_or(0);
        for level in (0..=top).rev() {
            let pending: Vec<_> =
                cells.iter().filter(|c| c.level == level).filter_map(|c| request(c, Action::Stop)).collect();
            for done in pending {
                let _ = done.await;
            }
        }
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }

    /// Passes a signal (SIGHUP, SIGUSR1, …) on to every running service's process group.
    pub fn forward(&self, sig: Signal) {
        for cell in self.cells.read().expect("cells lock").iter() {
            if let Some(pid) = cell.status.borrow().pid {
                let _ = killpg(Pid::from_raw(pid), sig);
            }
        }
    }

    /// Healthy when every service that is meant to be up is ready. Oneshots count only when they
    /// failed; services stopped on request do not count.
    pub fn health(&self) -> (bool, Vec<String>) {
        let mut problems = Vec::new();
        for s in self.status() {
            let ok = match s.state {
                State::Stopped | State::Done => true,
                _ if s.oneshot => s.state != State::Failed,
                _ => s.ready,
            };
            if !ok {
                problems.push(format!("{} is {}", s.name, s.state.as_str()));
            }
        }
        (problems.is_empty(), problems)
    }
}

/// Sends a request to a service's task; the receiver resolves when it has taken effect.
fn request(cell: &Cell, action: Action) -> Option<oneshot::Receiver<()>> {
    let (tx, rx) = oneshot::channel();
    let req = match action {
        Action::Start => service::Ctl::Start(tx),
        Action::Stop => service::Ctl::Stop(tx),
        Action::Restart => service::Ctl::Restart(tx),
    };
    cell.ctl.send(req).ok().map(|_| rx)
}

/// Dependency depth of each service (0: depends on nothing). Config validation rules out cycles.
fn levels(services: &[Service]) -> HashMap<String, usize> {
    fn depth(name: &str, by_name: &HashMap<&str, &Service>, memo: &mut HashMap<String, usize>) -> usize {
        if let Some(d) = memo.get(name) {
            return *d;
        }
        let d = by_name[name].depends_on.iter().map(|dep| depth(dep, by_name, memo) + 1).max().unwrap_or(0);
        memo.insert(name.to_string(), d);
        d
    }
    let by_name: HashMap<&str, &Service> = services.iter().map(|s| (s.name.as_str(), s)).collect();
    let mut memo = HashMap::new();
    for s in services {
        depth(&s.name, &by_name, &mut memo);
    }
    memo
}
