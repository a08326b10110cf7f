//! The history, the alerts and the idle stop as the status page and scripts read them:
//! `GET /api/metrics?range=15m|1h|6h|24h` and `GET /api/alerts` (docs/logs-app.md).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;

use super::api::json_response;
use super::LogsApp;
use crate::http::{ApiError, Params};

#[derive(Deserialize)]
pub struct RangeQuery {
    #[serde(default)]
    range: Option<String>,
}

fn monitor(app: &LogsApp) -> Result<&Arc<crate::alerts::Monitor>, ApiError> {
    app.monitor.as_ref().ok_or_else(|| {
        ApiError::new(axum::http::StatusCode::SERVICE_UNAVAILABLE, "unavailable", "the history is not kept here")
    })
}

/// The history over `range` (a duration: `15m`, `1h`, `6h`, `24h`, `90s`…; 1 h when not given),
/// thinned to at most 720 points, as columns: `t` (seconds since the Unix epoch) and one array
/// per series, `null` where nothing was read.
pub async fn metrics(State(app): State<Arc<LogsApp>>, Params(q): Params<RangeQuery>) -> Result<Response, ApiError> {
    let m = monitor(&app)?;
    let range = match q.range.as_deref().map(str::trim).filter(|r| !r.is_empty()) {
        None => Duration::from_secs(3600),
        Some(r) => humantime::parse_duration(r).ok().filter(|d| *d >= Duration::from_secs(1)).ok_or_else(|| {
            ApiError::bad_request("bad_range", format!("`{r}` is not a range: write 15m, 1h, 6h or 24h"))
        })?,
    };
    let answer = m.metrics.query(range);
    Ok(json_response(serde_json::to_string(&answer).unwrap_or_default()))
}

/// The alerts raised (sent, or held back and why), newest first, the targets they go to, and
/// the idle stop's state.
pub async fn alerts(State(app): State<Arc<LogsApp>>) -> Result<Response, ApiError> {
    let m = monitor(&app)?;
    let s = &m.alerts.settings;
    let body = serde_json::json!({
        "targets": s.targets,
        "disk_percent": s.disk_percent,
        "gpu_idle_s": s.gpu_idle.map(|d| d.as_secs()),
        "repeat_after_s": s.repeat_after.as_secs(),
        "patterns": s.patterns,
        "alerts": m.alerts.records(),
        "idle": m.idle.state(),
    });
    Ok(json_response(body.to_string()))
}
