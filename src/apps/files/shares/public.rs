//! A share link's public side, on the file manager's port without the login: the link's page (a
//! file, or a folder's gallery and list), the password form, the file, a folder's ZIP and the
//! gallery's thumbnails. Everything is looked up through `target`, beneath what was shared.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use axum::extract::{ConnectInfo, Path as UrlPath, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;

use super::super::fs::{clean, FsError, Rel, Root};
use super::super::images::thumbnailed;
use super::super::transfer::{archive_body, content_type, disposition, send_file};
use super::super::{archive, blocking, FilesApp};
use super::*;
use crate::http::pages::escape;
use crate::http::Params;

/// The plain page of a link that does not work (ended, taken back, never was): 404.
fn gone() -> Response {
    let body = "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>Link not found</title><link rel=\"icon\" href=\"data:,\"><link rel=\"stylesheet\" href=\"/.gpubox/assets/gpubox.css\"></head>\
<body><main class=\"share\"><h1>This link does not work</h1><p class=\"muted\">It has ended, was taken back, or never existed. Ask whoever sent it for a new one.</p></main></body></html>\n";
    let mut r = (StatusCode::NOT_FOUND, Html(body)).into_response();
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn page(title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<meta name=\"robots\" content=\"noindex\">\
<title>{t}</title><link rel=\"icon\" href=\"data:,\"><link rel=\"stylesheet\" href=\"/.gpubox/assets/gpubox.css\"></head>\
<body><main class=\"share\">{body}</main></body></html>\n",
        t = escape(title)
    );
    let mut r = Html(html).into_response();
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

#[derive(Deserialize, Default)]
pub(in crate::apps::files) struct SubPath {
    /// Inside a folder share: the path below it.
    #[serde(default)]
    path: String,
    #[serde(default)]
    inline: String,
}

/// The share `id` when it is live and, if it has a password, unlocked for this browser.
enum Access {
    Open(Share),
    Locked(Share),
    Gone,
}

fn access(app: &FilesApp, id: &str, headers: &HeaderMap) -> Access {
    match app.shares.get(id) {
        None => Access::Gone,
        Some(s) if s.password.is_some() && !app.shares.unlocked(id, headers) => Access::Locked(s),
        Some(s) => Access::Open(s),
    }
}

fn share_name(s: &Share) -> String {
    s.path.rsplit('/').next().filter(|n| !n.is_empty()).unwrap_or("workspace").to_string()
}

/// Where a share's path leads: the root to open names beneath, and the name below it.
/// A file share has no path below it; a folder share takes `sub` (cleaned, never `..`).
/// The shared folder or file must still be the one that was shared (its device and inode): a
/// path whose folder or file was replaced (by a symlink to elsewhere in the workspace, another
/// folder) leads nowhere.
fn target(app: &FilesApp, s: &Share, sub: &str) -> Result<(Root, Rel), FsError> {
    let base = clean(&s.path)?;
    let same = |st: nix::sys::stat::FileStat| st.st_dev == s.dev && st.st_ino == s.ino;
    if s.folder {
        let root = app.root.sub(&base)?;
        if !same(root.stat(&Rel(Vec::new()))?) {
            return Err(FsError::NotFound);
        }
        Ok((root, clean(sub)?))
    } else if sub.is_empty() {
        let root = app.root.sub(&base.parent())?;
        let rel = Rel(vec![base.name().unwrap_or_default().to_string()]);
        if !same(root.stat(&rel)?) {
            return Err(FsError::NotFound);
        }
        Ok((root, rel))
    } else {
        Err(FsError::NotFound)
    }
}

fn password_form(s: &Share, wrong: bool) -> Response {
    let note = if wrong { "<p class=\"error\" role=\"alert\">That is not the password.</p>" } else { "" };
    let body = format!(
        "<h1>{name}</h1><p class=\"muted\">This link asks for a password.</p>{note}\
<form method=\"post\" class=\"share-unlock\"><label for=\"share-password\">Password</label>\
<input id=\"share-password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" autofocus required>\
<button type=\"submit\">Open</button></form>",
        name = escape(&share_name(s))
    );
    let mut r = page(&share_name(s), &body);
    if wrong {
        *r.status_mut() = StatusCode::UNAUTHORIZED;
    }
    r
}

/// `GET /.gpubox/s/{id}`: a file's page (its name, size, a preview for a picture, Download), or
/// a folder's list (`?path=` below it) with a ZIP of it all.
pub(in crate::apps::files) async fn show(
    State(app): State<Arc<FilesApp>>,
    UrlPath(id): UrlPath<String>,
    headers: HeaderMap,
    Params(q): Params<SubPath>,
) -> Response {
    let s = match access(&app, &id, &headers) {
        Access::Gone => return gone(),
        Access::Locked(s) => return password_form(&s, false),
        Access::Open(s) => s,
    };
    let (a, share, sub) = (app.clone(), s.clone(), q.path.clone());
    let looked = blocking(move || {
        let (root, rel) = target(&a, &share, &sub)?;
        let stat = root.stat(&rel)?;
        if super::super::fs::kind_of(&stat) == "dir" {
            Ok((rel.clone(), None, Some(root.list(&rel)?)))
        } else {
            Ok::<_, FsError>((rel, Some(stat), None))
        }
    })
    .await;
    let (rel, stat, entries) = match looked {
        Ok(x) => x,
        Err(_) => return gone(),
    };
    let base = format!("/.gpubox/s/{id}");
    match (s.folder, stat.is_some()) {
        // A file below a shared folder: it is downloaded, as the list's link does.
        (true, true) => return see_other(&format!("{base}/file?path={}", crate::http::coding::encode(&rel.as_str()))),
        (false, false) => return gone(),
        _ => {}
    }
    let q = |p: &str| crate::http::coding::encode(p);
    let limit = match (s.max_downloads, s.expires_ms) {
        (Some(m), _) => {
            format!("<p class=\"muted small\">{} of {m} downloads left.</p>", m.saturating_sub(s.downloads))
        }
        (None, Some(e)) => format!(
            "<p class=\"muted small\">This link ends {}.</p>",
            httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_millis(e))
        ),
        _ => String::new(),
    };
    if let (Some(stat), false) = (stat, s.folder) {
        let name = share_name(&s);
        let size = crate::human::bytes(stat.st_size as u64);
        // The picture itself would use up a limited link's downloads: its thumbnail does not.
        let preview = if !content_type(&name).starts_with("image/") {
            String::new()
        } else if s.max_downloads.is_none() {
            format!("<img class=\"share-preview\" src=\"{base}/file?inline=1\" alt=\"{}\">", escape(&name))
        } else if !thumbnailed(&name) {
            String::new() // no thumbnail of it is made (SVG, BMP, AVIF…)
        } else {
            format!("<img class=\"share-preview\" src=\"{base}/thumb?size=512\" alt=\"{}\">", escape(&name))
        };
        let body = format!(
            "<h1>{n}</h1><p class=\"muted\">{size}</p>{preview}<p><a class=\"button\" href=\"{base}/file\" download>Download</a></p>{limit}",
            n = escape(&name)
        );
        return page(&name, &body);
    }
    let mut entries = entries.unwrap_or_default();
    entries.retain(|e| e.kind == "dir" || e.kind == "file");
    entries.sort_by(|a, b| {
        (b.kind == "dir").cmp(&(a.kind == "dir")).then_with(|| a.name.to_lowercase().cmp(&b.name.to_lowercase()))
    });
    let here = rel.as_str();
    let mut crumbs = format!("<a href=\"{base}\">{}</a>", escape(&share_name(&s)));
    let mut walked = Rel(Vec::new());
    for part in &rel.0 {
        walked = walked.join(part);
        crumbs.push_str(&format!(" / <a href=\"{base}?path={}\">{}</a>", q(&walked.as_str()), escape(part)));
    }
    let (mut rows, mut tiles) = (String::new(), String::new());
    for e in &entries {
        let p = if here.is_empty() { e.name.clone() } else { format!("{here}/{}", e.name) };
        // Pictures are a gallery of thumbnails above the list; a tile opens the picture.
        if e.kind == "file" && thumbnailed(&e.name) {
            tiles.push_str(&format!(
                "<li data-name=\"{n}\"><a href=\"{base}/file?path={p}&amp;inline=1\" title=\"{n}\">\
<img src=\"{base}/thumb?path={p}&amp;v={v}\" alt=\"{n}\" loading=\"lazy\"><span>{n}</span></a></li>",
                n = escape(&e.name),
                p = q(&p),
                v = e.modified,
            ));
            continue;
        }
        let (href, size) = if e.kind == "dir" {
            (format!("{base}?path={}", q(&p)), String::new())
        } else {
            (format!("{base}/file?path={}", q(&p)), crate::human::bytes(e.size))
        };
        let class = if e.kind == "dir" { "dir" } else { "file" };
        rows.push_str(&format!(
            "<li class=\"{class}\" data-name=\"{n}\"><a href=\"{href}\">{n}</a><span class=\"muted\">{size}</span></li>",
            n = escape(&e.name)
        ));
    }
    if entries.is_empty() {
        rows.push_str("<li class=\"muted\">This folder is empty.</li>");
    }
    let gallery = if tiles.is_empty() { String::new() } else { format!("<ul class=\"share-gallery\">{tiles}</ul>") };
    let list = if rows.is_empty() { String::new() } else { format!("<ul class=\"share-list\">{rows}</ul>") };
    let body = format!(
        "<h1>{crumbs}</h1><p><a class=\"button\" href=\"{base}/zip?path={}\" download>Download all (ZIP)</a></p>\
{gallery}{list}{limit}",
        q(&here)
    );
    page(&share_name(&s), &body)
}

#[derive(Deserialize)]
pub(in crate::apps::files) struct Unlock {
    #[serde(default)]
    password: String,
}

/// `POST /.gpubox/s/{id}`: the password of a protected share; right, the browser may open it
/// for 12 hours (a cookie for this share's path only).
pub(in crate::apps::files) async fn unlock(
    State(app): State<Arc<FilesApp>>,
    UrlPath(id): UrlPath<String>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<Unlock>,
) -> Response {
    let Some(s) = app.shares.get(&id) else { return gone() };
    let Some(hash) = s.password.clone() else { return see_other(&format!("/.gpubox/s/{id}")) };
    let link = u64::from_str_radix(id.get(..16).unwrap_or("0"), 16).unwrap_or(0);
    let client = (crate::auth::throttle_key(addr.ip()), link);
    if let Err(wait) = app.shares.throttle.begin(client) {
        let mut r = password_form(&s, true);
        *r.status_mut() = StatusCode::TOO_MANY_REQUESTS;
        if let Ok(v) = HeaderValue::from_str(&wait.as_secs().max(1).to_string()) {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return r;
    }
    let Ok(_checking) = app.shares.verifying.try_acquire() else {
        let mut r = password_form(&s, false);
        *r.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
        r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
        return r;
    };
    let ok = blocking(move || crate::auth::verify_password(&form.password, &hash)).await;
    if !ok {
        return password_form(&s, true);
    }
    app.shares.throttle.success(client);
    let Ok(token) = crate::random::hex(16) else { return gone() };
    {
        let mut tokens = app.shares.unlocked.lock().expect("unlock lock");
        let now = Instant::now();
        tokens.retain(|_, (_, until)| *until > now);
        if tokens.len() < 100_000 {
            tokens.insert(token.clone(), (id.clone(), now + UNLOCK_FOR));
        }
    }
    let mut r = see_other(&format!("/.gpubox/s/{id}"));
    let secure = if crate::http::headers::is_https(&headers) { "; Secure" } else { "" };
    let cookie = format!(
        "{UNLOCK_COOKIE}={token}; Path=/.gpubox/s/{id}; Max-Age={}; HttpOnly; SameSite=Lax{secure}",
        UNLOCK_FOR.as_secs()
    );
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

/// Counts a download off the runtime (a limited link's count is written to disk).
async fn counted(app: &Arc<FilesApp>, id: &str) -> bool {
    let (shares, id) = (app.shares.clone(), id.to_string());
    blocking(move || shares.count(&id)).await
}

fn see_other(to: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

/// `GET /.gpubox/s/{id}/file`: the shared file, or a file below the shared folder (`?path=`);
/// byte ranges as the file manager's own downloads. A whole download counts against a limit.
pub(in crate::apps::files) async fn file(
    State(app): State<Arc<FilesApp>>,
    UrlPath(id): UrlPath<String>,
    method: axum::http::Method,
    headers: HeaderMap,
    Params(q): Params<SubPath>,
) -> Response {
    let s = match access(&app, &id, &headers) {
        Access::Open(s) => s,
        _ => return gone(),
    };
    let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok()).map(str::to_string);
    let (a, share, sub) = (app.clone(), s.clone(), q.path.clone());
    let opened = blocking(move || {
        let (root, rel) = target(&a, &share, &sub)?;
        let f = root.open_file(&rel)?;
        let meta = f.metadata()?;
        Ok::<_, FsError>((rel, f, meta))
    })
    .await;
    let Ok((rel, f, meta)) = opened else { return gone() };
    // What is sent decides: the whole file, or a range from its first byte, counts; a resumed
    // download (a range further on), a range not in the file (416) and HEAD do not.
    let fresh = method != axum::http::Method::HEAD
        && matches!(super::super::parse_range(range.as_deref(), meta.len()), Ok(None) | Ok(Some((0, _))));
    if fresh && !counted(&app, &id).await {
        return gone();
    }
    let name = rel.name().unwrap_or("file").to_string();
    send_file(f, meta, &name, range.as_deref(), q.inline == "1")
}

/// `GET /.gpubox/s/{id}/thumb?path=&size=`: the thumbnail of the shared picture or of one below
/// the shared folder, for the gallery; not counted as a download. Anything that is not a
/// picture beneath the share gets the plain 404 (nothing here names a workspace path).
pub(in crate::apps::files) async fn thumb(
    State(app): State<Arc<FilesApp>>,
    UrlPath(id): UrlPath<String>,
    headers: HeaderMap,
    Params(q): Params<super::super::images::ThumbQuery>,
) -> Response {
    let s = match access(&app, &id, &headers) {
        Access::Open(s) => s,
        _ => return gone(),
    };
    // The cache's key from the cleaned path: `x.png`, `./x.png` and `//x.png` are one picture,
    // not three thumbnails (nor three failure markers for a stranger to pile up).
    let Ok(sub) = clean(&q.path).map(|r| r.as_str()) else { return gone() };
    let shown = if sub.is_empty() { s.path.clone() } else { format!("{}/{sub}", s.path) };
    let a = app.clone();
    let open = move || {
        let (root, rel) = target(&a, &s, &sub)?;
        root.open_file(&rel)
    };
    match super::super::images::serve_thumb(&app.thumbs, shown, q.size, &headers, open).await {
        Ok(r) => r,
        Err(_) => gone(),
    }
}

/// `GET /.gpubox/s/{id}/zip`: a folder share (or a folder below it, `?path=`) as one ZIP, made
/// while it is sent.
pub(in crate::apps::files) async fn zip(
    State(app): State<Arc<FilesApp>>,
    UrlPath(id): UrlPath<String>,
    method: axum::http::Method,
    headers: HeaderMap,
    Params(q): Params<SubPath>,
) -> Response {
    let s = match access(&app, &id, &headers) {
        Access::Open(s) if s.folder => s,
        _ => return gone(),
    };
    let (a, share, sub) = (app.clone(), s.clone(), q.path.clone());
    let opened = blocking(move || {
        let (root, rel) = target(&a, &share, &sub)?;
        if super::super::fs::kind_of(&root.stat(&rel)?) != "dir" {
            return Err(FsError::NotADir);
        }
        Ok::<_, FsError>((root, rel))
    })
    .await;
    let Ok((root, rel)) = opened else { return gone() };
    if method == axum::http::Method::HEAD {
        return ([(header::CONTENT_TYPE, "application/zip")], "").into_response();
    }
    if !counted(&app, &id).await {
        return gone();
    }
    let name = rel.name().map(str::to_string).unwrap_or_else(|| share_name(&s));
    let item = archive::Item { rel, name: name.clone() };
    let mut resp = Response::new(archive_body(root, |r| r, vec![item], false));
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/zip"));
    resp.headers_mut().insert(header::CONTENT_DISPOSITION, disposition("attachment", &format!("{name}.zip")));
    resp
}
