//! The logs app (port 7030): every service's output, live and searchable, and the instance's
//! status. Read-only: every route answers GET (and HEAD) only. The API is in docs/logs-app.md.

mod api;
pub mod machine;
mod monitor;
mod tail;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Html;

use super::ShellFn;
use crate::http::routes::RouteSet;
use crate::logs::Hub;
use crate::supervisor::Supervisor;

pub struct LogsApp {
    pub hub: Hub,
    pub sup: Arc<Supervisor>,
    pub shell: ShellFn,
    pub instance: String,
    pub workspace: PathBuf,
    pub started: Instant,
    machine: Arc<machine::Cache>,
    /// HTTPS: the certificate's source and fingerprint.
    pub tls: Option<(String, String)>,
    /// The tunnels, for why none runs when one was asked for.
    pub tunnels: Option<Arc<crate::tunnels::Tunnels>>,
    /// The history (`/api/metrics`), the alerts sent (`/api/alerts`), the idle stop.
    pub monitor: Option<Arc<crate::alerts::Monitor>>,
}

impl LogsApp {
    pub fn new(
        hub: Hub,
        sup: Arc<Supervisor>,
        shell: ShellFn,
        instance: &str,
        workspace: PathBuf,
        tls: Option<(String, String)>,
        machine: Arc<machine::Cache>,
    ) -> LogsApp {
        LogsApp {
            tls,
            hub,
            sup,
            shell,
            instance: instance.to_string(),
            workspace,
            started: Instant::now(),
            machine,
            tunnels: None,
            monitor: None,
        }
    }
}

/// Starts following the extra log files (`files = [...]`): globs are looked at again every 2 s.
pub fn follow_files(hub: &Hub, patterns: &[String]) {
    if !patterns.is_empty() {
        tail::start(hub.clone(), patterns.to_vec());
    }
}

/// Every route of the app. Read-only: GET (and HEAD) only.
pub fn routes() -> RouteSet<Arc<LogsApp>> {
    RouteSet::new("logs")
        .get("/", "/", page)
        .get("/api/lines", "/api/lines?limit=5", api::lines)
        .get("/api/stream", "/api/stream?after=0&once=1", api::stream)
        .get("/api/history", "/api/history?service=gpubox", api::history)
        .get("/api/download", "/api/download?service=gpubox", api::download)
        .get("/api/status", "/api/status", api::status)
        .get("/api/metrics", "/api/metrics?range=15m", monitor::metrics)
        .get("/api/alerts", "/api/alerts", monitor::alerts)
}

async fn page(State(app): State<Arc<LogsApp>>, headers: HeaderMap) -> Html<String> {
    Html((app.shell)(&headers).app("Logs", "logs"))
}
