//! The `/.gpubox/` routes that every listener has: health, login, logout, the session API,
//! shared assets and a home page listing the services.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::{Extension, Form, Json};
use serde::Deserialize;
use serde_json::json;

use super::access::{self, Who};
use super::Site;
use crate::auth::Denial;
use crate::http::cookies::COOKIE;
use crate::http::headers::harden;
use crate::http::pages;
use crate::http::routes::RouteSet;

// `ASSETS`: every file built by build.rs from web/ (npm, esbuild) into OUT_DIR.
include!(concat!(env!("OUT_DIR"), "/assets.rs"));

/// gpubox's own routes, on every port. Only the first four are public.
pub fn routes() -> RouteSet<Arc<Site>> {
    RouteSet::new("gpubox")
        .public_get("/.gpubox/health", "/.gpubox/health", health)
        .public_get("/.gpubox/login", "/.gpubox/login", login_page)
        .public_post("/.gpubox/login", "/.gpubox/login", login_submit)
        .public_get("/.gpubox/assets/{file}", "/.gpubox/assets/gpubox.css", asset)
        .get("/.gpubox/", "/.gpubox/", home)
        .get("/.gpubox/session", "/.gpubox/session", session)
        .get("/.gpubox/api/services/{name}", "/.gpubox/api/services/app", service_view)
        .post("/.gpubox/logout", "/.gpubox/logout", logout)
        .get("/.gpubox/api/idle", "/.gpubox/api/idle", idle_state)
        .post("/.gpubox/api/idle/keep", "/.gpubox/api/idle/keep", idle_keep)
        .post("/.gpubox/api/alerts/test", "/.gpubox/api/alerts/test", alert_test)
        // `/.gpubox/` belongs to gpubox on every port: the rest of it is not found here rather
        // than passed to the upstream.
        .any("/.gpubox/{*rest}", "/.gpubox/none", reserved_not_found)
}

/// The only route that answers without credentials and says anything: that gpubox is alive.
pub async fn health() -> &'static str {
    "ok"
}

pub async fn asset(Path(file): Path<String>, headers: HeaderMap) -> Response {
    let Some(&(name, kind, body)) = ASSETS.iter().find(|(name, _, _)| *name == file) else {
        return access::api_error(StatusCode::NOT_FOUND, "not_found", "no such asset");
    };
    let plain =
        [(header::CONTENT_TYPE, kind), (header::CACHE_CONTROL, "max-age=300"), (header::VARY, "accept-encoding")];
    // The editor's bundle is most of a megabyte: over a slow link, gzip makes the first load a
    // third as long. Compressed once, on first use, and kept.
    if body.len() > 1024 && accepts_gzip(&headers) {
        if let Ok(gz) = tokio::task::spawn_blocking(move || gzipped(name, body)).await {
            let mut resp = (plain, axum::body::Bytes::from_owner(gz)).into_response();
            resp.headers_mut().insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            return resp;
        }
    }
    (plain, body).into_response()
}

fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers.get_all(header::ACCEPT_ENCODING).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).any(
        |part| {
            let mut it = part.split(';');
            let coding = it.next().unwrap_or("").trim();
            let refused =
                it.any(|p| matches!(p.trim().replace(' ', "").as_str(), "q=0" | "q=0.0" | "q=0.00" | "q=0.000"));
            (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !refused
        },
    )
}

fn gzipped(name: &'static str, body: &'static [u8]) -> std::sync::Arc<[u8]> {
    use std::collections::HashMap;
    use std::io::Write;
    use std::sync::{Arc, LazyLock, Mutex};
    type Cache = Mutex<HashMap<&'static str, Arc<[u8]>>>;
    static CACHE: LazyLock<Cache> = LazyLock::new(Default::default);
    if let Some(gz) = CACHE.lock().unwrap_or_else(|e| e.into_inner()).get(name) {
        return gz.clone();
    }
    let mut enc = flate2::write::GzEncoder::new(Vec::with_capacity(body.len() / 3), flate2::Compression::default());
    enc.write_all(body).expect("writing to a Vec cannot fail");
    let gz: Arc<[u8]> = enc.finish().expect("writing to a Vec cannot fail").into();
    CACHE.lock().unwrap_or_else(|e| e.into_inner()).insert(name, gz.clone());
    gz
}

/// A service's state and latest log lines, for the proxy's waiting page to poll.
pub async fn service_view(State(site): State<Arc<Site>>, Path(name): Path<String>) -> Response {
    let Some(status) = site.ctx.sup.status_of(&name) else {
        return access::api_error(StatusCode::NOT_FOUND, "unknown_service", &format!("no service named \"{name}\""));
    };
    let (headline, detail, _) = crate::proxy::describe(&status);
    let tail: Vec<String> = site.ctx.hub.tail(Some(&name), 40).into_iter().map(|l| l.text).collect();
    Json(json!({
        "name": name,
        "state": status.state,
        "ready": status.ready,
        "headline": headline,
        "detail": detail,
        "tail": tail,
    }))
    .into_response()
}

#[derive(Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

/// Only a path on this same listener may follow a login (see [`access::local_path`]).
fn safe_next(next: Option<&str>) -> String {
    next.and_then(access::local_path).unwrap_or_else(|| "/".to_string())
}

pub async fn login_page(State(site): State<Arc<Site>>, headers: HeaderMap, Query(q): Query<NextQuery>) -> Response {
    let next = safe_next(q.next.as_deref());
    if access::cookie(&headers, COOKIE).is_some_and(|id| site.ctx.auth.check_session(&id)) {
        return access::redirect(&next);
    }
    Html(pages::login(&site.shell(&headers, false), &next, "", None)).into_response()
}

#[derive(Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
    next: Option<String>,
}

pub async fn login_submit(
    State(site): State<Arc<Site>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let next = safe_next(form.next.as_deref());
    let auth = &site.ctx.auth;
    let (a, ip) = (auth.clone(), peer.ip());
    let device = access::cookie(&headers, crate::http::cookies::DEVICE_COOKIE);
    let username = form.username.clone();
    let result = tokio::task::spawn_blocking(move || a.login(&form.username, &form.password, ip, device.as_deref()))
        .await
        .unwrap_or(Err(Denial::Invalid));
    let shell = site.shell(&headers, false);
    match result {
        Ok(login) => {
            let mut resp = access::redirect(&next);
            let https = access::is_https(&headers);
            access::set_cookie(&mut resp, &login.session, auth.session_ttl.as_secs(), https);
            if let Some(d) = login.device {
                access::set_device_cookie(&mut resp, &d, https);
            }
            resp
        }
        Err(Denial::Throttled(wait)) => {
            let secs = wait.as_secs().max(1);
            let message = format!("Too many failed attempts from your address. Try again in {secs} s.");
            let mut resp =
                (StatusCode::TOO_MANY_REQUESTS, Html(pages::login(&shell, &next, &username, Some(&message))))
                    .into_response();
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
            resp
        }
        Err(_) => (
            StatusCode::UNAUTHORIZED,
            Html(pages::login(&shell, &next, &username, Some("Wrong username or password."))),
        )
            .into_response(),
    }
}

pub async fn logout(State(site): State<Arc<Site>>, Extension(who): Extension<Who>) -> Response {
    if let Who::Session(id) = who {
        // Revoking writes the sessions file: off the request threads.
        let auth = site.ctx.auth.clone();
        let _ = tokio::task::spawn_blocking(move || auth.logout(&id)).await;
    }
    let mut resp = access::redirect("/.gpubox/login");
    access::clear_cookie(&mut resp);
    resp
}

pub async fn session(State(site): State<Arc<Site>>, Extension(who): Extension<Who>) -> Json<serde_json::Value> {
    let method = match who {
        Who::Session(_) => "session",
        Who::Basic => "basic",
        Who::Bearer => "bearer",
    };
    Json(json!({
        "username": site.ctx.auth.username(),
        "method": method,
        "defaults_in_force": site.ctx.auth.defaults_in_force,
        "instance": site.ctx.instance,
    }))
}

/// The instance's home page (`/.gpubox/` on every port): a tile per service and app with its
/// state and public link, the machine's gauges, and what provisioning is doing. A script keeps
/// it fresh.
pub async fn home(State(site): State<Arc<Site>>, headers: HeaderMap) -> Html<String> {
    let ctx = &site.ctx;
    let mut shell = site.shell(&headers, true);
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("localhost");
    let scheme = if access::is_https(&headers) { "https" } else { "http" };
    // This very port, if it came through a tunnel: the tile shows the address it came to.
    let here = format!("{scheme}://{host}");
    for l in &mut shell.links {
        if l.here && !l.tunnels.contains(&here) {
            l.direct = Some(here.clone());
        }
    }
    let status = ctx.sup.status();
    let tunnels = ctx.tunnels.services();
    let live = ctx.hub.live(None);
    let mut tiles = Vec::new();
    for l in &shell.links {
        let s = status.iter().find(|s| s.name == l.name);
        let what = match ctx.apps.iter().find(|(n, _)| *n == l.name) {
            Some((_, describe)) => describe.clone(),
            None => "a service".to_string(),
        };
        tiles.push(super::home::Tile {
            name: l.name.clone(),
            what,
            port: Some(l.port),
            url: l.direct.clone(),
            tunnels: l.tunnels.clone(),
            state: s.map(|s| (s.state.as_str().to_string(), s.ready)),
            live: live.iter().find(|x| *x.service == *l.name).map(|x| x.text.clone()),
        });
    }
    for s in status.iter().filter(|s| !shell.links.iter().any(|l| l.name == s.name)) {
        let what = match tunnels.iter().find(|t| t.service == s.name) {
            Some(crate::config::Tunnel { serves: Some((name, port)), .. }) => {
                format!("the quick tunnel to {name} (port {port})")
            }
            Some(_) => "the named tunnel (Cloudflare)".into(),
            None if s.oneshot => "runs once".into(),
            None => "a service without a port".into(),
        };
        tiles.push(super::home::Tile {
            name: s.name.clone(),
            what,
            port: None,
            url: None,
            tunnels: Vec::new(),
            state: Some((s.state.as_str().to_string(), s.ready)),
            live: live.iter().find(|x| *x.service == *s.name).map(|x| x.text.clone()),
        });
    }
    let machine = ctx.machine.get(&ctx.workspace).await;
    // The sparklines: the last 15 minutes, thinned to at most 720 points.
    let history = ctx.monitor.metrics.query(std::time::Duration::from_secs(15 * 60)).columns;
    Html(super::home::page(&shell, &tiles, ctx.tunnels.problem().as_deref(), &machine, &history))
}

/// The idle stop's state, for the banner every page shows while a stop is near.
pub async fn idle_state(State(site): State<Arc<Site>>) -> Json<crate::alerts::idle::IdleState> {
    Json(site.ctx.monitor.idle.state())
}

/// "Keep running": the idle stop starts counting again.
pub async fn idle_keep(State(site): State<Arc<Site>>) -> Json<crate::alerts::idle::IdleState> {
    site.ctx.hub.event("idle stop: \"keep running\" pressed; counting starts again");
    Json(site.ctx.monitor.idle.keep())
}

/// Sends a test alert to every target (the status page's "Send a test alert"); the result shows
/// in the alerts list.
pub async fn alert_test(State(site): State<Arc<Site>>) -> Json<serde_json::Value> {
    let alerts = &site.ctx.monitor.alerts;
    // Every press is sent (not held back as a repeat, nor counted against the hourly limit).
    alerts.raise(
        crate::alerts::Alert::new(
            "test",
            crate::alerts::Level::Info,
            None,
            "a test alert".into(),
            "Sent from the status page to check that alerts reach you.".into(),
        )
        .once(),
    );
    Json(serde_json::json!({ "targets": alerts.settings.targets.len() }))
}

/// Not one of gpubox's routes (nor, on an app's port, the app's).
pub async fn reserved_not_found() -> Response {
    let mut resp = access::api_error(StatusCode::NOT_FOUND, "not_found", "no such gpubox route");
    harden(resp.headers_mut());
    resp
}

/// A public route asked with a method it does not have (after the login guard).
pub async fn method_not_allowed(allow: String) -> Response {
    let mut resp =
        access::api_error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "this route does not take that method");
    if let Ok(v) = HeaderValue::from_str(&allow) {
        resp.headers_mut().insert(header::ALLOW, v);
    }
    harden(resp.headers_mut());
    resp
}

/// Headers for gpubox's own pages (not for proxied apps, whose headers are their own).
pub async fn security_headers(mut resp: Response) -> Response {
    harden(resp.headers_mut());
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_on_this_site() {
        assert_eq!(safe_next(Some("/a?b=1")), "/a?b=1");
        assert_eq!(safe_next(Some("//evil.example/")), "/");
        assert_eq!(safe_next(Some("/\\evil.example")), "/");
        assert_eq!(safe_next(Some("https://evil.example/")), "/");
        assert_eq!(safe_next(Some("/\t/evil.example/")), "/", "browsers drop tabs: //evil");
        assert_eq!(safe_next(Some("/a\\b")), "/");
        assert_eq!(safe_next(Some("/a\nb")), "/");
        assert_eq!(safe_next(Some("/%09/evil")), "/%09/evil", "escaped, it stays a path");
        assert_eq!(safe_next(None), "/");
    }
}
