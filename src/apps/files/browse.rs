//! Looking at the workspace: listings, the disk's space, a file's SHA-256, search.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::body::channel_body;
use super::fs::{self, FsError};
use super::{blocking, FilesApp, PathQuery};
use crate::http::{ApiError, Context, Params};

pub(super) async fn list(State(app): State<Arc<FilesApp>>, Params(q): Params<PathQuery>) -> Result<Response, ApiError> {
    let rel = q.rel()?;
    let shown = rel.as_str();
    blocking(move || {
        let entries = app.root.list(&rel).context(&format!("cannot list /{shown}"))?;
        {
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
            Ok(Json(Listing { path: &shown, entries: &entries, free, total }).into_response())
        }
    })
    .await
}

pub(super) async fn space(State(app): State<Arc<FilesApp>>) -> Response {
    let (free, total) = app.root.space().unwrap_or((0, 0));
    Json(json!({ "free": free, "total": total, "used": total.saturating_sub(free) })).into_response()
}

pub(super) async fn sha256(
    State(app): State<Arc<FilesApp>>,
    Params(q): Params<PathQuery>,
) -> Result<Response, ApiError> {
    let rel = q.rel()?;
    let shown = rel.as_str();
    blocking(move || {
        let result = (|| {
            let f = app.root.open_file(&rel)?;
            Ok::<_, FsError>(crate::provision::download::sha256_read(f, |_| true)?)
        })();
        let (hex, bytes) = result.context(&format!("cannot read /{shown}"))?;
        Ok(Json(json!({ "path": shown, "sha256": hex, "bytes": bytes })).into_response())
    })
    .await
}

#[derive(serde::Deserialize)]
pub(super) struct SearchQuery {
    #[serde(default)]
    path: String,
    #[serde(default)]
    q: String,
}

/// Names containing `q` (any case) below `path`, as JSON lines while they are found.
pub(super) async fn search(
    State(app): State<Arc<FilesApp>>,
    Params(sq): Params<SearchQuery>,
) -> Result<Response, ApiError> {
    let rel = fs::clean(&sq.path).context("path")?;
    let q = sq.q.to_lowercase();
    if q.is_empty() {
        return Err(ApiError::bad_request("bad_query", "give something to look for: ?q="));
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
    let mut resp = Response::new(channel_body(rx));
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-ndjson"));
    Ok(resp)
}
