//! The reverse proxy through the real binary, in front of a real upstream process: streaming
//! (SSE), WebSocket tunnels, credentials kept home, the waiting page, max_body, and requests in
//! flight at shutdown.

use std::io::{BufReader, Read, Write};
use std::time::Duration;

use crate::gateway::{basic, start, PASSWORD, USER};
use crate::http::{open, read_response, request};
use crate::supervisor::free_port;
use crate::util::{fixture, Gpubox};

const T: Duration = Duration::from_secs(30);

#[test]
fn the_upstream_cannot_set_gpubox_session_cookie() {
    let b = start("", 0.0).ready();
    let cookie = format!("gpubox_session={}", b.login());
    let r = request(b.port, "GET", "/set-cookie", &[("Cookie", &cookie)], b"");
    let set: Vec<&str> =
        r.headers.iter().filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie")).map(|(_, v)| v.as_str()).collect();
    assert_eq!(set, ["app_cookie=1; Path=/"]);
}

#[test]
fn the_proxy_streams_events_tunnels_websockets_and_keeps_credentials_home() {
    let b = start("", 0.0).ready();
    let cookie = format!("gpubox_session={}; app_cookie=kept", b.login());

    // Headers: Host as sent, X-Forwarded-*, no gpubox credentials upstream.
    let host = format!("127.0.0.1:{}", b.port);
    let r = request(b.port, "GET", "/echo-headers", &[("Cookie", &cookie), ("Host", &host)], b"");
    let h: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(h["host"], host.as_str());
    assert_eq!(h["x-forwarded-host"], host.as_str());
    assert_eq!(h["x-forwarded-proto"], "http");
    assert_eq!(h["x-forwarded-for"], "127.0.0.1");
    assert_eq!(h["cookie"], "app_cookie=kept");
    let r = request(b.port, "GET", "/echo-headers", &[("Authorization", &basic(USER, PASSWORD))], b"");
    let h: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert!(h.get("authorization").is_none(), "{h}");

    // SSE: the first event arrives while the upstream still holds the second.
    let sse = open(b.port, "GET", "/sse", &[("Cookie", &cookie), ("Accept", "text/event-stream")], b"");
    let mut reader = BufReader::new(sse.try_clone().unwrap());
    let head = read_response(&mut reader, false);
    assert_eq!(head.status, 200);
    let mut seen = String::new();
    while !seen.contains("data: one") {
        let mut buf = [0u8; 256];
        let n = reader.read(&mut buf).unwrap();
        assert!(n > 0, "stream ended before the first event");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert!(!seen.contains("two"));
    assert_eq!(request(b.port, "GET", "/release", &[("Cookie", &cookie)], b"").status, 200);
    while !seen.contains("data: two") {
        let mut buf = [0u8; 256];
        let n = reader.read(&mut buf).unwrap();
        assert!(n > 0, "stream ended before the second event");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    drop(sse.shutdown(std::net::Shutdown::Both));

    // WebSocket: 101, then bytes both ways.
    let ws = [
        ("Cookie", cookie.as_str()),
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Version", "13"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ("Origin", &b.origin()),
    ];
    let mut sock = open(b.port, "GET", "/ws", &ws, b"");
    let mut reader = BufReader::new(sock.try_clone().unwrap());
    let head = read_response(&mut reader, false);
    assert_eq!(head.status, 101);
    sock.write_all(b"ping through the tunnel").unwrap();
    let mut echo = [0u8; 23];
    reader.read_exact(&mut echo).unwrap();
    assert_eq!(&echo, b"ping through the tunnel");

    // A 100 MB upload streams through without gpubox holding it.
    let before = crate::util::peak_kib(b.g.pid());
    let body = vec![b'x'; 100 << 20];
    let r = request(b.port, "POST", "/upload", &[("Cookie", &cookie), ("Origin", &b.origin())], &body);
    assert_eq!(r.text(), (100u64 << 20).to_string());
    let after = crate::util::peak_kib(b.g.pid());
    assert!(
        after - before < 16 * 1024,
        "gpubox's peak memory grew from {before} to {after} KiB during a 100 MB upload"
    );
}

#[test]
fn a_starting_service_gets_a_waiting_page_then_the_app() {
    let b = start("", 3.0);
    let cookie = format!("gpubox_session={}", b.login());
    let page = request(b.port, "GET", "/", &[("Cookie", &cookie), ("Accept", "text/html")], b"");
    assert_eq!(page.status, 503);
    let text = page.text();
    assert!(text.contains("app is starting"), "{text}");
    assert!(page.header("content-security-policy").is_some_and(|c| c.contains("frame-ancestors")));
    assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
    assert!(text.contains("<noscript><meta http-equiv=\"refresh\""), "without JavaScript the page reloads itself");
    assert!(text.contains("src=\"/.gpubox/assets/waiting.js\""), "with it, the page polls");
    let js = request(b.port, "GET", "/.gpubox/assets/waiting.js", &[], b"");
    assert!(js.text().contains("/.gpubox/api/services/"), "the embedded script is the built one");
    let view = request(b.port, "GET", "/.gpubox/api/services/app", &[("Cookie", &cookie)], b"");
    let view: serde_json::Value = serde_json::from_slice(&view.body).unwrap();
    assert_eq!((view["state"].as_str(), view["ready"].as_bool()), (Some("starting"), Some(false)), "{view}");
    let api = request(b.port, "GET", "/", &[("Cookie", &cookie)], b"");
    assert_eq!(api.status, 503);
    assert!(api.header("retry-after").is_some());
    assert!(api.text().contains("\"code\":\"starting\""));
    b.g.wait_event("app: ready", T);
    let r = request(b.port, "GET", "/", &[("Cookie", &cookie), ("Accept", "text/html")], b"");
    assert_eq!((r.status, r.text().as_str()), (200, "hello from upstream"));
    // Big assets go gzipped to clients that take it, and decompress to the same bytes.
    let plain = request(b.port, "GET", "/.gpubox/assets/files-viewer.js", &[], b"");
    assert_eq!((plain.status, plain.header("content-encoding")), (200, None));
    let gz = request(b.port, "GET", "/.gpubox/assets/files-viewer.js", &[("Accept-Encoding", "br, gzip;q=0.8")], b"");
    assert_eq!(gz.header("content-encoding"), Some("gzip"));
    assert!(gz.body.len() * 2 < plain.body.len(), "{} of {} bytes", gz.body.len(), plain.body.len());
    let mut unzipped = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz.body[..]), &mut unzipped).unwrap();
    assert!(unzipped == plain.body, "gzip round trip");
    let refused = request(b.port, "GET", "/.gpubox/assets/files-viewer.js", &[("Accept-Encoding", "gzip;q=0")], b"");
    assert_eq!((refused.header("content-encoding"), refused.body.len()), (None, plain.body.len()));
}

#[test]
fn max_body_is_enforced_and_shutdown_lets_requests_finish() {
    let (port, up) = (free_port(), free_port());
    let mut g = Gpubox::start(&format!(
        "[auth]\nusername = \"{USER}\"\npassword = \"{PASSWORD}\"\n[services.app]\ncommand = [\"python3\", \"{}\", \"{up}\"]\nport = {port}\nupstream = \"http://127.0.0.1:{up}\"\nmax_body = \"1KB\"\n",
        fixture("upstream.py")
    ));
    g.wait_event("app: ready", T);
    let auth = basic(USER, PASSWORD);
    let small = request(port, "POST", "/echo", &[("Authorization", &auth)], &[b'a'; 1000]);
    assert_eq!(small.status, 200);
    let big = request(port, "POST", "/echo", &[("Authorization", &auth)], &[b'a'; 1001]);
    assert_eq!(big.status, 413);
    assert!(big.text().contains("max_body"));
    // The same without a length (chunked): 413 too, not 502.
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(T)).unwrap();
    let head = format!("POST /echo HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: {auth}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n");
    s.write_all(head.as_bytes()).unwrap();
    for _ in 0..4 {
        let _ = s.write_all(format!("{:x}\r\n{}\r\n", 500, "b".repeat(500)).as_bytes());
    }
    let _ = s.write_all(b"0\r\n\r\n");
    let chunked = read_response(&mut BufReader::new(&mut s), true);
    assert_eq!(chunked.status, 413, "{}", chunked.text());

    // A request in flight when SIGTERM comes still gets its whole answer.
    let slow = std::thread::spawn(move || request(port, "GET", "/slow", &[("Authorization", &auth)], b""));
    g.wait_stdout("[app] slow request started", T);
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(g.pid()), nix::sys::signal::Signal::SIGTERM).unwrap();
    let r = slow.join().unwrap();
    assert_eq!((r.status, r.text().as_str()), (200, "slow but complete"));
    assert_eq!(g.child.wait().unwrap().code(), Some(0));
}

#[test]
fn a_failed_service_gets_a_page_that_says_so() {
    let port = free_port();
    let g = Gpubox::start(&format!(
        "[auth]\nusername = \"{USER}\"\npassword = \"{PASSWORD}\"\n[services.app]\ncommand = [\"sh\", \"-c\", \"echo cannot load the model >&2; exit 3\"]\nrestart = \"never\"\nport = {port}\nupstream = \"http://127.0.0.1:1\"\n"
    ));
    g.wait_event("app: exit code 3", T);
    let auth = basic(USER, PASSWORD);
    let page = request(port, "GET", "/", &[("Authorization", &auth), ("Accept", "text/html")], b"");
    assert_eq!(page.status, 503);
    let text = page.text();
    assert!(text.contains("app has stopped and will not restart by itself"), "{text}");
    assert!(text.contains("cannot load the model"), "the last lines are shown: {text}");
    assert!(text.contains("exit code 3"));
    // The page still polls: a restart from a terminal shows the app without a reload.
    assert!(text.contains("waiting.js") && text.contains("content=\"15\""), "{text}");
    let api = request(port, "GET", "/", &[("Authorization", &auth)], b"");
    assert!(api.text().contains("\"exited\""), "{}", api.text());
}
