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

/// What a handler returns when it refuses: answered as [`api_error`]. Handlers return
/// `Result<_, ApiError>` and use `?`; a module's own error type converts into it in one place
/// (`From`), so each error has one status.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { status, code, message: message.into() }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// Says what was being done: `cannot list /models: not found`.
    pub fn context(mut self, what: &str) -> ApiError {
        self.message = format!("{what}: {}", self.message);
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        api_error(self.status, self.code, &self.message)
    }
}

/// Adds what was being done to an error on its way to an [`ApiError`].
pub trait Context<T> {
    fn context(self, what: &str) -> Result<T, ApiError>;
}

impl<T, E: Into<ApiError>> Context<T> for Result<T, E> {
    fn context(self, what: &str) -> Result<T, ApiError> {
        self.map_err(|e| e.into().context(what))
    }
}

/// A typed query string (`?path=…&inline=1`). Unlike axum's `Query`, a query that does not fit
/// is answered like every other error, as JSON: 400 `bad_parameter` with serde's reason.
pub struct Params<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> axum::extract::FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(q) => Ok(Params(q.0)),
            Err(e) => {
                let text = e.body_text();
                let reason = text.strip_prefix("Failed to deserialize query string: ").unwrap_or(&text);
                Err(ApiError::bad_request("bad_parameter", format!("in the query: {reason}")))
            }
        }
    }
}

/// For query fields: an empty value is none, anything else a whole number
/// (`#[serde(default, deserialize_with = "crate::http::whole")]`).
pub fn whole<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: std::str::FromStr,
{
    let v: Option<String> = serde::Deserialize::deserialize(d)?;
    match v.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => {
            v.parse().map(Some).map_err(|_| serde::de::Error::custom(format!("must be a whole number, not \"{v}\"")))
        }
    }
}

/// For query fields: `1`, `true`, `yes` or `on` is true, anything else (or nothing) false
/// (`#[serde(default, deserialize_with = "crate::http::flag")]`).
pub fn flag<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    let v: Option<String> = serde::Deserialize::deserialize(d)?;
    Ok(matches!(v.as_deref(), Some("1" | "true" | "yes" | "on")))
}

/// A typed JSON body, refused as JSON like every other error (400 `bad_body`, or 415 without a
/// JSON content type).
pub struct JsonBody<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> axum::extract::FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(j) => Ok(JsonBody(j.0)),
            Err(e) => Err(ApiError::new(e.status(), "bad_body", e.body_text())),
        }
    }
}
