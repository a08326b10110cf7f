//! Configuration: the TOML schema, `${VAR}` expansion, validation with file:line errors.
//!
//! Loading goes raw → validated, as two types: [`raw::RawConfig`] is the file as written (every
//! value with its span), [`Config`] is what the rest of gpubox uses (paths resolved, commands
//! split, durations parsed). Nothing in here starts anything.
//!
//! The whole schema is documented in `docs/config.md`.

mod auth;
mod error;
mod expand;
mod listen;
mod monitor;
mod provision;
mod raw;
mod service;
mod show;
mod tunnels;
pub mod units;
mod validate;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::signal::Signal;
use serde::Serialize;

pub use auth::{AuthSettings, PasswordSetting};
pub use error::{ConfigError, ConfigErrors};
pub use listen::{AppKind, AppService, Listen, TerminalSettings, Upstream};
pub use monitor::{AlertSettings, AlertTarget, IdleStopSettings, MetricsSettings, TargetKind};
pub use service::find_program;
pub use show::to_masked_toml;
pub use tunnels::{origin_file as tunnel_origin_file, Tunnel, TunnelSettings, NAMED as NAMED_TUNNEL};

/// Variables of gpubox's environment that its children do not get: a tunnel's token (only the
/// named tunnel's cloudflared needs it, and gets it as `TUNNEL_TOKEN` in its service's `env`).
/// cloudflared would otherwise also print an inherited one among its options.
pub const WITHHELD_ENV: &[&str] = &["CF_TUNNEL_TOKEN", "TUNNEL_TOKEN"];

/// The configuration used when no file is given and `/etc/gpubox/gpubox.toml` does not exist.
pub const EMBEDDED: &str = include_str!("default.toml");
/// Where the images put their configuration; read when no `--config` is given.
pub const SYSTEM_PATH: &str = "/etc/gpubox/gpubox.toml";

/// The validated configuration.
#[derive(Debug, Clone, Serialize)]
pub struct Config {
    /// Where this came from: a path, or `<embedded>`.
    #[serde(skip)]
    pub source: String,
    /// Where services were added from besides: `GPUBOX_SERVICES`, files in `gpubox.d`.
    #[serde(skip)]
    pub extra_sources: Vec<String>,
    pub workspace: PathBuf,
    /// The instance's name, shown in every page's header.
    pub name: String,
    /// Where gpubox keeps its own state (sessions).
    pub state_dir: PathBuf,
    pub logs: LogSettings,
    pub auth: AuthSettings,
    pub http: HttpSettings,
    pub tls: TlsSettings,
    /// `[tunnels]`: Cloudflare tunnels, and the services that run them (among `services`).
    pub tunnels: TunnelSettings,
    /// Supervised processes, in the order of their names.
    pub services: Vec<Service>,
    /// Built-in apps that gpubox serves itself.
    pub apps: Vec<AppService>,
    pub provision: ProvisionSettings,
    /// `[metrics]`: the history of the machine and the GPUs.
    pub metrics: MetricsSettings,
    /// `[alerts]`: where the user is told what happened.
    pub alerts: AlertSettings,
    /// `[idle_stop]`: stopping the instance when nothing has used it for a while (opt-in).
    pub idle_stop: IdleStopSettings,
    /// `export_env`: the file the environment is exported to for SSH sessions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub export_env: Option<PathBuf>,
    /// `folders`: created under the workspace at start when missing.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub folders: Vec<PathBuf>,
    /// Services written in the file but switched off with `enabled`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub disabled: Vec<String>,
}

/// `[http]`: limits on the connections every port accepts.
#[derive(Debug, Clone, Serialize)]
pub struct HttpSettings {
    /// How long a connection may go without sending a complete request head: a new one, one
    /// dribbling its headers, or a kept-alive one between requests. Then it is closed.
    #[serde(serialize_with = "show::duration")]
    pub idle_timeout: std::time::Duration,
    /// Open connections over all ports; more are answered 503 and closed. Lowered at start to
    /// what the open-file limit allows.
    pub max_connections: u32,
    /// Host names answered besides addresses, `localhost` and the providers' (see
    /// `gateway/hosts.rs`): exact, `*.suffix`, or `*` for any. `GPUBOX_ALLOWED_HOSTS` adds more.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allowed_hosts: Vec<String>,
    /// Proxies in front of gpubox whose word on the client's address (`CF-Connecting-IP`,
    /// `X-Forwarded-For`) is believed: addresses or CIDRs. `GPUBOX_TRUSTED_PROXIES` adds more.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub trusted_proxies: Vec<units::Cidr>,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            idle_timeout: std::time::Duration::from_secs(60),
            max_connections: 4096,
            allowed_hosts: Vec::new(),
            trusted_proxies: Vec::new(),
        }
    }
}

/// `[tls]`: HTTPS on every port. Without `cert` and `key`, the instance certificate of a Vast
/// image (`/etc/instance.crt`) when there is one, else a self-signed one made on first start and
/// kept under `state_dir` (see `gateway/tls.rs`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TlsSettings {
    pub enabled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<PathBuf>,
}

/// `[provision]`: what `gpubox provision` fetches and where it puts it. With a manifest or a
/// script, `gpubox run` adds a one-shot service `provision` that runs it.
#[derive(Debug, Clone, Serialize)]
pub struct ProvisionSettings {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifest: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub script: Option<String>,
    pub models_dir: PathBuf,
    pub extensions_dir: PathBuf,
    pub python: String,
    pub parallel: usize,
    /// Bytes per second over all downloads; `None`: no limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bandwidth: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LogSettings {
    pub dir: PathBuf,
    #[serde(serialize_with = "show::bytes")]
    pub max_file_size: u64,
    pub max_files: u32,
    #[serde(serialize_with = "show::bytes")]
    pub ring_size: u64,
    pub stdout: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Service {
    #[serde(skip)]
    pub name: String,
    /// The program and its arguments, already split and expanded.
    pub command: Vec<String>,
    pub cwd: PathBuf,
    pub env: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    pub restart: RestartPolicy,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ready: Option<ReadyProbe>,
    pub depends_on: Vec<String>,
    #[serde(serialize_with = "show::signal")]
    pub stop_signal: Signal,
    #[serde(serialize_with = "show::duration")]
    pub stop_timeout: Duration,
    pub tty: bool,
    pub oneshot: bool,
    #[serde(flatten)]
    pub backoff: Backoff,
    /// The port gpubox listens on for this service, and where it proxies to.
    #[serde(skip_serializing_if = "Option::is_none", flatten)]
    pub listen: Option<Listen>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestartPolicy {
    Always,
    OnFailure,
    Never,
}

/// Delays between restarts: `restart_delay`, doubled after each quick failure up to
/// `restart_delay_max`, back to `restart_delay` once a run has lasted `stable_after`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Backoff {
    #[serde(rename = "restart_delay", serialize_with = "show::duration")]
    pub initial: Duration,
    #[serde(rename = "restart_delay_max", serialize_with = "show::duration")]
    pub max: Duration,
    #[serde(rename = "stable_after", serialize_with = "show::duration")]
    pub reset_after: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { initial: Duration::from_secs(1), max: Duration::from_secs(60), reset_after: Duration::from_secs(60) }
    }
}

/// How gpubox decides that a started service is ready for its dependents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadyProbe {
    /// Any HTTP answer below 500 from a GET of this URL.
    Http { host: String, port: u16, path: String },
    /// A TCP connection to this address succeeds.
    Tcp { host: String, port: u16 },
}

impl std::fmt::Display for ReadyProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadyProbe::Http { host, port, path } => write!(f, "http://{host}:{port}{path}"),
            ReadyProbe::Tcp { host, port } => write!(f, "tcp://{host}:{port}"),
        }
    }
}

impl Serialize for ReadyProbe {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl Config {
    /// Loads and validates a configuration file, or the built-in one when `path` is `None`, with
    /// the services added beside it (`gpubox.d`, `GPUBOX_SERVICES`): any error anywhere fails it.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigErrors> {
        let lookup = |name: &str| std::env::var(name).ok();
        let (text, source, base) = read_main(path)?;
        validate::validate(&text, &source, &base, &lookup, &read_dropins)
    }

    /// [`Config::load`] for `gpubox run`: an added file (in `gpubox.d`, or `GPUBOX_SERVICES`) with
    /// errors is left out whole, rather than keeping gpubox (and with it the file manager and
    /// terminal that could fix it) from starting; its errors are returned beside the
    /// configuration, for the log. Errors in the main file stop the start as ever.
    pub fn load_at_start(path: Option<&Path>) -> Result<(Config, Vec<ConfigError>), ConfigErrors> {
        let mut left_out: Vec<ConfigError> = Vec::new();
        loop {
            let skip: Vec<String> = left_out.iter().map(|e| e.file.clone()).collect();
            let lookup = |name: &str| {
                if name == validate::SERVICES_ENV && skip.iter().any(|s| s == name) {
                    return None;
                }
                std::env::var(name).ok()
            };
            let dropins = |dir: &Path| {
                if skip.iter().any(|s| Path::new(s) == dir) {
                    return Ok(Vec::new());
                }
                read_dropins(dir).map(|files| files.into_iter().filter(|(p, _)| !skip.contains(p)).collect())
            };
            let (text, source, base) = read_main(path)?;
            match validate::validate(&text, &source, &base, &lookup, &dropins) {
                Ok(c) => return Ok((c, left_out)),
                Err(errors) => {
                    // Any error in the main file (or none newly attributable to an added one)
                    // stops the start.
                    if errors.0.iter().any(|e| e.file == source || skip.contains(&e.file)) {
                        return Err(errors);
                    }
                    left_out.extend(errors.0);
                }
            }
        }
    }

    #[cfg(test)]
    /// Parses configuration text, without the files of `gpubox.d`. `source` names it in errors;
    /// relative paths in it are resolved against `base` (the directory of the file).
    pub fn parse(
        text: &str,
        source: &str,
        base: &Path,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigErrors> {
        validate::validate(text, source, base, lookup, &|_| Ok(Vec::new()))
    }

    /// Where this configuration came from, for the log and `gpubox status`: the main file and
    /// what added services to it.
    pub fn sources(&self) -> String {
        match self.extra_sources.len() {
            0 => self.source.clone(),
            _ => format!("{} + {}", self.source, self.extra_sources.join(" + ")),
        }
    }

    /// Every port gpubox listens on, with the service behind it, in port order.
    pub fn ports(&self) -> Vec<(String, Listen)> {
        let mut v: Vec<(String, Listen)> = self
            .services
            .iter()
            .filter_map(|s| s.listen.clone().map(|l| (s.name.clone(), l)))
            .chain(self.apps.iter().map(|a| (a.name.clone(), a.listen.clone())))
            .collect();
        v.sort_by_key(|(_, l)| l.port);
        v
    }
}

/// The main configuration's text, name and folder (for relative paths).
fn read_main(path: Option<&Path>) -> Result<(String, String, PathBuf), ConfigErrors> {
    match path {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                ConfigErrors::one(ConfigError::whole_file(
                    path.display().to_string(),
                    format!("cannot read the configuration file: {e}"),
                    "check the path given with --config or GPUBOX_CONFIG",
                ))
            })?;
            let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
            let base = if base.as_os_str().is_empty() { PathBuf::from(".") } else { base };
            Ok((text, path.display().to_string(), base))
        }
        None => {
            let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
            Ok((EMBEDDED.to_string(), "<embedded>".to_string(), cwd))
        }
    }
}

/// Whether gpubox may take services from this file or folder: its own user's, and not writable
/// by group or others. The services run as gpubox's user (root in the images) unless they say
/// otherwise, so a file anyone else could write would let them run anything as that user.
fn trusted(path: &Path, m: &std::fs::Metadata) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let me = nix::unistd::geteuid().as_raw();
    if m.uid() != me {
        return Err(format!(
            "it belongs to uid {}, not to gpubox's user (uid {me}); the services it adds would run as gpubox's user, so only that user's files are read: `chown {me} {}`",
            m.uid(),
            path.display()
        ));
    }
    if m.mode() & 0o022 != 0 {
        return Err(format!(
            "others may write it (mode {:o}), and the services it adds run as gpubox's user: `chmod go-w {}`",
            m.mode() & 0o7777,
            path.display()
        ));
    }
    Ok(())
}

/// The `*.toml` files of a `gpubox.d` folder, in name order, as (path, text); none when the folder
/// does not exist. Hidden files (editors' swap files) are left out. Each must be UTF-8 and at most
/// 1 MiB, and there may be at most 256.
fn read_dropins(dir: &Path) -> Result<Vec<(String, String)>, Vec<ConfigError>> {
    const MAX_SIZE: u64 = 1 << 20;
    const MAX_FILES: usize = 256;
    let whole = |path: &Path, message: String, hint: &str| {
        vec![ConfigError::whole_file(path.display().to_string(), message, hint)]
    };
    match std::fs::metadata(dir) {
        Ok(m) => {
            if let Err(why) = trusted(dir, &m) {
                return Err(whole(
                    dir,
                    format!("not read: {why}"),
                    "fix its owner or mode, then start or reload again",
                ));
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(_) => {}
    }
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(whole(
                dir,
                format!("cannot read the folder: {e}"),
                "it holds files that add services; make it a readable folder, or remove it",
            ))
        }
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            name.ends_with(".toml") && !name.starts_with('.')
        })
        .collect();
    paths.sort();
    if paths.len() > MAX_FILES {
        return Err(whole(dir, format!("holds {} .toml files", paths.len()), "keep at most 256 files there"));
    }
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for path in paths {
        let read = std::fs::metadata(&path).and_then(|m| {
            if !m.is_file() {
                Err(std::io::Error::other("not a regular file"))
            } else if let Err(why) = trusted(&path, &m) {
                Err(std::io::Error::other(why))
            } else if m.len() > MAX_SIZE {
                Err(std::io::Error::other(format!("{} bytes, over the limit of 1 MiB", m.len())))
            } else {
                std::fs::read_to_string(&path)
            }
        });
        match read {
            Ok(text) => out.push((path.display().to_string(), text)),
            Err(e) => errors.extend(whole(
                &path,
                format!("cannot read it: {e}"),
                "files in gpubox.d must be UTF-8 TOML of at most 1 MiB; fix or remove it",
            )),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// Which file `gpubox` reads when no `--config` is given: `$GPUBOX_CONFIG`, then
/// `/etc/gpubox/gpubox.toml` if it exists, then the embedded defaults (`None`).
pub fn default_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("GPUBOX_CONFIG").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let system = Path::new(SYSTEM_PATH);
    system.exists().then(|| system.to_path_buf())
}

#[cfg(test)]
mod dropin_tests {
    use super::*;

    #[test]
    fn the_folder_is_read_in_name_order_without_hidden_or_other_files() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        assert!(read_dropins(&d.join("missing")).unwrap().is_empty(), "a missing folder adds nothing");
        std::fs::write(d.join("b.toml"), "# b").unwrap();
        std::fs::write(d.join("a.toml"), "# a").unwrap();
        std::fs::write(d.join(".a.toml"), "# hidden").unwrap();
        std::fs::write(d.join("notes.txt"), "x").unwrap();
        let found = read_dropins(d).unwrap();
        let names: Vec<&str> = found.iter().map(|(p, _)| p.rsplit('/').next().unwrap()).collect();
        assert_eq!(names, ["a.toml", "b.toml"]);
        assert_eq!(found[0].1, "# a");
        std::fs::write(d.join("c.toml"), [0xff, 0xfe]).unwrap();
        std::fs::write(d.join("d.toml"), vec![b'#'; (1 << 20) + 1]).unwrap();
        let errors = read_dropins(d).unwrap_err();
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[0].file.ends_with("c.toml") && errors[0].message.contains("cannot read"), "{errors:?}");
        assert!(errors[1].file.ends_with("d.toml") && errors[1].message.contains("over the limit"), "{errors:?}");
    }

    #[test]
    fn files_others_may_write_are_not_read() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(d.join("a.toml"), "# a").unwrap();
        std::fs::set_permissions(d.join("a.toml"), std::fs::Permissions::from_mode(0o666)).unwrap();
        let errors = read_dropins(d).unwrap_err();
        assert!(errors[0].message.contains("others may write it (mode 666)"), "{errors:?}");
        std::fs::set_permissions(d.join("a.toml"), std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(read_dropins(d).unwrap().len(), 1);
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o777)).unwrap();
        let errors = read_dropins(d).unwrap_err();
        assert!(errors[0].message.contains("not read: others may write it (mode 777)"), "{errors:?}");
    }
}
