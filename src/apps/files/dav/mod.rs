//! WebDAV (RFC 4918, class 1 and 2) under `/dav/` on the file manager's port, with the same
//! login, so that rclone, macOS Finder or Windows Explorer can mount the workspace. Every path goes
//! through `fs.rs` like the rest of the app. The XML tree is in `xml.rs`, properties (live and
//! dead, PROPFIND, PROPPATCH) in `props.rs`, the other methods here.
//!
//! Locks (LOCK/UNLOCK) are granted and remembered for their timeout but not enforced: clients
//! such as Finder need them to mount read-write; one person's workspace has no competing writers
//! to protect against.

mod props;
mod xml;

#[cfg(test)]
pub(super) use xml::parse;

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};

use super::fs::{clean, FsError, Rel};
use super::FilesApp;
use props::{copy_dead, http_date, propfind, proppatch};
use xml::escape;

const DAV: &str = "DAV:";
pub const PREFIX: &str = "/dav";

pub(super) fn status_line(s: StatusCode) -> String {
    format!("HTTP/1.1 {} {}", s.as_u16(), s.canonical_reason().unwrap_or(""))
}

pub(super) fn plain(status: StatusCode, msg: &str) -> Response {
    (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], msg.to_string()).into_response()
}

/// WebDAV's status for a file-system error: the file manager's (`files::fs_status`), except in
/// two places where RFC 4918 says otherwise:
/// - something already there is 412 Precondition Failed: the only way a WebDAV method here meets
///   an existing target through the file system is COPY or MOVE with `Overwrite: F` (§9.8.5,
///   §9.9.4). MKCOL on an existing path, 405 (§9.3.1), is answered before.
/// - a path through something that is not a folder is 409 Conflict: an intermediate collection
///   is missing (§9.3.1 for MKCOL, §9.7.1 for PUT).
pub(super) fn status(e: &FsError) -> StatusCode {
    match e {
        FsError::Exists => StatusCode::PRECONDITION_FAILED,
        FsError::NotADir => StatusCode::CONFLICT,
        other => super::fs_status(other).0,
    }
}

/// What a WebDAV method refuses with: a status and a line of plain text (WebDAV clients show
/// neither JSON nor pages).
#[derive(Debug)]
pub(super) struct DavError(StatusCode, String);

impl DavError {
    pub(super) fn new(status: StatusCode, message: impl Into<String>) -> DavError {
        DavError(status, message.into())
    }
}

impl From<FsError> for DavError {
    fn from(e: FsError) -> DavError {
        DavError(status(&e), e.to_string())
    }
}

impl IntoResponse for DavError {
    fn into_response(self) -> Response {
        plain(self.0, &self.1)
    }
}

pub(super) type Answer = Result<Response, DavError>;

/// The workspace path of a request path under `/dav`.
pub(super) fn rel_of(path: &str) -> Result<Rel, FsError> {
    let rest = path.strip_prefix(PREFIX).unwrap_or(path);
    if rest.contains('#') {
        // A fragment has no place in a request; acting on the path before it would be unsafe.
        return Err(FsError::BadPath("the URL contains a fragment (#)".into()));
    }
    clean(&crate::http::coding::decode_path(rest))
}

pub(super) fn href(rel: &Rel, dir: bool) -> String {
    let mut s = String::from(PREFIX);
    s.push('/');
    s.push_str(&rel.0.iter().map(|c| crate::http::coding::encode(c)).collect::<Vec<_>>().join("/"));
    if dir && !rel.is_root() {
        s.push('/');
    }
    s
}

/// Every WebDAV request on `/dav` and below.
pub async fn handle(State(app): State<Arc<FilesApp>>, req: Request) -> Answer {
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
        return Ok(r);
    }
    let rel = rel_of(&path)?;
    if method == Method::PUT {
        return put(app, rel, req.into_body()).await;
    }
    // Every other method's body is XML or nothing: 1 MiB is plenty.
    let body = match axum::body::to_bytes(req.into_body(), 1 << 20).await {
        Ok(b) => b,
        Err(_) => {
            let message = "the request body could not be read (more than 1 MiB?)";
            return Err(DavError::new(StatusCode::PAYLOAD_TOO_LARGE, message));
        }
    };
    let a = app.clone();
    tokio::task::spawn_blocking(move || dispatch(&a, method.as_str(), &rel, &headers, body))
        .await
        .unwrap_or_else(|_| Err(DavError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error")))
}

pub(super) fn dispatch(app: &FilesApp, method: &str, rel: &Rel, headers: &HeaderMap, body: Bytes) -> Answer {
    match method {
        "GET" | "HEAD" => get(app, rel, method == "HEAD", headers),
        "DELETE" => {
            app.root.stat(rel)?;
            if rel.is_root() {
                return Err(DavError::new(StatusCode::FORBIDDEN, "the workspace itself cannot be deleted"));
            }
            app.root.remove(rel)?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        "MKCOL" => {
            if !body.is_empty() {
                return Err(DavError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "MKCOL takes no body"));
            }
            if app.root.stat(rel).is_ok() {
                return Err(DavError::new(StatusCode::METHOD_NOT_ALLOWED, "it exists already"));
            }
            match app.root.mkdir(rel) {
                Ok(()) => Ok(StatusCode::CREATED.into_response()),
                Err(FsError::NotFound) | Err(FsError::NotADir) => {
                    Err(DavError::new(StatusCode::CONFLICT, "the parent folder does not exist"))
                }
                Err(e) => Err(e.into()),
            }
        }
        "COPY" | "MOVE" => copy_move(app, rel, headers, method == "MOVE"),
        "PROPFIND" => propfind(app, rel, headers, &body),
        "PROPPATCH" => proppatch(app, rel, &body),
        "LOCK" => lock(app, rel, headers, &body),
        "UNLOCK" => Ok(StatusCode::NO_CONTENT.into_response()),
        _ => Err(DavError::new(StatusCode::METHOD_NOT_ALLOWED, "not a WebDAV method this server knows")),
    }
}

/// A file, whole or one byte range (`Range: bytes=…`: rclone mount and Finder read models in
/// pieces, here and there), streamed from a blocking task.
pub(super) fn get(app: &FilesApp, rel: &Rel, head: bool, headers: &HeaderMap) -> Answer {
    let st = app.root.stat(rel)?;
    let is_dir = st.st_mode & libc::S_IFMT == libc::S_IFDIR;
    if is_dir {
        return Ok(plain(StatusCode::OK, "a folder: use PROPFIND to list it"));
    }
    let f = app.root.open_file(rel)?;
    let len = st.st_size as u64;
    let range = super::parse_range(headers.get(header::RANGE).and_then(|v| v.to_str().ok()), len);
    let (status, start, count) = match range {
        Ok(Some((a, b))) => (StatusCode::PARTIAL_CONTENT, a, b - a + 1),
        Ok(None) => (StatusCode::OK, 0, len),
        Err(()) => {
            let mut r = plain(StatusCode::RANGE_NOT_SATISFIABLE, "the range is outside the file");
            r.headers_mut()
                .insert(header::CONTENT_RANGE, HeaderValue::from_str(&format!("bytes */{len}")).expect("ascii"));
            return Ok(r);
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
    Ok(r)
}

pub(super) fn etag(st: &nix::sys::stat::FileStat) -> String {
    format!("\"{:x}-{:x}\"", st.st_mtime * 1_000_000_000 + st.st_mtime_nsec, st.st_size)
}

/// PUT streams the body into a temporary file beside the target, as `PUT /api/file` does
/// (body.rs: written off the serving thread in pieces), and renames it into place only when every
/// byte came: a model copied in with rclone or Finder never sits in memory (it did: a 1.5 GB PUT
/// took gpubox's RSS to 1.8 GB), and a cut upload leaves the old file as it was.
async fn put(app: Arc<FilesApp>, rel: Rel, mut body: Body) -> Answer {
    if rel.is_root() {
        return Err(DavError::new(StatusCode::METHOD_NOT_ALLOWED, "the workspace is a folder"));
    }
    let tmp = rel.parent().join(&super::fs::temp_name(rel.name().unwrap_or("file"), "dav"));
    let (a, r, t) = (app.clone(), rel.clone(), tmp.clone());
    let (existed, file) = super::blocking(move || -> Result<(bool, std::fs::File), DavError> {
        let existed = match a.root.stat(&r) {
            Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFDIR => {
                return Err(DavError::new(StatusCode::METHOD_NOT_ALLOWED, "that is a folder"))
            }
            Ok(_) => true,
            Err(_) => false,
        };
        if a.root.stat(&r.parent()).is_err() {
            return Err(DavError::new(StatusCode::CONFLICT, "the parent folder does not exist"));
        }
        let _ = a.root.remove(&t);
        Ok((existed, a.root.create_new(&t)?))
    })
    .await?;
    let (from, to) = (rel.clone(), tmp.clone());
    let keep_props = move |a: &FilesApp| {
        if existed {
            copy_dead(a, &from, &to);
        }
    };
    super::body::save_as(&app, &mut body, file, tmp, rel, keep_props).await?;
    Ok(if existed { StatusCode::NO_CONTENT } else { StatusCode::CREATED }.into_response())
}

pub(super) fn copy_move(app: &FilesApp, from: &Rel, headers: &HeaderMap, is_move: bool) -> Answer {
    let Some(dest) = headers.get("destination").and_then(|v| v.to_str().ok()) else {
        return Err(DavError::new(StatusCode::BAD_REQUEST, "a Destination header is needed"));
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
                return Err(DavError::new(StatusCode::BAD_GATEWAY, "the destination is on another server"));
            }
            path.to_string()
        }
        None => dest.to_string(),
    };
    let dest_path = dest_path.split(['?', '#']).next().unwrap_or("").to_string();
    if !dest_path.starts_with(PREFIX) {
        return Err(DavError::new(StatusCode::BAD_GATEWAY, "the destination is not on this server's /dav"));
    }
    let to = rel_of(&dest_path)?;
    let overwrite = headers.get("overwrite").and_then(|v| v.to_str().ok()).is_none_or(|v| !v.eq_ignore_ascii_case("F"));
    let src = app.root.stat(from)?;
    if from == &to || from.is_root() || to.is_root() {
        return Err(DavError::new(
            StatusCode::FORBIDDEN,
            "source and destination are the same (or the workspace itself)",
        ));
    }
    if to.within(from) {
        return Err(DavError::new(StatusCode::FORBIDDEN, "a folder cannot go into itself"));
    }
    if app.root.stat(&to.parent()).is_err() {
        return Err(DavError::new(StatusCode::CONFLICT, "the destination's folder does not exist"));
    }
    // Onto a folder that holds the source: replacing it would delete the source with it.
    if from.within(&to) {
        return Err(DavError::new(StatusCode::FORBIDDEN, "the destination holds the source"));
    }
    let dest = app.root.stat(&to).ok();
    if let (Some(_), Ok(real_from), Ok(real_to)) = (&dest, app.root.real_path(from), app.root.real_path(&to)) {
        if real_from.starts_with(&real_to) {
            return Err(DavError::new(StatusCode::FORBIDDEN, "the destination holds the source (through a symlink)"));
        }
    }
    // The same file under another name (a symlinked folder on the way): removing the destination
    // first would remove the source.
    if dest.as_ref().is_some_and(|d| (d.st_dev, d.st_ino) == (src.st_dev, src.st_ino)) {
        return Err(DavError::new(
            StatusCode::FORBIDDEN,
            "source and destination are the same file (through a symlink)",
        ));
    }
    if let (Ok(real_from), Ok(real_parent)) = (app.root.real_path(from), app.root.real_path(&to.parent())) {
        if src.st_mode & libc::S_IFMT == libc::S_IFDIR && real_parent.starts_with(&real_from) {
            return Err(DavError::new(StatusCode::FORBIDDEN, "a folder cannot go into itself (through a symlink)"));
        }
    }
    let existed = dest.is_some();
    if existed {
        if !overwrite {
            return Err(DavError::new(StatusCode::PRECONDITION_FAILED, "the destination exists and Overwrite is F"));
        }
        app.root.remove(&to)?;
    }
    let result = if is_move {
        app.root.rename(from, &to, false)
    } else {
        let depth0 = headers.get("depth").and_then(|v| v.to_str().ok()).is_some_and(|d| d.trim() == "0");
        copy_tree(app, from, &to, src.st_mode & libc::S_IFMT == libc::S_IFDIR, depth0)
    };
    result?;
    Ok(if existed { StatusCode::NO_CONTENT } else { StatusCode::CREATED }.into_response())
}

/// Copies a file, or a folder with everything in it (the walk is made first, so a symlink inside
/// leading to the destination cannot make it endless); with `depth0` a folder alone.
pub(super) fn copy_tree(app: &FilesApp, from: &Rel, to: &Rel, dir: bool, depth0: bool) -> Result<(), FsError> {
    let item = super::archive::Item { rel: from.clone(), name: String::new() };
    let plan: Vec<(String, Rel, bool)> = if dir && depth0 {
        vec![(String::new(), from.clone(), true)]
    } else {
        super::archive::Walk::new(&app.root, vec![item]).collect()
    };
    for (sub, rel, is_dir) in plan {
        let dest = to.join_walked(&sub);
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

pub(super) fn lock(app: &FilesApp, rel: &Rel, headers: &HeaderMap, _body: &[u8]) -> Answer {
    // A lock on a name that does not exist yet creates an empty file (RFC 4918 §9.10.4).
    let created = if app.root.stat(rel).is_err() {
        app.root.create_new(rel)?;
        true
    } else {
        false
    };
    let h = crate::random::hex(16).map_err(FsError::Io)?;
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
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::xml::*;
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
