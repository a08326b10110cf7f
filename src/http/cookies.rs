//! Reading and setting gpubox's cookies: the session (`gpubox_session`) and the device cookie.

use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::Response;

/// The session cookie's name.
pub const COOKIE: &str = "gpubox_session";
/// The device cookie's name (see `auth::device`).
pub const DEVICE_COOKIE: &str = "gpubox_device";
/// Set (by the page) when the default-login warning is hidden for the browser's session.
pub const BANNER_COOKIE: &str = "gpubox_banner";
/// A year: the device cookie only names the browser for the throttle.
pub const DEVICE_TTL_SECS: u64 = 365 * 24 * 3600;

/// The first cookie called `name`.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    cookies(headers, name).next()
}

/// Every cookie called `name`, in the order sent: a browser sends two of one name when they
/// differ in path or domain (an app on the same host may set its own), the more specific first.
pub fn cookies<'a>(headers: &'a HeaderMap, name: &'a str) -> impl Iterator<Item = String> + 'a {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .filter(move |(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

pub fn set_cookie(resp: &mut Response, id: &str, max_age: u64, https: bool) {
    let secure = if https { "; Secure" } else { "" };
    let value = format!("{COOKIE}={id}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}");
    if let Ok(v) = HeaderValue::from_str(&value) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
}

/// The device cookie (see `auth::device`): long-lived, sent only to gpubox's login.
pub fn set_device_cookie(resp: &mut Response, value: &str, https: bool) {
    let secure = if https { "; Secure" } else { "" };
    let value = format!(
        "{}={value}; Path=/.gpubox/login; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
        DEVICE_COOKIE, DEVICE_TTL_SECS
    );
    if let Ok(v) = HeaderValue::from_str(&value) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
}

pub fn clear_cookie(resp: &mut Response) {
    let value = format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0");
    resp.headers_mut().append(header::SET_COOKIE, HeaderValue::from_str(&value).expect("ascii"));
}
