//! Long operations, each on a thread of its own so that nothing else waits: copying, extracting
//! archives (.zip, .tar, .tar.gz/.tgz, .tar.zst), and fetching a URL into a folder (with the
//! provisioning downloader: resumable, tokens only to their own hosts). The page polls
//! `GET /api/jobs` for their progress.
//!
//! Extraction is confined like everything else: each entry's name is cleaned (an entry named
//! `../x` is refused, not resolved; `/etc/x` loses its leading `/` and lands as `etc/x` inside the
//! target, as GNU tar does) and created beneath the target folder's handle; symlinks and devices
//! in archives are skipped.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::Serialize;

use super::fs::{clean, FsError, Rel, Root};

#[derive(Debug, Serialize)]
pub struct JobView {
    pub id: u64,
    pub kind: &'static str,
    pub label: String,
    pub done: u64,
    pub total: u64,
    /// `running`, `done`, `failed` or `cancelled`.
    pub state: String,
    pub message: Option<String>,
}

pub struct Job {
    id: u64,
    kind: &'static str,
    label: String,
    done: AtomicU64,
    total: AtomicU64,
    /// The state, and a message: the outcome once finished; while running, what it is waiting
    /// for (a fetch between attempts says why the last one failed).
    state: Mutex<(String, Option<String>)>,
    cancel: Arc<AtomicBool>,
}

impl Job {
    fn view(&self) -> JobView {
        let st = self.state.lock().expect("job lock");
        JobView {
            id: self.id,
            kind: self.kind,
            label: self.label.clone(),
            done: self.done.load(Ordering::Relaxed),
            total: self.total.load(Ordering::Relaxed),
            state: st.0.clone(),
            message: st.1.clone(),
        }
    }

    pub fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }

    pub fn id(&self) -> u64 {
        self.id
    }
}

#[derive(Default)]
pub struct Jobs {
    next: AtomicU64,
    all: Mutex<BTreeMap<u64, Arc<Job>>>,
}

impl Jobs {
    pub fn list(&self) -> Vec<JobView> {
        self.all.lock().expect("jobs lock").values().map(|j| j.view()).collect()
    }

    pub fn cancel(&self, id: u64) -> bool {
        match self.all.lock().expect("jobs lock").get(&id) {
            Some(j) => {
                j.cancel.store(true, Ordering::Relaxed);
                true
            }
            None => false,
        }
    }

    /// Starts `work` on a thread; returns the job's id.
    pub fn start(
        &self,
        kind: &'static str,
        label: String,
        work: impl FnOnce(&Job) -> Result<String, String> + Send + 'static,
    ) -> u64 {
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let job = Arc::new(Job {
            id,
            kind,
            label,
            done: AtomicU64::new(0),
            total: AtomicU64::new(0),
            state: Mutex::new(("running".into(), None)),
            cancel: Arc::new(AtomicBool::new(false)),
        });
        {
            let mut all = self.all.lock().expect("jobs lock");
            // Finished jobs are kept for the page to see, the last 50 of them.
            let finished: Vec<u64> =
                all.values().filter(|j| j.state.lock().expect("job lock").0 != "running").map(|j| j.id).collect();
            for old in finished.iter().take(finished.len().saturating_sub(50)) {
                all.remove(old);
            }
            all.insert(id, job.clone());
        }
        // A running job is activity: the idle stop does not stop an instance in the middle of one.
        let working = crate::alerts::idle::ACTIVITY.working();
        std::thread::spawn(move || {
            let _working = working;
            // A panic (a decoder's, on a hostile file) fails the job: it never stays "running".
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(&job)))
                .unwrap_or_else(|_| Err("it failed unexpectedly (a bug: see gpubox's log)".into()));
            let mut st = job.state.lock().expect("job lock");
            *st = match result {
                _ if job.cancelled() => ("cancelled".into(), Some("cancelled".into())),
                Ok(m) => ("done".into(), Some(m)),
                Err(e) => ("failed".into(), Some(e)),
            };
        });
        id
    }
}

/// The most files and folders one copy job takes (its plan is kept in memory, ~200 bytes each).
const MAX_COPY_ITEMS: usize = 1_000_000;

fn fs_msg(e: FsError, what: &str) -> String {
    format!("{what}: {e}")
}

/// Copies files and folders into `to_dir`, never over an existing name (a copy is named
/// `name (copy).ext`). Into a hidden temporary name first, renamed when complete.
pub fn copy(root: &Root, job: &Job, sources: &[Rel], to_dir: &Rel) -> Result<String, String> {
    let mut plan = Vec::new();
    root.stat(to_dir).map_err(|e| fs_msg(e, &format!("/{}", to_dir.as_str())))?;
    // Without /proc the real paths are unknown: the names alone are compared (and the walk still
    // ends, see archive::Walk).
    let real_to = root.real_path(to_dir).ok();
    for s in sources {
        // By name and by where it really is (a symlinked folder can lead back into the source).
        let through_link = real_to.as_ref().is_some_and(|t| root.real_path(s).is_ok_and(|real| t.starts_with(real)));
        if to_dir.within(s) || through_link {
            return Err(format!("/{} cannot be copied into itself", s.as_str()));
        }
        let mut items = Vec::new();
        for item in super::archive::Walk::new(root, vec![super::archive::Item { rel: s.clone(), name: String::new() }])
        {
            if job.cancelled() {
                return Err("cancelled".into());
            }
            if items.len() >= MAX_COPY_ITEMS {
                return Err(format!(
                    "/{} holds more than {MAX_COPY_ITEMS} files and folders: copy it in parts, or in the terminal",
                    s.as_str()
                ));
            }
            items.push(item);
        }
        let bytes: u64 = items
            .iter()
            .filter(|(_, _, d)| !d)
            .filter_map(|(_, r, _)| root.stat(r).ok())
            .map(|st| st.st_size as u64)
            .sum();
        job.total.fetch_add(bytes, Ordering::Relaxed);
        plan.push((s.clone(), items));
    }
    for (src, items) in plan {
        let name = src.name().unwrap_or("workspace").to_string();
        let target_name = free_copy_name(root, to_dir, &name);
        for (sub, rel, dir) in items {
            if job.cancelled() {
                return Err("cancelled".into());
            }
            let dest = to_dir.join(&target_name).join_walked(&sub);
            if dir {
                root.mkdir_all(&dest).map_err(|e| fs_msg(e, &format!("cannot create /{}", dest.as_str())))?;
                continue;
            }
            copy_file(root, job, &rel, &dest)?;
        }
    }
    Ok(format!("copied {} item(s) to /{}", sources.len(), to_dir.as_str()))
}

fn copy_file(root: &Root, job: &Job, from: &Rel, to: &Rel) -> Result<(), String> {
    let mut src = root.open_file(from).map_err(|e| fs_msg(e, &format!("cannot read /{}", from.as_str())))?;
    let tmp = to.parent().join(&super::fs::temp_name(to.name().unwrap_or("file"), "copy"));
    let _ = root.remove(&tmp);
    let mut out = root.create_new(&tmp).map_err(|e| fs_msg(e, &format!("cannot write /{}", to.as_str())))?;
    let mut buf = vec![0u8; 1 << 20];
    let result = (|| -> Result<(), FsError> {
        loop {
            if job.cancelled() {
                return Err(FsError::BadPath("cancelled".into()));
            }
            let n = src.read(&mut buf)?;
            if n == 0 {
                break;
            }
            out.write_all(&buf[..n])?;
            job.done.fetch_add(n as u64, Ordering::Relaxed);
        }
        out.sync_all()?;
        root.rename(&tmp, to, false)
    })();
    if let Err(e) = result {
        let _ = root.remove(&tmp);
        return Err(fs_msg(e, &format!("cannot copy to /{}", to.as_str())));
    }
    Ok(())
}

fn free_copy_name(root: &Root, dir: &Rel, name: &str) -> String {
    free_name_in(root, dir, name, true, |n| if n == 1 { " (copy)".to_string() } else { format!(" (copy {n})") })
}

/// `name` if nothing in `dir` has it, else the first free of `label(1)`, `label(2)`… added to it
/// (before the extension, with `split`).
/// `name`, or `name (2).ext`, `name (3).ext`… whichever is free in `dir`.
pub fn free_name(root: &Root, dir: &Rel, name: &str) -> String {
    free_name_in(root, dir, name, true, |n| format!(" ({})", n + 1))
}

fn free_name_in(root: &Root, dir: &Rel, name: &str, split: bool, label: impl Fn(usize) -> String) -> String {
    if root.stat(&dir.join(name)).is_err() {
        return name.to_string();
    }
    let (stem, ext) = match name.rfind('.') {
        Some(i) if i > 0 && split => (&name[..i], &name[i..]),
        _ => (name, ""),
    };
    (1..).map(|n| format!("{stem}{}{ext}", label(n))).find(|c| root.stat(&dir.join(c)).is_err()).expect("a free name")
}

/// A Read that stops when the job is cancelled and, with `count`, counts the bytes read (the
/// compressed ones, for progress).
struct Counting<'a, R> {
    inner: R,
    job: &'a Job,
    count: bool,
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.job.cancelled() {
            return Err(io::Error::other("cancelled"));
        }
        let n = self.inner.read(buf)?;
        if self.count {
            self.job.done.fetch_add(n as u64, Ordering::Relaxed);
        }
        Ok(n)
    }
}

/// Writes one entry of an archive beneath `into`; `name` is the entry's own path.
fn put(root: &Root, into: &Rel, name: &str, dir: bool, data: &mut dyn Read) -> Result<bool, String> {
    let Ok(rel) = clean(name) else { return Ok(false) };
    if rel.is_root() {
        return Ok(false);
    }
    let dest = Rel(into.0.iter().cloned().chain(rel.0).collect());
    if dir {
        root.mkdir_all(&dest).map_err(|e| fs_msg(e, &format!("cannot create /{}", dest.as_str())))?;
        return Ok(true);
    }
    root.mkdir_all(&dest.parent()).map_err(|e| fs_msg(e, &format!("cannot create /{}", dest.parent().as_str())))?;
    let tmp = dest.parent().join(&super::fs::temp_name(dest.name().unwrap_or("file"), "extract"));
    let _ = root.remove(&tmp);
    let mut out = root.create_new(&tmp).map_err(|e| fs_msg(e, &format!("cannot write /{}", dest.as_str())))?;
    let written = io::copy(data, &mut out).map_err(|e| format!("/{}: {e}", dest.as_str())).and_then(|_| {
        root.rename(&tmp, &dest, true).map_err(|e| fs_msg(e, &format!("cannot write /{}", dest.as_str())))
    });
    if written.is_err() {
        let _ = root.remove(&tmp);
    }
    written.map(|_| true)
}

/// Extracts an archive into `into` (created if missing).
pub fn extract(root: &Root, job: &Job, archive: &Rel, into: &Rel) -> Result<String, String> {
    let (files, skipped) = extract_into(root, job, archive, into)?;
    Ok(summary(files, skipped, into))
}

fn summary(files: u64, skipped: u64, into: &Rel) -> String {
    let skipped = if skipped > 0 {
        format!(" ({skipped} entries skipped: links, devices or unsafe names)")
    } else {
        String::new()
    };
    format!("extracted {files} files into /{}{skipped}", into.as_str())
}

/// Extracts an archive beside itself, as desktop archivers do: when everything in it sits in one
/// top folder (or is one file), that lands beside the archive (`name/name/` helps no one);
/// otherwise a new folder named `stem` holds it. The entries go to a hidden folder first, which
/// takes its place once all are out: a failed or cancelled extraction leaves no half-filled
/// folder under a real name, and nothing already there is overwritten (a taken name gets ` (2)`).
pub fn extract_here(root: &Root, job: &Job, archive: &Rel, stem: &str) -> Result<String, String> {
    let dir = archive.parent();
    // A name of its own: two extractions beside each other never share it.
    let tag = crate::random::hex(4).map_err(|e| format!("cannot pick a temporary name: {e}"))?;
    let tmp = dir.join(&super::fs::temp_name(stem, &format!("extract-{tag}")));
    let _ = root.remove(&tmp);
    let placed = extract_into(root, job, archive, &tmp).and_then(|(files, skipped)| {
        let inside = root.list(&tmp).map_err(|e| fs_msg(e, "cannot read what was extracted"))?;
        let (from, name, file) = match inside.as_slice() {
            [one] if one.kind == "dir" || one.kind == "file" => {
                (tmp.join(&one.name), one.name.clone(), one.kind == "file")
            }
            _ => (tmp.clone(), stem.to_string(), false),
        };
        // ` (2)`, ` (3)`… after a folder's name, before a file's extension.
        let to = dir.join(&free_name_in(root, &dir, &name, file, |n| format!(" ({})", n + 1)));
        root.rename(&from, &to, false).map_err(|e| fs_msg(e, &format!("cannot create /{}", to.as_str())))?;
        Ok(summary(files, skipped, &to))
    });
    // Empty once its one entry moved; gone if it moved itself; what is left of a failure.
    let _ = root.remove(&tmp);
    placed
}

fn extract_into(root: &Root, job: &Job, archive: &Rel, into: &Rel) -> Result<(u64, u64), String> {
    let file = root.open_file(archive).map_err(|e| fs_msg(e, &format!("cannot read /{}", archive.as_str())))?;
    let size = file.metadata().map_or(0, |m| m.len());
    job.total.store(size, Ordering::Relaxed);
    root.mkdir_all(into).map_err(|e| fs_msg(e, &format!("cannot create /{}", into.as_str())))?;
    let name = archive.name().unwrap_or("").to_ascii_lowercase();
    let (mut files, mut skipped) = (0u64, 0u64);
    if name.ends_with(".zip") {
        let mut z = zip::ZipArchive::new(file).map_err(|e| format!("not a readable ZIP: {e}"))?;
        for i in 0..z.len() {
            if job.cancelled() {
                return Err("cancelled".into());
            }
            let mut entry = z.by_index(i).map_err(|e| format!("entry {i}: {e}"))?;
            let entry_name = entry.name().to_string();
            let is_dir = entry.is_dir();
            let is_link = entry.unix_mode().is_some_and(|m| m & 0o170000 == 0o120000);
            let compressed = entry.compressed_size();
            if is_link {
                skipped += 1;
                continue;
            }
            if put(root, into, &entry_name, is_dir, &mut Counting { inner: &mut entry, job, count: false })? {
                files += u64::from(!is_dir);
            } else {
                skipped += 1;
            }
            job.done.fetch_add(compressed, Ordering::Relaxed);
        }
    } else {
        let counted = Counting { inner: io::BufReader::new(file), job, count: true };
        let reader: Box<dyn Read> = if name.ends_with(".tar.gz") || name.ends_with(".tgz") {
            Box::new(flate2::read::GzDecoder::new(counted))
        } else if name.ends_with(".tar.zst") || name.ends_with(".tzst") {
            Box::new(
                ruzstd::decoding::StreamingDecoder::new(counted)
                    .map_err(|e| format!("not a readable zstd stream: {e}"))?,
            )
        } else if name.ends_with(".tar") {
            Box::new(counted)
        } else {
            return Err("extracts .zip, .tar, .tar.gz (.tgz) and .tar.zst".into());
        };
        let mut t = tar::Archive::new(reader);
        for entry in t.entries().map_err(|e| format!("not a readable tar: {e}"))? {
            let mut entry = entry.map_err(|e| format!("the archive is damaged: {e}"))?;
            let kind = entry.header().entry_type();
            let path = super::fs::name_from_bytes(&entry.path_bytes());
            match kind {
                tar::EntryType::Directory => {
                    put(root, into, &path, true, &mut io::empty())?;
                }
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    if put(root, into, &path, false, &mut entry)? {
                        files += 1;
                    } else {
                        skipped += 1;
                    }
                }
                _ => skipped += 1,
            }
        }
    }
    job.done.store(size, Ordering::Relaxed);
    Ok((files, skipped))
}

/// Fetches a URL into a folder with the provisioning downloader. The bytes go to gpubox's private
/// area first (`area`), and the finished file is moved beneath the folder's handle, under a free
/// name: the download itself never writes inside the workspace by path.
pub fn fetch(root: &Root, job: &Job, area: &std::path::Path, url: &str, dir: &Rel) -> Result<String, String> {
    root.mkdir_all(dir).map_err(|e| fs_msg(e, &format!("cannot create /{}", dir.as_str())))?;
    let scratch = area.join(format!("fetch-{}", job.id));
    let (tokens, _) = crate::provision::tokens();
    let result = download(job, &scratch, url, None, None, tokens).and_then(|path| {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "download".into());
        let to = dir.join(&free_copy_name(root, dir, &name));
        root.adopt(&path, &to, false)
            .map(|_| format!("saved /{}", to.as_str()))
            .map_err(|e| fs_msg(e, &format!("cannot put the download at /{}", to.as_str())))
    });
    let _ = std::fs::remove_dir_all(&scratch);
    result
}

/// The SHA-256 of a file beneath the root, with the job's progress and cancel: (hex, bytes).
pub fn hash_file(root: &Root, job: &Job, rel: &Rel) -> Result<(String, u64), String> {
    let f = root.open_file(rel).map_err(|e| fs_msg(e, &format!("cannot read /{}", rel.as_str())))?;
    job.total.store(f.metadata().map(|m| m.len()).unwrap_or(0), Ordering::Relaxed);
    crate::provision::download::sha256_read(f, |done| {
        job.done.store(done, Ordering::Relaxed);
        !job.cancelled()
    })
    .map_err(|e| if job.cancelled() { "cancelled".into() } else { format!("cannot read /{}: {e}", rel.as_str()) })
}

/// Downloads `url` into the folder `scratch` (made here; the caller removes it) with the
/// provisioning downloader, the job's progress and cancel wired to it: resumable, retried,
/// `sha256` checked (a mismatch deletes the file), `tokens` only to their own hosts. Returns the
/// downloaded file.
pub fn download(
    job: &Job,
    scratch: &std::path::Path,
    url: &str,
    filename: Option<String>,
    sha256: Option<String>,
    tokens: Vec<crate::provision::download::Token>,
) -> Result<std::path::PathBuf, String> {
    std::fs::create_dir_all(scratch).map_err(|e| format!("cannot prepare the download: {e}"))?;
    let retrying = Arc::new(Mutex::new(None));
    let opts = crate::provision::download::Options {
        parallel: 1,
        tokens,
        cancel: Some(job.cancel.clone()),
        retrying: Some(retrying.clone()),
        ..Default::default()
    };
    let target = crate::provision::download::Job {
        url: url.to_string(),
        dir: scratch.to_path_buf(),
        filename,
        sha256,
        label: url.to_string(),
    };
    let progress = Arc::new(crate::provision::download::FileProgress::default());
    let done = AtomicBool::new(false);
    let outcome = std::thread::scope(|s| {
        s.spawn(|| {
            while !done.load(Ordering::Relaxed) {
                job.done.store(progress.done.load(Ordering::Relaxed), Ordering::Relaxed);
                job.total.store(progress.total.load(Ordering::Relaxed), Ordering::Relaxed);
                let note = retrying.lock().expect("retrying lock").clone();
                job.state.lock().expect("job lock").1 = note;
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
        });
        let r = crate::provision::download::run(std::slice::from_ref(&target), &opts, std::slice::from_ref(&progress));
        done.store(true, Ordering::Relaxed);
        r
    });
    match outcome?.into_iter().next() {
        Some(crate::provision::download::Outcome::Downloaded { path, bytes }) => {
            job.done.store(bytes, Ordering::Relaxed);
            Ok(path)
        }
        Some(crate::provision::download::Outcome::AlreadyThere { .. }) => Err("nothing new was downloaded".into()),
        Some(crate::provision::download::Outcome::Failed { reason }) => Err(reason),
        None => Err("nothing was downloaded".into()),
    }
}
