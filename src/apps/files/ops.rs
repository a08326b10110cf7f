//! Changing the workspace: new folders, renames and moves, deletes, and the long jobs (copy,
//! extract, fetch) that run on threads of their own.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use super::fs::{clean, FsError, Rel};
use super::{blocking, fs_error, jobs, FilesApp};
use crate::http::api_error;

#[derive(Deserialize)]
pub(super) struct PathBody {
    path: String,
}

pub(super) async fn mkdir(State(app): State<Arc<FilesApp>>, Json(b): Json<PathBody>) -> Response {
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
pub(super) struct RenameBody {
    from: String,
    to: String,
    #[serde(default)]
    overwrite: bool,
}

pub(super) async fn rename(State(app): State<Arc<FilesApp>>, Json(b): Json<RenameBody>) -> Response {
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
pub(super) struct DeleteBody {
    paths: Vec<String>,
}

/// Deletes files and folders, permanently (there is no trash: the disk cannot grow).
pub(super) async fn delete(State(app): State<Arc<FilesApp>>, Json(b): Json<DeleteBody>) -> Response {
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

pub(super) async fn jobs_list(State(app): State<Arc<FilesApp>>) -> Response {
    Json(json!({ "jobs": app.jobs.list() })).into_response()
}

pub(super) async fn jobs_cancel(
    State(app): State<Arc<FilesApp>>,
    axum::extract::Path(id): axum::extract::Path<u64>,
) -> Response {
    if app.jobs.cancel(id) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        api_error(StatusCode::NOT_FOUND, "no_job", "no such job")
    }
}

#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub(super) enum NewJob {
    Copy { paths: Vec<String>, to: String },
    Extract { path: String, to: Option<String> },
    Fetch { url: String, to: String },
}

/// Starts a long operation; answers 202 with its id at once.
pub(super) async fn jobs_start(State(app): State<Arc<FilesApp>>, Json(j): Json<NewJob>) -> Response {
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
