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
use super::{blocking, jobs, FilesApp};
use crate::http::{ApiError, Context, JsonBody};

#[derive(Deserialize)]
pub(super) struct PathBody {
    path: String,
}

pub(super) async fn mkdir(
    State(app): State<Arc<FilesApp>>,
    JsonBody(b): JsonBody<PathBody>,
) -> Result<Response, ApiError> {
    let rel = clean(&b.path).context("path")?;
    let shown = rel.as_str();
    blocking(move || app.root.mkdir(&rel)).await.context(&format!("cannot create /{shown}"))?;
    Ok((StatusCode::CREATED, Json(json!({ "created": shown }))).into_response())
}

#[derive(Deserialize)]
pub(super) struct RenameBody {
    from: String,
    to: String,
    #[serde(default)]
    overwrite: bool,
}

pub(super) async fn rename(
    State(app): State<Arc<FilesApp>>,
    JsonBody(b): JsonBody<RenameBody>,
) -> Result<Response, ApiError> {
    let from = clean(&b.from).context("from")?;
    let to = clean(&b.to).context("to")?;
    let answer = Json(json!({ "renamed": from.as_str(), "to": to.as_str() }));
    let shown = format!("/{} → /{}", from.as_str(), to.as_str());
    blocking(move || app.root.rename(&from, &to, b.overwrite)).await.context(&format!("cannot move {shown}"))?;
    Ok(answer.into_response())
}

#[derive(Deserialize)]
pub(super) struct DeleteBody {
    paths: Vec<String>,
}

/// Deletes files and folders, permanently (there is no trash: the disk cannot grow).
pub(super) async fn delete(
    State(app): State<Arc<FilesApp>>,
    JsonBody(b): JsonBody<DeleteBody>,
) -> Result<Response, ApiError> {
    let rels: Vec<Rel> = b.paths.iter().map(|p| clean(p)).collect::<Result<_, _>>().context("paths")?;
    if rels.iter().any(Rel::is_root) {
        return Err(FsError::BadPath("the workspace itself cannot be deleted".into())).context("paths");
    }
    blocking(move || {
        for rel in &rels {
            app.root.remove(rel).context(&format!("cannot delete /{}", rel.as_str()))?;
        }
        Ok(Json(json!({ "deleted": rels.iter().map(Rel::as_str).collect::<Vec<_>>() })).into_response())
    })
    .await
}

pub(super) async fn jobs_list(State(app): State<Arc<FilesApp>>) -> Response {
    Json(json!({ "jobs": app.jobs.list() })).into_response()
}

pub(super) async fn jobs_cancel(
    State(app): State<Arc<FilesApp>>,
    axum::extract::Path(id): axum::extract::Path<u64>,
) -> Result<StatusCode, ApiError> {
    if app.jobs.cancel(id) {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::new(StatusCode::NOT_FOUND, "no_job", "no such job"))
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
pub(super) async fn jobs_start(
    State(app): State<Arc<FilesApp>>,
    JsonBody(j): JsonBody<NewJob>,
) -> Result<Response, ApiError> {
    let a = app.clone();
    let id = match j {
        NewJob::Copy { paths, to } => {
            let sources: Vec<Rel> = paths.iter().map(|p| clean(p)).collect::<Result<_, _>>().context("paths")?;
            let to = clean(&to).context("to")?;
            let label = format!("copy {} item(s) to /{}", sources.len(), to.as_str());
            app.jobs.start("copy", label, move |job| jobs::copy(&a.root, job, &sources, &to))
        }
        NewJob::Extract { path, to } => {
            let archive = clean(&path).context("path")?;
            match to.map(|t| clean(&t)).transpose().context("to")? {
                Some(into) => {
                    let label = format!("extract /{} into /{}", archive.as_str(), into.as_str());
                    app.jobs.start("extract", label, move |job| jobs::extract(&a.root, job, &archive, &into))
                }
                // Beside the archive: its one top folder, else a folder named after it.
                None => {
                    let name = archive.name().unwrap_or("archive");
                    let stem = [".tar.gz", ".tar.zst", ".tgz", ".tzst", ".zip", ".tar"]
                        .iter()
                        .find_map(|e| name.to_ascii_lowercase().ends_with(e).then(|| &name[..name.len() - e.len()]))
                        .unwrap_or(name)
                        .to_string();
                    let label = format!("extract /{} here", archive.as_str());
                    app.jobs.start("extract", label, move |job| jobs::extract_here(&a.root, job, &archive, &stem))
                }
            }
        }
        NewJob::Fetch { url, to } => {
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                return Err(ApiError::bad_request("bad_url", "give an http(s) URL"));
            }
            let dir = clean(&to).context("to")?;
            let label = format!("fetch {url} into /{}", dir.as_str());
            app.jobs.start("fetch", label, move |job| jobs::fetch(&a.root, job, &a.scratch, &url, &dir))
        }
    };
    Ok((StatusCode::ACCEPTED, Json(json!({ "id": id }))).into_response())
}
