//! DNS rebinding: a page on a name its owner points at this machine must get nothing from gpubox
//! (no login, no terminal session, no WebSocket), while addresses, localhost, the names the
//! configuration allows and the health check keep working. Two Host headers get 400.

use std::time::Duration;

use crate::gateway::basic;
use crate::http::request;
use crate::supervisor::free_port;
use crate::util::Gpubox;

const T: Duration = Duration::from_secs(30);

#[test]
fn a_rebound_name_gets_nothing_and_known_names_work() {
    let port = free_port();
    let g = Gpubox::start(&format!(
        r#"
[auth]
username = "admin"
password = "admin"

[http]
allowed_hosts = ["gpu.example.org", "*.mylab.net"]

[services.terminal]
app = "terminal"
port = {port}
# A plain login shell: the host's bash profile may run slow things (pyenv rehash) that a
# shutdown would cut.
shell = "/bin/sh"
"#
    ));
    g.wait_event(&format!("terminal: listening on 0.0.0.0:{port}"), T);
    let auth = basic("admin", "admin");
    let evil = format!("rebind.attacker.example:{port}");
    let evil_origin = format!("http://{evil}");
    let form = b"username=admin&password=admin&next=/";

    // The attacker's page: its own name and origin, the default password.
    let as_attacker = |method: &str, path: &str, extra: &[(&str, &str)], body: &[u8]| {
        let mut h = vec![("Host", evil.as_str()), ("Origin", evil_origin.as_str())];
        h.extend_from_slice(extra);
        request(port, method, path, &h, body)
    };
    let r = as_attacker("POST", "/.gpubox/login", &[("Content-Type", "application/x-www-form-urlencoded")], form);
    assert_eq!(r.status, 421, "{}", r.text());
    assert!(r.session_cookie().is_none());
    assert!(r.text().contains("allowed_hosts"), "the answer says how to allow a name: {}", r.text());
    let r =
        as_attacker("POST", "/api/sessions", &[("Authorization", &auth), ("Content-Type", "application/json")], b"{}");
    assert_eq!(r.status, 421, "{}", r.text());
    let r = as_attacker(
        "GET",
        "/api/sessions/1/ws",
        &[
            ("Authorization", &auth),
            ("Connection", "Upgrade"),
            ("Upgrade", "websocket"),
            ("Sec-WebSocket-Version", "13"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ],
        b"",
    );
    assert_eq!(r.status, 421, "{}", r.text());
    let page = as_attacker("GET", "/", &[("Accept", "text/html")], b"");
    assert_eq!(page.status, 421);
    assert!(page.text().contains("Unknown name"), "{}", page.text());
    // The health check answers under any name.
    assert_eq!(as_attacker("GET", "/.gpubox/health", &[], b"").status, 200);

    // Known names: an address, localhost, allowed ones.
    for host in
        [format!("127.0.0.1:{port}"), format!("localhost:{port}"), "gpu.example.org".into(), "a.mylab.net:443".into()]
    {
        let origin = format!("http://{host}");
        let r = request(
            port,
            "POST",
            "/.gpubox/login",
            &[("Host", &host), ("Origin", &origin), ("Content-Type", "application/x-www-form-urlencoded")],
            form,
        );
        assert_eq!(r.status, 303, "{host}: {}", r.text());
    }

    // Two Host headers: 400, whichever comes first.
    for (a, b) in [(format!("127.0.0.1:{port}"), evil.clone()), (evil.clone(), format!("127.0.0.1:{port}"))] {
        let r = request(port, "GET", "/api/sessions", &[("Host", &a), ("Host", &b), ("Authorization", &auth)], b"");
        assert_eq!(r.status, 400, "{a} + {b}: {}", r.text());
    }
}

#[test]
fn a_bad_allowed_host_is_a_config_error() {
    let (code, err, _path, _dir) = crate::util::check("[http]\nallowed_hosts = [\"gpu example\", \"*.\"]\n");
    assert_eq!(code, 2, "{err}");
    assert_eq!(err.matches("is not a host name").count(), 2, "{err}");
}
