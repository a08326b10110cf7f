//! The log hub: every line every service writes, kept in three places.
//!
//! 1. a bounded ring buffer per service (memory; what live readers and `gpubox logs` read),
//! 2. a size-rotated file `<logs.dir>/<service>.log` (the durable record),
//! 3. gpubox's stdout as `[service] line` (for `docker logs`).
//!
//! Every line gets a sequence number, unique and increasing across all services, so a reader
//! that reconnects asks for "after N" and misses nothing and repeats nothing — as long as the
//! lines are still in the ring. Lines evicted from a ring before a reader got them are reported to
//! that reader as a gap ([`Batch::gap_before`]); the file still has them.
//!
//! Backpressure, by destination: the file is written synchronously by the thread that reads the
//! child's pipe, so a child can never outrun the disk by more than one pipe buffer and memory stays
//! flat; no line is dropped from the file unless the disk fails. The ring never blocks (it evicts
//! its oldest lines). The stdout mirror drops lines when stdout is slow (see `mirror.rs`).

mod file;
pub mod filter;
mod lines;
mod mirror;
mod ring;
pub mod search;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::config::LogSettings;
pub use filter::LogFilter;
pub use lines::{LineBatch, LineSplitter};
use ring::Block;
pub use search::{Found, Query};

/// Where a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Stdout,
    Stderr,
    /// A service with `tty = true`: stdout and stderr share one terminal.
    Tty,
    /// gpubox's own events (service `gpubox`).
    Event,
}

impl Stream {
    pub fn parse(s: &str) -> Option<Stream> {
        Some(match s {
            "stdout" => Stream::Stdout,
            "stderr" => Stream::Stderr,
            "tty" => Stream::Tty,
            "event" => Stream::Event,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
            Stream::Tty => "tty",
            Stream::Event => "event",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogLine {
    pub seq: u64,
    /// Milliseconds since the Unix epoch.
    pub time_ms: u64,
    pub service: Arc<str>,
    pub stream: Stream,
    pub text: String,
}

/// The line a service is drawing right now (a progress bar), never stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LiveLine {
    pub service: Arc<str>,
    pub stream: Stream,
    pub time_ms: u64,
    pub text: String,
}

/// Lines read after a sequence number.
#[derive(Debug, Default)]
pub struct Batch {
    pub lines: Vec<LogLine>,
    /// Set when lines newer than the reader's position were evicted before it read them: the
    /// reader missed lines up to and including this sequence number (they are in the files).
    pub gap_before: Option<u64>,
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

#[derive(Clone)]
pub struct Hub {
    inner: Arc<Inner>,
}

struct Inner {
    settings: LogSettings,
    seq: AtomicU64,
    services: RwLock<BTreeMap<String, Arc<ServiceLog>>>,
    mirror: Option<mirror::Mirror>,
    /// Bumped on every change (a new line or a new live frame); readers wait on it.
    changed: watch::Sender<u64>,
    /// Held while a block takes its sequence numbers and enters its ring, and while a reader
    /// looks at the rings: a reader never sees line N+1 of one service without line N of another
    /// (it would move past N and never send it).
    order: Mutex<()>,
}

struct ServiceLog {
    name: Arc<str>,
    state: Mutex<LogState>,
    /// The service's own log file; `None` for a source that is a file already (see
    /// [`Hub::register_file`]). Its own lock: a slow disk never holds up readers of the ring.
    file: Mutex<Option<file::RotatingFile>>,
}

struct LogState {
    ring: ring::Ring,
    /// For a source read from a file: that file.
    source: Option<std::path::PathBuf>,
    live: Option<LiveLine>,
}

/// The name gpubox's own events are logged under.
pub const GPUBOX: &str = "gpubox";

impl Hub {
    pub fn new(settings: LogSettings) -> Hub {
        let mirror = settings.stdout.then(mirror::Mirror::start);
        let hub = Hub {
            inner: Arc::new(Inner {
                settings,
                seq: AtomicU64::new(0),
                services: RwLock::new(BTreeMap::new()),
                mirror,
                changed: watch::channel(0).0,
                order: Mutex::new(()),
            }),
        };
        hub.register(GPUBOX);
        hub
    }

    pub fn settings(&self) -> &LogSettings {
        &self.inner.settings
    }

    /// Makes a service known (its ring and file); idempotent.
    pub fn register(&self, name: &str) {
        let s = &self.inner.settings;
        let file = file::RotatingFile::new(s.dir.join(format!("{name}.log")), s.max_file_size, s.max_files);
        self.add(name, Some(file), None);
    }

    /// Makes a log file known as a source of its own, named by its path: its lines go to a ring
    /// but not to a second file. Idempotent.
    pub fn register_file(&self, path: &std::path::Path) -> String {
        let name = path.to_string_lossy().into_owned();
        self.add(&name, None, Some(path.to_path_buf()));
        name
    }

    fn add(&self, name: &str, file: Option<file::RotatingFile>, source: Option<std::path::PathBuf>) {
        let mut map = self.inner.services.write().expect("log hub lock");
        map.entry(name.to_string()).or_insert_with(|| {
            Arc::new(ServiceLog {
                name: name.into(),
                state: Mutex::new(LogState {
                    ring: ring::Ring::new(self.inner.settings.ring_size as usize),
                    source,
                    live: None,
                }),
                file: Mutex::new(file),
            })
        });
    }

    /// The files that hold a source's whole log, oldest first: a service's rotated files then its
    /// current one, or a log file that is a source of its own. `None`: no such source.
    pub fn files_of(&self, name: &str) -> Option<Vec<std::path::PathBuf>> {
        let log = self.service(name)?;
        let st = log.state.lock().expect("service log lock");
        if let Some(source) = &st.source {
            return Some(vec![source.clone()]);
        }
        drop(st);
        let current = log.file.lock().expect("log file lock").as_ref()?.path().to_path_buf();
        let mut files: Vec<std::path::PathBuf> = (1..=self.inner.settings.max_files)
            .rev()
            .map(|i| std::path::PathBuf::from(format!("{}.{i}", current.display())))
            .filter(|p| p.is_file())
            .collect();
        files.push(current);
        Some(files)
    }

    /// Whether a source is a log file of its own (its lines have no time or stream prefix).
    pub fn is_file_source(&self, name: &str) -> bool {
        self.service(name).is_some_and(|l| l.state.lock().expect("service log lock").source.is_some())
    }

    /// Lines from the rings by filters and search (see [`search`]). Unknown service names
    /// select nothing.
    pub fn query(&self, q: &Query) -> Found {
        let logs: Vec<Arc<ServiceLog>> = match &q.services {
            None => self.selected(None),
            Some(names) => names.iter().filter_map(|n| self.service(n)).collect(),
        };
        let order = self.inner.order.lock().expect("log order lock");
        let last_seq = self.last_seq();
        let rings: Vec<Vec<Arc<ring::Chunk>>> = logs
            .iter()
            .map(|log| log.state.lock().expect("service log lock").ring.chunks().cloned().collect())
            .collect();
        drop(order);
        let mut found = search::run(&rings, q);
        found.last_seq = last_seq;
        found
    }

    pub fn services(&self) -> Vec<String> {
        self.inner.services.read().expect("log hub lock").keys().cloned().collect()
    }

    fn service(&self, name: &str) -> Option<Arc<ServiceLog>> {
        self.inner.services.read().expect("log hub lock").get(name).cloned()
    }

    /// A writer for one service's output; registers the service if needed.
    pub fn writer(&self, service: &str) -> LogWriter {
        self.register(service);
        LogWriter { hub: self.clone(), log: self.service(service).expect("registered above") }
    }

    /// Logs one of gpubox's own events.
    pub fn event(&self, text: impl Into<String>) {
        let w = self.writer(GPUBOX);
        w.lines(Stream::Event, LineBatch::one(text.into()));
        w.flush();
    }

    /// Subscribes to changes; the value is meaningless, only that it changed.
    pub fn watch(&self) -> watch::Receiver<u64> {
        self.inner.changed.subscribe()
    }

    /// The newest sequence number handed out so far.
    pub fn last_seq(&self) -> u64 {
        self.inner.seq.load(Ordering::SeqCst)
    }

    fn selected(&self, service: Option<&str>) -> Vec<Arc<ServiceLog>> {
        let map = self.inner.services.read().expect("log hub lock");
        match service {
            Some(name) => map.get(name).cloned().into_iter().collect(),
            None => map.values().cloned().collect(),
        }
    }

    /// Lines after `after`, oldest first, at most `max`, from one service or all of them.
    pub fn read(&self, service: Option<&str>, after: u64, max: usize) -> Batch {
        let mut batch = Batch::default();
        let _order = self.inner.order.lock().expect("log order lock");
        for log in self.selected(service) {
            let st = log.state.lock().expect("service log lock");
            if st.ring.evicted_upto > after {
                batch.gap_before = Some(batch.gap_before.unwrap_or(0).max(st.ring.evicted_upto));
            }
            batch.lines.extend(st.ring.after(after, max));
        }
        batch.lines.sort_by_key(|l| l.seq);
        batch.lines.truncate(max);
        batch
    }

    /// The last `n` lines, oldest first, from one service or all of them.
    pub fn tail(&self, service: Option<&str>, n: usize) -> Vec<LogLine> {
        let mut lines = Vec::new();
        for log in self.selected(service) {
            let st = log.state.lock().expect("service log lock");
            lines.extend(st.ring.last(n));
        }
        lines.sort_by_key(|l| l.seq);
        let skip = lines.len().saturating_sub(n);
        lines.split_off(skip)
    }

    /// The live (in-progress) lines of one service or all of them.
    pub fn live(&self, service: Option<&str>) -> Vec<LiveLine> {
        self.selected(service)
            .iter()
            .filter_map(|log| log.state.lock().expect("service log lock").live.clone())
            .collect()
    }

    /// Memory held by ring buffers, in bytes, and the number of lines in them.
    pub fn ring_usage(&self) -> (usize, usize) {
        self.selected(None).iter().fold((0, 0), |(b, n), log| {
            let st = log.state.lock().expect("service log lock");
            (b + st.ring.bytes(), n + st.ring.len())
        })
    }

    /// Writes out everything buffered (files and stdout); called at exit.
    pub fn flush(&self) {
        for log in self.selected(None) {
            if let Some(f) = log.file.lock().expect("log file lock").as_mut() {
                f.flush();
            }
        }
        if let Some(m) = &self.inner.mirror {
            m.flush();
        }
    }

    fn bump(&self) {
        self.inner.changed.send_modify(|v| *v = v.wrapping_add(1));
    }
}

/// Feeds one service's output into the hub. Cheap to clone per stream.
#[derive(Clone)]
pub struct LogWriter {
    hub: Hub,
    log: Arc<ServiceLog>,
}

impl LogWriter {
    /// Stores final lines that arrived together. The caller flushes (see [`LogWriter::flush`])
    /// after a burst.
    pub fn lines(&self, stream: Stream, lines: LineBatch) {
        if lines.is_empty() {
            return;
        }
        let file_error;
        let block;
        {
            // Lock order: this service's file, then the hub's order, then the ring. The file is
            // written after the other two are let go (a slow disk holds up nobody but this
            // service), and blocks reach the file in sequence order.
            let mut file = self.log.file.lock().expect("log file lock");
            let order = self.hub.inner.order.lock().expect("log order lock");
            let mut st = self.log.state.lock().expect("service log lock");
            let n = lines.len() as u64;
            block = Arc::new(Block {
                first_seq: self.hub.inner.seq.fetch_add(n, Ordering::SeqCst) + 1,
                time_ms: now_ms(),
                service: self.log.name.clone(),
                stream,
                lines,
            });
            if st.live.as_ref().is_some_and(|l| l.stream == stream) {
                st.live = None;
            }
            st.ring.push(&block);
            drop(st);
            drop(order);
            file_error = file.as_mut().and_then(|f| f.write(&block).map(|e| (e, f.path().to_path_buf())));
        }
        if let Some(m) = &self.hub.inner.mirror {
            m.send(block);
        }
        self.hub.bump();
        if let Some((e, path)) = file_error {
            // Not through the hub: the disk that failed may be the one gpubox's own log is on.
            eprintln!(
                "[gpubox] cannot write {}: {e}; lines are kept in memory only until it works again",
                path.display()
            );
        }
    }

    /// Replaces the service's live line (a progress-bar frame).
    pub fn live(&self, stream: Stream, text: String) {
        let mut st = self.log.state.lock().expect("service log lock");
        st.live = Some(LiveLine { service: self.log.name.clone(), stream, time_ms: now_ms(), text });
        drop(st);
        self.hub.bump();
    }

    pub fn clear_live(&self) {
        self.log.state.lock().expect("service log lock").live = None;
        self.hub.bump();
    }

    pub fn flush(&self) {
        if let Some(f) = self.log.file.lock().expect("log file lock").as_mut() {
            f.flush();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hub(dir: &std::path::Path) -> Hub {
        Hub::new(LogSettings { dir: dir.into(), max_file_size: 1 << 20, max_files: 2, ring_size: 8192, stdout: false })
    }

    #[test]
    fn reads_resume_by_sequence_across_services() {
        let dir = tempfile::tempdir().unwrap();
        let h = hub(dir.path());
        let (a, b) = (h.writer("a"), h.writer("b"));
        a.lines(Stream::Stdout, LineBatch::one("a1".into()));
        b.lines(Stream::Stderr, LineBatch::one("b1".into()));
        a.lines(Stream::Stdout, LineBatch::one("a2".into()));
        let all = h.read(None, 0, 100);
        let texts: Vec<&str> = all.lines.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(texts, ["a1", "b1", "a2"]);
        let after = h.read(None, all.lines[1].seq, 100);
        assert_eq!(after.lines.len(), 1);
        assert_eq!(after.lines[0].text, "a2");
        assert_eq!(h.read(Some("b"), 0, 100).lines.len(), 1);
        assert!(all.gap_before.is_none());
    }

    #[test]
    fn a_reader_following_all_services_misses_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let h = Hub::new(LogSettings {
            dir: dir.path().into(),
            max_file_size: 1 << 30,
            max_files: 1,
            ring_size: 64 << 20,
            stdout: false,
        });
        let per = 20_000;
        let writers: Vec<_> = ["a", "b", "c"]
            .iter()
            .map(|name| {
                let w = h.writer(name);
                std::thread::spawn(move || {
                    for i in 0..per {
                        w.lines(Stream::Stdout, LineBatch::one(format!("line {i}")));
                    }
                })
            })
            .collect();
        let mut seen = Vec::new();
        let mut last = 0;
        while seen.len() < 3 * per {
            let batch = h.read(None, last, 1000);
            for l in &batch.lines {
                seen.push(l.seq);
            }
            if let Some(l) = batch.lines.last() {
                last = l.seq;
            }
        }
        for w in writers {
            w.join().unwrap();
        }
        let expected: Vec<u64> = (1..=(3 * per) as u64).collect();
        assert_eq!(seen.len(), expected.len());
        assert!(seen == expected, "a reader skipped lines that other services had not stored yet");
    }

    #[test]
    fn a_reader_left_behind_sees_a_gap() {
        let dir = tempfile::tempdir().unwrap();
        let h = hub(dir.path());
        let a = h.writer("a");
        for i in 0..1000 {
            a.lines(Stream::Stdout, LineBatch::one(format!("line {i}")));
        }
        let batch = h.read(Some("a"), 0, 10);
        let gap = batch.gap_before.expect("gap reported");
        assert_eq!(batch.lines[0].seq, gap + 1);
        a.flush();
        let file = std::fs::read_to_string(dir.path().join("a.log")).unwrap();
        assert_eq!(file.lines().count(), 1000);
    }
}
