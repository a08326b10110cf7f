//! Every route a listener serves, as data: the gateway builds its access rules from this table,
//! and the auth test walks it (through `gpubox routes`), so a route added to the table is tested
//! without anyone remembering to.

use crate::http::RouteSpec;

const fn route(method: &'static str, path: &'static str, example: &'static str, public: bool) -> RouteSpec {
    RouteSpec { method, path, example, public, websocket: false, owner: "gpubox" }
}

/// gpubox's own routes, on every port. Only these four are public.
pub const RESERVED: &[RouteSpec] = &[
    route("GET", "/.gpubox/health", "/.gpubox/health", true),
    route("GET", "/.gpubox/login", "/.gpubox/login", true),
    route("POST", "/.gpubox/login", "/.gpubox/login", true),
    route("GET", "/.gpubox/assets/{file}", "/.gpubox/assets/gpubox.css", true),
    route("GET", "/.gpubox/", "/.gpubox/", false),
    route("GET", "/.gpubox/session", "/.gpubox/session", false),
    route("GET", "/.gpubox/api/services/{name}", "/.gpubox/api/services/app", false),
    route("POST", "/.gpubox/logout", "/.gpubox/logout", false),
];

/// Everything else on a proxied port goes to the upstream.
pub const PROXY: RouteSpec = RouteSpec {
    method: "ANY",
    path: "/{*path}",
    example: "/some/app/path?q=1",
    public: false,
    websocket: true,
    owner: "proxy",
};

/// Whether a request for `method` and `path` is one of the public routes in `table`.
pub fn is_public(table: &[RouteSpec], method: &str, path: &str) -> bool {
    table.iter().any(|r| r.public && (r.method == "ANY" || r.method == method) && path_matches(r.path, path))
}

fn path_matches(template: &str, path: &str) -> bool {
    match template.find('{') {
        // One trailing parameter: one path segment after the prefix (no `/`, no `..`).
        Some(i) if template.ends_with('}') && !template[i..].starts_with("{*") => {
            let rest = path.strip_prefix(&template[..i]);
            rest.is_some_and(|r| !r.is_empty() && !r.contains('/') && r != ".." && r != ".")
        }
        Some(i) => path.starts_with(&template[..i]),
        None => template == path,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_listed_routes_are_public() {
        assert!(is_public(RESERVED, "GET", "/.gpubox/health"));
        assert!(is_public(RESERVED, "POST", "/.gpubox/login"));
        assert!(is_public(RESERVED, "GET", "/.gpubox/assets/gpubox.css"));
        assert!(!is_public(RESERVED, "POST", "/.gpubox/health"));
        assert!(!is_public(RESERVED, "GET", "/.gpubox/assets/../session"));
        assert!(!is_public(RESERVED, "GET", "/.gpubox/assets/a/b"));
        assert!(!is_public(RESERVED, "GET", "/.gpubox/healthz"));
        assert!(!is_public(RESERVED, "GET", "/.gpubox/session"));
        assert!(!is_public(RESERVED, "GET", "/"));
    }
}
