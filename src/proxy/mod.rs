//! The streaming reverse proxy: requests and responses flow through without buffering (SSE
//! events arrive when the upstream sends them), WebSocket upgrades are tunnelled, upstream
//! connections are pooled, and while the service is not ready a page says so. It does not
//! authenticate: the gateway did.

mod headers;
mod waiting;

pub use waiting::describe;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderName, StatusCode, Uri, Version};
use axum::response::{IntoResponse, Response};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};

use crate::config::Upstream;
use crate::http::pages::ShellFn;
use crate::http::{api_error, headers::is_websocket};
use crate::logs::Hub;
use crate::supervisor::Supervisor;

/// One proxied port: where to, and what its waiting page needs (the service's state and log, the
/// page shell). It is the proxy's whole state: the proxy knows nothing of the gateway.
pub struct Proxy {
    service: String,
    upstream: Upstream,
    /// `host:port` of the upstream, for its requests' URIs.
    authority: Option<axum::http::uri::Authority>,
    max_body: Option<u64>,
    sup: Arc<Supervisor>,
    hub: Hub,
    shell: ShellFn,
}

thread_local! {
    /// One upstream connection pool per thread: each gateway thread runs its own runtime, and
    /// a connection made and used on one thread never wakes another.
    static CLIENT: Client<HttpConnector, Body> = {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(10)));
        // No request or idle timeout: a generation can stream for many minutes with quiet gaps.
        Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(256)
            .http1_max_buf_size(1 << 20)
            .build(connector)
    };
}

impl Proxy {
    pub fn new(
        service: &str,
        upstream: Upstream,
        max_body: Option<u64>,
        sup: Arc<Supervisor>,
        hub: Hub,
        shell: ShellFn,
    ) -> Proxy {
        let host = &upstream.host;
        let authority = if host.contains(':') {
            format!("[{host}]:{}", upstream.port)
        } else {
            format!("{host}:{}", upstream.port)
        };
        let authority = authority.parse().ok();
        Proxy { service: service.to_string(), upstream, authority, max_body, sup, hub, shell }
    }

    /// The proxy as a router of its own: everything it is given goes upstream.
    pub fn router(self: Arc<Proxy>) -> axum::Router {
        axum::Router::new().fallback(|State(proxy), ConnectInfo(peer), req| handle(proxy, peer, req)).with_state(self)
    }
}

/// Everything outside `/.gpubox/` on a proxied listener, once the gateway has let it through.
pub async fn handle(proxy: Arc<Proxy>, peer: SocketAddr, req: Request) -> Response {
    if let Some(resp) = waiting::unless_ready(&proxy, &req) {
        return resp;
    }
    forward(&proxy, peer, req).await
}

async fn forward(proxy: &Proxy, peer: SocketAddr, mut req: Request) -> Response {
    if let Some(max) = proxy.max_body {
        let declared = req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        if declared.is_some_and(|n| n > max) {
            return api_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                &format!("the request body is larger than this service's max_body ({max} bytes)"),
            );
        }
    }
    let websocket = is_websocket(req.headers());
    // What an error page needs of the request, kept before the headers are rewritten (shared
    // values: no copy).
    const PAGE_HEADERS: [HeaderName; 4] = [
        header::HOST,
        header::ACCEPT,
        HeaderName::from_static("x-forwarded-host"),
        HeaderName::from_static("x-forwarded-proto"),
    ];
    let kept = PAGE_HEADERS.map(|name| req.headers().get(&name).cloned());
    let page_headers = move || {
        let mut h = axum::http::HeaderMap::new();
        for (name, v) in PAGE_HEADERS.into_iter().zip(kept) {
            if let Some(v) = v {
                h.insert(name, v);
            }
        }
        h
    };
    let client_side = websocket.then(|| hyper::upgrade::on(&mut req));
    let (mut parts, body) = req.into_parts();
    let mut uri = std::mem::take(&mut parts.uri).into_parts();
    uri.scheme = Some(axum::http::uri::Scheme::HTTP);
    uri.authority = proxy.authority.clone();
    if uri.path_and_query.is_none() {
        uri.path_and_query = Some(axum::http::uri::PathAndQuery::from_static("/"));
    }
    let Ok(uri) = Uri::from_parts(uri) else {
        return match &proxy.authority {
            None => api_error(
                StatusCode::BAD_GATEWAY,
                "bad_upstream",
                &format!(
                    "the upstream address {}:{} is not a valid host and port; correct `upstream` in the configuration",
                    proxy.upstream.host, proxy.upstream.port
                ),
            ),
            Some(_) => api_error(StatusCode::BAD_REQUEST, "bad_uri", "this request's path cannot be forwarded"),
        };
    };
    parts.uri = uri;
    parts.version = Version::HTTP_11;
    headers::for_upstream(&mut parts.headers, peer, websocket);
    let over = proxy.max_body.map(|_| Arc::new(std::sync::atomic::AtomicBool::new(false)));
    let body = match (proxy.max_body, &over) {
        (Some(max), Some(over)) => Body::new(Capped { inner: body, left: max, over: over.clone() }),
        _ => body,
    };
    let client = CLIENT.with(Client::clone);
    let mut resp = match client.request(Request::from_parts(parts, body)).await {
        Ok(resp) => resp,
        // Whatever error the client reports (the body's, or the upstream's answer to a cut body),
        // a body that went over max_body is the cause.
        Err(_) if over.as_ref().is_some_and(|o| o.load(std::sync::atomic::Ordering::Relaxed)) => {
            // A body without a length (chunked) that went over max_body on the way.
            return api_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                &format!(
                    "the request body is larger than this service's max_body ({} bytes)",
                    proxy.max_body.unwrap_or(0)
                ),
            );
        }
        Err(e) => return waiting::unreachable(proxy, &page_headers(), &connect_error(&e)),
    };
    if websocket && resp.status() == StatusCode::SWITCHING_PROTOCOLS {
        let upstream_side = hyper::upgrade::on(&mut resp);
        if let Some(client_side) = client_side {
            tokio::spawn(async move {
                if let (Ok(client), Ok(upstream)) = (client_side.await, upstream_side.await) {
                    // What the browser sends over it (keys in a notebook or an editor) is
                    // someone using the instance, for the idle stop.
                    let mut client = crate::alerts::idle::Touching(TokioIo::new(client));
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut TokioIo::new(upstream)).await;
                }
            });
        }
        return resp.map(Body::new).into_response();
    }
    headers::from_upstream(resp.headers_mut());
    resp.map(Body::new).into_response()
}

/// A request body that stops with an error, and says so in `over`, once it passes `left` bytes
/// (a chunked body declares no length to check beforehand).
struct Capped {
    inner: Body,
    left: u64,
    over: Arc<std::sync::atomic::AtomicBool>,
}

impl hyper::body::Body for Capped {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        match std::pin::Pin::new(&mut self.inner).poll_frame(cx) {
            std::task::Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    let n = data.len() as u64;
                    if n > self.left {
                        self.over.store(true, std::sync::atomic::Ordering::Relaxed);
                        return std::task::Poll::Ready(Some(Err(axum::Error::new(
                            "the request body is larger than max_body",
                        ))));
                    }
                    self.left -= n;
                }
                std::task::Poll::Ready(Some(Ok(frame)))
            }
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

/// The innermost cause of a client error: "Connection refused (os error 111)" rather than
/// "client error (Connect)".
fn connect_error(e: &hyper_util::client::legacy::Error) -> String {
    let mut source: &dyn std::error::Error = e;
    while let Some(next) = source.source() {
        source = next;
    }
    source.to_string()
}

impl Proxy {
    pub fn service(&self) -> &str {
        &self.service
    }

    pub fn upstream(&self) -> &Upstream {
        &self.upstream
    }
}
