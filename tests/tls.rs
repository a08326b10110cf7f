//! HTTPS on every port (`[tls]`) through the real binary: a self-signed certificate made on
//! first start and kept, a real TLS client (Python's ssl, trusting that certificate only) for the
//! login, the proxy, a stream and a WebSocket; plain HTTP on the same port redirected; a
//! configured certificate that cannot be read stops the start.

use std::process::Command;
use std::time::Duration;

use crate::gateway::{PASSWORD, USER};
use crate::http::request;
use crate::supervisor::free_port;
use crate::util::{fixture, Gpubox};

const T: Duration = Duration::from_secs(30);

fn config(port: u16, up: u16, tls: &str) -> String {
    format!(
        r#"
[auth]
username = "{USER}"
password = "{PASSWORD}"

[tls]
{tls}

[services.app]
command = ["sh", "-c", "touch started; exec python3 {script} {up}"]
port = {port}
bind = "127.0.0.1"
upstream = "http://127.0.0.1:{up}"
ready = "tcp://127.0.0.1:{up}"
"#,
        script = fixture("upstream.py"),
    )
}

fn client(port: u16, cafile: &std::path::Path) -> serde_json::Value {
    let out = Command::new("python3")
        .arg(fixture("tls_client.py"))
        .arg(port.to_string())
        .arg(cafile)
        .args([USER, PASSWORD])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn every_port_speaks_https_with_a_kept_certificate_and_plain_http_is_redirected() {
    let (port, up) = (free_port(), free_port());
    let mut g = Gpubox::start(&config(port, up, "enabled = \"${GPUBOX_TEST_HTTPS:-true}\""));
    g.wait_event("all 1 services ready", T);
    let cert = g.path("ws/.gpubox/tls/self-signed.crt");
    let events = g.log_texts("gpubox").join("\n");
    assert!(events.contains("tls: HTTPS on every port with a self-signed certificate, made now"), "{events}");

    let seen = client(port, &cert);
    assert_eq!(seen["health"], 200);
    assert_eq!(seen["alpn"], "http/1.1");
    let fingerprint = seen["fingerprint"].as_str().unwrap().to_string();
    assert!(events.contains(&fingerprint), "the log gives the fingerprint the client saw: {events}");
    assert_eq!(seen["login"], 303);
    let cookie = seen["set_cookie"][0].as_str().unwrap();
    assert!(cookie.contains("; Secure"), "cookies are Secure over TLS: {cookie}");
    assert_eq!(seen["upstream_headers"]["x-forwarded-proto"], "https", "what the client claimed is not passed on");
    assert_eq!(seen["sse_status"], 200);
    assert_eq!(seen["sse_first"], "data: one");
    assert_eq!(seen["ws_status"], 101);
    assert_eq!(seen["ws_echo"], "ping over tls");

    // Plain HTTP on the same port: sent to https://, method kept, not cached.
    let host = format!("localhost:{port}");
    let r = request(port, "POST", "/some/path?q=1", &[("Host", &host), ("Content-Length", "0")], b"");
    assert_eq!(r.status, 307);
    assert_eq!(r.header("location"), Some(format!("https://localhost:{port}/some/path?q=1").as_str()));
    // Only to a name this instance answers to, and nothing strange in the address.
    assert_eq!(request(port, "GET", "/", &[("Host", "evil.example")], b"").status, 421);
    assert_eq!(request(port, "GET", "/", &[("Host", "a\\b")], b"").status, 400);

    // The certificate is kept: the same fingerprint after a restart.
    g.terminate();
    let g2 = Gpubox::start_in(std::mem::replace(&mut g.dir, tempfile::tempdir().unwrap()), &[]);
    g2.wait_event("all 1 services ready", T);
    assert!(g2.log_texts("gpubox").join("\n").contains("the self-signed certificate made before"));
    assert_eq!(client(port, &cert)["fingerprint"], fingerprint.as_str());
}

#[test]
fn a_configured_certificate_that_cannot_be_read_stops_the_start() {
    let (port, up) = (free_port(), free_port());
    let dir =
        crate::util::config_dir(&config(port, up, "enabled = true\ncert = \"missing.crt\"\nkey = \"missing.key\""));
    let out = Command::new(crate::util::BIN)
        .arg("--control")
        .arg(dir.path().join("control.sock"))
        .args(["run", "--config"])
        .arg(dir.path().join("gpubox.toml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("missing.crt"), "{err}");
    assert!(!dir.path().join("ws/started").exists(), "no service started");
}
