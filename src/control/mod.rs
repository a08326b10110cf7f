//! The local API over a unix socket (mode 0600), and the client the CLI verbs use. It never
//! listens on TCP: whoever can open the socket is already root (or gpubox's user) on this box.

pub mod client;
pub mod protocol;
pub mod server;

use std::path::PathBuf;

/// The socket path: `--control`, else `$GPUBOX_CONTROL`, else `/run/gpubox/control.sock` for root
/// and a per-user runtime directory for anyone else (a laptop).
pub fn socket_path(flag: Option<PathBuf>) -> PathBuf {
    if let Some(p) = flag {
        return p;
    }
    if let Some(p) = std::env::var_os("GPUBOX_CONTROL").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let uid = nix::unistd::geteuid();
    if uid.is_root() {
        return PathBuf::from("/run/gpubox/control.sock");
    }
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|p| !p.is_empty()) {
        Some(dir) => PathBuf::from(dir).join("gpubox/control.sock"),
        None => PathBuf::from(format!("/tmp/gpubox-{uid}/control.sock")),
    }
}
