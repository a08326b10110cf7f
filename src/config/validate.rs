//! Raw → validated configuration. Every check that can fail names the file, line and key, and
//! all problems in a file are reported together.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::Spanned;

use super::error::{did_you_mean, line_col, ConfigError, ConfigErrors};
use super::expand::expand;
use super::raw::{
    RawConfig, RawLogs, RawService, AUTH_KEYS, HTTP_KEYS, LOG_KEYS, PROVISION_KEYS, SERVICE_KEYS, TLS_KEYS, TOP_KEYS,
    TUNNEL_KEYS,
};
use super::service::service;
use super::units::{parse_duration, parse_size};
use super::{auth, listen};
use super::{Config, LogSettings};

/// The name gpubox's own events are logged under; no service may take it.
pub const RESERVED_NAME: &str = "gpubox";

pub(super) struct Ctx<'a> {
    /// The file being checked: errors name it. [`Ctx::at`] switches between the sources.
    pub(super) text: &'a str,
    source: &'a str,
    /// Every source as (name, text, the folder its relative paths start from): the main file
    /// first, then `GPUBOX_SERVICES` and the files in `gpubox.d`.
    sources: Vec<(&'a str, &'a str, &'a Path)>,
    pub(super) base: &'a Path,
    pub(super) lookup: &'a dyn Fn(&str) -> Option<String>,
    pub(super) errors: Vec<ConfigError>,
}

impl Ctx<'_> {
    /// Errors from here on name source `i` (see `sources`).
    pub(super) fn at(&mut self, i: usize) {
        (self.source, self.text, self.base) = self.sources[i];
    }

    pub(super) fn error(&mut self, span: Range<usize>, key: &str, message: String, hint: Option<String>) {
        self.errors.push(ConfigError {
            file: self.source.to_string(),
            at: Some(line_col(self.text, span.start)),
            key: key.to_string(),
            message,
            hint,
        });
    }

    /// Expands `${VAR}` in a string value; on failure records the error and returns `None`.
    pub(super) fn expand(&mut self, value: &Spanned<String>, key: &str) -> Option<String> {
        match expand(value.get_ref(), self.lookup) {
            Ok(s) => Some(s),
            Err(message) => {
                self.error(
                    value.span(),
                    key,
                    message,
                    Some("set the variable, or give a default with ${NAME:-default}".into()),
                );
                None
            }
        }
    }

    pub(super) fn path(&mut self, value: &Spanned<String>, key: &str) -> Option<PathBuf> {
        let s = self.expand(value, key)?;
        if s.is_empty() {
            self.error(value.span(), key, "is empty".into(), Some("give a path".into()));
            return None;
        }
        Some(absolute(self.base, Path::new(&s)))
    }

    /// A duration or size value that may be a `${VAR}` string.
    fn expanded_value(&mut self, v: &Spanned<toml::Value>, key: &str) -> Option<toml::Value> {
        match v.get_ref() {
            toml::Value::String(s) => {
                let s = self.expand(&Spanned::new(v.span(), s.clone()), key)?;
                Some(toml::Value::String(s))
            }
            other => Some(other.clone()),
        }
    }

    pub(super) fn duration(
        &mut self,
        v: &Option<Spanned<toml::Value>>,
        key: &str,
        default: std::time::Duration,
    ) -> std::time::Duration {
        let Some(v) = v else { return default };
        let Some(value) = self.expanded_value(v, key) else {
            return default;
        };
        parse_duration(&value).unwrap_or_else(|message| {
            self.error(v.span(), key, message, Some("write a duration like \"10s\", \"500ms\" or \"2m\"".into()));
            default
        })
    }

    pub(super) fn size(&mut self, v: &Option<Spanned<toml::Value>>, key: &str, default: u64) -> u64 {
        let Some(v) = v else { return default };
        let Some(value) = self.expanded_value(v, key) else {
            return default;
        };
        parse_size(&value).unwrap_or_else(|message| {
            self.error(v.span(), key, message, Some("write a size like \"10MiB\" or \"512KB\"".into()));
            default
        })
    }
}

fn http_settings(cx: &mut Ctx, raw: &super::raw::RawHttp) -> super::HttpSettings {
    let default = super::HttpSettings::default();
    let idle_timeout = cx.duration(&raw.idle_timeout, "http.idle_timeout", default.idle_timeout);
    if let Some(v) = &raw.idle_timeout {
        if !(std::time::Duration::from_secs(1)..=std::time::Duration::from_secs(3600)).contains(&idle_timeout) {
            cx.error(
                v.span(),
                "http.idle_timeout",
                format!("{} is out of range", humantime::format_duration(idle_timeout)),
                Some("give 1s to 1h (the default is 60s)".into()),
            );
        }
    }
    let max_connections = match &raw.max_connections {
        Some(v) if *v.get_ref() < 16 => {
            cx.error(
                v.span(),
                "http.max_connections",
                format!("{} would leave no room for a browser's connections", v.get_ref()),
                Some("give 16 or more (the default is 4096)".into()),
            );
            default.max_connections
        }
        Some(v) => *v.get_ref(),
        None => default.max_connections,
    };
    let mut allowed_hosts = Vec::new();
    let from_env = (cx.lookup)("GPUBOX_ALLOWED_HOSTS").unwrap_or_default();
    let env_names = from_env.split(',').map(|n| (0..0, n.trim().to_string(), "GPUBOX_ALLOWED_HOSTS"));
    let written = raw
        .allowed_hosts
        .iter()
        .filter_map(|n| Some((n.span(), cx.expand(n, "http.allowed_hosts")?, "http.allowed_hosts")));
    let all: Vec<_> = written.collect::<Vec<_>>().into_iter().chain(env_names).collect();
    for (span, name, key) in all {
        if name.is_empty() && key == "GPUBOX_ALLOWED_HOSTS" {
            continue;
        }
        let bare = name.strip_prefix("*.").unwrap_or(&name);
        let ok = name == "*"
            || (!bare.is_empty()
                && bare.split('.').all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')));
        if ok {
            allowed_hosts.push(name);
        } else {
            cx.error(
                span,
                key,
                format!("\"{name}\" is not a host name"),
                Some(
                    "write names like \"gpu.example.org\", \"*.example.org\" (its subdomains) or \"*\" (any name)"
                        .into(),
                ),
            );
        }
    }
    let mut trusted_proxies = Vec::new();
    let from_env = (cx.lookup)("GPUBOX_TRUSTED_PROXIES").unwrap_or_default();
    let env_values = from_env.split(',').map(|n| (0..0, n.trim().to_string(), "GPUBOX_TRUSTED_PROXIES"));
    let written = raw
        .trusted_proxies
        .iter()
        .filter_map(|n| Some((n.span(), cx.expand(n, "http.trusted_proxies")?, "http.trusted_proxies")));
    let all: Vec<_> = written.collect::<Vec<_>>().into_iter().chain(env_values).collect();
    for (span, text, key) in all {
        if text.is_empty() {
            continue;
        }
        match text.parse::<super::units::Cidr>() {
            Ok(c) => trusted_proxies.push(c),
            Err(message) => cx.error(
                span,
                key,
                message,
                Some("write an address (\"10.0.0.5\") or a network (\"10.0.0.0/8\", \"fd00::/8\")".into()),
            ),
        }
    }
    super::HttpSettings { idle_timeout, max_connections, allowed_hosts, trusted_proxies }
}

pub(super) fn absolute(base: &Path, p: &Path) -> PathBuf {
    let joined = if p.is_absolute() { p.to_path_buf() } else { base.join(p) };
    // Lexical clean-up of `.` and `..` so that shown paths read well; the paths need not exist.
    let mut out = PathBuf::new();
    for c in joined.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    out
}

/// The whole configuration in one pass. Long because it walks the file's tables in order and
/// collects every problem on the way (issue 14: all at once, in file order).
pub fn validate(
    text: &str,
    source: &str,
    base: &Path,
    lookup: &dyn Fn(&str) -> Option<String>,
    dropins: &Dropins<'_>,
) -> Result<Config, ConfigErrors> {
    let base = absolute(&std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/")), base);
    let (raw, mut errors) = parse_toml::<RawConfig>(text, source, false);
    let Some(raw) = raw else { return Err(ConfigErrors(errors)) };
    // Services added beside the main file: `GPUBOX_SERVICES`, then `${workspace}/gpubox.d/*.toml`
    // in name order. The workspace is looked up here as below; a bad one is reported below.
    let mut extra_texts = Vec::new();
    if let Some(v) = lookup(SERVICES_ENV).filter(|v| !v.trim().is_empty()) {
        extra_texts.push((SERVICES_ENV.to_string(), v));
    }
    let workspace_dir = match &raw.workspace {
        Some(w) => expand(w.get_ref(), lookup).ok().filter(|s| !s.is_empty()).map(|s| absolute(&base, Path::new(&s))),
        None => Some(PathBuf::from(DEFAULT_WORKSPACE)),
    };
    if let Some(ws) = workspace_dir {
        match dropins(&ws.join(DROPIN_DIR)) {
            Ok(found) => extra_texts.extend(found),
            Err(e) => errors.extend(e),
        }
    }
    let mut extras = Vec::new();
    for (i, (name, t)) in extra_texts.iter().enumerate() {
        let (raw, e) = parse_toml::<RawDropin>(t, name, true);
        errors.extend(e);
        extras.extend(raw.map(|r| (i + 1, r)));
    }
    // A file's relative paths (a `cwd`) start from its folder; the variable's from the main file's.
    let bases: Vec<PathBuf> = extra_texts
        .iter()
        .map(|(n, _)| match n.as_str() {
            SERVICES_ENV => base.clone(),
            path => Path::new(path).parent().map_or_else(|| base.clone(), Path::to_path_buf),
        })
        .collect();
    let mut sources = vec![(source, text, base.as_path())];
    sources.extend(extra_texts.iter().zip(&bases).map(|((n, t), b)| (n.as_str(), t.as_str(), b.as_path())));
    let mut cx = Ctx { text, source, sources, base: &base, lookup, errors };

    let workspace = match &raw.workspace {
        Some(w) => cx.path(w, "workspace"),
        None => Some(PathBuf::from(DEFAULT_WORKSPACE)),
    }
    .unwrap_or_default();
    let logs = log_settings(&mut cx, &raw.logs, &workspace);
    let auth = auth::auth_settings(&mut cx, &raw.auth);
    let http = http_settings(&mut cx, &raw.http);
    let tls = tls_settings(&mut cx, &raw.tls);
    let name = match &raw.name {
        Some(n) => cx.expand(n, "name").unwrap_or_default(),
        None => String::new(),
    };
    let name = if name.trim().is_empty() { default_name(cx.lookup) } else { name };
    let state_dir = match &raw.state_dir {
        Some(d) => cx.path(d, "state_dir").unwrap_or_default(),
        None => workspace.join(".gpubox"),
    };

    let export_env = raw.export_env.as_ref().and_then(|p| {
        let s = cx.expand(p, "export_env")?;
        (!s.is_empty()).then(|| absolute(&base, Path::new(&s)))
    });
    let mut folders = Vec::new();
    for f in &raw.folders {
        let Some(s) = cx.expand(f, "folders") else { continue };
        if s.is_empty() || Path::new(&s).components().any(|c| c == std::path::Component::ParentDir) {
            cx.error(
                f.span(),
                "folders",
                format!("\"{s}\" is not a folder inside the workspace"),
                Some("write a path relative to the workspace, without `..`".into()),
            );
            continue;
        }
        folders.push(workspace.join(&s));
    }

    let (on, disabled) = gather(&mut cx, &raw, &extras);
    let mut services: Vec<super::Service> = Vec::new();
    let mut apps: Vec<super::AppService> = Vec::new();
    let mut wanted = Vec::new();
    for (name, &(rs, file)) in &on {
        cx.at(file);
        let (n_services, n_apps) = (services.len(), apps.len());
        match &rs.app {
            Some(app) => apps.extend(listen::app(&mut cx, name.get_ref(), rs, app, &workspace)),
            None => {
                if let Some(files) = &rs.files {
                    cx.error(
                        files.span(),
                        &format!("services.{}.files", name.get_ref()),
                        "`files` belongs to the logs app".into(),
                        Some("move it to the service with app = \"logs\"".into()),
                    );
                }
                services.extend(service(&mut cx, name, rs, &workspace))
            }
        }
        let built = services[n_services..]
            .iter()
            .filter_map(|s| s.listen.as_ref())
            .chain(apps[n_apps..].iter().map(|a| &a.listen));
        let listen = built.into_iter().next().cloned();
        if super::tunnels::wants(&mut cx, name.get_ref(), &rs.tunnel, rs.port.is_some()) {
            if let Some(l) = listen {
                wanted.push(super::tunnels::Wanted { name: name.get_ref().clone(), port: l.port });
            }
        }
    }
    cx.at(0);
    // Any service that says `tunnel`, switched off or not: quick tunnels are then not "for no port".
    let written = std::iter::once(&raw.services)
        .chain(extras.iter().map(|(_, r)| &r.services))
        .any(|s| s.values().any(|rs| rs.tunnel.is_some()));
    let taken: Vec<(String, usize, Range<usize>)> =
        on.iter().map(|(n, &(_, file))| (n.get_ref().clone(), file, n.span())).collect();
    let (tunnels, tunnel_services) =
        super::tunnels::settings(&mut cx, &raw.tunnels, &wanted, written, &taken, &workspace, &state_dir);
    services.extend(tunnel_services);
    let provision = super::provision::settings(&mut cx, &raw.provision, &workspace);
    if provision.manifest.is_some() || provision.script.is_some() {
        let written = std::iter::once((0, &raw.services))
            .chain(extras.iter().map(|(i, r)| (*i, &r.services)))
            .find_map(|(i, s)| s.keys().find(|k| k.get_ref() == "provision").map(|k| (i, k)));
        match written {
            Some((i, k)) => {
                cx.at(i);
                cx.error(
                    k.span(),
                    "services.provision",
                    "the name `provision` is taken by provisioning ([provision] names a manifest or a script)".into(),
                    Some(
                        "rename this service, and let others wait for provisioning with depends_on = [\"provision\"]"
                            .into(),
                    ),
                )
            }
            None => services.push(super::provision::service(&provision, &workspace, &state_dir)),
        }
    }
    let provisioning = provision.manifest.is_some() || provision.script.is_some();
    // Waiting for a service that is switched off, or for provisioning when there is none, is
    // waiting for nothing: such a dependency is dropped.
    let mut absent: Vec<&str> = disabled.iter().map(String::as_str).collect();
    if !provisioning {
        absent.push("provision");
    }
    check_dependencies(&mut cx, &on, provisioning, &absent);
    for s in &mut services {
        s.depends_on.retain(|d| !absent.contains(&d.as_str()));
    }
    check_ports(&mut cx, &on);
    cx.at(0);
    let metrics = super::monitor::metrics(&mut cx, &raw.metrics);
    let mut alerts = super::monitor::alerts(&mut cx, &raw.alerts);
    let idle_stop = super::monitor::idle_stop(&mut cx, &raw.idle_stop);
    for (name, &(rs, file)) in &on {
        cx.at(file);
        let patterns = super::monitor::patterns(&mut cx, name.get_ref(), &rs.alert_on);
        if !patterns.is_empty() {
            alerts.patterns.push((name.get_ref().clone(), patterns));
        }
    }

    if cx.errors.is_empty() {
        Ok(Config {
            source: source.to_string(),
            extra_sources: extra_texts.into_iter().map(|(n, _)| n).collect(),
            workspace,
            name,
            state_dir,
            logs,
            auth,
            http,
            tls,
            tunnels,
            services,
            apps,
            provision,
            metrics,
            alerts,
            idle_stop,
            export_env,
            folders,
            disabled,
        })
    } else {
        let order: Vec<&str> = cx.sources.iter().map(|(n, _, _)| *n).collect();
        let mut errors = cx.errors;
        // Errors about a file that could not be read (not among the sources) come after the rest.
        errors.sort_by_key(|e| {
            (order.iter().position(|n| *n == e.file).unwrap_or(usize::MAX), e.at.unwrap_or((usize::MAX, 0)))
        });
        Err(ConfigErrors(errors))
    }
}

/// Reads the files of a `gpubox.d` folder: (name, text) in name order; none when it is missing.
pub type Dropins<'a> = dyn Fn(&Path) -> Result<Vec<(String, String)>, Vec<ConfigError>> + 'a;
/// The folder under the workspace whose `*.toml` files add services.
pub const DROPIN_DIR: &str = "gpubox.d";
/// The variable whose TOML adds services (for templates, where no file can be written first).
pub const SERVICES_ENV: &str = "GPUBOX_SERVICES";
const DEFAULT_WORKSPACE: &str = "/workspace";

/// A file in `gpubox.d` or `GPUBOX_SERVICES`: services only.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDropin {
    #[serde(default)]
    services: BTreeMap<Spanned<String>, RawService>,
}

/// Parses TOML into `T`. TOML and type errors stop the parser at the first one; so that every
/// problem is reported at once, each offending entry is blanked out (offsets kept) and the text
/// parsed again. `None` when it cannot be parsed at all.
fn parse_toml<T: serde::de::DeserializeOwned>(text: &str, source: &str, dropin: bool) -> (Option<T>, Vec<ConfigError>) {
    let mut errors = Vec::new();
    let mut working = text.to_string();
    loop {
        match toml::from_str(&working) {
            Ok(raw) => return (Some(raw), errors),
            Err(e) => {
                errors.push(parse_error(text, source, &e, dropin));
                let blanked = e.span().is_some_and(|span| blank_entry(&mut working, span));
                if !blanked || errors.len() >= 50 {
                    return (None, errors);
                }
            }
        }
    }
}

/// Every service written, from every source, as name → (table, source); a name may be written
/// once over all sources. Those switched off with `enabled` are left out as if they were not
/// written, and returned by name.
type Gathered<'r> = (BTreeMap<Spanned<String>, (&'r RawService, usize)>, Vec<String>);
fn gather<'r>(cx: &mut Ctx, raw: &'r RawConfig, extras: &'r [(usize, RawDropin)]) -> Gathered<'r> {
    let mut disabled = Vec::new();
    let mut on = BTreeMap::new();
    let mut seen: HashMap<&str, (usize, Range<usize>)> = HashMap::new();
    let all =
        raw.services.iter().map(|s| (0, s)).chain(extras.iter().flat_map(|(i, r)| r.services.iter().map(|s| (*i, s))));
    for (file, (name, rs)) in all {
        cx.at(file);
        if let Some((first, span)) = seen.get(name.get_ref().as_str()).cloned() {
            let (src, text, _) = cx.sources[first];
            let (line, _) = line_col(text, span.start);
            cx.error(
                name.span(),
                &format!("services.{}", name.get_ref()),
                format!("a service named \"{}\" is already written in {src}:{line}", name.get_ref()),
                Some("give this one another name: files in gpubox.d and GPUBOX_SERVICES add services, they do not change those written elsewhere".into()),
            );
            continue;
        }
        seen.insert(name.get_ref(), (file, name.span()));
        if file > 0 {
            if let Some(app) = &rs.app {
                cx.error(
                    app.span(),
                    &format!("services.{}.app", name.get_ref()),
                    "the built-in apps are set in the main configuration".into(),
                    Some(format!("move this service to {}, or give it a command", cx.sources[0].0)),
                );
                continue;
            }
        }
        if enabled(cx, name.get_ref(), rs) {
            on.insert(name.clone(), (rs, file));
        } else {
            disabled.push(name.get_ref().clone());
        }
    }
    cx.at(0);
    (on, disabled)
}

/// Replaces the entry holding `span` with spaces (newlines kept, so every other offset, line and
/// column stays the same): the lines from the one where `span` starts to the one where it ends,
/// or, for a table header, the whole table up to the next header. False when nothing changed.
fn blank_entry(text: &mut String, span: Range<usize>) -> bool {
    let start = text[..span.start.min(text.len())].rfind('\n').map_or(0, |i| i + 1);
    let header = text[start..].trim_start().starts_with('[');
    let mut end = span.end.max(span.start + 1).min(text.len());
    end = text[end..].find('\n').map_or(text.len(), |i| end + i);
    if header {
        // Up to the next line that starts a table.
        let mut at = end;
        while at < text.len() {
            let line_end = text[at + 1..].find('\n').map_or(text.len(), |i| at + 1 + i);
            if text[at + 1..line_end].trim_start().starts_with('[') {
                break;
            }
            at = line_end;
        }
        end = at;
    }
    if text[start..end].chars().all(|c| c.is_whitespace()) {
        return false;
    }
    let blanked: String = text[start..end].chars().map(|c| if c == '\n' { '\n' } else { ' ' }).collect();
    // Multi-byte characters become one space each: pad so that the length stays the same.
    let pad = (end - start).saturating_sub(blanked.len());
    text.replace_range(start..end, &format!("{blanked}{}", " ".repeat(pad)));
    true
}

/// `gpubox` on a laptop; on Vast, "vast #<CONTAINER_ID>"; on RunPod, its pod id.
fn default_name(lookup: &dyn Fn(&str) -> Option<String>) -> String {
    let get = |n: &str| lookup(n).filter(|v| !v.is_empty());
    if let Some(id) = get("CONTAINER_ID").or_else(|| get("VAST_CONTAINERLABEL")) {
        return format!("vast #{}", id.trim_start_matches("C."));
    }
    if let Some(pod) = get("RUNPOD_POD_ID") {
        return format!("runpod {pod}");
    }
    "gpubox".into()
}

/// `[tls]`: on or off (`enabled`, e.g. `"${ENABLE_HTTPS:-false}"`), and the certificate's files,
/// both or neither (an empty value, from an unset variable, is none).
fn tls_settings(cx: &mut Ctx, raw: &super::raw::RawTls) -> super::TlsSettings {
    let enabled = raw.enabled.as_ref().is_some_and(|v| flag(cx, v, "tls.enabled"));
    let mut file = |v: &Option<Spanned<String>>, key: &str| {
        let v = v.as_ref()?;
        let s = cx.expand(v, key)?;
        (!s.trim().is_empty()).then(|| absolute(cx.base, Path::new(s.trim())))
    };
    let (cert, key) = (file(&raw.cert, "tls.cert"), file(&raw.key, "tls.key"));
    if cert.is_some() != key.is_some() {
        let (span, k) = match (&raw.cert, &raw.key, cert.is_some()) {
            (Some(c), _, true) => (c.span(), "tls.cert"),
            (_, Some(k), false) => (k.span(), "tls.key"),
            _ => (0..0, "tls"),
        };
        cx.error(
            span,
            k,
            "a certificate needs its key, and a key its certificate".into(),
            Some("give both `cert` and `key` (PEM files), or neither for the instance's or a self-signed one".into()),
        );
    }
    super::TlsSettings { enabled, cert, key }
}

/// `enabled`: a bool, or a string that expands to one (`"${ENABLE_SSH:-false}"`).
fn enabled(cx: &mut Ctx, name: &str, rs: &RawService) -> bool {
    let Some(v) = &rs.enabled else { return true };
    flag(cx, v, &format!("services.{name}.enabled"))
}

/// A bool, or a string that expands to one (1/0, true/false, yes/no, on/off).
pub(super) fn flag(cx: &mut Ctx, v: &Spanned<toml::Value>, key: &str) -> bool {
    let key = key.to_string();
    let text = match v.get_ref() {
        toml::Value::Boolean(b) => return *b,
        toml::Value::String(s) => match cx.expand(&Spanned::new(v.span(), s.clone()), &key) {
            Some(t) => t,
            None => return false,
        },
        other => other.to_string(),
    };
    match text.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => true,
        "" | "0" | "false" | "no" | "off" => false,
        _ => {
            cx.error(
                v.span(),
                &key,
                format!("\"{text}\" is neither true nor false"),
                Some("write true or false, or a variable that holds 1/0, true/false, yes/no or on/off".into()),
            );
            false
        }
    }
}

/// No two services may listen on one port. The one written later (by source, then name) is
/// the one reported, with where the first is.
fn check_ports(cx: &mut Ctx, services: &BTreeMap<Spanned<String>, (&RawService, usize)>) {
    let mut order: Vec<_> = services.iter().collect();
    order.sort_by_key(|(name, (_, file))| (*file, name.get_ref().clone()));
    let mut seen: HashMap<String, (&str, String)> = HashMap::new();
    for (name, &(rs, file)) in order {
        cx.at(file);
        let Some(p) = &rs.port else { continue };
        let text = match p.get_ref() {
            toml::Value::String(s) => expand(s, cx.lookup).unwrap_or_default(),
            other => other.to_string(),
        };
        if let Some((first, place)) = seen.get(text.trim()) {
            cx.error(
                p.span(),
                &format!("services.{}.port", name.get_ref()),
                format!("port {text} is already used by service \"{first}\" ({place})"),
                Some("give each service its own port".into()),
            );
        } else {
            let place = format!("{}:{}", cx.source, line_col(cx.text, p.span().start).0);
            seen.insert(text.trim().to_string(), (name.get_ref(), place));
        }
    }
}

/// Turns a TOML syntax or type error into one that names the line, key and a hint.
fn parse_error(text: &str, source: &str, e: &toml::de::Error, dropin: bool) -> ConfigError {
    let span = e.span().unwrap_or(0..0);
    let (table, key) = key_at(text, span.start);
    let message = e.message().trim().to_string();
    let mut hint = None;
    let unknown = message.strip_prefix("unknown field `").and_then(|m| m.split('`').next());
    if let (Some(unknown), true, "") = (unknown, dropin, table.as_str()) {
        hint = Some(format!(
            "{source} adds services only ([services.NAME] tables); set `{unknown}` in the main configuration"
        ));
    } else if let Some(unknown) = unknown {
        let known: &[&str] = match table.split('.').next() {
            Some("services") => SERVICE_KEYS,
            Some("logs") => LOG_KEYS,
            Some("auth") => AUTH_KEYS,
            Some("http") => HTTP_KEYS,
            Some("provision") => PROVISION_KEYS,
            Some("tls") => TLS_KEYS,
            Some("tunnels") => TUNNEL_KEYS,
            Some("metrics") => super::raw::METRICS_KEYS,
            Some("alerts") => super::raw::ALERT_KEYS,
            Some("idle_stop") => super::raw::IDLE_STOP_KEYS,
            _ => TOP_KEYS,
        };
        hint = Some(match did_you_mean(unknown, known) {
            Some(k) => format!("did you mean `{k}`? (keys here: {})", known.join(", ")),
            None => format!("remove it; the keys here are: {}", known.join(", ")),
        });
    } else if message.contains("duplicate key") {
        hint = Some("each service name (and each key) may appear only once; rename or merge one of them".into());
    } else if message.starts_with("invalid type") {
        hint = Some("see docs/config.md for the type of each key".into());
    }
    let full_key = match (table.as_str(), key.as_str()) {
        ("", k) => k.to_string(),
        (t, "") => t.to_string(),
        (t, k) => format!("{t}.{k}"),
    };
    ConfigError { file: source.to_string(), at: Some(line_col(text, span.start)), key: full_key, message, hint }
}

/// The table header in force at `offset` and the key on that line, for error messages.
fn key_at(text: &str, offset: usize) -> (String, String) {
    let offset = offset.min(text.len());
    let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[offset..].find('\n').map_or(text.len(), |i| offset + i);
    let line = text[line_start..line_end].trim();
    let header = |l: &str| {
        let l = l.trim();
        (l.starts_with('[') && l.contains(']'))
            .then(|| l.trim_matches(|c| c == '[' || c == ']').split(']').next().unwrap_or("").trim().to_string())
    };
    if let Some(h) = header(line) {
        return (h, String::new());
    }
    let table = text[..line_start].lines().rev().find_map(header).unwrap_or_default();
    let key = line.split('=').next().unwrap_or("").trim().trim_matches('"').to_string();
    (table, key)
}

fn log_settings(cx: &mut Ctx, raw: &RawLogs, workspace: &Path) -> LogSettings {
    let dir = match &raw.dir {
        Some(d) => cx.path(d, "logs.dir").unwrap_or_default(),
        None => workspace.join("logs"),
    };
    let max_file_size = cx.size(&raw.max_file_size, "logs.max_file_size", 10 << 20);
    let ring_size = cx.size(&raw.ring_size, "logs.ring_size", 2 << 20);
    if ring_size < 4096 {
        let span = raw.ring_size.as_ref().map_or(0..0, |s| s.span());
        cx.error(span, "logs.ring_size", "is too small".into(), Some("use at least 4KiB".into()));
    }
    LogSettings {
        dir,
        max_file_size: max_file_size.max(4096),
        max_files: raw.max_files.as_ref().map_or(5, |v| *v.get_ref()),
        ring_size,
        stdout: raw.stdout.as_ref().is_none_or(|v| *v.get_ref()),
    }
}

/// Dependencies must exist and must not form a cycle. Long because both are reported in one
/// walk, each problem naming the service and the line.
fn check_dependencies(
    cx: &mut Ctx,
    services: &BTreeMap<Spanned<String>, (&RawService, usize)>,
    provision: bool,
    absent: &[&str],
) {
    let mut names: Vec<&str> = services.keys().map(|k| k.get_ref().as_str()).collect();
    if provision {
        // Added by [provision]: waiting for it is what depends_on = ["provision"] is for.
        names.push("provision");
    }
    let mut graph: HashMap<&str, Vec<&str>> = HashMap::new();
    for (name, &(rs, file)) in services {
        cx.at(file);
        let n = name.get_ref().as_str();
        for dep in &rs.depends_on {
            let d = dep.get_ref().as_str();
            let key = format!("services.{n}.depends_on");
            if absent.contains(&d) {
                continue;
            }
            if d == n {
                cx.error(dep.span(), &key, "a service cannot depend on itself".into(), Some(format!("remove \"{d}\"")));
            } else if !names.contains(&d) {
                let hint = match did_you_mean(d, &names) {
                    Some(s) => format!("did you mean \"{s}\"?"),
                    None => format!("the services are: {}", names.join(", ")),
                };
                cx.error(dep.span(), &key, format!("depends on \"{d}\", which is not a service"), Some(hint));
            } else {
                graph.entry(n).or_default().push(d);
            }
        }
    }
    // Depth-first search; each cycle is reported once, at the edge that closes it.
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    let mut marks: HashMap<&str, Mark> = names.iter().map(|n| (*n, Mark::New)).collect();
    fn visit<'a>(
        n: &'a str,
        graph: &HashMap<&'a str, Vec<&'a str>>,
        marks: &mut HashMap<&'a str, Mark>,
        stack: &mut Vec<&'a str>,
        cycles: &mut Vec<Vec<&'a str>>,
    ) {
        marks.insert(n, Mark::Open);
        stack.push(n);
        for &d in graph.get(n).map(Vec::as_slice).unwrap_or(&[]) {
            match marks[d] {
                Mark::New => visit(d, graph, marks, stack, cycles),
                Mark::Open => {
                    let from = stack.iter().position(|s| *s == d).unwrap_or(0);
                    let mut cycle = stack[from..].to_vec();
                    cycle.push(d);
                    cycles.push(cycle);
                }
                Mark::Done => {}
            }
        }
        stack.pop();
        marks.insert(n, Mark::Done);
    }
    let mut cycles = Vec::new();
    for n in &names {
        if marks[n] == Mark::New {
            visit(n, &graph, &mut marks, &mut Vec::new(), &mut cycles);
        }
    }
    for cycle in cycles {
        let closer = cycle[cycle.len() - 2];
        let target = cycle[cycle.len() - 1];
        let (_, &(rs, file)) = services.iter().find(|(k, _)| k.get_ref() == closer).expect("service in graph");
        cx.at(file);
        let span = rs.depends_on.iter().find(|d| d.get_ref() == target).map_or(0..0, |d| d.span());
        cx.error(
            span,
            &format!("services.{closer}.depends_on"),
            format!("dependency cycle: {}", cycle.join(" → ")),
            Some("remove one of these dependencies; services start only after what they depend on is ready".into()),
        );
    }
}

#[cfg(test)]
#[path = "validate_tests.rs"]
mod tests;
