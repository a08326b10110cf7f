//! gpubox: the program inside our Vast.ai images. It supervises every service (with PID 1
//! duties), keeps all their logs, and is driven from its CLI over a local control socket.
//!
//! # Layout
//!
//! Data flows one way: config → supervisor → log hub → readers.
//!
//! - [`config`]: the TOML schema, `${VAR}` expansion, validation with file:line errors.
//! - [`process`]: spawning children (sessions, PTYs, users) and reaping them, orphans included.
//! - [`supervisor`]: services: restarts with backoff, readiness, dependency order, shutdown.
//!   Knows nothing about HTTP.
//! - [`logs`]: the log hub: per-service ring buffers, rotated files, the stdout mirror,
//!   reads by sequence number, `\r` progress-line handling.
//! - [`control`]: the unix-socket API and its client.
//! - [`cli`]: the `gpubox` verbs; `cli::run` assembles the parts for `gpubox run`.

pub mod apps;
pub mod auth;
pub mod cli;
pub mod config;
pub mod control;
pub mod gateway;
pub mod http;
pub mod human;
pub mod logs;
pub mod process;
pub mod provision;
pub mod proxy;
pub mod random;
pub mod supervisor;
