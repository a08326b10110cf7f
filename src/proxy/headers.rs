//! Header rules for the proxy (RFC 9110 §7.6.1): hop-by-hop headers stay on their hop, gpubox's
//! own credentials never reach the upstream, and the upstream learns who asked and how.

use std::fmt::Write;
use std::net::SocketAddr;

use axum::http::{header, HeaderMap, HeaderName, HeaderValue};

use crate::http::cookies::COOKIE;

// Header names as constants: a `&str` name is parsed and hashed anew on every lookup, and these
// run on every proxied request.
const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
const PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

const HOP_BY_HOP: [HeaderName; 9] = [
    header::CONNECTION,
    KEEP_ALIVE,
    PROXY_CONNECTION,
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// Removes hop-by-hop headers, and those the `Connection` header names.
fn strip_hop_by_hop(h: &mut HeaderMap) {
    if h.contains_key(header::CONNECTION) {
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
    }
    for name in &HOP_BY_HOP {
        if h.contains_key(name) {
            h.remove(name);
        }
    }
}

/// Whether a `Cookie` header value holds gpubox's session cookie.
fn holds_own_cookie(v: &HeaderValue) -> bool {
    v.as_bytes()
        .split(|b| *b == b';')
        .any(|kv| kv.split(|b| *b == b'=').next().is_some_and(|k| k.trim_ascii() == COOKIE.as_bytes()))
}

pub fn for_upstream(h: &mut HeaderMap, peer: SocketAddr, websocket: bool) {
    // A request framed by Transfer-Encoding is forwarded with its body as read (chunked); a
    // Content-Length beside it would let the upstream frame the body differently (smuggling).
    if h.contains_key(header::TRANSFER_ENCODING) {
        h.remove(header::CONTENT_LENGTH);
    }
    strip_hop_by_hop(h);
    if websocket {
        h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    }
    if h.contains_key(header::AUTHORIZATION) {
        h.remove(header::AUTHORIZATION);
    }
    // gpubox's session cookie is gpubox's; the app's own cookies pass. A request whose cookies
    // are all the app's keeps its header as it is.
    if h.get_all(header::COOKIE).iter().any(holds_own_cookie) {
        let mut others = String::new();
        for kv in h.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';')) {
            let kv = kv.trim();
            if !kv.is_empty() && kv.split('=').next() != Some(COOKIE) {
                if !others.is_empty() {
                    others.push_str("; ");
                }
                others.push_str(kv);
            }
        }
        h.remove(header::COOKIE);
        if let Ok(v) = HeaderValue::from_str(&others) {
            if !others.is_empty() {
                h.insert(header::COOKIE, v);
            }
        }
    }
    let mut xff = String::with_capacity(64);
    if let Some(prior) = h.get(X_FORWARDED_FOR).and_then(|v| v.to_str().ok()) {
        xff.push_str(prior);
        xff.push_str(", ");
    }
    let _ = write!(xff, "{}", peer.ip());
    if let Ok(v) = HeaderValue::from_str(&xff) {
        h.insert(X_FORWARDED_FOR, v);
    }
    // `https` when the request came over gpubox's own TLS (`[tls]`: set by the gateway whatever
    // the client wrote) or a TLS proxy in front says so; anything else is replaced.
    let proto = if crate::http::headers::is_https(h) { "https" } else { "http" };
    h.insert(X_FORWARDED_PROTO, HeaderValue::from_static(proto));
    if !h.contains_key(X_FORWARDED_HOST) {
        if let Some(host) = h.get(header::HOST).cloned() {
            h.insert(X_FORWARDED_HOST, host);
        }
    }
}

pub fn from_upstream(h: &mut HeaderMap) {
    strip_hop_by_hop(h);
    // The upstream may not set (or clear) gpubox's own session cookie.
    let own = |v: &HeaderValue| {
        v.as_bytes().split(|b| *b == b'=').next().is_some_and(|n| n.trim_ascii() == COOKIE.as_bytes())
    };
    if h.get_all(header::SET_COOKIE).iter().any(own) {
        let cookies: Vec<HeaderValue> = h.get_all(header::SET_COOKIE).iter().cloned().collect();
        h.remove(header::SET_COOKIE);
        for v in cookies.into_iter().filter(|v| !own(v)) {
            h.append(header::SET_COOKIE, v);
        }
    }
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

    #[test]
    fn framing_and_forwarded_proto_are_not_the_clients_to_choose() {
        let mut h = HeaderMap::new();
        h.insert(header::TRANSFER_ENCODING, "chunked".parse().unwrap());
        h.insert(header::CONTENT_LENGTH, "5".parse().unwrap());
        h.insert("x-forwarded-proto", "gopher".parse().unwrap());
        for_upstream(&mut h, "10.0.0.7:5555".parse().unwrap(), false);
        assert!(h.get(header::CONTENT_LENGTH).is_none() && h.get(header::TRANSFER_ENCODING).is_none());
        assert_eq!(h.get("x-forwarded-proto").unwrap(), "http");
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-proto", "https".parse().unwrap());
        for_upstream(&mut h, "10.0.0.7:5555".parse().unwrap(), false);
        assert_eq!(h.get("x-forwarded-proto").unwrap(), "https");
    }

    #[test]
    fn the_upstream_cannot_set_gpubox_session() {
        let mut h = HeaderMap::new();
        h.append(header::SET_COOKIE, "app=1; Path=/".parse().unwrap());
        h.append(header::SET_COOKIE, format!("{COOKIE}=forged; Path=/").parse().unwrap());
        h.append(header::SET_COOKIE, format!("{COOKIE}_x=fine").parse().unwrap());
        from_upstream(&mut h);
        let left: Vec<_> = h.get_all(header::SET_COOKIE).iter().map(|v| v.to_str().unwrap().to_string()).collect();
        assert_eq!(left, ["app=1; Path=/", "gpubox_session_x=fine"]);
    }
}
