//! The HTTP vocabulary every part speaks, and nothing else: error answers, cookies, headers,
//! percent coding, the page shell and the route record. It is a leaf: it imports nothing of
//! gpubox's, so the gateway, the proxy and the apps can all use it without importing each other
//! (see docs/architecture.md and the layering test, `tests/layers.rs`).

pub mod coding;
pub mod cookies;
pub mod headers;
pub mod pages;
pub mod routes;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

pub use routes::RouteSpec;

/// An error answer: `{"error": {"code", "message"}}` with its status.
pub fn api_error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, axum::Json(json!({ "error": { "code": code, "message": message } }))).into_response()
}
