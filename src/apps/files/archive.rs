//! Folders and selections as a ZIP or a tar built while it is sent: no temporary file, constant
//! memory, the first byte leaves at once. The ZIP stores files as they are (models are already
//! compressed; storing keeps it as fast as the disk), with data descriptors (sizes and CRC after
//! each file's data, so nothing is read twice) and ZIP64 records for files and archives over 4 GiB.

use std::io::{self, Read, Write};

use super::fs::{Rel, Root};

/// One file or folder of the archive, with its path inside it.
pub struct Item {
    pub rel: Rel,
    pub name: String,
}

/// Everything under `items`, depth first, names sorted, made while it is read (nothing is
/// collected up front): (path in the archive, where it is, is it a folder).
///
/// A symlinked folder is followed (inside the root) unless the folder it leads to is already in
/// the walk or holds what is being walked: a link to `.` or to a parent adds nothing, two links to
/// one folder add it once, so the walk ends and is no bigger than the tree itself.
pub struct Walk<'a> {
    root: &'a Root,
    /// Still to visit, the next on top; `true` for the items asked for.
    stack: Vec<(Item, bool)>,
    /// Folders already visited, by device and inode.
    seen: std::collections::HashSet<(u64, u64)>,
    /// The folders above the items asked for: never entered again from below.
    above: std::collections::HashSet<(u64, u64)>,
}

fn identity(st: &nix::sys::stat::FileStat) -> (u64, u64) {
    (st.st_dev, st.st_ino)
}

impl<'a> Walk<'a> {
    pub fn new(root: &'a Root, items: Vec<Item>) -> Walk<'a> {
        let mut above = std::collections::HashSet::new();
        for item in &items {
            let mut rel = item.rel.clone();
            while !rel.is_root() {
                rel = rel.parent();
                if let Ok(st) = root.stat(&rel) {
                    above.insert(identity(&st));
                }
            }
        }
        let stack = items.into_iter().rev().map(|i| (i, true)).collect();
        Walk { root, stack, seen: Default::default(), above }
    }
}

impl Iterator for Walk<'_> {
    type Item = (String, Rel, bool);

    fn next(&mut self) -> Option<Self::Item> {
        while let Some((item, top)) = self.stack.pop() {
            let Ok(st) = self.root.stat(&item.rel) else { continue };
            let dir = st.st_mode & libc::S_IFMT == libc::S_IFDIR;
            if dir {
                if (!top && self.above.contains(&identity(&st))) || !self.seen.insert(identity(&st)) {
                    continue;
                }
                if let Ok(mut entries) = self.root.list(&item.rel) {
                    entries.retain(|e| e.kind == "file" || e.kind == "dir");
                    entries.sort_by(|a, b| b.name.cmp(&a.name));
                    self.stack.extend(entries.into_iter().map(|e| {
                        (Item { rel: item.rel.join(&e.name), name: format!("{}/{}", item.name, e.name) }, false)
                    }));
                }
            }
            return Some((item.name, item.rel, dir));
        }
        None
    }
}

/// A name as its bytes on disk (a tar keeps names as bytes; see `fs::name_from_bytes`).
fn on_disk(name: &str) -> std::path::PathBuf {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::OsStr::from_bytes(&super::fs::name_to_bytes(name)).into()
}

/// Writes a tar of `entries` to `out`.
pub fn tar(root: &Root, entries: impl IntoIterator<Item = (String, Rel, bool)>, out: impl Write) -> io::Result<()> {
    let mut b = tar::Builder::new(out);
    b.mode(tar::HeaderMode::Deterministic);
    for (name, rel, dir) in entries {
        let mut h = tar::Header::new_gnu();
        if dir {
            h.set_entry_type(tar::EntryType::Directory);
            h.set_mode(0o755);
            h.set_size(0);
            b.append_data(&mut h, on_disk(&format!("{name}/")), io::empty())?;
        } else {
            let Ok(f) = root.open_file(&rel) else { continue };
            let len = f.metadata()?.len();
            h.set_entry_type(tar::EntryType::Regular);
            h.set_mode(0o644);
            h.set_size(len);
            if let Ok(m) = f.metadata().and_then(|m| m.modified()) {
                h.set_mtime(m.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()));
            }
            // Exactly `len` bytes, even if the file grows meanwhile.
            b.append_data(&mut h, on_disk(&name), ExactReader { inner: f.take(len), left: len })?;
        }
    }
    b.into_inner()?.flush()
}

/// Pads with zeros if the file shrank while it was read, so the archive stays well-formed.
struct ExactReader<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for ExactReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let want = buf.len().min(self.left as usize);
        let n = match self.inner.read(&mut buf[..want])? {
            0 => {
                buf[..want].fill(0);
                want
            }
            n => n,
        };
        self.left -= n as u64;
        Ok(n)
    }
}

/// A Write that counts what went through.
struct Counter<W> {
    inner: W,
    n: u64,
}

impl<W: Write> Write for Counter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.n += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

struct Central {
    name: Vec<u8>,
    crc: u32,
    size: u64,
    offset: u64,
    dir: bool,
    dos_time: (u16, u16),
}

fn dos_time(t: std::time::SystemTime) -> (u16, u16) {
    let secs = t.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()) as i64;
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    // Civil date from days since 1970 (Howard Hinnant's algorithm).
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    if y < 1980 {
        return (0, (1 << 5) | 1);
    }
    let time = (((rem / 3600) << 11) | (((rem % 3600) / 60) << 5) | ((rem % 60) / 2)) as u16;
    let date = (((y - 1980) << 9) | (m << 5) | d) as u16;
    (time, date)
}

/// Writes a ZIP (stored, streamed) of `entries` to `out`. Long because it writes the format's
/// records in the order APPNOTE lists them (local header, data, descriptor, central directory,
/// the ZIP64 end records).
pub fn zip(root: &Root, entries: impl IntoIterator<Item = (String, Rel, bool)>, out: impl Write) -> io::Result<()> {
    let mut w = Counter { inner: out, n: 0 };
    let mut central = Vec::new();
    for (name, rel, dir) in entries {
        let file = if dir { None } else { root.open_file(&rel).ok() };
        if !dir && file.is_none() {
            continue;
        }
        let name = if dir { format!("{name}/") } else { name }.into_bytes();
        let mtime =
            file.as_ref().and_then(|f| f.metadata().ok()?.modified().ok()).unwrap_or(std::time::SystemTime::now());
        let dt = dos_time(mtime);
        let offset = w.n;
        // Local header: sizes and CRC come after the data (bit 3); ZIP64 extra with zero sizes.
        let mut h = Vec::with_capacity(30 + name.len() + 20);
        h.extend_from_slice(&0x04034b50u32.to_le_bytes());
        h.extend_from_slice(&45u16.to_le_bytes()); // version needed: ZIP64
        h.extend_from_slice(&(0x0008u16 | 0x0800).to_le_bytes()); // data descriptor, UTF-8 names
        h.extend_from_slice(&0u16.to_le_bytes()); // stored
        h.extend_from_slice(&dt.0.to_le_bytes());
        h.extend_from_slice(&dt.1.to_le_bytes());
        h.extend_from_slice(&0u32.to_le_bytes()); // crc (in the descriptor)
        h.extend_from_slice(&0xFFFF_FFFFu32.to_le_bytes()); // sizes: in ZIP64
        h.extend_from_slice(&0xFFFF_FFFFu32.to_le_bytes());
        h.extend_from_slice(&(name.len() as u16).to_le_bytes());
        h.extend_from_slice(&20u16.to_le_bytes());
        h.extend_from_slice(&name);
        h.extend_from_slice(&0x0001u16.to_le_bytes());
        h.extend_from_slice(&16u16.to_le_bytes());
        h.extend_from_slice(&0u64.to_le_bytes());
        h.extend_from_slice(&0u64.to_le_bytes());
        w.write_all(&h)?;
        let mut crc = crc32fast::Hasher::new();
        let mut size = 0u64;
        if let Some(mut f) = file {
            let mut buf = vec![0u8; 256 * 1024];
            loop {
                let n = f.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                crc.update(&buf[..n]);
                w.write_all(&buf[..n])?;
                size += n as u64;
            }
        }
        let crc = crc.finalize();
        // ZIP64 data descriptor.
        let mut d = Vec::with_capacity(24);
        d.extend_from_slice(&0x08074b50u32.to_le_bytes());
        d.extend_from_slice(&crc.to_le_bytes());
        d.extend_from_slice(&size.to_le_bytes());
        d.extend_from_slice(&size.to_le_bytes());
        w.write_all(&d)?;
        central.push(Central { name, crc, size, offset, dir, dos_time: dt });
    }
    let cd_start = w.n;
    for c in &central {
        let mut h = Vec::with_capacity(46 + c.name.len() + 28);
        h.extend_from_slice(&0x02014b50u32.to_le_bytes());
        h.extend_from_slice(&(0x0300u16 | 45).to_le_bytes()); // made by: Unix, 4.5
        h.extend_from_slice(&45u16.to_le_bytes());
        h.extend_from_slice(&(0x0008u16 | 0x0800).to_le_bytes());
        h.extend_from_slice(&0u16.to_le_bytes());
        h.extend_from_slice(&c.dos_time.0.to_le_bytes());
        h.extend_from_slice(&c.dos_time.1.to_le_bytes());
        h.extend_from_slice(&c.crc.to_le_bytes());
        h.extend_from_slice(&0xFFFF_FFFFu32.to_le_bytes());
        h.extend_from_slice(&0xFFFF_FFFFu32.to_le_bytes());
        h.extend_from_slice(&(c.name.len() as u16).to_le_bytes());
        h.extend_from_slice(&28u16.to_le_bytes()); // extra: ZIP64 with sizes and offset
        h.extend_from_slice(&0u16.to_le_bytes()); // comment
        h.extend_from_slice(&0u16.to_le_bytes()); // disk
        h.extend_from_slice(&0u16.to_le_bytes()); // internal attributes
        let mode: u32 = if c.dir { 0o040755 } else { 0o100644 };
        h.extend_from_slice(&((mode << 16) | if c.dir { 0x10 } else { 0 }).to_le_bytes());
        h.extend_from_slice(&0xFFFF_FFFFu32.to_le_bytes()); // offset: in ZIP64
        h.extend_from_slice(&c.name);
        h.extend_from_slice(&0x0001u16.to_le_bytes());
        h.extend_from_slice(&24u16.to_le_bytes());
        h.extend_from_slice(&c.size.to_le_bytes());
        h.extend_from_slice(&c.size.to_le_bytes());
        h.extend_from_slice(&c.offset.to_le_bytes());
        w.write_all(&h)?;
    }
    let cd_size = w.n - cd_start;
    let zip64_eocd = w.n;
    let n = central.len() as u64;
    let mut e = Vec::with_capacity(56 + 20 + 22);
    e.extend_from_slice(&0x06064b50u32.to_le_bytes());
    e.extend_from_slice(&44u64.to_le_bytes());
    e.extend_from_slice(&(0x0300u16 | 45).to_le_bytes());
    e.extend_from_slice(&45u16.to_le_bytes());
    e.extend_from_slice(&0u32.to_le_bytes());
    e.extend_from_slice(&0u32.to_le_bytes());
    e.extend_from_slice(&n.to_le_bytes());
    e.extend_from_slice(&n.to_le_bytes());
    e.extend_from_slice(&cd_size.to_le_bytes());
    e.extend_from_slice(&cd_start.to_le_bytes());
    // ZIP64 end of central directory locator.
    e.extend_from_slice(&0x07064b50u32.to_le_bytes());
    e.extend_from_slice(&0u32.to_le_bytes());
    e.extend_from_slice(&zip64_eocd.to_le_bytes());
    e.extend_from_slice(&1u32.to_le_bytes());
    // End of central directory, pointing at the ZIP64 records.
    e.extend_from_slice(&0x06054b50u32.to_le_bytes());
    e.extend_from_slice(&0u16.to_le_bytes());
    e.extend_from_slice(&0u16.to_le_bytes());
    e.extend_from_slice(&(n.min(0xFFFF) as u16).to_le_bytes());
    e.extend_from_slice(&(n.min(0xFFFF) as u16).to_le_bytes());
    e.extend_from_slice(&0xFFFF_FFFFu32.to_le_bytes());
    e.extend_from_slice(&0xFFFF_FFFFu32.to_le_bytes());
    e.extend_from_slice(&0u16.to_le_bytes());
    w.write_all(&e)?;
    w.flush()
}

/// Sends what is written to a channel, in 256 KiB pieces: the response body reads the other end.
pub struct ChannelWriter {
    pub tx: tokio::sync::mpsc::Sender<io::Result<axum::body::Bytes>>,
    pub buf: Vec<u8>,
    /// Where the pieces' buffers come back to once sent.
    pub pool: super::Pool,
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        // Stop at once when nobody reads: an archive of a big tree writes little between pieces.
        if self.tx.is_closed() {
            return Err(io::Error::new(io::ErrorKind::BrokenPipe, "the client left"));
        }
        if self.buf.capacity() == 0 {
            self.buf.reserve(256 * 1024 + 64 * 1024);
        }
        self.buf.extend_from_slice(data);
        if self.buf.len() >= 256 * 1024 {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let mut next = self.pool.take();
        next.clear();
        let chunk = self.pool.bytes(std::mem::replace(&mut self.buf, next));
        self.tx.blocking_send(Ok(chunk)).map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client left"))?;
        // A download that moves is someone using the instance (the idle stop); a paused one is not.
        crate::alerts::idle::ACTIVITY.touch();
        Ok(())
    }
}
