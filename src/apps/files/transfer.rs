//! Bytes in and out: downloads (with one byte range), saves, archives made while they are sent,
//! and the buffer pool and file streaming they share with WebDAV.

use std::io::{Read, Seek, SeekFrom};
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::body::channel_body;
use super::fs::{self, clean, FsError};
use super::{archive, blocking, body, FilesApp, PathQuery};
use crate::http::{ApiError, Context, Params};

/// A content type for viewing in the page; HTML and SVG are never served as such (a page from
/// the workspace must not run script under this origin).
pub(super) fn content_type(name: &str) -> &'static str {
    let ext = name.rsplit('.').next().unwrap_or("").to_ascii_lowercase();
    match ext.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "avif" => "image/avif",
        "mp4" => "video/mp4",
        "webm" => "video/webm",
        "mp3" => "audio/mpeg",
        "wav" => "audio/wav",
        "ogg" => "audio/ogg",
        "flac" => "audio/flac",
        "json" => "application/json",
        "pdf" => "application/pdf",
        "txt" | "md" | "py" | "sh" | "toml" | "yaml" | "yml" | "log" | "csv" | "ini" | "cfg" | "js" | "ts" | "css"
        | "html" | "htm" | "svg" | "xml" | "rs" | "c" | "h" | "cpp" | "go" | "java" | "ipynb" => {
            "text/plain; charset=utf-8"
        }
        _ => "application/octet-stream",
    }
}

/// One byte range of `len` bytes from a `Range` header: `bytes=a-b`, `a-` or `-n`. `Err` when it
/// cannot be satisfied; `None` when there is none (or several: the whole file is sent).
pub(super) fn parse_range(value: Option<&str>, len: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(v) = value.and_then(|v| v.trim().strip_prefix("bytes=")) else { return Ok(None) };
    if v.contains(',') {
        return Ok(None);
    }
    let (a, b) = v.split_once('-').ok_or(())?;
    let (start, end) = match (a.trim(), b.trim()) {
        ("", n) => {
            let n: u64 = n.parse().map_err(|_| ())?;
            if n == 0 {
                return Err(());
            }
            (len.saturating_sub(n), len.saturating_sub(1))
        }
        (a, "") => (a.parse().map_err(|_| ())?, len.saturating_sub(1)),
        (a, b) => (a.parse().map_err(|_| ())?, b.parse::<u64>().map_err(|_| ())?.min(len.saturating_sub(1))),
    };
    if start >= len || start > end {
        return Err(());
    }
    Ok(Some((start, end)))
}

/// Buffers for response bodies that come back once hyper has sent them. A fresh allocation per
/// piece is fresh pages from the kernel each time (zeroed, faulted in, unmapped again with a TLB
/// shootdown across cores): on the benchmark's VM that halved the speed of a download.
pub(crate) struct Pool {
    back: std::sync::mpsc::Sender<Vec<u8>>,
    free: std::sync::mpsc::Receiver<Vec<u8>>,
}

/// A buffer on its way to the client; dropped, it goes back to its pool.
pub(super) struct Lent {
    buf: Vec<u8>,
    back: std::sync::mpsc::Sender<Vec<u8>>,
}

impl AsRef<[u8]> for Lent {
    fn as_ref(&self) -> &[u8] {
        &self.buf
    }
}

impl Drop for Lent {
    fn drop(&mut self) {
        // Fails only when the pool is gone: the buffer is freed then.
        let _ = self.back.send(std::mem::take(&mut self.buf));
    }
}

impl Pool {
    pub(crate) fn new() -> Pool {
        let (back, free) = std::sync::mpsc::channel();
        Pool { back, free }
    }

    /// A buffer that was sent before, or a new one; its contents are left as they are.
    pub(crate) fn take(&self) -> Vec<u8> {
        self.free.try_recv().unwrap_or_default()
    }

    pub(crate) fn bytes(&self, buf: Vec<u8>) -> Bytes {
        Bytes::from_owner(Lent { buf, back: self.back.clone() })
    }
}

/// Streams `len` bytes of `file` from `start` through a channel, in 256 KiB reads.
pub(super) fn stream_file(mut file: std::fs::File, start: u64, len: u64) -> Body {
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(4);
    tokio::task::spawn_blocking(move || {
        if let Err(e) = file.seek(SeekFrom::Start(start)) {
            let _ = tx.blocking_send(Err(e));
            return;
        }
        let pool = Pool::new();
        let mut left = len;
        while left > 0 {
            let mut buf = pool.take();
            // Only a part never written before is zeroed (a new buffer, or after a short read).
            buf.resize((256 * 1024).min(left as usize), 0);
            match file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    buf.truncate(n);
                    left -= n as u64;
                    if tx.blocking_send(Ok(pool.bytes(buf))).is_err() {
                        return;
                    }
                    // A download that moves is someone using the instance (the idle stop); a
                    // paused one is not.
                    crate::alerts::idle::ACTIVITY.touch();
                }
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
            }
        }
    });
    channel_body(rx)
}

pub(super) fn disposition(kind: &str, name: &str) -> HeaderValue {
    let ascii: String =
        name.chars().map(|c| if c.is_ascii_graphic() && c != '"' && c != '\\' { c } else { '_' }).collect();
    let v = format!("{kind}; filename=\"{ascii}\"; filename*=UTF-8''{}", crate::http::coding::encode(name));
    HeaderValue::from_str(&v).unwrap_or(HeaderValue::from_static("attachment"))
}

#[derive(serde::Deserialize)]
pub(super) struct DownloadQuery {
    #[serde(default)]
    path: String,
    /// `1`: to be shown in the page rather than saved.
    #[serde(default)]
    inline: String,
}

pub(super) async fn download(
    State(app): State<Arc<FilesApp>>,
    headers: HeaderMap,
    Params(q): Params<DownloadQuery>,
) -> Result<Response, ApiError> {
    let rel = clean(&q.path).context("path")?;
    let inline = q.inline == "1";
    let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok()).map(str::to_string);
    let shown = rel.as_str();
    let opened = blocking(move || {
        let f = app.root.open_file(&rel)?;
        let meta = f.metadata()?;
        Ok::<_, FsError>((f, meta))
    })
    .await;
    let (file, meta) = opened.context(&format!("cannot read /{shown}"))?;
    let name = shown.rsplit('/').next().unwrap_or("file").to_string();
    Ok(send_file(file, meta, &name, range.as_deref(), inline))
}

/// A file as a download (or, `inline`, to be shown): one byte range when asked, never run as a
/// page of this site whatever it holds.
pub(super) fn send_file(
    file: std::fs::File,
    meta: std::fs::Metadata,
    name: &str,
    range: Option<&str>,
    inline: bool,
) -> Response {
    let len = meta.len();
    let (status, start, end) = match parse_range(range, len) {
        Ok(Some((s, e))) => (StatusCode::PARTIAL_CONTENT, s, e),
        Ok(None) => (StatusCode::OK, 0, len.saturating_sub(1)),
        Err(()) => {
            let mut r = ApiError::new(StatusCode::RANGE_NOT_SATISFIABLE, "bad_range", "that range is not in the file")
                .into_response();
            r.headers_mut()
                .insert(header::CONTENT_RANGE, HeaderValue::from_str(&format!("bytes */{len}")).expect("ascii"));
            return r;
        }
    };
    let count = if len == 0 { 0 } else { end - start + 1 };
    let mut resp = Response::new(stream_file(file, start, count));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(count));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if status == StatusCode::PARTIAL_CONTENT {
        h.insert(header::CONTENT_RANGE, HeaderValue::from_str(&format!("bytes {start}-{end}/{len}")).expect("ascii"));
    }
    if let Ok(m) = meta.modified() {
        h.insert(header::LAST_MODIFIED, HeaderValue::from_str(&httpdate::fmt_http_date(m)).expect("ascii"));
    }
    let kind = if inline { content_type(name) } else { "application/octet-stream" };
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    h.insert(header::CONTENT_DISPOSITION, disposition(if inline { "inline" } else { "attachment" }, name));
    // Whatever the file holds, it never runs as a page of this site.
    h.insert(
        "content-security-policy",
        HeaderValue::from_static("sandbox; default-src 'none'; img-src 'self' data:; media-src 'self'"),
    );
    h.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    resp
}

/// Saves a file (the editor's, or any client's `PUT`): the body is streamed to a temporary name
/// beside it, synced, then renamed over it, so a failed or cut save changes nothing. No size
/// limit: memory stays at one piece of about 1 MiB whatever the body's size.
pub(super) async fn save(
    State(app): State<Arc<FilesApp>>,
    Params(q): Params<PathQuery>,
    mut body: Body,
) -> Result<Response, ApiError> {
    let rel = q.rel()?;
    let shown = rel.as_str().to_string();
    let Some(name) = rel.name() else {
        return Err(ApiError::from(FsError::BadPath("give a file".into())).context("cannot save"));
    };
    let failed = format!("cannot save /{shown} (nothing was changed)");
    let tag = crate::random::hex(6).map_err(FsError::Io).context(&failed)?;
    let tmp_name = fs::temp_name(name, &format!("save-{tag}"));
    let tmp = rel.parent().join(&tmp_name);
    let (a, t) = (app.clone(), tmp.clone());
    let file = blocking(move || a.root.create_new(&t)).await.context(&failed)?;
    let bytes = body::save_as(&app, &mut body, file, tmp, rel, |_| {}).await.context(&failed)?;
    Ok(Json(json!({ "saved": shown, "bytes": bytes })).into_response())
}

/// `items` of the root that `owner` holds, as a tar or a ZIP made on a blocking thread while the
/// body is sent: no temporary file, constant memory.
pub(super) fn archive_body<R: Send + 'static>(
    owner: R,
    root: fn(&R) -> &super::fs::Root,
    items: Vec<archive::Item>,
    tar: bool,
) -> Body {
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(4);
    tokio::task::spawn_blocking(move || {
        let root = root(&owner);
        let entries = archive::Walk::new(root, items);
        let pool = Pool::new();
        let out = archive::ChannelWriter { tx: tx.clone(), buf: pool.take(), pool };
        let result = if tar { archive::tar(root, entries, out) } else { archive::zip(root, entries, out) };
        if let Err(e) = result {
            let _ = tx.blocking_send(Err(e));
        }
    });
    channel_body(rx)
}

#[derive(serde::Deserialize)]
pub(super) struct ArchiveQuery {
    /// Workspace paths separated by newlines.
    #[serde(default)]
    paths: String,
    /// `tar`, or a ZIP file.
    #[serde(default)]
    format: String,
}

pub(super) async fn archive_download(
    State(app): State<Arc<FilesApp>>,
    Params(q): Params<ArchiveQuery>,
) -> Result<Response, ApiError> {
    let mut items = Vec::new();
    for p in q.paths.split('\n').filter(|s| !s.is_empty()) {
        let rel = clean(p).context("paths")?;
        let name = rel.name().unwrap_or("workspace").to_string();
        items.push(archive::Item { rel, name });
    }
    if items.is_empty() {
        return Err(ApiError::bad_request("bad_path", "give what to pack: ?paths=a (several separated by newlines)"));
    }
    let tar = q.format == "tar";
    let base = if items.len() == 1 { items[0].name.clone() } else { "selection".into() };
    let (kind, ext) = if tar { ("application/x-tar", "tar") } else { ("application/zip", "zip") };
    let mut resp = Response::new(archive_body(app, |a| &a.root, items, tar));
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    resp.headers_mut().insert(header::CONTENT_DISPOSITION, disposition("attachment", &format!("{base}.{ext}")));
    Ok(resp)
}
