//! Resumable uploads with the tus protocol (1.0.0, creation and termination extensions), as
//! tus-js-client speaks it. An upload's bytes go to `<state_dir>/uploads/<id>.part`, outside the
//! listing, and only a complete upload is moved to its real name, by the conflict rule it was
//! created with: `rename` (default: `name (1).ext`), `overwrite`, or `skip`. The upload survives
//! a dropped connection, a reloaded page and a restart of gpubox: the client asks where it stands
//! (HEAD) and sends the rest (PATCH).

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde::{Deserialize, Serialize};

use super::body::{write_body, End};
use super::fs::{clean, FsError, Rel};
use super::FilesApp;
use crate::http::{ApiError, Context};

const VERSION: &str = "1.0.0";

pub struct Uploads {
    dir: PathBuf,
    busy: Mutex<HashSet<String>>,
}

#[derive(Serialize, Deserialize)]
struct Meta {
    /// The folder and name it goes to, relative to the workspace.
    dir: String,
    name: String,
    length: u64,
    conflict: String,
}

/// An upload untouched this long is abandoned: its part and record are removed.
pub const ABANDONED: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

impl Uploads {
    /// The upload area, cleaned of abandoned uploads now and every hour (on a thread of its own).
    pub fn new(dir: PathBuf) -> Uploads {
        let sweep_dir = dir.clone();
        let _ = std::thread::Builder::new().name("tus-sweep".into()).spawn(move || loop {
            sweep(&sweep_dir, ABANDONED);
            std::thread::sleep(std::time::Duration::from_secs(3600));
        });
        Uploads { dir, busy: Mutex::new(HashSet::new()) }
    }

    fn part(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.part"))
    }

    fn meta_path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    fn meta(&self, id: &str) -> Option<Meta> {
        serde_json::from_slice(&std::fs::read(self.meta_path(id)).ok()?).ok()
    }

    fn forget(&self, id: &str) {
        let _ = std::fs::remove_file(self.part(id));
        let _ = std::fs::remove_file(self.meta_path(id));
    }
}

/// Removes uploads (`<id>.part` and `<id>.json`) untouched for `max_age`, and halves of a pair
/// whose other half is gone. Returns how many files it removed.
pub fn sweep(dir: &std::path::Path, max_age: std::time::Duration) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    let files: Vec<(PathBuf, std::time::SystemTime)> = entries
        .flatten()
        .filter_map(|e| Some((e.path(), e.metadata().ok()?.modified().ok()?)))
        .filter(|(p, _)| matches!(p.extension().and_then(|e| e.to_str()), Some("part" | "json")))
        .collect();
    let now = std::time::SystemTime::now();
    let mut removed = 0;
    for (path, modified) in &files {
        let other = path.with_extension(if path.extension().is_some_and(|e| e == "part") { "json" } else { "part" });
        // The pair's newest time counts: a part being written keeps its record.
        let other_time = files.iter().find(|(p, _)| *p == other).map(|(_, t)| *t);
        let newest = other_time.map_or(*modified, |t| t.max(*modified));
        let old = now.duration_since(newest).is_ok_and(|age| age >= max_age);
        // A half without its other half is left from a crash; give it a minute (it may be being
        // created).
        let lone = other_time.is_none() && now.duration_since(*modified).is_ok_and(|a| a.as_secs() >= 60);
        if (old || lone) && std::fs::remove_file(path).is_ok() {
            removed += 1;
        }
    }
    removed
}

fn tus(mut resp: Response) -> Response {
    resp.headers_mut().insert("tus-resumable", HeaderValue::from_static(VERSION));
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

fn valid_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `Upload-Metadata: key base64,key base64`.
pub(super) fn metadata(headers: &HeaderMap) -> std::collections::HashMap<String, String> {
    let raw = headers.get("upload-metadata").and_then(|v| v.to_str().ok()).unwrap_or("");
    raw.split(',')
        .filter_map(|pair| {
            let mut it = pair.trim().splitn(2, ' ');
            let k = it.next()?.to_string();
            let v = it.next().unwrap_or("");
            let v = base64::engine::general_purpose::STANDARD.decode(v.trim()).ok()?;
            Some((k, String::from_utf8(v).ok()?))
        })
        .collect()
}

/// `/api/tus`: OPTIONS (what the server supports) and POST (a new upload).
pub async fn collection(State(app): State<Arc<FilesApp>>, method: Method, headers: HeaderMap) -> Response {
    match method {
        Method::OPTIONS => {
            let mut r = StatusCode::NO_CONTENT.into_response();
            let h = r.headers_mut();
            h.insert("tus-version", HeaderValue::from_static(VERSION));
            h.insert("tus-extension", HeaderValue::from_static("creation,termination"));
            tus(r)
        }
        Method::POST => tus(create(&app, &headers).await.into_response()),
        _ => {
            tus(ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method", "use POST to start an upload").into_response())
        }
    }
}

async fn create(app: &Arc<FilesApp>, headers: &HeaderMap) -> Result<Response, ApiError> {
    let Some(length) = headers.get("upload-length").and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok()) else {
        return Err(ApiError::bad_request("no_length", "an upload needs Upload-Length (its size in bytes)"));
    };
    let meta = metadata(headers);
    let Some(name) = meta.get("filename").or_else(|| meta.get("name")) else {
        return Err(ApiError::bad_request("no_name", "say the file's name in Upload-Metadata (filename)"));
    };
    let dir = clean(meta.get("path").map_or("", String::as_str)).context("path")?;
    super::fs::check_name(name).context("filename")?;
    let target = dir.join(name);
    clean(&target.as_str()).context("filename")?;
    let conflict = meta.get("conflict").cloned().unwrap_or_else(|| "rename".into());
    if !matches!(conflict.as_str(), "rename" | "overwrite" | "skip") {
        return Err(ApiError::bad_request("bad_conflict", "conflict must be rename, overwrite or skip"));
    }
    if let Some((free, _)) = app.root.space() {
        if length > free {
            return Err(ApiError::new(
                StatusCode::INSUFFICIENT_STORAGE,
                "disk_full",
                format!(
                    "{name} needs {} and the workspace disk has {} free: free some space first (a Vast disk cannot grow)",
                    crate::human::bytes(length),
                    crate::human::bytes(free)
                ),
            ));
        }
    }
    let id = crate::random::hex(16).map_err(FsError::Io).context("cannot start the upload")?;
    let m = Meta { dir: dir.as_str(), name: name.clone(), length, conflict };
    let up = &app.uploads;
    let made = std::fs::create_dir_all(&up.dir)
        .and_then(|_| std::fs::write(up.part(&id), b""))
        .and_then(|_| std::fs::write(up.meta_path(&id), serde_json::to_vec(&m).unwrap_or_default()));
    if let Err(e) = made {
        up.forget(&id);
        return Err(FsError::from(e)).context("cannot start the upload");
    }
    let mut r = StatusCode::CREATED.into_response();
    r.headers_mut().insert(header::LOCATION, HeaderValue::from_str(&format!("/api/tus/{id}")).expect("ascii"));
    if length == 0 {
        return finish(app, &id, m, r).await;
    }
    Ok(r)
}

/// `/api/tus/{id}`: HEAD (where it stands), PATCH (more bytes), DELETE (cancel).
pub async fn upload(
    State(app): State<Arc<FilesApp>>,
    Path(id): Path<String>,
    method: Method,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let up = &app.uploads;
    let Some(meta) = valid_id(&id).then(|| up.meta(&id)).flatten() else {
        let gone =
            ApiError::new(StatusCode::NOT_FOUND, "no_upload", "no such upload (finished, cancelled or never started)");
        return tus(gone.into_response());
    };
    let offset = std::fs::metadata(up.part(&id)).map_or(0, |m| m.len());
    match method {
        Method::HEAD => {
            let mut r = StatusCode::OK.into_response();
            r.headers_mut().insert("upload-offset", HeaderValue::from(offset));
            r.headers_mut().insert("upload-length", HeaderValue::from(meta.length));
            tus(r)
        }
        Method::DELETE => {
            up.forget(&id);
            tus(StatusCode::NO_CONTENT.into_response())
        }
        Method::PATCH => {
            if !up.busy.lock().expect("busy lock").insert(id.clone()) {
                let busy = ApiError::new(StatusCode::CONFLICT, "busy", "this upload is being sent by another request");
                return tus(busy.into_response());
            }
            let r = patch(&app, &id, meta, offset, &headers, body).await;
            up.busy.lock().expect("busy lock").remove(&id);
            tus(r.into_response())
        }
        _ => tus(ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method", "use HEAD, PATCH or DELETE").into_response()),
    }
}

async fn patch(
    app: &Arc<FilesApp>,
    id: &str,
    meta: Meta,
    offset: u64,
    headers: &HeaderMap,
    mut body: Body,
) -> Result<Response, ApiError> {
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if ct != "application/offset+octet-stream" {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "content_type",
            "PATCH needs Content-Type: application/offset+octet-stream",
        ));
    }
    let claimed = headers.get("upload-offset").and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok());
    if claimed != Some(offset) {
        let message = format!("the upload is at byte {offset}; send from there");
        let mut r = ApiError::new(StatusCode::CONFLICT, "offset", message).into_response();
        r.headers_mut().insert("upload-offset", HeaderValue::from(offset));
        return Ok(r);
    }
    let path = app.uploads.part(id);
    let storing = format!("cannot store {}", meta.name);
    let file = super::blocking(move || std::fs::OpenOptions::new().append(true).open(path))
        .await
        .map_err(FsError::from)
        .context(&storing)?;
    let (_, written, end) = write_body(&mut body, file, offset, meta.length).await;
    let cut = match end {
        Ok(End::TooLong) => return Err(ApiError::bad_request("too_long", "more bytes than Upload-Length")),
        Ok(End::Cut) => true,
        Ok(End::Complete) => false,
        Err(e) => {
            let err = FsError::from(e);
            if matches!(err, FsError::NoSpace) {
                // A full disk: the partial upload goes, so that the disk is usable again.
                app.uploads.forget(id);
                return Err(ApiError::new(
                    StatusCode::INSUFFICIENT_STORAGE,
                    "disk_full",
                    format!("the disk is full: {} could not be stored and its partial upload was removed", meta.name),
                ));
            }
            return Err(err).context(&storing);
        }
    };
    let mut r = StatusCode::NO_CONTENT.into_response();
    r.headers_mut().insert("upload-offset", HeaderValue::from(written));
    if cut {
        // The connection dropped: what arrived is kept; the client resumes from Upload-Offset.
        return Ok(r);
    }
    if written == meta.length {
        return finish(app, id, meta, r).await;
    }
    Ok(r)
}

/// The last byte arrived: the file goes to its real name, by the upload's conflict rule.
async fn finish(app: &Arc<FilesApp>, id: &str, meta: Meta, mut ok: Response) -> Result<Response, ApiError> {
    let app2 = app.clone();
    let id2 = id.to_string();
    let result = tokio::task::spawn_blocking(move || -> Result<Option<String>, FsError> {
        let dir = clean(&meta.dir)?;
        let part = app2.uploads.part(&id2);
        let mut target = dir.join(&meta.name);
        let exists = app2.root.stat(&target).is_ok();
        if exists {
            match meta.conflict.as_str() {
                "skip" => {
                    app2.uploads.forget(&id2);
                    return Ok(None);
                }
                "rename" => target = free_name(&app2, &dir, &meta.name),
                _ => {}
            }
        }
        std::fs::File::open(&part)?.sync_all()?;
        // Another upload may take the free name first (several with one name finishing at
        // once): then the next free one, a few times.
        let mut tries = 0;
        let placed = loop {
            match app2.root.adopt(&part, &target, meta.conflict == "overwrite") {
                Err(FsError::Exists) if meta.conflict == "rename" && tries < 64 => {
                    tries += 1;
                    target = free_name(&app2, &dir, &meta.name);
                }
                other => break other,
            }
        };
        match placed {
            Ok(()) => app2.uploads.forget(&id2),
            // Every free name was taken meanwhile: the upload is over.
            Err(FsError::Exists) => app2.uploads.forget(&id2),
            // Another cause (a full disk, the folder deleted meanwhile): the bytes are kept, and
            // a PATCH of nothing at the end places them again once the cause is gone; untouched,
            // they go with the day's sweep.
            Err(_) => {}
        }
        placed?;
        Ok(Some(target.as_str()))
    })
    .await
    .unwrap_or_else(|e| Err(FsError::Io(std::io::Error::other(e.to_string()))));
    let placed = match result.context("the upload arrived but could not be put in place")? {
        Some(path) => HeaderValue::from_str(&format!("saved:/{}", crate::http::coding::encode(&path))).ok(),
        None => Some(HeaderValue::from_static("skipped")),
    };
    if let Some(v) = placed {
        ok.headers_mut().insert("x-gpubox-upload", v);
    }
    Ok(ok)
}

/// `name (1).ext`, `name (2).ext`, … : the first that does not exist.
fn free_name(app: &FilesApp, dir: &Rel, name: &str) -> Rel {
    let (stem, ext) = match name.rfind('.') {
        Some(i) if i > 0 => (&name[..i], &name[i..]),
        _ => (name, ""),
    };
    for n in 1.. {
        let candidate = dir.join(&format!("{stem} ({n}){ext}"));
        if app.root.stat(&candidate).is_err() {
            return candidate;
        }
    }
    unreachable!("some name is free")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abandoned_and_lone_uploads_are_swept_live_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(2 * 86400);
        let touch = |name: &str, when: std::time::SystemTime| {
            let f = std::fs::File::create(d.join(name)).unwrap();
            f.set_modified(when).unwrap();
        };
        touch("a.part", old);
        touch("a.json", old);
        touch("b.part", std::time::SystemTime::now());
        touch("b.json", old); // its part is being written: kept
        touch("c.part", old); // no record
        touch("d.json", std::time::SystemTime::now()); // just created, its part may follow
        touch("notes.txt", old);
        assert_eq!(sweep(d, ABANDONED), 3);
        let mut left: Vec<String> =
            std::fs::read_dir(d).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
        left.sort();
        assert_eq!(left, ["b.json", "b.part", "d.json", "notes.txt"]);
    }
}
