//! Restart policies, backoff, dependency order, readiness and shutdown, with real processes.

use std::time::Duration;

use crate::util::{fixture, Gpubox};

const T: Duration = Duration::from_secs(30);

fn svc(name: &str, record: &str, extra: &str) -> String {
    format!("command = [\"python3\", \"{}\", \"{name}\", \"--record\", \"{record}\"{extra}]", fixture("svc.py"))
}

/// The restart delays announced in events for one service, in milliseconds.
fn delays(events: &[String], service: &str) -> Vec<u64> {
    events
        .iter()
        .filter(|e| e.starts_with(&format!("{service}: ")))
        .filter_map(|e| e.split("restarting in ").nth(1))
        .map(|d| d.trim_end_matches("ms").parse::<u64>().expect("delay in ms"))
        .collect()
}

#[test]
fn crash_loop_backs_off_capped_and_resets_after_a_stable_run() {
    // Runs 1-3 and 5 fail at once; run 4 lasts longer than stable_after, which resets the delay.
    let g = Gpubox::start(
        r#"
[services.crashy]
command = ["sh", "-c", "n=$(cat count 2>/dev/null || echo 0); n=$((n+1)); echo $n > count; echo run $n; [ $n -eq 4 ] && sleep 0.6; exit 3"]
restart_delay = "100ms"
restart_delay_max = "300ms"
stable_after = "500ms"
"#,
    );
    let events = g.wait_event_count("crashy: exit code 3", 6);
    assert_eq!(delays(&events, "crashy"), [100, 200, 300, 100, 200, 300]);
    let status = g.service_status("crashy");
    assert!(status["restarts"].as_u64().unwrap() >= 5, "{status}");
    assert_eq!(status["last_exit"]["code"], 3);
}

#[test]
fn restart_policies_behave_as_named() {
    let g = Gpubox::start(
        r#"
[services.always-ok]
command = ["sh", "-c", "echo run >> always.runs; exit 0"]
restart = "always"
restart_delay = "50ms"

[services.onfail-ok]
command = ["sh", "-c", "echo run >> onfail-ok.runs; exit 0"]
restart = "on-failure"
restart_delay = "50ms"

[services.onfail-bad]
command = ["sh", "-c", "echo run >> onfail-bad.runs; exit 1"]
restart = "on-failure"
restart_delay = "50ms"

[services.never-bad]
command = ["sh", "-c", "echo run >> never.runs; exit 1"]
restart = "never"
"#,
    );
    g.wait_event_count("always-ok: exit code 0", 3);
    g.wait_event_count("onfail-bad: exit code 1", 3);
    g.wait_event("onfail-ok: exit code 0 after", T);
    g.wait_event("never-bad: exit code 1 after", T);
    assert_eq!(g.service_status("onfail-ok")["state"], "exited");
    assert_eq!(g.service_status("never-bad")["state"], "failed");
    assert_eq!(g.read("ws/onfail-ok.runs").lines().count(), 1);
    assert_eq!(g.read("ws/never.runs").lines().count(), 1);
    assert!(g.read("ws/always.runs").lines().count() >= 3);
    assert!(g.read("ws/onfail-bad.runs").lines().count() >= 3);
}

#[test]
fn dependency_order_readiness_and_reverse_stop() {
    let dir = tempfile::tempdir().unwrap();
    let order = dir.path().join("order");
    let o = order.display().to_string();
    let (port, port_b) = (free_port(), free_port());
    let mut g = Gpubox::start(&format!(
        r#"
[services.c]
{c}
depends_on = ["b"]

[services.b]
{b}
depends_on = ["a"]
ready = "tcp://127.0.0.1:{port_b}"

[services.a]
{a}
ready = "http://127.0.0.1:{port}/"
"#,
        a = svc("a", &o, &format!(", \"--delay\", \"0.5\", \"--listen\", \"{port}\"")),
        b = svc("b", &o, &format!(", \"--listen\", \"{port_b}\"")),
        c = svc("c", &o, ""),
    ));
    g.wait_event("all 3 services ready", T);
    // c has no probe (ready once started); wait until its signal handler is set.
    g.wait_stdout("[c] c is up", T);
    let (code, _) = g.terminate();
    assert_eq!(code, Some(0));
    let lines: Vec<String> = std::fs::read_to_string(&order).unwrap().lines().map(String::from).collect();
    assert_eq!(lines, ["up a", "up b", "up c", "stop c", "stop b", "stop a"]);
}

#[test]
fn sigterm_kills_a_child_that_ignores_it_after_its_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let rec = dir.path().join("rec").display().to_string();
    let mut g = Gpubox::start(&format!(
        r#"
[services.stubborn]
{stubborn}
stop_timeout = "2s"

[services.polite]
{polite}
stop_timeout = "1s"
"#,
        stubborn = svc("stubborn", &rec, ", \"--ignore-term\""),
        polite = svc("polite", &rec, ""),
    ));
    g.wait_event("all 2 services ready", T);
    // Wait until both have installed their signal handlers.
    g.wait_stdout_all(&["stubborn is up", "polite is up"], T);
    let stubborn_pid = g.service_status("stubborn")["pid"].as_i64().unwrap() as i32;
    let (code, took) = g.terminate();
    assert_eq!(code, Some(0));
    assert!(took < Duration::from_secs(3), "gpubox took {took:?} to exit; largest stop_timeout is 2s");
    assert!(took >= Duration::from_secs(2), "the stubborn child was killed before its stop_timeout ({took:?})");
    let gone = nix::sys::signal::kill(nix::unistd::Pid::from_raw(stubborn_pid), None).is_err();
    assert!(gone, "the child that ignored SIGTERM is still alive");
    let log = g.read("ws/logs/gpubox.log");
    assert!(log.contains("stubborn: did not stop within 2.0s; sending SIGKILL"), "{log}");
    assert!(std::fs::read_to_string(dir.path().join("rec")).unwrap().contains("stop polite"));
}

#[test]
fn a_dependent_waits_while_its_dependency_is_not_ready() {
    // `gate` never becomes ready (nothing listens on its port), so `after` must not start.
    let port = free_port();
    let g = Gpubox::start(&format!(
        r#"
[services.gate]
command = ["sleep", "100"]
ready = "tcp://127.0.0.1:{port}"

[services.after]
command = ["sh", "-c", "touch started; sleep 100"]
depends_on = ["gate"]
"#
    ));
    g.wait_event("gate: started", T);
    let after = g.service_status("after");
    assert_eq!(after["state"], "waiting");
    assert!(!g.path("ws/started").exists());
    // Now make it ready: listen on the port; `after` starts once the probe sees it.
    let _listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    g.wait_event("after: started", T);
    assert_eq!(g.service_status("gate")["ready"], true);
}

/// A port nothing listens on now, and one no other caller in this test process was given: the
/// kernel may hand the same ephemeral port to two quick binds in a row, and a test that starts
/// gpubox with two services on one port fails (it did once in CI).
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

#[test]
fn sighup_is_passed_on_to_services_and_does_not_stop_gpubox() {
    let g = Gpubox::start(
        r#"
[services.reloadable]
command = ["sh", "-c", "trap 'echo got-hup >> hups' HUP; echo ready; while true; do sleep 0.05; done"]
"#,
    );
    g.wait_stdout("[reloadable] ready", T);
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(g.pid()), nix::sys::signal::Signal::SIGHUP).unwrap();
    g.wait_event("SIGHUP received: passing it on", T);
    // The trap runs when the current `sleep 0.05` ends; the shell then appends to the file.
    let deadline = std::time::Instant::now() + T;
    while g.read("ws/hups").is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(g.read("ws/hups").contains("got-hup"));
    assert_eq!(g.service_status("reloadable")["state"], "running");
    assert_eq!(g.service_status("reloadable")["restarts"], 0);
}
