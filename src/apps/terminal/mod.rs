//! The terminal app (port 7020): login shells in PTYs, in the browser through xterm.js over one
//! WebSocket per tab. Sessions outlive their tabs (see `session.rs`); a tab that reattaches gets
//! the screen and scrollback redrawn (`replay.rs`). The protocol is in docs/terminal.md.

mod replay;
mod session;

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use super::ShellFn;
use crate::config::TerminalSettings;
use crate::http::api_error;
use crate::http::routes::RouteSet;
use crate::logs::Hub;
use crate::supervisor::Supervisor;
pub use session::{Info, Out, Session};

pub struct TerminalApp {
    settings: TerminalSettings,
    sup: Arc<Supervisor>,
    hub: Hub,
    shell: ShellFn,
    sessions: Mutex<BTreeMap<String, Arc<Session>>>,
}

impl TerminalApp {
    pub fn new(settings: TerminalSettings, sup: Arc<Supervisor>, hub: Hub, shell: ShellFn) -> Arc<TerminalApp> {
        let app = Arc::new(TerminalApp { settings, sup, hub, shell, sessions: Mutex::new(BTreeMap::new()) });
        if let Some(idle) = app.settings.idle_timeout {
            let weak = Arc::downgrade(&app);
            tokio::spawn(async move {
                let every = (idle / 4).clamp(Duration::from_millis(200), Duration::from_secs(30));
                loop {
                    tokio::time::sleep(every).await;
                    let Some(app) = weak.upgrade() else { return };
                    app.close_idle(idle);
                }
            });
        }
        app
    }

    fn get(&self, id: &str) -> Option<Arc<Session>> {
        self.sessions.lock().expect("sessions lock").get(id).cloned()
    }

    fn list(&self) -> Vec<Info> {
        self.sessions.lock().expect("sessions lock").values().map(|s| s.info()).collect()
    }

    /// Starts a shell; the session ends by itself when the shell exits.
    fn create(self: &Arc<Self>, name: Option<String>, cols: u16, rows: u16) -> std::io::Result<Arc<Session>> {
        let id = crate::random::hex(6)?;
        let n = self.sessions.lock().expect("sessions lock").len() + 1;
        let name = name.filter(|n| !n.trim().is_empty()).unwrap_or_else(|| format!("shell {n}"));
        let (session, exit) = Session::start(id.clone(), name.clone(), &self.settings, self.sup.reaper(), cols, rows)?;
        self.sessions.lock().expect("sessions lock").insert(id.clone(), session.clone());
        self.hub.event(format!("terminal: session {id} (\"{name}\") started: {}", self.settings.shell.display()));
        let me = Arc::downgrade(self);
        let s = session.clone();
        tokio::spawn(async move {
            let code = exit.await.map_or(-1, |e| e.as_code());
            s.exited(code);
            if let Some(app) = me.upgrade() {
                app.sessions.lock().expect("sessions lock").remove(&s.id);
                app.hub.event(format!("terminal: session {} ended (exit code {code})", s.id));
            }
        });
        Ok(session)
    }

    /// gpubox is stopping: every shell is hung up, as when a terminal closes.
    pub fn hang_up_all(&self) {
        let all: Vec<Arc<Session>> = self.sessions.lock().expect("sessions lock").values().cloned().collect();
        for s in all {
            s.hang_up();
        }
    }

    fn close_idle(&self, idle: Duration) {
        let now = session::now_ms();
        let idle_ms = idle.as_millis() as u64;
        let stale: Vec<Arc<Session>> = self
            .sessions
            .lock()
            .expect("sessions lock")
            .values()
            .filter(|s| s.tabs() == 0 && now.saturating_sub(s.last_used_ms.load(Ordering::Relaxed)) >= idle_ms)
            .cloned()
            .collect();
        for s in stale {
            self.hub.event(format!(
                "terminal: session {} closed after {} without a tab",
                s.id,
                crate::human::duration(idle)
            ));
            s.hang_up();
        }
    }
}

/// Every route of the app.
pub fn routes() -> RouteSet<Arc<TerminalApp>> {
    RouteSet::new("terminal")
        .get("/", "/", page)
        .get("/api/sessions", "/api/sessions", list)
        .post("/api/sessions", "/api/sessions", create)
        .patch("/api/sessions/{id}", "/api/sessions/none", rename)
        .delete("/api/sessions/{id}", "/api/sessions/none", close)
        .websocket("/api/sessions/{id}/ws", "/api/sessions/none/ws", attach)
}

async fn page(State(app): State<Arc<TerminalApp>>, headers: HeaderMap) -> Html<String> {
    Html((app.shell)(&headers).app("Terminal", "terminal"))
}

async fn list(State(app): State<Arc<TerminalApp>>) -> Json<serde_json::Value> {
    Json(json!({ "sessions": app.list() }))
}

#[derive(Deserialize, Default)]
struct NewSession {
    name: Option<String>,
    cols: Option<u16>,
    rows: Option<u16>,
}

fn unknown(id: &str) -> Response {
    api_error(StatusCode::NOT_FOUND, "unknown_session", &format!("no terminal session \"{id}\" (it may have ended)"))
}

async fn create(State(app): State<Arc<TerminalApp>>, body: Option<Json<NewSession>>) -> Response {
    let ask = body.map(|Json(b)| b).unwrap_or_default();
    let (cols, rows) = (ask.cols.unwrap_or(80).clamp(2, 1000), ask.rows.unwrap_or(24).clamp(1, 500));
    match app.create(ask.name, cols, rows) {
        Ok(s) => (StatusCode::CREATED, Json(s.info())).into_response(),
        Err(e) => api_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "cannot_start",
            &format!("cannot start {}: {e}", app.settings.shell.display()),
        ),
    }
}

#[derive(Deserialize)]
struct Rename {
    name: String,
}

async fn rename(State(app): State<Arc<TerminalApp>>, Path(id): Path<String>, Json(r): Json<Rename>) -> Response {
    let Some(s) = app.get(&id) else { return unknown(&id) };
    let name: String = r.name.trim().chars().filter(|c| !c.is_control()).take(80).collect();
    if name.is_empty() {
        return api_error(StatusCode::BAD_REQUEST, "bad_name", "a session's name cannot be empty");
    }
    *s.name.lock().expect("name lock") = name;
    Json(s.info()).into_response()
}

async fn close(State(app): State<Arc<TerminalApp>>, Path(id): Path<String>) -> Response {
    let Some(s) = app.get(&id) else { return unknown(&id) };
    s.hang_up();
    StatusCode::NO_CONTENT.into_response()
}

async fn attach(State(app): State<Arc<TerminalApp>>, Path(id): Path<String>, ws: WebSocketUpgrade) -> Response {
    let Some(s) = app.get(&id) else { return unknown(&id) };
    ws.on_upgrade(move |socket| serve_tab(socket, s))
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum Control {
    Resize { cols: u16, rows: u16 },
    Pause,
    Resume,
}

/// One tab: output and control messages out, keystrokes and control messages in.
async fn serve_tab(mut socket: WebSocket, session: Arc<Session>) {
    let (tab, (mut cols, mut rows), mut rx) = session.attach();
    // The snapshot comes from the emulator's thread; the hello waits for it and they go out
    // together, so a page that switches sessions never says it is attached while it still
    // shows the session it left. (Only a resize by another tab can come first.)
    let snapshot = loop {
        match rx.recv().await {
            Some(s @ Out::Snapshot { .. }) => break s,
            Some(Out::Size(c, r)) => (cols, rows) = (c, r),
            Some(Out::Bytes(_)) => {}
            None => {
                session.detach(tab);
                return;
            }
        }
    };
    let hello = json!({ "type": "hello", "session": session.info(), "cols": cols, "rows": rows }).to_string();
    // The first snapshot follows the hello (which says so); later ones are announced.
    let greeted = match socket.send(Message::Text(hello.into())).await {
        Ok(()) => send_snapshot(&mut socket, snapshot, false).await,
        Err(e) => Err(e),
    };
    if greeted.is_err() {
        session.detach(tab);
        return;
    }
    // Output that arrives while one message goes out is sent as one message.
    let mut held: Option<Out> = None;
    // Keystrokes not yet taken by the session's queue. While they wait, output still flows to
    // the tab; while there are more than a queue's worth, the WebSocket is not read (the browser
    // waits), so memory stays bounded whatever is pasted.
    let input = session.input();
    let mut pending: VecDeque<Bytes> = VecDeque::new();
    // The shell's exit, told to the page after everything queued before it (and after the
    // snapshot a tab that fell behind waits for).
    let mut ended = session.ended();
    let mut exit_code: Option<i32> = None;
    // A ping now and then: proxies in front (RunPod's drops a connection idle for 100 s,
    // Cloudflare's after 100 s too) see traffic while the shell is quiet. Browsers answer pings
    // by themselves.
    let mut keepalive = tokio::time::interval_at(tokio::time::Instant::now() + KEEPALIVE, KEEPALIVE);
    keepalive.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        if let Some(code) = exit_code {
            if held.is_none() && rx.is_empty() && !session.waits_for_snapshot(tab) {
                let m = json!({ "type": "exit", "code": code }).to_string();
                let _ = socket.send(Message::Text(m.into())).await;
                let _ = socket.send(Message::Close(None)).await;
                break;
            }
        }
        tokio::select! {
            // (The value is copied out: the watch's guard is not to be held across an await.)
            seen = async { ended.wait_for(Option::is_some).await.map(|v| *v) }, if exit_code.is_none() => match seen {
                Ok(code) => exit_code = code,
                Err(_) => break, // the session is gone
            },
            room = input.reserve(), if !pending.is_empty() => match room {
                Ok(permit) => permit.send(pending.pop_front().expect("pending is not empty")),
                Err(_) => break, // the shell is gone
            },
            incoming = socket.recv(), if pending.len() < session::INPUT_QUEUE => match incoming {
                Some(Ok(Message::Binary(data))) => {
                    session.touch();
                    // Typing is using the instance (the idle stop waits for it).
                    crate::alerts::idle::ACTIVITY.touch();
                    let mut at = 0;
                    while at < data.len() {
                        let end = (at + session::INPUT_PIECE).min(data.len());
                        pending.push_back(data.slice(at..end));
                        at = end;
                    }
                }
                Some(Ok(Message::Text(text))) => match serde_json::from_str::<Control>(&text) {
                    Ok(Control::Resize { cols, rows }) => session.resize(tab, cols, rows),
                    Ok(Control::Pause) => session.set_paused(tab, true),
                    Ok(Control::Resume) => session.set_paused(tab, false),
                    Err(_) => {}
                },
                Some(Ok(_)) => {}
                Some(Err(_)) | None => break,
            },
            _ = keepalive.tick() => {
                if socket.send(Message::Ping(Default::default())).await.is_err() {
                    break;
                }
            }
            out = next_out(&mut rx, &mut held) => {
                let sent = match out {
                    Some(Out::Bytes(b)) => socket.send(Message::Binary(coalesce(b, &mut rx, &mut held))).await,
                    Some(snapshot @ Out::Snapshot { .. }) => send_snapshot(&mut socket, snapshot, true).await,
                    Some(Out::Size(cols, rows)) => {
                        let m = json!({ "type": "size", "cols": cols, "rows": rows }).to_string();
                        socket.send(Message::Text(m.into())).await
                    }
                    None => break,
                };
                if sent.is_err() {
                    break;
                }
            }
        }
    }
    session.detach(tab);
}

/// How often a terminal's WebSocket is pinged (quiet or not: a ping is a few bytes).
const KEEPALIVE: std::time::Duration = std::time::Duration::from_secs(30);

/// A snapshot (announced, but for the one right after the hello), then the output after it.
async fn send_snapshot(socket: &mut WebSocket, snapshot: Out, announce: bool) -> Result<(), axum::Error> {
    let Out::Snapshot { screen, tail } = snapshot else { return Ok(()) };
    if announce {
        socket.send(Message::Text(json!({ "type": "snapshot" }).to_string().into())).await?;
    }
    socket.send(Message::Binary(screen)).await?;
    if !tail.is_empty() {
        socket.send(Message::Binary(tail.concat().into())).await?;
    }
    Ok(())
}

/// The next message for the tab: one held back by [`coalesce`], else the queue's next.
async fn next_out(rx: &mut tokio::sync::mpsc::Receiver<Out>, held: &mut Option<Out>) -> Option<Out> {
    match held.take() {
        Some(out) => Some(out),
        None => rx.recv().await,
    }
}

/// Output already queued behind `first`, joined to it (up to 1 MiB): one WebSocket message, and
/// one write into the browser's terminal, rather than one per read of the PTY. The first message
/// of another kind is held for the next turn.
fn coalesce(first: Bytes, rx: &mut tokio::sync::mpsc::Receiver<Out>, held: &mut Option<Out>) -> Bytes {
    const MAX: usize = 1 << 20;
    let mut joined: Option<Vec<u8>> = None;
    while joined.as_ref().map_or(first.len(), Vec::len) < MAX {
        match rx.try_recv() {
            Ok(Out::Bytes(b)) => joined.get_or_insert_with(|| first.to_vec()).extend_from_slice(&b),
            Ok(other) => {
                *held = Some(other);
                break;
            }
            Err(_) => break,
        }
    }
    joined.map_or(first, Bytes::from)
}
