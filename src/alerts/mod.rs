//! Alerts: what happened that the user should know, told where they look (a JSON webhook, ntfy,
//! Discord, Slack; `[alerts]`), and kept for the status page.
//!
//! - Raising one never blocks: it is recorded and handed to one sending task through a bounded
//!   queue (full: recorded as dropped). The supervisor, the log hub and the sampler only ever
//!   observe; the watchers (`watch.rs`) follow them from tasks of their own.
//! - The same alert (kind and service) within `repeat_after` is counted, not sent; the next one
//!   sent says how many were held back. At most [`PER_HOUR`] are sent an hour.
//! - Each target is tried up to three times with backoff (a `Retry-After` is obeyed up to a
//!   minute); a refusal that says the address is wrong (404, 410, 400) is not retried.
//! - `idle.rs`: the opt-in idle stop, which warns through here.

pub mod idle;
mod send;
pub mod watch;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::mpsc;

use crate::config::AlertSettings;

/// Alerts kept for the status page.
const KEPT: usize = 100;
/// Alerts waiting to be sent.
const QUEUE: usize = 64;
/// Sent at most this many an hour (a storm of different alerts is cut off here).
pub const PER_HOUR: usize = 30;
/// Lines of a service's log sent with an alert about it.
pub const LINES: usize = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Info,
    Warning,
    Error,
}

/// One thing to tell.
#[derive(Debug, Clone)]
pub struct Alert {
    /// What kind of event: `exit`, `crash_loop`, `oom`, `disk`, `provision_done`,
    /// `provision_failed`, `log_match`, `gpu_idle`, `idle_warning`, `idle_stop`, `test`.
    pub kind: &'static str,
    pub level: Level,
    pub service: Option<String>,
    /// One line: what happened.
    pub title: String,
    /// More, in plain words.
    pub text: String,
    /// The service's last log lines.
    pub lines: Vec<String>,
    /// Alerts with one key within `repeat_after` are one (default: kind and service).
    pub key: String,
}

impl Alert {
    pub fn new(kind: &'static str, level: Level, service: Option<&str>, title: String, text: String) -> Alert {
        let key = format!("{kind}:{}", service.unwrap_or(""));
        Alert { kind, level, service: service.map(str::to_string), title, text, lines: Vec::new(), key }
    }
}

/// What became of one target's delivery.
#[derive(Debug, Clone, Serialize)]
pub struct Delivery {
    pub target: &'static str,
    /// `pending`, `sent`, `failed`.
    pub state: &'static str,
    pub attempts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// An alert as the status page shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Record {
    pub id: u64,
    pub time_ms: u64,
    pub kind: &'static str,
    pub level: Level,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    pub title: String,
    pub text: String,
    /// Not sent, and why: held back as a repeat, over the hourly limit, no target, queue full.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held: Option<String>,
    /// Repeats held back before this one.
    pub repeats: u32,
    pub deliveries: Vec<Delivery>,
}

/// The history, the alerts and the idle stop, started together.
pub struct Monitor {
    pub metrics: Arc<crate::metrics::Metrics>,
    pub alerts: Arc<Alerts>,
    pub idle: Arc<idle::IdleStop>,
}

impl Monitor {
    /// Starts the sampler, the alerts' sender and watchers, and the idle stop. `link`: where an
    /// alert's link points when `[alerts] link` does not say.
    pub fn start(
        config: &crate::config::Config,
        sup: Arc<crate::supervisor::Supervisor>,
        hub: crate::logs::Hub,
        link: Option<String>,
    ) -> Arc<Monitor> {
        let metrics =
            crate::metrics::Metrics::start(&config.metrics, sup.clone(), config.workspace.clone(), &config.state_dir);
        if let Some(p) = &metrics.load_problem {
            hub.event(format!("metrics: the saved history is not used: {p}"));
        }
        let alerts = Alerts::start(config.alerts.clone(), config.name.clone(), link);
        let provider = idle::Provider::from_env(&|n| std::env::var(n).ok());
        let idle = idle::IdleStop::new(config.idle_stop.clone(), provider);
        if let Some(after) = config.idle_stop.after {
            hub.event(match idle.state().provider {
                Some(p) => format!(
                    "idle stop: on; after {} without GPU work, requests, terminal input or jobs, gpubox asks {p} to stop this instance (a warning {} before)",
                    humantime::format_duration(after),
                    humantime::format_duration(config.idle_stop.warn_before)
                ),
                None => format!(
                    "idle stop: on, but only warns after {}: no CONTAINER_API_KEY and CONTAINER_ID (Vast) or RUNPOD_API_KEY and RUNPOD_POD_ID (RunPod) to stop the instance with",
                    humantime::format_duration(after)
                ),
            });
        }
        if !config.alerts.targets.is_empty() {
            let kinds: Vec<&str> = config.alerts.targets.iter().map(|t| t.kind.as_str()).collect();
            hub.event(format!("alerts: sent to {}", kinds.join(", ")));
        }
        tokio::spawn(watch::services(alerts.clone(), sup.clone(), hub.clone()));
        tokio::spawn(watch::log_patterns(alerts.clone(), hub, sup.clone()));
        tokio::spawn(watch::machine(alerts.clone(), metrics.clone(), sup.clone()));
        tokio::spawn(idle.clone().run(metrics.clone(), sup, alerts.clone()));
        Arc::new(Monitor { metrics, alerts, idle })
    }
}

pub struct Alerts {
    pub settings: AlertSettings,
    instance: String,
    /// Where an alert's link points.
    link: Option<String>,
    queue: mpsc::Sender<(u64, Alert, u32)>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    next_id: u64,
    records: VecDeque<Record>,
    /// Per key: when it was last sent, and the repeats held back since.
    last: HashMap<String, (Instant, u32)>,
    /// When the alerts of the last hour were sent.
    hour: VecDeque<Instant>,
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

impl Alerts {
    /// Starts the sending task.
    pub fn start(settings: AlertSettings, instance: String, link: Option<String>) -> Arc<Alerts> {
        let (queue, rx) = mpsc::channel(QUEUE);
        let link = settings.link.clone().or(link);
        let alerts = Arc::new(Alerts {
            settings,
            instance,
            link,
            queue,
            state: Mutex::new(State { next_id: 1, ..State::default() }),
        });
        tokio::spawn(send::worker(alerts.clone(), rx));
        alerts
    }

    /// Records `alert` and, unless it is a repeat or over the limit, queues it for every target.
    /// Never waits.
    pub fn raise(&self, alert: Alert) {
        let mut st = self.state.lock().expect("alerts lock");
        let now = Instant::now();
        let id = st.next_id;
        st.next_id += 1;
        let mut repeats = 0;
        let mut held = None;
        match st.last.get_mut(&alert.key) {
            Some((at, n)) if now.duration_since(*at) < self.settings.repeat_after => {
                *n += 1;
                held = Some(format!(
                    "a repeat within {} of the last one sent",
                    humantime::format_duration(self.settings.repeat_after)
                ));
            }
            Some((_, n)) => repeats = std::mem::take(n),
            None => {}
        }
        while st.hour.front().is_some_and(|t| now.duration_since(*t) > Duration::from_secs(3600)) {
            st.hour.pop_front();
        }
        if held.is_none() && st.hour.len() >= PER_HOUR {
            held = Some(format!("over the limit of {PER_HOUR} alerts an hour"));
        }
        if held.is_none() && self.settings.targets.is_empty() {
            held = Some("no target is set ([alerts] in the configuration, or ALERT_WEBHOOK, NTFY_TOPIC_URL, DISCORD_WEBHOOK_URL, SLACK_WEBHOOK_URL)".into());
        }
        let mut deliveries = Vec::new();
        if held.is_none() {
            match self.queue.try_send((id, alert.clone(), repeats)) {
                Ok(()) => {
                    st.last.insert(alert.key.clone(), (now, 0));
                    st.hour.push_back(now);
                    deliveries = self
                        .settings
                        .targets
                        .iter()
                        .map(|t| Delivery { target: t.kind.as_str(), state: "pending", attempts: 0, error: None })
                        .collect();
                }
                Err(_) => held = Some("dropped: too many alerts waiting to be sent".into()),
            }
        }
        if st.records.len() == KEPT {
            st.records.pop_front();
        }
        st.records.push_back(Record {
            id,
            time_ms: now_ms(),
            kind: alert.kind,
            level: alert.level,
            service: alert.service,
            title: alert.title,
            text: alert.text,
            held,
            repeats,
            deliveries,
        });
    }

    /// The alerts kept, newest first.
    pub fn records(&self) -> Vec<Record> {
        self.state.lock().expect("alerts lock").records.iter().rev().cloned().collect()
    }

    fn update(&self, id: u64, target: usize, f: impl FnOnce(&mut Delivery)) {
        let mut st = self.state.lock().expect("alerts lock");
        if let Some(d) = st.records.iter_mut().find(|r| r.id == id).and_then(|r| r.deliveries.get_mut(target)) {
            f(d);
        }
    }

    pub fn instance(&self) -> &str {
        &self.instance
    }

    pub fn link(&self) -> Option<&str> {
        self.link.as_deref()
    }
}
