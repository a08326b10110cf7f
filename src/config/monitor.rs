//! `[metrics]`, `[alerts]` and `[idle_stop]`: the history gpubox keeps, what it tells the user
//! and where, and the opt-in stop of an idle instance. Each key that names a target or turns
//! something on can also come from the environment (a Vast template sets variables, not files):
//! the file's value wins when both are given.

use std::time::Duration;

use serde::{Serialize, Serializer};
use toml::Spanned;

use super::raw::{RawAlerts, RawIdleStop, RawMetrics};
use super::show;
use super::validate::Ctx;

/// `[metrics]`: how often the machine is sampled and how much history is kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MetricsSettings {
    #[serde(serialize_with = "show::duration")]
    pub interval: Duration,
    #[serde(serialize_with = "show::duration")]
    pub keep: Duration,
}

impl Default for MetricsSettings {
    fn default() -> Self {
        MetricsSettings { interval: Duration::from_secs(5), keep: Duration::from_secs(24 * 3600) }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetKind {
    /// A JSON document POSTed as is (gpubox's own shape, see docs/alerts.md).
    Webhook,
    Ntfy,
    Discord,
    Slack,
}

impl TargetKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TargetKind::Webhook => "webhook",
            TargetKind::Ntfy => "ntfy",
            TargetKind::Discord => "discord",
            TargetKind::Slack => "slack",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AlertTarget {
    pub kind: TargetKind,
    /// Shown without its path and query: a webhook's URL is its secret.
    #[serde(serialize_with = "masked_url")]
    pub url: String,
    /// ntfy's access token (`NTFY_TOKEN`), sent as a Bearer token; never shown.
    #[serde(skip)]
    pub token: Option<String>,
}

fn masked_url<S: Serializer>(url: &str, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&masked(url))
}

/// A URL as it may be shown: its scheme and host, without a user, a password, a path or a
/// query (a webhook's path is its secret).
pub fn masked(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
            let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            format!("{scheme}://{host}/…")
        }
        None => "…".into(),
    }
}

/// A value that came from the environment and is wrong does not stop gpubox (a Vast template's
/// typo would keep the instance from starting at all): it is left out and said in the log. One
/// written in a file is an error, with its line.
fn wrong(
    cx: &mut Ctx,
    problems: &mut Vec<String>,
    span: std::ops::Range<usize>,
    key: &str,
    message: String,
    hint: Option<String>,
) {
    if key.ends_with("(environment)") {
        let hint = hint.map_or(String::new(), |h| format!(" ({h})"));
        problems.push(format!("{key}: {message}; left out{hint}"));
    } else {
        cx.error(span, key, message, hint);
    }
}

/// `[alerts]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AlertSettings {
    pub targets: Vec<AlertTarget>,
    /// A disk (the workspace's) fuller than this, in percent, is told once (0: never).
    pub disk_percent: u8,
    /// Every GPU under 5 % for this long is told once per idle spell (none: never).
    #[serde(serialize_with = "show::optional_duration")]
    pub gpu_idle: Option<Duration>,
    /// The same alert (kind and service) again within this is not sent, only counted.
    #[serde(serialize_with = "show::duration")]
    pub repeat_after: Duration,
    /// Where an alert's link points (the logs app's address when not given and the cloud says
    /// it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// Per service, the log lines (regular expressions, checked) that send an alert: each
    /// service's `alert_on`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub patterns: Vec<(String, Vec<String>)>,
    /// Values from the environment that were wrong and left out (said in the log at start).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

impl Default for AlertSettings {
    fn default() -> Self {
        AlertSettings {
            targets: Vec::new(),
            disk_percent: 90,
            gpu_idle: Some(Duration::from_secs(30 * 60)),
            repeat_after: Duration::from_secs(30 * 60),
            link: None,
            patterns: Vec::new(),
            problems: Vec::new(),
        }
    }
}

/// `[idle_stop]`: off unless `after` (or `IDLE_STOP_AFTER`) is given.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IdleStopSettings {
    #[serde(serialize_with = "show::optional_duration")]
    pub after: Option<Duration>,
    /// The warning goes out this long before the stop (at most half of `after`).
    #[serde(serialize_with = "show::duration")]
    pub warn_before: Duration,
    /// A GPU busier than this, in percent, is activity.
    pub gpu_below: f32,
    /// A wrong `IDLE_STOP_AFTER`, left out (said in the log at start).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

impl Default for IdleStopSettings {
    fn default() -> Self {
        IdleStopSettings { after: None, warn_before: Duration::from_secs(600), gpu_below: 5.0, problems: Vec::new() }
    }
}

/// A value from the file, else from the environment variable `var`; `(span, text, key)` where
/// key names what to fix.
fn from_file_or_env(
    cx: &mut Ctx,
    written: &Option<Spanned<String>>,
    key: &str,
    var: &str,
) -> Option<(std::ops::Range<usize>, String, String)> {
    match written {
        Some(v) => cx.expand(v, key).map(|t| (v.span(), t.trim().to_string(), key.to_string())),
        None => (cx.lookup)(var).map(|t| (0..0, t.trim().to_string(), format!("{var} (environment)"))),
    }
    .filter(|(_, t, _)| !t.is_empty())
}

/// A duration that may be `off`: from the file, else the environment.
fn optional_duration(
    cx: &mut Ctx,
    problems: &mut Vec<String>,
    written: &Option<Spanned<toml::Value>>,
    key: &str,
    var: &str,
    default: Option<Duration>,
) -> Option<Duration> {
    let (span, text, key) = match written {
        Some(v) => match v.get_ref() {
            toml::Value::String(s) => {
                (v.span(), cx.expand(&Spanned::new(v.span(), s.clone()), key)?.trim().to_string(), key.to_string())
            }
            toml::Value::Integer(0) => return None,
            _ => {
                cx.error(
                    v.span(),
                    key,
                    "is not a duration".into(),
                    Some("write a duration like \"30m\" or \"1h\", or \"off\"".into()),
                );
                return default;
            }
        },
        None => match (cx.lookup)(var) {
            Some(t) => (0..0, t.trim().to_string(), format!("{var} (environment)")),
            None => return default,
        },
    };
    match text.to_ascii_lowercase().as_str() {
        "" | "off" | "0" | "false" | "no" | "never" => None,
        _ => match humantime::parse_duration(&text) {
            Ok(d) if d >= Duration::from_secs(1) => Some(d),
            Ok(_) => {
                wrong(
                    cx,
                    problems,
                    span,
                    &key,
                    format!("`{text}` is too short"),
                    Some("give at least a second".into()),
                );
                if key.ends_with("(environment)") {
                    None
                } else {
                    default
                }
            }
            Err(e) => {
                wrong(
                    cx,
                    problems,
                    span,
                    &key,
                    format!("`{text}` is not a duration ({e})"),
                    Some("write a duration like \"30m\" or \"1h\", or \"off\"".into()),
                );
                if key.ends_with("(environment)") {
                    None
                } else {
                    default
                }
            }
        },
    }
}

pub(super) fn metrics(cx: &mut Ctx, raw: &RawMetrics) -> MetricsSettings {
    let d = MetricsSettings::default();
    let mut interval = cx.duration(&raw.interval, "metrics.interval", d.interval);
    if interval < Duration::from_secs(1) || interval > Duration::from_secs(300) {
        if let Some(v) = &raw.interval {
            cx.error(
                v.span(),
                "metrics.interval",
                "must be between 1s and 5m".into(),
                Some("the default is 5s".into()),
            );
        }
        interval = d.interval;
    }
    let mut keep = cx.duration(&raw.keep, "metrics.keep", d.keep);
    // 7 days at 1 s would be 600,000 samples; the ring is kept below 200,000.
    if keep < interval || keep > Duration::from_secs(7 * 86400) || keep.as_secs() / interval.as_secs() > 200_000 {
        if let Some(v) = &raw.keep {
            cx.error(
                v.span(),
                "metrics.keep",
                "must be at least one interval, at most 7 days and at most 200,000 intervals".into(),
                Some("the default is 24h".into()),
            );
        }
        keep = d.keep;
    }
    MetricsSettings { interval, keep }
}

pub(super) fn alerts(cx: &mut Ctx, raw: &RawAlerts) -> AlertSettings {
    let d = AlertSettings::default();
    let mut problems = Vec::new();
    let mut targets = Vec::new();
    let wanted = [
        (TargetKind::Webhook, &raw.webhook, "alerts.webhook", "ALERT_WEBHOOK"),
        (TargetKind::Ntfy, &raw.ntfy, "alerts.ntfy", "NTFY_TOPIC_URL"),
        (TargetKind::Discord, &raw.discord, "alerts.discord", "DISCORD_WEBHOOK_URL"),
        (TargetKind::Slack, &raw.slack, "alerts.slack", "SLACK_WEBHOOK_URL"),
    ];
    for (kind, written, key, var) in wanted {
        let Some((span, url, key)) = from_file_or_env(cx, written, key, var) else { continue };
        // The address is a secret: errors show its scheme and host only.
        let shown = masked(&url);
        let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"));
        let host_and_path = rest.map(|r| r.split_once('/').map_or((r, ""), |(h, p)| (h, p)));
        match host_and_path {
            Some(("", _)) => wrong(cx, &mut problems, span, &key, format!("`{shown}` names no host"), None),
            Some((_, path)) if kind == TargetKind::Ntfy && path.trim_matches('/').is_empty() => wrong(
                cx,
                &mut problems,
                span,
                &key,
                format!("`{shown}` names no topic"),
                Some("write the topic's address, such as https://ntfy.sh/my-gpu-alerts".into()),
            ),
            Some(_) => targets.push(AlertTarget { kind, url, token: None }),
            None => wrong(
                cx,
                &mut problems,
                span,
                &key,
                "is not an http:// or https:// address".into(),
                Some("paste the whole address the service gave you".into()),
            ),
        }
    }
    if let Some((_, token, _)) = from_file_or_env(cx, &raw.ntfy_token, "alerts.ntfy_token", "NTFY_TOKEN") {
        for t in targets.iter_mut().filter(|t| t.kind == TargetKind::Ntfy) {
            t.token = Some(token.clone());
        }
    }
    let disk_percent = match &raw.disk_percent {
        None => d.disk_percent,
        Some(v) if *v.get_ref() <= 100 => *v.get_ref() as u8,
        Some(v) => {
            cx.error(v.span(), "alerts.disk_percent", "must be between 0 (never) and 100".into(), None);
            d.disk_percent
        }
    };
    let gpu_idle = optional_duration(cx, &mut problems, &raw.gpu_idle, "alerts.gpu_idle", "ALERT_GPU_IDLE", d.gpu_idle);
    let repeat_after = cx.duration(&raw.repeat_after, "alerts.repeat_after", d.repeat_after);
    let link = raw.link.as_ref().and_then(|l| cx.expand(l, "alerts.link")).filter(|l| !l.trim().is_empty());
    AlertSettings { targets, disk_percent, gpu_idle, repeat_after, link, patterns: Vec::new(), problems }
}

/// A service's `alert_on`: regular expressions, each checked here (a line matching any sends an
/// alert).
pub(super) fn patterns(cx: &mut Ctx, service: &str, written: &[Spanned<String>]) -> Vec<String> {
    let key = format!("services.{service}.alert_on");
    let mut out = Vec::new();
    for p in written {
        let Some(text) = cx.expand(p, &key) else { continue };
        if text.is_empty() {
            continue;
        }
        match regex::RegexBuilder::new(&text).size_limit(1 << 20).build() {
            Ok(_) => out.push(text),
            Err(e) => cx.error(
                p.span(),
                &key,
                format!("`{text}` is not a regular expression: {e}"),
                Some("write the text to look for; escape . ( ) [ ] * + ? with a backslash".into()),
            ),
        }
    }
    out
}

pub(super) fn idle_stop(cx: &mut Ctx, raw: &RawIdleStop) -> IdleStopSettings {
    let d = IdleStopSettings::default();
    let mut problems = Vec::new();
    let mut after = optional_duration(cx, &mut problems, &raw.after, "idle_stop.after", "IDLE_STOP_AFTER", None);
    let mut warn_before = cx.duration(&raw.warn_before, "idle_stop.warn_before", d.warn_before);
    if let Some(a) = after {
        warn_before = warn_before.min(a / 2);
        if a < Duration::from_secs(60) && raw.after.is_none() {
            // From the environment a slip like "30s" for "30m" would stop a rented machine half
            // a minute after it went quiet: left out.
            problems.push(format!(
                "IDLE_STOP_AFTER (environment): {} is under a minute; the idle stop is off (write minutes, such as IDLE_STOP_AFTER=30m)",
                humantime::format_duration(a)
            ));
            after = None;
        }
    }
    let gpu_below = match &raw.gpu_below {
        None => d.gpu_below,
        Some(v) if (0.0..=100.0).contains(v.get_ref()) => *v.get_ref() as f32,
        Some(v) => {
            cx.error(v.span(), "idle_stop.gpu_below", "must be a percentage between 0 and 100".into(), None);
            d.gpu_below
        }
    };
    IdleStopSettings { after, warn_before, gpu_below, problems }
}
