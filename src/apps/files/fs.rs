//! The file manager's only way to the disk: every path is resolved *beneath* an open handle on the
//! root, by the kernel (`openat2` with `RESOLVE_BENEATH`), so nothing outside the root is ever
//! read or written, whatever the path: `..`, absolute paths and symlinks that point outside fail
//! inside the kernel, and there is no window between a check and its use (no path is checked and
//! then opened again by name). Every operation works on a directory handle and a single name
//! (`*at` calls, never following a symlink in the last component).
//!
//! Paths from requests are cleaned first ([`clean`]): they are split on `/`; `.` and empty
//! segments are dropped; `..`, NUL, backslashes and control characters are refused. A symlink
//! inside the root that points elsewhere inside it is followed; one that points outside is
//! refused. The root's `.gpubox` folder (sessions, state) is invisible and untouchable, by name
//! and by where a path really leads: every handle opened is checked against the private folder's
//! real path (`/proc/self/fd`), so a symlink to it (`ln -s .gpubox priv`) or through the root
//! (`ln -s . me`, then `me/.gpubox`) leads nowhere.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{AtFlags, OFlag, RenameFlags};
use nix::sys::stat::{FileStat, Mode, SFlag};
use nix::unistd::UnlinkatFlags;
use rustix::fs::{Mode as RMode, OFlags, ResolveFlags};
use rustix::io::Errno;
use serde::Serialize;

pub use super::names::{name_from_bytes, name_to_bytes, temp_name};

/// gpubox's own state under the workspace: never listed, read or written through the file manager.
pub const PRIVATE: &str = ".gpubox";

#[derive(Debug, thiserror::Error)]
pub enum FsError {
    #[error("{0}")]
    BadPath(String),
    #[error("not found")]
    NotFound,
    #[error("already exists")]
    Exists,
    #[error("that path leads outside the workspace")]
    Outside,
    #[error("not a regular file (a folder, device, pipe or socket)")]
    NotAFile,
    #[error("not a folder")]
    NotADir,
    #[error("the folder is not empty")]
    NotEmpty,
    #[error("permission denied")]
    Denied,
    #[error("the disk is full")]
    NoSpace,
    #[error("{0}")]
    Io(io::Error),
}

impl From<Errno> for FsError {
    fn from(e: Errno) -> FsError {
        FsError::from(io::Error::from(e))
    }
}

impl From<nix::Error> for FsError {
    fn from(e: nix::Error) -> FsError {
        FsError::from(io::Error::from(e))
    }
}

impl From<io::Error> for FsError {
    fn from(e: io::Error) -> FsError {
        match e.raw_os_error() {
            Some(libc::ENOENT) => FsError::NotFound,
            Some(libc::EEXIST) => FsError::Exists,
            Some(libc::EXDEV) | Some(libc::ELOOP) => FsError::Outside,
            Some(libc::ENOTDIR) => FsError::NotADir,
            Some(libc::ENOTEMPTY) => FsError::NotEmpty,
            Some(libc::EACCES) | Some(libc::EPERM) => FsError::Denied,
            Some(libc::ENOSPC) | Some(libc::EDQUOT) => FsError::NoSpace,
            _ => FsError::Io(e),
        }
    }
}

pub type Result<T> = std::result::Result<T, FsError>;

/// A cleaned path: its components, each a plain name.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Rel(pub Vec<String>);

impl Rel {
    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// `a/b/c` (empty for the root).
    pub fn as_str(&self) -> String {
        self.0.join("/")
    }

    pub fn name(&self) -> Option<&str> {
        self.0.last().map(String::as_str)
    }

    pub fn parent(&self) -> Rel {
        Rel(self.0[..self.0.len().saturating_sub(1)].to_vec())
    }

    pub fn join(&self, name: &str) -> Rel {
        let mut v = self.0.clone();
        v.push(name.to_string());
        Rel(v)
    }

    /// `self` with a path of names a walk listed (`/a/b`, see `archive::Walk`) below it, taken as
    /// they are: they came from the disk, not a request (a `.gpubox` folder inside a copied folder
    /// is an ordinary one there, which `clean` would refuse at the root).
    pub fn join_walked(&self, sub: &str) -> Rel {
        Rel(self.0.iter().cloned().chain(sub.split('/').filter(|s| !s.is_empty()).map(String::from)).collect())
    }

    /// Whether `self` is `other` or inside it.
    pub fn within(&self, other: &Rel) -> bool {
        self.0.len() >= other.0.len() && self.0[..other.0.len()] == other.0[..]
    }
}

/// Checks one name: a plain file name, not `.` or `..`, no separators, NUL or control characters.
pub fn check_name(name: &str) -> Result<()> {
    if name.is_empty() || name == "." || name == ".." {
        return Err(FsError::BadPath(format!("\"{name}\" is not a file name")));
    }
    if name.contains('/') || name.contains('\\') {
        return Err(FsError::BadPath(format!("a name may not contain / or \\: \"{name}\"")));
    }
    if name.chars().any(|c| c == '\0' || c.is_control()) {
        return Err(FsError::BadPath("a name may not contain control characters".into()));
    }
    // The bytes on disk count (a byte that is not UTF-8 is one there, four in the API's form).
    if name_to_bytes(name).len() > 255 {
        return Err(FsError::BadPath("a name may be at most 255 bytes".into()));
    }
    Ok(())
}

/// Cleans a path from a request (already percent-decoded once).
pub fn clean(path: &str) -> Result<Rel> {
    if path.contains('\0') {
        return Err(FsError::BadPath("the path contains a NUL byte".into()));
    }
    if path.contains('\\') {
        return Err(FsError::BadPath("use / between folders, not \\".into()));
    }
    let mut out = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => return Err(FsError::BadPath("the path may not contain ..".into())),
            s => {
                check_name(s)?;
                out.push(s.to_string());
            }
        }
    }
    if out.first().is_some_and(|f| f == PRIVATE) {
        return Err(FsError::NotFound);
    }
    Ok(Rel(out))
}

#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub name: String,
    /// `file`, `dir`, `link` (a symlink that leads outside or nowhere), `other` (pipe, device…).
    pub kind: &'static str,
    pub size: u64,
    /// Milliseconds since the Unix epoch.
    pub modified: i64,
    /// A symlink that leads to something inside the root.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub symlink: bool,
}

/// A stat's modification time in milliseconds since the epoch, as listings give it.
pub fn mtime_ms(st: &FileStat) -> i64 {
    st.st_mtime * 1000 + st.st_mtime_nsec / 1_000_000
}

pub fn kind_of(st: &FileStat) -> &'static str {
    match SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT {
        SFlag::S_IFREG => "file",
        SFlag::S_IFDIR => "dir",
        SFlag::S_IFLNK => "link",
        _ => "other",
    }
}

pub struct Root {
    fd: OwnedFd,
    /// The real path of gpubox's private folder: nothing that resolves into it is opened.
    private: PathBuf,
}

/// A name or path as the kernel takes it: bytes, with the stand-ins of [`name_from_bytes`] turned
/// back into the bytes they stand for.
fn cstr(s: &str) -> Result<CString> {
    CString::new(name_to_bytes(s)).map_err(|_| FsError::BadPath("the path contains a NUL byte".into()))
}

impl Root {
    /// The root at `path`; `private` (gpubox's state folder, usually `path/.gpubox`) is never
    /// reachable through it, by any name.
    pub fn open(path: &Path, private: &Path) -> io::Result<Root> {
        std::fs::create_dir_all(path)?;
        let fd = rustix::fs::open(path, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, RMode::empty())?;
        let real = std::fs::canonicalize(path)?;
        let private = match std::fs::canonicalize(private) {
            Ok(p) => p,
            // Not made yet: where it will be.
            Err(_) => std::fs::canonicalize(private.parent().unwrap_or(path))
                .map(|p| p.join(private.file_name().unwrap_or(PRIVATE.as_ref())))
                .unwrap_or_else(|_| real.join(PRIVATE)),
        };
        Ok(Root { fd, private })
    }

    /// Where an open handle really is (the kernel's record of it), joined with `name`.
    pub fn real(fd: &OwnedFd, name: Option<&std::ffi::OsStr>) -> Option<PathBuf> {
        let p = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).ok()?;
        Some(match name {
            Some(n) => p.join(n),
            None => p,
        })
    }

    /// Refuses a handle (or a name in a folder handle) that leads into the private folder. Without
    /// `/proc` the check cannot be made and the name rule alone applies.
    fn guard(&self, fd: &OwnedFd, name: Option<&std::ffi::OsStr>) -> Result<()> {
        match Root::real(fd, name) {
            Some(p) if p.starts_with(&self.private) => Err(FsError::NotFound),
            _ => Ok(()),
        }
    }

    /// Where `rel` really is on the disk, symlinks resolved (for "is this inside that" checks
    /// that a symlink could fool if made on names).
    pub fn real_path(&self, rel: &Rel) -> Result<PathBuf> {
        let fd = self.open_beneath(rel, libc::O_PATH, 0)?;
        Root::real(&fd, None).ok_or_else(|| FsError::BadPath("/proc is not mounted".into()))
    }

    /// `openat2(root, rel, flags, RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)`.
    fn open_beneath(&self, rel: &Rel, flags: i32, mode: u32) -> Result<OwnedFd> {
        if flags & libc::O_CREAT != 0 && !rel.is_root() {
            // Where it would be created is checked before anything is created.
            self.parent(rel)?;
        }
        let path = if rel.is_root() { ".".to_string() } else { rel.as_str() };
        let c = cstr(&path)?;
        let oflags = OFlags::from_bits_retain(flags as _) | OFlags::CLOEXEC;
        let mode = if flags & libc::O_CREAT != 0 { RMode::from_bits_truncate(mode as _) } else { RMode::empty() };
        loop {
            let resolve = ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS;
            match rustix::fs::openat2(&self.fd, c.as_c_str(), oflags, mode, resolve) {
                Ok(fd) => {
                    self.guard(&fd, None)?;
                    return Ok(fd);
                }
                Err(Errno::INTR | Errno::AGAIN) => continue,
                Err(Errno::NOSYS) => return self.open_nofollow(rel, oflags, mode),
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// For kernels before 5.6 (no `openat2`): one component at a time, never following a
    /// symlink. Safe, but symlinks inside the root are not followed.
    fn open_nofollow(&self, rel: &Rel, flags: OFlags, mode: RMode) -> Result<OwnedFd> {
        let mut dir =
            rustix::fs::openat(&self.fd, c".", OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, RMode::empty())?;
        let n = rel.0.len();
        for (i, seg) in rel.0.iter().enumerate() {
            let f = if i + 1 == n {
                flags | OFlags::NOFOLLOW
            } else {
                OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC
            };
            dir = rustix::fs::openat(&dir, cstr(seg)?.as_c_str(), f, mode)?;
        }
        if n == 0 {
            dir = rustix::fs::openat(&dir, c".", flags, RMode::empty())?;
        }
        self.guard(&dir, None)?;
        Ok(dir)
    }

    /// A folder beneath this root as a root of its own: every name through it is resolved
    /// beneath that folder (a share link's). The private folder stays out of reach.
    pub fn sub(&self, rel: &Rel) -> Result<Root> {
        let fd = self.open_beneath(rel, libc::O_PATH | libc::O_DIRECTORY, 0)?;
        Ok(Root { fd, private: self.private.clone() })
    }

    /// A folder, for listing and `*at` calls.
    pub fn dir(&self, rel: &Rel) -> Result<OwnedFd> {
        self.open_beneath(rel, libc::O_RDONLY | libc::O_DIRECTORY, 0)
    }

    /// The folder holding `rel` and its name (as the kernel takes it).
    pub fn parent(&self, rel: &Rel) -> Result<(OwnedFd, CString)> {
        let name = rel.name().ok_or_else(|| FsError::BadPath("the workspace itself cannot be changed".into()))?;
        let dir = self.dir(&rel.parent())?;
        let c = cstr(name)?;
        self.guard(&dir, Some(std::ffi::OsStr::from_bytes(c.as_bytes())))?;
        Ok((dir, c))
    }

    /// What `rel` is; a symlink is followed (inside the root).
    pub fn stat(&self, rel: &Rel) -> Result<FileStat> {
        let fd = self.open_beneath(rel, libc::O_PATH, 0)?;
        Ok(nix::sys::stat::fstat(fd.as_raw_fd())?)
    }

    /// Opens a regular file for reading. A pipe, device or socket is refused without opening it
    /// for reading (a FIFO would hang the request).
    pub fn open_file(&self, rel: &Rel) -> Result<File> {
        let fd = self.open_beneath(rel, libc::O_PATH, 0)?;
        let st = nix::sys::stat::fstat(fd.as_raw_fd())?;
        if kind_of(&st) != "file" {
            return Err(FsError::NotAFile);
        }
        let file = self.open_beneath(rel, libc::O_RDONLY | libc::O_NONBLOCK, 0)?;
        let st2 = nix::sys::stat::fstat(file.as_raw_fd())?;
        if kind_of(&st2) != "file" || st2.st_ino != st.st_ino || st2.st_dev != st.st_dev {
            return Err(FsError::NotAFile); // replaced between the two opens
        }
        Ok(File::from(file))
    }

    /// Opens a file or a folder (not a pipe or device) for its extended attributes.
    pub fn open_any(&self, rel: &Rel) -> Result<File> {
        let st = self.stat(rel)?;
        if !matches!(kind_of(&st), "file" | "dir") {
            return Err(FsError::NotAFile);
        }
        Ok(File::from(self.open_beneath(rel, libc::O_RDONLY | libc::O_NONBLOCK, 0)?))
    }

    /// The entries of a folder (`.gpubox` at the root left out), in the order the folder gives.
    pub fn list(&self, rel: &Rel) -> Result<Vec<Entry>> {
        let dir = self.dir(rel)?;
        let raw = dir.as_raw_fd();
        let mut d = nix::dir::Dir::openat(
            Some(raw),
            ".",
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        // The private folder is left out wherever it shows, under any name that leads here.
        let hide: Option<Vec<u8>> = match Root::real(&dir, None) {
            Some(real) if Some(real.as_path()) == self.private.parent() => {
                self.private.file_name().map(|n| n.as_bytes().to_vec())
            }
            Some(_) => None,
            None => rel.is_root().then(|| PRIVATE.as_bytes().to_vec()),
        };
        let names: Vec<CString> = d
            .iter()
            .flatten()
            .map(|e| e.file_name().to_owned())
            .filter(|n| {
                let n = n.as_bytes();
                n != b"." && n != b".." && hide.as_deref() != Some(n)
            })
            .collect();
        let entry = |c: &CString| -> Option<Entry> {
            let lst = nix::sys::stat::fstatat(Some(raw), c.as_c_str(), AtFlags::AT_SYMLINK_NOFOLLOW).ok()?;
            let name = name_from_bytes(c.as_bytes());
            let (st, symlink) = if kind_of(&lst) == "link" {
                // Followed only if it stays inside the root.
                match self.stat(&rel.join(&name)) {
                    Ok(st) => (st, true),
                    Err(_) => (lst, false),
                }
            } else {
                (lst, false)
            };
            Some(Entry {
                name,
                kind: kind_of(&st),
                size: if kind_of(&st) == "file" { st.st_size as u64 } else { 0 },
                modified: mtime_ms(&st),
                symlink,
            })
        };
        // The kernel's stat of each entry is most of a listing's time: a big folder is statted
        // by one thread per core (up to 4), each taking a contiguous run of names.
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
        if names.len() < 4096 || threads < 2 {
            return Ok(names.iter().filter_map(entry).collect());
        }
        let per = names.len().div_ceil(threads);
        Ok(std::thread::scope(|s| {
            let parts: Vec<_> =
                names.chunks(per).map(|c| s.spawn(|| c.iter().filter_map(entry).collect::<Vec<_>>())).collect();
            parts.into_iter().flat_map(|p| p.join().expect("a listing thread panicked")).collect()
        }))
    }

    pub fn mkdir(&self, rel: &Rel) -> Result<()> {
        let (dir, name) = self.parent(rel)?;
        nix::sys::stat::mkdirat(Some(dir.as_raw_fd()), name.as_c_str(), Mode::from_bits_truncate(0o755))?;
        Ok(())
    }

    /// Creates `rel` and every missing folder above it.
    pub fn mkdir_all(&self, rel: &Rel) -> Result<()> {
        for i in 1..=rel.0.len() {
            match self.mkdir(&Rel(rel.0[..i].to_vec())) {
                Ok(()) | Err(FsError::Exists) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// A new, empty file that must not exist yet.
    pub fn create_new(&self, rel: &Rel) -> Result<File> {
        let fd = self.open_beneath(rel, libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW, 0o644)?;
        Ok(File::from(fd))
    }

    /// Renames `from` to `to`; with `replace` an existing `to` is replaced (not a folder).
    pub fn rename(&self, from: &Rel, to: &Rel, replace: bool) -> Result<()> {
        if to.within(from) && to != from {
            return Err(FsError::BadPath("a folder cannot move into itself".into()));
        }
        let (fdir, fname) = self.parent(from)?;
        let (tdir, tname) = self.parent(to)?;
        let flags = if replace { RenameFlags::empty() } else { RenameFlags::RENAME_NOREPLACE };
        nix::fcntl::renameat2(
            Some(fdir.as_raw_fd()),
            fname.as_c_str(),
            Some(tdir.as_raw_fd()),
            tname.as_c_str(),
            flags,
        )?;
        Ok(())
    }

    /// Moves a file from outside the root (gpubox's own upload area) to `to`: a rename when it is
    /// on the same filesystem, else a copy to a hidden temporary name beside `to` and a rename.
    pub fn adopt(&self, src: &Path, to: &Rel, replace: bool) -> Result<()> {
        let (dir, name) = self.parent(to)?;
        let flags = if replace { RenameFlags::empty() } else { RenameFlags::RENAME_NOREPLACE };
        match nix::fcntl::renameat2(None, src, Some(dir.as_raw_fd()), name.as_c_str(), flags) {
            Ok(()) => return Ok(()),
            Err(nix::errno::Errno::EXDEV) => {}
            Err(e) => return Err(e.into()),
        }
        // A tag of its own: two uploads finishing onto one name must not share a temporary file.
        let tag = format!("copy-{}", crate::random::hex(4)?);
        let tmp = to.parent().join(&temp_name(to.name().unwrap_or("file"), &tag));
        let _ = self.remove(&tmp);
        let copied = (|| {
            let mut out = self.create_new(&tmp)?;
            std::io::copy(&mut File::open(src)?, &mut out)?;
            out.sync_all()?;
            self.rename(&tmp, to, replace)
        })();
        if copied.is_err() {
            let _ = self.remove(&tmp);
        } else {
            let _ = std::fs::remove_file(src);
        }
        copied
    }

    /// Removes a file, a symlink (not what it points to) or a whole folder.
    pub fn remove(&self, rel: &Rel) -> Result<()> {
        let (dir, name) = self.parent(rel)?;
        remove_at(dir.as_fd(), &name)
    }

    /// Free and total bytes of the root's filesystem.
    pub fn space(&self) -> Option<(u64, u64)> {
        let st = nix::sys::statvfs::fstatvfs(&self.fd).ok()?;
        let f = st.fragment_size() as u64;
        Some((st.blocks_available() as u64 * f, st.blocks() as u64 * f))
    }
}

/// Removes a name in a folder, a folder with everything in it; names are taken as the bytes they
/// are, so nothing inside is left behind for not being UTF-8.
fn remove_at(dir: BorrowedFd<'_>, name: &std::ffi::CStr) -> Result<()> {
    let st = nix::sys::stat::fstatat(Some(dir.as_raw_fd()), name, AtFlags::AT_SYMLINK_NOFOLLOW)?;
    if kind_of(&st) != "dir" {
        nix::unistd::unlinkat(Some(dir.as_raw_fd()), name, UnlinkatFlags::NoRemoveDir)?;
        return Ok(());
    }
    let sub = rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        RMode::empty(),
    )?;
    let names: Vec<CString> = {
        let mut d = nix::dir::Dir::openat(
            Some(sub.as_raw_fd()),
            ".",
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        d.iter()
            .flatten()
            .map(|e| e.file_name().to_owned())
            .filter(|n| n.as_bytes() != b"." && n.as_bytes() != b"..")
            .collect()
    };
    for n in names {
        remove_at(sub.as_fd(), &n)?;
    }
    nix::unistd::unlinkat(Some(dir.as_raw_fd()), name, UnlinkatFlags::RemoveDir)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleaning() {
        assert_eq!(clean("/a//b/./c/").unwrap().0, ["a", "b", "c"]);
        assert!(clean("").unwrap().is_root());
        for bad in ["../x", "a/../../b", "a\\b", "a\0b", "..", "a/\u{7}"] {
            assert!(clean(bad).is_err(), "{bad:?}");
        }
        assert!(matches!(clean(".gpubox/sessions.json"), Err(FsError::NotFound)));
        assert!(clean("x/.gpubox").is_ok(), "only the root's .gpubox is private");
    }

    #[test]
    fn nothing_escapes_the_root() {
        let outer = tempfile::tempdir().unwrap();
        let root_path = outer.path().join("root");
        std::fs::create_dir_all(root_path.join("sub")).unwrap();
        std::fs::write(outer.path().join("secret"), "outside").unwrap();
        std::fs::write(root_path.join("sub/inside.txt"), "inside").unwrap();
        std::os::unix::fs::symlink("../secret", root_path.join("leak")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", root_path.join("abs")).unwrap();
        std::os::unix::fs::symlink("sub/inside.txt", root_path.join("ok-link")).unwrap();
        let root = Root::open(&root_path, &root_path.join(PRIVATE)).unwrap();
        assert!(matches!(root.open_file(&Rel(vec!["leak".into()])), Err(FsError::Outside)));
        assert!(matches!(root.open_file(&Rel(vec!["abs".into()])), Err(FsError::Outside)));
        let mut s = String::new();
        use std::io::Read;
        root.open_file(&Rel(vec!["ok-link".into()])).unwrap().read_to_string(&mut s).unwrap();
        assert_eq!(s, "inside");
        // Removing a symlink removes the link, never its target.
        root.remove(&Rel(vec!["leak".into()])).unwrap();
        assert!(outer.path().join("secret").exists());
        let listed = root.list(&Rel::default()).unwrap();
        let abs = listed.iter().find(|e| e.name == "abs").unwrap();
        assert_eq!((abs.kind, abs.symlink), ("link", false));
        let ok = listed.iter().find(|e| e.name == "ok-link").unwrap();
        assert_eq!((ok.kind, ok.symlink, ok.size), ("file", true, 6));
    }
}
