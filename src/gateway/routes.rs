//! The one route that is not declared in a `RouteSet`: the proxy is the fallback of a proxied
//! listener, so its record is added by hand.

use std::borrow::Cow;

use crate::http::RouteSpec;

/// Everything else on a proxied port goes to the upstream.
pub const PROXY: RouteSpec = RouteSpec {
    method: Cow::Borrowed("ANY"),
    path: Cow::Borrowed("/{*path}"),
    example: Cow::Borrowed("/some/app/path?q=1"),
    public: false,
    websocket: true,
    owner: Cow::Borrowed("proxy"),
};
