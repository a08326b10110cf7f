//! The watchers that raise alerts, each a task of its own that only reads: the services' states
//! (exits, crash loops, provisioning), the log lines of services with `alert_on` patterns, and
//! the samples (OOM kills, a full disk, an idle GPU).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Alert, Alerts, Level, LINES};
use crate::logs::Hub;
use crate::metrics::Metrics;
use crate::supervisor::{State, Supervisor};

/// This many failed exits of one service within [`LOOP_WINDOW`] is a crash loop.
const LOOP_EXITS: usize = 3;
const LOOP_WINDOW: Duration = Duration::from_secs(600);

fn last_lines(hub: &Hub, service: &str) -> Vec<String> {
    hub.tail(Some(service), LINES).into_iter().map(|l| l.text).collect()
}

/// `forge exited with code 1`, `forge was killed by SIGKILL`.
fn ended(who: &str, exit: crate::process::ExitInfo) -> String {
    match exit {
        crate::process::ExitInfo::Code(c) => format!("{who} exited with code {c}"),
        crate::process::ExitInfo::Signal(_) => format!("{who} was {exit}"),
    }
}

/// Follows the services' states once a second.
pub async fn services(alerts: Arc<Alerts>, sup: Arc<Supervisor>, hub: Hub) {
    // Per service: exits seen and the state; a service not seen yet counts from nothing, so one
    // that failed before the first look (a command not found) is told too.
    let mut seen: HashMap<String, (u32, State)> = HashMap::new();
    let mut failures: HashMap<String, VecDeque<Instant>> = HashMap::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        if sup.is_shutting_down() {
            return;
        }
        for s in sup.status() {
            let exited = matches!(s.state, State::Backoff | State::Failed | State::Exited | State::Done);
            // Exits so far: one per restart, and the one it is resting after.
            let exits = s.restarts + u32::from(exited);
            let (before, state_before) = seen.insert(s.name.clone(), (exits, s.state)).unwrap_or((0, State::Waiting));
            if s.oneshot {
                if s.state == state_before {
                    continue;
                }
                let provision = s.name == "provision";
                let exit = s.last_exit.map_or_else(|| "an error".to_string(), |e| e.to_string());
                let a = match s.state {
                    State::Done if provision => Alert::new(
                        "provision_done",
                        Level::Info,
                        Some(&s.name),
                        "provisioning finished".into(),
                        "Every model and extension is in place; the services that waited for it start now.".into(),
                    ),
                    State::Failed if provision => Alert::new(
                        "provision_failed",
                        Level::Error,
                        Some(&s.name),
                        "provisioning failed".into(),
                        format!("Provisioning ended with {exit}. The services that wait for it do not start; its log says why."),
                    )
                    .with_lines(last_lines(&hub, &s.name)),
                    State::Failed if !s.last_exit_asked => Alert::new(
                        "exit",
                        Level::Error,
                        Some(&s.name),
                        format!("{} failed", s.name),
                        format!("It ran once and ended with {exit}. The services that wait for it do not start."),
                    )
                    .with_lines(last_lines(&hub, &s.name)),
                    _ => continue,
                };
                alerts.raise(a);
                continue;
            }
            if exits <= before || s.last_exit_asked {
                continue;
            }
            let Some(exit) = s.last_exit.filter(|e| !e.success()) else { continue };
            let recent = failures.entry(s.name.clone()).or_default();
            let now = Instant::now();
            recent.push_back(now);
            while recent.front().is_some_and(|t| now.duration_since(*t) > LOOP_WINDOW) {
                recent.pop_front();
            }
            let next = match (s.state, s.restart_delay_ms) {
                (State::Backoff, Some(ms)) => {
                    format!("It is started again in {}.", crate::human::duration(Duration::from_millis(ms)))
                }
                (State::Backoff, None) => "It is started again shortly.".into(),
                _ => "It is not started again (its restart policy); `gpubox start` starts it.".into(),
            };
            let a = if recent.len() >= LOOP_EXITS {
                Alert::new(
                    "crash_loop",
                    Level::Error,
                    Some(&s.name),
                    format!(
                        "{} is crash-looping ({} exits in {} min)",
                        s.name,
                        recent.len(),
                        LOOP_WINDOW.as_secs() / 60
                    ),
                    format!("{}. {next}", ended("It", exit)),
                )
            } else {
                Alert::new("exit", Level::Error, Some(&s.name), ended(&s.name, exit), next)
            };
            // The lines are gathered only for an alert that will be sent.
            let a = if alerts.is_repeat(&a.key) { a } else { a.with_lines(last_lines(&hub, &s.name)) };
            alerts.raise(a);
        }
    }
}

/// Follows the log lines of the services that have `alert_on` patterns.
pub async fn log_patterns(alerts: Arc<Alerts>, hub: Hub, sup: Arc<Supervisor>) {
    let mut sets: Vec<(String, regex::RegexSet, Vec<String>)> = Vec::new();
    for (svc, pats) in &alerts.settings.patterns {
        // Each pattern was checked alone when the configuration was read; together they could
        // still pass the size limit.
        match regex::RegexSetBuilder::new(pats).size_limit(1 << 22).build() {
            Ok(set) => sets.push((svc.clone(), set, pats.clone())),
            Err(e) => hub.event(format!("alerts: the alert_on patterns of {svc} are not used: {e}")),
        }
    }
    if sets.is_empty() {
        return;
    }
    let mut watch = hub.watch();
    let mut after: Vec<u64> = vec![hub.last_seq(); sets.len()];
    loop {
        if watch.changed().await.is_err() || sup.is_shutting_down() {
            return;
        }
        for (i, (svc, set, pats)) in sets.iter().enumerate() {
            loop {
                let batch = hub.read(Some(svc), after[i], 1000);
                let Some(last) = batch.lines.last() else { break };
                after[i] = last.seq;
                for line in &batch.lines {
                    let Some(which) = set.matches(&line.text).iter().next() else { continue };
                    let mut a = Alert::new(
                        "log_match",
                        Level::Warning,
                        Some(svc),
                        format!("{svc}: {}", super::send::cut(line.text.trim(), 120)),
                        format!("A line of {svc}'s log matched `{}`.", pats[which]),
                    );
                    a.key = format!("log_match:{svc}:{which}");
                    if !alerts.is_repeat(&a.key) {
                        a = a.with_lines(last_lines(&hub, svc));
                    }
                    alerts.raise(a);
                }
                let full = batch.lines.len() == 1000;
                // A flood of lines is read in turns with the rest of the runtime's work.
                tokio::task::yield_now().await;
                if !full {
                    break;
                }
            }
        }
    }
}

/// Follows the samples: OOM kills, the workspace disk, idle GPUs.
pub async fn machine(alerts: Arc<Alerts>, metrics: Arc<Metrics>, sup: Arc<Supervisor>) {
    let mut rx = metrics.watch();
    let mut oom_before: Option<u64> = None;
    let mut disk_told = false;
    let mut busy_at = Instant::now();
    let mut idle_told = false;
    while rx.changed().await.is_ok() {
        if sup.is_shutting_down() {
            return;
        }
        let Some(s) = rx.borrow_and_update().clone() else { continue };
        let sys = &s.system;
        if let (Some(a), Some(b)) = (oom_before, sys.oom_kills) {
            if b > a {
                let mem = match (sys.mem_used, sys.mem_limit) {
                    (Some(u), Some(l)) => {
                        format!(" Memory in use: {} of {}.", crate::human::bytes(u), crate::human::bytes(l))
                    }
                    _ => String::new(),
                };
                alerts.raise(Alert::new(
                    "oom",
                    Level::Error,
                    None,
                    format!("out of memory: {} process{} killed", b - a, if b - a == 1 { "" } else { "es" }),
                    format!("The kernel's OOM killer ended a process of this container (memory.events oom_kill {a} → {b}).{mem} The service that exited with SIGKILL is the one; the logs app shows which."),
                ));
            }
        }
        oom_before = sys.oom_kills.or(oom_before);
        let limit = alerts.settings.disk_percent as u64;
        if let (Some(used), Some(total), true) = (sys.disk_used, sys.disk_total, limit > 0) {
            let pct = (used * 100).checked_div(total).unwrap_or(0);
            if pct >= limit && !disk_told {
                disk_told = true;
                alerts.raise(Alert::new(
                    "disk",
                    Level::Warning,
                    None,
                    format!("the workspace disk is {pct} % full"),
                    format!(
                        "{} of {} used, {} free. Downloads, outputs and logs fail once it is full; the file manager sorts folders by size.",
                        crate::human::bytes(used),
                        crate::human::bytes(total),
                        crate::human::bytes(total.saturating_sub(used))
                    ),
                ));
            } else if pct + 2 < limit {
                disk_told = false;
            }
        }
        if let Some(after) = alerts.settings.gpu_idle {
            let utils: Vec<f32> = s.gpus.iter().filter_map(|g| g.utilization).collect();
            if utils.is_empty() || s.gpu_unknown || utils.iter().any(|u| *u >= 5.0) {
                busy_at = Instant::now();
                idle_told = false;
            } else if !idle_told && busy_at.elapsed() >= after {
                idle_told = true;
                alerts.raise(Alert::new(
                    "gpu_idle",
                    Level::Warning,
                    None,
                    format!("the GPU has been idle for {}", humantime::format_duration(after)),
                    "Every GPU has been under 5 % for that long while the instance is rented. Stop it when you are done (IDLE_STOP_AFTER does it for you).".into(),
                ));
            }
        }
    }
}
