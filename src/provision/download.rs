//! The downloader: several files at once, each resumable with `Range` into `<name>.part` and
//! renamed into place only when complete and verified; retries with backoff on network errors, 5xx
//! and 429 (honouring `Retry-After`); an optional total bandwidth limit; sizes summed and compared
//! with free space before any byte is written; access tokens sent only to their own hosts and never
//! across a redirect to another host. The provisioning manifest and the file manager's "fetch from
//! a URL" both use it.

use crate::human::bytes as human_bytes;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// A token and the hosts it may be sent to.
#[derive(Debug, Clone)]
pub struct Token {
    pub value: String,
    /// Exact host names (with `:port` when not the default).
    pub hosts: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Options {
    pub parallel: usize,
    /// Total bytes per second over all files; `None`: no limit.
    pub bandwidth: Option<u64>,
    pub tokens: Vec<Token>,
    /// Attempts per file before giving up.
    pub attempts: u32,
    pub max_backoff: Duration,
    /// Set to stop: checked between attempts, during the waits between them and between reads.
    pub cancel: Option<Arc<AtomicBool>>,
    /// Why the last attempt failed while another is coming (for a progress display).
    pub retrying: Option<Arc<Mutex<Option<String>>>>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            parallel: 4,
            bandwidth: None,
            tokens: Vec::new(),
            attempts: 8,
            max_backoff: Duration::from_secs(60),
            cancel: None,
            retrying: None,
        }
    }
}

impl Options {
    fn cancelled(&self) -> bool {
        self.cancel.as_ref().is_some_and(|c| c.load(Ordering::Relaxed))
    }
}

const CANCELLED: &str = "cancelled";

/// One file to fetch.
#[derive(Debug, Clone)]
pub struct Job {
    pub url: String,
    pub dir: PathBuf,
    /// The name to save under; `None`: from the server (Content-Disposition), else the URL.
    pub filename: Option<String>,
    pub sha256: Option<String>,
    /// How progress and errors name it.
    pub label: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Downloaded { path: PathBuf, bytes: u64 },
    AlreadyThere { path: PathBuf },
    Failed { reason: String },
}

/// Live progress of one file, for the progress display.
#[derive(Debug, Default)]
pub struct FileProgress {
    pub label: Mutex<String>,
    pub total: AtomicU64,
    pub done: AtomicU64,
    /// 0 waiting, 1 running, 2 finished, 3 failed.
    pub state: AtomicU8,
}

/// Where a file is, once its URL has been asked about.
#[derive(Debug, Clone)]
struct Probe {
    size: Option<u64>,
    ranges: bool,
    filename: String,
}

/// Why an attempt failed, and whether to try again.
#[derive(Debug)]
enum Failure {
    Retry(String, Option<Duration>),
    Fatal(String),
}

/// Runs every job; returns their outcomes in order. Fails as a whole, before writing anything,
/// only when the files cannot fit on the disk.
pub fn run(jobs: &[Job], opts: &Options, progress: &[Arc<FileProgress>]) -> Result<Vec<Outcome>, String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .max_redirects(0)
        .http_status_as_error(false)
        .timeout_connect(Some(Duration::from_secs(20)))
        .timeout_recv_response(Some(Duration::from_secs(60)))
        // A read that waits a minute for a byte is a stall; a 20 GB model may take an hour (a
        // total body timeout, as this was, failed every attempt of a long download).
        .timeout_per_read(Some(Duration::from_secs(60)))
        .user_agent(concat!("gpubox/", env!("CARGO_PKG_VERSION")))
        .build()
        .into();
    let limiter = opts.bandwidth.map(Limiter::new);

    // 1. What each file is and how big, in parallel; files already complete need no request.
    let probes: Vec<Option<Result<Probe, String>>> = parallel(jobs.len(), opts.parallel, |i| {
        let job = &jobs[i];
        if let Some(name) = &job.filename {
            if job.dir.join(name).is_file() {
                return None;
            }
        }
        Some(with_retries(opts, |_| probe(&agent, opts, job)))
    });

    // 2. Room on the disk for what is left to fetch.
    let mut need: Vec<(PathBuf, u64)> = Vec::new();
    for (job, p) in jobs.iter().zip(&probes) {
        if let Some(Ok(p)) = p {
            let dest = job.dir.join(&p.filename);
            if dest.is_file() {
                continue;
            }
            let have = part(&dest).metadata().map_or(0, |m| m.len());
            let left = p.size.map_or(0, |s| s.saturating_sub(have));
            match need.iter_mut().find(|(d, _)| same_fs(d, &job.dir)) {
                Some((_, n)) => *n += left,
                None => need.push((job.dir.clone(), left)),
            }
        }
    }
    for (dir, bytes) in &need {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let free = free_bytes(dir).unwrap_or(u64::MAX);
        if *bytes > free {
            return Err(format!(
                "not enough space in {}: the files need {} more, and {} is free. Free some space or use a bigger disk (a Vast disk cannot grow: choose its size when creating the instance)",
                dir.display(),
                human_bytes(*bytes),
                human_bytes(free)
            ));
        }
    }

    // 3. The bytes.
    let outcomes = parallel(jobs.len(), opts.parallel, |i| {
        let job = &jobs[i];
        let prog = progress.get(i).cloned().unwrap_or_default();
        let outcome = match &probes[i] {
            None => {
                let path = job.dir.join(job.filename.as_deref().unwrap_or_default());
                Outcome::AlreadyThere { path }
            }
            Some(Err(reason)) => Outcome::Failed { reason: reason.clone() },
            Some(Ok(p)) => fetch(&agent, opts, job, p, &prog, limiter.as_ref()),
        };
        prog.state.store(if matches!(outcome, Outcome::Failed { .. }) { 3 } else { 2 }, Ordering::Relaxed);
        outcome
    });
    Ok(outcomes)
}

/// Runs `f(0..n)` on up to `width` threads; results in order.
fn parallel<T: Send>(n: usize, width: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let next = AtomicU64::new(0);
    let results: Mutex<Vec<Option<T>>> = Mutex::new((0..n).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..width.clamp(1, n.max(1)) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                if i >= n {
                    return;
                }
                let r = f(i);
                results.lock().expect("results lock")[i] = Some(r);
            });
        }
    });
    results.into_inner().expect("results lock").into_iter().map(|r| r.expect("every job ran")).collect()
}

fn with_retries<T>(opts: &Options, mut attempt: impl FnMut(u32) -> Result<T, Failure>) -> Result<T, String> {
    let mut delay = Duration::from_secs(1);
    for n in 1..=opts.attempts.max(1) {
        if opts.cancelled() {
            return Err(CANCELLED.into());
        }
        if let Some(r) = &opts.retrying {
            // The wait is over: what it said no longer holds while this attempt runs.
            *r.lock().expect("retrying lock") = None;
        }
        match attempt(n) {
            Ok(v) => return Ok(v),
            Err(Failure::Fatal(reason)) => return Err(reason),
            Err(Failure::Retry(reason, after)) => {
                if n == opts.attempts.max(1) {
                    return Err(format!("{reason} (gave up after {n} attempts)"));
                }
                let wait = after.unwrap_or(delay).min(opts.max_backoff);
                if let Some(r) = &opts.retrying {
                    *r.lock().expect("retrying lock") = Some(format!(
                        "{reason}; attempt {} of {} in {}",
                        n + 1,
                        opts.attempts.max(1),
                        humantime::format_duration(Duration::from_secs(wait.as_secs().max(1)))
                    ));
                }
                // The wait, in short steps, so that a cancel is seen at once.
                let until = std::time::Instant::now() + wait;
                while std::time::Instant::now() < until {
                    if opts.cancelled() {
                        return Err(CANCELLED.into());
                    }
                    std::thread::sleep((until - std::time::Instant::now()).min(Duration::from_millis(100)));
                }
                delay = (delay * 2).min(opts.max_backoff);
            }
        }
    }
    unreachable!("the loop returns")
}

/// The host (with a non-default port) of a URL.
pub fn host_of(url: &str) -> Option<String> {
    let uri: ureq::http::Uri = url.parse().ok()?;
    let host = uri.host()?.to_ascii_lowercase();
    Some(match uri.port_u16() {
        Some(p) if !matches!((uri.scheme_str(), p), (Some("http"), 80) | (Some("https"), 443)) => format!("{host}:{p}"),
        _ => host,
    })
}

/// Hosts whose tokens never travel in clear text.
pub const PUBLIC_HOSTS: [&str; 4] = ["civitai.com", "huggingface.co", "hf.co", "civitai.green"];

/// The token for a request to `url`, if any: only to the token's own hosts, and only while the
/// request is still on the host it started from (never across a redirect to another host).
pub fn token_for<'a>(tokens: &'a [Token], url: &str, origin_host: &str) -> Option<&'a str> {
    let host = host_of(url)?;
    if host != origin_host {
        return None;
    }
    // The public sites only over HTTPS (a mirror or a test stand-in may be plain HTTP).
    if url.starts_with("http://") && PUBLIC_HOSTS.iter().any(|h| host.eq_ignore_ascii_case(h)) {
        return None;
    }
    tokens.iter().find(|t| t.hosts.iter().any(|h| h.eq_ignore_ascii_case(&host))).map(|t| t.value.as_str())
}

/// `Location` resolved against the URL it came from.
fn resolve(base: &str, location: &str) -> String {
    if location.contains("://") {
        return location.to_string();
    }
    let (scheme, rest) = base.split_once("://").unwrap_or(("https", base));
    let authority = rest.split('/').next().unwrap_or("");
    if let Some(path) = location.strip_prefix("//") {
        return format!("{scheme}://{path}");
    }
    if location.starts_with('/') {
        return format!("{scheme}://{authority}{location}");
    }
    let path = rest[authority.len()..].split(['?', '#']).next().unwrap_or("/");
    let dir = &path[..path.rfind('/').map_or(0, |i| i + 1)];
    format!("{scheme}://{authority}{}{location}", if dir.is_empty() { "/" } else { dir })
}

fn classify(status: u16, headers: &ureq::http::HeaderMap, url: &str) -> Failure {
    let after = headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let host = host_of(url).unwrap_or_default();
    match status {
        429 => Failure::Retry(format!("{host} asks to slow down (429)"), after),
        500..=599 => Failure::Retry(format!("{host} answered {status}"), after),
        401 | 403 => Failure::Fatal(format!(
            "{host} refused access ({status}): the file may need a token (HF_TOKEN for Hugging Face, CIVITAI_TOKEN for Civitai) or an accepted licence"
        )),
        404 => Failure::Fatal(format!("{url} does not exist (404)")),
        _ => Failure::Fatal(format!("{host} answered {status} for {url}")),
    }
}

/// A GET (with `range` when resuming) that follows redirects itself, so that the token stays on
/// its host. Returns the final URL and the response.
fn get(
    agent: &ureq::Agent,
    opts: &Options,
    url: &str,
    range: Option<String>,
) -> Result<(String, ureq::http::Response<ureq::Body>), Failure> {
    let origin = host_of(url).ok_or_else(|| Failure::Fatal(format!("`{url}` is not a URL")))?;
    let mut current = url.to_string();
    for _ in 0..10 {
        let mut req = agent.get(&current);
        if let Some(r) = &range {
            req = req.header("Range", r);
        }
        if let Some(token) = token_for(&opts.tokens, &current, &origin) {
            req = req.header("Authorization", &format!("Bearer {token}"));
        }
        let resp =
            req.call().map_err(|e| Failure::Retry(format!("{}: {e}", host_of(&current).unwrap_or_default()), None))?;
        let status = resp.status().as_u16();
        if (300..400).contains(&status) && status != 304 {
            let Some(location) = resp.headers().get("location").and_then(|v| v.to_str().ok()) else {
                return Err(Failure::Fatal(format!("{current} redirects nowhere ({status} without Location)")));
            };
            current = resolve(&current, location);
            continue;
        }
        if status >= 400 {
            return Err(classify(status, resp.headers(), &current));
        }
        return Ok((current, resp));
    }
    Err(Failure::Fatal(format!("{url} redirects too many times")))
}

fn probe(agent: &ureq::Agent, opts: &Options, job: &Job) -> Result<Probe, Failure> {
    // A one-byte range answers everything at once: size, ranges, name, final URL.
    let (_, resp) = get(agent, opts, &job.url, Some("bytes=0-0".into()))?;
    let h = resp.headers();
    let text = |k: &str| h.get(k).and_then(|v| v.to_str().ok()).map(str::to_string);
    let (size, ranges) = match resp.status().as_u16() {
        206 => (text("content-range").and_then(|v| v.rsplit('/').next()?.parse().ok()), true),
        _ => (text("content-length").and_then(|v| v.parse().ok()), false),
    };
    let filename = match &job.filename {
        Some(f) => f.clone(),
        None => text("content-disposition")
            .and_then(|cd| disposition_filename(&cd))
            .or_else(|| url_filename(&job.url))
            .ok_or_else(|| Failure::Fatal(format!("{}: no file name in the URL or the answer; give one", job.url)))?,
    };
    let filename = safe_filename(&filename)
        .ok_or_else(|| Failure::Fatal(format!("{}: the server's file name {filename:?} is not usable", job.url)))?;
    Ok(Probe { size, ranges, filename })
}

/// The file name of a `Content-Disposition` header (`filename*=UTF-8''...` preferred).
pub fn disposition_filename(cd: &str) -> Option<String> {
    let mut plain = None;
    for part in cd.split(';').map(str::trim) {
        if let Some(v) = part.strip_prefix("filename*=") {
            let v = v.trim_matches('"');
            let encoded = v.split_once("''").map_or(v, |(_, e)| e);
            return Some(crate::http::coding::decode_path(encoded));
        }
        if let Some(v) = part.strip_prefix("filename=") {
            plain = Some(v.trim().trim_matches('"').to_string());
        }
    }
    plain
}

fn url_filename(url: &str) -> Option<String> {
    let path = url.split(['?', '#']).next()?;
    let last = path.rsplit('/').next()?;
    (!last.is_empty() && !path.ends_with("://")).then(|| crate::http::coding::decode_path(last))
}

/// A name that stays in its folder: no separators, no `..`, no control characters.
pub fn safe_filename(name: &str) -> Option<String> {
    let name = name.trim();
    let ok = !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains(['/', '\\', '\0'])
        && !name.chars().any(char::is_control)
        && name.len() <= 255;
    ok.then(|| name.to_string())
}

fn part(dest: &Path) -> PathBuf {
    let mut p = dest.as_os_str().to_owned();
    p.push(".part");
    PathBuf::from(p)
}

fn fetch(
    agent: &ureq::Agent,
    opts: &Options,
    job: &Job,
    p: &Probe,
    prog: &FileProgress,
    limiter: Option<&Limiter>,
) -> Outcome {
    let dest = job.dir.join(&p.filename);
    *prog.label.lock().expect("label lock") = p.filename.clone();
    if dest.is_file() {
        return Outcome::AlreadyThere { path: dest };
    }
    if let Err(e) = std::fs::create_dir_all(&job.dir) {
        return Outcome::Failed { reason: format!("cannot create {}: {e}", job.dir.display()) };
    }
    prog.total.store(p.size.unwrap_or(0), Ordering::Relaxed);
    prog.state.store(1, Ordering::Relaxed);
    let tmp = part(&dest);
    let result = with_retries(opts, |_| attempt(agent, opts, job, p, &tmp, prog, limiter));
    if let Err(reason) = result {
        return Outcome::Failed { reason };
    }
    if let Some(want) = &job.sha256 {
        match sha256_file(&tmp) {
            Ok(got) if got.eq_ignore_ascii_case(want.trim()) => {}
            Ok(got) => {
                let _ = std::fs::remove_file(&tmp);
                return Outcome::Failed {
                    reason: format!("sha256 mismatch: expected {want}, got {got}; the download was deleted"),
                };
            }
            Err(e) => return Outcome::Failed { reason: format!("cannot read {} to verify it: {e}", tmp.display()) },
        }
    }
    let bytes = tmp.metadata().map_or(0, |m| m.len());
    match File::open(&tmp).and_then(|f| f.sync_all()).and_then(|_| std::fs::rename(&tmp, &dest)) {
        Ok(()) => Outcome::Downloaded { path: dest, bytes },
        Err(e) => Outcome::Failed { reason: format!("cannot move {} into place: {e}", tmp.display()) },
    }
}

/// One try: continue the `.part` file from where it ends. Long because the request, the checks
/// of what the server sent back and the read loop (cancel, bandwidth, progress) are one try.
fn attempt(
    agent: &ureq::Agent,
    opts: &Options,
    job: &Job,
    p: &Probe,
    tmp: &Path,
    prog: &FileProgress,
    limiter: Option<&Limiter>,
) -> Result<(), Failure> {
    let mut have = tmp.metadata().map_or(0, |m| m.len());
    if p.size.is_some_and(|s| have >= s) {
        if p.size == Some(have) {
            return Ok(());
        }
        have = 0; // bigger than the file: start again
    }
    let range = (have > 0 && p.ranges).then(|| format!("bytes={have}-"));
    // The first URL again (not the redirect's): signed CDN links expire.
    let (_, resp) = get(agent, opts, &job.url, range)?;
    let status = resp.status().as_u16();
    let append = status == 206 && have > 0;
    if status == 206 {
        let start = resp
            .headers()
            .get("content-range")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("bytes ")?.split('-').next()?.parse::<u64>().ok());
        if start != Some(have) {
            return Err(Failure::Retry(format!("{}: the server resumed at the wrong place", job.label), None));
        }
    }
    let mut file = OpenOptions::new()
        .create(true)
        .write(true)
        .append(append)
        .truncate(!append)
        .open(tmp)
        .map_err(|e| Failure::Fatal(format!("cannot write {}: {e}", tmp.display())))?;
    let mut done = if append { have } else { 0 };
    prog.done.store(done, Ordering::Relaxed);
    let mut body = resp.into_body();
    let mut reader = body.as_reader();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        if opts.cancelled() {
            return Err(Failure::Fatal(CANCELLED.into()));
        }
        let want = limiter.map_or(buf.len(), |l| l.take(buf.len()));
        let n = match reader.read(&mut buf[..want]) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                let _ = file.flush();
                return Err(Failure::Retry(
                    format!("{}: connection lost after {}: {e}", job.label, human_bytes(done)),
                    None,
                ));
            }
        };
        if let Err(e) = file.write_all(&buf[..n]) {
            drop(file);
            let _ = std::fs::remove_file(tmp);
            let reason = if e.raw_os_error() == Some(libc::ENOSPC) {
                format!("the disk is full ({}); the partial file was removed", job.dir.display())
            } else {
                format!("cannot write {}: {e}; the partial file was removed", tmp.display())
            };
            return Err(Failure::Fatal(reason));
        }
        done += n as u64;
        prog.done.store(done, Ordering::Relaxed);
    }
    if let Some(size) = p.size {
        if done < size {
            return Err(Failure::Retry(
                format!("{}: the connection ended early ({} of {})", job.label, human_bytes(done), human_bytes(size)),
                None,
            ));
        }
    }
    Ok(())
}

pub fn sha256_file(path: &Path) -> io::Result<String> {
    sha256_read(File::open(path)?, |_| true).map(|(hex, _)| hex)
}

/// The SHA-256 (lower-case hex) of all `r` holds and its length, read 1 MiB at a time;
/// `go(bytes so far)` after each piece may stop it (an `Interrupted` error).
pub fn sha256_read(mut r: impl Read, mut go: impl FnMut(u64) -> bool) -> io::Result<(String, u64)> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        total += n as u64;
        if !go(total) {
            return Err(io::Error::new(io::ErrorKind::Interrupted, "stopped"));
        }
    }
    Ok((h.finalize().iter().map(|b| format!("{b:02x}")).collect(), total))
}

fn free_bytes(dir: &Path) -> Option<u64> {
    let st = nix::sys::statvfs::statvfs(dir).ok()?;
    Some(st.blocks_available() as u64 * st.fragment_size() as u64)
}

fn same_fs(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (a.metadata(), b.metadata()) {
        (Ok(x), Ok(y)) => x.dev() == y.dev(),
        _ => a == b,
    }
}

/// A token bucket shared by every download: at most `rate` bytes per second in total.
struct Limiter {
    rate: u64,
    state: Mutex<(Instant, f64)>,
}

impl Limiter {
    fn new(rate: u64) -> Limiter {
        Limiter { rate: rate.max(1), state: Mutex::new((Instant::now(), 0.0)) }
    }

    /// Waits until some bytes may be read; returns how many (at most `want`).
    fn take(&self, want: usize) -> usize {
        let chunk = (self.rate / 20).clamp(1, want as u64) as f64;
        loop {
            let wait = {
                let mut st = self.state.lock().expect("limiter lock");
                let now = Instant::now();
                let elapsed = now.duration_since(st.0).as_secs_f64();
                st.0 = now;
                st.1 = (st.1 + elapsed * self.rate as f64).min(self.rate as f64 / 5.0 + chunk);
                if st.1 >= chunk {
                    st.1 -= chunk;
                    return chunk as usize;
                }
                (chunk - st.1) / self.rate as f64
            };
            std::thread::sleep(Duration::from_secs_f64(wait));
        }
    }
}

#[cfg(test)]
#[path = "download_tests.rs"]
mod tests;
