//! Starting one service process: its own session and process group, optionally a PTY, optionally
//! another user, and one thread per output stream pumping lines into the log hub.

use std::ffi::CString;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use nix::fcntl::{fcntl, FcntlArg, FdFlag};
use nix::pty::{openpty, Winsize};
use tokio::sync::oneshot;

use super::reaper::{ExitInfo, Reaper};
use crate::config::Service;
use crate::logs::{Hub, LineBatch, LineSplitter, Stream};

/// Terminal size given to `tty = true` services (progress bars size themselves to it).
const TTY_SIZE: Winsize = Winsize { ws_row: 50, ws_col: 160, ws_xpixel: 0, ws_ypixel: 0 };

pub struct Running {
    /// Also the process group id: each service leads its own group.
    pub pid: i32,
    pub exit: oneshot::Receiver<ExitInfo>,
    /// Each resolves when an output stream reached its end.
    pub pumps: Vec<oneshot::Receiver<()>>,
}

pub struct Identity {
    uid: libc::uid_t,
    gid: libc::gid_t,
    groups: Vec<libc::gid_t>,
}

pub fn spawn(spec: &Service, reaper: &Reaper, hub: &Hub) -> io::Result<Running> {
    let mut cmd = Command::new(&spec.command[0]);
    cmd.args(&spec.command[1..]).current_dir(&spec.cwd).stdin(Stdio::null());
    cmd.env("GPUBOX_SERVICE", &spec.name);

    let identity = identity(&mut cmd, spec.user.as_deref())?;

    let mut outputs: Vec<(Stream, OwnedFd)> = Vec::new();
    if spec.tty {
        let pty = openpty(Some(&TTY_SIZE), None).map_err(io::Error::from)?;
        set_cloexec(&pty.master)?;
        set_cloexec(&pty.slave)?;
        cmd.stdin(Stdio::from(pty.slave.try_clone()?));
        cmd.stdout(Stdio::from(pty.slave.try_clone()?));
        cmd.stderr(Stdio::from(pty.slave));
        cmd.env("TERM", "xterm-256color");
        outputs.push((Stream::Tty, pty.master));
    } else {
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    }
    // The service's own env wins over gpubox's defaults above.
    cmd.envs(&spec.env);

    own_session(&mut cmd, spec.tty, identity);

    // The spawner drops `cmd`, and so our copies of the PTY slave: the master sees EOF when the
    // child exits.
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

/// Resolves `user` (its ids, groups and home) and sets `HOME`, `USER` and `LOGNAME` for it.
pub fn identity(cmd: &mut Command, user: Option<&str>) -> io::Result<Option<Identity>> {
    let Some(name) = user else { return Ok(None) };
    let user = nix::unistd::User::from_name(name)
        .map_err(io::Error::from)?
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("no user named {name}")))?;
    let cname = CString::new(name).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let groups = nix::unistd::getgrouplist(&cname, user.gid).map_err(io::Error::from)?;
    cmd.env("HOME", &user.dir).env("USER", name).env("LOGNAME", name);
    Ok(Some(Identity {
        uid: user.uid.as_raw(),
        gid: user.gid.as_raw(),
        groups: groups.iter().map(|g| g.as_raw()).collect(),
    }))
}

/// The open-file limit gpubox was started with, for its children (0: not raised).
static INHERITED_NOFILE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Raises gpubox's own soft open-file limit to the hard one (every connection is a descriptor, a
/// proxied one two) and returns the limit now in force. Services still get the limit gpubox was
/// given: some programs size tables by it or still use `select`.
pub fn raise_open_files() -> u64 {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit with a valid pointer to a local struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 1024;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit { rlim_cur: lim.rlim_max, rlim_max: lim.rlim_max };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                INHERITED_NOFILE.store(lim.rlim_cur, std::sync::atomic::Ordering::Relaxed);
                return lim.rlim_max;
            }
        }
    }
    lim.rlim_cur
}

/// Makes the child lead a new session (and process group); with `tty`, its stdin (a PTY slave)
/// becomes its controlling terminal; with an identity, it drops to that user.
pub fn own_session(cmd: &mut Command, tty: bool, identity: Option<Identity>) {
    // SAFETY: only async-signal-safe calls (setsid, get/setrlimit, ioctl, setgroups, setgid, setuid,
    // prctl, getppid) run between fork and exec, on data prepared before the fork.
    let nofile = INHERITED_NOFILE.load(std::sync::atomic::Ordering::Relaxed);
    let parent = std::process::id() as libc::pid_t;
    unsafe {
        cmd.pre_exec(move || {
            if libc::setsid() < 0 {
                return Err(io::Error::last_os_error());
            }
            if nofile > 0 {
                let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
                if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
                    lim.rlim_cur = nofile as libc::rlim_t;
                    libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
                }
            }
            if tty && libc::ioctl(0, libc::TIOCSCTTY as _, 0) < 0 {
                return Err(io::Error::last_os_error());
            }
            if let Some(id) = &identity {
                if libc::setgroups(id.groups.len() as _, id.groups.as_ptr()) < 0
                    || libc::setgid(id.gid) < 0
                    || libc::setuid(id.uid) < 0
                {
                    return Err(io::Error::last_os_error());
                }
            }
            // Killed when gpubox dies, even by SIGKILL (after the change of user, which clears
            // it). If gpubox died already, do not start at all.
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0) < 0 {
                return Err(io::Error::last_os_error());
            }
            if libc::getppid() != parent {
                // gpubox exited while starting this process (no allocation between fork and exec).
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
}

pub fn set_cloexec(fd: &OwnedFd) -> io::Result<()> {
    fcntl(fd.as_raw_fd(), FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC)).map_err(io::Error::from)?;
    Ok(())
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
