//! The gateway through the real binary: one login in front of every route, the Origin rule,
//! throttling, and the proxy (streaming, WebSocket, headers, waiting page) in front of a real
//! upstream process.

use std::io::{Read, Write};
use std::time::Duration;

use base64::Engine;
use gpubox::api::Client;
use gpubox::api::Request;

use crate::http::{request, Response};
use crate::supervisor::free_port;
use crate::util::{fixture, Gpubox};

const T: Duration = Duration::from_secs(30);
pub(crate) const USER: &str = "alice";
pub(crate) const PASSWORD: &str = "correct horse";
pub(crate) const TOKEN: &str = "tok-0123456789abcdef";

pub(crate) struct Box {
    pub g: Gpubox,
    pub port: u16,
}

pub(crate) fn start(auth_extra: &str, delay: f32) -> Box {
    let (port, up, logs, term, files) = (free_port(), free_port(), free_port(), free_port(), free_port());
    let g = Gpubox::start(&format!(
        r#"
[auth]
username = "{USER}"
password = "{PASSWORD}"
token = "{TOKEN}"
{auth_extra}

[services.app]
command = ["python3", "{script}", "{up}", "--delay", "{delay}"]
port = {port}
upstream = "http://127.0.0.1:{up}"

# A built-in app on a port of its own: its routes join the table that the auth test walks.
[services.logs]
app = "logs"
port = {logs}

[services.terminal]
app = "terminal"
port = {term}
# A plain login shell: the host's bash profile may run slow things (pyenv rehash) that a
# shutdown would cut.
shell = "/bin/sh"

[services.files]
app = "files"
port = {files}
"#,
        script = fixture("upstream.py"),
    ));
    g.wait_event(&format!("app: listening on 0.0.0.0:{port}"), T);
    g.wait_event(&format!("logs: listening on 0.0.0.0:{logs}"), T);
    g.wait_event(&format!("terminal: listening on 0.0.0.0:{term}"), T);
    g.wait_event(&format!("files: listening on 0.0.0.0:{files}"), T);
    Box { g, port }
}

impl Box {
    pub fn ready(self) -> Box {
        self.g.wait_event("app: ready", T);
        self
    }

    pub fn login(&self) -> String {
        let body = format!("username={USER}&password={}&next=/", PASSWORD.replace(' ', "+"));
        let r = request(
            self.port,
            "POST",
            "/.gpubox/login",
            &[("Content-Type", "application/x-www-form-urlencoded"), ("Origin", &self.origin())],
            body.as_bytes(),
        );
        assert_eq!(r.status, 303, "login failed: {}", r.text());
        r.session_cookie().expect("a session cookie")
    }

    pub fn origin(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn routes(&self) -> Vec<(u16, serde_json::Value)> {
        let v = Client::call(&self.g.control, &Request::Routes).unwrap();
        let mut out = Vec::new();
        for site in v["sites"].as_array().unwrap() {
            for r in site["routes"].as_array().unwrap() {
                out.push((site["port"].as_u64().unwrap() as u16, r.clone()));
            }
        }
        out
    }
}

pub(crate) fn basic(user: &str, pass: &str) -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}")))
}

fn methods(route: &serde_json::Value) -> Vec<&'static str> {
    match route["method"].as_str().unwrap() {
        "GET" => vec!["GET"],
        "POST" => vec!["POST"],
        "PATCH" => vec!["PATCH"],
        "DELETE" => vec!["DELETE"],
        _ => vec!["GET", "POST", "PUT", "DELETE"],
    }
}

fn refused(r: &Response) -> bool {
    r.status == 401 || r.status == 429
}

#[test]
fn every_route_refuses_bad_credentials_and_accepts_each_good_method() {
    let b = start("session_ttl = \"2s\"", 0.0).ready();
    let routes = b.routes();
    assert!(routes.len() >= 8, "expected the reserved routes and the proxy: {routes:?}");
    for app in ["files", "logs", "terminal"] {
        assert!(routes.iter().any(|(_, r)| r["owner"] == app), "the {app} app's routes are walked too");
    }
    // What answers without a login: the health check, the login page and the assets on every
    // port, and share links on the file manager's port alone.
    let files_port = routes.iter().find(|(_, r)| r["owner"] == "files").map(|(p, _)| *p).unwrap();
    for (port, r) in routes.iter().filter(|(_, r)| r["public"] == true) {
        let path = r["path"].as_str().unwrap();
        if path.starts_with("/.gpubox/s/") {
            assert_eq!((*port, r["owner"].as_str()), (files_port, Some("files")), "a share route elsewhere: {r}");
        } else {
            assert!(
                ["/.gpubox/health", "/.gpubox/login", "/.gpubox/assets/{file}"].contains(&path)
                    && r["owner"] == "gpubox",
                "an unexpected public route on {port}: {r}"
            );
        }
    }
    let shares =
        routes.iter().filter(|(_, r)| r["public"] == true && r["path"].as_str().unwrap().starts_with("/.gpubox/s/"));
    assert_eq!(shares.count(), 5, "the share routes are public (and tested so below, and in files_pictures)");
    let origin = b.origin();
    let cookie = format!("gpubox_session={}", b.login());
    let good_basic = basic(USER, PASSWORD);
    let bearer = format!("Bearer {TOKEN}");

    // Good credentials first: refusals below engage the throttle for this address.
    for (port, route) in &routes {
        let path = route["example"].as_str().unwrap();
        if path == "/.gpubox/logout" {
            continue; // would end the session; it is checked last
        }
        for m in methods(route) {
            for auth in [
                ("Cookie", cookie.as_str()),
                ("Authorization", good_basic.as_str()),
                ("Authorization", bearer.as_str()),
            ] {
                let origin = format!("http://127.0.0.1:{port}");
                let r = request(*port, m, path, &[auth, ("Origin", &origin)], b"");
                // Let through: not refused by the login nor by the Origin rule (an app may still
                // answer 403 for reasons of its own, such as deleting the workspace itself).
                let origin_refusal = r.status == 403 && r.text().contains("cross_origin");
                assert!(!refused(&r) && !origin_refusal, "{m} {path} with {}: {} {}", auth.0, r.status, r.text());
            }
        }
        // ?token= logs in and redirects to the same URL without the token.
        if route["method"] != "POST" {
            let sep = if path.contains('?') { '&' } else { '?' };
            let r = request(*port, "GET", &format!("{path}{sep}token={TOKEN}"), &[], b"");
            assert_eq!(r.status, 303, "GET {path}?token=: {}", r.status);
            assert_eq!(r.header("location"), Some(path));
            assert!(r.session_cookie().is_some());
        }
    }

    // A public route asked with a method it does not have is refused like a private one, and with
    // a login gets 405: only what was declared public answers without one.
    for (port, route) in routes.iter().filter(|(_, r)| r["public"] == true) {
        let path = route["example"].as_str().unwrap();
        let origin = format!("http://127.0.0.1:{port}");
        let r = request(*port, "PUT", path, &[("Origin", &origin)], b"");
        assert_eq!(r.status, 401, "PUT {path} without a login: {}", r.text());
        let r = request(*port, "PUT", path, &[("Origin", &origin), ("Cookie", &cookie)], b"");
        assert_eq!(r.status, 405, "PUT {path} with a login: {}", r.text());
        let allow = r.header("allow").unwrap_or_default();
        assert!(allow.contains("GET") || allow.contains("POST"), "405 says what the route takes: {allow:?}");
    }

    // A session that was not used for longer than session_ttl has expired.
    let idle = format!("gpubox_session={}", b.login());
    std::thread::sleep(Duration::from_millis(2200));
    let expired = request(b.port, "GET", "/.gpubox/session", &[("Cookie", &idle)], b"");
    assert_eq!(expired.status, 401);

    // A revoked session: log out, then use the cookie again.
    let revoked = format!("gpubox_session={}", b.login());
    let out = request(b.port, "POST", "/.gpubox/logout", &[("Cookie", &revoked), ("Origin", &origin)], b"");
    assert_eq!(out.status, 303);

    let bad: Vec<(&str, String)> = vec![
        ("nothing", String::new()),
        ("wrong password", basic(USER, "wrong")),
        ("wrong user", basic("mallory", PASSWORD)),
        ("wrong token", "Bearer tok-wrong-wrong-wrong".into()),
        ("expired session", idle.clone()),
        ("revoked session", revoked.clone()),
        ("forged session", "gpubox_session=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".into()),
    ];
    let mut sent = 0;
    for (port, route) in &routes {
        let path = route["example"].as_str().unwrap();
        for m in methods(route) {
            for (what, value) in &bad {
                sent += 1;
                let origin = format!("http://127.0.0.1:{port}");
                let mut headers: Vec<(&str, &str)> = vec![("Origin", &origin)];
                if value.starts_with("gpubox_session") {
                    headers.push(("Cookie", value));
                } else if !value.is_empty() {
                    headers.push(("Authorization", value));
                }
                let r = request(*port, m, path, &headers, b"");
                if route["public"] == true {
                    assert!(!refused(&r), "public {m} {path} refused with {what}: {}", r.status);
                } else {
                    assert!(refused(&r), "{m} {path} with {what}: {} {}", r.status, r.text());
                    // WebDAV clients are challenged (they ask for credentials only then); nothing else is.
                    if !path.starts_with("/dav") {
                        assert!(r.header("www-authenticate").is_none(), "never a Basic challenge: {m} {path}");
                    }
                }
            }
            if route["websocket"] == true {
                let ws = [
                    ("Upgrade", "websocket"),
                    ("Connection", "Upgrade"),
                    ("Sec-WebSocket-Version", "13"),
                    ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
                ];
                let r = request(*port, "GET", path, &ws, b"");
                sent += 1;
                assert!(refused(&r), "WebSocket {path} without credentials: {}", r.status);
            }
        }
    }
    eprintln!(
        "attack: {} routes on 4 ports, {sent} requests with missing or bad credentials, all refused",
        routes.len()
    );
}

#[test]
fn a_browser_is_sent_to_the_login_page_and_back() {
    let b = start("", 0.0).ready();
    let r = request(b.port, "GET", "/some/page?x=1", &[("Accept", "text/html")], b"");
    assert_eq!(r.status, 303);
    let location = r.header("location").unwrap().to_string();
    assert_eq!(location, "/.gpubox/login?next=/some/page%3Fx%3D1");
    let page = request(b.port, "GET", &location, &[("Accept", "text/html")], b"");
    assert_eq!(page.status, 200);
    assert!(page.text().contains("name=\"next\" value=\"/some/page?x=1\""), "{}", page.text());
    let csp = page.header("content-security-policy").unwrap();
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"));
    assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
    assert!(page.header("referrer-policy").is_some());
    assert!(csp.contains("frame-ancestors 'self'"));
    let cookie = b.login();
    let api = request(b.port, "GET", "/.gpubox/session", &[("Cookie", &format!("gpubox_session={cookie}"))], b"");
    assert!(api.text().contains("\"method\":\"session\""), "{}", api.text());
    // Wrong password on the form: the page again, with an error, and no cookie.
    let wrong = request(
        b.port,
        "POST",
        "/.gpubox/login",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        b"username=alice&password=nope&next=/x",
    );
    assert_eq!(wrong.status, 401);
    assert!(wrong.text().contains("Wrong username or password") && wrong.session_cookie().is_none());
    // `next` may not leave this site.
    let body = format!("username={USER}&password={}&next=//evil.example/", PASSWORD.replace(' ', "+"));
    let r = request(
        b.port,
        "POST",
        "/.gpubox/login",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        body.as_bytes(),
    );
    assert_eq!(r.header("location"), Some("/"));
}

#[test]
fn the_default_login_is_announced_on_every_page() {
    let port = free_port();
    let up = free_port();
    let g = Gpubox::start(&format!(
        "[services.app]\ncommand = [\"python3\", \"{}\", \"{up}\"]\nport = {port}\nupstream = \"http://127.0.0.1:{up}\"\n",
        fixture("upstream.py")
    ));
    let events = g.wait_event("listening on", T);
    assert!(events.iter().any(|e| e.contains("WARNING: The login is the default admin / admin")), "{events:#?}");
    let page = request(port, "GET", "/.gpubox/login", &[], b"");
    assert!(page.text().contains("class=\"banner\"") && page.text().contains("USERNAME and PASSWORD"));
    assert!(page.text().contains("/.gpubox/assets/shell.js"), "the script that hides it");
    // Hidden for the browser's session (the cookie its Hide button sets): left out of the page.
    let page = request(port, "GET", "/.gpubox/login", &[("Cookie", "a=1; gpubox_banner=hidden")], b"");
    assert!(!page.text().contains("class=\"banner\"") && !page.text().contains("shell.js"), "{}", page.text());
    let js = request(port, "GET", "/.gpubox/assets/shell.js", &[], b"");
    assert!(js.status == 200 && js.text().contains("gpubox_banner=hidden"), "{}", js.text());
}

#[test]
fn cross_origin_requests_are_refused_and_origin_null_passes_the_proxy() {
    let b = start("", 0.0).ready();
    let cookie = format!("gpubox_session={}", b.login());
    let evil = "http://evil.example";
    // A state-changing request to gpubox itself from another origin.
    let r = request(b.port, "POST", "/.gpubox/logout", &[("Cookie", &cookie), ("Origin", evil)], b"");
    assert_eq!(r.status, 403);
    // Another port on the same host is another origin too.
    let other_port = format!("http://127.0.0.1:{}", b.port + 1);
    let r = request(b.port, "POST", "/.gpubox/logout", &[("Cookie", &cookie), ("Origin", &other_port)], b"");
    assert_eq!(r.status, 403);
    let null_same = [("Cookie", cookie.as_str()), ("Origin", "null"), ("Sec-Fetch-Site", "same-origin")];
    let r = request(b.port, "POST", "/.gpubox/logout", &null_same, b"");
    assert_eq!(r.status, 403, "Origin: null is refused on gpubox's own routes");
    // Through the proxy: a cross-origin WebSocket and POST are refused…
    let ws = [("Cookie", cookie.as_str()), ("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Origin", evil)];
    assert_eq!(request(b.port, "GET", "/ws", &ws, b"").status, 403);
    assert_eq!(request(b.port, "POST", "/echo", &[("Cookie", &cookie), ("Origin", evil)], b"x").status, 403);
    // …and Origin: null from a same-origin page (Forge's no-referrer pages) passes…
    let r = request(b.port, "POST", "/echo", &null_same, b"payload");
    assert_eq!((r.status, r.text().as_str()), (200, "payload"));
    // …but not from a sandboxed frame or a page elsewhere (the browser marks those), nor one
    // the browser does not vouch for, and never on a WebSocket.
    let null_cross = [("Cookie", cookie.as_str()), ("Origin", "null"), ("Sec-Fetch-Site", "cross-site")];
    assert_eq!(request(b.port, "POST", "/echo", &null_cross, b"x").status, 403);
    assert_eq!(request(b.port, "POST", "/echo", &[("Cookie", &cookie), ("Origin", "null")], b"x").status, 403);
    let null_ws = [
        ("Cookie", cookie.as_str()),
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Origin", "null"),
        ("Sec-Fetch-Site", "same-origin"),
    ];
    assert_eq!(request(b.port, "GET", "/ws", &null_ws, b"").status, 403);
    // The same origin passes everywhere.
    let r = request(b.port, "POST", "/.gpubox/logout", &[("Cookie", &cookie), ("Origin", &b.origin())], b"");
    assert_eq!(r.status, 303);
}

#[test]
fn failed_logins_are_throttled_then_released() {
    let b = start("max_failures = 5\nlockout = \"2s\"", 0.0);
    let attempt =
        |pass: &str| request(b.port, "GET", "/.gpubox/session", &[("Authorization", &basic(USER, pass))], b"");
    for _ in 0..4 {
        assert_eq!(attempt("wrong").status, 401);
    }
    // The fourth failure asks for a one-second pause: even the right password waits.
    let r = attempt(PASSWORD);
    assert_eq!(r.status, 429);
    assert!(r.header("retry-after").is_some());
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(attempt("wrong").status, 401, "the fifth failure");
    assert_eq!(attempt(PASSWORD).status, 429, "locked out after max_failures");
    std::thread::sleep(Duration::from_millis(2100));
    assert_eq!(attempt(PASSWORD).status, 200, "released after the lockout");
}

#[test]
fn many_attempts_at_once_get_only_the_free_ones_checked() {
    let b = start("max_failures = 5\nlockout = \"60s\"", 0.0);
    let port = b.port;
    let wrong = basic(USER, "wrong");
    let answers: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..24)
            .map(|_| s.spawn(|| request(port, "GET", "/.gpubox/session", &[("Authorization", &wrong)], b"").status))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let checked = answers.iter().filter(|s| **s == 401).count();
    let throttled = answers.iter().filter(|s| **s == 429).count();
    assert_eq!(checked + throttled, answers.len(), "{answers:?}");
    // Three free failures, a pause after the fourth, a lockout at the fifth: the rest wait.
    assert!(checked <= 5, "{checked} of 24 simultaneous attempts were checked: {answers:?}");
}

#[test]
fn token_links_and_login_targets_stay_on_this_site() {
    let b = start("max_failures = 3\nlockout = \"60s\"", 0.0).ready();
    // `//evil.example/?token=…` would be a protocol-relative redirect to another host.
    let r = request(b.port, "GET", &format!("//evil.example/?token={TOKEN}"), &[], b"");
    assert_eq!((r.status, r.header("location")), (303, Some("/")));
    let r = request(b.port, "GET", &format!("/a/%09/b?x=1&token={TOKEN}"), &[], b"");
    assert_eq!(r.header("location"), Some("/a/%09/b?x=1"));
    // A login form whose `next` holds a tab (browsers drop it: `//evil`) goes home instead.
    let body = format!("username={USER}&password={}&next=/%09/evil.example/", PASSWORD.replace(' ', "+"));
    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    let r = request(b.port, "POST", "/.gpubox/login", &form, body.as_bytes());
    assert_eq!(r.header("location"), Some("/"));

    // A browser that is already logged in is sent on without spending or failing a token check:
    // stale tokens in bookmarks do not lock its address out.
    let cookie = format!("gpubox_session={}", b.login());
    for _ in 0..5 {
        let r = request(b.port, "GET", "/page?token=stale-token", &[("Cookie", &cookie)], b"");
        assert_eq!((r.status, r.header("location")), (303, Some("/page")));
        assert!(r.session_cookie().is_none(), "no new session for a logged-in browser");
    }
    let r =
        request(b.port, "POST", "/echo?token=stale-token", &[("Cookie", &cookie), ("Origin", &b.origin())], b"kept");
    assert_eq!((r.status, r.text().as_str()), (200, "kept"), "a POST goes through, without the token");
    assert_eq!(
        request(b.port, "GET", "/.gpubox/session", &[("Authorization", &basic(USER, PASSWORD))], b"").status,
        200
    );
    // Without credentials a wrong token is refused, but not counted: tokens are not guessable,
    // and free checks must not fill the throttle. Wrong passwords lock the address out; the
    // right token still logs in (see login.rs).
    for _ in 0..5 {
        assert!(refused(&request(b.port, "GET", "/?token=wrong", &[], b"")));
    }
    let body = format!("username={USER}&password={}&next=/", PASSWORD.replace(' ', "+"));
    let r = request(b.port, "POST", "/.gpubox/login", &form, body.as_bytes());
    assert_eq!(r.status, 303, "wrong tokens did not lock the address out");
    let wrong = format!("username={USER}&password=wrong&next=/");
    for _ in 0..3 {
        let _ = request(b.port, "POST", "/.gpubox/login", &form, wrong.as_bytes());
    }
    let r = request(b.port, "POST", "/.gpubox/login", &form, body.as_bytes());
    assert_eq!(r.status, 429, "locked out after max_failures");
    assert!(r.header("content-security-policy").is_some(), "gpubox's 429 page has its security headers");
    let r = request(b.port, "GET", &format!("/?token={TOKEN}"), &[("Accept", "text/html")], b"");
    assert_eq!(r.status, 303, "the right token logs in even so");
    assert!(r.session_cookie().is_some());
}

#[test]
fn a_taken_port_stops_start_up_before_any_service_starts() {
    let taken = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let dir = crate::util::config_dir(&format!(
        "[services.app]\ncommand = [\"sh\", \"-c\", \"touch started; sleep 100\"]\nport = {port}\nupstream = \"http://127.0.0.1:1\"\n"
    ));
    let out = std::process::Command::new(crate::util::BIN)
        .arg("--control")
        .arg(dir.path().join("c.sock"))
        .args(["run", "--config"])
        .arg(dir.path().join("gpubox.toml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("cannot listen on 0.0.0.0:{port} for service \"app\"")), "{err}");
    assert!(!dir.path().join("ws/started").exists());
}

/// Issue 14 (3): with SO_REUSEPORT a second gpubox bound the same port, and the kernel split the
/// connections between the two instances, their workspaces and their logins.
#[test]
fn a_second_gpubox_on_the_same_port_stops_instead_of_sharing_it() {
    let port = free_port();
    let first = Gpubox::start(&format!(
        "[auth]\nusername = \"{USER}\"\npassword = \"{PASSWORD}\"\n[services.logs]\napp = \"logs\"\nport = {port}\n"
    ));
    first.wait_event(&format!("logs: listening on 0.0.0.0:{port}"), T);
    let dir = crate::util::config_dir(&format!(
        "[services.logs]\napp = \"logs\"\nport = {port}\n[services.app]\ncommand = [\"sh\", \"-c\", \"touch started; sleep 100\"]\n"
    ));
    let mut second = std::process::Command::new(crate::util::BIN)
        .arg("--control")
        .arg(dir.path().join("c.sock"))
        .args(["run", "--config"])
        .arg(dir.path().join("gpubox.toml"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let until = std::time::Instant::now() + T;
    let status = loop {
        if let Some(status) = second.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > until {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(second.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let _ = second.wait();
            panic!("the second gpubox started on port {port}, sharing it with the first");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    second.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(err.contains(&format!("cannot listen on 0.0.0.0:{port} for service \"logs\"")), "{err}");
    assert!(!dir.path().join("ws/started").exists(), "nothing of the second one started");
    // Every connection still reaches the first: its login, not the second's default admin/admin.
    for _ in 0..20 {
        let r = request(port, "GET", "/api/status", &[("Authorization", &basic(USER, PASSWORD))], b"");
        assert_eq!(r.status, 200);
    }
}

#[test]
fn cookie_flags_and_secure_behind_tls() {
    let b = start("", 0.0).ready();
    let form = format!("username={USER}&password={}&next=/", PASSWORD.replace(' ', "+"));
    let plain = request(
        b.port,
        "POST",
        "/.gpubox/login",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        form.as_bytes(),
    );
    let cookie = plain.header("set-cookie").unwrap().to_string();
    for flag in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=604800"] {
        assert!(cookie.contains(flag), "{cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain HTTP: no Secure flag ({cookie})");
    let tls = request(
        b.port,
        "POST",
        "/.gpubox/login",
        &[("Content-Type", "application/x-www-form-urlencoded"), ("X-Forwarded-Proto", "https")],
        form.as_bytes(),
    );
    assert!(tls.header("set-cookie").unwrap().contains("; Secure"), "behind a TLS proxy the cookie is Secure");
    // Session ids are 256 bits of randomness, URL-safe base64.
    let id = plain.session_cookie().unwrap();
    assert_eq!(id.len(), 43);
    assert_ne!(id, tls.session_cookie().unwrap());
}

#[test]
fn sessions_survive_a_restart_and_a_password_change_revokes_them() {
    let (port, up) = (free_port(), free_port());
    let state = tempfile::tempdir().unwrap();
    let config = |password: &str| {
        format!(
            "state_dir = \"{}\"\n[auth]\nusername = \"{USER}\"\npassword = \"{password}\"\n[services.app]\ncommand = [\"python3\", \"{}\", \"{up}\"]\nport = {port}\nupstream = \"http://127.0.0.1:{up}\"\n",
            state.path().display(),
            fixture("upstream.py")
        )
    };
    let session = |cookie: &str| request(port, "GET", "/.gpubox/session", &[("Cookie", cookie)], b"").status;
    let g = Gpubox::start(&config(PASSWORD));
    g.wait_event("app: listening", T);
    let b = Box { g, port };
    let cookie = format!("gpubox_session={}", b.login());
    assert_eq!(session(&cookie), 200);
    let mut g = b.g;
    assert_eq!(g.terminate().0, Some(0));
    drop(g);

    let g = Gpubox::start(&config(PASSWORD));
    let events = g.wait_event("app: listening", T);
    assert!(events.iter().any(|e| e.contains("browser sessions kept from the last run: 1")), "{events:#?}");
    assert_eq!(session(&cookie), 200, "the session survived the restart");
    let mut g = g;
    assert_eq!(g.terminate().0, Some(0));
    drop(g);

    let g = Gpubox::start(&config("a new password"));
    let events = g.wait_event("app: listening", T);
    assert!(events.iter().any(|e| e.contains("sessions were revoked")), "{events:#?}");
    assert_eq!(session(&cookie), 401, "a changed password revokes every session");
}

#[test]
fn a_password_hash_from_hash_password_logs_in() {
    use std::process::{Command, Stdio};
    let mut child = Command::new(crate::util::BIN)
        .arg("hash-password")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(format!("{PASSWORD}\n").as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let hash = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    let (port, up) = (free_port(), free_port());
    let g = Gpubox::start(&format!(
        "[auth]\nusername = \"{USER}\"\npassword_hash = \"{hash}\"\n[services.app]\ncommand = [\"python3\", \"{}\", \"{up}\"]\nport = {port}\nupstream = \"http://127.0.0.1:{up}\"\n",
        fixture("upstream.py")
    ));
    g.wait_event("app: ready", T);
    let ok = request(port, "GET", "/", &[("Authorization", &basic(USER, PASSWORD))], b"");
    assert_eq!((ok.status, ok.text().as_str()), (200, "hello from upstream"));
    let show = g.cli(&["config", "show", g.path("gpubox.toml").to_str().unwrap()]);
    assert!(!String::from_utf8_lossy(&show.stdout).contains("argon2id"), "config show masks the hash");
}

/// `/.gpubox/` on any port is the instance's home: a tile per service and app with its state and
/// public address, and the machine's gauges; the login page before it names no service or port.
#[test]
fn the_home_page_shows_every_service_and_the_login_page_none() {
    let b = start("", 0.0).ready();
    let auth = basic(USER, PASSWORD);
    let r = request(b.port, "GET", "/.gpubox/", &[("Authorization", &auth), ("Accept", "text/html")], b"");
    assert_eq!(r.status, 200);
    let page = r.text();
    for name in ["app", "logs", "terminal", "files"] {
        assert!(
            page.contains(&format!("<article class=\"tile\" data-service=\"{name}\">")),
            "a tile for {name}: {page}"
        );
    }
    assert!(page.contains("data-state=\"ready\""), "the service's state");
    assert!(page.contains(&format!("data-copy=\"http://127.0.0.1:{}\"", b.port)), "this port's address, whole");
    assert!(page.contains("<meter") && page.contains("id=\"g-memory\"") && page.contains("id=\"g-disk\""), "gauges");
    assert!(page.contains("/.gpubox/assets/home.js"));
    assert!(!page.contains("style=\""), "no inline style: the page's policy allows none");

    let login = request(b.port, "GET", "/.gpubox/login", &[("Accept", "text/html")], b"").text();
    assert!(login.contains("id=\"login\""), "{login}");
    for name in ["terminal", "files", "title=\"port "] {
        assert!(!login.contains(name), "the login page names {name:?}: {login}");
    }
}
