//! Cloudflare tunnels (`[tunnels]`) through the real binary and a stand-in `cloudflared`
//! (tests/fixtures/cloudflared: the real one's output, and Cloudflare's edge played on a local
//! port): the addresses read from its output, requests through the tunnel (the login, the real
//! client's address, links to the other ports through theirs), a restarted tunnel's new address,
//! a named tunnel's host names, and a missing or failing cloudflared leaving the ports serving.

use std::path::Path;
use std::time::Duration;

use crate::gateway::{PASSWORD, USER};
use crate::http::{request, Response};
use crate::supervisor::free_port;
use crate::util::{fixture, wait_for, Gpubox};

const T: Duration = Duration::from_secs(30);

fn config(logs: u16, app: u16, up: u16, tunnels: &str) -> String {
    format!(
        r#"
[auth]
username = "{USER}"
password = "{PASSWORD}"
max_failures = 2

[tunnels]
{tunnels}

[services.logs]
app = "logs"
port = {logs}
tunnel = true

[services.app]
command = ["python3", "{script}", "{up}"]
port = {app}
upstream = "http://127.0.0.1:{up}"
ready = "tcp://127.0.0.1:{up}"
tunnel = true
"#,
        script = fixture("upstream.py"),
    )
}

/// gpubox with the stand-in's folder (where it says which local port plays which host name).
fn start(body: &str, env: &[String]) -> (Gpubox, tempfile::TempDir) {
    let edges = tempfile::tempdir().unwrap();
    let mut prefix = vec!["env".to_string(), format!("CLOUDFLARED_STANDIN_DIR={}", edges.path().display())];
    prefix.extend(env.iter().cloned());
    let prefix: Vec<&str> = prefix.iter().map(String::as_str).collect();
    (Gpubox::start_with(&prefix, body), edges)
}

/// The tunnels' addresses as `gpubox status` gives them: (url, port, via).
fn tunnels(g: &Gpubox) -> Vec<(String, u16, String)> {
    g.status()["tunnels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["url"].as_str().unwrap().to_string(),
                t["port"].as_u64().unwrap() as u16,
                t["via"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// A request through the stand-in's edge for `url`'s host.
fn through(edges: &Path, url: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
    let host = url.strip_prefix("https://").unwrap();
    let edge: u16 = std::fs::read_to_string(edges.join(host)).unwrap().trim().parse().unwrap();
    let mut h = vec![("Host", host)];
    h.extend_from_slice(headers);
    request(edge, method, path, &h, body)
}

fn login_through(edges: &Path, url: &str, client: &str, password: &str) -> Response {
    through(
        edges,
        url,
        "POST",
        "/.gpubox/login",
        &[("Content-Type", "application/x-www-form-urlencoded"), ("Origin", url), ("X-Standin-Client", client)],
        format!("username={USER}&password={}&next=/", password.replace(' ', "+")).as_bytes(),
    )
}

#[test]
fn quick_tunnels_serve_each_port_behind_the_login_and_a_restart_brings_a_new_address() {
    let (logs, app, up) = (free_port(), free_port(), free_port());
    let body = config(logs, app, up, &format!("quick = true\nprogram = \"{}\"", fixture("cloudflared")));
    let (g, edges) = start(&body, &[]);
    g.wait_event("all 3 services ready", T);
    wait_for(|| tunnels(&g).len() == 2, T, "both quick tunnels' addresses read from cloudflared's output");
    let t = tunnels(&g);
    let (logs_url, app_url) = (&t.iter().find(|x| x.1 == logs).unwrap().0, &t.iter().find(|x| x.1 == app).unwrap().0);
    assert!(logs_url.ends_with(".trycloudflare.com") && logs_url != app_url, "{t:?}");
    assert_eq!(t.iter().find(|x| x.1 == logs).unwrap().2, "tunnel-logs");
    let text = String::from_utf8(g.cli(&["status"]).stdout).unwrap();
    assert!(text.contains("TUNNEL") && text.contains(logs_url.as_str()), "gpubox status lists them: {text}");

    // Through the tunnel: the login in front, the session cookie Secure (the edge speaks HTTPS).
    assert_eq!(through(edges.path(), logs_url, "GET", "/.gpubox/health", &[], b"").status, 200);
    let r = through(edges.path(), app_url, "GET", "/", &[], b"");
    assert!(r.status == 401 || r.status == 303 || r.status == 302, "the login first: {}", r.status);
    let r = login_through(edges.path(), logs_url, "198.51.100.1", PASSWORD);
    assert_eq!(r.status, 303, "{}", r.text());
    let set = r.header("set-cookie").unwrap().to_string();
    assert!(set.contains("; Secure"), "{set}");
    let cookie = format!("gpubox_session={}", r.session_cookie().unwrap());
    // The home page through the tunnel: every address, and the header's links through tunnels.
    let home = through(edges.path(), logs_url, "GET", "/.gpubox/", &[("Cookie", &cookie)], b"").text();
    assert!(
        home.contains(&format!("href=\"{app_url}\" title=\"port {app}\"")),
        "the header links to the app's tunnel: {home}"
    );
    assert!(home.contains(&format!("data-copy=\"{app_url}\"")), "its tile too: {home}");
    assert!(home.contains("the quick tunnel to app"), "{home}");
    // The proxied service hears that its visitor came over HTTPS.
    let r = through(edges.path(), app_url, "GET", "/echo-headers", &[("Cookie", &cookie)], b"");
    assert_eq!(r.status, 200);
    let seen: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(seen["x-forwarded-proto"], "https", "{seen}");

    // The real client's address: the throttle counts each visitor apart…
    for _ in 0..2 {
        assert_ne!(login_through(edges.path(), logs_url, "198.51.100.7", "wrong").status, 429);
    }
    assert_eq!(login_through(edges.path(), logs_url, "198.51.100.7", "wrong").status, 429, "that visitor is throttled");
    assert_ne!(login_through(edges.path(), logs_url, "198.51.100.8", "wrong").status, 429, "another one is not");
    // …and only there: quick tunnels come in on a loopback port of their own, so the same
    // headers sent to the port itself, even from 127.0.0.1 (another local proxy), are not
    // believed, and made-up addresses do not escape the throttle.
    let direct = |client: &str| {
        let origin = format!("http://127.0.0.1:{logs}");
        request(
            logs,
            "POST",
            "/.gpubox/login",
            &[("Content-Type", "application/x-www-form-urlencoded"), ("Origin", &origin), ("CF-Connecting-IP", client)],
            format!("username={USER}&password=wrong&next=/").as_bytes(),
        )
        .status
    };
    assert_ne!(direct("192.0.2.10"), 429);
    assert_ne!(direct("192.0.2.11"), 429);
    assert_eq!(direct("192.0.2.12"), 429, "CF-Connecting-IP is not believed on the port itself");
    // The tunnel's origin: written with gpubox's pid, on loopback.
    let origin = std::fs::read_to_string(g.path(&format!("ws/.gpubox/tunnels/{logs}.origin"))).unwrap();
    assert!(origin.starts_with(&format!("{} 127.0.0.1:", g.pid())), "{origin}");

    // A tunnel that dies is started again, and its new address replaces the old one.
    let pid = g.service_status("tunnel-logs")["pid"].as_i64().unwrap() as i32;
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL).unwrap();
    wait_for(|| tunnels(&g).iter().any(|x| x.1 == logs && x.0 != *logs_url), T, "the restarted tunnel's new address");
    let t2 = tunnels(&g);
    assert!(!t2.iter().any(|x| x.0 == *logs_url), "the old address is gone: {t2:?}");
    assert!(t2.iter().any(|x| x.0 == *app_url), "the other tunnel is untouched: {t2:?}");

    // A service added on the running instance asks for a tunnel: `gpubox reload` starts one.
    let (extra, extra_up) = (free_port(), free_port());
    std::fs::create_dir_all(g.path("ws/gpubox.d")).unwrap();
    std::fs::write(
        g.path("ws/gpubox.d/extra.toml"),
        format!(
            "[services.extra]\ncommand = [\"python3\", \"{}\", \"{extra_up}\"]\nport = {extra}\nupstream = \"http://127.0.0.1:{extra_up}\"\ntunnel = true\n",
            fixture("upstream.py")
        ),
    )
    .unwrap();
    let out = g.cli(&["reload"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    wait_for(|| tunnels(&g).iter().any(|t| t.1 == extra), T, "the added service's tunnel");
    let url = tunnels(&g).into_iter().find(|t| t.1 == extra).unwrap().0;
    let r = through(edges.path(), &url, "GET", "/", &[("Cookie", &cookie)], b"");
    assert_eq!(r.text(), "hello from upstream", "through the new tunnel to the new service");
    // Taken away again: its tunnel stops, its address and its origin go.
    std::fs::remove_file(g.path("ws/gpubox.d/extra.toml")).unwrap();
    assert_eq!(g.cli(&["reload"]).status.code(), Some(0));
    wait_for(|| !tunnels(&g).iter().any(|t| t.1 == extra), T, "the removed tunnel's address forgotten");
    assert!(!g.path(&format!("ws/.gpubox/tunnels/{extra}.origin")).exists());
    assert!(g.status()["services"].as_array().unwrap().iter().all(|s| s["name"] != "tunnel-extra"));
}

#[test]
fn a_named_tunnel_serves_its_hosts_and_a_bad_token_or_missing_cloudflared_leaves_the_ports_serving() {
    let (logs, app, up) = (free_port(), free_port(), free_port());
    // A token as the dashboard gives it: base64 of {"a": account, "t": tunnel id, "s": secret}.
    let token = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        r#"{"a":"0123456789abcdef0123456789abcdef","t":"5a1e3a0c-4c8a-4d2b-9d55-1c6a2f0c1b7e","s":"c2VjcmV0"}"#,
    );
    let ingress = format!(
        r#"CLOUDFLARED_STANDIN_INGRESS=[{{"hostname":"Files.Example.com","service":"http://localhost:{logs}"}}]"#
    );
    let body =
        config(logs, app, up, &format!("token = \"${{CF_TUNNEL_TOKEN}}\"\nprogram = \"{}\"", fixture("cloudflared")));
    let (g, edges) = start(&body, &[ingress, format!("CF_TUNNEL_TOKEN={token}")]);
    g.wait_event("all 2 services ready", T);
    wait_for(|| tunnels(&g).len() == 1, T, "the named tunnel's host read from its configuration");
    assert_eq!(tunnels(&g), vec![("https://files.example.com".to_string(), logs, "tunnel".to_string())]);
    // Its name is answered (it is not among the names gpubox knows otherwise), others are not.
    let r = through(edges.path(), "https://files.example.com", "GET", "/.gpubox/login", &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(request(logs, "GET", "/.gpubox/login", &[("Host", "other.example.com")], b"").status, 421);
    // The token is in the tunnel's environment, never on its command line or in `config show`.
    let pid = g.service_status("tunnel")["pid"].as_i64().unwrap();
    let cmdline = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap();
    assert!(!cmdline.contains(&token), "{cmdline}");
    let shown =
        String::from_utf8(g.cli(&["config", "show", "--config", g.path("gpubox.toml").to_str().unwrap()]).stdout)
            .unwrap();
    assert!(!shown.contains(&token), "{shown}");
    // Nor in another service's environment (gpubox's own CF_TUNNEL_TOKEN is withheld) or a log.
    let app_pid = g.service_status("app")["pid"].as_i64().unwrap();
    let environ = std::fs::read(format!("/proc/{app_pid}/environ")).unwrap();
    assert!(!String::from_utf8_lossy(&environ).contains(&token), "the app's environment holds the token");
    for service in ["tunnel", "gpubox", "app"] {
        assert!(!g.log_texts(service).iter().any(|l| l.contains(&token)), "{service}'s log holds the token");
    }
    // A stopped tunnel's names are no longer answered.
    assert_eq!(g.cli(&["stop", "tunnel"]).status.code(), Some(0));
    wait_for(|| tunnels(&g).is_empty(), T, "the stopped tunnel's names forgotten");
    assert_eq!(request(logs, "GET", "/.gpubox/login", &[("Host", "files.example.com")], b"").status, 421);
    drop(g);

    // A token cloudflared refuses: it exits, is started again after a delay, and says why; the
    // ports serve as ever.
    let body = config(logs, app, up, &format!("token = \"not-a-token\"\nprogram = \"{}\"", fixture("cloudflared")));
    let (g, _edges) = start(&body, &[]);
    g.wait_event("app: ready", T);
    wait_for(|| g.log_texts("tunnel").iter().any(|l| l.contains("Provided Tunnel token is not valid.")), T, "why");
    assert_eq!(request(logs, "GET", "/.gpubox/health", &[], b"").status, 200);
    drop(g);

    // No cloudflared: one line in the log, none of the tunnels' services, the ports serve.
    let body = config(logs, app, up, "quick = true\nprogram = \"cloudflared-that-is-not-installed\"");
    let (g, _edges) = start(&body, &[]);
    g.wait_event("all 1 services ready", T);
    let said: Vec<String> =
        g.log_texts("gpubox").into_iter().filter(|l| l.contains("tunnels: no tunnel runs")).collect();
    assert_eq!(said.len(), 1, "{said:?}");
    assert!(said[0].contains("`cloudflared-that-is-not-installed` is not installed"), "{said:?}");
    assert_eq!(g.status()["tunnel_problem"].as_str().map(|p| p.contains("not installed")), Some(true));
    assert_eq!(request(logs, "GET", "/.gpubox/health", &[], b"").status, 200);
    let names: Vec<String> =
        g.status()["services"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap().to_string()).collect();
    assert_eq!(names, vec!["app".to_string()], "no tunnel service without cloudflared");
}

#[test]
fn a_quick_tunnel_reaches_a_port_that_speaks_https() {
    let (logs, app, up) = (free_port(), free_port(), free_port());
    let body = config(logs, app, up, &format!("quick = true\nprogram = \"{}\"", fixture("cloudflared")))
        + "\n[tls]\nenabled = true\n";
    let (g, edges) = start(&body, &[]);
    g.wait_event("all 3 services ready", T);
    wait_for(|| tunnels(&g).len() == 2, T, "both quick tunnels' addresses");
    let url = tunnels(&g).into_iter().find(|t| t.1 == logs).unwrap().0;
    // cloudflared speaks plain HTTP to its origin: served, not sent to https://.
    let r = through(edges.path(), &url, "GET", "/.gpubox/login", &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    // The port itself still sends plain HTTP to https://.
    let host = format!("localhost:{logs}");
    assert_eq!(request(logs, "GET", "/.gpubox/login", &[("Host", &host)], b"").status, 307);
}
