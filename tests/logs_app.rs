//! The logs app (port 7030) through the real binary over real HTTP: live lines over SSE and
//! resuming by sequence number, search and filters, extra log files picked up after start and
//! followed across rotation, history and download from the files, the status, and that no route
//! of the app changes anything.

use std::io::BufReader;
use std::time::{Duration, Instant};

use base64::Engine;
use gpubox::api::Client;
use gpubox::api::Request;
use serde_json::Value;

use crate::http::{open, read_response, request, SseReader};
use crate::supervisor::free_port;
use crate::util::Gpubox;

const T: Duration = Duration::from_secs(30);

struct Logs {
    g: Gpubox,
    port: u16,
    auth: String,
}

fn start(extra: &str) -> Logs {
    let port = free_port();
    let g = Gpubox::start(&format!(
        r#"
[auth]
username = "u"
password = "p"

[services.logs]
app = "logs"
port = {port}
{extra}
"#
    ));
    g.wait_event(&format!("logs: listening on 0.0.0.0:{port}"), T);
    let auth = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("u:p"));
    Logs { g, port, auth }
}

impl Logs {
    fn get(&self, path: &str) -> crate::http::Response {
        request(self.port, "GET", path, &[("Authorization", &self.auth)], b"")
    }

    fn json(&self, path: &str) -> Value {
        let r = self.get(path);
        assert_eq!(r.status, 200, "GET {path}: {}", r.text());
        serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("GET {path}: {e}: {}", r.text()))
    }

    /// The texts of `/api/lines` answers.
    fn texts(&self, path: &str) -> Vec<String> {
        self.json(path)["lines"].as_array().unwrap().iter().map(|l| l[4].as_str().unwrap().to_string()).collect()
    }

    /// Waits until `/api/lines` (with `query`) holds a line with this text.
    fn wait_line(&self, query: &str, text: &str) -> Vec<String> {
        let deadline = Instant::now() + T;
        loop {
            let texts = self.texts(&format!("/api/lines?limit=100000&{query}"));
            if texts.iter().any(|t| t == text) {
                return texts;
            }
            assert!(Instant::now() < deadline, "no line {text:?} in {query}: {texts:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn stream(&self, path: &str, extra: &[(&str, &str)]) -> SseReader<BufReader<std::net::TcpStream>> {
        let mut headers = vec![("Authorization", self.auth.as_str()), ("Accept", "text/event-stream")];
        headers.extend_from_slice(extra);
        let s = open(self.port, "GET", path, &headers, b"");
        let mut r = BufReader::new(s);
        let head = read_response(&mut r, false);
        assert_eq!(head.status, 200);
        assert_eq!(head.header("content-type"), Some("text/event-stream"));
        SseReader::new(r)
    }
}

fn seqs(lines: &Value) -> Vec<u64> {
    lines.as_array().unwrap().iter().map(|l| l[0].as_u64().unwrap()).collect()
}

#[test]
fn live_lines_arrive_and_a_reconnect_resumes_right_after_its_last_event() {
    let l = start(
        r#"
[services.counter]
command = ["sh", "-c", "i=0; while true; do i=$((i+1)); echo count $i; sleep 0.02; done"]
"#,
    );
    l.wait_line("service=counter", "count 3");
    let mut seen: Vec<u64> = Vec::new();
    let mut last_id = String::new();
    {
        let mut sse = l.stream("/api/stream?after=0", &[]);
        while seen.len() < 40 {
            let e = sse.next().expect("the stream ended");
            if e.event == "lines" {
                let v: Value = serde_json::from_str(&e.data).unwrap();
                seen.extend(seqs(&v["lines"]));
                last_id = e.id.clone().expect("every lines event has an id");
                assert_eq!(last_id, seen.last().unwrap().to_string(), "the id is the last line's number");
            }
        }
    } // the connection drops here, as a browser's would
    std::thread::sleep(Duration::from_millis(300)); // lines go on arriving meanwhile
    let mut sse = l.stream("/api/stream", &[("Last-Event-ID", &last_id)]);
    let mut resumed: Vec<u64> = Vec::new();
    while resumed.len() < 10 {
        let e = sse.next().expect("the stream ended");
        if e.event == "lines" {
            resumed.extend(seqs(&serde_json::from_str::<Value>(&e.data).unwrap()["lines"]));
        }
    }
    let last: u64 = last_id.parse().unwrap();
    assert_eq!(resumed[0], last + 1, "resumed right after the last line seen: nothing missed, nothing twice");
    let mut all = seen.clone();
    all.extend(&resumed);
    assert!(all.windows(2).all(|w| w[0] < w[1]), "increasing, no repeats");
    // Nothing missed: every line the ring has between the first and last seen was delivered.
    let first = seen[0];
    let upto = *resumed.last().unwrap();
    let ring = l.json(&format!("/api/lines?after={}&before={}&limit=100000", first - 1, upto + 1));
    assert_eq!(seqs(&ring["lines"]), all);

    // once=1: what is there, an `end` event, and the end of the stream.
    let mut sse = l.stream(&format!("/api/stream?after={}&once=1", upto), &[]);
    let mut events = Vec::new();
    while let Some(e) = sse.next() {
        events.push(e.event);
    }
    assert_eq!(events.last().map(String::as_str), Some("end"), "{events:?}");
    assert_eq!(events.first().map(String::as_str), Some("hello"), "a stream says hello at once: {events:?}");
}

#[test]
fn search_filters_context_and_paging() {
    let l = start(
        r#"
[services.app]
command = ["sh", "-c", "for i in 1 2 3 4 5 6; do echo info $i; done; echo 'ERROR: disk on fire' >&2; echo 'Warning: hot' >&2; echo after; echo 'error code=42'; sleep 3600"]
[services.other]
command = ["sh", "-c", "echo 'other ERROR'; sleep 3600"]
"#,
    );
    l.wait_line("service=app", "error code=42");
    l.wait_line("service=other", "other ERROR");
    // Text search: case-insensitive by default, across services.
    let hits = l.texts("/api/lines?q=error");
    assert!(hits.contains(&"ERROR: disk on fire".to_string()) && hits.contains(&"other ERROR".to_string()));
    assert!(hits.iter().all(|t| t.to_lowercase().contains("error")), "{hits:?}");
    // Case-sensitive, one service, one stream.
    assert_eq!(l.texts("/api/lines?q=ERROR&case=1&service=app"), ["ERROR: disk on fire"]);
    assert_eq!(l.texts("/api/lines?service=app&stream=stderr"), ["ERROR: disk on fire", "Warning: hot"]);
    // A regular expression, anchored per line.
    assert_eq!(l.texts("/api/lines?service=app&q=%5Einfo%20%5B35%5D%24&regex=1"), ["info 3", "info 5"]);
    assert_eq!(l.texts("/api/lines?service=app&q=code%3D%5Cd%2B&regex=1"), ["error code=42"]);
    // Context: the lines around each match, flagged.
    let v = l.json("/api/lines?service=app&stream=stdout&q=after&context=1");
    let got: Vec<(String, u64)> = v["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l[4].as_str().unwrap().into(), l[5].as_u64().unwrap()))
        .collect();
    assert_eq!(got, [("info 6".into(), 0), ("after".into(), 1), ("error code=42".into(), 0)]);
    // Paging back with `before`: the newest lines of the window within the limit.
    let page = l.json("/api/lines?service=app&stream=stdout&limit=2");
    assert_eq!(page["more"], true);
    let got: Vec<&str> = page["lines"].as_array().unwrap().iter().map(|l| l[4].as_str().unwrap()).collect();
    assert_eq!(got, ["after", "error code=42"]);
    let oldest = page["lines"][0][0].as_u64().unwrap();
    assert_eq!(l.texts(&format!("/api/lines?service=app&stream=stdout&limit=2&before={oldest}")), ["info 5", "info 6"]);
    // Bad input says what is wrong.
    let r = l.get("/api/lines?q=(unclosed&regex=1");
    assert_eq!(r.status, 400);
    assert!(r.text().contains("bad_regex") && r.text().contains("unclosed"), "{}", r.text());
    let r = l.get("/api/lines?stream=stdnothing");
    assert_eq!(r.status, 400);
    assert!(r.text().contains("stdout, stderr"), "{}", r.text());
    let r = l.get("/api/lines?limit=lots");
    assert!(r.status == 400 && r.text().contains("`limit` must be a whole number"), "{}", r.text());

    // `gpubox logs` takes the same filters and search.
    let out = l.g.cli(&["logs", "app", "other", "-g", "error", "-n", "10"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("disk on fire") && text.contains("other ERROR") && text.contains("code=42"), "{text}");
    assert!(!text.contains("info 1"), "{text}");
    // Names separated by commas, as the logs app's `service=` takes them: the same lines.
    let out = l.g.cli(&["logs", "app,other", "-g", "error", "-n", "10"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), text, "{out:?}");
    let out = l.g.cli(&["logs", "app", "--stream", "stderr", "-E", "-g", "^W"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Warning: hot") && !text.contains("disk"), "{text}");
    let out = l.g.cli(&["logs", "app", "--stream", "stdout", "-g", "after", "-C", "1"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.lines().count(), 3, "{text}");
    // Groups of a match and its context are separated by `--`, as grep does.
    let out = l.g.cli(&["logs", "app", "--stream", "stdout", "-E", "-g", "^info [15]$", "-C", "1"]);
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 6, "{text}");
    assert!(lines[1].ends_with("info 2") && lines[2] == "--" && lines[3].ends_with("info 4"), "{text}");
    let out = l.g.cli(&["logs", "app", "--stream", "stdout", "-E", "-g", "^info [12]$", "-C", "1"]);
    assert!(!String::from_utf8_lossy(&out.stdout).contains("--"), "one group, no separator: {out:?}");
    let out = l.g.cli(&["logs", "-E", "-g", "("]);
    assert_ne!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("regular expression"), "{out:?}");
}

#[test]
fn extra_log_files_are_picked_up_and_followed_across_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    std::fs::write(dir.path().join("old.log"), "was there before\n").unwrap();
    nix::unistd::mkfifo(&dir.path().join("pipe.log"), nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let l = start(&format!("files = [\"{d}/*.log\"]"));
    let old = format!("service={d}/old.log");
    l.wait_line(&old, "was there before");
    // A file created after start is picked up (the glob is looked at again).
    let new = dir.path().join("new.log");
    std::fs::write(&new, "first\nsecond\n").unwrap();
    let q = format!("service={}", new.display());
    l.wait_line(&q, "second");
    // Growth is followed; a line without its newline waits until it is complete.
    append(&new, "third\npart");
    l.wait_line(&q, "third");
    append(&new, "ial\n");
    l.wait_line(&q, "partial");
    // Rotation: renamed away, a new file under the name. Both the old file's last lines and the
    // new file's are read.
    append(&new, "last of the old file\n");
    std::fs::rename(&new, dir.path().join("new.log.1")).unwrap();
    std::fs::write(&new, "first of the new file\n").unwrap();
    let texts = l.wait_line(&q, "first of the new file");
    assert!(texts.contains(&"last of the old file".to_string()), "{texts:?}");
    // Truncation in place: read from the start again.
    std::fs::write(&new, "after truncation\n").unwrap();
    let texts = l.wait_line(&q, "after truncation");
    assert_eq!(texts.iter().filter(|t| *t == "first").count(), 1, "nothing read twice: {texts:?}");
    // The FIFO matched the glob but was never opened (that would hang the reader), and the
    // files go on being read.
    assert!(l.texts(&format!("/api/lines?service={d}/pipe.log")).is_empty());
    append(&dir.path().join("old.log"), "still followed\n");
    l.wait_line(&old, "still followed");
}

fn append(path: &std::path::Path, text: &str) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

#[test]
fn history_and_download_come_from_the_files() {
    let l = start(
        r#"
[logs]
max_file_size = "2KiB"
max_files = 5

[services.talker]
command = ["sh", "-c", "for i in $(seq 1 100); do echo talker line $i; done; sleep 0.3; echo oops >&2; sleep 3600"]
"#,
    );
    l.wait_line("service=talker", "oops");
    // Download: the rotated files oldest first, then the current one: every line, in order.
    let r = l.get("/api/download?service=talker");
    assert_eq!(r.status, 200);
    assert!(r.header("content-disposition").is_some_and(|v| v.contains("talker.log")));
    let text = r.text();
    let numbers: Vec<u32> =
        text.lines().filter_map(|line| line.split("talker line ").nth(1)).map(|n| n.parse().unwrap()).collect();
    // The oldest lines may have left with the oldest file (5 files of 2 KiB); the rest are whole.
    assert!(numbers.len() > 50 && numbers.windows(2).all(|w| w[1] == w[0] + 1), "{numbers:?}");
    assert_eq!(*numbers.last().unwrap(), 100);
    assert!(text.trim_end().ends_with("stderr oops"), "{}", &text[text.len().saturating_sub(200)..]);
    // History: backwards from the end, page by page, with time and stream from the file.
    let page = l.json("/api/history?service=talker&limit=3");
    let lines = page["lines"].as_array().unwrap();
    let got: Vec<(&str, &str)> = lines.iter().map(|l| (l[3].as_str().unwrap(), l[4].as_str().unwrap())).collect();
    assert_eq!(got, [("stdout", "talker line 99"), ("stdout", "talker line 100"), ("stderr", "oops")]);
    assert!(lines.iter().all(|l| l[0].is_null() && l[1].as_u64().is_some()));
    let start = page["start"].as_u64().unwrap();
    let older = l.json(&format!("/api/history?service=talker&limit=2&end={start}"));
    let texts: Vec<&str> = older["lines"].as_array().unwrap().iter().map(|l| l[4].as_str().unwrap()).collect();
    assert_eq!(texts, ["talker line 97", "talker line 98"]);
    // Unknown logs and missing names are clear errors; a name is never a path.
    let r = l.get("/api/download?service=../../etc/passwd");
    assert_eq!(r.status, 404);
    assert!(r.text().contains("no log named"));
    assert_eq!(l.get("/api/history").status, 400);
}

#[test]
fn status_shows_services_and_the_machine() {
    let l = start(
        r#"
[services.job]
command = ["true"]
oneshot = true
[services.web]
command = ["sleep", "3600"]
"#,
    );
    l.g.wait_event("job: finished", T);
    let s = l.json("/api/status");
    let names: Vec<&str> = s["services"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["job", "web"]);
    assert_eq!(s["services"][0]["state"], "done");
    assert_eq!(s["services"][1]["state"], "running");
    assert!(s["services"][1]["pid"].as_u64().is_some());
    let m = &s["machine"];
    assert!(m["cpus"].as_u64().unwrap() >= 1);
    assert!(m["memory"]["total"].as_u64().unwrap() > 0);
    assert!(m["disk"]["total"].as_u64().unwrap() > 0);
    assert!(m["disk"]["path"].as_str().unwrap().ends_with("/ws"));
    assert!(m["gpus"].is_array());
    let links = s["links"].as_array().unwrap();
    assert_eq!(links[0]["url"], format!("http://127.0.0.1:{}/", l.port));
    // The page itself: the shell and the app's script, with the security headers.
    let page = request(l.port, "GET", "/", &[("Authorization", &l.auth), ("Accept", "text/html")], b"");
    assert_eq!(page.status, 200);
    assert!(page.text().contains("/.gpubox/assets/logs.js") && page.text().contains("id=\"logs-app\""));
    assert!(page.header("content-security-policy").is_some_and(|c| c.contains("script-src 'self'")));
    let js = l.get("/.gpubox/assets/logs.js");
    assert_eq!((js.status, js.header("content-type")), (200, Some("text/javascript; charset=utf-8")));
}

#[test]
fn no_route_of_the_logs_app_changes_anything() {
    let l = start("[services.s]\ncommand = [\"sleep\", \"3600\"]\n");
    let v = Client::call(&l.g.control, &Request::Routes).unwrap();
    let site = v["sites"].as_array().unwrap().iter().find(|s| s["port"] == l.port).unwrap().clone();
    let routes: Vec<&Value> = site["routes"].as_array().unwrap().iter().filter(|r| r["owner"] == "logs").collect();
    assert!(routes.len() >= 6, "the app's routes are in the table: {routes:?}");
    let origin = format!("http://127.0.0.1:{}", l.port);
    for r in &routes {
        assert_eq!(r["method"], "GET", "{r}");
        let path = r["example"].as_str().unwrap();
        assert_eq!(l.get(path).status, 200, "GET {path}");
        for m in ["POST", "PUT", "DELETE", "PATCH"] {
            let resp = request(l.port, m, path, &[("Authorization", &l.auth), ("Origin", &origin)], b"x=1");
            assert_eq!(resp.status, 405, "{m} {path} must not be accepted: {}", resp.text());
        }
    }
    // And the service is untouched.
    assert_eq!(l.g.service_status("s")["state"], "running");
}
