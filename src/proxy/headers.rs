//! Header rules for the proxy (RFC 9110 §7.6.1): hop-by-hop headers stay on their hop, gpubox's
//! own credentials never reach the upstream, and the upstream learns who asked and how.

use std::net::SocketAddr;

use axum::http::{header, HeaderMap, HeaderName, HeaderValue};

use crate::auth::COOKIE;

const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Removes hop-by-hop headers, and those the `Connection` header names.
fn strip_hop_by_hop(h: &mut HeaderMap) {
    let named: Vec<HeaderName> = h
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        h.remove(name);
    }
    for name in HOP_BY_HOP {
        h.remove(*name);
    }
}

pub fn for_upstream(h: &mut HeaderMap, peer: SocketAddr, websocket: bool) {
    strip_hop_by_hop(h);
    if websocket {
        h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    }
    h.remove(header::AUTHORIZATION);
    // gpubox's session cookie is gpubox's; the app's own cookies pass.
    let others: Vec<String> = h
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .map(str::trim)
        .filter(|kv| !kv.is_empty() && kv.split('=').next() != Some(COOKIE))
        .map(String::from)
        .collect();
    h.remove(header::COOKIE);
    if !others.is_empty() {
        if let Ok(v) = HeaderValue::from_str(&others.join("; ")) {
            h.insert(header::COOKIE, v);
        }
    }
    let ip = peer.ip().to_string();
    let xff = match h.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
        Some(prior) => format!("{prior}, {ip}"),
        None => ip,
    };
    if let Ok(v) = HeaderValue::from_str(&xff) {
        h.insert("x-forwarded-for", v);
    }
    if !h.contains_key("x-forwarded-proto") {
        h.insert("x-forwarded-proto", HeaderValue::from_static("http"));
    }
    if let Some(host) = h.get(header::HOST).cloned() {
        h.entry("x-forwarded-host").or_insert(host);
    }
}

pub fn from_upstream(h: &mut HeaderMap) {
    strip_hop_by_hop(h);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_and_hop_headers_stay_here() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, "1.2.3.4:41234".parse().unwrap());
        h.insert(header::AUTHORIZATION, "Basic YWRtaW46YWRtaW4=".parse().unwrap());
        h.insert(header::COOKIE, format!("a=1; {COOKIE}=secret; b=2").parse().unwrap());
        h.insert(header::CONNECTION, "keep-alive, x-private".parse().unwrap());
        h.insert("x-private", "1".parse().unwrap());
        h.insert("x-forwarded-for", "9.9.9.9".parse().unwrap());
        for_upstream(&mut h, "10.0.0.7:5555".parse().unwrap(), false);
        assert!(h.get(header::AUTHORIZATION).is_none());
        assert_eq!(h.get(header::COOKIE).unwrap(), "a=1; b=2");
        assert!(h.get("x-private").is_none() && h.get(header::CONNECTION).is_none());
        assert_eq!(h.get("x-forwarded-for").unwrap(), "9.9.9.9, 10.0.0.7");
        assert_eq!(h.get("x-forwarded-proto").unwrap(), "http");
        assert_eq!(h.get("x-forwarded-host").unwrap(), "1.2.3.4:41234");
        assert_eq!(h.get(header::HOST).unwrap(), "1.2.3.4:41234", "Host passes as the client sent it");
    }
}
