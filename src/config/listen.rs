//! The ports gpubox listens on: a service's `port` with its `upstream` (the reverse proxy), or a
//! built-in `app`.

use std::net::IpAddr;

use serde::Serialize;
use toml::Spanned;

use super::error::did_you_mean;
use super::raw::RawService;
use super::validate::Ctx;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Listen {
    pub bind: IpAddr,
    pub port: u16,
    /// For a proxied service: where requests go.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream: Option<Upstream>,
    /// Largest request body accepted, in bytes; `None`: no limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_body: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    pub host: String,
    pub port: u16,
}

impl std::fmt::Display for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "http://{}:{}", self.host, self.port)
    }
}

impl Serialize for Upstream {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The apps gpubox serves itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AppKind {
    /// The log viewer and status page (read-only).
    Logs,
    /// The web terminal: shells in PTYs that outlive the connection.
    Terminal,
    /// The file manager, rooted at the workspace.
    Files,
}

impl AppKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AppKind::Logs => "logs",
            AppKind::Terminal => "terminal",
            AppKind::Files => "files",
        }
    }

    /// What it is, for people.
    pub fn describe(self) -> &'static str {
        match self {
            AppKind::Logs => "logs and status",
            AppKind::Terminal => "terminal",
            AppKind::Files => "file manager",
        }
    }
}

/// The apps that exist.
const APPS: &[&str] = &["files", "logs", "terminal"];

/// `app = "terminal"`: how its shells start.
#[derive(Debug, Clone, Serialize)]
pub struct TerminalSettings {
    /// The shell, started as a login shell.
    pub shell: std::path::PathBuf,
    pub cwd: std::path::PathBuf,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// A session with no tab attached and no input for this long is closed; `None`: never.
    #[serde(serialize_with = "super::show::optional_duration", skip_serializing_if = "Option::is_none")]
    pub idle_timeout: Option<std::time::Duration>,
    /// Lines of scrollback kept per session for reattaching tabs.
    pub scrollback: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct AppService {
    pub name: String,
    pub app: AppKind,
    #[serde(flatten)]
    pub listen: Listen,
    /// `app = "logs"`: extra log files to show, as glob patterns (absolute paths).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<String>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub terminal: Option<TerminalSettings>,
}

fn key(n: &str, k: &str) -> String {
    format!("services.{n}.{k}")
}

/// The `port`, `bind`, `upstream` and `max_body` of a service; `None` when it has no port.
pub fn listen(cx: &mut Ctx, n: &str, rs: &RawService) -> Option<Listen> {
    let Some(port_raw) = &rs.port else {
        for (value, k) in [(&rs.upstream, "upstream"), (&rs.bind, "bind")] {
            if let Some(v) = value {
                cx.error(
                    v.span(),
                    &key(n, k),
                    "needs a `port`".into(),
                    Some("add port = 8010 (the port gpubox listens on)".into()),
                );
            }
        }
        return None;
    };
    let port = port(cx, n, port_raw)?;
    let bind = match &rs.bind {
        None => IpAddr::from([0, 0, 0, 0]),
        Some(b) => {
            let text = cx.expand(b, &key(n, "bind"))?;
            match text.parse() {
                Ok(ip) => ip,
                Err(_) => {
                    cx.error(
                        b.span(),
                        &key(n, "bind"),
                        format!("`{text}` is not an IP address"),
                        Some("use \"0.0.0.0\" (every interface) or \"127.0.0.1\" (this machine only)".into()),
                    );
                    return None;
                }
            }
        }
    };
    let upstream = match &rs.upstream {
        None => None,
        Some(u) => Some(upstream(cx, n, u)?),
    };
    if upstream.is_none() && rs.app.is_none() {
        cx.error(
            port_raw.span(),
            &key(n, "port"),
            "a port needs something to serve".into(),
            Some("add upstream = \"http://127.0.0.1:7860\" (where the service listens), or app = \"...\"".into()),
        );
        return None;
    }
    if upstream.as_ref().is_some_and(|u| u.port == port && (u.host == "127.0.0.1" || u.host == "localhost")) {
        cx.error(
            port_raw.span(),
            &key(n, "port"),
            format!("gpubox would proxy port {port} to itself"),
            Some("let the service listen on another port (e.g. 7860) and give that as upstream".into()),
        );
    }
    let max_body = rs.max_body.as_ref().map(|_| cx.size(&rs.max_body, &key(n, "max_body"), 0));
    Some(Listen { bind, port, upstream, max_body })
}

fn port(cx: &mut Ctx, n: &str, v: &Spanned<toml::Value>) -> Option<u16> {
    let k = key(n, "port");
    let parsed = match v.get_ref() {
        toml::Value::Integer(i) => Some(*i),
        toml::Value::String(s) => cx.expand(&Spanned::new(v.span(), s.clone()), &k)?.trim().parse().ok(),
        _ => None,
    };
    match parsed {
        Some(p) if (1..=65535).contains(&p) => Some(p as u16),
        _ => {
            cx.error(v.span(), &k, "is not a port number (1 to 65535)".into(), Some("write port = 8010".into()));
            None
        }
    }
}

fn upstream(cx: &mut Ctx, n: &str, v: &Spanned<String>) -> Option<Upstream> {
    let k = key(n, "upstream");
    let text = cx.expand(v, &k)?;
    let hint = Some("write upstream = \"http://127.0.0.1:7860\"".to_string());
    let Some(rest) = text.strip_prefix("http://") else {
        cx.error(
            v.span(),
            &k,
            format!("`{text}` is not an http:// URL (the upstream is a local service; https is not supported)"),
            hint,
        );
        return None;
    };
    let authority = rest.trim_end_matches('/');
    let parsed =
        authority.rsplit_once(':').and_then(|(h, p)| Some((h.trim_matches(['[', ']']), p.parse::<u16>().ok()?)));
    match parsed {
        Some((host, port)) if !host.is_empty() && !authority.contains('/') => {
            Some(Upstream { host: host.to_string(), port })
        }
        _ => {
            cx.error(v.span(), &k, format!("`{text}` must be http://host:port, without a path"), hint);
            None
        }
    }
}

/// A service with `app = "..."`: served by gpubox itself. Long because it is one check per key
/// of an app service, in file order.
pub fn app(
    cx: &mut Ctx,
    n: &str,
    rs: &RawService,
    app: &Spanned<String>,
    workspace: &std::path::Path,
) -> Option<AppService> {
    let name = app.get_ref();
    let kind = match name.as_str() {
        "logs" => Some(AppKind::Logs),
        "terminal" => Some(AppKind::Terminal),
        "files" => Some(AppKind::Files),
        _ => {
            let hint = match did_you_mean(name, APPS) {
                Some(p) => format!("did you mean \"{p}\"?"),
                None => format!("the built-in apps are: {}", APPS.join(", ")),
            };
            cx.error(app.span(), &key(n, "app"), format!("unknown app \"{name}\""), Some(hint));
            None
        }
    };
    // What runs a program makes no sense on a built-in app (the terminal has its own cwd and
    // user: those of its shells).
    let terminal = kind == Some(AppKind::Terminal);
    let program_keys: [(&str, Option<std::ops::Range<usize>>); 12] = [
        ("command", rs.command.as_ref().map(|v| v.span())),
        ("cwd", rs.cwd.as_ref().filter(|_| !terminal).map(|v| v.span())),
        ("user", rs.user.as_ref().filter(|_| !terminal).map(|v| v.span())),
        ("restart", rs.restart.as_ref().map(|v| v.span())),
        ("ready", rs.ready.as_ref().map(|v| v.span())),
        ("stop_signal", rs.stop_signal.as_ref().map(|v| v.span())),
        ("stop_timeout", rs.stop_timeout.as_ref().map(|v| v.span())),
        ("tty", rs.tty.as_ref().map(|v| v.span())),
        ("oneshot", rs.oneshot.as_ref().map(|v| v.span())),
        ("upstream", rs.upstream.as_ref().map(|v| v.span())),
        ("depends_on", rs.depends_on.first().map(|v| v.span())),
        ("env", rs.env.values().next().map(|v| v.span())),
    ];
    for (k, span) in program_keys {
        if let Some(span) = span {
            cx.error(
                span,
                &key(n, k),
                format!("`{k}` is for services that run a program, and \"{n}\" is gpubox's built-in app"),
                Some(format!("remove `{k}` here")),
            );
        }
    }
    let mut files = Vec::new();
    if let Some(list) = &rs.files {
        if kind != Some(AppKind::Logs) {
            cx.error(
                list.span(),
                &key(n, "files"),
                "`files` belongs to the logs app".into(),
                Some("move it to the service with app = \"logs\"".into()),
            );
        }
        for f in list.get_ref() {
            if let Some(p) = cx.path(f, &key(n, "files")) {
                files.push(p.to_string_lossy().into_owned());
            }
        }
    }
    let terminal = match kind {
        Some(AppKind::Terminal) => terminal_settings(cx, n, rs, workspace),
        _ => {
            for (k, span) in [
                ("shell", rs.shell.as_ref().map(|v| v.span())),
                ("idle_timeout", rs.idle_timeout.as_ref().map(|v| v.span())),
                ("scrollback", rs.scrollback.as_ref().map(|v| v.span())),
            ] {
                if let Some(span) = span {
                    cx.error(
                        span,
                        &key(n, k),
                        format!("`{k}` belongs to the terminal app"),
                        Some("move it to the service with app = \"terminal\"".into()),
                    );
                }
            }
            None
        }
    };
    if rs.port.is_none() {
        let at = app.span();
        cx.error(at, &key(n, "port"), "a built-in app needs a `port`".into(), Some("add port = 7030".into()));
        return None;
    }
    let listen = listen(cx, n, rs)?;
    let kind = kind?;
    if kind == AppKind::Terminal && terminal.is_none() {
        return None;
    }
    Some(AppService { name: n.to_string(), app: kind, listen, files, terminal })
}

fn terminal_settings(cx: &mut Ctx, n: &str, rs: &RawService, workspace: &std::path::Path) -> Option<TerminalSettings> {
    let path_var = std::env::var("PATH").unwrap_or_default();
    let shell = match &rs.shell {
        Some(s) => {
            let text = cx.expand(s, &key(n, "shell"))?;
            match super::service::find_program(&text, workspace, &path_var) {
                Some(p) => p,
                None => {
                    cx.error(
                        s.span(),
                        &key(n, "shell"),
                        format!("no program `{text}` (looked in PATH)"),
                        Some("give a shell that exists, e.g. \"/bin/bash\" or \"/bin/sh\"".into()),
                    );
                    return None;
                }
            }
        }
        None => ["/bin/bash", "/bin/sh"].iter().map(std::path::PathBuf::from).find(|p| p.exists())?,
    };
    let cwd = match &rs.cwd {
        Some(c) => {
            let p = cx.path(c, &key(n, "cwd"))?;
            if !p.is_dir() {
                cx.error(
                    c.span(),
                    &key(n, "cwd"),
                    format!("`{}` is not a directory", p.display()),
                    Some("create it, or leave `cwd` out for the workspace".into()),
                );
                return None;
            }
            p
        }
        None => workspace.to_path_buf(),
    };
    let user = match &rs.user {
        Some(u) => Some(cx.expand(u, &key(n, "user"))?),
        None => None,
    };
    let idle = cx.duration(&rs.idle_timeout, &key(n, "idle_timeout"), std::time::Duration::ZERO);
    Some(TerminalSettings {
        shell,
        cwd,
        user,
        idle_timeout: (!idle.is_zero()).then_some(idle),
        scrollback: rs.scrollback.as_ref().map_or(5000, |s| *s.get_ref() as usize).min(100_000),
    })
}
