//! `gpubox run`: one instance per control socket, in the foreground or detached; assembles the
//! log hub, reaper, supervisor and control server, and turns signals into a clean shutdown.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use nix::sys::signal::Signal;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;

use super::EXIT_CONFIG;
use crate::auth::Loaded;
use crate::config::{self, Config};
use crate::control::{client, server};
use crate::gateway;
use crate::logs::Hub;
use crate::process::{become_subreaper, Reaper};
use crate::supervisor::Supervisor;

/// Set in the environment of the background process that `--detach` starts.
const DETACHED_ENV: &str = "GPUBOX_DETACHED";

pub fn run(config_path: Option<PathBuf>, control: &Path, detach: bool) -> anyhow::Result<i32> {
    let since = Instant::now();
    let path = config_path.or_else(config::default_path);
    let (mut config, left_out) = match Config::load_at_start(path.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            eprintln!("gpubox: not started: fix the configuration (check it with `gpubox config check`)");
            return Ok(EXIT_CONFIG);
        }
    };
    if let Some(pid) = client::running_pid(control) {
        println!("gpubox is already running (pid {pid}, control socket {}); not starting another", control.display());
        return Ok(0);
    }
    if !left_out.is_empty() {
        // Said here (the terminal of whoever started it) and again in the log once it exists.
        eprintln!("{}", left_out_message(&left_out));
    }
    if detach {
        return detach_self(&config, control);
    }
    let Some(lock) = lock_instance(control)? else {
        return another_is_starting(control);
    };
    let detached = std::env::var_os(DETACHED_ENV).is_some();
    if detached {
        // Not for the services' environment. Nothing else runs yet, so changing it is safe.
        std::env::remove_var(DETACHED_ENV);
        // No `docker logs` reads a detached gpubox: its service lines are in the log files, and
        // printing them again to the console file would only double the disk used.
        config.logs.stdout = false;
    }
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the async runtime")?;
    let start = Start { path, control: control.to_path_buf(), since, detached, left_out };
    let code = runtime.block_on(serve(config, start));
    drop(lock);
    runtime.shutdown_timeout(Duration::from_secs(1));
    code
}

/// How `gpubox run` was started, for [`serve`].
struct Start {
    /// The configuration file (`None`: the built-in one), read again by `gpubox reload`.
    path: Option<PathBuf>,
    control: PathBuf,
    since: Instant,
    /// Started by `--detach`: the log mirror to stdout was turned off here, not in the file.
    detached: bool,
    /// Errors of added files that were left out.
    left_out: Vec<crate::config::ConfigError>,
}

/// What is said when added files were left out at start.
fn left_out_message(errors: &[crate::config::ConfigError]) -> String {
    let mut files: Vec<&str> = errors.iter().map(|e| e.file.as_str()).collect();
    files.dedup();
    let mut text = format!(
        "WARNING: services from {} were left out: they have errors (fix them and run `gpubox reload`):",
        files.join(", ")
    );
    for e in errors {
        text.push_str(&format!("\nerror: {e}"));
    }
    text
}

/// Another process holds the lock but did not answer yet: it is starting. Wait for it briefly.
fn another_is_starting(control: &Path) -> anyhow::Result<i32> {
    for _ in 0..100 {
        if let Some(pid) = client::running_pid(control) {
            println!(
                "gpubox is already running (pid {pid}, control socket {}); not starting another",
                control.display()
            );
            return Ok(0);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!(
        "gpubox: another gpubox holds {} but does not answer; if none runs, delete that file",
        lock_path(control).display()
    );
    Ok(1)
}

fn lock_path(control: &Path) -> PathBuf {
    let mut p = control.as_os_str().to_owned();
    p.push(".lock");
    PathBuf::from(p)
}

/// Takes the per-socket instance lock; `None` when another gpubox holds it. The lock is released
/// by the kernel when the process ends, however it ends.
///
/// The file is this user's alone (0600): anyone who could open it could hold a lock on it and so
/// stop gpubox from starting. A lock file that others could open (older versions made it 0644) or
/// that is not this user's is replaced by a new one first, which also leaves behind any lock held
/// on the old one.
fn lock_instance(control: &Path) -> anyhow::Result<Option<File>> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
    let path = lock_path(control);
    let me = nix::unistd::geteuid().as_raw();
    if let Some(dir) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        // A folder others may write in (and that is not sticky, like /tmp) lets them swap the
        // lock file or the control socket: refuse it rather than be stopped or impersonated.
        let m = std::fs::metadata(dir).with_context(|| format!("cannot read {}", dir.display()))?;
        let shared = m.mode() & 0o022 != 0 && m.mode() & 0o1000 == 0;
        if (m.uid() != me && m.uid() != 0) || shared {
            anyhow::bail!(
                "{} belongs to another user (uid {}) or others may write in it (mode {:o}), so they could take over gpubox's control socket; use another --control (or GPUBOX_CONTROL)",
                dir.display(),
                m.uid(),
                m.mode() & 0o7777
            );
        }
    }
    if let Ok(m) = std::fs::symlink_metadata(&path) {
        if !m.file_type().is_file() || m.uid() != me || m.mode() & 0o077 != 0 {
            std::fs::remove_file(&path).with_context(|| {
                format!(
                    "{} may be opened by other users (owner uid {}, mode {:o}), who could keep gpubox from starting, and it cannot be replaced; delete it, or choose another --control",
                    path.display(),
                    m.uid(),
                    m.mode() & 0o7777
                )
            })?;
        }
    }
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    // What was opened is checked, not what was looked at: it could have been swapped in between.
    let m = file.metadata().with_context(|| format!("cannot read {}", path.display()))?;
    if !m.file_type().is_file() || m.uid() != me || m.mode() & 0o077 != 0 {
        anyhow::bail!(
            "{} was replaced by another user while gpubox started (owner uid {}, mode {:o}); delete it and start again",
            path.display(),
            m.uid(),
            m.mode() & 0o7777
        );
    }
    match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(Some(file)),
        Err(rustix::io::Errno::WOULDBLOCK) => Ok(None),
        Err(e) => Err(io::Error::from(e)).with_context(|| format!("cannot lock {}", path.display())),
    }
}

/// Starts this same command again in the background (own session, output to a file) and returns
/// once it answers on the control socket.
fn detach_self(config: &Config, control: &Path) -> anyhow::Result<i32> {
    let dir = &config.logs.dir;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create the log directory {}", dir.display()))?;
    let console = dir.join("gpubox.out");
    let out = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&console)
        .with_context(|| format!("cannot open {}", console.display()))?;
    let args: Vec<_> = std::env::args_os().skip(1).filter(|a| a != "--detach" && a != "-d").collect();
    let exe = std::env::current_exe().context("cannot find the gpubox executable")?;
    let mut cmd = Command::new(exe);
    cmd.args(&args).env(DETACHED_ENV, "1").stdin(Stdio::null()).stdout(out.try_clone()?).stderr(out);
    // SAFETY: setsid is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| if libc::setsid() < 0 { Err(io::Error::last_os_error()) } else { Ok(()) });
    }
    let mut child = cmd.spawn().context("cannot start gpubox in the background")?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Some(pid) = client::running_pid(control) {
            println!("gpubox is running in the background (pid {pid}); logs in {}", dir.display());
            super::verbs::status(control, false)?;
            return Ok(0);
        }
        if let Some(status) = child.try_wait()? {
            eprintln!(
                "gpubox: the background gpubox exited during start-up ({status}); its output is in {}",
                console.display()
            );
            return Ok(status.code().unwrap_or(1).max(1));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    eprintln!(
        "gpubox: the background gpubox (pid {}) did not answer within 60s; see {}",
        child.id(),
        console.display()
    );
    Ok(1)
}

/// `gpubox run` once the configuration is read (from `path`, read again by `gpubox reload`). Long
/// because start-up and shutdown are a sequence whose order is the point (ports before services,
/// the reaper before the first child, ports closed before services stop); it reads top to bottom.
async fn serve(mut config: Config, start: Start) -> anyhow::Result<i32> {
    let Start { path, control, since, detached, left_out } = start;
    // Large, short-lived buffers (Argon2's 7 MiB) go straight back to the system when freed,
    // instead of glibc raising its threshold and keeping them in the heap for good.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024);
    }
    let pid = std::process::id();
    let pid1 = pid == 1;
    if !pid1 {
        become_subreaper();
    }
    crate::process::raise_open_files();
    for dir in [&config.workspace, &config.logs.dir] {
        std::fs::create_dir_all(dir).with_context(|| {
            format!("cannot create {}; check `workspace` and `logs.dir` in {}", dir.display(), config.source)
        })?;
    }
    let listener =
        server::bind(&control).with_context(|| format!("cannot listen on the control socket {}", control.display()))?;
    let hub = Hub::new(config.logs.clone());
    hub.event(format!(
        "gpubox {} starting: pid {pid}{}, config {}, workspace {}, control socket {}, {} services",
        env!("CARGO_PKG_VERSION"),
        if pid1 { " (PID 1: reaping orphans, forwarding signals)" } else { "" },
        config.sources(),
        config.workspace.display(),
        control.display(),
        config.services.len()
    ));

    prepare(&config, &hub);
    if !left_out.is_empty() {
        // A line per event: a log line holds no line break.
        for line in left_out_message(&left_out).lines() {
            hub.event(line.to_string());
        }
    }

    // Every port is taken before any service starts: nothing half-starts.
    let listeners = match gateway::bind_all(&config) {
        Ok(l) => l,
        Err(message) => {
            hub.event(format!("not started: {message}"));
            hub.flush();
            eprintln!("gpubox: {message}");
            return Ok(1);
        }
    };
    // HTTPS before anything starts: a certificate that cannot be read stops the start whole.
    let tls = if config.tls.enabled && !listeners.is_empty() {
        let (settings, state_dir) = (config.tls.clone(), config.state_dir.clone());
        let made = tokio::task::spawn_blocking(move || {
            let choice = gateway::tls::choose(
                &settings,
                (Path::new(gateway::tls::INSTANCE_CERT), Path::new(gateway::tls::INSTANCE_KEY)),
                &state_dir,
            );
            gateway::tls::setup(&choice, &gateway::tls::names(&|n| std::env::var(n).ok()))
        })
        .await
        .context("setting up TLS failed")?;
        match made {
            Ok((t, warnings)) => {
                for w in warnings {
                    hub.event(format!("tls: WARNING: {w}"));
                }
                hub.event(format!(
                    "tls: HTTPS on every port with {} ({}); SHA-256 fingerprint {}",
                    t.source,
                    t.cert_path.display(),
                    t.fingerprint
                ));
                Some(Arc::new(t))
            }
            Err(message) => {
                hub.event(format!("not started: {message}"));
                hub.flush();
                eprintln!("gpubox: {message}");
                return Ok(1);
            }
        }
    } else {
        None
    };
    // Argon2 takes tens of milliseconds: done on a blocking thread while services start, and
    // only when there is a port to log in to.
    let auth = (!listeners.is_empty()).then(|| {
        let (settings, state_dir) = (config.auth.clone(), config.state_dir.clone());
        tokio::task::spawn_blocking(move || crate::auth::Auth::new(&settings, &state_dir))
    });

    // Signal handlers and the reaper exist before the first child does.
    let reaper = Reaper::start().context("cannot watch SIGCHLD")?;
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sighup = signal(SignalKind::hangup())?;
    let mut sigusr1 = signal(SignalKind::user_defined1())?;
    let mut sigusr2 = signal(SignalKind::user_defined2())?;

    let sup = Supervisor::start(&config, hub.clone(), reaper.clone(), since);
    let tunnels = crate::tunnels::Tunnels::new(&config);
    if let Some(p) = &config.tunnels.problem {
        hub.event(format!("tunnels: {p}"));
    }
    tunnels.follow(hub.clone(), sup.clone());
    let monitor = crate::alerts::Monitor::start(&config, sup.clone(), hub.clone(), gateway::alert_link(&config));
    let mut gateway = match auth {
        Some(task) => {
            let (auth, loaded) = task.await.context("password hashing failed")?;
            announce_auth(&config, &hub, &loaded);
            Some(gateway::launch(
                &config,
                listeners,
                gateway::Parts {
                    auth: Arc::new(auth),
                    sup: sup.clone(),
                    hub: hub.clone(),
                    tls,
                    tunnels: tunnels.clone(),
                    monitor: monitor.clone(),
                },
            ))
        }
        None => None,
    };
    let (shutdown_tx, mut shutdown_rx) = mpsc::unbounded_channel();
    let (reload_tx, mut reload_rx) = mpsc::unbounded_channel();
    let ctx = Arc::new(server::Ctx {
        sup: sup.clone(),
        hub: hub.clone(),
        info: crate::control::protocol::Info {
            version: env!("CARGO_PKG_VERSION").to_string(),
            pid,
            pid1,
            started: SystemTime::now() - since.elapsed(),
            config: config.sources(),
            control: control.clone(),
            workspace: config.workspace.clone(),
            log_dir: config.logs.dir.clone(),
        },
        shutdown: shutdown_tx,
        reload: reload_tx,
        sources: std::sync::RwLock::new(config.sources()),
        routes: gateway.as_ref().map(|g| g.routes.clone()).unwrap_or_default(),
        apps: config
            .apps
            .iter()
            .map(|a| crate::control::protocol::AppAnswer {
                name: a.name.clone(),
                app: a.app.as_str().to_string(),
                describe: a.app.describe().to_string(),
                bind: a.listen.bind,
                port: a.listen.port,
            })
            .collect(),
        tunnels: tunnels.clone(),
    });
    tokio::spawn(server::serve(listener, ctx.clone()));

    let reason = loop {
        tokio::select! {
            _ = sigterm.recv() => break "SIGTERM".to_string(),
            _ = sigint.recv() => break "SIGINT".to_string(),
            Some(who) = shutdown_rx.recv() => break who,
            _ = sighup.recv() => forward(&sup, &hub, Signal::SIGHUP),
            _ = sigusr1.recv() => forward(&sup, &hub, Signal::SIGUSR1),
            _ = sigusr2.recv() => forward(&sup, &hub, Signal::SIGUSR2),
            Some(reply) = reload_rx.recv() => {
                // Bounded by the stop timeouts of what it stops; being asked to stop ends it.
                let work = reload(path.as_deref(), &mut config, detached, &sup, gateway.as_mut(), &hub, &tunnels);
                tokio::select! {
                    answer = work => {
                        if let Ok(a) = &answer {
                            *ctx.sources.write().expect("sources lock") = a.sources.clone();
                        }
                        let _ = reply.send(answer);
                    }
                    _ = sigterm.recv() => break "SIGTERM (during a reload)".to_string(),
                    _ = sigint.recv() => break "SIGINT (during a reload)".to_string(),
                    Some(who) = shutdown_rx.recv() => break format!("{who} (during a reload)"),
                }
            }
        }
    };
    hub.event(format!("shutting down ({reason}): closing ports, then stopping services, dependents first"));
    if let Some(gateway) = gateway {
        gateway.stop().await;
    }
    let stopping = sup.shutdown();
    tokio::pin!(stopping);
    loop {
        tokio::select! {
            _ = &mut stopping => break,
            _ = sigterm.recv() => hub.event("already shutting down; each service is killed when its stop_timeout ends"),
            _ = sigint.recv() => hub.event("already shutting down; each service is killed when its stop_timeout ends"),
        }
    }
    // What outlived its service (a `setsid` grandchild, re-parented to gpubox) goes too.
    let orphans = reaper.end_orphans(Duration::from_millis(500)).await;
    if orphans > 0 {
        hub.event(format!("ended {orphans} process(es) left behind by services"));
    }
    hub.event(format!("all services stopped; gpubox exits (up {})", crate::human::duration(since.elapsed())));
    let _ = std::fs::remove_file(&control);
    let metrics = monitor.metrics.clone();
    if let Ok(Err(e)) = tokio::task::spawn_blocking(move || metrics.save()).await {
        hub.event(format!("metrics: cannot save the history: {e}"));
    }
    hub.flush();
    Ok(0)
}

/// A fresh disk's folders, the environment for SSH sessions, and a word on switched-off
/// services. None of it stops the start: what fails is said in the log.
fn prepare(config: &Config, hub: &Hub) {
    for dir in &config.folders {
        if let Err(e) = std::fs::create_dir_all(dir) {
            hub.event(format!("cannot create the folder {}: {e}", dir.display()));
        }
    }
    if let Some(path) = &config.export_env {
        match super::environment::export(
            path,
            std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))),
        ) {
            Ok(n) => hub.event(format!("environment: {n} variables written to {} for SSH sessions", path.display())),
            Err(e) => hub.event(format!(
                "environment: cannot write {} ({e}); SSH sessions will not see the container's variables",
                path.display()
            )),
        }
    }
    if !config.disabled.is_empty() {
        hub.event(format!("switched off (enabled = false): {}", config.disabled.join(", ")));
    }
}

/// The start-up log says plainly when the default login is in force, and what happened to the
/// sessions and the token.
fn announce_auth(config: &Config, hub: &Hub, loaded: &Loaded) {
    if config.auth.defaults_in_force {
        hub.event(format!("WARNING: {}", crate::http::pages::DEFAULTS_WARNING));
    }
    match loaded {
        Loaded::Kept(n) => hub.event(format!("auth: browser sessions kept from the last run: {n}")),
        Loaded::Revoked(n) => {
            hub.event(format!("auth: the username or password changed: {n} browser sessions were revoked"))
        }
        Loaded::Fresh => {}
    }
    if let Some(why) = &config.auth.token_ignored {
        hub.event(format!("auth: {why}"));
    }
}

/// `gpubox reload`: reads the configuration again and applies what changed in the services and
/// their ports; the rest of it (auth, the apps, …) is compared and named when it changed, and
/// applies at the next start. A configuration with errors changes nothing.
async fn reload(
    path: Option<&Path>,
    current: &mut Config,
    detached: bool,
    sup: &Supervisor,
    gateway: Option<&mut gateway::Running>,
    hub: &Hub,
    tunnels: &crate::tunnels::Tunnels,
) -> Result<crate::control::protocol::ReloadAnswer, server::ReloadError> {
    use server::ReloadError;
    let read = path.map(Path::to_path_buf);
    let new = tokio::task::spawn_blocking(move || Config::load(read.as_deref()))
        .await
        .map_err(|e| ReloadError::Failed(format!("cannot read the configuration: {e}")))?
        .map_err(|e| {
            hub.event("reload refused: the configuration has errors; nothing changed");
            for line in e.to_string().lines() {
                hub.event(line.to_string());
            }
            ReloadError::Config(format!(
                "{e}\nnothing was changed: fix the configuration and run `gpubox reload` again"
            ))
        })?;
    let mut answer = crate::control::protocol::ReloadAnswer {
        sources: new.sources(),
        not_applied: settings_changed(current, &new, detached),
        ..Default::default()
    };
    match gateway {
        Some(g) => {
            let ports = g.reconfigure(&new).await.map_err(|e| ReloadError::Failed(format!("{e}\nnothing was changed")))?;
            (answer.ports, answer.failed) = (ports.lines, ports.failed);
        }
        None if !new.ports().is_empty() => {
            return Err(ReloadError::Failed("gpubox started without any port, so it has no login to put in front of new ones; start it again to serve them\nnothing was changed".into()))
        }
        None => {}
    }
    let changes = sup.reconfigure(&new.services).await.map_err(|e| ReloadError::Failed(e.to_string()))?;
    tunnels.configure(&new);
    if let Some(p) = new.tunnels.problem.as_ref().filter(|p| current.tunnels.problem.as_ref() != Some(*p)) {
        hub.event(format!("tunnels: {p}"));
    }
    (answer.added, answer.removed, answer.changed, answer.unchanged) =
        (changes.added, changes.removed, changes.changed, changes.unchanged);
    let list = |v: &[String]| if v.is_empty() { "none".to_string() } else { v.join(", ") };
    hub.event(format!(
        "configuration reloaded from {}: added {}; removed {}; changed {}; {} unchanged{}",
        answer.sources,
        list(&answer.added),
        list(&answer.removed),
        list(&answer.changed),
        answer.unchanged.len(),
        if answer.not_applied.is_empty() {
            String::new()
        } else {
            format!("; applies at the next start: {}", answer.not_applied.join(", "))
        }
    ));
    // What was not applied stays as it was, so that the next reload names it again.
    current.services = new.services;
    current.tunnels = new.tunnels;
    current.disabled = new.disabled;
    current.extra_sources = new.extra_sources;
    Ok(answer)
}

/// The settings outside the services that differ between two configurations, by key.
fn settings_changed(old: &Config, new: &Config, detached: bool) -> Vec<String> {
    let mut new = new.clone();
    if detached {
        // A detached gpubox turned its log mirror off itself (see `run`): not a change in the file.
        new.logs.stdout = false;
    }
    let (Ok(serde_json::Value::Object(a)), Ok(serde_json::Value::Object(b))) =
        (serde_json::to_value(old), serde_json::to_value(&new))
    else {
        return Vec::new();
    };
    // The services are applied; [provision] is its service's command, [tunnels] their services'
    // (the tunnels' addresses follow them); `disabled` follows them.
    const APPLIED: [&str; 4] = ["services", "provision", "tunnels", "disabled"];
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).filter(|k| !APPLIED.contains(&k.as_str())).collect();
    keys.sort();
    keys.dedup();
    // The password and the token are left out of the serialized form (it is what `config show`
    // prints): compared here.
    let secrets = old.auth.password != new.auth.password || old.auth.token != new.auth.token;
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k) || (*k == "auth" && secrets))
        .map(|k| if k == "apps" { "the built-in apps (files, terminal, logs)".to_string() } else { format!("`{k}`") })
        .collect()
}

fn forward(sup: &Supervisor, hub: &Hub, sig: Signal) {
    hub.event(format!("{} received: passing it on to every running service", sig.as_str()));
    sup.forward(sig);
}
