//! The client's address behind a proxy (`[http] trusted_proxies`): believed from a trusted
//! proxy's `CF-Connecting-IP` or `X-Forwarded-For` (so the login throttle counts each client
//! apart, as behind a Cloudflare tunnel where every request comes from loopback), and not
//! believed from anyone else.

use std::time::Duration;

use crate::gateway::{PASSWORD, USER};
use crate::http::request;
use crate::supervisor::free_port;
use crate::util::Gpubox;

const T: Duration = Duration::from_secs(30);

fn start(trusted: &str) -> (Gpubox, u16) {
    let port = free_port();
    let g = Gpubox::start(&format!(
        "[auth]\nusername = \"{USER}\"\npassword = \"{PASSWORD}\"\nmax_failures = 2\n[http]\ntrusted_proxies = [{trusted}]\n[services.logs]\napp = \"logs\"\nport = {port}\nbind = \"127.0.0.1\"\n"
    ));
    g.wait_event(&format!("logs: listening on 127.0.0.1:{port}"), T);
    (g, port)
}

/// A wrong password, said to come from `client`; the answer's status.
fn bad_login(port: u16, client: &str) -> u16 {
    let origin = format!("http://127.0.0.1:{port}");
    let r = request(
        port,
        "POST",
        "/.gpubox/login",
        &[("Content-Type", "application/x-www-form-urlencoded"), ("Origin", &origin), ("X-Forwarded-For", client)],
        format!("username={USER}&password=wrong&next=/").as_bytes(),
    );
    r.status
}

#[test]
fn a_trusted_proxy_names_the_client_and_others_cannot() {
    let (_g, port) = start("\"127.0.0.1\"");
    assert_ne!(bad_login(port, "192.0.2.1"), 429);
    assert_ne!(bad_login(port, "192.0.2.1"), 429);
    assert_eq!(bad_login(port, "192.0.2.1"), 429, "that client is throttled");
    assert_ne!(bad_login(port, "192.0.2.2"), 429, "another client behind the same proxy is not");

    // Nothing trusted: the headers are not believed, and the throttle counts the peer.
    let (_g2, port) = start("");
    assert_ne!(bad_login(port, "192.0.2.1"), 429);
    assert_ne!(bad_login(port, "192.0.2.2"), 429);
    assert_eq!(bad_login(port, "192.0.2.3"), 429, "a made-up address does not escape the throttle");
}
