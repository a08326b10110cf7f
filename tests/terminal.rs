//! The terminal app (port 7020) through the real binary: a real bash in a real PTY, driven over
//! real WebSockets. Echo, resize, reattaching with the screen and scrollback restored, the shell's
//! exit, flow control under a flood, two tabs on one session, the idle limit, and the login and
//! Origin rules on its WebSocket.

use std::net::TcpStream;
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{json, Value};
use tungstenite::client::ClientRequestBuilder;
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

use crate::http::request;
use crate::supervisor::free_port;
use crate::util::Gpubox;

const T: Duration = Duration::from_secs(20);

struct Term {
    g: Gpubox,
    port: u16,
    auth: String,
}

fn start(extra: &str) -> Term {
    start_env(&[], extra)
}

/// With variables (`K=V`) for gpubox.
fn start_env(env: &[&str], extra: &str) -> Term {
    let port = free_port();
    // The shells read no ~/.bashrc of the machine running the tests: one that runs `pyenv init`
    // (this machine's) hangs every later shell once a shell is hung up during its rehash, which
    // leaves pyenv's lock file behind.
    let mut prefix = vec!["env", "HOME=/nonexistent"];
    prefix.extend_from_slice(env);
    let g = Gpubox::start_with(
        &prefix,
        &format!(
            r#"
[auth]
username = "u"
password = "p"

[services.terminal]
app = "terminal"
port = {port}
shell = "/bin/bash"
{extra}
"#
        ),
    );
    g.wait_event(&format!("terminal: listening on 0.0.0.0:{port}"), T);
    let auth = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("u:p"));
    Term { g, port, auth }
}

type Ws = WebSocket<MaybeTlsStream<TcpStream>>;

impl Term {
    fn origin(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn api(&self, method: &str, path: &str, body: Value) -> (u16, Value) {
        let body = body.to_string();
        let r = request(
            self.port,
            method,
            path,
            &[("Authorization", &self.auth), ("Origin", &self.origin()), ("Content-Type", "application/json")],
            body.as_bytes(),
        );
        (r.status, serde_json::from_slice(&r.body).unwrap_or(Value::Null))
    }

    fn create(&self, cols: u16, rows: u16) -> String {
        let (status, v) = self.api("POST", "/api/sessions", json!({ "cols": cols, "rows": rows }));
        assert_eq!(status, 201, "{v}");
        v["id"].as_str().unwrap().to_string()
    }

    fn sessions(&self) -> Vec<Value> {
        self.api("GET", "/api/sessions", Value::Null).1["sessions"].as_array().unwrap().clone()
    }

    fn connect_with(&self, id: &str, headers: &[(&str, &str)]) -> Result<Ws, tungstenite::Error> {
        let uri: tungstenite::http::Uri = format!("ws://127.0.0.1:{}/api/sessions/{id}/ws", self.port).parse().unwrap();
        let mut req = ClientRequestBuilder::new(uri);
        for (k, v) in headers {
            req = req.with_header(*k, *v);
        }
        let (mut ws, _) = tungstenite::connect(req)?;
        if let MaybeTlsStream::Plain(s) = ws.get_mut() {
            s.set_read_timeout(Some(T)).unwrap();
        }
        Ok(ws)
    }

    /// Attaches a tab: the hello message and the snapshot.
    fn attach(&self, id: &str) -> (Ws, Value, Vec<u8>) {
        let mut ws = self.connect_with(id, &[("Authorization", &self.auth), ("Origin", &self.origin())]).unwrap();
        let hello = match ws.read().unwrap() {
            Message::Text(t) => serde_json::from_str(&t).unwrap(),
            other => panic!("expected hello, got {other:?}"),
        };
        let snapshot = match ws.read().unwrap() {
            Message::Binary(b) => b.to_vec(),
            other => panic!("expected the snapshot, got {other:?}"),
        };
        (ws, hello, snapshot)
    }
}

fn send_text(ws: &mut Ws, keys: &str) {
    ws.send(Message::Binary(keys.as_bytes().to_vec().into())).unwrap();
}

fn control(ws: &mut Ws, v: Value) {
    ws.send(Message::Text(v.to_string().into())).unwrap();
}

/// Reads output until `needle` shows up; returns everything read. Control messages are kept too.
fn read_until(ws: &mut Ws, needle: &str) -> String {
    read_until_within(ws, needle, T)
}

fn read_until_within(ws: &mut Ws, needle: &str, within: Duration) -> String {
    let deadline = Instant::now() + within;
    let mut seen = String::new();
    // Only the end is searched and kept beyond 1 MiB: a flood must not make this quadratic.
    let mut searched_from = 0;
    loop {
        let from = searched_from.min(seen.len());
        let start = (0..=from.saturating_sub(needle.len())).rev().find(|i| seen.is_char_boundary(*i)).unwrap_or(0);
        if seen[start..].contains(needle) {
            return seen;
        }
        searched_from = seen.len();
        if seen.len() > 1 << 20 {
            let cut = (seen.len() - 4096..seen.len()).find(|i| seen.is_char_boundary(*i)).unwrap_or(0);
            seen.drain(..cut);
            searched_from = 0;
        }
        let tail: String = seen.chars().rev().take(300).collect::<Vec<_>>().into_iter().rev().collect();
        assert!(Instant::now() < deadline, "no {needle:?}; the last output was: {tail:?}");
        match ws.read().unwrap_or_else(|e| panic!("{e}; the last output was: {tail:?}")) {
            Message::Binary(b) => seen.push_str(&String::from_utf8_lossy(&b)),
            Message::Text(t) => seen.push_str(&t),
            _ => {}
        }
    }
}

fn vm_hwm_kib(pid: i32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines().find(|l| l.starts_with("VmHWM:")).unwrap().split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn a_shell_answers_and_follows_the_window_size() {
    let t = start("");
    let id = t.create(80, 24);
    let (mut ws, hello, _) = t.attach(&id);
    assert_eq!((hello["cols"].as_u64(), hello["rows"].as_u64()), (Some(80), Some(24)));
    send_text(&mut ws, "echo answer-$((6*7))\r");
    read_until(&mut ws, "answer-42");
    send_text(&mut ws, "stty size\r");
    read_until(&mut ws, "24 80");
    control(&mut ws, json!({ "type": "resize", "cols": 120, "rows": 40 }));
    send_text(&mut ws, "stty size\r");
    read_until(&mut ws, "40 120");
    // UTF-8 both ways, and the environment of a login shell.
    send_text(&mut ws, "echo \"héllo ✓ $TERM $COLORTERM\"; pwd\r");
    let out = read_until(&mut ws, "héllo ✓ xterm-256color truecolor");
    let ws_dir = t.g.dir.path().join("ws");
    let ws_dir = ws_dir.to_string_lossy();
    let out = if out.contains(ws_dir.as_ref()) { out } else { read_until(&mut ws, &ws_dir) };
    assert!(out.contains(ws_dir.as_ref()), "the shell starts in the workspace");
}

#[test]
fn a_tab_that_comes_back_gets_its_screen_and_scrollback() {
    let t = start("");
    let id = t.create(60, 12);
    {
        let (mut ws, _, _) = t.attach(&id);
        send_text(&mut ws, "for i in $(seq 1 50); do echo \"row $i\"; done; echo done-$((1+1))\r");
        read_until(&mut ws, "done-2");
        // Let the prompt come back, then the tab goes away (closed, or the network dropped).
        std::thread::sleep(Duration::from_millis(300));
    }
    let deadline = Instant::now() + T;
    while t.sessions()[0]["tabs"] != 0 {
        assert!(Instant::now() < deadline, "the tab was not detached");
        std::thread::sleep(Duration::from_millis(50));
    }
    let listed = t.sessions();
    assert_eq!(listed.len(), 1, "the shell outlives its tab");
    let (mut ws, _, snapshot) = t.attach(&id);
    // The snapshot redraws a fresh terminal of the same size into the state the session has.
    let mut vt = avt::Terminal::with_scrollback(60, 12, Some(1000)).unwrap();
    vt.feed(String::from_utf8_lossy(&snapshot).as_ref());
    let text = vt.primary_screen().text();
    assert!(text.iter().any(|l| l == "row 1"), "scrollback restored: {text:?}");
    assert!(text.iter().any(|l| l == "row 50"), "{text:?}");
    assert!(text.iter().any(|l| l == "done-2"), "{text:?}");
    let visible: Vec<String> = vt.primary_screen().visible_lines().map(|l| l.text().trim_end().to_string()).collect();
    assert!(visible.iter().any(|l| l == "row 50"), "the screen as it was: {visible:?}");
    // And the shell still works.
    send_text(&mut ws, "echo back-$((2*3))\r");
    read_until(&mut ws, "back-6");
}

/// A tab that attaches in the middle of a flood is sent the screen (and scrollback) as the
/// emulator has it, then the output the emulator had not parsed yet, then the stream: read
/// together they hold every line once, in order, from the snapshot's scrollback to the end.
#[test]
fn a_tab_attached_during_a_flood_misses_no_byte_and_gets_none_twice() {
    const LAST: u64 = 1_000_000;
    let t = start("");
    let id = t.create(100, 30);
    let (mut a, _, _) = t.attach(&id);
    send_text(&mut a, &format!("seq 1 {LAST}; echo flood-$((6*7))\r"));
    // Well into the flood (7 MB of lines), a second tab attaches.
    read_until(&mut a, "\n200000\r\n");
    let mut b = t.connect_with(&id, &[("Authorization", &t.auth), ("Origin", &t.origin())]).unwrap();
    drop(a);
    assert!(matches!(b.read().unwrap(), Message::Text(_)), "hello first");
    let snapshot = match b.read().unwrap() {
        Message::Binary(bytes) => bytes,
        other => panic!("expected the snapshot, got {other:?}"),
    };
    let mut stream: Vec<u8> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !stream.windows(9).rev().take(64 << 10).any(|w| w == b"flood-42\r") {
        assert!(
            Instant::now() < deadline,
            "the flood did not end; last: {:?}",
            String::from_utf8_lossy(&stream[stream.len().saturating_sub(200)..])
        );
        match b.read().unwrap() {
            Message::Binary(bytes) => stream.extend_from_slice(&bytes),
            Message::Text(t) => assert!(!t.contains("snapshot"), "a tab that keeps up gets no second snapshot: {t}"),
            _ => {}
        }
    }
    // The snapshot drawn in a terminal, then the stream written into it, as the page does; the
    // lines that leave its scrollback on the way are collected, so nothing is judged by a part.
    struct Evicted(Vec<String>);
    impl avt::Observer for Evicted {
        type Output = ();
        fn evicted(&mut self, _: &mut avt::Observation<'_>, line: &avt::Line) {
            self.0.push(line.text().trim_end().to_string());
        }
        fn end(&mut self, _: &mut avt::Observation<'_>) {}
    }
    let mut vt = avt::Terminal::with_scrollback(100, 30, Some(10_000)).unwrap();
    vt.feed(String::from_utf8_lossy(&snapshot).as_ref());
    // The junction is tested only if the snapshot holds lines of the flood (its scrollback).
    let in_snapshot = vt.primary_screen().all_lines().filter(|l| l.text().trim_end().parse::<u64>().is_ok()).count();
    assert!(in_snapshot > 1000, "the snapshot holds {in_snapshot} lines of the flood");
    let mut evicted = Evicted(Vec::new());
    for piece in stream.chunks(64 << 10) {
        vt.feed_with(String::from_utf8_lossy(piece).as_ref(), &mut evicted);
    }
    let mut history = evicted.0;
    history.extend(vt.primary_screen().all_lines().map(|l| l.text().trim_end().to_string()));
    let numbers: Vec<u64> = history.iter().filter_map(|l| l.parse().ok()).collect();
    for pair in numbers.windows(2) {
        assert_eq!(pair[1], pair[0] + 1, "a line lost or doubled between {} and {}", pair[0], pair[1]);
    }
    assert_eq!(numbers.last(), Some(&LAST));
}

#[test]
fn the_shells_exit_ends_the_session() {
    let t = start("");
    let id = t.create(80, 24);
    let (mut ws, _, _) = t.attach(&id);
    send_text(&mut ws, "exit 3\r");
    let out = read_until(&mut ws, "\"type\":\"exit\"");
    assert!(out.contains("\"code\":3"), "{out}");
    let deadline = Instant::now() + T;
    while !t.sessions().is_empty() {
        assert!(Instant::now() < deadline, "the session is still listed");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (status, v) = t.api("DELETE", &format!("/api/sessions/{id}"), Value::Null);
    assert_eq!(status, 404, "{v}");
}

#[test]
fn a_flood_is_held_back_by_a_slow_tab_and_memory_stays_bounded() {
    let t = start("");
    let id = t.create(80, 24);
    let (mut ws, _, _) = t.attach(&id);
    let before = vm_hwm_kib(t.g.pid());
    // 200 MB of output as fast as the shell can make it.
    send_text(&mut ws, "head -c 200000000 /dev/zero | tr '\\0' 'x'; echo; echo flood-over\r");
    // A slow reader: a little, then nothing for a while, then a little again.
    let mut got = 0usize;
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(4) {
        if let Message::Binary(b) = ws.read().unwrap() {
            got += b.len();
        }
        if got > (4 << 20) {
            std::thread::sleep(Duration::from_millis(2000));
            got = 0;
        }
    }
    let grown = vm_hwm_kib(t.g.pid()).saturating_sub(before);
    assert!(grown < 32 * 1024, "gpubox grew by {grown} KiB during the flood");
    // The program was held back, not its output buffered: it is still running.
    let all: Vec<Value> = t.sessions();
    assert_eq!(all.len(), 1);
    // Stop it and the shell answers again.
    send_text(&mut ws, "\x03");
    send_text(&mut ws, "echo alive-$((3*3))\r");
    // What was already on its way still arrives first; on a busy machine that takes a while.
    read_until_within(&mut ws, "alive-9", Duration::from_secs(90));
}

#[test]
fn two_tabs_share_a_session_and_the_api_names_and_closes_it() {
    let t = start("");
    let id = t.create(80, 24);
    let (mut a, _, _) = t.attach(&id);
    let (mut b, _, _) = t.attach(&id);
    send_text(&mut a, "echo from-a-$((4*4))\r");
    read_until(&mut a, "from-a-16");
    read_until(&mut b, "from-a-16");
    send_text(&mut b, "echo from-b-$((5*5))\r");
    read_until(&mut a, "from-b-25");
    // A resize in one tab is announced to the other.
    control(&mut a, json!({ "type": "resize", "cols": 100, "rows": 30 }));
    read_until(&mut b, "\"type\":\"size\"");
    assert_eq!(t.sessions()[0]["tabs"], 2);
    let (status, v) = t.api("PATCH", &format!("/api/sessions/{id}"), json!({ "name": "training run" }));
    assert_eq!((status, v["name"].as_str()), (200, Some("training run")));
    let (status, _) = t.api("PATCH", &format!("/api/sessions/{id}"), json!({ "name": "  " }));
    assert_eq!(status, 400);
    let (status, _) = t.api("DELETE", &format!("/api/sessions/{id}"), Value::Null);
    assert_eq!(status, 204);
    let out = read_until(&mut a, "\"type\":\"exit\"");
    assert!(out.contains("\"code\":129") || out.contains("\"code\":1"), "hung up: {out}");
}

#[test]
fn a_session_without_tabs_ends_after_the_idle_limit() {
    let t = start("idle_timeout = \"1s\"");
    let id = t.create(80, 24);
    {
        let (mut ws, _, _) = t.attach(&id);
        send_text(&mut ws, "echo here\r");
        read_until(&mut ws, "here");
    }
    t.g.wait_event("closed after 1.0s without a tab", T);
    let deadline = Instant::now() + T;
    while !t.sessions().is_empty() {
        assert!(Instant::now() < deadline, "the idle session is still listed");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_page_elsewhere_cannot_open_the_shell() {
    let t = start("");
    let id = t.create(80, 24);
    let refused = |headers: &[(&str, &str)]| match t.connect_with(&id, headers) {
        Err(tungstenite::Error::Http(resp)) => resp.status().as_u16(),
        Ok(_) => 101,
        Err(e) => panic!("{e}"),
    };
    // Another site, another port of this host, a sandboxed frame: refused, even with the login.
    assert_eq!(refused(&[("Authorization", &t.auth), ("Origin", "http://evil.example")]), 403);
    let other_port = format!("http://127.0.0.1:{}", t.port + 1);
    assert_eq!(refused(&[("Authorization", &t.auth), ("Origin", &other_port)]), 403);
    assert_eq!(refused(&[("Authorization", &t.auth), ("Origin", "null")]), 403);
    // No login: refused.
    assert_eq!(refused(&[("Origin", &t.origin())]), 401);
    let wrong = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("u:wrong"));
    assert_eq!(refused(&[("Authorization", &wrong), ("Origin", &t.origin())]), 401);
    // This page, logged in: accepted.
    assert_eq!(refused(&[("Authorization", &t.auth), ("Origin", &t.origin())]), 101);
    // The session API is behind the login too, and creating one is a state change: same origin only.
    let r = request(t.port, "POST", "/api/sessions", &[("Origin", &t.origin())], b"{}");
    assert_eq!(r.status, 401);
    let r = request(
        t.port,
        "POST",
        "/api/sessions",
        &[("Authorization", &t.auth), ("Origin", "http://evil.example")],
        b"{}",
    );
    assert_eq!(r.status, 403);
    assert_eq!(t.sessions().len(), 1);
}

/// Issue 14 (1): a paste wrote to the PTY on the port's serving thread, holding the PTY's lock.
/// Into a shell that is not reading (here `sleep`), one 1 MiB paste plus a key from a second tab
/// stopped every request on the port, and gpubox ignored SIGTERM for 70 s and more. Now the
/// port answers, another session works, and gpubox stops within its stop timeouts.
#[test]
fn a_huge_paste_into_a_busy_shell_holds_up_nothing_else() {
    let mut t = start("");
    let id = t.create(80, 24);
    let (mut a, _, _) = t.attach(&id);
    send_text(&mut a, "sleep 600\n");
    read_until(&mut a, "sleep 600");
    if let MaybeTlsStream::Plain(s) = a.get_mut() {
        s.set_write_timeout(Some(T)).unwrap();
    }
    a.send(Message::Binary(vec![b'y'; 1 << 20].into())).unwrap();
    let (mut b, _, _) = t.attach(&id);
    send_text(&mut b, "x");

    let t0 = Instant::now();
    assert_eq!(t.sessions().len(), 1, "the port answers");
    let other = t.create(80, 24);
    let (mut c, _, _) = t.attach(&other);
    send_text(&mut c, "echo other-$((6*7))\n");
    read_until(&mut c, "other-42");
    assert!(t0.elapsed() < Duration::from_secs(5), "the port took {:?} to answer", t0.elapsed());

    let (took, code) = {
        let (code, took) = t.g.terminate();
        (took, code)
    };
    assert_eq!(code, Some(0));
    assert!(took < Duration::from_secs(8), "gpubox took {took:?} to stop");
}

/// A quiet shell's WebSocket is pinged every 30 s, so that a proxy in front that drops idle
/// connections (RunPod's and Cloudflare's after 100 s) sees traffic.
#[test]
fn a_quiet_tab_is_pinged() {
    let t = start("");
    let id = t.create(80, 24);
    let (mut ws, _, _) = t.attach(&id);
    let started = Instant::now();
    if let MaybeTlsStream::Plain(s) = ws.get_mut() {
        s.set_read_timeout(Some(Duration::from_secs(40))).unwrap();
    }
    loop {
        match ws.read() {
            Ok(Message::Ping(_)) => break,
            Ok(_) => {}
            Err(e) => panic!("no ping within {:?}: {e}", started.elapsed()),
        }
    }
    let waited = started.elapsed();
    assert!(waited >= Duration::from_secs(25) && waited < Duration::from_secs(40), "pinged after {waited:?}");
}

#[test]
fn typing_in_a_terminal_keeps_the_idle_stop_away() {
    // One WebSocket, opened once (one request); then only keys for longer than the idle stop
    // waits: no stop. Then nothing: the stop comes.
    let r = crate::monitor::Receiver::start();
    let vast = format!("GPUBOX_VAST_URL={}", r.url(""));
    let t = start_env(
        &["CONTAINER_ID=31", "CONTAINER_API_KEY=k", &vast],
        "\n[metrics]\ninterval = \"1s\"\n\n[idle_stop]\nafter = \"5s\"\nwarn_before = \"2s\"\n",
    );
    let id = t.create(80, 24);
    let (mut ws, _, _) = t.attach(&id);
    let until = Instant::now() + Duration::from_secs(9);
    let mut n = 0;
    while Instant::now() < until {
        n += 1;
        send_text(&mut ws, &format!("echo key{n}\r"));
        read_until(&mut ws, &format!("key{n}"));
        std::thread::sleep(Duration::from_millis(800));
    }
    assert!(r.to("/api/v0/").is_empty(), "stopped while someone typed");
    r.wait("/api/v0/instances/31/", "the stop once the typing stopped", |v| !v.is_empty());
    drop(ws);
    drop(t);
}
