//! Pictures in the file manager: thumbnails for the grid and a shared folder's gallery
//! (`thumbs`), and what a picture says of how it was made (`meta`).

mod meta;
mod thumbs;

pub use thumbs::{thumbnailed, Thumbs};

use std::fs::File;
use std::io::{BufReader, Seek, SeekFrom};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use super::fs::{clean, FsError};
use super::{blocking, FilesApp, PathQuery};
use crate::http::{ApiError, Context, Params};

#[derive(Deserialize)]
pub(super) struct ThumbQuery {
    #[serde(default)]
    pub path: String,
    /// The longer side in pixels: 256 (the default) or 512 (for dense screens).
    #[serde(default)]
    pub size: Option<u32>,
}

/// `GET /api/thumb?path=&size=`: a picture's thumbnail (JPEG, or PNG when it is transparent).
pub(super) async fn thumb(
    State(app): State<Arc<FilesApp>>,
    headers: HeaderMap,
    Params(q): Params<ThumbQuery>,
) -> Result<Response, ApiError> {
    let rel = clean(&q.path).context("path")?;
    let shown = rel.as_str();
    let a = app.clone();
    serve_thumb(&app.thumbs, shown, q.size, &headers, move || a.root.open_file(&rel)).await
}

/// What `serve_thumb` found before the thumbnail thread is needed.
enum Found {
    Cached(String, Vec<u8>),
    Same(String),
    Make(String, File),
    /// Tried before: it is not a picture that can be read, for this reason.
    Bad(String),
    TooBig,
}

/// A thumbnail of the file `open` opens (beneath the root it belongs to); `shown` is its path
/// in the workspace, for the cache's key and for errors. Shared with share links.
pub(super) async fn serve_thumb(
    thumbs: &Thumbs,
    shown: String,
    size: Option<u32>,
    headers: &HeaderMap,
    open: impl FnOnce() -> Result<File, FsError> + Send + 'static,
) -> Result<Response, ApiError> {
    let side = match size {
        None => thumbs::SIDES[0],
        Some(s) if thumbs::SIDES.contains(&s) => s,
        Some(s) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_size",
                format!("size={s}: a thumbnail is 256 or 512 pixels; leave size out for 256"),
            ))
        }
    };
    let etag_in = headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()).map(str::to_string);
    let (dir, key_path) = (thumbs.dir().to_path_buf(), shown.clone());
    let found = blocking(move || {
        let f = open()?;
        let meta = f.metadata()?;
        if !meta.is_file() {
            return Err(FsError::NotAFile);
        }
        if meta.len() > thumbs::MAX_FILE {
            return Ok(Found::TooBig);
        }
        let key = Thumbs::key(&key_path, &meta, side);
        if etag_in.as_deref() == Some(format!("\"{key}\"").as_str()) {
            return Ok(Found::Same(key));
        }
        if let Ok(why) = std::fs::read_to_string(dir.join(format!("{key}.bad"))) {
            return Ok(Found::Bad(why));
        }
        Ok(match std::fs::read(dir.join(&key)) {
            Ok(bytes) => Found::Cached(key, bytes),
            Err(_) => Found::Make(key, f),
        })
    })
    .await
    .context(&format!("cannot read /{shown}"))?;
    let not_a_picture = |why: String| {
        ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "not_a_picture", format!("no thumbnail of /{shown}: {why}"))
    };
    let (key, bytes) = match found {
        Found::Bad(why) => return Err(not_a_picture(why)),
        Found::Same(key) => return Ok(reply(StatusCode::NOT_MODIFIED, &key, None)),
        Found::Cached(key, bytes) => (key, bytes),
        Found::TooBig => {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "too_big",
                format!(
                    "/{shown} is over {} MiB: no thumbnail is made for it; open it to see it",
                    thumbs::MAX_FILE >> 20
                ),
            ))
        }
        Found::Make(key, f) => match thumbs.make(f, key.clone(), side).await {
            Ok(bytes) => (key, bytes),
            Err(thumbs::Miss::Busy) => {
                let mut r = ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "busy",
                    "many thumbnails are being made; ask again in a moment",
                )
                .into_response();
                r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                return Ok(r);
            }
            Err(thumbs::Miss::Bad(why)) => return Err(not_a_picture(why)),
        },
    };
    Ok(reply(StatusCode::OK, &key, Some(bytes)))
}

fn reply(status: StatusCode, key: &str, bytes: Option<Vec<u8>>) -> Response {
    let kind = bytes.as_deref().map(thumbs::content_type);
    let mut r = Response::new(bytes.map(Body::from).unwrap_or_else(Body::empty));
    *r.status_mut() = status;
    let h = r.headers_mut();
    if let Some(kind) = kind {
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    }
    h.insert(header::ETAG, HeaderValue::from_str(&format!("\"{key}\"")).expect("hex"));
    // The page asks with the file's mtime in the URL, so a changed file is a new URL; a day in
    // the browser's cache, then asked again with the ETag.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, max-age=86400"));
    h.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    r
}

/// `GET /api/imageinfo?path=`: a picture's size in pixels and the generation text in it, split
/// into prompt, negative prompt and settings (`generation` is null when there is none; a file
/// that cannot be read as a picture has no size and no text, and that is not an error).
pub(super) async fn info(State(app): State<Arc<FilesApp>>, Params(q): Params<PathQuery>) -> Result<Response, ApiError> {
    let rel = q.rel()?;
    let shown = rel.as_str();
    let looked = blocking(move || {
        let f = app.root.open_file(&rel)?;
        let mut r = BufReader::new(f);
        let text = meta::read(&mut r).ok().flatten();
        let size = r
            .seek(SeekFrom::Start(0))
            .ok()
            .and_then(|_| image::ImageReader::new(r).with_guessed_format().ok().and_then(|i| i.into_dimensions().ok()));
        Ok::<_, FsError>((text, size))
    })
    .await
    .context(&format!("cannot read /{shown}"))?;
    let (text, size) = looked;
    Ok(Json(json!({
        "path": shown,
        "width": size.map(|s| s.0),
        "height": size.map(|s| s.1),
        "generation": text.map(|t| meta::parse(&t)),
    }))
    .into_response())
}
