//! Bad configurations: a clear message naming file, line and key, exit code 2, nothing started.

use std::process::Command;

use crate::util::{check, config_dir, BIN};

fn assert_rejected(body: &str, line: usize, key: &str, words: &str) {
    let (code, err, path, _dir) = check(body);
    assert_eq!(code, 2, "exit code for:\n{body}\nstderr: {err}");
    // The workspace line comes first in the written file.
    let place = format!("{}:{}:", path.display(), line + 1);
    assert!(err.contains(&place), "expected {place} in: {err}");
    assert!(err.contains(key), "expected key {key} in: {err}");
    assert!(err.contains(words), "expected {words:?} in: {err}");
    assert!(err.contains("hint:"), "expected a hint in: {err}");
}

#[test]
fn unknown_key() {
    assert_rejected(
        "[services.a]\ncommand = \"true\"\nrestrat = \"always\"\n",
        3,
        "services.a.restrat",
        "did you mean `restart`",
    );
}

#[test]
fn wrong_type() {
    assert_rejected("[services.a]\ncommand = \"true\"\ntty = \"yes\"\n", 3, "services.a.tty", "invalid type");
}

#[test]
fn duplicate_service_name() {
    assert_rejected(
        "[services.a]\ncommand = \"true\"\n\n[services.a]\ncommand = \"false\"\n",
        4,
        "services.a",
        "duplicate",
    );
}

#[test]
fn dependency_cycle() {
    let body = "[services.a]\ncommand = \"true\"\ndepends_on = [\"b\"]\n[services.b]\ncommand = \"true\"\ndepends_on = [\"a\"]\n";
    let (code, err, _, _dir) = check(body);
    assert_eq!(code, 2);
    assert!(err.contains("dependency cycle: a → b → a") || err.contains("dependency cycle: b → a → b"), "{err}");
    assert!(err.contains(".depends_on"), "{err}");
}

#[test]
fn missing_dependency() {
    assert_rejected(
        "[services.web]\ncommand = \"true\"\ndepends_on = [\"forg\"]\n\n[services.forge]\ncommand = \"true\"\n",
        3,
        "services.web.depends_on",
        "did you mean \"forge\"",
    );
}

#[test]
fn command_not_found() {
    assert_rejected(
        "[services.a]\ncommand = \"pythno launch.py\"\n",
        2,
        "services.a.command",
        "program `pythno` not found",
    );
}

#[test]
fn several_errors_are_reported_together() {
    let (code, err, _, _dir) = check("[services.a]\ncommand = \"nope-1\"\n[services.b]\ncommand = \"nope-2\"\n");
    assert_eq!(code, 2);
    assert!(err.contains("nope-1") && err.contains("nope-2"), "{err}");
}

#[test]
fn a_bad_config_starts_nothing() {
    // `a` is valid and would write a marker; `b` is broken. Nothing may start.
    let dir = config_dir("");
    let marker = dir.path().join("started");
    let body = format!(
        "workspace = \"{ws}/ws\"\n[services.a]\ncommand = [\"sh\", \"-c\", \"touch {m}; sleep 100\"]\n[services.b]\ncommand = \"true\"\ndepends_on = [\"zzz\"]\n",
        ws = dir.path().display(),
        m = marker.display()
    );
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, body).unwrap();
    let out = Command::new(BIN)
        .arg("--control")
        .arg(dir.path().join("c.sock"))
        .arg("run")
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not started"), "{err}");
    assert!(!marker.exists(), "a service started although the config was rejected");
    assert!(!dir.path().join("c.sock").exists());
}

#[test]
fn valid_config_checks_ok_and_shows_expanded_masked() {
    let body = "[services.a]\ncommand = \"sh -c 'exit 0' ${GPUBOX_TEST_ARGS:-}\"\nenv = { HF_TOKEN = \"hf_very_secret\", MODE = \"${GPUBOX_TEST_MODE:-fast}\" }\n";
    let (code, err, path, _dir) = check(body);
    assert_eq!(code, 0, "{err}");
    let out =
        Command::new(BIN).args(["config", "show"]).arg(&path).env("GPUBOX_TEST_ARGS", "--one --two").output().unwrap();
    assert!(out.status.success());
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(shown.contains("\"--one\"") && shown.contains("\"--two\""), "{shown}");
    assert!(shown.contains("MODE = \"fast\""), "{shown}");
    assert!(!shown.contains("hf_very_secret") && shown.contains("HF_TOKEN = \"********\""), "{shown}");
}

#[test]
fn embedded_default_config_is_valid() {
    let out = Command::new(BIN).args(["config", "check"]).env_remove("GPUBOX_CONFIG").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn example_config_is_valid() {
    let path = format!("{}/examples/local.toml", env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(BIN).args(["config", "check", &path]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// Issue 14 (21): the laptop example bound every port to 0.0.0.0 with admin / admin, offering a
/// root shell to whoever shares the network. Each of its ports listens on 127.0.0.1.
#[test]
fn the_laptop_example_listens_on_this_machine_only() {
    let path = format!("{}/examples/local.toml", env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(BIN).args(["config", "show", &path]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    let ports: Vec<usize> = (0..lines.len()).filter(|&i| lines[i].starts_with("port = ")).collect();
    assert_eq!(ports.len(), 4, "{text}");
    for i in ports {
        assert_eq!(lines[i - 1], "bind = \"127.0.0.1\"", "{} listens elsewhere:\n{text}", lines[i]);
    }
}

#[test]
fn built_in_apps_take_only_their_own_keys() {
    // The logs app is a built-in app: program keys make no sense on it.
    assert_rejected(
        "[services.logs]\napp = \"logs\"\nport = 7030\ncommand = \"true\"\n",
        4,
        "services.logs.command",
        "built-in app",
    );
    // `files` belongs to the logs app only.
    assert_rejected(
        "[services.a]\ncommand = \"true\"\nfiles = [\"/var/log/*.log\"]\n",
        3,
        "services.a.files",
        "belongs to the logs app",
    );
    // A misspelt app name gets a suggestion; planned apps say so.
    assert_rejected("[services.l]\napp = \"logz\"\nport = 7030\n", 2, "services.l.app", "did you mean \"logs\"");
    assert_rejected("[services.f]\napp = \"filez\"\nport = 7010\n", 2, "services.f.app", "did you mean \"files\"");
    // The terminal's own keys, and only on the terminal.
    assert_rejected(
        "[services.t]\napp = \"terminal\"\nport = 7020\nshell = \"/no/such/shell\"\n",
        4,
        "services.t.shell",
        "no program",
    );
    assert_rejected(
        "[services.l]\napp = \"logs\"\nport = 7030\nidle_timeout = \"1h\"\n",
        4,
        "services.l.idle_timeout",
        "belongs to the terminal app",
    );
    assert_rejected(
        "[services.t]\napp = \"terminal\"\nport = 7020\nidle_timeout = \"soon\"\n",
        4,
        "services.t.idle_timeout",
        "",
    );
    assert_rejected("[services.l]\napp = \"logs\"\n", 2, "services.l.port", "needs a `port`");
}

#[test]
fn the_logs_app_is_accepted_with_its_files() {
    let (code, err, _, _dir) = check("[services.logs]\napp = \"logs\"\nport = 7030\nfiles = [\"/var/log/*.log\"]\n");
    assert_eq!(code, 0, "{err}");
    let body = "[services.t]\napp = \"terminal\"\nport = 7020\nshell = \"sh\"\nuser = \"root\"\nidle_timeout = \"2h\"\nscrollback = 20000\n";
    let (code, err, _, _dir) = check(body);
    assert_eq!(code, 0, "{err}");
}

/// Issue 14 (11): a hash with m=4294967295 passed `config check`, and the first login attempt
/// (which needs no credentials) aborted gpubox; `max_failures = 0` was taken silently as 1.
#[test]
fn a_hash_no_login_could_afford_and_zero_failures_are_refused() {
    assert_rejected(
        "[auth]\npassword_hash = \"$argon2id$v=19$m=4294967295,t=2,p=1$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG\"\n",
        2,
        "auth.password_hash",
        "per login attempt",
    );
    assert_rejected(
        "[auth]\npassword_hash = \"$argon2id$v=19$m=19456,t=2000,p=1$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG\"\n",
        2,
        "auth.password_hash",
        "t=2000",
    );
    assert_rejected("[auth]\nmax_failures = 0\n", 2, "auth.max_failures", "is 0");
    // gpubox's own hashes pass.
    let mut child = Command::new(BIN)
        .arg("hash-password")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), b"a good password\n").unwrap();
    let hash = String::from_utf8(child.wait_with_output().unwrap().stdout).unwrap();
    let (code, err, _, _dir) = check(&format!("[auth]\npassword_hash = \"{}\"\n", hash.trim()));
    assert_eq!(code, 0, "{err}");
}

/// Eight problems of every kind (unknown keys at three levels, a bad type, values out of range,
/// a missing command, an unknown dependency, a size too big to show) are reported in one run, in
/// the file's order, with their lines; before, `config check` showed one, then six, then the last.
#[test]
fn every_problem_is_reported_at_once_in_file_order() {
    let body = r#"colour = "blue"
[logs]
max_file_size = "18446744073709551615GiB"
max_filez = 3
[auth]
max_failures = 0
lockout = "forever"
[services.a]
command = ["true"]
port = 99999
restartt = "always"
[services.b]
commandd = ["x"]
depends_on = ["nope"]
"#;
    let (code, err, _path, _dir) = check(body);
    assert_eq!(code, 2, "{err}");
    let lines: Vec<usize> = err
        .lines()
        .filter_map(|l| l.strip_prefix("error: "))
        .map(|l| l.split(':').nth(1).unwrap().parse().unwrap())
        .collect();
    // The config_dir helper writes a `workspace` line first: the file's lines are one further on.
    for (key, what) in [
        ("colour", "unknown field"),
        ("logs.max_file_size", "too big"),
        ("logs.max_filez", "unknown field"),
        ("auth.max_failures", "is 0"),
        ("auth.lockout", "not a duration"),
        ("services.a.port", "not a port"),
        ("services.a.restartt", "unknown field"),
        ("services.b", "has no `command`"),
        ("services.b.commandd", "unknown field"),
        ("services.b.depends_on", "nope"),
    ] {
        assert!(
            err.lines().any(|l| l.contains(&format!(": {key}: ")) && l.contains(what)),
            "{key} ({what}) missing from:\n{err}"
        );
    }
    assert_eq!(lines.len(), 10, "{err}");
    assert!(lines.windows(2).all(|w| w[0] <= w[1]), "in the file's order: {lines:?}\n{err}");
}
