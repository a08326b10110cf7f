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
    Logs {
        #[serde(default)]
        service: Option<String>,
        #[serde(default = "default_lines")]
        lines: usize,
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
}

fn default_lines() -> usize {
    100
}

pub fn error(code: &str, message: impl Into<String>) -> serde_json::Value {
    serde_json::json!({ "error": { "code": code, "message": message.into() } })
}
