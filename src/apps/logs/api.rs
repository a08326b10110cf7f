//! The logs app's JSON and event-stream API (docs/logs-app.md).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::LogsApp;
use crate::http::{ApiError, Params};
use crate::logs::filter::FilterError;
use crate::logs::search::MAX_LIMIT;
use crate::logs::{Hub, LiveLine, LogFilter, LogLine, Stream};

/// Lines per `lines` event of the stream.
const STREAM_BATCH: usize = 2000;

impl From<FilterError> for ApiError {
    fn from(e: FilterError) -> ApiError {
        ApiError::bad_request(e.code, e.message)
    }
}

fn internal(message: &str) -> ApiError {
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
}

/// `[seq, time_ms, service, stream, text]`, plus `1`/`0` (match or context) when `matched` is
/// given; `seq` and `time_ms` may be null (lines from files).
fn push_line(out: &mut String, seq: Option<u64>, time_ms: Option<u64>, service: &str, stream: &str, text: &str) {
    use std::fmt::Write;
    let num = |n: Option<u64>| n.map_or("null".to_string(), |n| n.to_string());
    let _ = write!(
        out,
        "[{},{},{},\"{stream}\",{}",
        num(seq),
        num(time_ms),
        serde_json::to_string(service).unwrap_or_default(),
        serde_json::to_string(text).unwrap_or_default()
    );
}

fn lines_json(lines: &[LogLine], matched: Option<&[bool]>) -> String {
    let mut out = String::with_capacity(lines.len() * 96 + 16);
    out.push('[');
    for (i, l) in lines.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_line(&mut out, Some(l.seq), Some(l.time_ms), &l.service, l.stream.as_str(), &l.text);
        if let Some(m) = matched {
            out.push_str(if m[i] { ",1" } else { ",0" });
        }
        out.push(']');
    }
    out.push(']');
    out
}

pub(super) fn json_response(body: String) -> Response {
    ([(header::CONTENT_TYPE, "application/json"), (header::CACHE_CONTROL, "no-store")], body).into_response()
}

pub async fn lines(
    State(app): State<Arc<LogsApp>>,
    Params(params): Params<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    let q = LogFilter::from_params(params.iter().map(|(k, v)| (k.as_str(), v.as_str())))?.compile(1000)?;
    let hub = app.hub.clone();
    // A search over a million lines takes tens of milliseconds: off the serving thread.
    let answer = tokio::task::spawn_blocking(move || {
        let t = Instant::now();
        let found = hub.query(&q);
        let took = t.elapsed().as_secs_f64() * 1000.0;
        let with_context = q.matcher.is_some() && q.context > 0;
        format!(
            "{{\"lines\":{},\"first_seq\":{},\"last_seq\":{},\"more\":{},\"scanned\":{},\"took_ms\":{took:.3}}}",
            lines_json(&found.lines, with_context.then_some(found.matched.as_slice())),
            found.first_seq,
            found.last_seq,
            found.more,
            found.scanned,
        )
    })
    .await;
    answer.map(json_response).map_err(|_| internal("the search failed"))
}

/// What the event stream remembers between events.
struct Follow {
    hub: Hub,
    changed: tokio::sync::watch::Receiver<u64>,
    last: u64,
    live: Vec<(String, String)>,
    queue: VecDeque<Event>,
    /// `once=1`: end the stream when the lines already there have been sent.
    once: bool,
    done: bool,
    /// The last look filled a whole batch: look again without waiting for a change.
    behind: bool,
}

fn live_key(live: &[LiveLine]) -> Vec<(String, String)> {
    live.iter().map(|l| (l.service.to_string(), l.text.clone())).collect()
}

impl Follow {
    /// Queues what is new since the last look; returns how many lines that was.
    fn look(&mut self) -> usize {
        let batch = self.hub.read(None, self.last, STREAM_BATCH);
        if let Some(gap) = batch.gap_before.filter(|g| *g > self.last) {
            self.queue.push_back(Event::default().event("gap").data(json!({ "before": gap }).to_string()));
        }
        let n = batch.lines.len();
        self.behind = n == STREAM_BATCH;
        if let Some(last) = batch.lines.last() {
            self.last = last.seq;
            let data = format!("{{\"lines\":{}}}", lines_json(&batch.lines, None));
            self.queue.push_back(Event::default().event("lines").id(self.last.to_string()).data(data));
        }
        let live = self.hub.live(None);
        let key = live_key(&live);
        if key != self.live {
            self.live = key;
            let data = json!({ "live": live }).to_string();
            self.queue.push_back(Event::default().event("live").data(data));
        }
        n
    }
}

#[derive(serde::Deserialize)]
pub struct StreamParams {
    /// Lines after this sequence number (default: from now on).
    #[serde(default, deserialize_with = "crate::http::whole")]
    after: Option<u64>,
    /// End the stream when the lines already there have been sent.
    #[serde(default, deserialize_with = "crate::http::flag")]
    once: bool,
}

pub async fn stream(
    State(app): State<Arc<LogsApp>>,
    headers: HeaderMap,
    Params(p): Params<StreamParams>,
) -> Result<Response, ApiError> {
    let after = p.after;
    // A reconnecting EventSource says where it was: resume right after it.
    let resume = headers.get("last-event-id").and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<u64>().ok());
    let last = match (after, resume) {
        (_, Some(r)) => r,
        (Some(a), None) => a,
        (None, None) => app.hub.last_seq(),
    };
    let mut changed = app.hub.watch();
    changed.mark_changed();
    let once = p.once;
    // `hello` at once and `ping` when there is nothing else for 15 s: events the page sees (a
    // comment it would not), so that it can tell a stream that a proxy holds back (buffering
    // whole responses, as some do) from a quiet one, and poll instead.
    let follow = Follow {
        hub: app.hub.clone(),
        changed,
        last,
        live: Vec::new(),
        queue: VecDeque::from([Event::default().event("hello").data("{}")]),
        once,
        done: false,
        behind: false,
    };
    let events = futures_util::stream::unfold(follow, |mut f| async move {
        loop {
            if let Some(e) = f.queue.pop_front() {
                return Some((Ok::<Event, Infallible>(e), f));
            }
            if f.once {
                // Everything up to now, an `end` event, and the end.
                if f.done {
                    return None;
                }
                while f.look() == STREAM_BATCH {}
                f.queue.push_back(Event::default().event("end").data("{}"));
                f.done = true;
                continue;
            }
            if f.behind {
                // A reader far behind (a reconnect, a flood) gets the backlog batch after batch.
                f.look();
                continue;
            }
            match tokio::time::timeout(Duration::from_secs(15), f.changed.changed()).await {
                Err(_) => {
                    f.queue.push_back(Event::default().event("ping").data("{}"));
                    continue;
                }
                Ok(Err(_)) => return None,
                Ok(Ok(())) => {}
            }
            // A burst: give the writers a moment so that one event carries many lines.
            tokio::time::sleep(Duration::from_millis(20)).await;
            f.changed.borrow_and_update();
            f.look();
        }
    });
    let mut resp = Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))).into_response();
    resp.headers_mut().insert(header::CACHE_CONTROL, "no-store".parse().expect("valid"));
    Ok(resp)
}

/// The source named by `service`, and its files, oldest first.
/// `?service=`: one log, from its files.
#[derive(serde::Deserialize)]
pub struct SourceParams {
    #[serde(default)]
    service: String,
    /// History: lines ending before this byte of the files' concatenation (default: the end).
    #[serde(default, deserialize_with = "crate::http::whole")]
    end: Option<u64>,
    /// History: at most this many lines (default 1000).
    #[serde(default, deserialize_with = "crate::http::whole")]
    limit: Option<usize>,
}

/// The source named by `service`, and its files, oldest first.
fn source(app: &LogsApp, p: &SourceParams) -> Result<(String, Vec<PathBuf>), ApiError> {
    let name = &p.service;
    if name.is_empty() {
        return Err(ApiError::bad_request("bad_parameter", "give the log's name: ?service=NAME"));
    }
    match app.hub.files_of(name) {
        Some(files) => Ok((name.clone(), files)),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_service",
            format!("no log named \"{name}\" (logs: {})", app.hub.services().join(", ")),
        )),
    }
}

/// Bytes `start..end` of the files' concatenation.
fn read_range(files: &[(PathBuf, u64)], start: u64, end: u64) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity((end - start) as usize);
    let mut offset = 0;
    for (path, size) in files {
        let (from, to) = (start.max(offset), end.min(offset + size));
        if from < to {
            let mut f = File::open(path)?;
            f.seek(SeekFrom::Start(from - offset))?;
            f.take(to - from).read_to_end(&mut out)?;
        }
        offset += size;
    }
    Ok(out)
}

/// A line of a service's log file: `<RFC 3339 time> <stream> <text>`.
fn parse_file_line(line: &str) -> (Option<u64>, &str, &str) {
    let mut parts = line.splitn(3, ' ');
    let (time, stream, text) = (parts.next().unwrap_or(""), parts.next(), parts.next());
    match (humantime::parse_rfc3339_weak(time), stream.and_then(Stream::parse), text) {
        (Ok(t), Some(s), Some(text)) => {
            let ms = t.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
            (Some(ms), s.as_str(), text)
        }
        _ => (None, "stdout", line),
    }
}

pub async fn history(State(app): State<Arc<LogsApp>>, Params(p): Params<SourceParams>) -> Result<Response, ApiError> {
    let (name, files) = source(&app, &p)?;
    let end = p.end;
    let limit = p.limit.unwrap_or(1000).clamp(1, MAX_LIMIT);
    let raw = app.hub.is_file_source(&name);
    let answer = tokio::task::spawn_blocking(move || -> std::io::Result<String> {
        let sized: Vec<(PathBuf, u64)> =
            files.into_iter().filter_map(|p| Some((p.clone(), p.metadata().ok()?.len()))).collect();
        let size: u64 = sized.iter().map(|(_, s)| s).sum();
        let end = end.unwrap_or(size).min(size);
        // Read backwards in growing windows until `limit` whole lines are in hand.
        let mut window = 64 * 1024u64;
        let (start, text) = loop {
            let start = end.saturating_sub(window);
            let bytes = read_range(&sized, start, end)?;
            let newlines = memchr::memchr_iter(b'\n', &bytes).count();
            if start == 0 || newlines > limit || window >= 64 << 20 {
                // Drop a partial first line, unless it starts the log.
                let skip = if start == 0 { 0 } else { memchr::memchr(b'\n', &bytes).map_or(bytes.len(), |i| i + 1) };
                break (start + skip as u64, String::from_utf8_lossy(&bytes[skip..]).into_owned());
            }
            window *= 4;
        };
        let all: Vec<&str> = text.lines().collect();
        let keep = all.len().saturating_sub(limit);
        let dropped: usize = all[..keep].iter().map(|l| l.len() + 1).sum();
        let mut out = String::from("{\"lines\":[");
        for (i, line) in all[keep..].iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let (time, stream, text) = if raw { (None, "stdout", *line) } else { parse_file_line(line) };
            push_line(&mut out, None, time, &name, stream, text);
            out.push(']');
        }
        out.push_str(&format!("],\"start\":{},\"size\":{size}}}", start + dropped as u64));
        Ok(out)
    })
    .await;
    match answer {
        Ok(Ok(body)) => Ok(json_response(body)),
        _ => Err(internal("the log files could not be read")),
    }
}

pub async fn download(State(app): State<Arc<LogsApp>>, Params(p): Params<SourceParams>) -> Result<Response, ApiError> {
    let (name, files) = source(&app, &p)?;
    // Read by a blocking task, handed over in 64 KiB chunks: constant memory, first byte at once.
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(4);
    tokio::task::spawn_blocking(move || {
        for path in files {
            let Ok(mut f) = File::open(&path) else { continue };
            loop {
                let mut buf = vec![0u8; 64 * 1024];
                match f.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        buf.truncate(n);
                        if tx.blocking_send(Ok(Bytes::from(buf))).is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        let _ = tx.blocking_send(Err(e));
                        return;
                    }
                }
            }
        }
    });
    let body = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|chunk| (chunk, rx)) });
    let file_name: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect();
    Ok((
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8".to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{}.log\"", file_name.trim_matches('_'))),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        Body::from_stream(body),
    )
        .into_response())
}

pub async fn status(State(app): State<Arc<LogsApp>>, headers: HeaderMap) -> Response {
    let shell = (app.shell)(&headers);
    let host = headers
        .get("x-forwarded-host")
        .or_else(|| headers.get(header::HOST))
        .and_then(|v| v.to_str().ok())
        .unwrap_or("localhost");
    let scheme = if crate::http::headers::is_https(&headers) { "https" } else { "http" };
    let links: Vec<serde_json::Value> = shell
        .links
        .iter()
        .map(|l| {
            // This port: the address the browser used (unless that was a tunnel's, listed below).
            let here = format!("{scheme}://{host}");
            let url = if l.here { (!l.tunnels.contains(&here)).then(|| format!("{here}/")) } else { l.direct.clone() };
            json!({ "name": l.name, "port": l.port, "url": url, "tunnels": l.tunnels })
        })
        .collect();
    let machine = app.machine.get(&app.workspace).await;
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let vast = match (env("CONTAINER_ID"), env("PUBLIC_IPADDR"), env("VAST_CONTAINERLABEL")) {
        (None, None, None) => serde_json::Value::Null,
        (id, ip, label) => json!({
            "container_id": id.or(label),
            "public_ip": ip,
            "gpu_count": env("GPU_COUNT"),
        }),
    };
    let body = json!({
        "instance": app.instance,
        "now_ms": std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64),
        "gpubox": {
            "version": env!("CARGO_PKG_VERSION"),
            "pid": std::process::id(),
            "uptime_s": app.started.elapsed().as_secs(),
        },
        "services": app.sup.status(),
        "machine": machine,
        "links": links,
        "vast": vast,
        "tls": app.tls.as_ref().map(|(source, fingerprint)| json!({ "source": source, "fingerprint": fingerprint })),
        "tunnel_problem": app.tunnels.as_ref().and_then(|t| t.problem()),
    });
    json_response(body.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_lines_parse_and_odd_lines_pass_whole() {
        let (t, s, text) = parse_file_line("2026-11-28T04:51:55.768Z stderr oops: a b");
        assert_eq!((t.is_some(), s, text), (true, "stderr", "oops: a b"));
        assert_eq!(parse_file_line("just text"), (None, "stdout", "just text"));
    }

    #[test]
    fn line_json_escapes_text() {
        let mut out = String::new();
        push_line(&mut out, Some(3), None, "svc", "stdout", "a \"quoted\" <b>\n");
        assert_eq!(out, r#"[3,null,"svc","stdout","a \"quoted\" <b>\n""#);
    }
}
