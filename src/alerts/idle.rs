//! The opt-in idle stop (`[idle_stop] after`, `IDLE_STOP_AFTER`): when for that long every GPU
//! was under `gpu_below` %, no request came to any port (health checks and the pages' own
//! background refreshes excepted), no key was typed in a terminal, and no provisioning or file
//! job ran, gpubox asks the cloud to stop this instance. `warn_before` (10 min) earlier it warns:
//! an alert, and a banner with "Keep running" on every page.
//!
//! The stop request (docs/research/alerts-idle.md §1-2):
//! - Vast.ai, with `CONTAINER_ID` and `CONTAINER_API_KEY` (Vast puts both in the container):
//!   `PUT https://console.vast.ai/api/v0/instances/{CONTAINER_ID}/` `{"state": "stopped"}`,
//!   `Authorization: Bearer {CONTAINER_API_KEY}` — docs.vast.ai's "manage instance", and what
//!   vast-cli's `stop instance` sends; a reply whose `success` is false is a failure;
//! - RunPod, with `RUNPOD_POD_ID` and `RUNPOD_API_KEY`: `POST
//!   https://rest.runpod.io/v1/pods/{RUNPOD_POD_ID}/stop`, `Authorization: Bearer`.
//!
//! Without either, it only warns. A failed request is reported (alert, status page) and tried
//! again after another idle spell. `GPUBOX_VAST_URL` and `GPUBOX_RUNPOD_URL` replace the APIs'
//! addresses (the tests' stand-ins).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::{Alert, Alerts, Level};
use crate::config::IdleStopSettings;
use crate::metrics::Metrics;
use crate::supervisor::{State, Supervisor};

/// What counts as someone using the instance, besides its GPUs.
pub struct Activity {
    /// The last request or key press, ms since the Unix epoch (0: none yet).
    last_ms: AtomicU64,
    /// File jobs, model downloads and transfers running now.
    busy: AtomicUsize,
}

/// The one activity clock of this process: the gateway, the terminal and the jobs touch it.
pub static ACTIVITY: Activity = Activity { last_ms: AtomicU64::new(0), busy: AtomicUsize::new(0) };

fn now_ms() -> u64 {
    super::now_ms()
}

impl Activity {
    /// Someone did something now.
    pub fn touch(&self) {
        self.last_ms.fetch_max(now_ms(), Ordering::Relaxed);
    }

    pub fn last_ms(&self) -> u64 {
        self.last_ms.load(Ordering::Relaxed)
    }

    /// Marks work in progress until the guard is dropped.
    pub fn working(&'static self) -> Working {
        self.busy.fetch_add(1, Ordering::Relaxed);
        Working(self)
    }

    pub fn jobs(&self) -> usize {
        self.busy.load(Ordering::Relaxed)
    }
}

/// A connection whose reads (what the browser sends) count as activity: a proxied WebSocket.
pub struct Touching<T>(pub T);

impl<T: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for Touching<T> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = std::pin::Pin::new(&mut self.0).poll_read(cx, buf);
        if buf.filled().len() > before {
            ACTIVITY.touch();
        }
        r
    }
}

impl<T: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for Touching<T> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// Work in progress (see [`Activity::working`]).
pub struct Working(&'static Activity);

impl Drop for Working {
    fn drop(&mut self) {
        self.0.busy.fetch_sub(1, Ordering::Relaxed);
        self.0.touch();
    }
}

/// Where the stop request goes.
#[derive(Clone, PartialEq)]
pub enum Provider {
    Vast { id: String, key: String, base: String },
    RunPod { id: String, key: String, base: String },
}

impl std::fmt::Debug for Provider {
    /// Without the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Provider::Vast { id, base, .. } => write!(f, "Vast {{ id: {id:?}, base: {base:?} }}"),
            Provider::RunPod { id, base, .. } => write!(f, "RunPod {{ id: {id:?}, base: {base:?} }}"),
        }
    }
}

impl Provider {
    /// From the variables the cloud sets in the container.
    pub fn from_env(lookup: &dyn Fn(&str) -> Option<String>) -> Option<Provider> {
        let get = |n: &str| lookup(n).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        if let (Some(id), Some(key)) = (get("CONTAINER_ID"), get("CONTAINER_API_KEY")) {
            let base = get("GPUBOX_VAST_URL").unwrap_or_else(|| "https://console.vast.ai".into());
            return Some(Provider::Vast { id, key, base });
        }
        if let (Some(id), Some(key)) = (get("RUNPOD_POD_ID"), get("RUNPOD_API_KEY")) {
            let base = get("GPUBOX_RUNPOD_URL").unwrap_or_else(|| "https://rest.runpod.io/v1".into());
            return Some(Provider::RunPod { id, key, base });
        }
        None
    }

    pub fn name(&self) -> &'static str {
        match self {
            Provider::Vast { .. } => "Vast.ai",
            Provider::RunPod { .. } => "RunPod",
        }
    }

    /// Asks the cloud to stop this instance; what it answered, or why it failed.
    pub fn stop(&self) -> Result<String, String> {
        // As vast-cli does: a throttled or failing server, or no connection, is tried again
        // (three tries); a refusal is final.
        // A minute per try (vast-cli waits two).
        let agent = super::send::agent(Duration::from_secs(60), 0);
        let mut last = String::new();
        for (n, wait) in [0u64, 2, 5].into_iter().enumerate() {
            std::thread::sleep(Duration::from_secs(wait));
            match self.stop_once(&agent) {
                Ok(said) => return Ok(said),
                Err((e, true)) => last = format!("{e} (try {} of 3)", n + 1),
                Err((e, false)) => return Err(e),
            }
        }
        Err(last)
    }

    /// One request; the error says whether to try again.
    fn stop_once(&self, agent: &ureq::Agent) -> Result<String, (String, bool)> {
        // A path segment: everything but the unreserved characters escaped.
        const SEGMENT: &percent_encoding::AsciiSet =
            &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');
        let enc = |s: &str| percent_encoding::utf8_percent_encode(s, SEGMENT).to_string();
        let (req, key) = match self {
            Provider::Vast { id, key, base } => (
                agent
                    .put(format!("{}/api/v0/instances/{}/", base.trim_end_matches('/'), enc(id)))
                    .header("Content-Type", "application/json"),
                key,
            ),
            Provider::RunPod { id, key, base } => {
                (agent.post(format!("{}/pods/{}/stop", base.trim_end_matches('/'), enc(id))), key)
            }
        };
        let req = req.header("Authorization", format!("Bearer {key}"));
        let sent = match self {
            Provider::Vast { .. } => req.send(&br#"{"state": "stopped"}"#[..]),
            Provider::RunPod { .. } => req.send_empty(),
        };
        let mut resp = sent.map_err(|e| (format!("{} could not be reached: {e}", self.name()), true))?;
        let status = resp.status().as_u16();
        let body = resp.body_mut().with_config().limit(64 * 1024).read_to_string().unwrap_or_default();
        let said = super::send::cut(body.trim(), 300);
        if !(200..300).contains(&status) {
            let hint = match status {
                401 | 403 => " (the API key was refused)",
                404 => " (no such instance: check the id)",
                _ => "",
            };
            let again = matches!(status, 429 | 502 | 503 | 504);
            return Err((format!("{} answered HTTP {status}{hint}: {said}", self.name()), again));
        }
        // Vast answers {"success": false, "msg": …} for a request it did not carry out.
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&body) {
            if v.get("success") == Some(&serde_json::Value::Bool(false)) {
                let msg = v.get("msg").or_else(|| v.get("error")).map_or_else(|| said.clone(), |m| m.to_string());
                return Err((format!("{} refused: {msg}", self.name()), false));
            }
        }
        Ok(format!("{} accepted the stop (HTTP {status})", self.name()))
    }
}

/// The idle stop as the pages show it.
#[derive(Debug, Clone, Serialize)]
pub struct IdleState {
    pub enabled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after_s: Option<u64>,
    pub warn_before_s: u64,
    /// `off`, `watching`, `warned`, `stopping`, `stopped` (the request was accepted), `failed`.
    pub phase: &'static str,
    /// Idle since (ms since the Unix epoch).
    pub idle_since_ms: u64,
    /// When the stop is due, while warned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_at_ms: Option<u64>,
    /// Who is asked to stop it (`Vast.ai`, `RunPod`); none: it only warns.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<&'static str>,
    /// What kept it busy at the last look.
    pub busy: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_result: Option<String>,
    /// The server's clock when this was read: a page counts down against it, not its own.
    pub now_ms: u64,
}

pub struct IdleStop {
    settings: IdleStopSettings,
    provider: Option<Provider>,
    state: Mutex<IdleState>,
    started_ms: u64,
}

impl IdleStop {
    pub fn new(settings: IdleStopSettings, provider: Option<Provider>) -> Arc<IdleStop> {
        let started_ms = now_ms();
        let state = IdleState {
            enabled: settings.after.is_some(),
            after_s: settings.after.map(|d| d.as_secs()),
            warn_before_s: settings.warn_before.as_secs(),
            phase: if settings.after.is_some() { "watching" } else { "off" },
            idle_since_ms: started_ms,
            stop_at_ms: None,
            provider: provider.as_ref().map(Provider::name),
            busy: Vec::new(),
            last_result: None,
            now_ms: 0,
        };
        Arc::new(IdleStop { settings, provider, state: Mutex::new(state), started_ms })
    }

    pub fn state(&self) -> IdleState {
        IdleState { now_ms: now_ms(), ..self.state.lock().expect("idle lock").clone() }
    }

    /// "Keep running": counts as activity now, and the warning goes.
    pub fn keep(&self) -> IdleState {
        ACTIVITY.touch();
        let mut st = self.state.lock().expect("idle lock");
        if self.settings.after.is_some() && st.phase != "stopping" {
            st.phase = "watching";
            st.stop_at_ms = None;
            st.idle_since_ms = now_ms();
        }
        IdleState { now_ms: now_ms(), ..st.clone() }
    }

    /// Watches each sample; does nothing unless the idle stop is on.
    pub async fn run(self: Arc<Self>, metrics: Arc<Metrics>, sup: Arc<Supervisor>, alerts: Arc<Alerts>) {
        if self.settings.after.is_none() {
            return;
        }
        let mut rx = metrics.watch();
        let mut spell = Spell { busy_ms: self.started_ms, warned_at: None };
        while rx.changed().await.is_ok() {
            if sup.is_shutting_down() {
                return;
            }
            let snap = rx.borrow_and_update().clone();
            let provisioning = sup
                .status_of("provision")
                .is_some_and(|s| matches!(s.state, State::Waiting | State::Starting | State::Running));
            match self.step(snap.as_deref(), provisioning, &mut spell) {
                Step::Nothing => {}
                Step::Tell(a) => {
                    alerts.raise(a);
                }
                Step::Stop(p) => {
                    // Told before the request: once the cloud stops the container, nothing more
                    // can be sent. Its delivery is waited for, a little.
                    let said = alerts.raise(Alert::new(
                        "idle_stop",
                        Level::Warning,
                        None,
                        format!("idle: asking {} to stop this instance now", p.name()),
                        "Nothing has used it since the warning. Its disk is kept (and still billed); start it again from the cloud's console.".into(),
                    ).once());
                    alerts.settled(said, Duration::from_secs(10)).await;
                    let result = tokio::task::spawn_blocking(move || p.stop())
                        .await
                        .unwrap_or_else(|_| Err("the request's thread failed".into()));
                    if let Some(a) = self.stopped(result) {
                        alerts.raise(a);
                    }
                }
            }
        }
    }

    /// One look at the instance: what to do now.
    fn step(&self, snap: Option<&crate::metrics::Snapshot>, provisioning: bool, spell: &mut Spell) -> Step {
        let Some(after) = self.settings.after else { return Step::Nothing };
        let warn_at = after.saturating_sub(self.settings.warn_before);
        let now = now_ms();
        let mut busy = Vec::new();
        if let Some(s) = snap {
            for g in &s.gpus {
                if let Some(u) = g.utilization.filter(|u| *u >= self.settings.gpu_below) {
                    busy.push(format!("GPU {} at {u:.0} %", g.index));
                }
            }
            // Unseen is not idle: a GPU that cannot be read may be training.
            if s.gpu_unknown {
                busy.push("GPU usage cannot be read".into());
            }
        }
        if ACTIVITY.jobs() > 0 {
            busy.push(format!("{} file job(s) running", ACTIVITY.jobs()));
        }
        if provisioning {
            busy.push("provisioning".into());
        }
        if !busy.is_empty() {
            spell.busy_ms = now;
        }
        let mut st = self.state.lock().expect("idle lock");
        st.busy = busy;
        if st.phase == "stopping" {
            return Step::Nothing;
        }
        let since = spell.busy_ms.max(ACTIVITY.last_ms()).max(st.idle_since_ms);
        st.idle_since_ms = since;
        let idle = Duration::from_millis(now.saturating_sub(since));
        if idle < warn_at {
            if st.phase == "warned" {
                st.phase = "watching";
            }
            st.stop_at_ms = None;
            spell.warned_at = None;
            return Step::Nothing;
        }
        // The stop comes `warn_before` after the warning, measured on the monotonic clock: a
        // clock that jumps, or a gap in the samples, never skips the warning.
        let Some(warned_at) = spell.warned_at else {
            spell.warned_at = Some(Instant::now());
            st.phase = "warned";
            let left = self.settings.warn_before.max(after.saturating_sub(idle));
            st.stop_at_ms = Some(now + left.as_millis() as u64);
            let what = match &self.provider {
                Some(p) => format!("gpubox asks {} to stop it in {}", p.name(), crate::human::duration(left)),
                None => "without a cloud API key (CONTAINER_API_KEY on Vast, RUNPOD_API_KEY on RunPod) gpubox cannot stop it: stop it yourself".to_string(),
            };
            return Step::Tell(
                Alert::new(
                    "idle_warning",
                    Level::Warning,
                    None,
                    format!("idle for {}: stopping soon", crate::human::duration(idle)),
                    format!(
                        "Nothing has used this instance for {} (no GPU work, no request, no terminal input, no job); {what}. Open any of its pages and press \"Keep running\" to keep it.",
                        crate::human::duration(idle)
                    ),
                )
                .once(),
            );
        };
        if idle < after || warned_at.elapsed() < self.settings.warn_before {
            return Step::Nothing;
        }
        // Due: ask the cloud (or say that it cannot be asked); a new spell starts either way.
        spell.warned_at = None;
        st.stop_at_ms = None;
        match self.provider.clone() {
            Some(p) => {
                st.phase = "stopping";
                Step::Stop(p)
            }
            None => {
                st.phase = "watching";
                st.idle_since_ms = now;
                st.last_result = Some("due, but no cloud API key to stop it with".into());
                Step::Tell(
                    Alert::new(
                        "idle_stop",
                        Level::Warning,
                        None,
                        "idle: would stop now, but cannot".into(),
                        "The idle stop is due, but neither CONTAINER_API_KEY and CONTAINER_ID (Vast) nor RUNPOD_API_KEY and RUNPOD_POD_ID (RunPod) are set. The instance keeps running (and costing).".into(),
                    )
                    .once(),
                )
            }
        }
    }

    /// Records what the cloud answered; a failure's alert (success was told before asking).
    fn stopped(&self, result: Result<String, String>) -> Option<Alert> {
        let mut st = self.state.lock().expect("idle lock");
        st.idle_since_ms = now_ms();
        st.phase = if result.is_ok() { "stopped" } else { "failed" };
        match result {
            Ok(said) => {
                st.last_result = Some(said);
                None
            }
            Err(e) => {
                st.last_result = Some(e.clone());
                Some(
                    Alert::new(
                        "idle_stop",
                        Level::Error,
                        None,
                        "idle: the stop request failed".into(),
                        format!("{e}. The instance keeps running; gpubox tries again after another idle spell."),
                    )
                    .once(),
                )
            }
        }
    }
}

/// The idle spell being watched.
struct Spell {
    /// The last moment something was busy (a GPU, a job, provisioning).
    busy_ms: u64,
    /// When the warning went out (none yet in this spell).
    warned_at: Option<Instant>,
}

enum Step {
    Nothing,
    Tell(Alert),
    Stop(Provider),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_provider_comes_from_the_clouds_variables() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |n: &str| pairs.iter().find(|(k, _)| *k == n).map(|(_, v)| v.to_string())
        };
        assert_eq!(Provider::from_env(&env(&[])), None);
        assert_eq!(Provider::from_env(&env(&[("CONTAINER_ID", "123")])), None, "no key: no stop");
        assert_eq!(
            Provider::from_env(&env(&[("CONTAINER_ID", "123"), ("CONTAINER_API_KEY", "k")])),
            Some(Provider::Vast { id: "123".into(), key: "k".into(), base: "https://console.vast.ai".into() })
        );
        assert_eq!(
            Provider::from_env(&env(&[
                ("RUNPOD_POD_ID", "abc"),
                ("RUNPOD_API_KEY", "k"),
                ("GPUBOX_RUNPOD_URL", "http://x")
            ])),
            Some(Provider::RunPod { id: "abc".into(), key: "k".into(), base: "http://x".into() })
        );
    }
}
