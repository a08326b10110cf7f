//! The gate in front of every route: `?token=` login, public routes, credentials (session
//! cookie, HTTP Basic, Bearer token), the Origin rule, and refusals that never send a Basic
//! challenge to a browser.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::Site;
use crate::auth::Denial;
pub use crate::http::api_error;
use crate::http::coding::{decode_form, encode};
pub use crate::http::cookies::{clear_cookie, cookie, cookies, set_cookie, set_device_cookie, COOKIE};
pub use crate::http::headers::{accepts_html, is_https, is_websocket, local_path, redirect};

/// How a request proved who it is; put in the request's extensions for handlers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Who {
    Session(String),
    Basic,
    Bearer,
}

/// What the outer layer found out about the credentials while handling `?token=`, so the
/// guard neither checks them twice nor loses a throttled answer.
#[derive(Clone)]
struct Checked(Result<Who, Denial>);

/// Around every request: the Host rule, then `?token=` logins. Vast's Open button sends
/// `?token=`: it logs the browser in, then the same URL without the token follows. A request that
/// already has valid credentials does not spend a token check (nor count a failure): it is only
/// sent on without the token.
pub async fn front(
    State(site): State<Arc<Site>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut req: Request,
    next: Next,
) -> Response {
    if let Some(resp) = host_refused(&site, &req) {
        return hardened(resp);
    }
    let Some(token) = site.ctx.token_login.then(|| query_param(req.uri(), "token")).flatten() else {
        return next.run(req).await;
    };
    let auth = &site.ctx.auth;
    let ip = peer.ip();
    let https = is_https(req.headers());
    let clean = without_param(req.uri(), "token");
    // Only ever redirect to a path here: `//evil.example/?token=…` must not leave the site.
    let target = local_path(&clean).unwrap_or_else(|| "/".to_string());
    let who = match identify(&site, req.headers(), ip).await {
        Ok(_) if req.method() == Method::GET => return redirect(&target),
        Ok(who) => {
            if let Ok(uri) = clean.parse::<Uri>() {
                *req.uri_mut() = uri;
            }
            Ok(who)
        }
        // Even when the address is throttled: a token is checked at any rate (see Auth).
        Err(_) => {
            let a = auth.clone();
            let login = tokio::task::spawn_blocking(move || a.login_with_token(&token, ip)).await;
            match login.unwrap_or(Err(Denial::Invalid)) {
                Ok(id) => {
                    let mut resp = redirect(&target);
                    set_cookie(&mut resp, &id, auth.session_ttl.as_secs(), https);
                    return resp;
                }
                Err(Denial::Throttled(wait)) => Err(Denial::Throttled(wait)),
                // A wrong token is a request without valid credentials.
                Err(_) => Err(Denial::Invalid),
            }
        }
    };
    req.extensions_mut().insert(Checked(who));
    next.run(req).await
}

/// Sent by gpubox's pages with the requests they make by themselves (refreshes, polling): those
/// are not activity for the idle stop.
pub const BACKGROUND: &str = "x-gpubox-background";

/// What EventSource and WebSocket send instead (they cannot set headers): `gpubox_background=1`
/// in the query.
pub const BACKGROUND_QUERY: &str = "gpubox_background=1";

fn background(req: &Request) -> bool {
    req.headers().contains_key(BACKGROUND)
        || req.uri().query().is_some_and(|q| q.split('&').any(|kv| kv == BACKGROUND_QUERY))
}

/// Around each public route: only the Origin rule.
pub async fn public(req: Request, next: Next) -> Response {
    if !origin_ok(req.headers(), req.method(), false) {
        return hardened(forbidden_origin());
    }
    next.run(req).await
}

/// Around every route that is not public, the proxy and the not-found answer included: valid
/// credentials, then the Origin rule. Renews the session cookie on page loads.
pub async fn guard(
    State(site): State<Arc<Site>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut req: Request,
    next: Next,
) -> Response {
    let who = match req.extensions_mut().remove::<Checked>() {
        Some(Checked(who)) => who,
        None => identify(&site, req.headers(), peer.ip()).await,
    };
    admit(&site, who, req, |mut req, who| {
        req.extensions_mut().insert(who);
        next.run(req)
    })
    .await
}

/// The guard's rule for a request whose credentials were checked: refused without valid ones or
/// from another site's page; else `run`, and a page load renews the session cookie.
async fn admit<F, Fut>(site: &Site, who: Result<Who, Denial>, req: Request, run: F) -> Response
where
    F: FnOnce(Request, Who) -> Fut,
    Fut: std::future::Future<Output = Response>,
{
    let who = match who {
        Ok(who) => who,
        Err(denial) => return hardened(refuse(site, &req, denial)),
    };
    let proxied = site.proxied(req.uri().path());
    if !origin_ok(req.headers(), req.method(), proxied) {
        return hardened(forbidden_origin());
    }
    let navigation = accepts_html(req.headers()) && req.method() == Method::GET;
    let https = is_https(req.headers());
    // Someone used the instance (the idle stop's clock) — unless it is one of gpubox's pages
    // refreshing itself: a tab left open must not keep a rented GPU running.
    if !background(&req) {
        crate::alerts::idle::ACTIVITY.touch();
    }
    let renew = match (&who, navigation) {
        (Who::Session(id), true) => Some(id.clone()),
        _ => None,
    };
    let mut resp = run(req, who).await;
    // Sliding expiry: a page load renews the cookie along with the server-side session.
    if let Some(id) = renew {
        set_cookie(&mut resp, &id, site.ctx.auth.session_ttl.as_secs(), https);
    }
    resp
}

/// The client's address: the TCP peer's, unless the peer is a trusted proxy (`[http]
/// trusted_proxies`): then the nearest address in `X-Forwarded-For` that is not itself a trusted
/// proxy, walking from the right; an entry that does not read as an address ends the walk at the
/// peer (a client's own made-up entries are to its left). `CF-Connecting-IP` is believed only
/// from a trusted peer on loopback (a `cloudflared` tunnel on this machine, which sets it): a
/// proxy elsewhere may pass a client's own on. `tunnel`: the connection came in on a quick
/// tunnel's own origin port, where the peer is cloudflared and trusted whatever the list says.
/// From any other peer none of this is believed. This address is what the login throttle counts.
pub fn client_addr(
    trusted: &[crate::config::units::Cidr],
    peer: SocketAddr,
    tunnel: bool,
    headers: &HeaderMap,
) -> SocketAddr {
    let is_trusted = |ip: std::net::IpAddr| trusted.iter().any(|c| c.contains(ip.to_canonical()));
    if !tunnel && !is_trusted(peer.ip()) {
        return peer;
    }
    let parse = |s: &str| s.trim().parse::<std::net::IpAddr>().ok();
    if tunnel || peer.ip().to_canonical().is_loopback() {
        if let Some(ip) = headers.get("cf-connecting-ip").and_then(|v| v.to_str().ok()).and_then(parse) {
            return SocketAddr::new(ip, 0);
        }
    }
    let hops: Vec<&str> =
        headers.get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).collect();
    for hop in hops.iter().rev() {
        match parse(hop) {
            Some(ip) if is_trusted(ip) => continue,
            Some(ip) => return SocketAddr::new(ip, 0),
            None => return peer,
        }
    }
    peer
}

/// Whether a request can take the proxy's short way (see [`proxied`]): a path that goes
/// upstream, and no `?token=` login to handle.
pub fn takes_short_way(site: &Site, uri: &Uri) -> bool {
    site.proxied(uri.path())
        && !(site.ctx.token_login && uri.query().is_some_and(|q| q.split('&').any(|kv| kv.starts_with("token="))))
}

/// A request for the upstream, the same rules as through the router (the Host rule, the
/// credentials, the Origin rule, the cookie's renewal) without its layers: every proxied request
/// passes here, and the router's boxed middleware and route lookup cost it about a third of its
/// user-space time together with the old header rules (docs/benchmarks.md). Only for requests
/// that [`takes_short_way`].
pub async fn proxied(site: Arc<Site>, peer: SocketAddr, req: Request) -> Response {
    if let Some(resp) = host_refused(&site, &req) {
        return hardened(resp);
    }
    let Some(proxy) = site.proxy.clone() else { return crate::gateway::reserved::reserved_not_found().await };
    let who = identify(&site, req.headers(), peer.ip()).await;
    admit(&site, who, req, |req, _| crate::proxy::handle(proxy, peer, req)).await
}

/// The Host rule (see `hosts.rs`): one `Host` header, naming this instance. The health check
/// answers under any name (monitors may use one).
fn host_refused(site: &Site, req: &Request) -> Option<Response> {
    let mut all = req.headers().get_all(header::HOST).iter();
    let (first, second) = (all.next(), all.next());
    if second.is_some() {
        return Some(api_error(StatusCode::BAD_REQUEST, "bad_host", "the request has two Host headers"));
    }
    let host = first.map(|v| v.to_str().unwrap_or("\u{fffd}"))?;
    // A tunnel's name is the instance's (cloudflared said it is ours).
    let tunnel = || site.ctx.tunnels.link_of_host(host).is_some();
    if site.ctx.hosts.allows(host) || req.uri().path() == "/.gpubox/health" || tunnel() {
        return None;
    }
    let message = format!(
        "gpubox does not answer to the name \"{host}\". If it is yours, add it to `allowed_hosts` in the [http] table of gpubox's configuration, or to GPUBOX_ALLOWED_HOSTS (names separated by commas; \"*.example.org\" allows its subdomains), and restart. Addresses, localhost and the cloud's own proxy names are always accepted. (This protects against DNS rebinding: a web page that points its own name at this machine.)"
    );
    Some(if accepts_html(req.headers()) {
        let shell = site.shell(req.headers(), false);
        let body =
            format!("<div class=\"card\"><h1>Unknown name</h1><p>{}</p></div>", crate::http::pages::escape(&message));
        (StatusCode::MISDIRECTED_REQUEST, axum::response::Html(shell.page("Unknown name", &body))).into_response()
    } else {
        api_error(StatusCode::MISDIRECTED_REQUEST, "unknown_host", &message)
    })
}

fn hardened(mut resp: Response) -> Response {
    crate::http::headers::harden(resp.headers_mut());
    resp
}

/// Credentials, in order: the session cookie, then an Authorization header.
async fn identify(site: &Site, headers: &HeaderMap, ip: std::net::IpAddr) -> Result<Who, Denial> {
    let auth = &site.ctx.auth;
    let mut denial = Denial::Missing;
    // Each session cookie sent, not only the first: one with a narrower path that an app set
    // must not log the user out on every port.
    for id in cookies(headers, COOKIE).take(8) {
        if auth.check_session(&id) {
            return Ok(Who::Session(id));
        }
        denial = Denial::Invalid;
    }
    let Some(value) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) else {
        return Err(denial);
    };
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    if scheme.eq_ignore_ascii_case("basic") {
        if auth.basic_recently_ok(rest) {
            return Ok(Who::Basic);
        }
        // Argon2 takes tens of milliseconds: off the request threads.
        let (auth, rest) = (auth.clone(), rest.to_string());
        let checked = tokio::task::spawn_blocking(move || auth.check_basic(&rest, ip)).await;
        checked.unwrap_or(Err(Denial::Invalid)).map(|_| Who::Basic)
    } else if scheme.eq_ignore_ascii_case("bearer") {
        auth.check_bearer(rest.trim(), ip).map(|_| Who::Bearer)
    } else {
        Err(Denial::Invalid)
    }
}

/// A browser is sent to the login page; anything else gets 401 (or 429) with a JSON body, and
/// never a `WWW-Authenticate: Basic` challenge (a browser would cache those credentials, and
/// every other site could then ride on them).
fn refuse(site: &Site, req: &Request, denial: Denial) -> Response {
    let websocket = is_websocket(req.headers());
    if let Denial::Throttled(wait) = denial {
        let secs = wait.as_secs().max(1);
        let message = format!("too many failed logins from this address; try again in {secs} s");
        let mut resp = if accepts_html(req.headers()) && !websocket {
            let shell = site.shell(req.headers(), false);
            (
                StatusCode::TOO_MANY_REQUESTS,
                axum::response::Html(crate::http::pages::login(&shell, "/", "", Some(&message))),
            )
                .into_response()
        } else {
            api_error(StatusCode::TOO_MANY_REQUESTS, "throttled", &message)
        };
        resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        return resp;
    }
    if accepts_html(req.headers()) && req.method() == Method::GET && !websocket {
        let next = req.uri().path_and_query().map_or("/", |p| p.as_str());
        return redirect(&format!("/.gpubox/login?next={}", encode(next)));
    }
    let message = match denial {
        Denial::Missing => "log in first: the login page, HTTP Basic with the instance's USERNAME and PASSWORD, or Authorization: Bearer <token>",
        _ => "these credentials are not valid (wrong password, unknown or expired session)",
    };
    let mut resp = api_error(StatusCode::UNAUTHORIZED, "unauthorized", message);
    // WebDAV clients (Finder, Explorer, rclone) ask for credentials only when challenged. Only
    // there, and never for a page a browser navigates to (handled above).
    let path = req.uri().path();
    let dav = site.routes.iter().any(|r| r.path == "/dav/{*path}");
    if dav && (path == "/dav" || path.starts_with("/dav/")) {
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"gpubox WebDAV\", charset=\"UTF-8\""),
        );
    }
    resp
}

fn forbidden_origin() -> Response {
    api_error(
        StatusCode::FORBIDDEN,
        "cross_origin",
        "refused: this request comes from a page on another site (its Origin is not this host and port)",
    )
}

/// A WebSocket upgrade or a state-changing request must come from a page of this very host and
/// port. No `Origin` at all is not a browser (browsers always send it on these requests).
/// `Origin: null` is accepted only on a state-changing request through the proxy that the
/// browser itself marks `Sec-Fetch-Site: same-origin`: Forge's pages send `no-referrer`, which
/// makes their same-origin POSTs carry `Origin: null`, while a sandboxed frame or a page on
/// another site that also sends `null` is marked `cross-site`. A WebSocket never passes with
/// `null`.
pub fn origin_ok(headers: &HeaderMap, method: &Method, proxied: bool) -> bool {
    let changes = !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
    if !changes && !is_websocket(headers) {
        return true;
    }
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    if origin == "null" {
        let same_origin = headers.get("sec-fetch-site").is_some_and(|v| v.as_bytes() == b"same-origin");
        return proxied && changes && !is_websocket(headers) && same_origin;
    }
    let Some((scheme, authority)) = origin.split_once("://") else { return false };
    let origin_authority = with_default_port(authority, scheme);
    let scheme_here = if is_https(headers) { "https" } else { "http" };
    ["x-forwarded-host", "host"].iter().any(|h| {
        headers
            .get(*h)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .is_some_and(|host| with_default_port(host.trim(), scheme_here).eq_ignore_ascii_case(&origin_authority))
    })
}

fn with_default_port(authority: &str, scheme: &str) -> String {
    let has_port = match authority.rfind(']') {
        Some(i) => authority[i..].contains(':'),
        None => authority.contains(':'),
    };
    if has_port {
        authority.to_string()
    } else {
        format!("{authority}:{}", if scheme == "https" { 443 } else { 80 })
    }
}

fn query_param(uri: &Uri, name: &str) -> Option<String> {
    uri.query()?.split('&').filter_map(|kv| kv.split_once('=')).find(|(k, _)| *k == name).map(|(_, v)| decode_form(v))
}

fn without_param(uri: &Uri, name: &str) -> String {
    let path = uri.path();
    let rest: Vec<&str> = uri
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|kv| !kv.is_empty() && kv.split('=').next() != Some(name))
        .collect();
    if rest.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{}", rest.join("&"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(), v.parse().unwrap());
        }
        h
    }

    #[test]
    fn origin_rules() {
        let same = headers(&[("host", "1.2.3.4:41234"), ("origin", "http://1.2.3.4:41234")]);
        assert!(origin_ok(&same, &Method::POST, false));
        let other_port = headers(&[("host", "1.2.3.4:41234"), ("origin", "http://1.2.3.4:7010")]);
        assert!(!origin_ok(&other_port, &Method::POST, false));
        assert!(!origin_ok(&other_port, &Method::POST, true));
        assert!(origin_ok(&other_port, &Method::GET, false), "a plain GET is not checked");
        let null = headers(&[("host", "h:8010"), ("origin", "null"), ("sec-fetch-site", "same-origin")]);
        assert!(!origin_ok(&null, &Method::POST, false));
        assert!(origin_ok(&null, &Method::POST, true));
        let null_cross = headers(&[("host", "h:8010"), ("origin", "null"), ("sec-fetch-site", "cross-site")]);
        assert!(!origin_ok(&null_cross, &Method::POST, true), "a sandboxed frame elsewhere");
        assert!(!origin_ok(&headers(&[("host", "h:8010"), ("origin", "null")]), &Method::POST, true));
        let null_ws =
            headers(&[("host", "h"), ("origin", "null"), ("sec-fetch-site", "same-origin"), ("upgrade", "websocket")]);
        assert!(!origin_ok(&null_ws, &Method::GET, true), "never a WebSocket with Origin: null");
        let ws = headers(&[("host", "h:7020"), ("origin", "http://evil.example"), ("upgrade", "websocket")]);
        assert!(!origin_ok(&ws, &Method::GET, false));
        let default_port = headers(&[("host", "h"), ("origin", "http://h:80")]);
        assert!(origin_ok(&default_port, &Method::DELETE, false));
        let behind_tls = headers(&[("host", "h"), ("x-forwarded-proto", "https"), ("origin", "https://h")]);
        assert!(origin_ok(&behind_tls, &Method::POST, false));
        assert!(origin_ok(&headers(&[("host", "h")]), &Method::POST, false), "no Origin: not a browser");
    }

    #[test]
    fn the_client_is_the_peer_unless_a_trusted_proxy_says_otherwise() {
        let trusted: Vec<crate::config::units::Cidr> =
            vec!["127.0.0.1".parse().unwrap(), "10.0.0.0/8".parse().unwrap()];
        let proxy: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let stranger: SocketAddr = "198.51.100.9:5000".parse().unwrap();
        let cf = headers(&[("cf-connecting-ip", "203.0.113.7"), ("x-forwarded-for", "192.0.2.1")]);
        assert_eq!(client_addr(&trusted, proxy, false, &cf).ip().to_string(), "203.0.113.7", "a tunnel on loopback");
        assert_eq!(client_addr(&trusted, stranger, false, &cf), stranger, "not believed from others");
        let lan: SocketAddr = "10.0.0.5:5000".parse().unwrap();
        assert_eq!(
            client_addr(&trusted, lan, false, &cf).ip().to_string(),
            "192.0.2.1",
            "CF-Connecting-IP only on loopback"
        );
        assert_eq!(client_addr(&[], proxy, false, &cf), proxy, "nothing trusted: the peer");
        // A quick tunnel's own origin port: cloudflared, believed though nothing is listed.
        assert_eq!(client_addr(&[], proxy, true, &cf).ip().to_string(), "203.0.113.7");
        // An IPv4 peer on an IPv6 socket is the IPv4 address.
        let mapped: SocketAddr = "[::ffff:127.0.0.1]:5000".parse().unwrap();
        assert_eq!(client_addr(&trusted, mapped, false, &cf).ip().to_string(), "203.0.113.7");
        // The nearest hop that is not a trusted proxy: a client's own made-up entries come first.
        let chain = headers(&[("x-forwarded-for", "6.6.6.6, 192.0.2.1, 10.1.1.1")]);
        assert_eq!(client_addr(&trusted, proxy, false, &chain).ip().to_string(), "192.0.2.1");
        let garbage = headers(&[("x-forwarded-for", "not-an-ip"), ("cf-connecting-ip", "nope")]);
        assert_eq!(client_addr(&trusted, proxy, false, &garbage), proxy);
        // A hop with a port does not read as an address: the walk stops there, at the peer,
        // rather than reaching the client's own entry to its left.
        let port = headers(&[("x-forwarded-for", "6.6.6.6, 203.0.113.5:54321")]);
        assert_eq!(client_addr(&trusted, proxy, false, &port), proxy);
    }

    #[test]
    fn cookies_and_query_strings() {
        let h = headers(&[("cookie", "a=1; gpubox_session=abc; b=2")]);
        assert_eq!(cookie(&h, COOKIE).as_deref(), Some("abc"));
        let uri: Uri = "/x/y?a=1&token=t%2Bk&b=2".parse().unwrap();
        assert_eq!(query_param(&uri, "token").as_deref(), Some("t+k"));
        assert_eq!(without_param(&uri, "token"), "/x/y?a=1&b=2");
        assert_eq!(without_param(&"/?token=x".parse().unwrap(), "token"), "/");

        assert_eq!(encode("/a b?c=d"), "/a%20b%3Fc%3Dd");
        assert_eq!(local_path("/a/b?c=1").as_deref(), Some("/a/b?c=1"));
        for bad in ["//evil.example/", "/\\evil", "/\t/evil", "evil", "", "/a\r\nSet-Cookie: x"] {
            assert_eq!(local_path(bad), None, "{bad:?}");
        }
    }
}
