//! The control socket's protocol: one JSON request per connection, on one line; answers are
//! JSON lines. Most requests get one answer; `logs` with `follow` streams until the client
//! leaves; `shutdown` answers at once and keeps the connection open until gpubox has exited.
//!
//! Errors are `{"error": {"code": "...", "message": "..."}}`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::http::routes::SiteRoutes;
use crate::logs::{LiveLine, LogFilter, LogLine};
use crate::supervisor::ServiceStatus;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "cmd", rename_all = "lowercase")]
pub enum Request {
    Ping,
    Status,
    Routes,
    Health,
    /// The same filters and search as the logs app's `/api/lines`; the filter's `limit` is how
    /// many of the latest lines to send first (default 100; 0: none, only what follows).
    Logs {
        #[serde(default)]
        filter: LogFilter,
        /// Keep sending new lines as they come (context is not given while following).
        #[serde(default)]
        follow: bool,
    },
    Start {
        service: String,
    },
    Stop {
        service: String,
    },
    Restart {
        service: String,
    },
    Shutdown,
    /// Reads the configuration again and applies what changed in the services (`gpubox reload`).
    Reload,
}

impl Request {
    /// `logs` without filters or search.
    pub fn logs(service: Option<&str>, lines: usize, follow: bool) -> Request {
        let filter = LogFilter {
            services: service.map(|s| vec![s.to_string()]).unwrap_or_default(),
            limit: Some(lines),
            ..LogFilter::default()
        };
        Request::Logs { filter, follow }
    }
}

pub fn error(code: &str, message: impl Into<String>) -> serde_json::Value {
    serde_json::json!({ "error": { "code": code, "message": message.into() } })
}

/// Facts about this gpubox process, shown by `gpubox status`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Info {
    pub version: String,
    pub pid: u32,
    pub pid1: bool,
    #[serde(skip, default = "SystemTime::now")]
    pub started: SystemTime,
    pub config: String,
    pub control: PathBuf,
    pub workspace: PathBuf,
    pub log_dir: PathBuf,
}

/// The answer to `ping`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pong {
    pub pid: u32,
    pub version: String,
}

/// The answer to `status`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatusAnswer {
    pub gpubox: Gpubox,
    pub services: Vec<ServiceStatus>,
    /// The apps gpubox serves itself, and where.
    #[serde(default)]
    pub apps: Vec<AppAnswer>,
    /// What each service is drawing right now (a progress bar), by service.
    pub live: BTreeMap<String, String>,
    /// The tunnels' public addresses (those cloudflared has said so far).
    #[serde(default)]
    pub tunnels: Vec<TunnelAnswer>,
    /// Why no tunnel runs although one was asked for.
    #[serde(default)]
    pub tunnel_problem: Option<String>,
}

/// A public address through a tunnel: the port it reaches and the service that runs it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TunnelAnswer {
    pub port: u16,
    pub url: String,
    pub via: String,
}

/// A built-in app of `status`: its service name, which app, and where it listens.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AppAnswer {
    pub name: String,
    pub app: String,
    pub describe: String,
    pub bind: std::net::IpAddr,
    pub port: u16,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Gpubox {
    pub info: Info,
    pub uptime_ms: u64,
    pub shutting_down: bool,
    pub orphans_reaped: u64,
    pub log_ring_bytes: u64,
    pub log_ring_lines: u64,
}

/// The answer to `health`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HealthAnswer {
    pub healthy: bool,
    pub problems: Vec<String>,
}

/// The answer to `start`, `stop` and `restart`: the service as it is now.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServiceAnswer {
    pub service: ServiceStatus,
}

/// The answer to `routes`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RoutesAnswer {
    pub sites: Vec<SiteRoutes>,
}

/// The first answer to `shutdown` (the connection then stays open until gpubox has exited).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShutdownAnswer {
    pub pid: u32,
}

/// The answer to `reload`: what changed, by service name. A configuration with errors is
/// answered with the error `config` and changes nothing.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ReloadAnswer {
    /// Where the configuration was read from (the main file and what added services).
    pub sources: String,
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub changed: Vec<String>,
    pub unchanged: Vec<String>,
    /// Ports opened and closed.
    pub ports: Vec<String>,
    /// Changes that take effect only when gpubox starts again (settings outside the services).
    pub not_applied: Vec<String>,
    /// What went wrong after the change began (a port that could not be opened again).
    pub failed: Vec<String>,
}

/// One message of a `logs` answer, in order: lines (matches, and context lines around them),
/// then `end` unless following; while following, lines as they come, gaps and live lines.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum LogsMessage {
    Line {
        line: LogLine,
        /// Around a match rather than a match.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        context: bool,
        /// With context lines: this line does not follow the previous one shown (grep prints
        /// `--` before it).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        new_group: bool,
    },
    /// Lines up to and including `before` left memory before this reader got them.
    Gap {
        gap: Gap,
    },
    Live {
        live: LiveLine,
    },
    End {
        end: bool,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Gap {
    pub before: u64,
    pub log_dir: PathBuf,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::ExitInfo;

    /// What the server writes, the CLI reads back as the same values.
    #[test]
    fn answers_read_back_as_they_were_written() {
        for exit in [ExitInfo::Code(3), ExitInfo::Signal(15), ExitInfo::Signal(9)] {
            let json = serde_json::to_string(&exit).unwrap();
            assert_eq!(serde_json::from_str::<ExitInfo>(&json).unwrap(), exit, "{json}");
        }
        let line = LogLine {
            seq: 7,
            time_ms: 1,
            service: "app".into(),
            stream: crate::logs::Stream::Stderr,
            text: "x".into(),
        };
        let messages = [
            LogsMessage::Line { line: line.clone(), context: true, new_group: true },
            LogsMessage::Line { line, context: false, new_group: false },
            LogsMessage::Gap { gap: Gap { before: 3, log_dir: "/l".into() } },
            LogsMessage::End { end: true },
        ];
        for m in messages {
            let json = serde_json::to_string(&m).unwrap();
            let back = serde_json::to_string(&serde_json::from_str::<LogsMessage>(&json).unwrap()).unwrap();
            assert_eq!(back, json);
        }
        let request = Request::logs(Some("app"), 5, true);
        let json = serde_json::to_string(&request).unwrap();
        assert_eq!(serde_json::from_str::<Request>(&json).unwrap(), request);
    }
}
