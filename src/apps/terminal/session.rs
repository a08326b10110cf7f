//! A terminal session: a login shell in a PTY, a virtual terminal (avt) that keeps its screen
//! and scrollback, and the tabs attached to it. The session outlives its tabs: it ends when the
//! shell exits, when it is closed, or after an idle limit.
//!
//! One thread per session (the pump) reads the PTY and hands each read to every attached tab and
//! to the session's backlog, under the stream's lock. A second thread (the emulator) takes the
//! backlog in batches and feeds it to the virtual terminal, off the path from the PTY to the tabs:
//! the emulator parses about 50 MB/s, slower than a flood reaches a browser. The virtual terminal
//! plus the backlog is always everything the shell printed, so a tab that attaches (or fell
//! behind) is sent, by the emulator between two batches, a snapshot of the screen followed by the
//! backlog's bytes, and then the pump's next reads: no byte lost or doubled. The backlog is
//! bounded ([`BACKLOG`]): in a flood that runs further ahead of the emulator than that, the
//! oldest unparsed output is dropped, and only a snapshot taken after it (not the tabs' streams)
//! misses those bytes — by then they have scrolled far out of the screen and most of the
//! scrollback.
//!
//! Flow control: each tab has a small queue; while every attached tab's queue is full (or the tab
//! asked to pause), the pump stops reading, the PTY's buffer fills, and the program writing
//! (`yes`, `cat` of a huge file) blocks — backpressure from the browser to the program, with
//! memory bounded by the queues and the backlog. A tab that falls behind while another keeps up
//! drops bytes and gets a fresh snapshot when it has room again.
//!
//! Keystrokes go the other way through a bounded queue to a second thread per session, the only
//! one that writes to the PTY: a write blocks while the shell is not reading (a big paste into a
//! `sleep`), and a blocked write must not hold up the port's serving thread (it did: one 1 MiB
//! paste stopped every request on the port and gpubox's shutdown). A tab waiting for room in
//! the queue keeps taking its output, so the shell's echo cannot block the shell's own reads.

use std::fs::File;
use std::io::{self, Read, Write};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use serde::Serialize;
use tokio::sync::mpsc;

use crate::config::TerminalSettings;
use crate::process::{identity, own_session, ExitInfo, Pty, Reaper};

/// Keystrokes are written to the PTY in pieces of at most this many bytes…
pub const INPUT_PIECE: usize = 16 * 1024;
/// …and at most this many pieces wait per session (1 MiB): past that a tab stops reading its
/// WebSocket until the shell takes more.
pub const INPUT_QUEUE: usize = 64;

/// Messages queued per tab; each holds up to one read of the PTY (64 KiB).
const QUEUE: usize = 16;
const READ: usize = 64 * 1024;
/// Output the emulator may lag behind the PTY by, per session.
pub const BACKLOG: usize = 8 << 20;
/// Output the emulator parses at a time (its lock is not held meanwhile).
const BATCH: usize = 256 * 1024;
/// The emulator is woken once this much output waits, not for each read: a keystroke's echo
/// must not wake a second thread (a snapshot does not need the emulator to be current: the
/// backlog follows it).
const WAKE: usize = 64 * 1024;

/// What a tab receives.
#[derive(Debug)]
pub enum Out {
    /// Terminal output.
    Bytes(Bytes),
    /// Redraw from scratch (the tab attached or fell behind): reset, draw the snapshot, then
    /// write the output that followed it (`tail`).
    Snapshot { screen: Bytes, tail: Vec<Bytes> },
    /// The PTY's size changed (another tab resized it).
    Size(u16, u16),
}

struct Tab {
    id: u64,
    tx: mpsc::Sender<Out>,
    paused: bool,
    /// The tab has just attached, or bytes were dropped for it: it needs a snapshot before more
    /// bytes (the emulator sends it).
    behind: bool,
}

/// What the emulator has yet to apply, in the order it happened.
enum Event {
    Output(Bytes),
    Resize(u16, u16),
}

struct State {
    cols: u16,
    rows: u16,
    tabs: Vec<Tab>,
    exit: Option<i32>,
    /// Output (and resizes) not yet applied to the virtual terminal.
    backlog: std::collections::VecDeque<Event>,
    backlog_bytes: usize,
    /// The pump has ended (the PTY is closed).
    closed: bool,
    /// The virtual terminal (and an incomplete UTF-8 sequence at its end), once the emulator has
    /// applied everything after the pump ended.
    parked: Option<(avt::Terminal, Vec<u8>)>,
}

/// A tab that needs a snapshot gets one only into an empty queue: a slow tab holds one at a time
/// (each may carry megabytes of backlog), never a queue of them.
fn wants_snapshot(t: &Tab) -> bool {
    t.behind && !t.paused && t.tx.capacity() == t.tx.max_capacity()
}

pub struct Session {
    pub id: String,
    pub name: Mutex<String>,
    pub pid: i32,
    pub created_ms: u64,
    /// Last keystroke or attach (ms since the Unix epoch), for the idle limit.
    pub last_used_ms: AtomicU64,
    /// Keystrokes for the writer thread, in pieces of at most [`INPUT_PIECE`] bytes.
    input: mpsc::Sender<Bytes>,
    /// The PTY's master, for its window size: a descriptor of its own, open as long as the
    /// session, whatever the reader and writer threads do with theirs.
    master: File,
    state: Mutex<State>,
    /// Wakes the emulator: output in the backlog, or a tab waiting for a snapshot.
    work: std::sync::Condvar,
    /// The shell's exit code, once it has exited and its last output was read (or half a second
    /// passed): each tab tells its page after everything queued before it.
    ended: tokio::sync::watch::Sender<Option<i32>>,
    next_tab: AtomicU64,
    scrollback: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Info {
    pub id: String,
    pub name: String,
    pub pid: i32,
    pub cols: u16,
    pub rows: u16,
    pub tabs: usize,
    pub created_ms: u64,
    pub last_used_ms: u64,
    pub exit: Option<i32>,
}

pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// The variables an SSH user gets: the images export the container's to /etc/environment.
fn etc_environment() -> Vec<(String, String)> {
    let Ok(text) = std::fs::read_to_string("/etc/environment") else { return Vec::new() };
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let l = l.strip_prefix("export ").unwrap_or(l);
            let (k, v) = l.split_once('=')?;
            let v = v.trim();
            let v = v.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(v);
            let v = v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')).unwrap_or(v);
            (!k.is_empty() && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
                .then(|| (k.to_string(), v.to_string()))
        })
        .collect()
}

impl Session {
    /// Starts a login shell in a new PTY of `cols`×`rows`.
    pub fn start(
        id: String,
        name: String,
        settings: &TerminalSettings,
        reaper: &Reaper,
        cols: u16,
        rows: u16,
    ) -> io::Result<(Arc<Session>, tokio::sync::oneshot::Receiver<ExitInfo>)> {
        let mut cmd = Command::new(&settings.shell);
        // A login shell, as sshd starts one: argv[0] begins with `-`.
        let shell_name = settings.shell.file_name().map_or("sh".into(), |n| n.to_string_lossy().into_owned());
        std::os::unix::process::CommandExt::arg0(&mut cmd, format!("-{shell_name}"));
        cmd.current_dir(&settings.cwd);
        let master = Pty::open(cols, rows)?.attach(&mut cmd)?;
        cmd.envs(etc_environment());
        cmd.env("TERM", "xterm-256color").env("COLORTERM", "truecolor").env("SHELL", &settings.shell);
        cmd.env("GPUBOX_TERMINAL", &id);
        cmd.env_remove("GPUBOX_SERVICE");
        for secret in crate::config::WITHHELD_ENV {
            cmd.env_remove(secret);
        }
        let who = identity(&mut cmd, settings.user.as_deref())?;
        own_session(&mut cmd, true, who);
        let (child, exit) = reaper.spawn(cmd)?;
        let pid = child.id() as i32;
        let reader = File::from(master.try_clone()?);
        let mut writer = File::from(master.try_clone()?);
        let (input, mut keys) = mpsc::channel::<Bytes>(INPUT_QUEUE);
        let vt = avt::Terminal::with_scrollback(cols as usize, rows as usize, Some(settings.scrollback))
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let session = Arc::new(Session {
            id,
            name: Mutex::new(name),
            pid,
            created_ms: now_ms(),
            last_used_ms: AtomicU64::new(now_ms()),
            input,
            master: File::from(master),
            state: Mutex::new(State {
                cols,
                rows,
                tabs: Vec::new(),
                exit: None,
                backlog: Default::default(),
                backlog_bytes: 0,
                closed: false,
                parked: None,
            }),
            work: std::sync::Condvar::new(),
            ended: tokio::sync::watch::Sender::new(None),
            next_tab: AtomicU64::new(1),
            scrollback: settings.scrollback,
        });
        let s = session.clone();
        std::thread::Builder::new().name(format!("term-{}", session.id)).spawn(move || s.pump(reader))?;
        let s = session.clone();
        std::thread::Builder::new().name(format!("term-vt-{}", session.id)).spawn(move || s.emulate(vt))?;
        // Ends when the session is dropped (the queue closes) or the PTY refuses a write (EIO:
        // the shell is gone).
        std::thread::Builder::new().name(format!("term-in-{}", session.id)).spawn(move || {
            while let Some(piece) = keys.blocking_recv() {
                if writer.write_all(&piece).is_err() {
                    break;
                }
            }
        })?;
        Ok((session, exit))
    }

    pub fn info(&self) -> Info {
        let st = self.state.lock().expect("session lock");
        Info {
            id: self.id.clone(),
            name: self.name.lock().expect("name lock").clone(),
            pid: self.pid,
            cols: st.cols,
            rows: st.rows,
            tabs: st.tabs.len(),
            created_ms: self.created_ms,
            last_used_ms: self.last_used_ms.load(Ordering::Relaxed),
            exit: st.exit,
        }
    }

    /// Reads the PTY until the shell is gone.
    fn pump(&self, mut reader: File) {
        let mut buf = vec![0u8; READ];
        loop {
            // Backpressure: while tabs are attached and none can take more, do not read.
            loop {
                let st = self.state.lock().expect("session lock");
                let open = st.tabs.is_empty() || st.tabs.iter().any(|t| !t.paused && t.tx.capacity() > 0);
                drop(st);
                if open {
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => break, // EIO: the last process holding the slave is gone
            };
            self.output(Bytes::copy_from_slice(&buf[..n]));
        }
        let mut st = self.state.lock().expect("session lock");
        st.closed = true;
        let exit = st.exit;
        drop(st);
        if let Some(code) = exit {
            self.announce_exit(code);
        }
        self.work.notify_one();
    }

    /// Tells the tabs the shell has exited (once).
    fn announce_exit(&self, code: i32) {
        self.ended.send_if_modified(|v| {
            let first = v.is_none();
            if first {
                *v = Some(code);
            }
            first
        });
    }

    /// The shell's exit code once it is announced (see `ended`).
    pub fn ended(&self) -> tokio::sync::watch::Receiver<Option<i32>> {
        self.ended.subscribe()
    }

    /// Whether this tab waits for a snapshot (its page must not be told of an exit before it).
    pub fn waits_for_snapshot(&self, tab: u64) -> bool {
        self.state.lock().expect("session lock").tabs.iter().any(|t| t.id == tab && t.behind)
    }

    /// One read of the PTY: to every tab that is up to date, and to the emulator's backlog.
    fn output(&self, chunk: Bytes) {
        let mut st = self.state.lock().expect("session lock");
        for tab in st.tabs.iter_mut() {
            // A paused tab, or one whose queue is full, misses this read: it needs a snapshot.
            if tab.paused || (!tab.behind && tab.tx.try_send(Out::Bytes(chunk.clone())).is_err()) {
                tab.behind = true;
            }
        }
        st.tabs.retain(|t| !t.tx.is_closed());
        let before = st.backlog_bytes;
        st.backlog_bytes += chunk.len();
        st.backlog.push_back(Event::Output(chunk));
        // A flood far ahead of the emulator: the oldest output it has not parsed goes (the last
        // resize among it is kept).
        let mut resize = None;
        while st.backlog_bytes > BACKLOG {
            match st.backlog.pop_front() {
                Some(Event::Output(b)) => st.backlog_bytes -= b.len(),
                Some(Event::Resize(c, r)) => resize = Some((c, r)),
                None => break,
            }
        }
        if let Some((c, r)) = resize {
            st.backlog.push_front(Event::Resize(c, r));
        }
        let wake = before < WAKE && st.backlog_bytes >= WAKE;
        drop(st);
        if wake {
            self.work.notify_one();
        }
    }

    /// The emulator: applies the backlog to the virtual terminal in batches, and between batches
    /// sends the tabs that need one a snapshot and the backlog that follows it.
    fn emulate(&self, mut vt: avt::Terminal) {
        // An incomplete UTF-8 sequence at the end of the last batch, and the batch's text.
        let mut pending: Vec<u8> = Vec::new();
        let mut text = String::new();
        let mut batch: Vec<Event> = Vec::new();
        loop {
            {
                let mut st = self.state.lock().expect("session lock");
                loop {
                    // In a flood, tabs that wait get the snapshot and the backlog behind it at
                    // once; otherwise the emulator catches up first and the snapshot is whole.
                    if st.backlog_bytes >= WAKE {
                        serve_snapshots(&mut st, &vt, &pending, self.scrollback);
                        break;
                    }
                    let waiting = st.tabs.iter().any(wants_snapshot);
                    if !st.backlog.is_empty() && (st.closed || waiting) {
                        break;
                    }
                    serve_snapshots(&mut st, &vt, &pending, self.scrollback);
                    st.tabs.retain(|t| !t.tx.is_closed());
                    // A tab waiting for room in its queue is looked at again shortly.
                    let waiting = st.tabs.iter().any(|t| t.behind && !t.paused);
                    if st.closed && !waiting {
                        st.parked = Some((vt, pending));
                        return;
                    }
                    st = if waiting {
                        self.work.wait_timeout(st, Duration::from_millis(20)).expect("session lock").0
                    } else {
                        self.work.wait(st).expect("session lock")
                    };
                }
                let mut taken = 0;
                while taken < BATCH {
                    let Some(event) = st.backlog.pop_front() else { break };
                    if let Event::Output(b) = &event {
                        taken += b.len();
                        st.backlog_bytes -= b.len();
                    }
                    batch.push(event);
                }
            }
            for event in batch.drain(..) {
                match event {
                    Event::Output(b) => decode(&mut pending, &b, &mut text),
                    Event::Resize(cols, rows) => {
                        vt.feed(text.as_str());
                        text.clear();
                        vt.resize(cols as usize, rows as usize);
                    }
                }
            }
            vt.feed(text.as_str());
            text.clear();
        }
    }

    /// Attaches a tab: returns its id, its size and its queue, whose first message is the
    /// snapshot to draw.
    pub fn attach(&self) -> (u64, (u16, u16), mpsc::Receiver<Out>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let id = self.next_tab.fetch_add(1, Ordering::Relaxed);
        let mut st = self.state.lock().expect("session lock");
        st.tabs.push(Tab { id, tx, paused: false, behind: true });
        serve_if_parked(&mut st, self.scrollback);
        let size = (st.cols, st.rows);
        drop(st);
        self.work.notify_one();
        self.last_used_ms.store(now_ms(), Ordering::Relaxed);
        (id, size, rx)
    }

    pub fn detach(&self, tab: u64) {
        self.state.lock().expect("session lock").tabs.retain(|t| t.id != tab);
        self.last_used_ms.store(now_ms(), Ordering::Relaxed);
    }

    /// A tab's flow control: paused tabs are sent nothing (and redrawn when they resume).
    pub fn set_paused(&self, tab: u64, paused: bool) {
        let mut st = self.state.lock().expect("session lock");
        if let Some(t) = st.tabs.iter_mut().find(|t| t.id == tab) {
            t.paused = paused;
        }
        serve_if_parked(&mut st, self.scrollback);
        drop(st);
        self.work.notify_one();
    }

    /// Where a tab puts keystrokes (in pieces of at most [`INPUT_PIECE`] bytes); the queue is
    /// closed once the shell is gone.
    pub fn input(&self) -> mpsc::Sender<Bytes> {
        self.input.clone()
    }

    /// A keystroke came: the session is in use.
    pub fn touch(&self) {
        self.last_used_ms.store(now_ms(), Ordering::Relaxed);
    }

    /// Sets the PTY's size (the shell gets SIGWINCH) and tells the other tabs.
    pub fn resize(&self, from_tab: u64, cols: u16, rows: u16) {
        let (cols, rows) = (cols.clamp(2, 1000), rows.clamp(1, 500));
        let mut st = self.state.lock().expect("session lock");
        if (st.cols, st.rows) == (cols, rows) {
            return;
        }
        let ws = rustix::termios::Winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 };
        let _ = rustix::termios::tcsetwinsize(&self.master, ws);
        if let Some((vt, _)) = st.parked.as_mut() {
            vt.resize(cols as usize, rows as usize);
        } else {
            st.backlog.push_back(Event::Resize(cols, rows));
        }
        st.cols = cols;
        st.rows = rows;
        for t in st.tabs.iter().filter(|t| t.id != from_tab) {
            let _ = t.tx.try_send(Out::Size(cols, rows));
        }
    }

    /// The shell exited: the tabs are told once its last output is read (the PTY closes), or
    /// after half a second if something else keeps the PTY open; the session is over.
    pub fn exited(self: &Arc<Self>, code: i32) {
        let mut st = self.state.lock().expect("session lock");
        st.exit = Some(code);
        let closed = st.closed;
        drop(st);
        if closed {
            self.announce_exit(code);
        } else {
            let me = self.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(500));
                me.announce_exit(code);
            });
        }
    }

    pub fn tabs(&self) -> usize {
        self.state.lock().expect("session lock").tabs.len()
    }

    /// Ends the shell: SIGHUP to its process group (as a closing terminal does), SIGKILL later.
    pub fn hang_up(self: &Arc<Self>) {
        use nix::sys::signal::{kill, Signal};
        let group = nix::unistd::Pid::from_raw(-self.pid);
        let _ = kill(group, Signal::SIGHUP);
        let _ = kill(group, Signal::SIGCONT);
        let me = self.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(3));
            if me.state.lock().expect("session lock").exit.is_none() {
                let _ = kill(group, Signal::SIGKILL);
            }
        });
    }
}

/// Once the emulator has parked (the shell is gone), snapshots are served here, from its last
/// state, rather than by its thread.
fn serve_if_parked(st: &mut State, scrollback: usize) {
    if let Some((vt, pending)) = st.parked.take() {
        serve_snapshots(st, &vt, &pending, scrollback);
        st.parked = Some((vt, pending));
    }
}

/// Sends each tab that needs one (attached or fell behind, not paused, with room in its queue) a
/// snapshot of `vt` and the bytes after it — an incomplete UTF-8 sequence the emulator holds
/// (`pending`), then the backlog: that is everything printed so far.
fn serve_snapshots(st: &mut State, vt: &avt::Terminal, pending: &[u8], scrollback: usize) {
    if !st.tabs.iter().any(wants_snapshot) {
        return;
    }
    // The snapshot is drawn at the emulator's size: a resize not applied yet would not match
    // the output after it.
    if st.backlog.iter().any(|e| matches!(e, Event::Resize(..))) {
        return;
    }
    let screen = super::replay::snapshot(vt, scrollback);
    let tail: Vec<Bytes> = (!pending.is_empty())
        .then(|| Bytes::copy_from_slice(pending))
        .into_iter()
        .chain(st.backlog.iter().filter_map(|e| match e {
            Event::Output(b) => Some(b.clone()),
            Event::Resize(..) => None,
        }))
        .collect();
    for t in st.tabs.iter_mut().filter(|t| wants_snapshot(t)) {
        if t.tx.try_send(Out::Snapshot { screen: screen.clone(), tail: tail.clone() }).is_ok() {
            t.behind = false;
        }
    }
}

/// Appends `data` to `text` as UTF-8, keeping a sequence split across reads in `pending` for the
/// next call; invalid bytes become U+FFFD.
fn decode(pending: &mut Vec<u8>, data: &[u8], text: &mut String) {
    let joined;
    let bytes: &[u8] = if pending.is_empty() {
        data
    } else {
        pending.extend_from_slice(data);
        joined = std::mem::take(pending);
        &joined
    };
    let mut rest = bytes;
    loop {
        match std::str::from_utf8(rest) {
            Ok(t) => {
                text.push_str(t);
                return;
            }
            Err(e) => {
                let valid = e.valid_up_to();
                text.push_str(std::str::from_utf8(&rest[..valid]).expect("checked"));
                match e.error_len() {
                    // Incomplete at the end: kept for the next read.
                    None => {
                        *pending = rest[valid..].to_vec();
                        return;
                    }
                    Some(n) => {
                        text.push('\u{fffd}');
                        rest = &rest[valid + n..];
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::decode;

    #[test]
    fn text_split_anywhere_decodes_as_a_whole() {
        let all = "héllo → wörld 🎉 done\n".as_bytes();
        let mut whole = String::new();
        decode(&mut Vec::new(), all, &mut whole);
        for cut in 0..all.len() {
            let (mut pending, mut text) = (Vec::new(), String::new());
            decode(&mut pending, &all[..cut], &mut text);
            decode(&mut pending, &all[cut..], &mut text);
            assert_eq!(text, whole, "cut at {cut}");
            assert!(pending.is_empty());
        }
        let mut text = String::new();
        decode(&mut Vec::new(), b"a\xffb", &mut text);
        assert_eq!(text, "a\u{fffd}b");
    }
}
