//! Request headers read the same way everywhere, and the security headers of gpubox's own answers.

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

pub fn is_websocket(headers: &HeaderMap) -> bool {
    headers.get(header::UPGRADE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

pub fn accepts_html(headers: &HeaderMap) -> bool {
    headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains("text/html"))
}

pub fn is_https(headers: &HeaderMap) -> bool {
    headers
        .get(const { axum::http::HeaderName::from_static("x-forwarded-proto") })
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').next().is_some_and(|p| p.trim().eq_ignore_ascii_case("https")))
}

/// `s` if it is a path on this very listener that is safe to send a browser to, else `None`:
/// it starts with one `/` (`//evil.example` would be another host) and holds no backslash and no
/// control character (browsers drop tabs and newlines from URLs, so `/\t/evil` becomes
/// `//evil`, and read `\` as `/`).
pub fn local_path(s: &str) -> Option<String> {
    let ok = s.starts_with('/') && !s[1..].starts_with('/') && !s.bytes().any(|b| b == b'\\' || b < 0x20 || b == 0x7f);
    ok.then(|| s.to_string())
}

pub fn redirect(to: &str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, to.to_string())]).into_response()
}

/// Adds gpubox's security headers to an answer that gpubox wrote itself (its pages, errors and
/// refusals), leaving any that are already set.
pub fn harden(h: &mut HeaderMap) {
    let set = |h: &mut HeaderMap, name: &'static str, value: &'static str| {
        h.entry(name).or_insert(HeaderValue::from_static(value));
    };
    set(
        h,
        "content-security-policy",
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; \
connect-src 'self' ws: wss:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'self'",
    );
    set(h, "x-content-type-options", "nosniff");
    set(h, "referrer-policy", "same-origin");
    set(h, "x-frame-options", "SAMEORIGIN");
    set(h, "cache-control", "no-store");
}
