//! The control socket's server side: answers requests from the CLI with the supervisor's and the
//! log hub's narrow handles.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

use serde::Serialize;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc;

use super::protocol::{
    error, Gap, Gpubox, HealthAnswer, Info, LogsMessage, Pong, ReloadAnswer, Request, RoutesAnswer, ServiceAnswer,
    ShutdownAnswer, StatusAnswer,
};
use crate::logs::{Hub, LogFilter};
use crate::supervisor::{Action, Supervisor, SupervisorError};

pub struct Ctx {
    pub sup: Arc<Supervisor>,
    pub hub: Hub,
    pub info: Info,
    /// Asks the main task to shut down; the string says who asked.
    pub shutdown: mpsc::UnboundedSender<String>,
    /// Every listener's routes, for `gpubox routes` and the auth test that walks them.
    pub routes: Arc<std::sync::RwLock<Vec<crate::http::routes::SiteRoutes>>>,
    /// Asks the main task to read the configuration again; answered with what it did.
    pub reload: mpsc::UnboundedSender<tokio::sync::oneshot::Sender<Result<ReloadAnswer, ReloadError>>>,
    /// Where the configuration came from, as of the last start or reload (for `status`).
    pub sources: std::sync::RwLock<String>,
    /// The built-in apps, for `gpubox status`.
    pub apps: Vec<crate::control::protocol::AppAnswer>,
    pub tunnels: Arc<crate::tunnels::Tunnels>,
}

/// Why a reload changed nothing.
#[derive(Debug)]
pub enum ReloadError {
    /// The configuration has errors (answered as `config`: the CLI exits 2, as `config check`).
    Config(String),
    /// Something else: a port that cannot be bound, gpubox shutting down.
    Failed(String),
}

/// Binds the socket, replacing a stale one (the caller holds the instance lock, so no live
/// gpubox owns it), readable and writable by the owner only.
pub fn bind(path: &Path) -> io::Result<UnixListener> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

pub async fn serve(listener: UnixListener, ctx: Arc<Ctx>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let ctx = ctx.clone();
                tokio::spawn(async move {
                    let _ = handle(stream, ctx).await;
                });
            }
            Err(e) => {
                ctx.hub.event(format!("control socket: accept failed: {e}"));
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}

async fn send(w: &mut (impl AsyncWriteExt + Unpin), v: &impl Serialize) -> io::Result<()> {
    let mut line = serde_json::to_vec(v).map_err(io::Error::other)?;
    line.push(b'\n');
    w.write_all(&line).await
}

async fn handle(stream: UnixStream, ctx: Arc<Ctx>) -> io::Result<()> {
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::new(r.take(64 * 1024));
    let mut line = String::new();
    r.read_line(&mut line).await?;
    let req: Request = match serde_json::from_str(line.trim()) {
        Ok(req) => req,
        Err(e) => return send(&mut w, &error("bad_request", format!("cannot read the request: {e}"))).await,
    };
    match req {
        Request::Ping => send(&mut w, &Pong { pid: ctx.info.pid, version: ctx.info.version.clone() }).await,
        Request::Status => send(&mut w, &status(&ctx)).await,
        Request::Routes => {
            let sites = ctx.routes.read().expect("routes lock").clone();
            send(&mut w, &RoutesAnswer { sites }).await
        }
        Request::Reload => {
            let (tx, rx) = tokio::sync::oneshot::channel();
            let down = || ReloadError::Failed("gpubox is shutting down".into());
            let answer = match ctx.reload.send(tx) {
                Ok(()) => rx.await.unwrap_or_else(|_| Err(down())),
                Err(_) => Err(down()),
            };
            match answer {
                Ok(a) => send(&mut w, &a).await,
                Err(ReloadError::Config(message)) => send(&mut w, &error("config", message)).await,
                Err(ReloadError::Failed(message)) => send(&mut w, &error("reload_failed", message)).await,
            }
        }
        Request::Health => {
            let (healthy, problems) = ctx.sup.health();
            send(&mut w, &HealthAnswer { healthy, problems }).await
        }
        Request::Start { service } => control(&mut w, &ctx, &service, Action::Start).await,
        Request::Stop { service } => control(&mut w, &ctx, &service, Action::Stop).await,
        Request::Restart { service } => control(&mut w, &ctx, &service, Action::Restart).await,
        Request::Shutdown => {
            send(&mut w, &ShutdownAnswer { pid: ctx.info.pid }).await?;
            let _ = ctx.shutdown.send("gpubox shutdown".into());
            // Held open until the process exits: the client learns that shutdown finished when
            // the connection closes.
            std::future::pending::<()>().await;
            Ok(())
        }
        Request::Logs { filter, follow } => {
            let mut w = tokio::io::BufWriter::new(w);
            logs(&mut w, &ctx, &filter, follow).await?;
            w.flush().await
        }
    }
}

fn status(ctx: &Ctx) -> StatusAnswer {
    let uptime_ms = ctx.info.started.elapsed().map_or(0, |d| d.as_millis() as u64);
    let (ring_bytes, ring_lines) = ctx.hub.ring_usage();
    let mut info = ctx.info.clone();
    info.config = ctx.sources.read().expect("sources lock").clone();
    StatusAnswer {
        gpubox: Gpubox {
            info,
            uptime_ms,
            shutting_down: ctx.sup.is_shutting_down(),
            orphans_reaped: ctx.sup.orphans_reaped(),
            log_ring_bytes: ring_bytes as u64,
            log_ring_lines: ring_lines as u64,
        },
        services: ctx.sup.status(),
        apps: ctx.apps.clone(),
        live: ctx.hub.live(None).into_iter().map(|l| (l.service.to_string(), l.text)).collect(),
        tunnels: ctx
            .tunnels
            .links()
            .into_iter()
            .map(|l| crate::control::protocol::TunnelAnswer { port: l.port, url: l.url, via: l.via })
            .collect(),
        tunnel_problem: ctx.tunnels.problem(),
    }
}

async fn control(w: &mut (impl AsyncWriteExt + Unpin), ctx: &Ctx, service: &str, action: Action) -> io::Result<()> {
    match ctx.sup.control(service, action).await {
        Ok(status) => send(w, &ServiceAnswer { service: status }).await,
        Err(e @ SupervisorError::UnknownService { .. }) => send(w, &error("unknown_service", e.to_string())).await,
        Err(e @ SupervisorError::ShuttingDown) => send(w, &error("shutting_down", e.to_string())).await,
    }
}

async fn logs(w: &mut (impl AsyncWriteExt + Unpin), ctx: &Ctx, filter: &LogFilter, follow: bool) -> io::Result<()> {
    let hub = &ctx.hub;
    let q = match filter.compile(100) {
        Ok(q) => q,
        Err(e) => return send(w, &error(e.code, e.message)).await,
    };
    if let Some(names) = &q.services {
        let known = hub.services();
        if let Some(name) = names.iter().find(|n| !known.contains(n)) {
            let known = known.join(", ");
            return send(
                w,
                &error("unknown_service", format!("no log for a service named \"{name}\" (logs: {known})")),
            )
            .await;
        }
    }
    let mut changes = hub.watch();
    let mark = hub.last_seq();
    let found = if filter.limit == Some(0) { crate::logs::Found::default() } else { hub.query(&q) };
    let mut last = found.lines.last().map_or(mark, |l| l.seq.max(mark));
    let with_context = q.matcher.is_some() && q.context > 0;
    for (i, (line, matched)) in found.lines.iter().zip(&found.matched).enumerate() {
        let new_group = found.new_group.get(i).copied().unwrap_or(false);
        send(w, &LogsMessage::Line { line: line.clone(), context: with_context && !matched, new_group }).await?;
    }
    if !follow {
        return send(w, &LogsMessage::End { end: true }).await;
    }
    let wanted = |service: &str, stream: crate::logs::Stream| filter.wants(service, stream);
    let mut last_live: Vec<String> = Vec::new();
    loop {
        let batch = hub.read(None, last, 1000);
        if let Some(before) = batch.gap_before {
            send(w, &LogsMessage::Gap { gap: Gap { before, log_dir: hub.settings().dir.clone() } }).await?;
        }
        for line in &batch.lines {
            if wanted(&line.service, line.stream) && q.matcher.as_ref().is_none_or(|m| m.is_match(&line.text)) {
                send(w, &LogsMessage::Line { line: line.clone(), context: false, new_group: false }).await?;
            }
        }
        if let Some(l) = batch.lines.last() {
            last = l.seq;
        }
        if batch.lines.len() == 1000 {
            continue;
        }
        let live: Vec<_> = hub.live(None).into_iter().filter(|l| wanted(&l.service, l.stream)).collect();
        let texts: Vec<String> = live.iter().map(|l| l.text.clone()).collect();
        if texts != last_live {
            for l in &live {
                send(w, &LogsMessage::Live { live: l.clone() }).await?;
            }
            last_live = texts;
        }
        w.flush().await?;
        if changes.changed().await.is_err() {
            return Ok(());
        }
        if batch.lines.is_empty() {
            // Only a live line moved: progress bars redraw many times a second, and a tenth of a
            // second is fresh enough for a reader.
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
}
