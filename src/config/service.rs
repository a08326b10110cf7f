//! Validation of one `[services.<name>]` table: its command (split, expanded, found on PATH),
//! working directory, user, restart policy, readiness probe, signals and delays.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use nix::sys::signal::Signal;
use toml::Spanned;

use super::error::did_you_mean;
use super::listen;
use super::raw::RawService;
use super::validate::{Ctx, RESERVED_NAME};
use super::{Backoff, ReadyProbe, RestartPolicy, Service};

/// Checks one `[services.NAME]` table. Long because it is one arm per key, in file order, so
/// that the errors come out in the order the file has them.
pub(super) fn service(cx: &mut Ctx, name: &Spanned<String>, rs: &RawService, workspace: &Path) -> Option<Service> {
    let n = name.get_ref().as_str();
    let key = |k: &str| format!("services.{n}.{k}");
    let errors_before = cx.errors.len();

    if n == RESERVED_NAME {
        cx.error(
            name.span(),
            &format!("services.{n}"),
            "the name `gpubox` is reserved for gpubox's own log".into(),
            Some("choose another name".into()),
        );
    } else if n.is_empty() || !n.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        cx.error(
            name.span(),
            &format!("services.{n}"),
            "a service name may use only letters, digits, `-` and `_`".into(),
            Some("rename the service".into()),
        );
    }

    let mut env = BTreeMap::new();
    for (k, v) in &rs.env {
        if let Some(v) = cx.expand(v, &key(&format!("env.{k}"))) {
            env.insert(k.clone(), v);
        }
    }
    let cwd = match &rs.cwd {
        Some(c) => cx.path(c, &key("cwd")),
        None => Some(workspace.to_path_buf()),
    };
    if let (Some(c), Some(cwd)) = (&rs.cwd, &cwd) {
        if !cwd.is_dir() {
            cx.error(
                c.span(),
                &key("cwd"),
                format!("`{}` is not a directory", cwd.display()),
                Some("create it, or fix the path".into()),
            );
        }
    }

    let command = command(cx, n, rs, &env, cwd.as_deref().unwrap_or(workspace));

    let oneshot = rs.oneshot.as_ref().is_some_and(|v| *v.get_ref());
    let restart = match &rs.restart {
        None if oneshot => RestartPolicy::Never,
        None => RestartPolicy::Always,
        Some(r) => match r.get_ref().as_str() {
            "always" if oneshot => {
                cx.error(
                    r.span(),
                    &key("restart"),
                    "a oneshot service cannot restart \"always\": it is meant to finish".into(),
                    Some("use \"on-failure\" (retry until it succeeds) or \"never\"".into()),
                );
                RestartPolicy::Never
            }
            "always" => RestartPolicy::Always,
            "on-failure" => RestartPolicy::OnFailure,
            "never" => RestartPolicy::Never,
            other => {
                let hint = did_you_mean(other, &["always", "on-failure", "never"])
                    .map_or("use \"always\", \"on-failure\" or \"never\"".to_string(), |s| {
                        format!("did you mean \"{s}\"?")
                    });
                cx.error(r.span(), &key("restart"), format!("unknown restart policy \"{other}\""), Some(hint));
                RestartPolicy::Never
            }
        },
    };

    let ready = rs.ready.as_ref().and_then(|r| {
        let s = cx.expand(r, &key("ready"))?;
        match parse_probe(&s) {
            Ok(p) => Some(p),
            Err(m) => {
                cx.error(
                    r.span(),
                    &key("ready"),
                    m,
                    Some("write \"http://127.0.0.1:7860/\" or \"tcp://127.0.0.1:7860\"".into()),
                );
                None
            }
        }
    });

    let stop_signal = match &rs.stop_signal {
        None => Signal::SIGTERM,
        Some(s) => {
            let up = s.get_ref().trim().to_ascii_uppercase();
            let name = if up.starts_with("SIG") { up } else { format!("SIG{up}") };
            Signal::from_str(&name).unwrap_or_else(|_| {
                cx.error(
                    s.span(),
                    &key("stop_signal"),
                    format!("unknown signal \"{}\"", s.get_ref()),
                    Some("use a name like \"SIGTERM\", \"SIGINT\" or \"SIGQUIT\"".into()),
                );
                Signal::SIGTERM
            })
        }
    };

    let defaults = Backoff::default();
    let backoff = Backoff {
        initial: cx.duration(&rs.restart_delay, &key("restart_delay"), defaults.initial),
        max: cx.duration(&rs.restart_delay_max, &key("restart_delay_max"), defaults.max),
        reset_after: cx.duration(&rs.stable_after, &key("stable_after"), defaults.reset_after),
    };
    let stop_timeout = cx.duration(&rs.stop_timeout, &key("stop_timeout"), std::time::Duration::from_secs(10));

    let user = rs.user.as_ref().and_then(|u| {
        let name = cx.expand(u, &key("user"))?;
        match nix::unistd::User::from_name(&name) {
            Ok(Some(found)) => {
                let me = nix::unistd::geteuid();
                if !me.is_root() && found.uid != me {
                    cx.error(
                        u.span(),
                        &key("user"),
                        format!("gpubox runs as uid {me} and cannot switch to user \"{name}\""),
                        Some("run gpubox as root, or remove `user`".into()),
                    );
                }
                Some(name)
            }
            _ => {
                cx.error(
                    u.span(),
                    &key("user"),
                    format!("no user named \"{name}\" on this system"),
                    Some("create the user (useradd) or fix the name".into()),
                );
                None
            }
        }
    });

    let depends_on = rs.depends_on.iter().map(|d| d.get_ref().clone()).collect();
    let listen = listen::listen(cx, n, rs);
    // A proxied service without its own probe is ready when its upstream answers HTTP.
    let ready = ready.or_else(|| {
        let up = listen.as_ref()?.upstream.as_ref()?;
        Some(ReadyProbe::Http { host: up.host.clone(), port: up.port, path: "/".into() })
    });

    if cx.errors.len() > errors_before {
        return None;
    }
    Some(Service {
        name: n.to_string(),
        command: command?,
        cwd: cwd?,
        env,
        user,
        restart,
        ready,
        depends_on,
        stop_signal,
        stop_timeout,
        tty: rs.tty.as_ref().is_some_and(|v| *v.get_ref()),
        oneshot,
        backoff,
        listen,
    })
}

fn command(cx: &mut Ctx, n: &str, rs: &RawService, env: &BTreeMap<String, String>, cwd: &Path) -> Option<Vec<String>> {
    let key = format!("services.{n}.command");
    let Some(raw) = &rs.command else {
        let span = cx.text.find(&format!("services.{n}]")).map_or(0..0, |i| i..i);
        cx.error(
            span,
            &format!("services.{n}"),
            "has no `command`".into(),
            Some("add command = \"program --arg\" or command = [\"program\", \"--arg\"]".into()),
        );
        return None;
    };
    let argv = match raw.get_ref() {
        toml::Value::String(line) => {
            let line = cx.expand(&Spanned::new(raw.span(), line.clone()), &key)?;
            match shlex::split(&line) {
                Some(words) => words,
                None => {
                    cx.error(
                        raw.span(),
                        &key,
                        "has an unclosed quote".into(),
                        Some("close the quote, or write the command as an array of strings".into()),
                    );
                    return None;
                }
            }
        }
        toml::Value::Array(items) => {
            let mut argv = Vec::new();
            for item in items {
                let Some(s) = item.as_str() else {
                    cx.error(
                        raw.span(),
                        &key,
                        format!("array items must be strings, found {}", item.type_str()),
                        Some("quote every argument".into()),
                    );
                    return None;
                };
                argv.push(cx.expand(&Spanned::new(raw.span(), s.to_string()), &key)?);
            }
            argv
        }
        other => {
            cx.error(
                raw.span(),
                &key,
                format!("expected a string or an array of strings, found {}", other.type_str()),
                Some("write command = \"program --arg\"".into()),
            );
            return None;
        }
    };
    let Some(program) = argv.first() else {
        cx.error(raw.span(), &key, "is empty".into(), Some("name the program to run".into()));
        return None;
    };
    let path_var = env.get("PATH").cloned().or_else(|| (cx.lookup)("PATH")).unwrap_or_default();
    if find_program(program, cwd, &path_var).is_none() {
        let where_ =
            if program.contains('/') { format!("in {}", cwd.display()) } else { format!("on PATH ({path_var})") };
        cx.error(
            raw.span(),
            &key,
            format!("program `{program}` not found {where_}"),
            Some("install it, give its full path, or fix the name".into()),
        );
        return None;
    }
    Some(argv)
}

/// Resolves a program as `execvp` would: a name with `/` is a path (relative to `cwd`), anything
/// else is looked up in `path_var`.
pub fn find_program(program: &str, cwd: &Path, path_var: &str) -> Option<PathBuf> {
    let executable = |p: &Path| p.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
    if program.contains('/') {
        let p = cwd.join(program);
        return executable(&p).then_some(p);
    }
    path_var.split(':').filter(|d| !d.is_empty()).map(|d| Path::new(d).join(program)).find(|p| executable(p))
}

fn parse_probe(s: &str) -> Result<ReadyProbe, String> {
    let (scheme, rest) = s.split_once("://").ok_or_else(|| format!("`{s}` is not a URL"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) => (h, Some(p.parse::<u16>().map_err(|_| format!("`{p}` is not a port number"))?)),
        None => (authority, None),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']').to_string();
    if host.is_empty() {
        return Err(format!("`{s}` has no host"));
    }
    match scheme {
        "http" => Ok(ReadyProbe::Http { host, port: port.unwrap_or(80), path: path.to_string() }),
        "tcp" => Ok(ReadyProbe::Tcp { host, port: port.ok_or_else(|| format!("`{s}` needs a port"))? }),
        other => Err(format!("unsupported probe scheme `{other}`")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes() {
        assert_eq!(parse_probe("tcp://127.0.0.1:80").unwrap(), ReadyProbe::Tcp { host: "127.0.0.1".into(), port: 80 });
        assert!(parse_probe("tcp://127.0.0.1").is_err());
        assert!(parse_probe("ftp://x:1").is_err());
        assert_eq!(
            parse_probe("http://localhost:8/x?y").unwrap(),
            ReadyProbe::Http { host: "localhost".into(), port: 8, path: "/x?y".into() }
        );
    }
}
