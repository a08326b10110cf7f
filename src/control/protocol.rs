//! The control socket's protocol: one JSON request per connection, on one line; answers are
//! JSON lines. Most requests get one answer; `logs` with `follow` streams until the client
//! leaves; `shutdown` answers at once and keeps the connection open until gpubox has exited.
//!
//! Errors are `{"error": {"code": "...", "message": "..."}}`.

use serde::{Deserialize, Serialize};

use crate::logs::LogFilter;

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
