//! The class guarantees, under every kind of stuck client at once: each port keeps answering
//! while one of its requests is stuck (an archive nobody reads, a paste into a shell that does not
//! read, an event stream, a half-sent upload, a slow upstream, a dribbling client), and shutdown
//! completes within the drain, the longest stop timeout and a second.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::Value;
use tungstenite::Message;

use crate::http::{open, request};
use crate::supervisor::free_port;
use crate::util::{fixture, Gpubox};

const T: Duration = Duration::from_secs(30);
/// gpubox's drain for requests in flight at shutdown (`gateway::DRAIN`).
const DRAIN: Duration = Duration::from_secs(5);
const STOP_TIMEOUT: Duration = Duration::from_secs(2);

#[test]
fn ports_answer_while_clients_are_stuck_and_shutdown_is_bounded() {
    let (files, term, logs, app, up) = (free_port(), free_port(), free_port(), free_port(), free_port());
    let mut g = Gpubox::start(&format!(
        r#"
[auth]
username = "u"
password = "p"

[services.files]
app = "files"
port = {files}

[services.terminal]
app = "terminal"
port = {term}
# A plain login shell: the host's bash profile may run slow things (pyenv rehash) that a
# shutdown would cut.
shell = "/bin/sh"

[services.logs]
app = "logs"
port = {logs}

[services.app]
command = ["python3", "{script}", "{up}"]
port = {app}
upstream = "http://127.0.0.1:{up}"

# Ignores SIGTERM: it is killed when its stop_timeout ends.
[services.stubborn]
command = ["sh", "-c", "trap '' TERM; while true; do sleep 0.1; done"]
stop_timeout = "2s"
"#,
        script = fixture("upstream.py")
    ));
    g.wait_event("app: ready", T);
    let auth = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("u:p"));
    let hdr = |port: u16| {
        vec![("Authorization".to_string(), auth.clone()), ("Origin".to_string(), format!("http://127.0.0.1:{port}"))]
    };
    let req = |port: u16, method: &str, path: &str, extra: &[(&str, &str)], body: &[u8]| {
        let h = hdr(port);
        let mut all: Vec<(&str, &str)> = h.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        all.extend_from_slice(extra);
        request(port, method, path, &all, body)
    };
    let ws_dir = g.path("ws");

    // 1. An archive of an 8 GiB file that nobody reads after the first bytes.
    std::fs::File::create(ws_dir.join("huge.bin")).unwrap().set_len(8 << 30).unwrap();
    let h = hdr(files);
    let mut archive = open(files, "GET", "/api/archive?paths=huge.bin&format=tar", &[(&h[0].0, &h[0].1)], b"");
    let mut first = [0u8; 4096];
    assert!(archive.read(&mut first).unwrap() > 0);

    // 2. A paste of 1 MiB into a shell that is busy and reads nothing.
    let (status, session) = {
        let r =
            req(term, "POST", "/api/sessions", &[("Content-Type", "application/json")], b"{\"cols\":80,\"rows\":24}");
        (r.status, serde_json::from_slice::<Value>(&r.body).unwrap())
    };
    assert_eq!(status, 201, "{session}");
    let id = session["id"].as_str().unwrap();
    let uri: tungstenite::http::Uri = format!("ws://127.0.0.1:{term}/api/sessions/{id}/ws").parse().unwrap();
    let origin = format!("http://127.0.0.1:{term}");
    let wsreq = tungstenite::ClientRequestBuilder::new(uri)
        .with_header("Authorization", auth.clone())
        .with_header("Origin", origin);
    let (mut tab, _) = tungstenite::connect(wsreq).unwrap();
    tab.send(Message::Binary(b"sleep 600\r".to_vec().into())).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    tab.send(Message::Binary(vec![b'x'; 1 << 20].into())).unwrap();

    // 3. An event stream of the logs, 4. a half-sent upload, 5. a slow upstream request,
    // 6. a client dribbling its headers.
    let h = hdr(logs);
    let _stream = open(logs, "GET", "/api/stream?after=0", &[(&h[0].0, &h[0].1)], b"");
    let h = hdr(files);
    let mut upload = open(
        files,
        "PUT",
        "/api/file?path=half.bin",
        &[(&h[0].0, &h[0].1), (&h[1].0, &h[1].1), ("Content-Length", "10000000")],
        b"",
    );
    upload.write_all(&vec![1u8; 1_000_000]).unwrap();
    let h = hdr(app);
    let _slow = open(app, "GET", "/slow", &[(&h[0].0, &h[0].1)], b"");
    let mut dribble = TcpStream::connect(("127.0.0.1", files)).unwrap();
    dribble.write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n").unwrap();

    // Every port answers at once meanwhile.
    for port in [files, term, logs, app] {
        let t = Instant::now();
        let r = req(port, "GET", "/.gpubox/session", &[], b"");
        assert_eq!(r.status, 200, "port {port}: {}", r.text());
        assert!(t.elapsed() < Duration::from_secs(2), "port {port} took {:?}", t.elapsed());
    }
    let r = req(files, "GET", "/api/list?path=", &[], b"");
    assert_eq!(r.status, 200);

    // Shutdown: within the drain, the longest stop timeout and a second (and half a second for
    // what services left behind).
    let (code, took) = g.terminate();
    assert_eq!(code, Some(0));
    eprintln!("shutdown under six stuck clients took {took:?}");
    let bound = DRAIN + STOP_TIMEOUT + Duration::from_millis(1500);
    assert!(took < bound, "shutdown took {took:?} (bound {bound:?})");
    drop((archive, tab, upload, dribble));
    assert!(!ws_dir.join("half.bin").exists(), "the cut upload left nothing under its name");
}
