//! PID 1 duties: orphans left by a service are reaped, whether gpubox is PID 1 of a PID namespace
//! (as in a container) or a subreaper on an ordinary machine.

use std::time::{Duration, Instant};

use crate::util::Gpubox;

/// Leaves 1,000 orphans: each `( sleep 0.3 & )` subshell exits at once, so its `sleep` is
/// re-parented to the nearest reaper (gpubox) and must be reaped by it when it exits.
const ORPHANS: &str = r#"
[services.orphans]
command = ["sh", "-c", "i=0; while [ $i -lt 1000 ]; do (sleep 0.3 &); i=$((i+1)); done; echo forked; exec sleep 1000"]
"#;

/// Zombie processes whose parent is `ppid`.
fn zombies_of(ppid: i32) -> usize {
    let mut n = 0;
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // Fields after the command name, which is in parentheses and may contain spaces.
        let Some(rest) = stat.rsplit_once(") ").map(|(_, r)| r) else {
            continue;
        };
        let mut f = rest.split_whitespace();
        let state = f.next();
        let parent: i32 = f.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        if parent == ppid && state == Some("Z") {
            n += 1;
        }
    }
    n
}

fn children_of(pid: i32) -> Vec<i32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

fn orphans_are_reaped(g: &Gpubox, gpubox_host_pid: i32) {
    g.wait_stdout("[orphans] forked", Duration::from_secs(60));
    // The sleeps end 0.3 s after they were forked; wait for gpubox to count them all.
    let deadline = Instant::now() + Duration::from_secs(30);
    let reaped = loop {
        let n = g.status()["gpubox"]["orphans_reaped"].as_u64().unwrap();
        if n >= 1000 || Instant::now() > deadline {
            break n;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(reaped >= 1000, "gpubox reaped only {reaped} orphans");
    assert_eq!(zombies_of(gpubox_host_pid), 0, "zombies left under gpubox");
}

#[test]
fn as_pid_1_in_a_pid_namespace_orphans_are_reaped() {
    let mut g = Gpubox::start_with(&["unshare", "--pid", "--fork", "--kill-child"], ORPHANS);
    let status = g.status();
    assert_eq!(status["gpubox"]["info"]["pid1"], true, "gpubox is not PID 1 in the namespace");
    // `unshare` forks gpubox: its only child is gpubox as the host sees it.
    let host_pid = children_of(g.pid())[0];
    orphans_are_reaped(&g, host_pid);
    // SIGTERM to unshare is not forwarded; send it to gpubox itself, which must exit 0.
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(host_pid), nix::sys::signal::Signal::SIGTERM).unwrap();
    let code = g.child.wait().unwrap().code();
    assert_eq!(code, Some(0));
}

#[test]
fn as_a_subreaper_orphans_are_reaped() {
    let g = Gpubox::start(ORPHANS);
    assert_eq!(g.status()["gpubox"]["info"]["pid1"], false);
    orphans_are_reaped(&g, g.pid());
}
