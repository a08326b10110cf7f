//! Connections that never finish a request: silent ones, ones dribbling their headers, kept-alive
//! ones left idle, and floods of them under a low open-file limit. Each is closed after
//! `[http] idle_timeout`, connections over the limit are answered 503 at once, and the ports go
//! on answering.

use std::io::{Read, Write};

use base64::Engine;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::http::{request, Response};
use crate::supervisor::free_port;
use crate::util::Gpubox;

const T: Duration = Duration::from_secs(30);

fn start(prefix: &[&str], http: &str) -> (Gpubox, u16, u16) {
    let (files, logs) = (free_port(), free_port());
    let g = Gpubox::start_with(
        prefix,
        &format!(
            r#"
[auth]
username = "u"
password = "p"

[http]
{http}

[services.files]
app = "files"
port = {files}

[services.logs]
app = "logs"
port = {logs}
"#
        ),
    );
    g.wait_event(&format!("logs: listening on 0.0.0.0:{logs}"), T);
    (g, files, logs)
}

fn health(port: u16) -> Response {
    request(port, "GET", "/.gpubox/health", &[], b"")
}

/// Whether the server closed `s` within `within` (EOF or reset; a 408 answer also counts).
fn closed_by_server(s: &mut TcpStream, within: Duration) -> bool {
    s.set_read_timeout(Some(within)).unwrap();
    let mut buf = [0u8; 512];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue, // an error answer before closing
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut => {
                return false
            }
            Err(_) => return true,
        }
    }
}

#[test]
fn idle_and_dribbling_connections_are_closed_and_a_flood_is_refused_not_served_forever() {
    let (g, files, logs) = start(&[], "idle_timeout = \"2s\"\nmax_connections = 20");

    // A silent connection, one dribbling a header line every 300 ms, one kept alive after a request.
    let mut silent = TcpStream::connect(("127.0.0.1", files)).unwrap();
    let mut dribbling = TcpStream::connect(("127.0.0.1", files)).unwrap();
    dribbling.write_all(b"GET /.gpubox/health HTTP/1.1\r\nHost: 127.0.0.1\r\n").unwrap();
    let dribbler = std::thread::spawn(move || {
        let started = Instant::now();
        let mut cut = false;
        while started.elapsed() < Duration::from_secs(8) {
            std::thread::sleep(Duration::from_millis(300));
            if dribbling.write_all(b"X-Slow: 1\r\n").is_err() {
                cut = true;
                break;
            }
        }
        // Writes into a closed connection may still succeed once; reading tells for sure.
        cut || closed_by_server(&mut dribbling, Duration::from_millis(500))
    });
    let mut kept = TcpStream::connect(("127.0.0.1", files)).unwrap();
    kept.write_all(b"GET /.gpubox/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    let mut first = [0u8; 64];
    kept.set_read_timeout(Some(T)).unwrap();
    assert!(kept.read(&mut first).unwrap() > 0);

    let started = Instant::now();
    assert!(closed_by_server(&mut silent, Duration::from_secs(6)), "the silent connection stayed open");
    assert!(closed_by_server(&mut kept, Duration::from_secs(6)), "the idle kept-alive connection stayed open");
    assert!(dribbler.join().unwrap(), "the dribbling connection stayed open");
    assert!(started.elapsed() < Duration::from_secs(9), "{:?}", started.elapsed());

    // A flood of silent connections over both ports: the ones over the limit get 503 at once.
    let flood: Vec<TcpStream> =
        (0..60).map(|i| TcpStream::connect(("127.0.0.1", if i % 2 == 0 { files } else { logs })).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(300));
    let refused = health(files);
    assert_eq!(refused.status, 503, "{}", refused.text());
    assert!(refused.text().contains("too many open connections"), "{}", refused.text());
    // Once the idle ones are closed, both ports answer again.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (a, b) = (health(files).status, health(logs).status);
        if a == 200 && b == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "the ports still refuse: {a} {b}");
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(flood);
    drop(g);
}

#[test]
fn five_hundred_idle_connections_under_a_low_open_file_limit_do_not_stop_the_ports() {
    // 256 descriptors for gpubox: without a limit of its own it would run out and stop accepting.
    let (g, files, logs) = start(&["prlimit", "--nofile=256:256"], "idle_timeout = \"3s\"");
    let mut flood = Vec::new();
    for i in 0..500 {
        if let Ok(s) = TcpStream::connect(("127.0.0.1", if i % 2 == 0 { files } else { logs })) {
            flood.push(s);
        }
    }
    // gpubox itself still works (its control socket, its log files) and, once the idle
    // connections are closed, both ports answer.
    let status = g.cli(&["status"]);
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (a, b) = (health(files).status, health(logs).status);
        if a == 200 && b == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "the ports do not answer: {a} {b}");
        std::thread::sleep(Duration::from_millis(250));
    }
    // Every connection of the flood was closed by the server, none is left waiting.
    let open =
        flood.iter_mut().map(|s| closed_by_server(s, Duration::from_millis(50))).filter(|closed| !closed).count();
    assert_eq!(open, 0, "{open} of {} flood connections are still open", flood.len());
}

/// A WebSocket keeps its connection's place in the cap for as long as it is open (hyper hands the
/// socket over at the upgrade; the permit must go with it).
#[test]
fn websockets_count_against_the_connection_cap() {
    let port = free_port();
    let g = Gpubox::start(&format!(
        "[auth]\nusername = \"u\"\npassword = \"p\"\n[http]\nmax_connections = 16\n[services.terminal]\napp = \"terminal\"\nport = {port}\nshell = \"/bin/sh\"\n"
    ));
    g.wait_event(&format!("terminal: listening on 0.0.0.0:{port}"), T);
    let auth = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("u:p"));
    let origin = format!("http://127.0.0.1:{port}");
    let r = request(
        port,
        "POST",
        "/api/sessions",
        &[("Authorization", &auth), ("Origin", &origin), ("Content-Type", "application/json")],
        b"{}",
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let id = serde_json::from_slice::<serde_json::Value>(&r.body).unwrap()["id"].as_str().unwrap().to_string();
    let mut tabs = Vec::new();
    for _ in 0..16 {
        let uri: tungstenite::http::Uri = format!("ws://127.0.0.1:{port}/api/sessions/{id}/ws").parse().unwrap();
        let req = tungstenite::ClientRequestBuilder::new(uri)
            .with_header("Authorization", auth.clone())
            .with_header("Origin", origin.clone());
        tabs.push(tungstenite::connect(req).expect("a tab attaches").0);
    }
    let r = health(port);
    assert_eq!(r.status, 503, "16 open WebSockets fill a cap of 16: {}", r.text());
    drop(tabs);
    let deadline = Instant::now() + Duration::from_secs(10);
    while health(port).status != 200 {
        assert!(Instant::now() < deadline, "the cap was not given back when the tabs closed");
        std::thread::sleep(Duration::from_millis(100));
    }
}
