//! The control socket's protocol: one JSON request per connection, on one line; answers are
//! JSON lines. Most requests get one answer; `logs` with `follow` streams until the client
//! leaves; `shutdown` answers at once and keeps the connection open until gpubox has exited.
//!
//! Errors are `{"error": {"code": "...", "message": "..."}}`.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "cmd", rename_all = "lowercase")]
pub enum Request {
    Ping,
    Status,
    Routes,
    Health,
    /// The same filters and search as the logs app's `/api/lines`.
    Logs {
        /// One service, or several separated by commas; none: all.
        #[serde(default)]
        service: Option<String>,
        #[serde(default = "default_lines")]
        lines: usize,
        #[serde(default)]
        follow: bool,
        /// Streams separated by commas (stdout, stderr, tty, event); none: all.
        #[serde(default)]
        stream: Option<String>,
        /// Only lines containing this (case-insensitive unless `case`), or matching it (`regex`).
        #[serde(default)]
        grep: Option<String>,
        #[serde(default)]
        regex: bool,
        #[serde(default)]
        case: bool,
        /// With `grep`: lines of context around each match (not while following).
        #[serde(default)]
        context: usize,
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
}

impl Request {
    /// `logs` without filters or search.
    pub fn logs(service: Option<&str>, lines: usize, follow: bool) -> Request {
        Request::Logs {
            service: service.map(String::from),
            lines,
            follow,
            stream: None,
            grep: None,
            regex: false,
            case: false,
            context: 0,
        }
    }
}

fn default_lines() -> usize {
    100
}

pub fn error(code: &str, message: impl Into<String>) -> serde_json::Value {
    serde_json::json!({ "error": { "code": code, "message": message.into() } })
}
