//! Nothing gpubox started outlives it: a `setsid` grandchild that escaped its service's process
//! group is ended at shutdown, and when gpubox itself is killed (SIGKILL, not PID 1) its services
//! and terminal shells die with it.

use std::time::{Duration, Instant};

use crate::util::Gpubox;

const T: Duration = Duration::from_secs(30);

/// Whether `pid` runs (not gone, not a zombie).
fn running(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|st| st.rsplit_once(')').is_some_and(|(_, r)| !r.trim_start().starts_with('Z')))
}

fn gone_within(pid: i32, within: Duration) -> bool {
    let until = Instant::now() + within;
    while Instant::now() < until {
        if !running(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    !running(pid)
}

fn wait_file(path: &std::path::Path) -> i32 {
    let until = Instant::now() + T;
    loop {
        if let Ok(s) = std::fs::read_to_string(path) {
            if let Ok(pid) = s.trim().parse() {
                return pid;
            }
        }
        assert!(Instant::now() < until, "{} never appeared", path.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_setsid_grandchild_is_ended_at_shutdown() {
    let mut g = Gpubox::start(
        "[services.escaper]\ncommand = [\"sh\", \"-c\", \"setsid sleep 300 & echo $! > gc.pid; exec sleep 1000\"]\n",
    );
    let pid = wait_file(&g.path("ws/gc.pid"));
    assert!(running(pid));
    let (code, took) = g.terminate();
    assert_eq!(code, Some(0));
    assert!(gone_within(pid, Duration::from_secs(2)), "the setsid grandchild {pid} outlived gpubox");
    assert!(took < Duration::from_secs(12), "{took:?}");
}

#[test]
fn services_die_with_a_killed_gpubox() {
    let g = Gpubox::start("[services.worker]\ncommand = [\"sleep\", \"1000\"]\n");
    g.wait_event("all 1 services ready", T);
    let pid = g.service_status("worker")["pid"].as_i64().unwrap() as i32;
    assert!(running(pid));
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(g.pid()), nix::sys::signal::Signal::SIGKILL).unwrap();
    assert!(gone_within(pid, Duration::from_secs(3)), "the service {pid} outlived a killed gpubox");
}
