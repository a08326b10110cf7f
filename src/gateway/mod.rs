//! The gateway: one listener per port, auth in front of everything, the reserved `/.gpubox/`
//! prefix, and on each port either the reverse proxy to a service or a built-in app. It
//! implements no app itself.

pub mod access;
mod home;
pub mod hosts;
mod links;
mod reserved;
pub mod routes;
pub mod tls;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderMap;
use axum::middleware::{from_fn, from_fn_with_state, map_response};
use axum::Router;

use crate::apps::logs as logs_app;
use crate::auth::Auth;
use crate::config::{AppKind, Config, Listen, Upstream};
use crate::http::pages;
pub use crate::http::routes::{Routed, SiteRoutes};
pub use crate::http::RouteSpec;
use crate::logs::Hub;
use crate::proxy::Proxy;
use crate::supervisor::Supervisor;

/// What every listener shares.
pub struct Ctx {
    pub instance: String,
    /// Every exposed service: name and listener, in port order (changed by a reload).
    pub ports: std::sync::RwLock<Vec<(String, Listen)>>,
    pub auth: Arc<Auth>,
    pub sup: Arc<Supervisor>,
    pub hub: Hub,
    /// `?token=` logins are on (a token is configured).
    pub token_login: bool,
    /// The names this instance answers to.
    pub hosts: hosts::Hosts,
    /// What the apps need done when gpubox stops (the terminal hangs up its shells).
    pub on_stop: std::sync::Mutex<Vec<Box<dyn FnOnce() + Send>>>,
    /// HTTPS: where the certificate came from and its fingerprint, for the status page.
    pub tls: Option<(String, String)>,
    /// Proxies whose word on the client's address is believed (`[http] trusted_proxies`).
    trusted: Vec<crate::config::units::Cidr>,
    /// The same with loopback, believed while a named tunnel is configured: its cloudflared
    /// reaches the ports the dashboard names (`http://localhost:7010`) from 127.0.0.1. (Quick
    /// tunnels come in on loopback ports of their own instead, where they alone are believed.)
    trusted_with_loopback: Vec<crate::config::units::Cidr>,
    /// The tunnels' public addresses.
    pub tunnels: Arc<crate::tunnels::Tunnels>,
    /// The built-in apps by name, with what each serves, for the home page.
    pub apps: Vec<(String, String)>,
    /// The machine as the container sees it (CPU, memory, disk, GPUs), for the home page.
    /// One probe for both (`nvidia-smi` runs once per 1.5 s at most, however many tabs ask).
    pub machine: Arc<crate::apps::logs::machine::Cache>,
    pub workspace: std::path::PathBuf,
    /// The history, the alerts and the idle stop.
    pub monitor: Arc<crate::alerts::Monitor>,
    /// gpubox's own state: where the tunnels' origin addresses are written.
    pub state_dir: std::path::PathBuf,
}

impl Ctx {
    /// The proxies whose word on the client's address is believed now.
    pub fn trusted(&self) -> &[crate::config::units::Cidr] {
        if self.tunnels.named() {
            &self.trusted_with_loopback
        } else {
            &self.trusted
        }
    }
}

/// One listener: the service behind it and its routes.
pub struct Site {
    pub ctx: Arc<Ctx>,
    pub name: String,
    pub port: u16,
    pub routes: Vec<RouteSpec>,
    pub proxy: Option<Arc<Proxy>>,
    /// A built-in app's routes (mounted beside gpubox's own).
    pub app: Option<Routed>,
}

impl Site {
    /// Whether a path on this listener goes to the upstream (everything but `/.gpubox/`).
    pub fn proxied(&self, path: &str) -> bool {
        self.proxy.is_some() && !path.starts_with("/.gpubox/")
    }

    /// The page header for a request: links use the public address when the cloud gives one.
    pub fn shell(&self, headers: &HeaderMap, logged_in: bool) -> pages::Shell {
        shell_for(&self.ctx, self.port, headers, logged_in)
    }
}

fn shell_for(ctx: &Ctx, port: u16, headers: &HeaderMap, logged_in: bool) -> pages::Shell {
    // Before the login a page names no service and no port: the login page tells a stranger
    // nothing about what runs here.
    if !logged_in {
        let hidden =
            crate::http::cookies::cookie(headers, crate::http::cookies::BANNER_COOKIE).is_some_and(|v| v == "hidden");
        return pages::Shell {
            instance: ctx.instance.clone(),
            links: Vec::new(),
            warn_defaults: ctx.auth.defaults_in_force && !hidden,
            logged_in,
        };
    }
    {
        let host = headers
            .get("x-forwarded-host")
            .or_else(|| headers.get(axum::http::header::HOST))
            .and_then(|v| v.to_str().ok())
            .unwrap_or("localhost");
        let https = access::is_https(headers);
        let lookup = |n: &str| std::env::var(n).ok();
        // A page that came through a tunnel links the other ports through theirs (the same kind
        // of tunnel first): their direct addresses may not be reachable from where this browser
        // is. A port with neither gets no link (its port on the tunnel's name leads nowhere).
        let came_through = ctx.tunnels.link_of_host(host);
        let all_tunnels = ctx.tunnels.links();
        let links = ctx
            .ports
            .read()
            .expect("ports lock")
            .iter()
            .filter_map(|(name, l)| {
                let mut tunnels: Vec<&crate::tunnels::Link> = all_tunnels.iter().filter(|t| t.port == l.port).collect();
                if let Some(c) = &came_through {
                    tunnels.sort_by_key(|t| {
                        (t.via == crate::config::NAMED_TUNNEL) != (c.via == crate::config::NAMED_TUNNEL)
                    });
                }
                let tunnels: Vec<String> = tunnels.into_iter().map(|t| t.url.clone()).collect();
                let seen = links::Seen { host: came_through.is_none().then_some(host), https };
                let direct = links::direct_url(l.port, &seen, ctx.tls.is_some(), &lookup);
                let url = match (l.port == port, came_through.is_some(), tunnels.first(), &direct) {
                    (true, ..) => "/".to_string(),
                    (false, true, Some(t), _) | (false, _, Some(t), None) => t.clone(),
                    (false, _, _, Some(d)) => d.clone(),
                    (false, _, None, None) => return None,
                };
                Some(pages::Link { name: name.clone(), port: l.port, url, here: l.port == port, direct, tunnels })
            })
            .collect();
        let hidden =
            crate::http::cookies::cookie(headers, crate::http::cookies::BANNER_COOKIE).is_some_and(|v| v == "hidden");
        pages::Shell {
            instance: ctx.instance.clone(),
            links,
            warn_defaults: ctx.auth.defaults_in_force && !hidden,
            logged_in,
        }
    }
}

/// Where an alert links to: the logs app's address as the cloud maps it (Vast's or RunPod's
/// port), when it says; else none (no address from inside the container is one the user can
/// open).
pub fn alert_link(config: &Config) -> Option<String> {
    let logs = config.apps.iter().find(|a| a.app == AppKind::Logs)?;
    let seen = links::Seen { host: None, https: false };
    links::direct_url(logs.listen.port, &seen, config.tls.enabled, &|n| std::env::var(n).ok())
}

/// The sites for a configuration: one per port.
pub fn sites(config: &Config, ctx: Arc<Ctx>) -> Vec<(Listen, Arc<Site>)> {
    config
        .ports()
        .into_iter()
        .map(|(name, listen)| {
            let shell = shell_fn(&ctx, listen.port);
            let app = config.apps.iter().find(|a| a.name == name).map(|a| match a.app {
                AppKind::Logs => {
                    let mut app = logs_app::LogsApp::new(
                        ctx.hub.clone(),
                        ctx.sup.clone(),
                        shell,
                        &ctx.instance,
                        config.workspace.clone(),
                        ctx.tls.clone(),
                        ctx.machine.clone(),
                    );
                    app.tunnels = Some(ctx.tunnels.clone());
                    app.monitor = Some(ctx.monitor.clone());
                    logs_app::routes().with_state(Arc::new(app))
                }
                AppKind::Files => {
                    let routes = crate::apps::files::routes();
                    match crate::apps::files::FilesApp::new(config.workspace.clone(), config.state_dir.clone(), shell) {
                        Ok(app) => {
                            for p in &app.problems {
                                ctx.hub.event(format!("files: {p}"));
                            }
                            routes.with_state(app)
                        }
                        Err(e) => {
                            ctx.hub
                                .event(format!("files: cannot open the workspace {}: {e}", config.workspace.display()));
                            // Declared (so walked and refused without a login) but never served.
                            Routed { specs: routes.specs().to_vec(), private: Router::new(), public: Vec::new() }
                        }
                    }
                }
                AppKind::Terminal => {
                    let settings = a.terminal.clone().expect("validated: a terminal app has its settings");
                    let app =
                        crate::apps::terminal::TerminalApp::new(settings, ctx.sup.clone(), ctx.hub.clone(), shell);
                    let closing = app.clone();
                    ctx.on_stop.lock().expect("on_stop lock").push(Box::new(move || closing.hang_up_all()));
                    crate::apps::terminal::routes().with_state(app)
                }
            });
            let site = site(&ctx, name, &listen, app);
            (listen, site)
        })
        .collect()
}

/// The page header of the pages served on `port`, for a logged-in user.
fn shell_fn(ctx: &Arc<Ctx>, port: u16) -> crate::http::pages::ShellFn {
    let ctx = ctx.clone();
    Arc::new(move |headers: &HeaderMap| shell_for(&ctx, port, headers, true))
}

/// The site of one port: gpubox's own routes, and the proxy to its upstream or a built-in app.
fn site(ctx: &Arc<Ctx>, name: String, listen: &Listen, app: Option<Routed>) -> Arc<Site> {
    let proxy = listen.upstream.as_ref().map(|up: &Upstream| {
        let shell = shell_fn(ctx, listen.port);
        Arc::new(Proxy::new(&name, up.clone(), listen.max_body, ctx.sup.clone(), ctx.hub.clone(), shell))
    });
    let mut routes = reserved::routes().specs().to_vec();
    if proxy.is_some() {
        routes.push(routes::PROXY);
    }
    routes.extend(app.iter().flat_map(|a| a.specs.iter().cloned()));
    Arc::new(Site { ctx: ctx.clone(), name, port: listen.port, routes, proxy, app })
}

/// The router of one site. From the inside out: gpubox's and the app's private routes with
/// security headers, the proxy (or not found) for the rest, all of it behind the login guard;
/// then the public routes, added after the guard so it does not wrap them (only the Origin rule
/// does), a method they do not have going to the guard like any private route; and around
/// everything the Host rule and `?token=` logins.
pub fn router(site: Arc<Site>) -> Router {
    let mut routes = reserved::routes().with_state(site.clone());
    if let Some(app) = &site.app {
        routes = routes.merge(app.clone());
    }
    let private = routes.private.layer(map_response(reserved::security_headers));
    let private = match &site.proxy {
        Some(proxy) => private.fallback_service(proxy.clone().router()),
        None => private.fallback(reserved::reserved_not_found),
    };
    let guard = from_fn_with_state(site.clone(), access::guard);
    let mut router = private.layer(guard.clone());
    for (path, methods) in routes.public {
        // What the path takes, for the 405's Allow header (GET brings HEAD with it).
        let mut allow: Vec<&str> = Vec::new();
        for s in routes.specs.iter().filter(|s| s.public && s.path == path) {
            allow.push(&s.method);
            if s.method == "GET" {
                allow.push("HEAD");
            }
        }
        let allow = allow.join(", ");
        let other_method =
            Router::new().fallback(move || reserved::method_not_allowed(allow.clone())).layer(guard.clone());
        let methods = methods.layer(map_response(reserved::security_headers)).layer(from_fn(access::public));
        router = router.route(path, methods.fallback_service(other_method));
    }
    router.layer(from_fn_with_state(site, access::front))
}

/// Limits shared by every port's connections.
pub struct ConnLimits {
    /// One permit per open connection, over all ports.
    pub open: Arc<tokio::sync::Semaphore>,
    /// How long a connection may wait without a complete request head.
    pub idle_timeout: Duration,
    /// HTTPS on every port (`[tls]`): connections that start a TLS handshake are served through
    /// it; plain HTTP ones get a redirect to `https://`.
    pub tls: Option<Arc<tls::Tls>>,
}

/// How a connection is served.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Plain HTTP, on a port without TLS.
    Plain,
    /// Through TLS: requests say so (`X-Forwarded-Proto: https`, whatever the client sent), so
    /// that cookies are `Secure` and links and Origin checks use `https`.
    Tls,
    /// Plain HTTP on a TLS port: every request is sent to the same address over `https://`
    /// (browsers show a TLS alert as a broken page, and a redirect as the page).
    Redirect,
}

impl ConnLimits {
    /// `max` connections, fewer if the open-file limit would run out first: each proxied
    /// connection takes two descriptors and a download a third; 256 are kept for everything else.
    pub fn new(settings: &crate::config::HttpSettings, open_files: u64) -> ConnLimits {
        let fit = (open_files.saturating_sub(256) / 3).max(16);
        let n = (settings.max_connections as u64).min(fit) as usize;
        ConnLimits { open: Arc::new(tokio::sync::Semaphore::new(n)), idle_timeout: settings.idle_timeout, tls: None }
    }
}

/// Serves one site until `shutdown` resolves, then lets requests in flight finish for up to
/// `drain` (long-lived streams and WebSockets are cut after that).
///
/// Every connection holds a permit of `limits.open` while it lives, upgraded ones (WebSockets)
/// included (one over the limit is answered
/// 503 and closed at once, so a flood cannot use up the open-file limit and stop every port), and
/// is closed when it goes `limits.idle_timeout` without a complete request head: a silent one, one
/// dribbling its headers, or a kept-alive one between requests.
pub async fn serve(
    listener: tokio::net::TcpListener,
    site: Arc<Site>,
    shutdown: impl Future<Output = ()> + Send + 'static,
    drain: Duration,
    limits: Arc<ConnLimits>,
    origin: Origin,
) {
    use tower_service::Service;
    let app = router(site.clone());
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(hyper_util::rt::TokioTimer::new()).header_read_timeout(limits.idle_timeout);
    let (close_tx, close_rx) = tokio::sync::watch::channel(false);
    let mut conns = tokio::task::JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (tcp, addr) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(c) => c,
                // Out of descriptors (or the like): wait for some to be freed rather than spin.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        while conns.try_join_next().is_some() {}
        let Ok(permit) = limits.open.clone().try_acquire_owned() else {
            conns.spawn(refuse(tcp));
            continue;
        };
        // Small answers go out at once rather than waiting for Nagle's algorithm.
        let _ = tcp.set_nodelay(true);
        // Plain HTTP from a trusted proxy that ended TLS itself (a tunnel on loopback): served,
        // not sent round to https:// again and again.
        let from_tunnel = origin == Origin::Tunnel;
        let behind_proxy = from_tunnel || site.ctx.trusted().iter().any(|c| c.contains(addr.ip()));
        let (app, site, http, close) = (app.clone(), site.clone(), http.clone(), close_rx.clone());
        let service = move |mode: Mode| {
            let (app, site) = (app.clone(), site.clone());
            hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                let short = mode != Mode::Redirect && site.proxy.is_some() && access::takes_short_way(&site, req.uri());
                let (mut app, site) = (app.clone(), site.clone());
                // Who the client is: the TCP peer, or what a trusted proxy in front says.
                let addr = access::client_addr(site.ctx.trusted(), addr, from_tunnel, req.headers());
                async move {
                    match mode {
                        Mode::Redirect => return Ok(to_https(&req, &site.ctx.hosts)),
                        Mode::Tls => {
                            req.headers_mut().insert(X_FORWARDED_PROTO, axum::http::HeaderValue::from_static("https"));
                        }
                        Mode::Plain => {}
                    }
                    if short {
                        return Ok(access::proxied(site, addr, req.map(axum::body::Body::new)).await);
                    }
                    req.extensions_mut().insert(axum::extract::ConnectInfo(addr));
                    app.call(req).await
                }
            })
        };
        let counted = Counted { tcp, _permit: permit };
        // A tunnel's origin speaks plain HTTP (cloudflared ended TLS at Cloudflare).
        let Some(tls) = limits.tls.clone().filter(|_| !from_tunnel) else {
            conns.spawn(drive(http, counted, service(Mode::Plain), close));
            continue;
        };
        // The first byte and the handshake together within one short deadline: a connection
        // that dawdles there holds a connection slot like one that dawdles on its request head.
        let deadline = limits.idle_timeout.min(HANDSHAKE_TIMEOUT);
        conns.spawn(async move {
            // A TLS connection starts with a handshake record (0x16); anything else is plain
            // HTTP. Peeked, not read: the bytes stay for whoever serves the connection.
            let handshake = async {
                let mut first = [0u8; 1];
                match counted.tcp.peek(&mut first).await {
                    Ok(1) if first[0] == 0x16 => tls.acceptor.accept(counted).await.ok().map(Ok),
                    Ok(1) => Some(Err(counted)),
                    _ => None,
                }
            };
            match tokio::time::timeout(deadline, handshake).await {
                Ok(Some(Ok(stream))) => drive(http, stream, service(Mode::Tls), close).await,
                Ok(Some(Err(plain))) => {
                    let mode = if behind_proxy { Mode::Plain } else { Mode::Redirect };
                    drive(http, plain, service(mode), close).await
                }
                _ => {}
            }
        });
    }
    // The port is free for whoever binds it next (a reload that moved a service) while what
    // was accepted drains.
    drop(listener);
    let _ = close_tx.send(true);
    let _ = tokio::time::timeout(drain, async { while conns.join_next().await.is_some() {} }).await;
}

/// Where a listener's connections come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Anyone: the port as configured.
    Public,
    /// Only a quick tunnel's cloudflared: a loopback port of its own, whose address only
    /// `gpubox tunnel-run` is told. Cloudflare's word on the client is believed there.
    Tunnel,
}

/// The longest a connection on a TLS port may take to send its first byte and finish the
/// handshake (or less, with a shorter `[http] idle_timeout`).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

const X_FORWARDED_PROTO: axum::http::HeaderName = axum::http::HeaderName::from_static("x-forwarded-proto");

/// Serves HTTP/1.1 on one connection (plain or TLS) until it ends, or, once `close` says so,
/// until the request in flight is answered.
async fn drive<I, S>(
    http: hyper::server::conn::http1::Builder,
    io: I,
    service: S,
    mut close: tokio::sync::watch::Receiver<bool>,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    S: hyper::service::Service<
            hyper::Request<hyper::body::Incoming>,
            Response = axum::response::Response,
            Error = std::convert::Infallible,
        > + Send
        + 'static,
    S::Future: Send + 'static,
{
    let conn = http.serve_connection(hyper_util::rt::TokioIo::new(io), service).with_upgrades();
    let mut conn = std::pin::pin!(conn);
    let mut closing = false;
    loop {
        tokio::select! {
            _ = conn.as_mut() => break,
            _ = close.wait_for(|c| *c), if !closing => {
                closing = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

/// The answer to plain HTTP on a TLS port: the same address over `https://`. 307 keeps the
/// method and body, and is not remembered by browsers (the port may serve plain HTTP again when
/// TLS is switched off).
fn to_https(req: &hyper::Request<hyper::body::Incoming>, hosts: &hosts::Hosts) -> axum::response::Response {
    use axum::response::IntoResponse;
    let host = req.headers().get(axum::http::header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
    let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let bad = |b: u8| b.is_ascii_whitespace() || b == b'/' || b == b'\\' || b == b'@';
    if host.is_empty() || host.bytes().any(bad) || !path.starts_with('/') || path.contains('\\') {
        return (axum::http::StatusCode::BAD_REQUEST, "this port speaks HTTPS: use https://\n").into_response();
    }
    // Only to a name this instance answers to (the Host rule, as on every other request).
    if !hosts.allows(host) {
        return (axum::http::StatusCode::MISDIRECTED_REQUEST, "gpubox does not answer to this name\n").into_response();
    }
    let location = format!("https://{host}{path}");
    (
        axum::http::StatusCode::TEMPORARY_REDIRECT,
        [(axum::http::header::LOCATION, location.clone())],
        format!("this port speaks HTTPS: {location}\n"),
    )
        .into_response()
}

/// A client connection that holds its permit for as long as it is open, also after an upgrade
/// (a WebSocket outlives the HTTP connection that hyper hands it from).
struct Counted {
    tcp: tokio::net::TcpStream,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl tokio::io::AsyncRead for Counted {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.tcp).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for Counted {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.tcp).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}

/// Answers a connection over the limit and closes it.
async fn refuse(mut tcp: tokio::net::TcpStream) {
    use tokio::io::AsyncWriteExt;
    const BODY: &str = "gpubox: too many open connections; try again in a few seconds\n";
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nRetry-After: 5\r\nConnection: close\r\n\r\n{BODY}",
        BODY.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        let _ = tcp.write_all(answer.as_bytes()).await;
        let _ = tcp.shutdown().await;
    })
    .await;
}

/// Binds every port of the configuration, in `Config::ports` order, before anything starts: a
/// port that is taken stops start-up with a message that names it, whoever holds it, another
/// gpubox included. Each port is one socket, shared by its serving threads (a clone of the
/// descriptor each). Not `SO_REUSEPORT`: with it a second gpubox of the same user bound the same
/// port and the kernel split the connections between two workspaces and two logins.
pub fn bind_all(config: &Config) -> Result<Vec<Vec<std::net::TcpListener>>, String> {
    config.ports().iter().map(|(name, l)| bind(name, l)).collect()
}

/// Binds one port: a socket per serving thread (clones of one descriptor).
fn bind(name: &str, l: &Listen) -> Result<Vec<std::net::TcpListener>, String> {
    let addr = SocketAddr::new(l.bind, l.port);
    let sockets = listener(addr).and_then(|first| {
        let mut all = Vec::with_capacity(threads_per_port());
        for _ in 1..threads_per_port() {
            all.push(first.try_clone()?);
        }
        all.push(first);
        Ok(all)
    });
    sockets.map_err(|e| {
        format!(
            "cannot listen on {addr} for service \"{name}\": {e}; another program may use the port (see `ss -ltnp`), or change `services.{name}.port`"
        )
    })
}

/// Binds a port that a closed site held: its threads let it go as soon as they see the stop,
/// so this tries for a second.
async fn bind_again(name: &str, l: &Listen) -> Result<Vec<std::net::TcpListener>, String> {
    let mut tries = 0;
    loop {
        match bind(name, l) {
            Ok(s) => return Ok(s),
            Err(e) if tries >= 40 => return Err(e),
            Err(_) => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        }
    }
}

fn listener(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    // Only lets a restarted gpubox bind while the last one's connections sit in TIME_WAIT.
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    Ok(socket.into())
}

/// The listeners being served, and how to stop them.
pub struct Running {
    ports: Vec<Port>,
    /// The threads of ports that a reload closed: joined at the end.
    retired: Vec<std::thread::JoinHandle<()>>,
    auth: Arc<Auth>,
    flusher: tokio::task::JoinHandle<()>,
    /// Every port's routes, for `gpubox routes` (changed by a reload).
    pub routes: Arc<std::sync::RwLock<Vec<SiteRoutes>>>,
    ctx: Arc<Ctx>,
    limits: Arc<ConnLimits>,
}

/// One port being served.
struct Port {
    name: String,
    listen: Listen,
    /// A built-in app's port (not changed by a reload).
    app: bool,
    stop: tokio::sync::watch::Sender<bool>,
    threads: Vec<std::thread::JoinHandle<()>>,
    site: Arc<Site>,
    /// Its quick tunnel's origin, while it has one.
    tunnel: Option<TunnelOrigin>,
}

/// A port served a second time for a quick tunnel's cloudflared (see [`Origin::Tunnel`]).
struct TunnelOrigin {
    stop: tokio::sync::watch::Sender<bool>,
    thread: std::thread::JoinHandle<()>,
    file: std::path::PathBuf,
}

/// What a reload did to the ports, as lines for the user.
#[derive(Debug, Default)]
pub struct PortChanges {
    pub lines: Vec<String>,
    /// Ports that could not be opened again (the service runs, unreachable through gpubox).
    pub failed: Vec<String>,
}

/// How long requests in flight may finish after shutdown begins.
pub const DRAIN: Duration = Duration::from_secs(5);

/// Threads serving each port: one per core the container may use, at most eight.
fn threads_per_port() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 8)
}

/// What the gateway is given to serve with (made by `gpubox run` before it).
pub struct Parts {
    pub auth: Arc<Auth>,
    pub sup: Arc<Supervisor>,
    pub hub: Hub,
    pub tls: Option<Arc<tls::Tls>>,
    pub tunnels: Arc<crate::tunnels::Tunnels>,
    pub monitor: Arc<crate::alerts::Monitor>,
}

/// Serves every site on its bound listener (from [`bind_all`]).
///
/// Each port is served by a few threads, each with its own single-threaded runtime, socket and
/// upstream connection pool: a request is read, proxied and answered on one thread, without the
/// cross-thread wake-ups of a shared runtime.
pub fn launch(config: &Config, listeners: Vec<Vec<std::net::TcpListener>>, parts: Parts) -> Running {
    let Parts { auth, sup, hub, tls, tunnels, monitor } = parts;
    let ctx = Arc::new(Ctx {
        instance: config.name.clone(),
        ports: std::sync::RwLock::new(config.ports()),
        auth: auth.clone(),
        sup,
        hub: hub.clone(),
        token_login: config.auth.token.is_some(),
        hosts: hosts::Hosts::new(&config.http.allowed_hosts),
        on_stop: std::sync::Mutex::new(Vec::new()),
        tls: tls.as_ref().map(|t| (t.source.clone(), t.fingerprint.clone())),
        trusted: config.http.trusted_proxies.clone(),
        trusted_with_loopback: {
            let mut t = config.http.trusted_proxies.clone();
            t.extend(["127.0.0.1/32", "::1/128"].iter().filter_map(|c| c.parse::<crate::config::units::Cidr>().ok()));
            t
        },
        tunnels,
        apps: config.apps.iter().map(|a| (a.name.clone(), a.app.describe().to_string())).collect(),
        machine: Arc::new(crate::apps::logs::machine::Cache::new(monitor.metrics.clone())),
        workspace: config.workspace.clone(),
        monitor,
        state_dir: config.state_dir.clone(),
    });
    for app in &config.apps {
        if app.app == AppKind::Logs {
            logs_app::follow_files(&hub, &app.files);
        }
    }
    let open_files = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).map_or(1024, |l| l.0);
    let mut limits = ConnLimits::new(&config.http, open_files);
    limits.tls = tls;
    let limits = Arc::new(limits);
    let mut ports = Vec::new();
    let mut routes = Vec::new();
    for ((listen, site), listener) in sites(config, ctx.clone()).into_iter().zip(listeners) {
        routes.push(SiteRoutes { service: site.name.clone(), port: site.port, routes: site.routes.clone() });
        let app = site.app.is_some();
        ports.push(serve_port(site, listen, listener, &limits, app));
    }
    // Sliding expiries are written now and then, not on every request.
    let flusher = {
        let auth = auth.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(60)).await;
                let auth = auth.clone();
                let _ = tokio::task::spawn_blocking(move || auth.flush()).await;
            }
        })
    };
    let routes = Arc::new(std::sync::RwLock::new(routes));
    let mut running = Running { ports, retired: Vec::new(), auth, flusher, routes, ctx, limits };
    running.tunnel_origins(config);
    running
}

/// Serves one site on its sockets, a thread each.
fn serve_port(
    site: Arc<Site>,
    listen: Listen,
    sockets: Vec<std::net::TcpListener>,
    limits: &Arc<ConnLimits>,
    app: bool,
) -> Port {
    let hub = &site.ctx.hub;
    let target = listen.upstream.as_ref().map_or("gpubox app".to_string(), |u| format!("proxy to {u}"));
    hub.event(format!("{}: listening on {}:{} ({target})", site.name, listen.bind, listen.port));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut threads = Vec::new();
    for (i, l) in sockets.into_iter().enumerate() {
        let name = format!("port-{}-{i}", listen.port);
        match serving_thread(name, l, site.clone(), limits.clone(), stopped.clone(), Origin::Public) {
            Ok(t) => threads.push(t),
            Err(e) => hub.event(format!("cannot start a thread for port {}: {e}", listen.port)),
        }
    }
    Port { name: site.name.clone(), listen, app, stop, threads, site, tunnel: None }
}

/// Serves `site` on a new loopback port for its quick tunnel, and writes where to
/// [`crate::config::tunnel_origin_file`] (with gpubox's pid, so that an address left by an
/// earlier run is never taken).
fn serve_tunnel_origin(site: &Arc<Site>, limits: &Arc<ConnLimits>) -> std::io::Result<TunnelOrigin> {
    let socket = std::net::TcpListener::bind(("127.0.0.1", 0))?;
    socket.set_nonblocking(true)?;
    let address = socket.local_addr()?;
    let file = crate::config::tunnel_origin_file(&site.ctx.state_dir, site.port);
    let folder = file.parent().expect("a file in a folder");
    std::fs::create_dir_all(folder)?;
    let temporary = folder.join(format!(".{}.{}", site.port, std::process::id()));
    std::fs::write(&temporary, format!("{} {address}\n", std::process::id()))?;
    std::fs::rename(&temporary, &file)?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let name = format!("port-{}-tunnel", site.port);
    let thread = serving_thread(name, socket, site.clone(), limits.clone(), stopped, Origin::Tunnel)?;
    Ok(TunnelOrigin { stop, thread, file })
}

/// A thread with its own single-threaded runtime serving `site` on one socket until `stopped`
/// says so.
fn serving_thread(
    name: String,
    socket: std::net::TcpListener,
    site: Arc<Site>,
    limits: Arc<ConnLimits>,
    mut stopped: tokio::sync::watch::Receiver<bool>,
    origin: Origin,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new().name(name).spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
        rt.block_on(async move {
            let Ok(listener) = tokio::net::TcpListener::from_std(socket) else { return };
            let shutdown = async move {
                let _ = stopped.wait_for(|s| *s).await;
            };
            serve(listener, site, shutdown, DRAIN, limits, origin).await;
        });
    })
}

impl TunnelOrigin {
    /// Stops accepting and forgets the address; the thread to join once it has drained.
    fn close(self) -> std::thread::JoinHandle<()> {
        let _ = self.stop.send(true);
        let _ = std::fs::remove_file(&self.file);
        self.thread
    }
}

impl Running {
    /// Serves the services' ports of a new configuration (`gpubox reload`): closes those of
    /// removed services and those whose port, address or upstream changed, and opens the new
    /// ones. The built-in apps' ports stay as they are. New ports that gpubox does not hold yet
    /// are bound first: when one cannot be, nothing changes and the error says which.
    pub async fn reconfigure(&mut self, config: &Config) -> Result<PortChanges, String> {
        let wanted: Vec<(String, Listen)> =
            config.ports().into_iter().filter(|(name, _)| !config.apps.iter().any(|a| a.name == *name)).collect();
        let same = |p: &Port, (name, l): &(String, Listen)| p.name == *name && p.listen == *l;
        let closing: Vec<usize> = (0..self.ports.len())
            .filter(|&i| !self.ports[i].app && !wanted.iter().any(|w| same(&self.ports[i], w)))
            .collect();
        let opening: Vec<&(String, Listen)> =
            wanted.iter().filter(|w| !self.ports.iter().any(|p| same(p, w))).collect();
        // Bound now when gpubox does not hold the port; after the old one closes otherwise.
        let mut bound = Vec::new();
        for (name, l) in &opening {
            match self.ports.iter().position(|p| p.listen.port == l.port) {
                Some(i) if !closing.contains(&i) => {
                    return Err(format!(
                        "port {} is still gpubox's port for \"{}\" (the built-in apps change only when gpubox starts again); give \"{name}\" another port",
                        l.port, self.ports[i].name
                    ))
                }
                Some(_) => bound.push(None),
                None => bound.push(Some(bind(name, l)?)),
            }
        }
        // The threads of ports closed by earlier reloads that have finished draining.
        let (done, draining): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.retired).into_iter().partition(|t| t.is_finished());
        self.retired = draining;
        for t in done {
            let _ = t.join();
        }
        let mut changes = PortChanges::default();
        for &i in closing.iter().rev() {
            let port = self.ports.remove(i);
            let _ = port.stop.send(true);
            self.retired.extend(port.tunnel.map(|t| t.close()));
            changes.lines.push(format!("port {}: closed ({})", port.listen.port, port.name));
            self.ctx.hub.event(format!("{}: port {} closed (configuration reloaded)", port.name, port.listen.port));
            self.retired.extend(port.threads);
        }
        for ((name, l), sockets) in opening.into_iter().zip(bound) {
            let sockets = match sockets {
                Some(s) => s,
                None => match bind_again(name, l).await {
                    Ok(s) => s,
                    Err(e) => {
                        self.ctx.hub.event(format!("{name}: {e}"));
                        changes.failed.push(e);
                        continue;
                    }
                },
            };
            let site = site(&self.ctx, name.clone(), l, None);
            self.ports.push(serve_port(site, l.clone(), sockets, &self.limits, false));
            let target = l.upstream.as_ref().map_or(String::new(), |u| format!(" → {u}"));
            changes.lines.push(format!("port {}: open ({name}{target})", l.port));
        }
        self.ports.sort_by_key(|p| p.listen.port);
        *self.ctx.ports.write().expect("ports lock") =
            self.ports.iter().map(|p| (p.name.clone(), p.listen.clone())).collect();
        let mut routes = self.routes.write().expect("routes lock");
        routes.retain(|r| self.ports.iter().any(|p| p.name == r.service && p.listen.port == r.port));
        let missing: Vec<&Port> = self
            .ports
            .iter()
            .filter(|p| !routes.iter().any(|r| r.service == p.name && r.port == p.listen.port))
            .collect();
        for p in missing {
            let mut specs = reserved::routes().specs().to_vec();
            specs.push(routes::PROXY);
            routes.push(SiteRoutes { service: p.name.clone(), port: p.listen.port, routes: specs });
        }
        routes.sort_by_key(|r| r.port);
        drop(routes);
        self.tunnel_origins(config);
        Ok(changes)
    }

    /// Gives each port with a quick tunnel in `config` its tunnel origin, and takes it from
    /// those without.
    fn tunnel_origins(&mut self, config: &Config) {
        let wanted: Vec<u16> = config.tunnels.tunnels.iter().filter_map(|t| t.serves.as_ref().map(|s| s.1)).collect();
        for port in &mut self.ports {
            let wants = wanted.contains(&port.listen.port);
            if !wants {
                self.retired.extend(port.tunnel.take().map(TunnelOrigin::close));
            } else if port.tunnel.is_none() {
                match serve_tunnel_origin(&port.site, &self.limits) {
                    Ok(t) => port.tunnel = Some(t),
                    Err(e) => self.ctx.hub.event(format!(
                        "{}: cannot open the port for its tunnel: {e}; the tunnel will not reach it",
                        port.name
                    )),
                }
            }
        }
    }

    /// Stops accepting, lets requests in flight finish (up to [`DRAIN`]), saves the sessions.
    pub async fn stop(self) {
        let hooks: Vec<_> = self.ctx.on_stop.lock().expect("on_stop lock").drain(..).collect();
        for hook in hooks {
            hook();
        }
        let mut threads = self.retired;
        for port in self.ports {
            let _ = port.stop.send(true);
            threads.extend(port.threads);
            threads.extend(port.tunnel.map(TunnelOrigin::close));
        }
        let _ = tokio::task::spawn_blocking(move || {
            for t in threads {
                let _ = t.join();
            }
        })
        .await;
        self.flusher.abort();
        self.auth.flush();
    }
}
