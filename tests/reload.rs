//! `gpubox reload` with services added in `gpubox.d`: what is added, removed and changed, what is
//! left running, the ports that open and close behind the login, and a bad file that changes
//! nothing.

use std::time::Duration;

use crate::gateway::{basic, PASSWORD, USER};
use crate::http::request;
use crate::supervisor::free_port;
use crate::util::Gpubox;

const T: Duration = Duration::from_secs(30);

fn stdout(out: &std::process::Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn pid(g: &Gpubox, name: &str) -> i64 {
    g.service_status(name)["pid"].as_i64().unwrap_or_else(|| panic!("{name} has no pid: {}", g.status()))
}

#[test]
fn reload_adds_removes_and_changes_services_and_leaves_the_rest_running() {
    let (port, upstream) = (free_port(), free_port());
    let logs = free_port();
    let main = |chg: &str, with_old: bool| {
        let old = if with_old { "[services.old]\ncommand = \"sleep 100\"\n" } else { "" };
        format!(
            "[auth]\nusername = \"{USER}\"\npassword = \"{PASSWORD}\"\n[services.keep]\ncommand = \"sleep 100\"\n{old}[services.chg]\ncommand = [\"sh\", \"-c\", \"echo {chg} >> runs; exec sleep 100\"]\n[services.logs]\napp = \"logs\"\nport = {logs}\nbind = \"127.0.0.1\"\n"
        )
    };
    let g = Gpubox::start(&main("v1", true));
    g.wait_event("all 3 services ready", T);
    let keep = pid(&g, "keep");
    let old = pid(&g, "old");

    // A service with a port behind the login, in a file of its own; one gone; one changed.
    std::fs::create_dir_all(g.path("ws/gpubox.d")).unwrap();
    std::fs::write(
        g.path("ws/gpubox.d/web.toml"),
        format!(
            "[services.web]\ncommand = \"python3 -m http.server {upstream} --bind 127.0.0.1\"\nport = {port}\nbind = \"127.0.0.1\"\nupstream = \"http://127.0.0.1:{upstream}\"\nready = \"http://127.0.0.1:{upstream}/\"\ndepends_on = [\"keep\"]\n"
        ),
    )
    .unwrap();
    let ws = g.path("ws").display().to_string();
    std::fs::write(g.path("gpubox.toml"), format!("workspace = \"{ws}\"\n{}", main("v2", false))).unwrap();
    let out = g.cli(&["reload"]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    for line in
        ["added:     web", "removed:   old", "changed:   chg", "unchanged: keep", &format!("port {port}: open (web")]
    {
        assert!(text.contains(line), "no `{line}` in:\n{text}");
    }
    assert!(text.contains("gpubox.d/web.toml"), "the sources are named: {text}");
    assert!(!text.contains("applied only when"), "nothing outside the services changed: {text}");
    // Waited until the new service answered.
    assert_eq!(g.service_status("web")["ready"], true, "{text}");

    assert_eq!(pid(&g, "keep"), keep, "an unchanged service keeps running");
    let names: Vec<String> =
        g.status()["services"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap().to_string()).collect();
    assert_eq!(names, ["chg", "keep", "web"]);
    assert!(nix::sys::signal::kill(nix::unistd::Pid::from_raw(old as i32), None).is_err(), "the removed one stopped");
    crate::util::wait_for(|| g.read("ws/runs") == "v1\nv2\n", T, "the changed service ran its new command");

    // The new port is behind the login like every other.
    let r = request(port, "GET", "/", &[], b"");
    assert_eq!(r.status, 401, "no login, no answer from the service");
    let r = request(port, "GET", "/", &[("Authorization", &basic(USER, PASSWORD))], b"");
    assert_eq!(r.status, 200);
    assert!(String::from_utf8_lossy(&r.body).contains("Directory listing"), "the upstream answered");

    // The file gone: the service and its port go too.
    std::fs::remove_file(g.path("ws/gpubox.d/web.toml")).unwrap();
    let out = g.cli(&["reload"]);
    let text = stdout(&out);
    assert!(
        out.status.success() && text.contains("removed:   web") && text.contains(&format!("port {port}: closed")),
        "{text}"
    );
    crate::util::wait_for(|| std::net::TcpStream::connect(("127.0.0.1", port)).is_err(), T, "the port closes");
    assert!(std::net::TcpStream::connect(("127.0.0.1", upstream)).is_err(), "the service stopped");
    assert_eq!(pid(&g, "keep"), keep);
    let events = g.log_texts("gpubox");
    assert!(
        events.iter().any(|e| e.starts_with("configuration reloaded from ") && e.contains("removed web")),
        "{events:?}"
    );
}

#[test]
fn a_bad_file_or_a_taken_port_changes_nothing() {
    let logs = free_port();
    let g = Gpubox::start(&format!(
        "[services.keep]\ncommand = \"sleep 100\"\n[services.logs]\napp = \"logs\"\nport = {logs}\nbind = \"127.0.0.1\"\n"
    ));
    g.wait_event("all 1 services ready", T);
    let keep = pid(&g, "keep");
    std::fs::create_dir_all(g.path("ws/gpubox.d")).unwrap();
    std::fs::write(g.path("ws/gpubox.d/a.toml"), "[services.new]\ncommand = \"sleep 100\"\n").unwrap();
    std::fs::write(g.path("ws/gpubox.d/b.toml"), "[services.bad]\ncommand = \"sleep 1\"\nrestart = \"sometimes\"\n")
        .unwrap();
    let out = g.cli(&["reload"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains("gpubox.d/b.toml:3:"), "the file and line: {text}");
    assert!(text.contains("nothing was changed"), "{text}");
    assert_eq!(g.status()["services"].as_array().unwrap().len(), 1, "the good file was not applied either");

    // A port another program holds: refused before anything changes.
    std::fs::remove_file(g.path("ws/gpubox.d/b.toml")).unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    std::fs::write(
        g.path("ws/gpubox.d/b.toml"),
        format!("[services.web]\ncommand = \"sleep 100\"\nport = {port}\nbind = \"127.0.0.1\"\nupstream = \"http://127.0.0.1:1\"\n"),
    )
    .unwrap();
    let out = g.cli(&["reload"]);
    let text = stdout(&out);
    assert_ne!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains(&format!("cannot listen on 127.0.0.1:{port}")) && text.contains("nothing was changed"),
        "{text}"
    );
    assert_eq!(g.status()["services"].as_array().unwrap().len(), 1, "{}", g.status());
    assert_eq!(pid(&g, "keep"), keep);

    drop(taken);
    let out = g.cli(&["reload", "--no-wait"]);
    assert!(out.status.success(), "{}", stdout(&out));
    assert_eq!(g.status()["services"].as_array().unwrap().len(), 3);
}

/// At start, an added file with errors is left out whole (and said so), rather than keeping gpubox
/// and its file manager from starting; the main file's errors still stop it.
#[test]
fn at_start_a_bad_added_file_is_left_out_and_the_rest_runs() {
    let dir = crate::util::config_dir("[services.keep]\ncommand = \"sleep 100\"\n");
    let d = dir.path().join("ws/gpubox.d");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("good.toml"), "[services.good]\ncommand = \"sleep 100\"\n").unwrap();
    std::fs::write(d.join("bad.toml"), "[services.bad]\ncommand = \"sleep 100\"\nrestart = \"sometimes\"\n").unwrap();
    // Depends on the bad one: left out too, once that one is.
    std::fs::write(d.join("next.toml"), "[services.next]\ncommand = \"sleep 100\"\ndepends_on = [\"bad\"]\n").unwrap();
    let g = Gpubox::start_in(dir, &[]);
    g.wait_event("all 2 services ready", T);
    let names: Vec<String> =
        g.status()["services"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap().to_string()).collect();
    assert_eq!(names, ["good", "keep"]);
    let events = g.log_texts("gpubox").join("\n");
    assert!(
        events.contains("WARNING: services from") && events.contains("bad.toml") && events.contains("next.toml"),
        "{events}"
    );
    assert!(events.contains("bad.toml:3:"), "the file and line: {events}");
    assert!(g.status()["gpubox"]["info"]["config"].as_str().unwrap().contains("good.toml"));

    // Fixed, then reloaded: both come in, and `status` names the new sources.
    std::fs::write(d.join("bad.toml"), "[services.bad]\ncommand = \"sleep 100\"\n").unwrap();
    let out = g.cli(&["reload"]);
    assert!(out.status.success(), "{}", stdout(&out));
    assert_eq!(g.status()["services"].as_array().unwrap().len(), 4);
    assert!(g.status()["gpubox"]["info"]["config"].as_str().unwrap().contains("next.toml"));
}
