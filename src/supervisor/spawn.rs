//! Starting one service process (see `process` for what every child gets): optionally on a PTY,
//! and one thread per output stream pumping lines into the log hub.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::OwnedFd;
use std::process::{Command, Stdio};

use tokio::sync::oneshot;

use crate::config::Service;
use crate::logs::{Hub, LineBatch, LineSplitter, Stream};
use crate::process::{identity, own_session, ExitInfo, Pty, Reaper};

/// Terminal size given to `tty = true` services (progress bars size themselves to it).
const TTY_COLS: u16 = 160;
const TTY_ROWS: u16 = 50;

pub struct Running {
    /// Also the process group id: each service leads its own group.
    pub pid: i32,
    pub exit: oneshot::Receiver<ExitInfo>,
    /// Each resolves when an output stream reached its end.
    pub pumps: Vec<oneshot::Receiver<()>>,
}

pub fn spawn(spec: &Service, reaper: &Reaper, hub: &Hub) -> io::Result<Running> {
    let mut cmd = Command::new(&spec.command[0]);
    cmd.args(&spec.command[1..]).current_dir(&spec.cwd).stdin(Stdio::null());
    cmd.env("GPUBOX_SERVICE", &spec.name);
    for secret in crate::config::WITHHELD_ENV {
        cmd.env_remove(secret);
    }

    let identity = identity(&mut cmd, spec.user.as_deref())?;

    let mut outputs: Vec<(Stream, OwnedFd)> = Vec::new();
    if spec.tty {
        let master = Pty::open(TTY_COLS, TTY_ROWS)?.attach(&mut cmd)?;
        cmd.env("TERM", "xterm-256color");
        outputs.push((Stream::Tty, master));
    } else {
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    }
    // The service's own env wins over gpubox's defaults above.
    cmd.envs(&spec.env);

    own_session(&mut cmd, spec.tty, identity);

    let (mut child, exit) = reaper.spawn(cmd)?;
    if let Some(out) = child.stdout.take() {
        outputs.push((Stream::Stdout, OwnedFd::from(out)));
    }
    if let Some(err) = child.stderr.take() {
        outputs.push((Stream::Stderr, OwnedFd::from(err)));
    }
    let pid = child.id() as i32;
    let pumps = outputs.into_iter().map(|(stream, fd)| pump(hub, &spec.name, stream, fd)).collect();
    Ok(Running { pid, exit, pumps })
}

/// Reads one output stream on its own thread until it ends. Blocking reads keep this simple and
/// give natural backpressure: while a line is being written to disk, the child's pipe fills and
/// the child waits, instead of gpubox buffering without bound.
fn pump(hub: &Hub, service: &str, stream: Stream, fd: OwnedFd) -> oneshot::Receiver<()> {
    let (done_tx, done_rx) = oneshot::channel();
    let writer = hub.writer(service);
    let name = format!("log-{service}-{}", stream.as_str());
    let spawned = std::thread::Builder::new().stack_size(128 * 1024).name(name).spawn(move || {
        let mut src = File::from(fd);
        let mut buf = vec![0u8; 64 * 1024];
        let mut splitter = LineSplitter::default();
        loop {
            match src.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    let mut batch = LineBatch::default();
                    let live = splitter.feed(&buf[..n], &mut batch);
                    writer.lines(stream, batch);
                    if let Some(live) = live {
                        writer.live(stream, live);
                    }
                    writer.flush();
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // EIO is how a PTY master reports that the last slave closed.
                Err(_) => break,
            }
        }
        let mut rest = LineBatch::default();
        splitter.finish(&mut rest);
        writer.lines(stream, rest);
        writer.clear_live();
        writer.flush();
        let _ = done_tx.send(());
    });
    if let Err(e) = spawned {
        hub.event(format!("{service}: cannot start a log reader thread: {e}"));
    }
    done_rx
}
