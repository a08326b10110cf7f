//! gpubox: the program inside our Vast.ai images. It supervises every service (with PID 1
//! duties), keeps all their logs, and is driven from its CLI over a local control socket.
//!
//! # Layout
//!
//! Data flows one way: config → supervisor → log hub → readers.
//!
//! - `config`: the TOML schema, `${VAR}` expansion, validation with file:line errors.
//! - `process`: spawning children (sessions, PTYs, users) and reaping them, orphans included.
//! - `supervisor`: services: restarts with backoff, readiness, dependency order, shutdown.
//!   Knows nothing about HTTP.
//! - `logs`: the log hub: per-service ring buffers, rotated files, the stdout mirror,
//!   reads by sequence number, `\r` progress-line handling.
//! - `control`: the unix-socket API and its client.
//! - `metrics`: the machine's and GPUs' history (5 s samples, 24 h), saved across restarts.
//! - `alerts`: what the user is told (webhook, ntfy, Discord, Slack), and the opt-in idle stop.
//! - `cli`: the `gpubox` verbs; `cli::run` assembles the parts for `gpubox run`.

mod alerts;
mod apps;
mod atomic;
mod auth;
mod cli;
mod config;
mod control;
mod gateway;
mod http;
mod human;
mod logs;
mod metrics;
mod process;
mod provision;
mod proxy;
mod random;
mod supervisor;
mod tunnels;

// Every module is private to the crate: the binary needs the CLI, and the integration tests talk
// to a running gpubox through its control socket (and check files with the downloader's hash).
pub use cli::{dispatch, Cli, Command};

/// What the integration tests use besides the binary.
pub mod api {
    pub use crate::control::client::Client;
    pub use crate::control::protocol::Request;
    pub use crate::http::coding::encode;
    pub use crate::provision::download::sha256_file;
}
