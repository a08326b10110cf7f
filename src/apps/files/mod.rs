//! The file manager (port 7010), rooted at the workspace. Every path goes through `fs.rs`, which
//! resolves it beneath an open handle on the root. The API is in docs/files.md.

mod archive;
mod body;
mod dav;
pub mod fs;
mod jobs;
#[cfg(test)]
mod props;
mod tus;

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::ShellFn;
use crate::http::api_error;
use crate::http::RouteSpec;
use fs::{clean, FsError, Rel, Root};

pub struct FilesApp {
    root: Root,
    shell: ShellFn,
    uploads: tus::Uploads,
    jobs: jobs::Jobs,
    /// gpubox's private scratch area for downloads in progress.
    scratch: PathBuf,
}

const fn route(method: &'static str, path: &'static str, example: &'static str) -> RouteSpec {
    RouteSpec { method, path, example, public: false, websocket: false, owner: "files" }
}

/// Every route of the app, for the gateway's table (and the tests that walk it).
pub const ROUTES: &[RouteSpec] = &[
    route("GET", "/", "/"),
    route("GET", "/api/list", "/api/list?path="),
    route("GET", "/api/file", "/api/file?path=none"),
    route("PUT", "/api/file", "/api/file?path=none"),
    route("GET", "/api/archive", "/api/archive?paths=none"),
    route("GET", "/api/sha256", "/api/sha256?path=none"),
    route("GET", "/api/search", "/api/search?path=&q=none"),
    route("GET", "/api/space", "/api/space"),
    route("POST", "/api/mkdir", "/api/mkdir"),
    route("POST", "/api/rename", "/api/rename"),
    route("POST", "/api/delete", "/api/delete"),
    route("GET", "/api/jobs", "/api/jobs"),
    route("POST", "/api/jobs", "/api/jobs"),
    route("DELETE", "/api/jobs/{id}", "/api/jobs/0"),
    route("ANY", "/dav", "/dav"),
    route("ANY", "/dav/{*path}", "/dav/none"),
    route("ANY", "/api/tus", "/api/tus"),
    route("ANY", "/api/tus/{id}", "/api/tus/none"),
];

impl FilesApp {
    pub fn new(workspace: PathBuf, state_dir: PathBuf, shell: ShellFn) -> std::io::Result<Arc<FilesApp>> {
        let root = Root::open(&workspace, &state_dir)?;
        let uploads = tus::Uploads::new(state_dir.join("uploads"));
        Ok(Arc::new(FilesApp { root, shell, uploads, jobs: jobs::Jobs::default(), scratch: state_dir.join("fetch") }))
    }
}

pub fn router(app: Arc<FilesApp>) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/api/list", get(list))
        .route("/api/file", get(download).put(save))
        .route("/api/archive", get(archive_download))
        .route("/api/sha256", get(sha256))
        .route("/api/search", get(search))
        .route("/api/space", get(space))
        .route("/api/mkdir", post(mkdir))
        .route("/api/rename", post(rename))
        .route("/api/delete", post(delete))
        .route("/api/jobs", get(jobs_list).post(jobs_start))
        .route("/api/jobs/{id}", axum::routing::delete(jobs_cancel))
        .route("/dav", axum::routing::any(dav::handle))
        .route("/dav/", axum::routing::any(dav::handle))
        .route("/dav/{*path}", axum::routing::any(dav::handle))
        .route("/api/tus", axum::routing::any(tus::collection))
        .route("/api/tus/{id}", axum::routing::any(tus::upload))
        .with_state(app)
}

/// The error answer for a file-system problem, mapped to a status in one place.
fn fs_error(e: FsError, what: &str) -> Response {
    let (status, code) = match &e {
        FsError::BadPath(_) => (StatusCode::BAD_REQUEST, "bad_path"),
        FsError::NotFound => (StatusCode::NOT_FOUND, "not_found"),
        FsError::Exists => (StatusCode::CONFLICT, "exists"),
        FsError::Outside => (StatusCode::FORBIDDEN, "outside"),
        FsError::NotAFile => (StatusCode::BAD_REQUEST, "not_a_file"),
        FsError::NotADir => (StatusCode::BAD_REQUEST, "not_a_folder"),
        FsError::NotEmpty => (StatusCode::CONFLICT, "not_empty"),
        FsError::Denied => (StatusCode::FORBIDDEN, "denied"),
        FsError::NoSpace => (StatusCode::INSUFFICIENT_STORAGE, "disk_full"),
        FsError::Io(_) => (StatusCode::INTERNAL_SERVER_ERROR, "io"),
    };
    api_error(status, code, &format!("{what}: {e}"))
}

type Args = Query<HashMap<String, String>>;

fn arg_path(args: &HashMap<String, String>, key: &str) -> Result<Rel, FsError> {
    clean(args.get(key).map_or("", String::as_str))
}

async fn page(State(app): State<Arc<FilesApp>>, headers: HeaderMap) -> Html<String> {
    let shell = (app.shell)(&headers);
    Html(shell.page(
        "Files",
        "<link rel=\"stylesheet\" href=\"/.gpubox/assets/files.css\"><div id=\"files-app\"></div>\
<script src=\"/.gpubox/assets/files.js\"></script>",
    ))
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("a blocking task panicked")
}

async fn list(State(app): State<Arc<FilesApp>>, Query(args): Args) -> Response {
    let rel = match arg_path(&args, "path") {
        Ok(r) => r,
        Err(e) => return fs_error(e, "path"),
    };
    let shown = rel.as_str();
    blocking(move || match app.root.list(&rel) {
        Ok(entries) => {
            let (free, total) = app.root.space().unwrap_or((0, 0));
            // Serialized straight from the entries: through `json!` a folder of 100,000 files
            // became a tree of 100,000 maps first (gpubox peaked at 194 MiB instead of 29, and
            // the allocator kept most of it) and took twice as long.
            #[derive(serde::Serialize)]
            struct Listing<'a> {
                path: &'a str,
                entries: &'a [fs::Entry],
                free: u64,
                total: u64,
            }
            Json(Listing { path: &shown, entries: &entries, free, total }).into_response()
        }
        Err(e) => fs_error(e, &format!("cannot list /{shown}")),
    })
    .await
}

async fn space(State(app): State<Arc<FilesApp>>) -> Response {
    let (free, total) = app.root.space().unwrap_or((0, 0));
    Json(json!({ "free": free, "total": total, "used": total.saturating_sub(free) })).into_response()
}

/// A content type for viewing in the page; HTML and SVG are never served as such (a page from
/// the workspace must not run script under this origin).
fn content_type(name: &str) -> &'static str {
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
struct Lent {
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
                }
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
            }
        }
    });
    Body::from_stream(futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|c| (c, rx)) }))
}

fn disposition(kind: &str, name: &str) -> HeaderValue {
    let ascii: String =
        name.chars().map(|c| if c.is_ascii_graphic() && c != '"' && c != '\\' { c } else { '_' }).collect();
    let v = format!("{kind}; filename=\"{ascii}\"; filename*=UTF-8''{}", crate::http::coding::encode(name));
    HeaderValue::from_str(&v).unwrap_or(HeaderValue::from_static("attachment"))
}

async fn download(State(app): State<Arc<FilesApp>>, headers: HeaderMap, Query(args): Args) -> Response {
    let rel = match arg_path(&args, "path") {
        Ok(r) => r,
        Err(e) => return fs_error(e, "path"),
    };
    let inline = args.get("inline").is_some_and(|v| v == "1");
    let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok()).map(str::to_string);
    let shown = rel.as_str();
    let opened = blocking(move || {
        let f = app.root.open_file(&rel)?;
        let meta = f.metadata()?;
        Ok::<_, FsError>((f, meta))
    })
    .await;
    let (file, meta) = match opened {
        Ok(x) => x,
        Err(e) => return fs_error(e, &format!("cannot read /{shown}")),
    };
    let len = meta.len();
    let name = shown.rsplit('/').next().unwrap_or("file").to_string();
    let (status, start, end) = match parse_range(range.as_deref(), len) {
        Ok(Some((s, e))) => (StatusCode::PARTIAL_CONTENT, s, e),
        Ok(None) => (StatusCode::OK, 0, len.saturating_sub(1)),
        Err(()) => {
            let mut r = api_error(StatusCode::RANGE_NOT_SATISFIABLE, "bad_range", "that range is not in the file");
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
        h.insert(
            header::LAST_MODIFIED,
            HeaderValue::from_str(&humantime::format_rfc3339_seconds(m).to_string()).expect("ascii"),
        );
    }
    let kind = if inline { content_type(&name) } else { "application/octet-stream" };
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    h.insert(header::CONTENT_DISPOSITION, disposition(if inline { "inline" } else { "attachment" }, &name));
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
async fn save(State(app): State<Arc<FilesApp>>, Query(args): Args, mut body: Body) -> Response {
    let rel = match arg_path(&args, "path") {
        Ok(r) => r,
        Err(e) => return fs_error(e, "path"),
    };
    let shown = rel.as_str().to_string();
    let Some(name) = rel.name() else { return fs_error(FsError::BadPath("give a file".into()), "cannot save") };
    let mut tmp_bytes = [0u8; 6];
    let _ = getrandom::fill(&mut tmp_bytes);
    let tmp_name =
        fs::temp_name(name, &format!("save-{}", tmp_bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()));
    let tmp = rel.parent().join(&tmp_name);
    let (a, t) = (app.clone(), tmp.clone());
    let file = match blocking(move || a.root.create_new(&t)).await {
        Ok(f) => f,
        Err(e) => return fs_error(e, &format!("cannot save /{shown} (nothing was changed)")),
    };
    match body::save_as(&app, &mut body, file, tmp, rel, |_| {}).await {
        Ok(bytes) => Json(json!({ "saved": shown, "bytes": bytes })).into_response(),
        Err(e) => fs_error(e, &format!("cannot save /{shown} (nothing was changed)")),
    }
}

#[derive(Deserialize)]
struct PathBody {
    path: String,
}

async fn mkdir(State(app): State<Arc<FilesApp>>, Json(b): Json<PathBody>) -> Response {
    let rel = match clean(&b.path) {
        Ok(r) => r,
        Err(e) => return fs_error(e, "path"),
    };
    let shown = rel.as_str();
    blocking(move || match app.root.mkdir(&rel) {
        Ok(()) => (StatusCode::CREATED, Json(json!({ "created": shown }))).into_response(),
        Err(e) => fs_error(e, &format!("cannot create /{shown}")),
    })
    .await
}

#[derive(Deserialize)]
struct RenameBody {
    from: String,
    to: String,
    #[serde(default)]
    overwrite: bool,
}

async fn rename(State(app): State<Arc<FilesApp>>, Json(b): Json<RenameBody>) -> Response {
    let (from, to) = match (clean(&b.from), clean(&b.to)) {
        (Ok(f), Ok(t)) => (f, t),
        (Err(e), _) => return fs_error(e, "from"),
        (_, Err(e)) => return fs_error(e, "to"),
    };
    let shown = format!("/{} → /{}", from.as_str(), to.as_str());
    blocking(move || match app.root.rename(&from, &to, b.overwrite) {
        Ok(()) => Json(json!({ "renamed": from.as_str(), "to": to.as_str() })).into_response(),
        Err(e) => fs_error(e, &format!("cannot move {shown}")),
    })
    .await
}

#[derive(Deserialize)]
struct DeleteBody {
    paths: Vec<String>,
}

/// Deletes files and folders, permanently (there is no trash: the disk cannot grow).
async fn delete(State(app): State<Arc<FilesApp>>, Json(b): Json<DeleteBody>) -> Response {
    let rels: Result<Vec<Rel>, _> = b.paths.iter().map(|p| clean(p)).collect();
    let rels = match rels {
        Ok(r) => r,
        Err(e) => return fs_error(e, "paths"),
    };
    if rels.iter().any(Rel::is_root) {
        return fs_error(FsError::BadPath("the workspace itself cannot be deleted".into()), "paths");
    }
    blocking(move || {
        for rel in &rels {
            if let Err(e) = app.root.remove(rel) {
                return fs_error(e, &format!("cannot delete /{}", rel.as_str()));
            }
        }
        Json(json!({ "deleted": rels.iter().map(Rel::as_str).collect::<Vec<_>>() })).into_response()
    })
    .await
}

async fn archive_download(State(app): State<Arc<FilesApp>>, Query(args): Args) -> Response {
    let paths: Vec<&str> = args.get("paths").map_or(vec![], |p| p.split('\n').filter(|s| !s.is_empty()).collect());
    let mut items = Vec::new();
    for p in &paths {
        match clean(p) {
            Ok(rel) => {
                let name = rel.name().unwrap_or("workspace").to_string();
                items.push(archive::Item { rel, name });
            }
            Err(e) => return fs_error(e, "paths"),
        }
    }
    if items.is_empty() {
        return api_error(
            StatusCode::BAD_REQUEST,
            "bad_path",
            "give what to pack: ?paths=a (several separated by newlines)",
        );
    }
    let tar = args.get("format").is_some_and(|f| f == "tar");
    let base = if items.len() == 1 { items[0].name.clone() } else { "selection".into() };
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(4);
    tokio::task::spawn_blocking(move || {
        let entries = archive::Walk::new(&app.root, items);
        let pool = Pool::new();
        let out = archive::ChannelWriter { tx: tx.clone(), buf: pool.take(), pool };
        let result = if tar { archive::tar(&app.root, entries, out) } else { archive::zip(&app.root, entries, out) };
        if let Err(e) = result {
            let _ = tx.blocking_send(Err(e));
        }
    });
    let body =
        Body::from_stream(futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|c| (c, rx)) }));
    let (kind, ext) = if tar { ("application/x-tar", "tar") } else { ("application/zip", "zip") };
    let mut resp = Response::new(body);
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    resp.headers_mut().insert(header::CONTENT_DISPOSITION, disposition("attachment", &format!("{base}.{ext}")));
    resp
}

async fn sha256(State(app): State<Arc<FilesApp>>, Query(args): Args) -> Response {
    let rel = match arg_path(&args, "path") {
        Ok(r) => r,
        Err(e) => return fs_error(e, "path"),
    };
    let shown = rel.as_str();
    blocking(move || {
        let result = (|| {
            let mut f = app.root.open_file(&rel)?;
            let mut h = <sha2::Sha256 as sha2::Digest>::new();
            let mut buf = vec![0u8; 1 << 20];
            let mut n_total = 0u64;
            loop {
                let n = f.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                sha2::Digest::update(&mut h, &buf[..n]);
                n_total += n as u64;
            }
            let hex: String = sha2::Digest::finalize(h).iter().map(|b| format!("{b:02x}")).collect();
            Ok::<_, FsError>((hex, n_total))
        })();
        match result {
            Ok((hex, bytes)) => Json(json!({ "path": shown, "sha256": hex, "bytes": bytes })).into_response(),
            Err(e) => fs_error(e, &format!("cannot read /{shown}")),
        }
    })
    .await
}

/// Names containing `q` (any case) below `path`, as JSON lines while they are found.
async fn search(State(app): State<Arc<FilesApp>>, Query(args): Args) -> Response {
    let rel = match arg_path(&args, "path") {
        Ok(r) => r,
        Err(e) => return fs_error(e, "path"),
    };
    let q = args.get("q").map(|q| q.to_lowercase()).unwrap_or_default();
    if q.is_empty() {
        return api_error(StatusCode::BAD_REQUEST, "bad_query", "give something to look for: ?q=");
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(16);
    tokio::task::spawn_blocking(move || {
        let mut stack = vec![rel];
        let mut found = 0usize;
        while let Some(dir) = stack.pop() {
            let Ok(entries) = app.root.list(&dir) else { continue };
            let mut lines = String::new();
            for e in entries {
                let path = dir.join(&e.name);
                if e.name.to_lowercase().contains(&q) {
                    found += 1;
                    lines.push_str(
                        &json!({ "path": path.as_str(), "kind": e.kind, "size": e.size, "modified": e.modified })
                            .to_string(),
                    );
                    lines.push('\n');
                }
                if e.kind == "dir" && !e.symlink {
                    stack.push(path);
                }
            }
            if !lines.is_empty() && tx.blocking_send(Ok(Bytes::from(lines))).is_err() {
                return;
            }
            if found >= 10_000 {
                break;
            }
        }
    });
    let body =
        Body::from_stream(futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|c| (c, rx)) }));
    let mut resp = Response::new(body);
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-ndjson"));
    resp
}

async fn jobs_list(State(app): State<Arc<FilesApp>>) -> Response {
    Json(json!({ "jobs": app.jobs.list() })).into_response()
}

async fn jobs_cancel(State(app): State<Arc<FilesApp>>, axum::extract::Path(id): axum::extract::Path<u64>) -> Response {
    if app.jobs.cancel(id) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        api_error(StatusCode::NOT_FOUND, "no_job", "no such job")
    }
}

#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
enum NewJob {
    Copy { paths: Vec<String>, to: String },
    Extract { path: String, to: Option<String> },
    Fetch { url: String, to: String },
}

/// Starts a long operation; answers 202 with its id at once.
async fn jobs_start(State(app): State<Arc<FilesApp>>, Json(j): Json<NewJob>) -> Response {
    let a = app.clone();
    let id = match j {
        NewJob::Copy { paths, to } => {
            let sources: Result<Vec<Rel>, _> = paths.iter().map(|p| clean(p)).collect();
            let (sources, to) = match (sources, clean(&to)) {
                (Ok(s), Ok(t)) => (s, t),
                (Err(e), _) | (_, Err(e)) => return fs_error(e, "copy"),
            };
            let label = format!("copy {} item(s) to /{}", sources.len(), to.as_str());
            app.jobs.start("copy", label, move |job| jobs::copy(&a.root, job, &sources, &to))
        }
        NewJob::Extract { path, to } => {
            let archive = match clean(&path) {
                Ok(r) => r,
                Err(e) => return fs_error(e, "path"),
            };
            // By default into a folder named after the archive, beside it.
            let default = {
                let name = archive.name().unwrap_or("archive");
                let stem = [".tar.gz", ".tar.zst", ".tgz", ".tzst", ".zip", ".tar"]
                    .iter()
                    .find_map(|e| name.to_ascii_lowercase().ends_with(e).then(|| &name[..name.len() - e.len()]))
                    .unwrap_or(name);
                archive.parent().join(stem)
            };
            let into = match to.map(|t| clean(&t)).transpose() {
                Ok(t) => t.unwrap_or(default),
                Err(e) => return fs_error(e, "to"),
            };
            let label = format!("extract /{} into /{}", archive.as_str(), into.as_str());
            app.jobs.start("extract", label, move |job| jobs::extract(&a.root, job, &archive, &into))
        }
        NewJob::Fetch { url, to } => {
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                return api_error(StatusCode::BAD_REQUEST, "bad_url", "give an http(s) URL");
            }
            let dir = match clean(&to) {
                Ok(d) => d,
                Err(e) => return fs_error(e, "to"),
            };
            let label = format!("fetch {url} into /{}", dir.as_str());
            app.jobs.start("fetch", label, move |job| jobs::fetch(&a.root, job, &a.scratch, &url, &dir))
        }
    };
    (StatusCode::ACCEPTED, Json(json!({ "id": id }))).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range(Some("bytes=0-9"), 100), Ok(Some((0, 9))));
        assert_eq!(parse_range(Some("bytes=90-"), 100), Ok(Some((90, 99))));
        assert_eq!(parse_range(Some("bytes=-10"), 100), Ok(Some((90, 99))));
        assert_eq!(parse_range(Some("bytes=50-1000"), 100), Ok(Some((50, 99))));
        assert_eq!(parse_range(Some("bytes=100-"), 100), Err(()));
        assert_eq!(parse_range(Some("bytes=0-1,5-6"), 100), Ok(None));
        assert_eq!(parse_range(None, 100), Ok(None));
        assert_eq!(parse_range(Some("bytes=x-"), 100), Err(()));
    }
}
