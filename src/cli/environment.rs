//! `export_env`: the container's environment written to a file such as `/etc/environment`, so
//! that SSH sessions (which start from sshd's clean environment, not the container's) see the
//! variables Vast and the template set. gpubox's block is rewritten at each start; whatever
//! else the file holds is kept.

use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

const BEGIN: &str =
    "# gpubox: the container's environment, for SSH sessions (rewritten at each start; edit above or below this block)";
const END: &str = "# gpubox: end";

/// Per-process or per-login variables, and gpubox's own secrets (the file is world-readable; a
/// shell has no use for the web login's password or the tunnel's token).
const SKIPPED: &[&str] = &[
    "HOME",
    "PWD",
    "OLDPWD",
    "SHLVL",
    "_",
    "HOSTNAME",
    "TERM",
    "SHELL",
    "USER",
    "LOGNAME",
    "MAIL",
    "PASSWORD",
    "OPEN_BUTTON_TOKEN",
    "CF_TUNNEL_TOKEN",
    "TUNNEL_TOKEN",
    "INVOCATION_ID",
    "JOURNAL_STREAM",
    "NOTIFY_SOCKET",
];

/// Writes `vars` into `path`'s gpubox block, atomically; returns how many were written.
pub fn export(path: &Path, vars: impl IntoIterator<Item = (String, String)>) -> io::Result<usize> {
    let old = match std::fs::read_to_string(path) {
        Ok(s) => s,
        Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e),
    };
    let (text, n) = render(&old, vars);
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.gpubox-{}", std::process::id()));
    let written = (|| {
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o644).open(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.set_permissions(std::fs::Permissions::from_mode(0o644))?;
        std::fs::rename(&tmp, path)
    })();
    match written {
        Ok(()) => Ok(n),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            // A file bind-mounted into the container cannot be replaced: write it in place.
            std::fs::write(path, text).map(|_| n).map_err(|_| e)
        }
    }
}

fn render(old: &str, vars: impl IntoIterator<Item = (String, String)>) -> (String, usize) {
    let mut out = String::new();
    let mut inside = false;
    for line in old.lines() {
        if line == BEGIN {
            inside = true;
        } else if line == END {
            inside = false;
        } else if !inside {
            out.push_str(line);
            out.push('\n');
        }
    }
    let mut vars: Vec<_> = vars.into_iter().filter(|(k, v)| keep(k, v)).collect();
    vars.sort();
    out.push_str(BEGIN);
    out.push('\n');
    for (k, v) in &vars {
        // pam_env reads KEY="VALUE"; the quotes keep spaces and `#` as they are.
        out.push_str(&format!("{k}=\"{v}\"\n"));
    }
    out.push_str(END);
    out.push('\n');
    (out, vars.len())
}

fn keep(name: &str, value: &str) -> bool {
    let identifier = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    // pam_env has no escapes: a value with a quote or a line break cannot be written faithfully.
    identifier
        && !SKIPPED.contains(&name)
        && !name.starts_with("GPUBOX_")
        && !value.contains(['"', '\n', '\r', '\0', '\\'])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn keeps_other_lines_and_replaces_its_block() {
        let first = render("PATH=\"/usr/bin\"\n", vars(&[("HF_TOKEN", "hf_x"), ("PASSWORD", "s3cret")])).0;
        assert_eq!(first, format!("PATH=\"/usr/bin\"\n{BEGIN}\nHF_TOKEN=\"hf_x\"\n{END}\n"));
        let (second, n) = render(
            &format!("{first}LANG=C\n"),
            vars(&[("B", "two words # not a comment"), ("A", "1"), ("HOME", "/root"), ("X", "a\"b"), ("1X", "")]),
        );
        assert_eq!(n, 2);
        assert_eq!(
            second,
            format!("PATH=\"/usr/bin\"\nLANG=C\n{BEGIN}\nA=\"1\"\nB=\"two words # not a comment\"\n{END}\n")
        );
    }

    #[test]
    fn writes_the_file_readable_by_all() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("environment");
        std::fs::write(&path, "KEEP=1\n").unwrap();
        assert_eq!(export(&path, vars(&[("VAST_TCP_PORT_7010", "41234")])).unwrap(), 1);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("KEEP=1\n") && text.contains("VAST_TCP_PORT_7010=\"41234\"\n"), "{text}");
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o644);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no temporary file is left");
    }
}
