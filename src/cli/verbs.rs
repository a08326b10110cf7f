//! The CLI verbs that talk to a running gpubox, and the `config` verbs that need none.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::EXIT_CONFIG;
use crate::config::{self, Config};
use crate::control::client::{Client, ClientError};
use crate::control::protocol::{
    HealthAnswer, LogsMessage, ReloadAnswer, Request, RoutesAnswer, ServiceAnswer, ShutdownAnswer, StatusAnswer,
};
use crate::human::duration as human;
use crate::logs::Stream;
use crate::supervisor::{ServiceStatus, State};

/// Prints a client error in one line and picks the exit code.
fn fail(e: ClientError) -> anyhow::Result<i32> {
    eprintln!("gpubox: {e}");
    Ok(1)
}

pub fn status(control: &Path, json: bool) -> anyhow::Result<i32> {
    let v: StatusAnswer = match Client::ask(control, &Request::Status) {
        Ok(v) => v,
        Err(e) => return fail(e),
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(0);
    }
    let (g, info) = (&v.gpubox, &v.gpubox.info);
    println!(
        "gpubox {} · pid {}{} · up {} · config {}",
        info.version,
        info.pid,
        if info.pid1 { " (PID 1)" } else { "" },
        ms(Some(g.uptime_ms)),
        info.config,
    );
    let mut rows =
        vec![["SERVICE", "STATE", "READY", "PID", "UPTIME", "RESTARTS", "LAST EXIT"].map(String::from).to_vec()];
    for s in &v.services {
        let mut state = s.state.as_str().to_string();
        if let Some(d) = s.restart_delay_ms {
            state = format!("{state} ({})", human(Duration::from_millis(d)));
        }
        rows.push(vec![
            s.name.clone(),
            state,
            if s.ready { "yes" } else { "no" }.to_string(),
            s.pid.map_or("-".into(), |p| p.to_string()),
            s.uptime_ms.map_or("-".into(), |u| ms(Some(u))),
            s.restarts.to_string(),
            s.last_exit
                .map_or("-".into(), |e| if s.last_exit_asked { format!("{e}, on request") } else { e.to_string() }),
        ]);
        if let Some(e) = &s.error {
            rows.push(vec![String::new(), format!("↳ {e}")]);
        }
        if let Some(now) = v.live.get(&s.name) {
            let now: String = now.trim().chars().take(100).collect();
            rows.push(vec![String::new(), format!("↳ {now}")]);
        }
    }
    print_table(&rows);
    if !v.apps.is_empty() {
        let mut rows = vec![["APP", "SERVES", "ON"].map(String::from).to_vec()];
        for a in &v.apps {
            let on = match a.bind {
                std::net::IpAddr::V6(ip) => format!("[{ip}]:{}", a.port),
                ip => format!("{ip}:{}", a.port),
            };
            rows.push(vec![a.name.clone(), a.describe.clone(), on]);
        }
        println!();
        print_table(&rows);
    }
    if !v.tunnels.is_empty() {
        let mut rows = vec![["TUNNEL", "TO PORT", "VIA"].map(String::from).to_vec()];
        rows.extend(v.tunnels.iter().map(|t| vec![t.url.clone(), t.port.to_string(), t.via.clone()]));
        println!();
        print_table(&rows);
    }
    if let Some(p) = &v.tunnel_problem {
        println!("\ntunnels: {p}");
    }
    Ok(0)
}

fn ms(v: Option<u64>) -> String {
    v.map_or("-".into(), |m| humantime::format_duration(Duration::from_secs(m / 1000)).to_string())
}

fn print_table(rows: &[Vec<String>]) {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter().filter(|r| r.len() > 2).filter_map(|r| r.get(c)).map(|s| s.chars().count()).max().unwrap_or(0)
        })
        .collect();
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if row.len() <= 2 || i + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}  ", w = widths[i]));
            }
        }
        println!("{}", line.trim_end());
    }
}

pub fn logs(control: &Path, request: Request) -> anyhow::Result<i32> {
    let many = match &request {
        Request::Logs { filter, .. } => filter.services.len() != 1,
        _ => true,
    };
    let mut client = match Client::connect(control) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    if let Err(e) = client.send(&request) {
        return fail(e);
    }
    let stdout = std::io::stdout();
    let tty = stdout.is_terminal();
    let mut out = stdout.lock();
    let mut live_shown = false;
    loop {
        let msg = match client.read::<LogsMessage>() {
            Ok(Some(m)) => m,
            Ok(None) => return Ok(0),
            Err(e) => return fail(e),
        };
        if let LogsMessage::End { .. } = msg {
            return Ok(0);
        }
        if live_shown {
            write!(out, "\r\x1b[K")?;
            live_shown = false;
        }
        // Groups of matches with their context are separated by `--`, as grep does.
        if let LogsMessage::Line { new_group: true, .. } = msg {
            writeln!(out, "{}", if tty { "\x1b[2m--\x1b[0m" } else { "--" })?;
        }
        match msg {
            // Context lines around a match are dimmed on a terminal.
            LogsMessage::Line { line, context: true, .. } if tty => writeln!(
                out,
                "\x1b[2m{}\x1b[0m",
                format_line(line.time_ms, &line.service, line.stream, &line.text, many)
            )?,
            LogsMessage::Line { line, .. } => {
                writeln!(out, "{}", format_line(line.time_ms, &line.service, line.stream, &line.text, many))?
            }
            LogsMessage::Gap { gap } => writeln!(
                out,
                "… older lines (up to #{}) are no longer in memory; they are in {}",
                gap.before,
                gap.log_dir.display()
            )?,
            LogsMessage::Live { live } if tty => {
                let line = format_line(live.time_ms, &live.service, live.stream, &live.text, many);
                let text: String = line.chars().take(200).collect();
                write!(out, "{text}")?;
                live_shown = true;
            }
            LogsMessage::Live { .. } | LogsMessage::End { .. } => {}
        }
        out.flush()?;
    }
}

fn format_line(time_ms: u64, service: &str, stream: Stream, text: &str, many: bool) -> String {
    let time = {
        let s = humantime::format_rfc3339_millis(std::time::UNIX_EPOCH + Duration::from_millis(time_ms)).to_string();
        s.get(11..23).unwrap_or("").to_string()
    };
    let mark = if stream == Stream::Stderr { "!" } else { " " };
    if many {
        format!("{time} {service:<10}{mark}| {text}")
    } else {
        format!("{time}{mark}| {text}")
    }
}

/// `start`, `stop`, `restart`: prints the state the service is in once asked, then, with a
/// `wait` limit, waits until it is ready (a oneshot: done). Exit 1 when it exits, fails or is
/// stopped before that, or is still not ready at the limit.
pub fn control(control: &Path, req: Request, wait: Option<Duration>) -> anyhow::Result<i32> {
    let s = match Client::ask::<ServiceAnswer>(control, &req) {
        Ok(v) => v.service,
        Err(e) => return fail(e),
    };
    println!("{}: {}{}", s.name, s.state.as_str(), pid(&s));
    let Some(limit) = wait else { return Ok(0) };
    wait_ready(control, s, std::time::Instant::now() + limit, limit)
}

fn pid(s: &ServiceStatus) -> String {
    s.pid.map_or(String::new(), |p| format!(" (pid {p})"))
}

/// Follows a service until it is ready (0) or cannot be (1: it exited, was stopped, or is still
/// not ready at `deadline`, `limit` after the wait began), saying each state it passes.
fn wait_ready(control: &Path, s: ServiceStatus, deadline: std::time::Instant, limit: Duration) -> anyhow::Result<i32> {
    let started = std::time::Instant::now();
    let mut shown = s.state;
    let mut now = s;
    loop {
        if now.ready {
            if now.state != shown {
                println!("{}: {}{}", now.name, now.state.as_str(), pid(&now));
            }
            if started.elapsed() >= Duration::from_millis(500) {
                println!("{}: ready after {}", now.name, human(started.elapsed()));
            }
            return Ok(0);
        }
        if matches!(now.state, State::Backoff | State::Exited | State::Failed | State::Stopped) {
            let exit = now.last_exit.map_or(String::new(), |e| format!(" ({e})"));
            let what = match now.state {
                State::Backoff => {
                    let again = now
                        .restart_delay_ms
                        .map_or(String::new(), |d| format!(" in {}", human(Duration::from_millis(d))));
                    format!("exited{exit} before it was ready; it will be started again{again}")
                }
                State::Stopped => "was stopped before it was ready".to_string(),
                State::Failed => format!("failed{exit} before it was ready"),
                _ => format!("exited{exit} before it was ready"),
            };
            let detail = now.error.as_deref().map_or(String::new(), |e| format!(" ({e})"));
            eprintln!("gpubox: {} {what}{detail}. Its log: `gpubox logs {} -n 50`", now.name, now.name);
            return Ok(1);
        }
        if now.state != shown {
            println!("{}: {}{}", now.name, now.state.as_str(), pid(&now));
            shown = now.state;
        }
        if std::time::Instant::now() >= deadline {
            eprintln!(
                "gpubox: {} is still {} after {}; it goes on starting (`gpubox status` shows when it is ready; --timeout waits longer)",
                now.name,
                now.state.as_str(),
                human(limit)
            );
            return Ok(1);
        }
        std::thread::sleep(Duration::from_millis(100));
        let status: StatusAnswer = match Client::ask(control, &Request::Status) {
            Ok(v) => v,
            Err(e) => return fail(e),
        };
        match status.services.into_iter().find(|x| x.name == now.name) {
            Some(x) => now = x,
            None => {
                eprintln!("gpubox: {} is no longer configured", now.name);
                return Ok(1);
            }
        }
    }
}

/// `gpubox reload`: what changed, then (unless `wait` is `None`) waits until every service that
/// was added or changed is ready.
pub fn reload(control: &Path, wait: Option<Duration>) -> anyhow::Result<i32> {
    let a: ReloadAnswer = match Client::ask(control, &Request::Reload) {
        Ok(a) => a,
        Err(ClientError::Refused { code, message }) if code == "config" => {
            eprintln!("{message}");
            return Ok(EXIT_CONFIG);
        }
        Err(e) => return fail(e),
    };
    let list = |v: &[String]| if v.is_empty() { "-".to_string() } else { v.join(", ") };
    println!("configuration: {}", a.sources);
    println!("added:     {}", list(&a.added));
    println!("removed:   {}", list(&a.removed));
    println!("changed:   {}", list(&a.changed));
    println!("unchanged: {}", list(&a.unchanged));
    for line in &a.ports {
        println!("{line}");
    }
    if !a.not_applied.is_empty() {
        println!("changed but applied only when gpubox starts again: {}", a.not_applied.join(", "));
    }
    for f in &a.failed {
        eprintln!("gpubox: {f}");
    }
    let mut code = i32::from(!a.failed.is_empty());
    let Some(limit) = wait else { return Ok(code) };
    let deadline = std::time::Instant::now() + limit;
    for name in a.added.iter().chain(&a.changed) {
        let status: StatusAnswer = match Client::ask(control, &Request::Status) {
            Ok(v) => v,
            Err(e) => return fail(e),
        };
        let Some(s) = status.services.into_iter().find(|s| s.name == *name) else { continue };
        println!("{}: {}{}", s.name, s.state.as_str(), pid(&s));
        code = code.max(wait_ready(control, s, deadline, limit)?);
    }
    Ok(code)
}

pub fn shutdown(control: &Path) -> anyhow::Result<i32> {
    let mut client = match Client::connect(control) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    let answer = client.send(&Request::Shutdown).and_then(|_| client.read::<ShutdownAnswer>());
    match answer {
        Ok(Some(v)) => println!("gpubox (pid {}) is stopping its services…", v.pid),
        Ok(None) => {}
        Err(e) => return fail(e),
    }
    // gpubox closes the connection when it exits.
    while let Ok(Some(_)) = client.answer() {}
    println!("gpubox stopped");
    Ok(0)
}

pub fn health(control: &Path) -> anyhow::Result<i32> {
    let mut client = match Client::connect(control) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    client.set_timeout(Some(Duration::from_secs(5)));
    let v = match client.send(&Request::Health).and_then(|_| client.read::<HealthAnswer>()) {
        Ok(Some(v)) => v,
        Ok(None) => return fail(ClientError::BadAnswer("no answer".into())),
        Err(e) => return fail(e),
    };
    if v.healthy {
        println!("healthy");
        Ok(0)
    } else {
        println!("unhealthy: {}", v.problems.join("; "));
        Ok(1)
    }
}

pub fn routes(control: &Path, json: bool) -> anyhow::Result<i32> {
    let v: RoutesAnswer = match Client::ask(control, &Request::Routes) {
        Ok(v) => v,
        Err(e) => return fail(e),
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(0);
    }
    let mut rows = vec![["PORT", "SERVICE", "METHOD", "PATH", "ACCESS"].map(String::from).to_vec()];
    for site in &v.sites {
        for r in &site.routes {
            let mut access = if r.public { "public" } else { "login" }.to_string();
            if r.websocket {
                access.push_str(", websocket");
            }
            rows.push(vec![
                site.port.to_string(),
                site.service.clone(),
                r.method.to_string(),
                r.path.to_string(),
                access,
            ]);
        }
    }
    print_table(&rows);
    Ok(0)
}

/// Reads a password (twice, without echo, on a terminal) and prints its Argon2 hash.
pub fn hash_password() -> anyhow::Result<i32> {
    let stdin = std::io::stdin();
    let password = if stdin.is_terminal() {
        let first = read_hidden("Password: ")?;
        let again = read_hidden("Again: ")?;
        if first != again {
            eprintln!("gpubox: the two passwords differ; nothing printed");
            return Ok(1);
        }
        first
    } else {
        let mut line = String::new();
        stdin.read_line(&mut line)?;
        line.trim_end_matches(['\n', '\r']).to_string()
    };
    if password.is_empty() {
        eprintln!("gpubox: the password is empty; nothing printed");
        return Ok(1);
    }
    println!("{}", crate::auth::hash_password(&password));
    Ok(0)
}

fn read_hidden(prompt: &str) -> anyhow::Result<String> {
    use nix::sys::termios::{tcgetattr, tcsetattr, LocalFlags, SetArg};
    let stdin = std::io::stdin();
    eprint!("{prompt}");
    let saved = tcgetattr(&stdin)?;
    let mut quiet = saved.clone();
    quiet.local_flags.remove(LocalFlags::ECHO);
    tcsetattr(&stdin, SetArg::TCSANOW, &quiet)?;
    let mut line = String::new();
    let read = stdin.read_line(&mut line);
    tcsetattr(&stdin, SetArg::TCSANOW, &saved)?;
    eprintln!();
    read?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

fn load(file: Option<PathBuf>) -> Result<Config, i32> {
    let path = file.or_else(config::default_path);
    Config::load(path.as_deref()).map_err(|e| {
        eprintln!("{e}");
        EXIT_CONFIG
    })
}

pub fn config_check(file: Option<PathBuf>) -> anyhow::Result<i32> {
    match load(file) {
        Ok(c) => {
            match c.apps.len() {
                0 => println!("{}: ok ({} services)", c.source, c.services.len()),
                n => println!("{}: ok ({} services, {n} built-in apps)", c.source, c.services.len()),
            }
            Ok(0)
        }
        Err(code) => Ok(code),
    }
}

pub fn config_show(file: Option<PathBuf>) -> anyhow::Result<i32> {
    match load(file) {
        Ok(c) => {
            print!("{}", config::to_masked_toml(&c));
            Ok(0)
        }
        Err(code) => Ok(code),
    }
}

pub struct ProvisionArgs {
    pub manifest: Option<String>,
    pub script: Option<String>,
    pub config: Option<PathBuf>,
    pub models_dir: Option<PathBuf>,
    pub extensions_dir: Option<PathBuf>,
    pub python: Option<String>,
    pub parallel: Option<usize>,
    pub bandwidth: Option<String>,
    pub state_dir: Option<PathBuf>,
}

/// `gpubox provision`: by hand, or as the `provision` service (which passes every setting).
pub fn provision(a: ProvisionArgs) -> anyhow::Result<i32> {
    let needs_config = a.models_dir.is_none() || a.extensions_dir.is_none() || a.state_dir.is_none();
    let config = if needs_config || a.config.is_some() {
        match crate::config::Config::load(a.config.as_deref()) {
            Ok(c) => Some(c),
            Err(e) => {
                eprint!("{e}");
                return Ok(2);
            }
        }
    } else {
        None
    };
    let from = config.as_ref().map(|c| &c.provision);
    let bandwidth = match &a.bandwidth {
        None => from.and_then(|p| p.bandwidth),
        Some(b) => match crate::config::units::parse_size(&toml::Value::String(b.clone())) {
            Ok(0) => None,
            Ok(n) => Some(n),
            Err(e) => {
                eprintln!("gpubox provision: --bandwidth {b}: {e}; write a size per second like 50MB");
                return Ok(2);
            }
        },
    };
    let settings = crate::provision::Settings {
        manifest: a.manifest.or_else(|| from.and_then(|p| p.manifest.clone())),
        script: a.script.or_else(|| from.and_then(|p| p.script.clone())),
        models_dir: a.models_dir.or_else(|| from.map(|p| p.models_dir.clone())).unwrap_or_default(),
        extensions_dir: a.extensions_dir.or_else(|| from.map(|p| p.extensions_dir.clone())).unwrap_or_default(),
        python: a.python.or_else(|| from.map(|p| p.python.clone())).unwrap_or_else(|| "python3".into()),
        parallel: a.parallel.or_else(|| from.map(|p| p.parallel)).unwrap_or(4).clamp(1, 64),
        bandwidth,
        state_dir: a.state_dir.or_else(|| config.as_ref().map(|c| c.state_dir.clone())).unwrap_or_default(),
    };
    if settings.manifest.is_none() && settings.script.is_none() {
        eprintln!(
            "gpubox provision: nothing to do: give a manifest (a path or URL), --script, or set [provision] manifest / PROVISION_URL"
        );
        return Ok(2);
    }
    Ok(crate::provision::run(&settings))
}

/// `gpubox tunnel-run ORIGIN -- cloudflared ARGS...`: what a quick tunnel's service runs. gpubox
/// serves each tunnelled port a second time on a loopback port of its own, where every
/// connection is cloudflared's (so only there is Cloudflare's word on the client believed), and
/// writes `<gpubox's pid> <address>` to ORIGIN when it is listening. This waits for that (gpubox
/// starts the services and the ports side by side), then becomes cloudflared with `--url`.
pub fn tunnel_run(origin: &Path, program: &[String]) -> anyhow::Result<i32> {
    use std::os::unix::process::CommandExt;
    let parent = nix::unistd::getppid().as_raw();
    let until = std::time::Instant::now() + Duration::from_secs(30);
    let address = loop {
        // Only an address written by the gpubox that started this (not one left by an earlier run).
        let found = std::fs::read_to_string(origin).ok().and_then(|t| {
            let (pid, address) = t.trim().split_once(' ')?;
            (pid.parse::<i32>().ok()? == parent).then(|| address.to_string())
        });
        if let Some(a) = found {
            break a;
        }
        if std::time::Instant::now() > until {
            eprintln!(
                "gpubox tunnel-run: no address for the tunnel in {} after 30 s: is the port served? (see gpubox's log)",
                origin.display()
            );
            return Ok(1);
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let Some((first, rest)) = program.split_first() else { anyhow::bail!("no program to run") };
    let e = std::process::Command::new(first).args(rest).arg("--url").arg(format!("http://{address}")).exec();
    eprintln!("gpubox tunnel-run: cannot run {first}: {e}");
    Ok(127)
}
