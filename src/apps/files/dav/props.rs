//! Properties: the live ones (from the file's metadata) and the dead ones (PROPPATCH, kept in
//! extended attributes of the file itself, `user.gpubox.dav.*`, each holding the property's XML,
//! so they move with MOVE, are copied by COPY and go with DELETE); PROPFIND and PROPPATCH.

use std::collections::HashMap;
use std::os::fd::AsRawFd;

use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::Digest;

use super::xml::{escape, parse, Element};
use super::{etag, href, status_line, Answer, DavError, DAV};
use crate::apps::files::fs::{FsError, Rel};
use crate::apps::files::FilesApp;

const XATTR: &str = "user.gpubox.dav.";

pub(super) fn xattr_key(ns: Option<&str>, name: &str) -> String {
    let h = sha2::Sha256::digest(format!("{}\0{name}", ns.unwrap_or("")).as_bytes());
    format!("{XATTR}{}", h.iter().take(16).map(|b| format!("{b:02x}")).collect::<String>())
}

pub(super) fn fd_of(app: &FilesApp, rel: &Rel) -> Result<std::fs::File, FsError> {
    app.root.open_any(rel)
}

pub(super) fn dead_props(app: &FilesApp, rel: &Rel) -> Vec<Element> {
    let Ok(f) = fd_of(app, rel) else { return Vec::new() };
    let mut names = vec![0u8; 64 * 1024];
    let n = match rustix::fs::flistxattr(&f, &mut names[..]) {
        Ok(n) if n > 0 => n,
        _ => return Vec::new(),
    };
    names.truncate(n);
    let mut out = Vec::new();
    for name in names.split(|b| *b == 0).filter(|n| n.starts_with(XATTR.as_bytes())) {
        let Ok(key) = std::ffi::CString::new(name) else { continue };
        let mut value = vec![0u8; 64 * 1024];
        if let Ok(len @ 1..) = rustix::fs::fgetxattr(&f, key.as_c_str(), &mut value[..]) {
            value.truncate(len);
            if let Ok(e) = parse(&String::from_utf8_lossy(&value)) {
                out.push(e);
            }
        }
    }
    out
}

pub(super) fn set_dead(f: &std::fs::File, prop: &Element) -> std::io::Result<()> {
    let mut xml = String::new();
    prop.to_xml(&mut xml, Some("\u{0}"));
    let key = xattr_key(prop.ns.as_deref(), &prop.name);
    rustix::fs::fsetxattr(f, key.as_str(), xml.as_bytes(), rustix::fs::XattrFlags::empty())?;
    Ok(())
}

pub(super) fn remove_dead(f: &std::fs::File, ns: Option<&str>, name: &str) {
    // A missing attribute is fine.
    let _ = rustix::fs::fremovexattr(f, xattr_key(ns, name).as_str());
}

/// Copies the dead properties of `from` to `to` (after COPY).
pub(super) fn copy_dead(app: &FilesApp, from: &Rel, to: &Rel) {
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

/// An HTTP date (RFC 9110's IMF-fixdate) for seconds since the Unix epoch.
pub(super) fn http_date(t: i64) -> String {
    httpdate::fmt_http_date(std::time::UNIX_EPOCH + std::time::Duration::from_secs(t.max(0) as u64))
}

/// The live properties of a resource, by name.
pub(super) fn live(st: &nix::sys::stat::FileStat, rel: &Rel) -> Vec<(&'static str, String)> {
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

/// What a PROPFIND asks for: everything, the names, or some properties (namespace, name).
enum Want {
    All,
    Names,
    Props(Vec<(Option<String>, String)>),
}

pub(super) fn propfind(app: &FilesApp, rel: &Rel, headers: &HeaderMap, body: &[u8]) -> Answer {
    let depth = headers.get("depth").and_then(|v| v.to_str().ok()).map(str::trim).unwrap_or("infinity");
    let depth = match depth {
        "0" => 0,
        "1" => 1,
        // RFC 4918 §9.1: a server may refuse Depth: infinity, with this precondition.
        _ => return Ok((
            StatusCode::FORBIDDEN,
            [(header::CONTENT_TYPE, "application/xml; charset=utf-8")],
            "<?xml version=\"1.0\" encoding=\"utf-8\"?><D:error xmlns:D=\"DAV:\"><D:propfind-finite-depth/></D:error>",
        )
            .into_response()),
    };
    let want = wanted(body)?;
    let st = app.root.stat(rel)?;
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
        response(app, r, st, &want, &mut out);
    }
    out.push_str("</D:multistatus>");
    Ok(multistatus(out))
}

/// Reads a PROPFIND body (none at all means everything).
fn wanted(body: &[u8]) -> Result<Want, DavError> {
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        return Ok(Want::All);
    }
    let doc = std::str::from_utf8(body).map_err(|e| e.to_string()).and_then(parse).map_err(|e| {
        DavError::new(StatusCode::BAD_REQUEST, format!("the PROPFIND body is not well-formed XML: {e}"))
    })?;
    if !doc.is(DAV, "propfind") {
        return Err(DavError::new(StatusCode::BAD_REQUEST, "the body is not a DAV:propfind"));
    }
    let want = match doc.elements().next() {
        Some(e) if e.is(DAV, "allprop") => Want::All,
        Some(e) if e.is(DAV, "propname") => Want::Names,
        Some(e) if e.is(DAV, "prop") => Want::Props(e.elements().map(|p| (p.ns.clone(), p.name.clone())).collect()),
        _ => return Err(DavError::new(StatusCode::BAD_REQUEST, "propfind needs allprop, propname or prop")),
    };
    Ok(want)
}

/// One resource's `<D:response>`: what was found (200) and what was asked for but is not there
/// (404), in two propstats.
fn response(app: &FilesApp, r: &Rel, st: &nix::sys::stat::FileStat, want: &Want, out: &mut String) {
    let dir = st.st_mode & libc::S_IFMT == libc::S_IFDIR;
    out.push_str(&format!("<D:response><D:href>{}</D:href>", escape(&href(r, dir))));
    let live = live(st, r);
    let dead = dead_props(app, r);
    let mut found = String::new();
    let mut missing = String::new();
    let push_live = |found: &mut String, name: &str, value: &str| {
        if value.is_empty() {
            found.push_str(&format!("<D:{name}/>"));
        } else {
            found.push_str(&format!("<D:{name}>{value}</D:{name}>"));
        }
    };
    match want {
        Want::All | Want::Names => {
            let names_only = matches!(want, Want::Names);
            for (name, value) in &live {
                push_live(&mut found, name, if names_only { "" } else { value });
            }
            for d in &dead {
                if names_only {
                    Element { children: Vec::new(), attrs: Vec::new(), ..d.clone() }.to_xml(&mut found, Some(DAV));
                } else {
                    d.to_xml(&mut found, Some(DAV));
                }
            }
        }
        Want::Props(names) => {
            for (ns, name) in names {
                let live_one = live.iter().find(|(n, _)| n == name).filter(|_| ns.as_deref() == Some(DAV));
                if let Some((_, value)) = live_one {
                    push_live(&mut found, name, value);
                    continue;
                }
                match dead.iter().find(|d| d.ns == *ns && d.name == *name) {
                    Some(d) => d.to_xml(&mut found, Some(DAV)),
                    None => Element { ns: ns.clone(), name: name.clone(), attrs: vec![], children: vec![] }
                        .to_xml(&mut missing, Some(DAV)),
                }
            }
        }
    }
    for (props, status) in [(found, StatusCode::OK), (missing, StatusCode::NOT_FOUND)] {
        if !props.is_empty() {
            out.push_str(&format!(
                "<D:propstat><D:prop>{props}</D:prop><D:status>{}</D:status></D:propstat>",
                status_line(status)
            ));
        }
    }
    out.push_str("</D:response>");
}

pub(super) fn multistatus(xml: String) -> Response {
    (StatusCode::MULTI_STATUS, [(header::CONTENT_TYPE, "application/xml; charset=utf-8")], xml).into_response()
}

pub(super) const PROTECTED: &[&str] = &[
    "resourcetype",
    "getlastmodified",
    "creationdate",
    "getetag",
    "getcontentlength",
    "getcontenttype",
    "supportedlock",
    "lockdiscovery",
];

pub(super) fn proppatch(app: &FilesApp, rel: &Rel, body: &[u8]) -> Answer {
    let doc = match std::str::from_utf8(body).map_err(|e| e.to_string()).and_then(parse) {
        Ok(d) => d,
        Err(e) => {
            return Err(DavError::new(
                StatusCode::BAD_REQUEST,
                format!("the PROPPATCH body is not well-formed XML: {e}"),
            ))
        }
    };
    if !doc.is(DAV, "propertyupdate") {
        return Err(DavError::new(StatusCode::BAD_REQUEST, "the body is not a DAV:propertyupdate"));
    }
    let f = fd_of(app, rel)?;
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
    Ok(multistatus(out))
}
