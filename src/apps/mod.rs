//! gpubox's own web apps. Each is a function that returns a `Router` over a small context; the
//! gateway mounts it on its port behind the login, and adds the app's [`RouteSpec`]s to the table
//! that the auth tests walk. An app never reaches into another app or into the supervisor's
//! internals: it reads snapshots and subscribes to streams.
//!
//! [`RouteSpec`]: crate::http::RouteSpec

pub mod files;
pub mod logs;
pub mod terminal;

pub use crate::http::pages::ShellFn;
