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

/// The apps gpubox serves itself. The file manager, terminal and log viewer arrive with their own
/// issues; until then no name is accepted, so a config cannot ask for an app that does not exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AppKind {}

/// Names of apps that will exist, for the error message.
const PLANNED_APPS: &[&str] = &["files", "terminal", "logs"];

#[derive(Debug, Clone, Serialize)]
pub struct AppService {
    pub name: String,
    pub app: AppKind,
    #[serde(flatten)]
    pub listen: Listen,
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

/// A service with `app = "..."`: served by gpubox itself.
pub fn app(cx: &mut Ctx, n: &str, rs: &RawService, app: &Spanned<String>) -> Option<AppService> {
    let name = app.get_ref();
    let hint = match did_you_mean(name, PLANNED_APPS) {
        Some(p) => format!("\"{p}\" is planned but not part of this gpubox yet; remove this service for now"),
        None => "remove `app`, or use `command` to run a program".into(),
    };
    cx.error(
        app.span(),
        &key(n, "app"),
        format!("unknown app \"{name}\": this gpubox has no built-in apps yet"),
        Some(hint),
    );
    let _ = listen(cx, n, rs);
    None
}
