//! The file manager (port 7010), rooted at the workspace. Every path goes through `fs.rs`, which
//! resolves it beneath an open handle on the root. The API is in docs/files.md.

mod archive;
mod body;
mod browse;
mod dav;
pub mod fs;
mod images;
mod jobs;
mod models;
mod names;
mod ops;
#[cfg(test)]
mod props;
mod shares;
mod transfer;
mod tus;

use browse::{list, search, sha256, space};
use ops::{delete, jobs_cancel, jobs_list, jobs_start, mkdir, rename};
pub(crate) use transfer::Pool;
use transfer::{archive_download, download, save};
use transfer::{parse_range, stream_file};

use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Html;

use super::ShellFn;
use crate::http::routes::RouteSet;
use crate::http::{ApiError, Context};
use fs::{clean, FsError, Rel, Root};
use serde::Deserialize;

pub struct FilesApp {
    root: Root,
    shell: ShellFn,
    uploads: tus::Uploads,
    jobs: jobs::Jobs,
    /// gpubox's private scratch area for downloads in progress.
    scratch: PathBuf,
    shares: Arc<shares::Shares>,
    thumbs: images::Thumbs,
    models: models::Models,
    /// What went wrong while starting (the share links' file), for gpubox's log.
    pub problems: Vec<String>,
}

impl FilesApp {
    pub fn new(workspace: PathBuf, state_dir: PathBuf, shell: ShellFn) -> std::io::Result<Arc<FilesApp>> {
        let root = Root::open(&workspace, &state_dir)?;
        let uploads = tus::Uploads::new(state_dir.join("uploads"));
        let (shares, problem) = shares::Shares::load(&state_dir);
        // Downloads a previous run left half-done: job ids start again at 1, and a new job must
        // not find (and resume) another file's bytes under its folder.
        let _ = std::fs::remove_dir_all(state_dir.join("fetch"));
        Ok(Arc::new(FilesApp {
            root,
            shell,
            uploads,
            jobs: jobs::Jobs::default(),
            scratch: state_dir.join("fetch"),
            shares: Arc::new(shares),
            thumbs: images::Thumbs::new(state_dir.join("thumbs")),
            models: models::Models::load(&state_dir),
            problems: problem.into_iter().collect(),
        }))
    }
}

/// Every route of the app.
pub fn routes() -> RouteSet<Arc<FilesApp>> {
    RouteSet::new("files")
        .get("/", "/", page)
        .get("/api/list", "/api/list?path=", list)
        .get("/api/file", "/api/file?path=none", download)
        .put("/api/file", "/api/file?path=none", save)
        .get("/api/archive", "/api/archive?paths=none", archive_download)
        .get("/api/sha256", "/api/sha256?path=none", sha256)
        .get("/api/search", "/api/search?path=&q=none", search)
        .get("/api/thumb", "/api/thumb?path=none", images::thumb)
        .get("/api/imageinfo", "/api/imageinfo?path=none", images::info)
        .get("/api/models", "/api/models", models::list)
        .post("/api/models/resolve", "/api/models/resolve", models::resolve_link)
        .post("/api/models/add", "/api/models/add", models::add)
        .post("/api/models/identify", "/api/models/identify", models::identify)
        .get("/api/space", "/api/space", space)
        .post("/api/mkdir", "/api/mkdir", mkdir)
        .post("/api/rename", "/api/rename", rename)
        .post("/api/delete", "/api/delete", delete)
        .get("/api/jobs", "/api/jobs", jobs_list)
        .post("/api/jobs", "/api/jobs", jobs_start)
        .delete("/api/jobs/{id}", "/api/jobs/0", jobs_cancel)
        .any("/dav", "/dav", dav::handle)
        .any("/dav/", "/dav/", dav::handle)
        .any("/dav/{*path}", "/dav/none", dav::handle)
        .any("/api/tus", "/api/tus", tus::collection)
        .any("/api/tus/{id}", "/api/tus/none", tus::upload)
        .get("/api/shares", "/api/shares", shares::list)
        .post("/api/shares", "/api/shares", shares::create)
        .delete("/api/shares/{id}", "/api/shares/none", shares::revoke)
        // Share links: the only routes of the app that answer without a login.
        .public_get("/.gpubox/s/{id}", "/.gpubox/s/none", shares::show)
        .public_post("/.gpubox/s/{id}", "/.gpubox/s/none", shares::unlock)
        .public_get("/.gpubox/s/{id}/file", "/.gpubox/s/none/file", shares::file)
        .public_get("/.gpubox/s/{id}/zip", "/.gpubox/s/none/zip", shares::zip)
        .public_get("/.gpubox/s/{id}/thumb", "/.gpubox/s/none/thumb", shares::thumb)
}

/// The one map from a file-system error to an HTTP status and code. WebDAV differs in two
/// places, for reasons of its RFC (`dav::status`).
pub(super) fn fs_status(e: &FsError) -> (StatusCode, &'static str) {
    match e {
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
    }
}

impl From<FsError> for ApiError {
    fn from(e: FsError) -> ApiError {
        let (status, code) = fs_status(&e);
        ApiError::new(status, code, e.to_string())
    }
}

/// `?path=`: one workspace path (empty: the workspace itself).
#[derive(Deserialize)]
pub(super) struct PathQuery {
    #[serde(default)]
    path: String,
}

impl PathQuery {
    pub(super) fn rel(&self) -> Result<Rel, ApiError> {
        clean(&self.path).context("path")
    }
}

async fn page(State(app): State<Arc<FilesApp>>, headers: HeaderMap) -> Html<String> {
    Html((app.shell)(&headers).app("Files", "files"))
}

pub(super) async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("a blocking task panicked")
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
