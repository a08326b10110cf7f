//! A terminal session: a login shell in a PTY, a virtual terminal (avt) that keeps its screen
//! and scrollback, and the tabs attached to it. The session outlives its tabs: it ends when the
//! shell exits, when it is closed, or after an idle limit.
//!
//! One thread per session reads the PTY, feeds the virtual terminal and hands the bytes to every
//! attached tab, all under the session's lock, so a tab that attaches gets a snapshot and then
//! exactly the bytes that followed it. Flow control: each tab has a small queue; while every
//! attached tab's queue is full (or the tab asked to pause), the reader stops reading, the PTY's
//! buffer fills, and the program writing (`yes`, `cat` of a huge file) blocks — backpressure from
//! the browser to the program, with memory bounded by the queues. A tab that falls behind while
//! another keeps up drops bytes and gets a fresh snapshot when it catches up.
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

/// What a tab receives.
#[derive(Debug)]
pub enum Out {
    /// Terminal output.
    Bytes(Bytes),
    /// Redraw from scratch (the tab fell behind): reset, then this snapshot.
    Snapshot(Bytes),
    /// The PTY's size changed (another tab resized it).
    Size(u16, u16),
    /// The shell exited with this code; the session is over.
    Exit(i32),
}

struct Tab {
    id: u64,
    tx: mpsc::Sender<Out>,
    paused: bool,
    /// Bytes were dropped for this tab: it needs a snapshot before more bytes.
    behind: bool,
}

struct State {
    vt: avt::Terminal,
    cols: u16,
    rows: u16,
    tabs: Vec<Tab>,
    exit: Option<i32>,
    /// An incomplete UTF-8 sequence at the end of the last read.
    pending: Vec<u8>,
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
            state: Mutex::new(State { vt, cols, rows, tabs: Vec::new(), exit: None, pending: Vec::new() }),
            next_tab: AtomicU64::new(1),
            scrollback: settings.scrollback,
        });
        let s = session.clone();
        std::thread::Builder::new().name(format!("term-{}", session.id)).spawn(move || s.pump(reader))?;
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
            self.output(&buf[..n]);
        }
    }

    fn output(&self, data: &[u8]) {
        let mut st = self.state.lock().expect("session lock");
        // The virtual terminal takes text: decode, keeping a sequence split across reads.
        let mut bytes = std::mem::take(&mut st.pending);
        bytes.extend_from_slice(data);
        let text = match std::str::from_utf8(&bytes) {
            Ok(t) => t.to_string(),
            Err(e) if e.error_len().is_none() => {
                let valid = e.valid_up_to();
                st.pending = bytes[valid..].to_vec();
                String::from_utf8_lossy(&bytes[..valid]).into_owned()
            }
            Err(_) => String::from_utf8_lossy(&bytes).into_owned(),
        };
        st.vt.feed(text.as_str());
        let chunk = Bytes::copy_from_slice(data);
        let snapshot = st.tabs.iter().any(|t| t.behind).then(|| super::replay::snapshot(&st.vt, self.scrollback));
        for tab in st.tabs.iter_mut() {
            if tab.paused {
                tab.behind = true;
                continue;
            }
            if tab.behind {
                // Caught up again: a snapshot holds everything up to and including this read.
                if let Some(s) = &snapshot {
                    if tab.tx.try_send(Out::Snapshot(s.clone())).is_ok() {
                        tab.behind = false;
                    }
                }
                continue;
            }
            if tab.tx.try_send(Out::Bytes(chunk.clone())).is_err() {
                tab.behind = true;
            }
        }
        st.tabs.retain(|t| !t.tx.is_closed());
    }

    /// Attaches a tab: returns its id, the snapshot to draw first, and its queue.
    pub fn attach(&self) -> (u64, Bytes, (u16, u16), mpsc::Receiver<Out>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let id = self.next_tab.fetch_add(1, Ordering::Relaxed);
        let mut st = self.state.lock().expect("session lock");
        let snapshot = super::replay::snapshot(&st.vt, self.scrollback);
        if let Some(code) = st.exit {
            let _ = tx.try_send(Out::Exit(code));
        }
        st.tabs.push(Tab { id, tx, paused: false, behind: false });
        self.last_used_ms.store(now_ms(), Ordering::Relaxed);
        (id, snapshot, (st.cols, st.rows), rx)
    }

    pub fn detach(&self, tab: u64) {
        self.state.lock().expect("session lock").tabs.retain(|t| t.id != tab);
        self.last_used_ms.store(now_ms(), Ordering::Relaxed);
    }

    /// A tab's flow control: paused tabs are sent nothing (and redrawn when they resume).
    pub fn set_paused(&self, tab: u64, paused: bool) {
        let mut st = self.state.lock().expect("session lock");
        let mut snapshot = None;
        if !paused && st.tabs.iter().any(|t| t.id == tab && t.behind) {
            snapshot = Some(super::replay::snapshot(&st.vt, self.scrollback));
        }
        if let Some(t) = st.tabs.iter_mut().find(|t| t.id == tab) {
            t.paused = paused;
            if let Some(s) = snapshot {
                if t.tx.try_send(Out::Snapshot(s)).is_ok() {
                    t.behind = false;
                }
            }
        }
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
        st.vt.resize(cols as usize, rows as usize);
        st.cols = cols;
        st.rows = rows;
        for t in st.tabs.iter().filter(|t| t.id != from_tab) {
            let _ = t.tx.try_send(Out::Size(cols, rows));
        }
    }

    /// The shell exited: every tab is told, and the session is over.
    pub fn exited(&self, code: i32) {
        let mut st = self.state.lock().expect("session lock");
        st.exit = Some(code);
        for t in &st.tabs {
            let _ = t.tx.try_send(Out::Exit(code));
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
