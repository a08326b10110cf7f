//! `[tunnels]`: Cloudflare tunnels in front of the ports, each a `cloudflared` that gpubox runs
//! as a service of its own (so it is restarted when it dies, and its output is in the logs).
//!
//! - `quick = true`: a quick tunnel (`https://<words>.trycloudflare.com`, no account) for every
//!   port whose service says `tunnel = true`, as the service `tunnel-<name>`;
//! - `token = "..."` (a named tunnel's token from Cloudflare's dashboard): one `cloudflared
//!   tunnel run`, as the service `tunnel`; its hostnames are the ingress rules the dashboard
//!   holds, which cloudflared logs when it receives them.
//!
//! The public addresses are read from cloudflared's output at run time (`tunnels/`).

use std::path::Path;
use std::time::Duration;

use serde::Serialize;
use toml::Spanned;

use super::raw::RawTunnels;
use super::validate::Ctx;
use super::{Backoff, RestartPolicy, Service};

/// `[tunnels]` as validated, with the services it adds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TunnelSettings {
    pub quick: bool,
    /// A named tunnel's token (`CF_TUNNEL_TOKEN`); never shown.
    #[serde(skip)]
    pub token: Option<String>,
    /// Whether a token is set, for `config show`.
    pub named: bool,
    pub program: String,
    /// Why no tunnel runs although one was asked for (cloudflared is not installed): said once
    /// in the log and on the status pages, while the ports serve as ever.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    /// The tunnel services added, and what each serves.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tunnels: Vec<Tunnel>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Tunnel {
    /// The service that runs it (`tunnel-files`, `tunnel`).
    pub service: String,
    /// For a quick tunnel: the service and port it serves. `None`: the named tunnel, whose
    /// ingress rules say which ports it serves.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serves: Option<(String, u16)>,
}

/// The name of the service that runs the named tunnel.
pub const NAMED: &str = "tunnel";
/// The prefix of a quick tunnel's service name.
pub const QUICK_PREFIX: &str = "tunnel-";

/// A port that asks for a quick tunnel: its service's name and the port.
pub struct Wanted {
    pub name: String,
    pub port: u16,
}

/// Validates `[tunnels]` and makes the services that run cloudflared. `taken`: the names of the
/// services written in the configuration, with where (file index, span of the name); `written`:
/// whether any service says `tunnel` at all (one said wrongly is reported there, not here).
pub fn settings(
    cx: &mut Ctx,
    raw: &RawTunnels,
    wanted: &[Wanted],
    written: bool,
    taken: &[(String, usize, std::ops::Range<usize>)],
    workspace: &Path,
    state_dir: &Path,
) -> (TunnelSettings, Vec<Service>) {
    let quick = raw.quick.as_ref().is_some_and(|v| super::validate::flag(cx, v, "tunnels.quick"));
    let token = raw.token.as_ref().and_then(|t| cx.expand(t, "tunnels.token")).filter(|t| !t.trim().is_empty());
    let program = match &raw.program {
        Some(p) => cx.expand(p, "tunnels.program").unwrap_or_default(),
        None => "cloudflared".to_string(),
    };
    let mut settings = TunnelSettings {
        quick,
        named: token.is_some(),
        token: token.map(|t| t.trim().to_string()),
        program: program.clone(),
        problem: None,
        tunnels: Vec::new(),
    };
    if quick && !written {
        if let Some(q) = &raw.quick {
            cx.error(
                q.span(),
                "tunnels.quick",
                "quick tunnels are on, but no port asks for one".into(),
                Some("add tunnel = true to each service whose port should get a tunnel".into()),
            );
        }
    }
    // (service name, the port it serves: none for the named tunnel)
    let mut planned: Vec<(String, Option<&Wanted>)> = Vec::new();
    if quick {
        planned.extend(wanted.iter().map(|w| (format!("{QUICK_PREFIX}{}", w.name), Some(w))));
    }
    if settings.token.is_some() {
        planned.push((NAMED.to_string(), None));
    }
    // A name the tunnels need, written for another service: reported there.
    let mut clash = false;
    for (service, serves) in &planned {
        if let Some((_, file, span)) = taken.iter().find(|(n, _, _)| n == service) {
            cx.at(*file);
            let what = match serves {
                Some(w) => format!("the quick tunnel of `{}`", w.name),
                None => "the named tunnel ([tunnels] token)".to_string(),
            };
            cx.error(
                span.clone(),
                &format!("services.{service}"),
                format!("the name `{service}` is taken by {what}"),
                Some("rename this service".into()),
            );
            cx.at(0);
            clash = true;
        }
    }
    if planned.is_empty() || clash {
        return (settings, Vec::new());
    }
    let path_var = (cx.lookup)("PATH").unwrap_or_default();
    let Some(exe) = super::find_program(&program, workspace, &path_var) else {
        settings.problem = Some(format!(
            "no tunnel runs: `{program}` is not installed (not found on PATH); the ports are served directly as ever. \
             Install cloudflared, or give its path as [tunnels] program"
        ));
        return (settings, Vec::new());
    };
    let exe = exe.to_string_lossy().into_owned();
    let gpubox = std::env::current_exe().map_or("gpubox".into(), |p| p.to_string_lossy().into_owned());
    let mut services = Vec::new();
    for (name, serves) in planned {
        let cloudflared = vec![exe.clone(), "tunnel".into(), "--no-autoupdate".into()];
        let mut env = std::collections::BTreeMap::new();
        let command = match &serves {
            // cloudflared reaches the port through a loopback port of its own, where gpubox
            // believes Cloudflare's word on the client (see `gpubox tunnel-run`).
            Some(w) => {
                let origin = origin_file(state_dir, w.port).to_string_lossy().into_owned();
                [vec![gpubox.clone(), "tunnel-run".into(), origin, "--".into()], cloudflared].concat()
            }
            None => {
                // In the environment, not the command line, which every process can read.
                env.insert("TUNNEL_TOKEN".to_string(), settings.token.clone().unwrap_or_default());
                [cloudflared, vec!["run".into()]].concat()
            }
        };
        settings.tunnels.push(Tunnel { service: name.clone(), serves: serves.map(|w| (w.name.clone(), w.port)) });
        services.push(Service {
            name,
            command,
            cwd: workspace.to_path_buf(),
            env,
            user: None,
            restart: RestartPolicy::Always,
            ready: None,
            depends_on: Vec::new(),
            stop_signal: nix::sys::signal::Signal::SIGTERM,
            stop_timeout: Duration::from_secs(5),
            tty: false,
            oneshot: false,
            backoff: Backoff {
                initial: Duration::from_secs(2),
                max: Duration::from_secs(60),
                reset_after: Duration::from_secs(60),
            },
            listen: None,
        });
    }
    (settings, services)
}

/// Where gpubox writes the address of a port's tunnel origin (`<pid> <address>`) for
/// `gpubox tunnel-run`.
pub fn origin_file(state_dir: &Path, port: u16) -> std::path::PathBuf {
    state_dir.join("tunnels").join(format!("{port}.origin"))
}

/// `tunnel = ...` of a service: whether its port asks for a quick tunnel. An error when it has
/// no port.
pub fn wants(cx: &mut Ctx, name: &str, v: &Option<Spanned<toml::Value>>, has_port: bool) -> bool {
    let Some(v) = v else { return false };
    let on = super::validate::flag(cx, v, &format!("services.{name}.tunnel"));
    if on && !has_port {
        cx.error(
            v.span(),
            &format!("services.{name}.tunnel"),
            "a tunnel is for a port, and this service has none".into(),
            Some("add port = ... (with an upstream), or remove `tunnel`".into()),
        );
        return false;
    }
    on
}
