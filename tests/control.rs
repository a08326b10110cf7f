//! The control socket and the CLI verbs: status, start/stop/restart, health, a second run,
//! detached runs, and what a verb says when no gpubox runs.

use std::process::Command;
use std::time::Duration;

use crate::util::{config_dir, count_lines, Gpubox, BIN};

const T: Duration = Duration::from_secs(30);

#[test]
fn a_second_run_exits_0_and_starts_nothing() {
    let g = Gpubox::start("[services.once]\ncommand = [\"sh\", \"-c\", \"echo started >> starts; exec sleep 100\"]\n");
    g.wait_event("all 1 services ready", T);
    let out = Command::new(BIN)
        .arg("--control")
        .arg(&g.control)
        .args(["run", "--config"])
        .arg(g.path("gpubox.toml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&format!("already running (pid {}", g.pid())), "{text}");
    assert_eq!(count_lines(&g.path("ws/starts"), "started"), 1);
    assert_eq!(g.status()["services"].as_array().unwrap().len(), 1);
}

#[test]
fn verbs_without_a_running_gpubox_say_so_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    for verb in [&["status"][..], &["logs", "x"], &["stop", "x"], &["health"], &["shutdown"]] {
        let out = Command::new(BIN).arg("--control").arg(dir.path().join("none.sock")).args(verb).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{verb:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim_end().lines().count(), 1, "{verb:?}: {err}");
        assert!(err.contains("gpubox is not running"), "{err}");
    }
}

#[test]
fn status_start_stop_restart_and_health() {
    let g = Gpubox::start(
        r#"
[services.web]
command = ["sleep", "1000"]

[services.job]
command = ["true"]
oneshot = true
"#,
    );
    g.wait_event("all 2 services ready", T);
    let web = g.service_status("web");
    assert_eq!(web["state"], "running");
    assert_eq!(web["ready"], true);
    let pid = web["pid"].as_i64().unwrap();
    assert_eq!(g.service_status("job")["state"], "done");
    assert!(g.cli(&["health"]).status.success());

    let table = String::from_utf8_lossy(&g.cli(&["status"]).stdout).into_owned();
    assert!(table.contains("SERVICE") && table.contains("web") && table.contains(&pid.to_string()), "{table}");

    let out = g.cli(&["restart", "web"]);
    assert!(out.status.success());
    let new_pid = g.service_status("web")["pid"].as_i64().unwrap();
    assert_ne!(new_pid, pid);
    assert!(nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), None).is_err(), "old process still alive");
    assert_eq!(g.service_status("web")["restarts"], 1);

    let out = g.cli(&["stop", "web"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "web: stopped");
    assert!(nix::sys::signal::kill(nix::unistd::Pid::from_raw(new_pid as i32), None).is_err());
    // Stopped on request is not unhealthy.
    assert!(g.cli(&["health"]).status.success());

    let out = g.cli(&["start", "web"]);
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("web: running (pid "));

    let out = g.cli(&["stop", "nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no service named \"nope\" (services: job, web)"));
}

/// `restart` (and `start`) return when the service is ready again, not when it is starting;
/// `--no-wait` returns at once; a service that exits on the way makes it fail, saying so.
#[test]
fn restart_waits_until_the_service_is_ready_again() {
    let port = crate::supervisor::free_port();
    let g = Gpubox::start(&format!(
        r#"
[services.web]
command = ["sh", "-c", "test -e crash && exit 3; sleep 1; exec python3 -m http.server {port} --bind 127.0.0.1"]
ready = "tcp://127.0.0.1:{port}"
"#
    ));
    g.wait_event("all 1 services ready", T);
    let started = std::time::Instant::now();
    let out = g.cli(&["restart", "web"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(started.elapsed() >= std::time::Duration::from_secs(1), "returned before the port opened: {text}");
    assert_eq!(g.service_status("web")["ready"], true, "{text}");
    assert!(text.contains("web: running (pid "), "{text}");
    assert!(text.contains("web: ready after "), "{text}");

    let out = g.cli(&["restart", "web", "--no-wait"]);
    assert!(out.status.success());
    assert_eq!(g.service_status("web")["ready"], false, "--no-wait returns while it starts");
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 1);

    std::fs::write(g.path("ws/crash"), "").unwrap();
    let out = g.cli(&["restart", "web"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("web exited (exit code 3) before it was ready") && err.contains("gpubox logs web"), "{err}");

    std::fs::remove_file(g.path("ws/crash")).unwrap();
    let out = g.cli(&["restart", "web", "--timeout", "200ms"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("web is still starting after 200ms"), "{err}");
}

/// `status` lists the built-in apps with where they listen.
#[test]
fn status_lists_the_apps_and_their_ports() {
    let (files, logs) = (crate::supervisor::free_port(), crate::supervisor::free_port());
    let g = Gpubox::start(&format!(
        "[services.files]\napp = \"files\"\nport = {files}\nbind = \"127.0.0.1\"\n[services.logs]\napp = \"logs\"\nport = {logs}\n"
    ));
    g.wait_event(&format!("logs: listening on 0.0.0.0:{logs}"), T);
    let table = String::from_utf8_lossy(&g.cli(&["status"]).stdout).into_owned();
    let line =
        |name: &str| table.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("{table}")).to_string();
    assert!(
        line("files ").contains("file manager") && line("files ").ends_with(&format!("127.0.0.1:{files}")),
        "{table}"
    );
    assert!(
        line("logs ").contains("logs and status") && line("logs ").ends_with(&format!("0.0.0.0:{logs}")),
        "{table}"
    );
    assert_eq!(g.status()["apps"][0]["port"], files);
}

#[test]
fn health_fails_while_a_service_is_not_ready() {
    let port = crate::supervisor::free_port();
    let g = Gpubox::start(&format!(
        "[services.slow]\ncommand = [\"sleep\", \"1000\"]\nready = \"tcp://127.0.0.1:{port}\"\n"
    ));
    g.wait_event("slow: started", T);
    let out = g.cli(&["health"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("slow is starting"));
}

#[test]
fn control_socket_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let g = Gpubox::start("");
    let mode = std::fs::metadata(&g.control).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
}

#[test]
fn detach_returns_and_shutdown_stops_everything() {
    let dir = config_dir("[services.bg]\ncommand = [\"sleep\", \"1000\"]\n");
    let control = dir.path().join("c.sock");
    let run_detached = || {
        Command::new(BIN)
            .arg("--control")
            .arg(&control)
            .args(["run", "--detach", "--config"])
            .arg(dir.path().join("gpubox.toml"))
            .output()
            .unwrap()
    };
    let out = run_detached();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("running in the background"), "{text}");
    // Running it again (Vast may run the on-start script twice) is harmless.
    let again = run_detached();
    assert_eq!(again.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&again.stdout).contains("already running"));

    let status = Command::new(BIN).arg("--control").arg(&control).args(["status", "--json"]).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    let gpubox_pid = v["gpubox"]["info"]["pid"].as_i64().unwrap() as i32;
    let out = Command::new(BIN).arg("--control").arg(&control).arg("shutdown").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("gpubox stopped"));
    // The background gpubox is not our child; it is gone once its pid no longer exists (or is a
    // zombie of init, which cannot happen here since init reaps).
    let gone = (0..100).any(|_| {
        let alive = nix::sys::signal::kill(nix::unistd::Pid::from_raw(gpubox_pid), None).is_ok();
        if alive {
            std::thread::sleep(Duration::from_millis(50));
        }
        !alive
    });
    assert!(gone, "detached gpubox still running after shutdown");
    assert!(!control.exists());
    assert!(dir.path().join("ws/logs/gpubox.log").exists());
}

/// Issue 14 (12): `gpubox routes | head -1` panicked (exit 134) and `gpubox logs | head` printed an
/// error and exited 1. A verb whose reader is gone ends as other tools do: by SIGPIPE, silently.
#[test]
fn a_verb_whose_reader_went_away_ends_quietly() {
    use std::os::unix::process::ExitStatusExt;
    let g = Gpubox::start("[services.chatty]\ncommand = [\"sh\", \"-c\", \"seq 1 300; exec sleep 100\"]\n");
    g.wait_event("all 1 services ready", T);
    for verb in [&["routes"][..], &["logs", "chatty", "-n", "300"], &["status"], &["config", "show"]] {
        // The reading end is closed before gpubox writes anything: its first write finds no reader.
        let (read, write) = nix::unistd::pipe().unwrap();
        drop(read);
        let mut args: Vec<String> = verb.iter().map(|s| s.to_string()).collect();
        if verb[0] == "config" {
            args.push(g.path("gpubox.toml").display().to_string());
        }
        let out = Command::new(BIN)
            .arg("--control")
            .arg(&g.control)
            .args(&args)
            .stdout(std::process::Stdio::from(write))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.signal(), Some(nix::libc::SIGPIPE), "{verb:?}: {:?}, stderr: {err}", out.status);
        assert!(err.is_empty(), "{verb:?} printed to stderr: {err}");
    }
}

/// Older versions made the lock file 0644: another user could open it and hold a shared lock,
/// and gpubox then refused to start ("another gpubox holds … but does not answer").
#[test]
fn a_lock_held_on_an_openable_lock_file_does_not_stop_start_up() {
    use std::os::unix::fs::PermissionsExt;
    let dir = config_dir("[services.s]\ncommand = [\"sleep\", \"100\"]\n");
    let lock = dir.path().join("control.sock.lock");
    std::fs::write(&lock, "").unwrap();
    std::fs::set_permissions(&lock, std::fs::Permissions::from_mode(0o644)).unwrap();
    // Someone else holds a shared lock on it (as any user could open a 0644 file).
    let mut holder = Command::new("flock").arg("-s").arg(&lock).args(["sleep", "60"]).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let g = Gpubox::start_in(dir, &[]);
    g.wait_event("all 1 services ready", T);
    let mode = std::fs::metadata(g.dir.path().join("control.sock.lock")).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the lock file is the user's alone");
    let _ = holder.kill();
    let _ = holder.wait();
}

/// A control folder that others may write in (not sticky) would let them swap the lock file or
/// the socket: gpubox refuses it, saying why.
#[test]
fn a_control_folder_others_may_write_in_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = config_dir("[services.s]\ncommand = [\"sleep\", \"100\"]\n");
    let shared = dir.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = Command::new(BIN)
        .arg("--control")
        .arg(shared.join("c.sock"))
        .args(["run", "--config"])
        .arg(dir.path().join("gpubox.toml"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("others may write in it"), "{err}");
    assert!(!shared.join("c.sock").exists(), "nothing was started");
}
