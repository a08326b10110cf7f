//! The record of one route: what `gpubox routes` prints, what the gateway's guard reads to know
//! what is public, and what the all-routes auth test walks.

use serde::Serialize;

#[derive(Debug, Clone, Copy, Serialize)]
pub struct RouteSpec {
    /// `GET`, `POST`, or `ANY`.
    pub method: &'static str,
    /// As axum writes it: `/.gpubox/login`, `/.gpubox/assets/{file}`, `/{*path}`.
    pub path: &'static str,
    /// A concrete path that reaches this route, for tests.
    pub example: &'static str,
    /// Answers without credentials.
    pub public: bool,
    /// Also accepts a WebSocket upgrade.
    pub websocket: bool,
    /// Whose route it is: `gpubox` (the reserved prefix), `proxy`, or an app's name.
    pub owner: &'static str,
}

/// The routes of one listener, as `gpubox routes` reports them.
#[derive(Debug, Clone, Serialize)]
pub struct SiteRoutes {
    pub service: String,
    pub port: u16,
    pub routes: Vec<RouteSpec>,
}
