//! Helpers for running the real `gpubox` binary in a temporary directory.
//!
//! Readiness is never polled by sleeping: a test waits for gpubox's first stdout line (printed
//! after the control socket is bound), then follows gpubox's own event log through the control
//! socket until the event it needs arrives.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use gpubox::api::Client;
use gpubox::api::Request;
use tempfile::TempDir;

pub const BIN: &str = env!("CARGO_BIN_EXE_gpubox");

pub fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

pub struct Gpubox {
    pub dir: TempDir,
    pub control: PathBuf,
    pub child: Child,
    stdout: Receiver<String>,
}

/// A temp dir with `gpubox.toml` holding `workspace = "<dir>/ws"` followed by `body`.
pub fn config_dir(body: &str) -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    let text = format!("workspace = \"{}/ws\"\n{body}", dir.path().display());
    std::fs::write(dir.path().join("gpubox.toml"), text).unwrap();
    dir
}

impl Gpubox {
    pub fn start(body: &str) -> Gpubox {
        Gpubox::start_with(&[], body)
    }

    /// Starts `prefix... gpubox run` (e.g. under `unshare`) and waits until it is listening.
    pub fn start_with(prefix: &[&str], body: &str) -> Gpubox {
        Gpubox::start_in(config_dir(body), prefix)
    }

    /// Starts gpubox in a folder made by [`config_dir`] (and perhaps changed since).
    pub fn start_in(dir: TempDir, prefix: &[&str]) -> Gpubox {
        let control = dir.path().join("control.sock");
        let mut cmd = match prefix.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(BIN);
                c
            }
            None => Command::new(BIN),
        };
        cmd.arg("--control").arg(&control).arg("run").arg("--config").arg(dir.path().join("gpubox.toml"));
        cmd.stdout(Stdio::piped()).stderr(Stdio::inherit()).stdin(Stdio::null());
        let mut child = cmd.spawn().expect("spawn gpubox");
        let stdout = lines_of(child.stdout.take().unwrap());
        let g = Gpubox { dir, control, child, stdout };
        g.wait_stdout("control socket", Duration::from_secs(20));
        g
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Waits for a line on gpubox's stdout containing `needle`; returns it.
    pub fn wait_stdout(&self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stdout.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => panic!("no stdout line containing {needle:?} within {timeout:?}"),
                Err(RecvTimeoutError::Disconnected) => {
                    panic!("gpubox closed its stdout (it exited?) before a line containing {needle:?}; its stderr is above")
                }
            }
        }
    }

    /// Waits until each of `needles` has appeared in some stdout line, in any order.
    pub fn wait_stdout_all(&self, needles: &[&str], timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let mut left: Vec<&str> = needles.to_vec();
        while !left.is_empty() {
            match self.stdout.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) => left.retain(|n| !line.contains(n)),
                Err(_) => panic!("no stdout lines containing {left:?} within {timeout:?}"),
            }
        }
    }

    /// Follows gpubox's own event log (through the control socket) until an event contains
    /// `needle`; earlier events count too. Returns every event text seen, the match last.
    pub fn wait_event(&self, needle: &str, timeout: Duration) -> Vec<String> {
        self.wait_events(needle, 1, timeout)
    }

    /// Like [`Gpubox::wait_event`], until `count` events contain `needle`.
    pub fn wait_event_count(&self, needle: &str, count: usize) -> Vec<String> {
        self.wait_events(needle, count, Duration::from_secs(30))
    }

    fn wait_events(&self, needle: &str, count: usize, timeout: Duration) -> Vec<String> {
        let mut c = Client::connect(&self.control).expect("connect to control socket");
        c.set_timeout(Some(timeout));
        c.send(&Request::logs(Some("gpubox"), 100_000, true)).unwrap();
        let deadline = Instant::now() + timeout;
        let mut seen = Vec::new();
        let mut n = 0;
        while n < count {
            assert!(Instant::now() < deadline, "no {count}× {needle:?} within {timeout:?}; events: {seen:#?}");
            match c.answer() {
                Ok(Some(msg)) => {
                    if let Some(text) = msg["line"]["text"].as_str() {
                        seen.push(text.to_string());
                        n += usize::from(text.contains(needle));
                    }
                }
                other => panic!("waiting for {count}× {needle:?}: {other:?}; events so far: {seen:#?}"),
            }
        }
        seen
    }

    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(BIN).arg("--control").arg(&self.control).args(args).output().expect("run gpubox cli")
    }

    pub fn status(&self) -> serde_json::Value {
        let out = self.cli(&["status", "--json"]);
        assert!(out.status.success(), "status failed: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    pub fn service_status(&self, name: &str) -> serde_json::Value {
        self.status()["services"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .cloned()
            .expect("service in status")
    }

    /// Sends SIGTERM and waits for the exit; returns the exit code and how long it took.
    pub fn terminate(&mut self) -> (Option<i32>, Duration) {
        let t = Instant::now();
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid()), nix::sys::signal::Signal::SIGTERM).unwrap();
        let status = self.child.wait().unwrap();
        (status.code(), t.elapsed())
    }

    /// Lines of a service's log file, without their time and stream columns.
    pub fn log_texts(&self, service: &str) -> Vec<String> {
        let text = std::fs::read_to_string(self.path(&format!("ws/logs/{service}.log"))).unwrap_or_default();
        text.lines().map(|l| l.splitn(3, ' ').nth(2).unwrap_or("").to_string()).collect()
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path(rel)).unwrap_or_default()
    }
}

impl Drop for Gpubox {
    /// SIGTERM first, so that gpubox stops its services: a SIGKILL alone would leave them running
    /// as orphans (gpubox is not PID 1 here). SIGKILL only if it has not exited within 20 s.
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_some() {
            return;
        }
        let pid = nix::unistd::Pid::from_raw(self.pid());
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let until = Instant::now() + Duration::from_secs(20);
        while Instant::now() < until {
            if self.child.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

/// Drains a pipe on a thread so that gpubox's stdout never fills; lines arrive on the channel.
pub fn lines_of(r: impl Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                // Nobody listens any more; keep draining.
                continue;
            }
        }
    });
    rx
}

/// Runs `gpubox config check FILE` on a config body; returns (exit code, stderr).
pub fn check(body: &str) -> (i32, String, PathBuf, TempDir) {
    let dir = config_dir(body);
    let path = dir.path().join("gpubox.toml");
    let out = Command::new(BIN).args(["config", "check"]).arg(&path).output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned(), path, dir)
}

/// Number of lines in `path` that equal `line`.
pub fn count_lines(path: &Path, line: &str) -> usize {
    std::fs::read_to_string(path).unwrap_or_default().lines().filter(|l| *l == line).count()
}

/// A process's peak resident memory (VmHWM), in KiB.
pub fn peak_kib(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status.lines().find(|l| l.starts_with("VmHWM:")).unwrap().split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Waits until `ok` holds, checking every 50 ms; panics with `what` after `timeout`.
pub fn wait_for(ok: impl Fn() -> bool, timeout: Duration, what: &str) {
    let end = std::time::Instant::now() + timeout;
    while !ok() {
        assert!(std::time::Instant::now() < end, "timed out: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
