//! The log hub through the real binary: floods, progress bars, and a stdout nobody reads.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::util::{config_dir, lines_of, Gpubox, BIN};

const T: Duration = Duration::from_secs(60);

fn vm_hwm_kib(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn a_million_lines_all_reach_the_file_with_bounded_memory() {
    let g = Gpubox::start(
        r#"
[logs]
max_file_size = "100MiB"

[services.flood]
command = ["seq", "1", "1000000"]
oneshot = true
"#,
    );
    g.wait_event("flood: finished successfully", T);
    let lines = g.log_texts("flood");
    assert_eq!(lines.len(), 1_000_000);
    assert!(lines.iter().enumerate().all(|(i, l)| l == &(i + 1).to_string()), "lines out of order or altered");
    // The ring buffer is 2 MiB by default; peak memory must stay far below the 6.9 MB of output.
    let hwm = vm_hwm_kib(g.pid());
    assert!(hwm < 40 * 1024, "gpubox peak resident memory {hwm} KiB");
    // Readers get the newest lines from the ring.
    let out = g.cli(&["logs", "flood", "-n", "3"]);
    let text = String::from_utf8_lossy(&out.stdout);
    let tail: Vec<&str> = text.lines().map(|l| l.rsplit("| ").next().unwrap()).collect();
    assert_eq!(tail, ["999998", "999999", "1000000"]);
}

#[test]
fn rotation_keeps_every_line_across_files() {
    let g = Gpubox::start(
        r#"
[logs]
max_file_size = "64KiB"
max_files = 100

[services.flood]
command = ["seq", "1", "50000"]
oneshot = true
"#,
    );
    g.wait_event("flood: finished successfully", T);
    let dir = g.path("ws/logs");
    let mut all = Vec::new();
    for i in (1..=100).rev() {
        if let Ok(t) = std::fs::read_to_string(dir.join(format!("flood.log.{i}"))) {
            all.extend(t.lines().map(|l| l.splitn(3, ' ').nth(2).unwrap().to_string()));
        }
    }
    all.extend(g.log_texts("flood"));
    assert!(dir.join("flood.log.5").exists(), "expected several rotated files");
    assert_eq!(all.len(), 50_000);
    assert!(all.iter().enumerate().all(|(i, l)| l == &(i + 1).to_string()));
}

const TQDM: &str = r##"
import sys, time
out = sys.stderr
for bar in ("alpha", "beta"):
    for i in range(0, 101):
        out.write(f"\r{bar}: {i:3d}%|" + "#" * (i // 10) + " " * (10 - i // 10) + f"| {i}/100")
        out.flush()
        if i % 25 == 0:
            time.sleep(0.01)
    out.write("\n")
print("done", flush=True)
"##;

fn tqdm_case(tty: bool) {
    let g = Gpubox::start(&format!(
        "[services.bar]\ncommand = [\"python3\", \"-c\", '''{TQDM}''']\noneshot = true\ntty = {tty}\n"
    ));
    g.wait_event("bar: finished successfully", T);
    let file = g.log_texts("bar");
    let expected_stream = if tty { "tty" } else { "stderr" };
    let raw = g.read("ws/logs/bar.log");
    assert!(raw.lines().next().unwrap().contains(&format!(" {expected_stream} ")), "{raw}");
    let bars: Vec<&String> = file.iter().filter(|l| l.contains('%')).collect();
    assert_eq!(bars.len(), 2, "one final line per bar expected, got: {file:#?}");
    assert!(bars[0].starts_with("alpha: 100%|##########| 100/100"), "{bars:?}");
    assert!(bars[1].starts_with("beta: 100%|##########| 100/100"), "{bars:?}");
    // The ring buffer holds the same final lines.
    let out = g.cli(&["logs", "bar"]);
    let ring = String::from_utf8_lossy(&out.stdout);
    assert_eq!(ring.matches('%').count(), 2, "{ring}");
    assert!(ring.contains("alpha: 100%") && ring.contains("beta: 100%") && ring.contains("done"), "{ring}");
}

#[test]
fn progress_bars_keep_one_final_line_each_on_a_pipe() {
    tqdm_case(false);
}

#[test]
fn progress_bars_keep_one_final_line_each_on_a_pty() {
    tqdm_case(true);
}

#[test]
fn a_stdout_nobody_reads_blocks_no_service_and_drops_visibly() {
    // gpubox's stdout is a pipe that is not read until the flood has finished.
    let dir = config_dir(
        "[logs]\nmax_file_size = \"200MiB\"\n[services.flood]\ncommand = [\"seq\", \"1\", \"2000000\"]\noneshot = true\n",
    );
    let control = dir.path().join("c.sock");
    let mut child = Command::new(BIN)
        .arg("--control")
        .arg(&control)
        .args(["run", "--config"])
        .arg(dir.path().join("gpubox.toml"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    // Follow gpubox's events over the control socket until the flood has finished.
    let deadline = std::time::Instant::now() + T;
    let finished = loop {
        assert!(std::time::Instant::now() < deadline, "the flood did not finish while stdout was blocked");
        let Ok(mut c) = gpubox::api::Client::connect(&control) else {
            std::thread::sleep(Duration::from_millis(50));
            continue;
        };
        c.set_timeout(Some(T));
        c.send(&gpubox::api::Request::logs(Some("gpubox"), 1000, true)).unwrap();
        let mut found = false;
        while let Ok(Some(m)) = c.answer() {
            if m["line"]["text"].as_str().is_some_and(|t| t.contains("flood: finished successfully")) {
                found = true;
                break;
            }
        }
        break found;
    };
    assert!(finished);
    let file = std::fs::read_to_string(dir.path().join("ws/logs/flood.log")).unwrap();
    assert_eq!(file.lines().count(), 2_000_000, "the file must have every line");
    // Now read stdout: the mirror says how many lines it could not print.
    let rx = lines_of(stdout);
    let marker = loop {
        let line = rx.recv_timeout(T).expect("a drop notice on stdout");
        if line.contains("stdout fell behind") {
            break line;
        }
    };
    assert!(marker.contains("lines were not printed here (they are in the log files)"), "{marker}");
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGTERM);
    assert_eq!(child.wait().unwrap().code(), Some(0));
}

/// `logs --since`: a time bound on the lines, ago or as a time.
#[test]
fn logs_since_leaves_out_older_lines() {
    let g = Gpubox::start("[services.say]\ncommand = [\"sh\", \"-c\", \"echo first; sleep 100\"]\n");
    g.wait_event("all 1 services ready", Duration::from_secs(30));
    crate::util::wait_for(|| g.log_texts("say").contains(&"first".to_string()), Duration::from_secs(30), "the line");
    let text = |args: &[&str]| String::from_utf8_lossy(&g.cli(args).stdout).into_owned();
    assert!(text(&["logs", "say", "--since", "1h"]).contains("first"));
    assert!(text(&["logs", "say", "--since", "2000-01-01T00:00:00"]).contains("first"));
    assert!(!text(&["logs", "say", "--since", "2999-01-01T00:00:00"]).contains("first"));
    let out = g.cli(&["logs", "say", "--since", "soon"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("neither a duration"), "{out:?}");
}
