//! What the proxy answers while its service is not ready, or does not answer: a page that says
//! so with the service's latest log lines (and reloads itself until the app is up), or, for API
//! clients, 503 with a JSON body and Retry-After.

use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};

use super::Proxy;
use crate::http::api_error;
use crate::http::pages;
use crate::human::duration as human;
use crate::supervisor::{ServiceStatus, State};

const TAIL: usize = 40;

/// `Some(page)` when the service is not ready to take requests.
pub fn unless_ready(proxy: &Proxy, req: &Request) -> Option<Response> {
    if proxy.sup.is_ready(proxy.service()) != Some(false) {
        return None;
    }
    let status = proxy.sup.status_of(proxy.service())?;
    let (headline, detail, refresh) = describe(&status);
    Some(respond(proxy, req.headers(), &headline, &detail, refresh, StatusCode::SERVICE_UNAVAILABLE, code(&status)))
}

/// The error code API clients get for a service that is not ready, by its state.
pub fn code(status: &ServiceStatus) -> &'static str {
    match status.state {
        State::Waiting => "waiting",
        State::Starting | State::Running => "starting",
        State::Backoff => "restarting",
        State::Stopping | State::Stopped => "stopped",
        State::Exited | State::Failed | State::Done => "exited",
    }
}

/// What to tell a person about a service that is not ready: a headline, a detail, and whether
/// waiting makes sense (the page keeps refreshing) or someone must act.
pub fn describe(status: &ServiceStatus) -> (String, String, bool) {
    let name = &status.name;
    match status.state {
        State::Waiting => (format!("{name} is waiting for the services it depends on"), String::new(), true),
        State::Starting | State::Running if !status.ready => (
            format!("{name} is starting"),
            "This page shows the app by itself as soon as it answers.".to_string(),
            true,
        ),
        State::Starting | State::Running => (format!("{name} is ready"), String::new(), true),
        State::Backoff => (
            format!("{name} stopped unexpectedly and is restarting"),
            status.restart_delay_ms.map_or(String::new(), |d| {
                format!(
                    "Next start in {}. Last exit: {}.",
                    human(std::time::Duration::from_millis(d)),
                    exit_text(status)
                )
            }),
            true,
        ),
        State::Stopping | State::Stopped => {
            (format!("{name} is stopped"), format!("Start it with `gpubox start {name}` in a terminal."), false)
        }
        State::Exited | State::Failed | State::Done => (
            format!("{name} has stopped and will not restart by itself"),
            format!("Last exit: {}. Restart it with `gpubox restart {name}`.", exit_text(status)),
            false,
        ),
    }
}

fn exit_text(status: &ServiceStatus) -> String {
    status.last_exit.map_or("none yet".to_string(), |e| e.to_string())
}

/// The service is up by its state, but its upstream did not take the connection.
pub fn unreachable(proxy: &Proxy, headers: &HeaderMap, error: &str) -> Response {
    let headline = format!("{} is not answering", proxy.service());
    let detail = format!("gpubox could not reach {}: {error}. This page tries again by itself.", proxy.upstream());
    respond(proxy, headers, &headline, &detail, true, StatusCode::BAD_GATEWAY, "upstream_unreachable")
}

fn respond(
    proxy: &Proxy,
    headers: &HeaderMap,
    headline: &str,
    detail: &str,
    refresh: bool,
    status: StatusCode,
    code: &str,
) -> Response {
    let wants_html = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("text/html"));
    let mut resp = if wants_html {
        let log: Vec<String> = proxy.hub.tail(Some(proxy.service()), TAIL).into_iter().map(|l| l.text).collect();
        let shell = (proxy.shell)(headers);
        let service = proxy.service();
        let mut page = (status, Html(pages::waiting(&shell, service, headline, detail, &log, refresh))).into_response();
        crate::http::headers::harden(page.headers_mut());
        page
    } else {
        api_error(status, code, &format!("{headline}. {detail}"))
    };
    resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}
