//! Looking at the workspace: listings, the disk's space, a file's SHA-256, search.

use std::io::Read;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::fs::{self, FsError};
use super::{arg_path, blocking, fs_error, Args, FilesApp};
use crate::http::api_error;

pub(super) async fn list(State(app): State<Arc<FilesApp>>, Query(args): Args) -> Response {
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

pub(super) async fn space(State(app): State<Arc<FilesApp>>) -> Response {
    let (free, total) = app.root.space().unwrap_or((0, 0));
    Json(json!({ "free": free, "total": total, "used": total.saturating_sub(free) })).into_response()
}

pub(super) async fn sha256(State(app): State<Arc<FilesApp>>, Query(args): Args) -> Response {
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
pub(super) async fn search(State(app): State<Arc<FilesApp>>, Query(args): Args) -> Response {
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
