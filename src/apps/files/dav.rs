//! WebDAV (RFC 4918, class 1 and 2) under `/dav/` on the file manager's port, with the same
//! login, so that rclone, macOS Finder or Windows Explorer can mount the workspace. Every path goes
//! through `fs.rs` like the rest of the app.
//!
//! Dead properties (PROPPATCH) are kept in extended attributes of the file itself
//! (`user.gpubox.dav.*`, each holding the property's XML), so they move with MOVE, are copied by
//! COPY and go with DELETE. Locks (LOCK/UNLOCK) are granted and remembered for their timeout but
//! not enforced: clients such as Finder need them to mount read-write; one person's workspace has
//! no competing writers to protect against.

use std::collections::HashMap;
use std::os::fd::AsRawFd;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use sha2::Digest;

use super::fs::{clean, FsError, Rel};
use super::FilesApp;

const DAV: &str = "DAV:";
const XATTR: &str = "user.gpubox.dav.";
pub const PREFIX: &str = "/dav";

// ---- a small XML tree with namespaces ------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Element(Element),
    Text(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Element {
    pub ns: Option<String>,
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub children: Vec<Node>,
}

impl Element {
    fn is(&self, ns: &str, name: &str) -> bool {
        self.ns.as_deref() == Some(ns) && self.name == name
    }

    fn elements(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|n| match n {
            Node::Element(e) => Some(e),
            _ => None,
        })
    }

    /// Serialized with an `xmlns` on every element whose namespace differs from its parent's, so
    /// that it stands on its own wherever it is put.
    pub fn to_xml(&self, out: &mut String, parent_ns: Option<&str>) {
        out.push('<');
        out.push_str(&self.name);
        if self.ns.as_deref() != parent_ns {
            out.push_str(" xmlns=\"");
            out.push_str(&escape(self.ns.as_deref().unwrap_or("")));
            out.push('"');
        }
        for (k, v) in &self.attrs {
            out.push_str(&format!(" {k}=\"{}\"", escape(v)));
        }
        if self.children.is_empty() {
            out.push_str("/>");
            return;
        }
        out.push('>');
        for c in &self.children {
            match c {
                Node::Element(e) => e.to_xml(out, self.ns.as_deref()),
                Node::Text(t) => out.push_str(&escape(t)),
            }
        }
        out.push_str(&format!("</{}>", self.name));
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Parses a document into its root element; `Err` when it is not well-formed.
pub fn parse(xml: &str) -> Result<Element, String> {
    let mut r = quick_xml::NsReader::from_str(xml);
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let ns_of = |res: ResolveResult| -> Result<Option<String>, String> {
        match res {
            ResolveResult::Bound(ns) => Ok(Some(String::from_utf8_lossy(ns.as_ref()).into_owned())),
            ResolveResult::Unbound => Ok(None),
            ResolveResult::Unknown(p) => Err(format!("unknown namespace prefix {}", String::from_utf8_lossy(&p))),
        }
    };
    loop {
        let (res, ev) = r.read_resolved_event().map_err(|e| e.to_string())?;
        match ev {
            Event::Start(_) | Event::Empty(_) if root.is_some() && stack.is_empty() => {
                return Err("more than one root element".into());
            }
            Event::Start(e) => {
                let el = element(&e, ns_of(res)?)?;
                stack.push(el);
            }
            Event::Empty(e) => {
                let el = element(&e, ns_of(res)?)?;
                match stack.last_mut() {
                    Some(p) => p.children.push(Node::Element(el)),
                    None => root = Some(el),
                }
            }
            Event::End(_) => {
                let el = stack.pop().ok_or("an end tag without a start")?;
                match stack.last_mut() {
                    Some(p) => p.children.push(Node::Element(el)),
                    None => root = Some(el),
                }
            }
            Event::Text(t) => {
                let text = t.decode().map_err(|e| e.to_string())?;
                let text = quick_xml::escape::unescape(&text).map_err(|e| e.to_string())?.into_owned();
                if let Some(p) = stack.last_mut() {
                    // Whitespace-only text is dropped later if the element has child elements.
                    if !text.is_empty() {
                        p.children.push(Node::Text(text));
                    }
                } else if !text.trim().is_empty() {
                    return Err("text outside the root element".into());
                }
            }
            Event::CData(c) => {
                if let Some(p) = stack.last_mut() {
                    p.children.push(Node::Text(String::from_utf8_lossy(&c).into_owned()));
                }
            }
            Event::GeneralRef(g) => {
                let name = String::from_utf8_lossy(&g).into_owned();
                let text = quick_xml::escape::unescape(&format!("&{name};")).map_err(|e| e.to_string())?.into_owned();
                if let Some(p) = stack.last_mut() {
                    p.children.push(Node::Text(text));
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !stack.is_empty() {
        return Err("an element is not closed".into());
    }
    let mut root = root.ok_or("no root element")?;
    merge_text(&mut root);
    Ok(root)
}

/// Adjacent text pieces (split by entity references) become one.
fn merge_text(e: &mut Element) {
    let mut merged: Vec<Node> = Vec::new();
    for c in e.children.drain(..) {
        match (merged.last_mut(), c) {
            (Some(Node::Text(a)), Node::Text(b)) => a.push_str(&b),
            (_, Node::Element(mut el)) => {
                merge_text(&mut el);
                merged.push(Node::Element(el));
            }
            (_, t) => merged.push(t),
        }
    }
    // Whitespace between elements is layout, not content.
    if merged.iter().any(|n| matches!(n, Node::Element(_))) {
        merged.retain(|n| !matches!(n, Node::Text(t) if t.trim().is_empty()));
    }
    e.children = merged;
}

fn element(e: &quick_xml::events::BytesStart, ns: Option<String>) -> Result<Element, String> {
    let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
    let mut attrs = Vec::new();
    for a in e.attributes() {
        let a = a.map_err(|e| e.to_string())?;
        let key = String::from_utf8_lossy(a.key.as_ref()).into_owned();
        if key == "xmlns" || key.starts_with("xmlns:") {
            continue;
        }
        #[allow(deprecated)]
        let v = a.unescape_value().map_err(|e| e.to_string())?.into_owned();
        attrs.push((key, v));
    }
    Ok(Element { ns, name, attrs, children: Vec::new() })
}

// ---- dead properties in extended attributes --------------------------------------------------

fn xattr_key(ns: Option<&str>, name: &str) -> String {
    let h = sha2::Sha256::digest(format!("{}\0{name}", ns.unwrap_or("")).as_bytes());
    format!("{XATTR}{}", h.iter().take(16).map(|b| format!("{b:02x}")).collect::<String>())
}

fn fd_of(app: &FilesApp, rel: &Rel) -> Result<std::fs::File, FsError> {
    app.root.open_any(rel)
}

fn cpath(s: &str) -> std::ffi::CString {
    std::ffi::CString::new(s).expect("no NUL in an attribute name")
}

fn dead_props(app: &FilesApp, rel: &Rel) -> Vec<Element> {
    let Ok(f) = fd_of(app, rel) else { return Vec::new() };
    let fd = f.as_raw_fd();
    let mut names = vec![0u8; 64 * 1024];
    // SAFETY: the buffer is valid for its length.
    let n = unsafe { libc::flistxattr(fd, names.as_mut_ptr().cast(), names.len()) };
    if n <= 0 {
        return Vec::new();
    }
    names.truncate(n as usize);
    let mut out = Vec::new();
    for name in names.split(|b| *b == 0).filter(|n| n.starts_with(XATTR.as_bytes())) {
        let key = cpath(&String::from_utf8_lossy(name));
        let mut value = vec![0u8; 64 * 1024];
        // SAFETY: the buffer is valid for its length; the name is NUL-terminated.
        let len = unsafe { libc::fgetxattr(fd, key.as_ptr(), value.as_mut_ptr().cast(), value.len()) };
        if len > 0 {
            value.truncate(len as usize);
            if let Ok(e) = parse(&String::from_utf8_lossy(&value)) {
                out.push(e);
            }
        }
    }
    out
}

fn set_dead(f: &std::fs::File, prop: &Element) -> std::io::Result<()> {
    let mut xml = String::new();
    prop.to_xml(&mut xml, Some("\u{0}"));
    let key = cpath(&xattr_key(prop.ns.as_deref(), &prop.name));
    // SAFETY: valid descriptor, NUL-terminated name, a buffer of the given length.
    let r = unsafe { libc::fsetxattr(f.as_raw_fd(), key.as_ptr(), xml.as_ptr().cast(), xml.len(), 0) };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

fn remove_dead(f: &std::fs::File, ns: Option<&str>, name: &str) {
    let key = cpath(&xattr_key(ns, name));
    // SAFETY: valid descriptor and NUL-terminated name; a missing attribute is fine.
    unsafe { libc::fremovexattr(f.as_raw_fd(), key.as_ptr()) };
}

/// Copies the dead properties of `from` to `to` (after COPY).
fn copy_dead(app: &FilesApp, from: &Rel, to: &Rel) {
    let props = dead_props(app, from);
    if props.is_empty() {
        return;
    }
    if let Ok(f) = fd_of(app, to) {
        for p in &props {
            let _ = set_dead(&f, p);
        }
    }
}

// ---- requests ---------------------------------------------------------------------------------

fn status_line(s: StatusCode) -> String {
    format!("HTTP/1.1 {} {}", s.as_u16(), s.canonical_reason().unwrap_or(""))
}

fn plain(status: StatusCode, msg: &str) -> Response {
    (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], msg.to_string()).into_response()
}

fn fs_status(e: &FsError) -> StatusCode {
    match e {
        FsError::NotFound => StatusCode::NOT_FOUND,
        FsError::Exists => StatusCode::PRECONDITION_FAILED,
        FsError::NotADir => StatusCode::CONFLICT,
        FsError::NoSpace => StatusCode::INSUFFICIENT_STORAGE,
        FsError::BadPath(_) => StatusCode::BAD_REQUEST,
        FsError::Outside | FsError::Denied => StatusCode::FORBIDDEN,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn fs_fail(e: FsError) -> Response {
    plain(fs_status(&e), &e.to_string())
}

/// The workspace path of a request path under `/dav`.
pub(super) fn rel_of(path: &str) -> Result<Rel, FsError> {
    let rest = path.strip_prefix(PREFIX).unwrap_or(path);
    if rest.contains('#') {
        // A fragment has no place in a request; acting on the path before it would be unsafe.
        return Err(FsError::BadPath("the URL contains a fragment (#)".into()));
    }
    clean(&crate::http::coding::decode_path(rest))
}

fn href(rel: &Rel, dir: bool) -> String {
    let mut s = String::from(PREFIX);
    s.push('/');
    s.push_str(&rel.0.iter().map(|c| crate::http::coding::encode(c)).collect::<Vec<_>>().join("/"));
    if dir && !rel.is_root() {
        s.push('/');
    }
    s
}

fn http_date(t: i64) -> String {
    httpdate(std::time::UNIX_EPOCH + std::time::Duration::from_secs(t.max(0) as u64))
}

fn httpdate(t: std::time::SystemTime) -> String {
    // RFC 1123, from humantime's RFC 3339.
    let s = humantime::format_rfc3339_seconds(t).to_string();
    let (date, time) = s.trim_end_matches('Z').split_once('T').unwrap_or(("1970-01-01", "00:00:00"));
    let mut d = date.split('-').map(|x| x.parse::<i64>().unwrap_or(1));
    let (y, m, day) = (d.next().unwrap_or(1970), d.next().unwrap_or(1), d.next().unwrap_or(1));
    // Zeller-like weekday (Sakamoto).
    let t_ = [0, 3, 2, 5, 0, 3, 5, 1, 4, 6, 2, 4];
    let yy = if m < 3 { y - 1 } else { y };
    let wd = (yy + yy / 4 - yy / 100 + yy / 400 + t_[(m - 1) as usize] + day) % 7;
    let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    format!("{}, {day:02} {} {y} {time} GMT", days[wd as usize], months[(m - 1) as usize])
}

/// Every WebDAV request on `/dav` and below.
pub async fn handle(State(app): State<Arc<FilesApp>>, req: Request) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let headers = req.headers().clone();
    if method == Method::OPTIONS {
        let mut r = StatusCode::OK.into_response();
        let h = r.headers_mut();
        h.insert("dav", HeaderValue::from_static("1, 2"));
        h.insert("ms-author-via", HeaderValue::from_static("DAV"));
        h.insert(
            header::ALLOW,
            HeaderValue::from_static(
                "OPTIONS, GET, HEAD, PUT, DELETE, MKCOL, COPY, MOVE, PROPFIND, PROPPATCH, LOCK, UNLOCK",
            ),
        );
        return r;
    }
    let rel = match rel_of(&path) {
        Ok(r) => r,
        Err(e) => return fs_fail(e),
    };
    if method == Method::PUT {
        return put(app, rel, req.into_body()).await;
    }
    // Every other method's body is XML or nothing: 1 MiB is plenty.
    let body = match axum::body::to_bytes(req.into_body(), 1 << 20).await {
        Ok(b) => b,
        Err(_) => return plain(StatusCode::PAYLOAD_TOO_LARGE, "the request body could not be read (more than 1 MiB?)"),
    };
    let a = app.clone();
    tokio::task::spawn_blocking(move || dispatch(&a, method.as_str(), &rel, &headers, body))
        .await
        .unwrap_or_else(|_| plain(StatusCode::INTERNAL_SERVER_ERROR, "internal error"))
}

fn dispatch(app: &FilesApp, method: &str, rel: &Rel, headers: &HeaderMap, body: Bytes) -> Response {
    match method {
        "GET" | "HEAD" => get(app, rel, method == "HEAD", headers),
        "DELETE" => match app.root.stat(rel) {
            Err(e) => fs_fail(e),
            Ok(_) if rel.is_root() => plain(StatusCode::FORBIDDEN, "the workspace itself cannot be deleted"),
            Ok(_) => match app.root.remove(rel) {
                Ok(()) => StatusCode::NO_CONTENT.into_response(),
                Err(e) => fs_fail(e),
            },
        },
        "MKCOL" => {
            if !body.is_empty() {
                return plain(StatusCode::UNSUPPORTED_MEDIA_TYPE, "MKCOL takes no body");
            }
            if app.root.stat(rel).is_ok() {
                return plain(StatusCode::METHOD_NOT_ALLOWED, "it exists already");
            }
            match app.root.mkdir(rel) {
                Ok(()) => StatusCode::CREATED.into_response(),
                Err(FsError::NotFound) | Err(FsError::NotADir) => {
                    plain(StatusCode::CONFLICT, "the parent folder does not exist")
                }
                Err(e) => fs_fail(e),
            }
        }
        "COPY" | "MOVE" => copy_move(app, rel, headers, method == "MOVE"),
        "PROPFIND" => propfind(app, rel, headers, &body),
        "PROPPATCH" => proppatch(app, rel, &body),
        "LOCK" => lock(app, rel, headers, &body),
        "UNLOCK" => StatusCode::NO_CONTENT.into_response(),
        _ => plain(StatusCode::METHOD_NOT_ALLOWED, "not a WebDAV method this server knows"),
    }
}

/// A file, whole or one byte range (`Range: bytes=…`: rclone mount and Finder read models in
/// pieces, here and there), streamed from a blocking task.
fn get(app: &FilesApp, rel: &Rel, head: bool, headers: &HeaderMap) -> Response {
    let st = match app.root.stat(rel) {
        Ok(s) => s,
        Err(e) => return fs_fail(e),
    };
    let is_dir = st.st_mode & libc::S_IFMT == libc::S_IFDIR;
    if is_dir {
        return plain(StatusCode::OK, "a folder: use PROPFIND to list it");
    }
    let f = match app.root.open_file(rel) {
        Ok(f) => f,
        Err(e) => return fs_fail(e),
    };
    let len = st.st_size as u64;
    let range = super::parse_range(headers.get(header::RANGE).and_then(|v| v.to_str().ok()), len);
    let (status, start, count) = match range {
        Ok(Some((a, b))) => (StatusCode::PARTIAL_CONTENT, a, b - a + 1),
        Ok(None) => (StatusCode::OK, 0, len),
        Err(()) => {
            let mut r = plain(StatusCode::RANGE_NOT_SATISFIABLE, "the range is outside the file");
            r.headers_mut()
                .insert(header::CONTENT_RANGE, HeaderValue::from_str(&format!("bytes */{len}")).expect("ascii"));
            return r;
        }
    };
    let body = if head { Body::empty() } else { super::stream_file(f, start, count) };
    let mut r = Response::new(body);
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(count));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if status == StatusCode::PARTIAL_CONTENT {
        let v = format!("bytes {start}-{}/{len}", start + count - 1);
        h.insert(header::CONTENT_RANGE, HeaderValue::from_str(&v).expect("ascii"));
    }
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    h.insert(header::ETAG, HeaderValue::from_str(&etag(&st)).expect("ascii"));
    h.insert(header::LAST_MODIFIED, HeaderValue::from_str(&http_date(st.st_mtime)).expect("ascii"));
    r
}

fn etag(st: &nix::sys::stat::FileStat) -> String {
    format!("\"{:x}-{:x}\"", st.st_mtime * 1_000_000_000 + st.st_mtime_nsec, st.st_size)
}

/// PUT streams the body into a temporary file beside the target, as `PUT /api/file` does
/// (body.rs: written off the serving thread in pieces), and renames it into place only when every
/// byte came: a model copied in with rclone or Finder never sits in memory (it did: a 1.5 GB PUT
/// took gpubox's RSS to 1.8 GB), and a cut upload leaves the old file as it was.
async fn put(app: Arc<FilesApp>, rel: Rel, mut body: Body) -> Response {
    if rel.is_root() {
        return plain(StatusCode::METHOD_NOT_ALLOWED, "the workspace is a folder");
    }
    let tmp = rel.parent().join(&super::fs::temp_name(rel.name().unwrap_or("file"), "dav"));
    let (a, r, t) = (app.clone(), rel.clone(), tmp.clone());
    let opened = super::blocking(move || -> Result<(bool, std::fs::File), Box<Response>> {
        let existed = match a.root.stat(&r) {
            Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFDIR => {
                return Err(Box::new(plain(StatusCode::METHOD_NOT_ALLOWED, "that is a folder")))
            }
            Ok(_) => true,
            Err(_) => false,
        };
        if a.root.stat(&r.parent()).is_err() {
            return Err(Box::new(plain(StatusCode::CONFLICT, "the parent folder does not exist")));
        }
        let _ = a.root.remove(&t);
        a.root.create_new(&t).map(|f| (existed, f)).map_err(|e| Box::new(fs_fail(e)))
    })
    .await;
    let (existed, file) = match opened {
        Ok(o) => o,
        Err(response) => return *response,
    };
    let (from, to) = (rel.clone(), tmp.clone());
    let keep_props = move |a: &FilesApp| {
        if existed {
            copy_dead(a, &from, &to);
        }
    };
    match super::body::save_as(&app, &mut body, file, tmp, rel, keep_props).await {
        Ok(_) => if existed { StatusCode::NO_CONTENT } else { StatusCode::CREATED }.into_response(),
        Err(e) => fs_fail(e),
    }
}

fn copy_move(app: &FilesApp, from: &Rel, headers: &HeaderMap, is_move: bool) -> Response {
    let Some(dest) = headers.get("destination").and_then(|v| v.to_str().ok()) else {
        return plain(StatusCode::BAD_REQUEST, "a Destination header is needed");
    };
    // An absolute URI or a path. An absolute one must name this server (RFC 4918 §9.8.4: a
    // destination elsewhere is 502); its query and fragment are no part of the name.
    let dest_path = match dest.split_once("://") {
        Some((_, rest)) => {
            let (authority, path) = rest.find('/').map_or((rest, "/"), |i| (&rest[..i], &rest[i..]));
            let here = |name: &str| {
                headers.get(name).and_then(|v| v.to_str().ok()).is_some_and(|h| h.eq_ignore_ascii_case(authority))
            };
            if !here("host") && !here("x-forwarded-host") {
                return plain(StatusCode::BAD_GATEWAY, "the destination is on another server");
            }
            path.to_string()
        }
        None => dest.to_string(),
    };
    let dest_path = dest_path.split(['?', '#']).next().unwrap_or("").to_string();
    if !dest_path.starts_with(PREFIX) {
        return plain(StatusCode::BAD_GATEWAY, "the destination is not on this server's /dav");
    }
    let to = match rel_of(&dest_path) {
        Ok(r) => r,
        Err(e) => return fs_fail(e),
    };
    let overwrite = headers.get("overwrite").and_then(|v| v.to_str().ok()).is_none_or(|v| !v.eq_ignore_ascii_case("F"));
    let src = match app.root.stat(from) {
        Ok(s) => s,
        Err(e) => return fs_fail(e),
    };
    if from == &to || from.is_root() || to.is_root() {
        return plain(StatusCode::FORBIDDEN, "source and destination are the same (or the workspace itself)");
    }
    if to.within(from) {
        return plain(StatusCode::FORBIDDEN, "a folder cannot go into itself");
    }
    if app.root.stat(&to.parent()).is_err() {
        return plain(StatusCode::CONFLICT, "the destination's folder does not exist");
    }
    // Onto a folder that holds the source: replacing it would delete the source with it.
    if from.within(&to) {
        return plain(StatusCode::FORBIDDEN, "the destination holds the source");
    }
    let dest = app.root.stat(&to).ok();
    if let (Some(_), Ok(real_from), Ok(real_to)) = (&dest, app.root.real_path(from), app.root.real_path(&to)) {
        if real_from.starts_with(&real_to) {
            return plain(StatusCode::FORBIDDEN, "the destination holds the source (through a symlink)");
        }
    }
    // The same file under another name (a symlinked folder on the way): removing the destination
    // first would remove the source.
    if dest.as_ref().is_some_and(|d| (d.st_dev, d.st_ino) == (src.st_dev, src.st_ino)) {
        return plain(StatusCode::FORBIDDEN, "source and destination are the same file (through a symlink)");
    }
    if let (Ok(real_from), Ok(real_parent)) = (app.root.real_path(from), app.root.real_path(&to.parent())) {
        if src.st_mode & libc::S_IFMT == libc::S_IFDIR && real_parent.starts_with(&real_from) {
            return plain(StatusCode::FORBIDDEN, "a folder cannot go into itself (through a symlink)");
        }
    }
    let existed = dest.is_some();
    if existed {
        if !overwrite {
            return plain(StatusCode::PRECONDITION_FAILED, "the destination exists and Overwrite is F");
        }
        if let Err(e) = app.root.remove(&to) {
            return fs_fail(e);
        }
    }
    let result = if is_move {
        app.root.rename(from, &to, false)
    } else {
        let depth0 = headers.get("depth").and_then(|v| v.to_str().ok()).is_some_and(|d| d.trim() == "0");
        copy_tree(app, from, &to, src.st_mode & libc::S_IFMT == libc::S_IFDIR, depth0)
    };
    match result {
        Ok(()) => if existed { StatusCode::NO_CONTENT } else { StatusCode::CREATED }.into_response(),
        Err(e) => fs_fail(e),
    }
}

/// Copies a file, or a folder with everything in it (the walk is made first, so a symlink inside
/// leading to the destination cannot make it endless); with `depth0` a folder alone.
fn copy_tree(app: &FilesApp, from: &Rel, to: &Rel, dir: bool, depth0: bool) -> Result<(), FsError> {
    let item = super::archive::Item { rel: from.clone(), name: String::new() };
    let plan: Vec<(String, Rel, bool)> = if dir && depth0 {
        vec![(String::new(), from.clone(), true)]
    } else {
        super::archive::Walk::new(&app.root, vec![item]).collect()
    };
    for (sub, rel, is_dir) in plan {
        // `sub` is made of names the walk listed: joined as they are (a `.gpubox` folder inside
        // the source is an ordinary folder there, which `clean` would refuse at the root).
        let dest =
            Rel(to.0.iter().cloned().chain(sub.split('/').filter(|s| !s.is_empty()).map(String::from)).collect());
        if is_dir {
            app.root.mkdir(&dest)?;
        } else {
            let mut src = app.root.open_file(&rel)?;
            let mut out = app.root.create_new(&dest)?;
            std::io::copy(&mut src, &mut out)?;
        }
        copy_dead(app, &rel, &dest);
    }
    Ok(())
}

/// The live properties of a resource, by name.
fn live(st: &nix::sys::stat::FileStat, rel: &Rel) -> Vec<(&'static str, String)> {
    let dir = st.st_mode & libc::S_IFMT == libc::S_IFDIR;
    let mut v = vec![
        ("resourcetype", if dir { "<D:collection/>".to_string() } else { String::new() }),
        ("getlastmodified", http_date(st.st_mtime)),
        (
            "creationdate",
            humantime::format_rfc3339_seconds(
                std::time::UNIX_EPOCH + std::time::Duration::from_secs(st.st_ctime.max(0) as u64),
            )
            .to_string(),
        ),
        ("displayname", escape(rel.name().unwrap_or(""))),
        ("getetag", escape(&etag(st))),
        (
            "supportedlock",
            "<D:lockentry><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockentry>"
                .into(),
        ),
        ("lockdiscovery", String::new()),
    ];
    if !dir {
        v.push(("getcontentlength", st.st_size.to_string()));
        v.push(("getcontenttype", "application/octet-stream".into()));
    }
    v
}

fn propfind(app: &FilesApp, rel: &Rel, headers: &HeaderMap, body: &[u8]) -> Response {
    let depth = headers.get("depth").and_then(|v| v.to_str().ok()).map(str::trim).unwrap_or("infinity");
    let depth = match depth {
        "0" => 0,
        "1" => 1,
        _ => return (
            StatusCode::FORBIDDEN,
            [(header::CONTENT_TYPE, "application/xml; charset=utf-8")],
            "<?xml version=\"1.0\" encoding=\"utf-8\"?><D:error xmlns:D=\"DAV:\"><D:propfind-finite-depth/></D:error>",
        )
            .into_response(),
    };
    // What is asked: everything, the names, or some properties.
    enum Want {
        All,
        Names,
        Props(Vec<(Option<String>, String)>),
    }
    let want = if body.iter().all(|b| b.is_ascii_whitespace()) {
        Want::All
    } else {
        let doc = match std::str::from_utf8(body).map_err(|e| e.to_string()).and_then(parse) {
            Ok(d) => d,
            Err(e) => return plain(StatusCode::BAD_REQUEST, &format!("the PROPFIND body is not well-formed XML: {e}")),
        };
        if !doc.is(DAV, "propfind") {
            return plain(StatusCode::BAD_REQUEST, "the body is not a DAV:propfind");
        }
        let first = doc.elements().next().cloned();
        match first {
            Some(e) if e.is(DAV, "allprop") => Want::All,
            Some(e) if e.is(DAV, "propname") => Want::Names,
            Some(e) if e.is(DAV, "prop") => Want::Props(e.elements().map(|p| (p.ns.clone(), p.name.clone())).collect()),
            _ => return plain(StatusCode::BAD_REQUEST, "propfind needs allprop, propname or prop"),
        }
    };
    let st = match app.root.stat(rel) {
        Ok(s) => s,
        Err(e) => return fs_fail(e),
    };
    let mut targets = vec![(rel.clone(), st)];
    if depth == 1 && st.st_mode & libc::S_IFMT == libc::S_IFDIR {
        if let Ok(entries) = app.root.list(rel) {
            for e in entries {
                let r = rel.join(&e.name);
                // gpubox's own temporary files (a PUT or a save in progress) are not shown.
                if e.name.starts_with('.') && (e.name.ends_with(".gpubox-dav") || e.name.contains(".gpubox-save-")) {
                    continue;
                }
                if let Ok(s) = app.root.stat(&r) {
                    targets.push((r, s));
                }
            }
        }
    }
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<D:multistatus xmlns:D=\"DAV:\">");
    for (r, st) in &targets {
        let dir = st.st_mode & libc::S_IFMT == libc::S_IFDIR;
        out.push_str(&format!("<D:response><D:href>{}</D:href>", escape(&href(r, dir))));
        let live = live(st, r);
        let dead = dead_props(app, r);
        let mut found = String::new();
        let mut missing = String::new();
        match &want {
            Want::All | Want::Names => {
                for (name, value) in &live {
                    if matches!(want, Want::Names) || value.is_empty() {
                        found.push_str(&format!("<D:{name}/>"));
                    } else {
                        found.push_str(&format!("<D:{name}>{value}</D:{name}>"));
                    }
                }
                for d in &dead {
                    if matches!(want, Want::Names) {
                        let empty = Element { children: Vec::new(), attrs: Vec::new(), ..d.clone() };
                        empty.to_xml(&mut found, Some(DAV));
                    } else {
                        d.to_xml(&mut found, Some(DAV));
                    }
                }
            }
            Want::Props(names) => {
                for (ns, name) in names {
                    if ns.as_deref() == Some(DAV) {
                        if let Some((_, value)) = live.iter().find(|(n, _)| n == name) {
                            if value.is_empty() {
                                found.push_str(&format!("<D:{name}/>"));
                            } else {
                                found.push_str(&format!("<D:{name}>{value}</D:{name}>"));
                            }
                            continue;
                        }
                    }
                    match dead.iter().find(|d| d.ns == *ns && d.name == *name) {
                        Some(d) => d.to_xml(&mut found, Some(DAV)),
                        None => Element { ns: ns.clone(), name: name.clone(), attrs: vec![], children: vec![] }
                            .to_xml(&mut missing, Some(DAV)),
                    }
                }
            }
        }
        if !found.is_empty() {
            out.push_str(&format!(
                "<D:propstat><D:prop>{found}</D:prop><D:status>{}</D:status></D:propstat>",
                status_line(StatusCode::OK)
            ));
        }
        if !missing.is_empty() {
            out.push_str(&format!(
                "<D:propstat><D:prop>{missing}</D:prop><D:status>{}</D:status></D:propstat>",
                status_line(StatusCode::NOT_FOUND)
            ));
        }
        out.push_str("</D:response>");
    }
    out.push_str("</D:multistatus>");
    multistatus(out)
}

fn multistatus(xml: String) -> Response {
    (StatusCode::MULTI_STATUS, [(header::CONTENT_TYPE, "application/xml; charset=utf-8")], xml).into_response()
}

const PROTECTED: &[&str] = &[
    "resourcetype",
    "getlastmodified",
    "creationdate",
    "getetag",
    "getcontentlength",
    "getcontenttype",
    "supportedlock",
    "lockdiscovery",
];

fn proppatch(app: &FilesApp, rel: &Rel, body: &[u8]) -> Response {
    let doc = match std::str::from_utf8(body).map_err(|e| e.to_string()).and_then(parse) {
        Ok(d) => d,
        Err(e) => return plain(StatusCode::BAD_REQUEST, &format!("the PROPPATCH body is not well-formed XML: {e}")),
    };
    if !doc.is(DAV, "propertyupdate") {
        return plain(StatusCode::BAD_REQUEST, "the body is not a DAV:propertyupdate");
    }
    let f = match fd_of(app, rel) {
        Ok(f) => f,
        Err(e) => return fs_fail(e),
    };
    // In document order: set and remove instructions.
    let mut ops: Vec<(bool, Element)> = Vec::new();
    for op in doc.elements() {
        let set = op.is(DAV, "set");
        if !set && !op.is(DAV, "remove") {
            continue;
        }
        for prop in op.elements().filter(|p| p.is(DAV, "prop")) {
            for p in prop.elements() {
                ops.push((set, p.clone()));
            }
        }
    }
    let protected = |p: &Element| p.ns.as_deref() == Some(DAV) && PROTECTED.contains(&p.name.as_str());
    let any_protected = ops.iter().any(|(_, p)| protected(p));
    let mut results: Vec<(Element, StatusCode)> = Vec::new();
    if any_protected {
        // All or nothing: the protected ones are refused and the others are not done.
        for (_, p) in &ops {
            let s = if protected(p) { StatusCode::FORBIDDEN } else { StatusCode::FAILED_DEPENDENCY };
            results.push((p.clone(), s));
        }
    } else {
        for (set, p) in &ops {
            if *set {
                if let Err(e) = set_dead(&f, p) {
                    let s = if e.raw_os_error() == Some(libc::ENOSPC) || e.raw_os_error() == Some(libc::E2BIG) {
                        StatusCode::INSUFFICIENT_STORAGE
                    } else {
                        StatusCode::FORBIDDEN
                    };
                    results.push((p.clone(), s));
                    continue;
                }
            } else {
                remove_dead(&f, p.ns.as_deref(), &p.name);
            }
            results.push((p.clone(), StatusCode::OK));
        }
    }
    let st = nix::sys::stat::fstat(f.as_raw_fd()).ok();
    let dir = st.is_some_and(|s| s.st_mode & libc::S_IFMT == libc::S_IFDIR);
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<D:multistatus xmlns:D=\"DAV:\"><D:response><D:href>{}</D:href>",
        escape(&href(rel, dir))
    );
    let mut by_status: HashMap<u16, String> = HashMap::new();
    for (p, s) in &results {
        let empty = Element { children: vec![], attrs: vec![], ..p.clone() };
        empty.to_xml(by_status.entry(s.as_u16()).or_default(), Some(DAV));
    }
    for (code, props) in by_status {
        let s = StatusCode::from_u16(code).unwrap_or(StatusCode::OK);
        out.push_str(&format!(
            "<D:propstat><D:prop>{props}</D:prop><D:status>{}</D:status></D:propstat>",
            status_line(s)
        ));
    }
    out.push_str("</D:response></D:multistatus>");
    multistatus(out)
}

fn lock(app: &FilesApp, rel: &Rel, headers: &HeaderMap, _body: &[u8]) -> Response {
    // A lock on a name that does not exist yet creates an empty file (RFC 4918 §9.10.4).
    let created = if app.root.stat(rel).is_err() {
        match app.root.create_new(rel) {
            Ok(_) => true,
            Err(e) => return fs_fail(e),
        }
    } else {
        false
    };
    let mut raw = [0u8; 16];
    let _ = getrandom::fill(&mut raw);
    let h: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    let token = format!("opaquelocktoken:{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32]);
    let timeout = headers.get("timeout").and_then(|v| v.to_str().ok()).unwrap_or("Second-3600").to_string();
    let depth = headers.get("depth").and_then(|v| v.to_str().ok()).unwrap_or("infinity").to_string();
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<D:prop xmlns:D=\"DAV:\"><D:lockdiscovery><D:activelock>\
<D:locktype><D:write/></D:locktype><D:lockscope><D:exclusive/></D:lockscope><D:depth>{}</D:depth>\
<D:timeout>{}</D:timeout><D:locktoken><D:href>{token}</D:href></D:locktoken>\
<D:lockroot><D:href>{}</D:href></D:lockroot></D:activelock></D:lockdiscovery></D:prop>",
        escape(&depth),
        escape(&timeout),
        escape(&href(rel, false))
    );
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    let mut r = (status, [(header::CONTENT_TYPE, "application/xml; charset=utf-8")], xml).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("<{token}>")) {
        r.headers_mut().insert("lock-token", v);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_round_trips_with_namespaces() {
        let doc = parse(
            r#"<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:t="http://x/"><D:set><D:prop>
<t:valnspace><foo xmlns="http://bar">1 &amp; 2</foo></t:valnspace><empty xmlns=""/></D:prop></D:set></D:propertyupdate>"#,
        )
        .unwrap();
        let set = doc.elements().next().unwrap();
        let prop = set.elements().next().unwrap();
        let props: Vec<&Element> = prop.elements().collect();
        assert_eq!((props[0].ns.as_deref(), props[0].name.as_str()), (Some("http://x/"), "valnspace"));
        assert_eq!(props[1].ns, None);
        let mut s = String::new();
        props[0].to_xml(&mut s, Some(DAV));
        assert_eq!(s, r#"<valnspace xmlns="http://x/"><foo xmlns="http://bar">1 &amp; 2</foo></valnspace>"#);
        assert_eq!(parse(&s).unwrap(), *props[0]);
        assert!(parse("<a><b></a>").is_err());
        assert!(parse("<x:a/>").is_err());
    }

    #[test]
    fn dates() {
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(http_date(1_795_872_000), "Sat, 28 Nov 2026 13:20:00 GMT");
        assert_eq!(http_date(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT");
    }
}
