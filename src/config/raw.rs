//! The configuration file as written: every value still carries its place in the file, so that
//! validation (in `validate.rs`) can name the line of whatever it rejects.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub workspace: Option<Spanned<String>>,
    pub name: Option<Spanned<String>>,
    pub state_dir: Option<Spanned<String>>,
    #[serde(default)]
    pub logs: RawLogs,
    #[serde(default)]
    pub auth: RawAuth,
    #[serde(default)]
    pub http: RawHttp,
    #[serde(default)]
    pub tls: RawTls,
    #[serde(default)]
    pub tunnels: RawTunnels,
    #[serde(default)]
    pub services: BTreeMap<Spanned<String>, RawService>,
    #[serde(default)]
    pub provision: RawProvision,
    #[serde(default)]
    pub metrics: RawMetrics,
    #[serde(default)]
    pub alerts: RawAlerts,
    #[serde(default)]
    pub idle_stop: RawIdleStop,
    /// Where to write the environment for SSH sessions (`/etc/environment` in the images).
    pub export_env: Option<Spanned<String>>,
    /// Folders (relative to the workspace) created at start if missing: a fresh disk's layout.
    #[serde(default)]
    pub folders: Vec<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHttp {
    pub idle_timeout: Option<Spanned<toml::Value>>,
    pub max_connections: Option<Spanned<u32>>,
    #[serde(default)]
    pub allowed_hosts: Vec<Spanned<String>>,
    #[serde(default)]
    pub trusted_proxies: Vec<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    pub enabled: Option<Spanned<toml::Value>>,
    pub cert: Option<Spanned<String>>,
    pub key: Option<Spanned<String>>,
}

/// `[tunnels]`: Cloudflare tunnels (see `config/tunnels.rs`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTunnels {
    pub quick: Option<Spanned<toml::Value>>,
    pub token: Option<Spanned<String>>,
    pub program: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProvision {
    pub manifest: Option<Spanned<String>>,
    pub script: Option<Spanned<String>>,
    pub models_dir: Option<Spanned<String>>,
    pub extensions_dir: Option<Spanned<String>>,
    pub python: Option<Spanned<String>>,
    pub parallel: Option<Spanned<u32>>,
    pub bandwidth: Option<Spanned<toml::Value>>,
}

/// `[metrics]`, `[alerts]`, `[idle_stop]` (see `config/monitor.rs`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMetrics {
    pub interval: Option<Spanned<toml::Value>>,
    pub keep: Option<Spanned<toml::Value>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAlerts {
    pub webhook: Option<Spanned<String>>,
    pub ntfy: Option<Spanned<String>>,
    pub ntfy_token: Option<Spanned<String>>,
    pub discord: Option<Spanned<String>>,
    pub slack: Option<Spanned<String>>,
    pub disk_percent: Option<Spanned<u32>>,
    pub gpu_idle: Option<Spanned<toml::Value>>,
    pub repeat_after: Option<Spanned<toml::Value>>,
    pub link: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIdleStop {
    pub after: Option<Spanned<toml::Value>>,
    pub warn_before: Option<Spanned<toml::Value>>,
    pub gpu_below: Option<Spanned<f64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLogs {
    pub dir: Option<Spanned<String>>,
    pub max_file_size: Option<Spanned<toml::Value>>,
    pub max_files: Option<Spanned<u32>>,
    pub ring_size: Option<Spanned<toml::Value>>,
    pub stdout: Option<Spanned<bool>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAuth {
    pub username: Option<Spanned<String>>,
    pub password: Option<Spanned<String>>,
    pub password_hash: Option<Spanned<String>>,
    pub token: Option<Spanned<String>>,
    pub session_ttl: Option<Spanned<toml::Value>>,
    pub max_failures: Option<Spanned<u32>>,
    pub lockout: Option<Spanned<toml::Value>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawService {
    /// `false` (or a string such as `"${ENABLE_SSH:-false}"` that expands to false) leaves the
    /// service out, as if it were not written.
    pub enabled: Option<Spanned<toml::Value>>,
    pub app: Option<Spanned<String>>,
    pub port: Option<Spanned<toml::Value>>,
    pub bind: Option<Spanned<String>>,
    pub upstream: Option<Spanned<String>>,
    pub max_body: Option<Spanned<toml::Value>>,
    /// A quick tunnel for this port when `[tunnels] quick` is on.
    pub tunnel: Option<Spanned<toml::Value>>,
    pub command: Option<Spanned<toml::Value>>,
    pub cwd: Option<Spanned<String>>,
    #[serde(default)]
    pub env: BTreeMap<String, Spanned<String>>,
    pub user: Option<Spanned<String>>,
    pub restart: Option<Spanned<String>>,
    pub ready: Option<Spanned<String>>,
    #[serde(default)]
    pub depends_on: Vec<Spanned<String>>,
    pub stop_signal: Option<Spanned<String>>,
    pub stop_timeout: Option<Spanned<toml::Value>>,
    pub tty: Option<Spanned<bool>>,
    pub oneshot: Option<Spanned<bool>>,
    pub restart_delay: Option<Spanned<toml::Value>>,
    pub restart_delay_max: Option<Spanned<toml::Value>>,
    pub stable_after: Option<Spanned<toml::Value>>,
    /// `app = "logs"`: extra log files (globs) to show.
    pub files: Option<Spanned<Vec<Spanned<String>>>>,
    /// `app = "terminal"`: the shell, how long a session without a tab may stay idle, scrollback.
    pub shell: Option<Spanned<String>>,
    pub idle_timeout: Option<Spanned<toml::Value>>,
    pub scrollback: Option<Spanned<u32>>,
    /// Log lines (regular expressions) that send an alert when this service prints one.
    #[serde(default)]
    pub alert_on: Vec<Spanned<String>>,
}

/// Every key a service accepts, for "did you mean" hints.
pub const SERVICE_KEYS: &[&str] = &[
    "enabled",
    "app",
    "port",
    "bind",
    "upstream",
    "max_body",
    "tunnel",
    "command",
    "cwd",
    "env",
    "user",
    "restart",
    "ready",
    "depends_on",
    "stop_signal",
    "stop_timeout",
    "tty",
    "oneshot",
    "restart_delay",
    "restart_delay_max",
    "stable_after",
    "files",
    "shell",
    "idle_timeout",
    "scrollback",
    "alert_on",
];
pub const TOP_KEYS: &[&str] = &[
    "workspace",
    "name",
    "state_dir",
    "export_env",
    "folders",
    "logs",
    "auth",
    "http",
    "tls",
    "tunnels",
    "services",
    "provision",
    "metrics",
    "alerts",
    "idle_stop",
];
pub const TLS_KEYS: &[&str] = &["enabled", "cert", "key"];
pub const TUNNEL_KEYS: &[&str] = &["quick", "token", "program"];
pub const HTTP_KEYS: &[&str] = &["idle_timeout", "max_connections", "allowed_hosts", "trusted_proxies"];
pub const PROVISION_KEYS: &[&str] =
    &["manifest", "script", "models_dir", "extensions_dir", "python", "parallel", "bandwidth"];
pub const AUTH_KEYS: &[&str] =
    &["username", "password", "password_hash", "token", "session_ttl", "max_failures", "lockout"];
pub const METRICS_KEYS: &[&str] = &["interval", "keep"];
pub const ALERT_KEYS: &[&str] =
    &["webhook", "ntfy", "ntfy_token", "discord", "slack", "disk_percent", "gpu_idle", "repeat_after", "link"];
pub const IDLE_STOP_KEYS: &[&str] = &["after", "warn_before", "gpu_below"];
pub const LOG_KEYS: &[&str] = &["dir", "max_file_size", "max_files", "ring_size", "stdout"];
