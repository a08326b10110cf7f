//! The logs app (port 7030): every service's output, live and searchable, and the instance's
//! status. Read-only: every route answers GET (and HEAD) only. The API is in docs/logs-app.md.

mod api;
mod machine;
mod tail;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Html;
use axum::routing::get;
use axum::Router;

use super::ShellFn;
use crate::http::RouteSpec;
use crate::logs::Hub;
use crate::supervisor::Supervisor;

pub struct LogsApp {
    pub hub: Hub,
    pub sup: Arc<Supervisor>,
    pub shell: ShellFn,
    pub instance: String,
    pub workspace: PathBuf,
    pub started: Instant,
    machine: machine::Cache,
}

const fn route(path: &'static str, example: &'static str) -> RouteSpec {
    RouteSpec { method: "GET", path, example, public: false, websocket: false, owner: "logs" }
}

/// Every route of the app, for the gateway's table (and the tests that walk it).
pub const ROUTES: &[RouteSpec] = &[
    route("/", "/"),
    route("/api/lines", "/api/lines?limit=5"),
    route("/api/stream", "/api/stream?after=0&once=1"),
    route("/api/history", "/api/history?service=gpubox"),
    route("/api/download", "/api/download?service=gpubox"),
    route("/api/status", "/api/status"),
];

impl LogsApp {
    pub fn new(hub: Hub, sup: Arc<Supervisor>, shell: ShellFn, instance: &str, workspace: PathBuf) -> LogsApp {
        LogsApp {
            hub,
            sup,
            shell,
            instance: instance.to_string(),
            workspace,
            started: Instant::now(),
            machine: machine::Cache::default(),
        }
    }
}

/// Starts following the extra log files (`files = [...]`): globs are looked at again every 2 s.
pub fn follow_files(hub: &Hub, patterns: &[String]) {
    if !patterns.is_empty() {
        tail::start(hub.clone(), patterns.to_vec());
    }
}

pub fn router(app: Arc<LogsApp>) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/api/lines", get(api::lines))
        .route("/api/stream", get(api::stream))
        .route("/api/history", get(api::history))
        .route("/api/download", get(api::download))
        .route("/api/status", get(api::status))
        .with_state(app)
}

async fn page(State(app): State<Arc<LogsApp>>, headers: HeaderMap) -> Html<String> {
    let shell = (app.shell)(&headers);
    Html(shell.page(
        "Logs",
        "<link rel=\"stylesheet\" href=\"/.gpubox/assets/logs.css\"><div id=\"logs-app\"></div>\
<script src=\"/.gpubox/assets/logs.js\"></script>",
    ))
}
