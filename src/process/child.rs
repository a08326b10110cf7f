//! What every child gpubox starts needs, services and terminal shells alike: its own session
//! and process group, optionally a controlling terminal and another user, death with gpubox
//! (`PR_SET_PDEATHSIG`), and the open-file limit gpubox was given.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use nix::fcntl::{fcntl, FcntlArg, FdFlag};
use nix::pty::{openpty, Winsize};

pub struct Identity {
    uid: libc::uid_t,
    gid: libc::gid_t,
    groups: Vec<libc::gid_t>,
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
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else { return 1024 };
    if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
        INHERITED_NOFILE.store(soft, std::sync::atomic::Ordering::Relaxed);
        return hard;
    }
    soft
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

/// A new pseudo-terminal of `cols`×`rows`, both ends closed on exec.
pub struct Pty {
    /// gpubox's end: what the child prints is read here, keys are written here.
    pub master: OwnedFd,
    slave: OwnedFd,
}

impl Pty {
    pub fn open(cols: u16, rows: u16) -> io::Result<Pty> {
        let size = Winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 };
        let pty = openpty(Some(&size), None).map_err(io::Error::from)?;
        set_cloexec(&pty.master)?;
        set_cloexec(&pty.slave)?;
        Ok(Pty { master: pty.master, slave: pty.slave })
    }

    /// Gives the child the terminal as stdin, stdout and stderr (made its controlling terminal by
    /// [`own_session`] with `tty`), and returns the master. The spawner drops `cmd` and with it
    /// the last copies of the slave: the master reads EOF/EIO when the child exits.
    pub fn attach(self, cmd: &mut Command) -> io::Result<OwnedFd> {
        cmd.stdin(Stdio::from(self.slave.try_clone()?))
            .stdout(Stdio::from(self.slave.try_clone()?))
            .stderr(Stdio::from(self.slave));
        Ok(self.master)
    }
}
