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
    /// Never held back as a repeat, nor by the hourly limit, and not counted in it: the idle
    /// stop's warnings and results (each is about this spell, and the last word before the
    /// instance goes), and test alerts.
    pub always: bool,
}

impl Alert {
    pub fn new(kind: &'static str, level: Level, service: Option<&str>, title: String, text: String) -> Alert {
        let key = format!("{kind}:{}", service.unwrap_or(""));
        Alert {
            kind,
            level,
            service: service.map(str::to_string),
            title: plain(&title),
            text: plain(&text),
            lines: Vec::new(),
            key,
            always: false,
        }
    }

    /// See [`Alert::always`].
    pub fn once(mut self) -> Alert {
        self.always = true;
        self
    }

    /// The service's last lines, as plain text.
    pub fn with_lines(mut self, lines: Vec<String>) -> Alert {
        self.lines = lines.iter().map(|l| plain(l)).collect();
        self
    }
}

/// Text without terminal escapes (a service's coloured output) or control characters other
/// than newlines and tabs: they would show as garbage in a message, and make an invalid HTTP
/// header of ntfy's title.
pub fn plain(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => {
                // CSI (ESC [ … a final byte) and OSC (ESC ] … BEL or ESC \); other escapes
                // take the next character.
                match chars.next() {
                    Some('[') => {
                        for c in chars.by_ref() {
                            if ('@'..='~').contains(&c) {
                                break;
                            }
                        }
                    }
                    Some(']') => {
                        while let Some(c) = chars.next() {
                            if c == '\u{7}' || (c == '\u{1b}' && chars.next_if_eq(&'\\').is_some()) {
                                break;
                            }
                        }
                    }
                    _ => {}
                }
            }
            '\n' | '\t' => out.push(c),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
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
    /// Repeats held back before this one (said in its message).
    pub repeats: u32,
    /// Repeats held back since this one (shown with it instead of as records of their own).
    pub later: u32,
    pub deliveries: Vec<Delivery>,
    #[serde(skip)]
    key: String,
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
        for p in config.alerts.problems.iter().chain(&config.idle_stop.problems) {
            hub.event(format!("alerts: {p}"));
        }
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
    /// One queue and one sending task per target: a target that is down delays only itself.
    queues: Vec<mpsc::Sender<Queued>>,
    state: Mutex<State>,
}

/// An alert waiting to be sent to one target: its record's id, the alert (shared by every
/// target's queue), the repeats held back before it.
pub(crate) type Queued = (u64, Arc<Alert>, u32);

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
    /// Starts one sending task per target.
    pub fn start(settings: AlertSettings, instance: String, link: Option<String>) -> Arc<Alerts> {
        let link = settings.link.clone().or(link);
        let (queues, receivers): (Vec<_>, Vec<_>) = settings.targets.iter().map(|_| mpsc::channel(QUEUE)).unzip();
        let alerts = Arc::new(Alerts {
            settings,
            instance,
            link,
            queues,
            state: Mutex::new(State { next_id: 1, ..State::default() }),
        });
        for (i, rx) in receivers.into_iter().enumerate() {
            tokio::spawn(send::worker(alerts.clone(), i, rx));
        }
        alerts
    }

    /// Whether an alert with `key` would now be held back as a repeat (a watcher asks before
    /// gathering an alert's lines).
    pub fn is_repeat(&self, key: &str) -> bool {
        let st = self.state.lock().expect("alerts lock");
        st.last.get(key).is_some_and(|(at, _)| at.elapsed() < self.settings.repeat_after)
    }

    /// Waits until every delivery of alert `id` is over (sent or failed), at most `limit`.
    pub async fn settled(&self, id: u64, limit: Duration) {
        let until = Instant::now() + limit;
        while Instant::now() < until {
            let pending = {
                let st = self.state.lock().expect("alerts lock");
                st.records
                    .iter()
                    .find(|r| r.id == id)
                    .is_some_and(|r| r.deliveries.iter().any(|d| d.state == "pending"))
            };
            if !pending {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Records `alert` and, unless it is a repeat or over the limit, queues it for every target.
    /// Never waits. Returns the record's id.
    pub fn raise(&self, alert: Alert) -> u64 {
        let mut st = self.state.lock().expect("alerts lock");
        let now = Instant::now();
        let id = st.next_id;
        st.next_id += 1;
        // Keys whose window has passed with nothing held back are forgotten: the map stays as
        // small as the alerts of the last `repeat_after`.
        let window = self.settings.repeat_after;
        st.last.retain(|_, (at, n)| *n > 0 || now.duration_since(*at) < window);
        if !alert.always {
            if let Some((at, n)) = st.last.get_mut(&alert.key) {
                if now.duration_since(*at) < window {
                    // A repeat: counted on the record of the one sent, not kept as one more.
                    *n += 1;
                    let key = alert.key.clone();
                    if let Some(r) = st.records.iter_mut().rev().find(|r| r.key == key) {
                        r.later += 1;
                    }
                    return id;
                }
            }
        }
        while st.hour.front().is_some_and(|t| now.duration_since(*t) > Duration::from_secs(3600)) {
            st.hour.pop_front();
        }
        let mut held = None;
        if !alert.always && st.hour.len() >= PER_HOUR {
            held = Some(format!("over the limit of {PER_HOUR} alerts an hour"));
        } else if self.settings.targets.is_empty() {
            held = Some("no target is set ([alerts] in the configuration, or ALERT_WEBHOOK, NTFY_TOPIC_URL, DISCORD_WEBHOOK_URL, SLACK_WEBHOOK_URL)".into());
        }
        let mut repeats = 0;
        let mut deliveries = Vec::new();
        if held.is_none() {
            // The count of those held back goes with the one sent (and only then is it reset).
            repeats = st.last.get(&alert.key).map_or(0, |(_, n)| *n);
            let shared = Arc::new(alert.clone());
            for (i, t) in self.settings.targets.iter().enumerate() {
                let queued = self.queues[i].try_send((id, shared.clone(), repeats)).is_ok();
                deliveries.push(Delivery {
                    target: t.kind.as_str(),
                    state: if queued { "pending" } else { "failed" },
                    attempts: 0,
                    error: (!queued).then(|| "dropped: too many alerts waiting for this target".to_string()),
                });
            }
            if !alert.always {
                st.last.insert(alert.key.clone(), (now, 0));
                st.hour.push_back(now);
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
            later: 0,
            deliveries,
            key: alert.key,
        });
        id
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{AlertTarget, TargetKind};

    fn alerts(repeat_after: Duration) -> Arc<Alerts> {
        let settings = AlertSettings {
            // Nothing listens there: deliveries fail, which these tests do not look at.
            targets: vec![AlertTarget { kind: TargetKind::Webhook, url: "http://127.0.0.1:9/x".into(), token: None }],
            repeat_after,
            ..AlertSettings::default()
        };
        Alerts::start(settings, "box".into(), None)
    }

    fn exit(service: &str) -> Alert {
        Alert::new("exit", Level::Error, Some(service), format!("{service} exited"), String::new())
    }

    #[tokio::test]
    async fn repeats_are_counted_on_the_one_sent_and_go_with_the_next() {
        let a = alerts(Duration::from_millis(300));
        a.raise(exit("forge"));
        a.raise(exit("forge"));
        a.raise(exit("forge"));
        a.raise(exit("other"));
        let r = a.records();
        assert_eq!(r.len(), 2, "{r:?}");
        assert_eq!((r[1].title.as_str(), r[1].later), ("forge exited", 2));
        tokio::time::sleep(Duration::from_millis(350)).await;
        a.raise(exit("forge"));
        let r = a.records();
        assert_eq!((r[0].title.as_str(), r[0].repeats, r[0].held.as_deref()), ("forge exited", 2, None));
    }

    #[tokio::test]
    async fn the_hourly_limit_holds_back_all_but_what_must_be_said() {
        let a = alerts(Duration::from_secs(3600));
        for i in 0..PER_HOUR + 5 {
            a.raise(exit(&format!("s{i}")));
        }
        let r = a.records();
        assert_eq!(r.iter().filter(|r| r.held.is_none()).count(), PER_HOUR);
        assert!(r[0].held.as_deref().unwrap().contains("30 alerts an hour"));
        // The idle stop's words and test alerts pass, however many, and twice with one key.
        let warn = || Alert::new("idle_warning", Level::Warning, None, "idle".into(), String::new()).once();
        a.raise(warn());
        a.raise(warn());
        let r = a.records();
        assert!(
            r[0].held.is_none() && r[1].held.is_none() && r[0].kind == "idle_warning" && r[1].kind == "idle_warning"
        );
    }

    #[tokio::test]
    async fn without_a_target_an_alert_is_kept_and_says_so() {
        let a = Alerts::start(AlertSettings::default(), "box".into(), None);
        a.raise(exit("forge"));
        let r = a.records();
        assert!(r[0].held.as_deref().unwrap().contains("no target is set"));
        assert!(r[0].deliveries.is_empty());
    }

    #[test]
    fn terminal_escapes_and_control_characters_are_taken_out() {
        assert_eq!(plain("\u{1b}[31mCUDA\u{1b}[0m out of memory\r"), "CUDA out of memory ");
        assert_eq!(plain("a\u{1b}]0;title\u{7}b\u{1b}]8;;x\u{1b}\\c"), "abc");
        assert_eq!(plain("tab\there\nnext\u{0}"), "tab\there\nnext ");
        assert_eq!(plain("héllo ✓"), "héllo ✓");
    }
}
