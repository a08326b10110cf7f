//! The `gpubox` command line. Exit codes: 0 success, 1 failure (or: gpubox is not running),
//! 2 a bad configuration or bad usage.

mod environment;
mod run;
mod verbs;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::control::protocol::Request;
use crate::logs::LogFilter;

pub use run::run;

/// Exit code for a configuration that does not validate.
pub const EXIT_CONFIG: i32 = 2;

#[derive(Debug, Parser)]
#[command(name = "gpubox", version, about = "Supervises a GPU box's services, keeps their logs, and serves its tools", long_about = None)]
pub struct Cli {
    /// The control socket [default: $GPUBOX_CONTROL, else /run/gpubox/control.sock as root]
    #[arg(long, global = true, value_name = "PATH")]
    pub control: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start gpubox and every service (exits 0 at once if gpubox already runs)
    Run {
        /// The configuration file [default: $GPUBOX_CONFIG, else /etc/gpubox/gpubox.toml, else built-in]
        #[arg(long, short, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Return once services are started, leaving gpubox running in the background
        #[arg(long, short)]
        detach: bool,
    },
    /// Show every service: state, pid, uptime, restarts, last exit, readiness
    Status {
        /// Print JSON instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Print services' logs (all services when none is named); filters and search as in the logs app
    Logs {
        /// Services to show (several may be named, or separated by commas); none: all
        services: Vec<String>,
        /// Keep printing new lines as they come
        #[arg(long, short)]
        follow: bool,
        /// How many of the latest lines (matches, with --grep) to print first
        #[arg(long, short = 'n', default_value_t = 100)]
        lines: usize,
        /// Only these streams, separated by commas: stdout, stderr, tty, event
        #[arg(long)]
        stream: Option<String>,
        /// Only lines since then: how long ago (10m, 2h) or a UTC time (2026-12-02T21:00:00)
        #[arg(long, value_name = "WHEN", value_parser = since_ms)]
        since: Option<u64>,
        /// Only lines containing this text (case-insensitive unless --case-sensitive)
        #[arg(long, short = 'g', value_name = "TEXT")]
        grep: Option<String>,
        /// --grep is a regular expression
        #[arg(long, short = 'E')]
        regex: bool,
        /// --grep tells upper from lower case
        #[arg(long, short = 's')]
        case_sensitive: bool,
        /// With --grep: this many lines around each match (not while following)
        #[arg(long, short = 'C', default_value_t = 0)]
        context: usize,
    },
    /// Start a service that is stopped (after its dependencies), and wait until it is ready
    Start {
        service: String,
        #[command(flatten)]
        wait: Wait,
    },
    /// Stop a service (it stays stopped until started again)
    Stop { service: String },
    /// Stop a service and start it again, and wait until it is ready
    Restart {
        service: String,
        #[command(flatten)]
        wait: Wait,
    },
    /// Read the configuration again (with gpubox.d/*.toml): start new services, stop removed ones,
    /// restart changed ones, leave the rest running; then wait until the new and changed are ready
    Reload {
        #[command(flatten)]
        wait: Wait,
    },
    /// Stop every service in reverse dependency order, then exit
    Shutdown,
    /// Exit 0 when gpubox runs and every service is ready (for HEALTHCHECK)
    Health,
    /// List every port and its routes (public ones answer without a login)
    Routes {
        /// Print JSON instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Print an Argon2 hash of a password (read from stdin) for `password_hash` in [auth]
    HashPassword,
    /// Fetch the models, extensions and packages of a manifest (and run a provisioning script)
    Provision {
        /// The manifest: a path or an http(s) URL (default: [provision] manifest of the config)
        manifest: Option<String>,
        /// A shell script to run afterwards: a path or an http(s) URL
        #[arg(long)]
        script: Option<String>,
        /// The configuration whose [provision] settings apply (folders, parallel downloads, bandwidth)
        #[arg(long)]
        config: Option<PathBuf>,
        /// Where models go (category folders inside it)
        #[arg(long)]
        models_dir: Option<PathBuf>,
        /// Where extensions are cloned
        #[arg(long)]
        extensions_dir: Option<PathBuf>,
        /// The Python whose pip installs the manifest's packages
        #[arg(long)]
        python: Option<String>,
        /// Files downloaded at once
        #[arg(long)]
        parallel: Option<usize>,
        /// Total download speed limit, e.g. 50MB (per second)
        #[arg(long)]
        bandwidth: Option<String>,
        /// Where provision.json and provision.txt (the result) are written
        #[arg(long)]
        state_dir: Option<PathBuf>,
    },
    /// Check or show a configuration
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Run a quick tunnel's cloudflared against the port gpubox keeps for it (gpubox's own use:
    /// the `tunnel-*` services run this)
    #[command(hide = true)]
    TunnelRun {
        /// Where gpubox writes that port's address
        origin: PathBuf,
        /// cloudflared and its arguments; `--url http://ADDRESS` is added
        #[arg(last = true, required = true)]
        program: Vec<String>,
    },
}

/// How `start` and `restart` wait for the service.
#[derive(Debug, clap::Args)]
pub struct Wait {
    /// Return once the service is starting, without waiting until it is ready
    #[arg(long)]
    no_wait: bool,
    /// Stop waiting after this long (the service goes on starting), e.g. 30s, 10m
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = humantime::parse_duration)]
    timeout: std::time::Duration,
}

impl Wait {
    fn limit(&self) -> Option<std::time::Duration> {
        (!self.no_wait).then_some(self.timeout)
    }
}

/// `--since`: a duration before now, or a UTC time; as milliseconds since the epoch.
fn since_ms(s: &str) -> Result<u64, String> {
    let now = std::time::SystemTime::now();
    let when = match humantime::parse_duration(s) {
        Ok(ago) => now.checked_sub(ago).ok_or("that is before 1970")?,
        Err(_) => humantime::parse_rfc3339_weak(s)
            .map_err(|_| format!("\"{s}\" is neither a duration (10m, 2h) nor a UTC time (2026-12-02T21:00:00)"))?,
    };
    Ok(when.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64))
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate a configuration file (exit 0 when valid, 2 when not)
    Check { file: Option<PathBuf> },
    /// Print the effective configuration after ${VAR} expansion, secrets masked
    Show { file: Option<PathBuf> },
}

pub fn dispatch(cli: Cli) -> anyhow::Result<i32> {
    let control = crate::control::socket_path(cli.control);
    match cli.command {
        Command::Run { config, detach } => run(config, &control, detach),
        Command::Status { json } => verbs::status(&control, json),
        Command::Logs { services, follow, lines, stream, since, grep, regex, case_sensitive, context } => {
            let streams = match stream.as_deref().map(crate::logs::filter::streams).transpose() {
                Ok(s) => s.unwrap_or_default(),
                Err(e) => anyhow::bail!("--stream: {}", e.message),
            };
            // `gpubox logs a b` and `gpubox logs a,b` alike.
            let services =
                services.iter().flat_map(|s| s.split(',')).map(str::trim).filter(|s| !s.is_empty()).map(String::from);
            let filter = LogFilter {
                services: services.collect(),
                streams,
                text: grep,
                regex,
                case: case_sensitive,
                context,
                since,
                limit: Some(lines),
                ..LogFilter::default()
            };
            verbs::logs(&control, Request::Logs { filter, follow })
        }
        Command::Start { service, wait } => verbs::control(&control, Request::Start { service }, wait.limit()),
        Command::Stop { service } => verbs::control(&control, Request::Stop { service }, None),
        Command::Restart { service, wait } => verbs::control(&control, Request::Restart { service }, wait.limit()),
        Command::Shutdown => verbs::shutdown(&control),
        Command::Reload { wait } => verbs::reload(&control, wait.limit()),
        Command::Health => verbs::health(&control),
        Command::Routes { json } => verbs::routes(&control, json),
        Command::HashPassword => verbs::hash_password(),
        Command::Provision {
            manifest,
            script,
            config,
            models_dir,
            extensions_dir,
            python,
            parallel,
            bandwidth,
            state_dir,
        } => verbs::provision(verbs::ProvisionArgs {
            manifest,
            script,
            config,
            models_dir,
            extensions_dir,
            python,
            parallel,
            bandwidth,
            state_dir,
        }),
        Command::Config(ConfigCommand::Check { file }) => verbs::config_check(file),
        Command::Config(ConfigCommand::Show { file }) => verbs::config_show(file),
        Command::TunnelRun { origin, program } => verbs::tunnel_run(&origin, &program),
    }
}
