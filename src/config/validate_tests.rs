//! Tests of `validate.rs`: each rule, the error messages and places, and property tests.

use super::*;
use crate::config::{ReadyProbe, RestartPolicy};

fn parse(text: &str) -> Result<Config, ConfigErrors> {
    let env = |n: &str| match n {
        "PATH" => Some("/usr/bin:/bin".to_string()),
        "FORGE_ARGS" => Some("--xformers --api".to_string()),
        _ => None,
    };
    validate(text, "test.toml", Path::new("/tmp"), &env, &|_| Ok(Vec::new()))
}

fn first_error(text: &str) -> ConfigError {
    parse(text).unwrap_err().0.remove(0)
}

#[test]
fn full_service() {
    let c = parse(
        r#"
workspace = "${WORKSPACE:-/workspace}"
[services.forge]
command = "sh -c 'echo hi' ${FORGE_ARGS:-}"
env = { PYTHONUNBUFFERED = "1" }
restart = "on-failure"
ready = "http://127.0.0.1:7860/"
stop_timeout = "3s"
[services.worker]
command = ["sleep", "1"]
depends_on = ["forge"]
"#,
    )
    .unwrap();
    assert_eq!(c.workspace, PathBuf::from("/workspace"));
    let service = |name: &str| c.services.iter().find(|s| s.name == name).unwrap();
    let forge = service("forge");
    assert_eq!(forge.command, ["sh", "-c", "echo hi", "--xformers", "--api"]);
    assert_eq!(forge.restart, RestartPolicy::OnFailure);
    assert_eq!(forge.ready, Some(ReadyProbe::Http { host: "127.0.0.1".into(), port: 7860, path: "/".into() }));
    assert_eq!(forge.stop_timeout, std::time::Duration::from_secs(3));
    assert_eq!(service("worker").depends_on, ["forge"]);
    assert_eq!(c.logs.dir, PathBuf::from("/workspace/logs"));
}

#[test]
fn unknown_key_names_line_and_suggests() {
    let e = first_error("[services.a]\ncommand = \"true\"\ncomand = \"x\"\n");
    assert_eq!(e.at.unwrap().0, 3);
    assert_eq!(e.key, "services.a.comand");
    assert!(e.hint.unwrap().contains("did you mean `command`"));
}

#[test]
fn cycle_is_reported() {
    let e = first_error("[services.a]\ncommand = \"true\"\ndepends_on = [\"b\"]\n[services.b]\ncommand = \"true\"\ndepends_on = [\"a\"]\n");
    assert!(e.message.contains("dependency cycle"), "{e}");
}

#[test]
fn missing_dependency_and_program() {
    let e = first_error("[services.a]\ncommand = \"true\"\ndepends_on = [\"nope\"]\n");
    assert!(e.message.contains("\"nope\", which is not a service"));
    assert_eq!(e.at.unwrap().0, 3);
    let e = first_error("[services.a]\ncommand = \"no-such-program-xyz\"\n");
    assert!(e.message.contains("not found"));
    assert_eq!(e.key, "services.a.command");
}

#[test]
fn relative_paths_follow_the_file() {
    assert_eq!(absolute(Path::new("/a/examples"), Path::new("../workspace")), PathBuf::from("/a/workspace"));
}

#[test]
fn enabled_leaves_a_service_out_and_drops_waiting_for_it() {
    let text = r#"
[services.sshd]
enabled = "${ENABLE_SSH:-false}"
command = ["sleep", "1"]
[services.app]
command = ["sleep", "1"]
depends_on = ["sshd", "provision"]
[services.off]
enabled = false
command = ["sleep", "1"]
port = 9000
upstream = "http://127.0.0.1:9001"
[services.web]
command = ["sleep", "1"]
port = 9000
upstream = "http://127.0.0.1:9002"
"#;
    let c = parse(text).unwrap();
    let names: Vec<_> = c.services.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["app", "web"]);
    assert_eq!(c.disabled, ["off", "sshd"]);
    assert!(c.services[0].depends_on.is_empty(), "{:?}", c.services[0].depends_on);

    let on = |v: &str| {
        let env = move |n: &str| match n {
            "PATH" => Some("/usr/bin:/bin".to_string()),
            "ENABLE_SSH" => Some(v.to_string()),
            _ => None,
        };
        validate(text, "test.toml", Path::new("/tmp"), &env, &|_| Ok(Vec::new()))
    };
    let c = on("1").unwrap();
    assert!(c.services.iter().any(|s| s.name == "sshd"));
    assert_eq!(c.services.iter().find(|s| s.name == "app").unwrap().depends_on, ["sshd"]);
    let e = on("maybe").unwrap_err().0.remove(0);
    assert_eq!(e.key, "services.sshd.enabled");
    assert!(e.message.contains("\"maybe\" is neither true nor false"), "{}", e.message);
}

#[test]
fn export_env_and_folders() {
    let c = parse("workspace = \"/ws\"\nexport_env = \"/etc/environment\"\nfolders = [\"forge/models/Lora\", \"a\"]\n")
        .unwrap();
    assert_eq!(c.export_env.as_deref(), Some(Path::new("/etc/environment")));
    assert_eq!(c.folders, [PathBuf::from("/ws/forge/models/Lora"), PathBuf::from("/ws/a")]);
    let e = first_error("folders = [\"../etc\"]\n");
    assert_eq!(e.key, "folders");
    assert!(e.message.contains("not a folder inside the workspace"), "{}", e.message);
}

mod props {
    use super::*;
    use proptest::prelude::*;

    /// One `key = value` line with a key gpubox knows (or a near miss) and a value of any type.
    fn entry() -> impl Strategy<Value = String> {
        let keys: Vec<&'static str> = TOP_KEYS
            .iter()
            .chain(SERVICE_KEYS)
            .chain(AUTH_KEYS)
            .chain(LOG_KEYS)
            .chain(HTTP_KEYS)
            .chain(PROVISION_KEYS)
            .copied()
            .chain(["colour", "commandd", "x"])
            .collect();
        let value = prop_oneof![
            "-?[0-9]{1,20}",
            "\"[a-zA-Z0-9 $:{}/._-]{0,12}\"",
            Just("true".to_string()),
            Just("[\"sleep\", \"1\"]".to_string()),
            Just("[]".to_string()),
            Just("\"18446744073709551615GiB\"".to_string()),
            Just("\"$argon2id$v=19$m=4294967295,t=2,p=1$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG\"".to_string()),
            "[0-9.]{1,6}",
            Just("{ a = 1 }".to_string()),
        ];
        (proptest::sample::select(keys), value).prop_map(|(k, v)| format!("{k} = {v}"))
    }

    fn table() -> impl Strategy<Value = String> {
        let header = prop_oneof![
            Just(String::new()),
            Just("[logs]".to_string()),
            Just("[auth]".to_string()),
            Just("[http]".to_string()),
            Just("[provision]".to_string()),
            "\\[services\\.[a-z]{1,3}\\]",
            Just("[servicez.a]".to_string()),
        ];
        (header, proptest::collection::vec(entry(), 0..5)).prop_map(|(h, e)| format!("{h}\n{}\n", e.join("\n")))
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        /// Any configuration is taken or refused with errors that each point inside the
        /// file; none panics, and a refusal always says something.
        #[test]
        fn every_config_is_taken_or_refused_with_places(tables in proptest::collection::vec(table(), 0..6)) {
            let text = tables.concat();
            let lines = text.lines().count() + 1;
            match parse(&text) {
                Ok(_) => {}
                Err(errors) => {
                    prop_assert!(!errors.0.is_empty());
                    for e in &errors.0 {
                        if let Some((line, col)) = e.at {
                            prop_assert!(line >= 1 && line <= lines && col >= 1, "{e} in:\n{text}");
                        }
                        prop_assert!(!e.message.is_empty());
                    }
                }
            }
        }
    }
}

/// Validates `main` with `GPUBOX_SERVICES` set to `env_services` (when given) and `files` as the
/// files of `/work/gpubox.d`.
fn parse_with(main: &str, env_services: Option<&str>, files: &[(&str, &str)]) -> Result<Config, ConfigErrors> {
    let env_services = env_services.map(str::to_string);
    let env = move |n: &str| match n {
        "PATH" => Some("/usr/bin:/bin".to_string()),
        "GPUBOX_SERVICES" => env_services.clone(),
        _ => None,
    };
    let files: Vec<(String, String)> =
        files.iter().map(|(n, t)| (format!("/work/gpubox.d/{n}"), t.to_string())).collect();
    let dropins = move |dir: &Path| {
        assert_eq!(dir, Path::new("/work/gpubox.d"), "drop-ins are read from the workspace");
        Ok(files.clone())
    };
    validate(main, "main.toml", Path::new("/tmp"), &env, &dropins)
}

const MAIN: &str = "workspace = \"/work\"\n[services.forge]\ncommand = \"sleep 1\"\nport = 8010\nupstream = \"http://127.0.0.1:7860\"\n";

#[test]
fn services_added_beside_the_main_file() {
    let c = parse_with(
        MAIN,
        Some("[services.env-one]\ncommand = \"sleep 2\"\n"),
        &[
            ("10-jupyter.toml", "[services.jupyter]\ncommand = \"sleep 3\"\nport = 8080\nupstream = \"http://127.0.0.1:18080\"\ndepends_on = [\"forge\"]\n"),
            ("20-worker.toml", "[services.worker]\ncommand = \"sleep 4\"\ndepends_on = [\"jupyter\"]\n"),
        ],
    )
    .unwrap();
    let names: Vec<&str> = c.services.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["env-one", "forge", "jupyter", "worker"]);
    let jupyter = c.services.iter().find(|s| s.name == "jupyter").unwrap();
    assert_eq!(jupyter.depends_on, ["forge"]);
    assert_eq!(jupyter.listen.as_ref().unwrap().port, 8080);
    assert_eq!(c.extra_sources, ["GPUBOX_SERVICES", "/work/gpubox.d/10-jupyter.toml", "/work/gpubox.d/20-worker.toml"]);
    assert_eq!(
        c.sources(),
        "main.toml + GPUBOX_SERVICES + /work/gpubox.d/10-jupyter.toml + /work/gpubox.d/20-worker.toml"
    );
}

#[test]
fn errors_in_added_files_name_that_file_and_line() {
    let errors = parse_with(
        MAIN,
        None,
        &[
            ("a.toml", "# jupyter\n[services.jupyter]\ncommand = \"sleep 3\"\nrestart = \"sometimes\"\n"),
            ("b.toml", "[services.x]\ncomand = \"sleep 1\"\n"),
        ],
    )
    .unwrap_err()
    .0;
    // b.toml's unknown key is blanked out to find more, and then it has no command.
    assert_eq!(errors.len(), 3, "{errors:?}");
    assert_eq!((errors[0].file.as_str(), errors[0].at.unwrap().0), ("/work/gpubox.d/a.toml", 4), "{errors:?}");
    assert_eq!(errors[0].key, "services.jupyter.restart");
    assert_eq!((errors[2].file.as_str(), errors[2].at.unwrap().0), ("/work/gpubox.d/b.toml", 2), "{errors:?}");
    assert!(errors[2].hint.as_deref().unwrap().contains("did you mean `command`"), "{errors:?}");
}

#[test]
fn added_files_cannot_take_a_name_a_port_or_the_main_settings() {
    let errors = parse_with(
        MAIN,
        Some("[services.forge]\ncommand = \"sleep 9\"\n"),
        &[
            ("a.toml", "[services.web]\ncommand = \"sleep 1\"\nport = 8010\nupstream = \"http://127.0.0.1:1\"\n"),
            ("b.toml", "workspace = \"/elsewhere\"\n"),
            ("c.toml", "[services.files2]\napp = \"files\"\nport = 7011\n"),
            ("d.toml", "[services.waits]\ncommand = \"sleep 1\"\ndepends_on = [\"nothing\"]\n"),
        ],
    )
    .unwrap_err()
    .0;
    let find = |file: &str| {
        errors.iter().find(|e| e.file.ends_with(file)).unwrap_or_else(|| panic!("no error for {file}: {errors:?}"))
    };
    let dup = find("GPUBOX_SERVICES");
    assert!(dup.message.contains("already written in main.toml:2"), "{dup:?}");
    let port = find("a.toml");
    assert!(port.message.contains("port 8010 is already used by service \"forge\""), "{port:?}");
    let top = find("b.toml");
    assert!(top.hint.as_deref().unwrap().contains("set `workspace` in the main configuration"), "{top:?}");
    let app = find("c.toml");
    assert!(app.message.contains("built-in apps"), "{app:?}");
    let dep = find("d.toml");
    assert!(dep.message.contains("depends on \"nothing\""), "{dep:?}");
    assert_eq!(errors.len(), 5, "{errors:?}");
    // In the order of the sources: the main file, the variable, then the files by name.
    let order: Vec<&str> = errors.iter().map(|e| e.file.rsplit('/').next().unwrap()).collect();
    assert_eq!(order, ["GPUBOX_SERVICES", "a.toml", "b.toml", "c.toml", "d.toml"]);
}

#[test]
fn a_port_clash_is_reported_where_the_later_one_is_written() {
    let main = "workspace = \"/work\"\n[services.zeta]\ncommand = \"sleep 1\"\nport = 8000\nupstream = \"http://127.0.0.1:1\"\n";
    let errors = parse_with(
        main,
        None,
        &[("a.toml", "[services.alpha]\ncommand = \"sleep 1\"\nport = 8000\nupstream = \"http://127.0.0.1:2\"\n")],
    )
    .unwrap_err()
    .0;
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].file, "/work/gpubox.d/a.toml");
    assert!(errors[0].message.contains("already used by service \"zeta\" (main.toml:4)"), "{errors:?}");
}

#[test]
fn relative_paths_in_an_added_file_start_from_its_folder() {
    let c = parse_with(
        "workspace = \"/work\"\n",
        None,
        &[("a.toml", "[services.x]\ncommand = \"/bin/sleep 1\"\ncwd = \"sub\"\n")],
    )
    .unwrap_err();
    // The folder does not exist here: the error says which path was meant.
    assert!(c.0[0].message.contains("`/work/gpubox.d/sub` is not a directory"), "{c:?}");
}

#[test]
fn tunnels_add_a_cloudflared_service_per_port_that_asks_and_say_what_is_wrong() {
    // `sh` stands in for cloudflared: any program on PATH.
    let c = parse(
        r#"
[tunnels]
quick = "${CF_QUICK_TUNNELS:-true}"
token = "eyJhIjoiMSJ9"
program = "sh"
[services.files]
app = "files"
port = 7010
tunnel = true
[services.forge]
command = "true"
port = 8010
bind = "127.0.0.1"
upstream = "http://127.0.0.1:7860"
tunnel = true
[services.other]
command = "true"
port = 8020
upstream = "http://127.0.0.1:7861"
"#,
    )
    .unwrap();
    let service = |name: &str| c.services.iter().find(|s| s.name == name).cloned();
    let sh = crate::config::find_program("sh", Path::new("/"), "/usr/bin:/bin").unwrap().to_string_lossy().into_owned();
    let gpubox = std::env::current_exe().unwrap().to_string_lossy().into_owned();
    let files = service("tunnel-files").expect("a quick tunnel for files");
    // Through `gpubox tunnel-run`, which hands cloudflared the address of the port's origin.
    let origin = "/workspace/.gpubox/tunnels/7010.origin";
    assert_eq!(files.command, [&gpubox, "tunnel-run", origin, "--", &sh, "tunnel", "--no-autoupdate"]);
    assert_eq!(files.restart, RestartPolicy::Always);
    assert_eq!(service("tunnel-forge").unwrap().command[2], "/workspace/.gpubox/tunnels/8010.origin");
    assert!(service("tunnel-other").is_none(), "a port that does not ask gets none");
    let named = service("tunnel").expect("the named tunnel");
    assert_eq!(named.command, [&sh, "tunnel", "--no-autoupdate", "run"]);
    assert_eq!(named.env.get("TUNNEL_TOKEN").map(String::as_str), Some("eyJhIjoiMSJ9"), "in its environment");
    assert!(!crate::config::to_masked_toml(&c).contains("eyJhIjoiMSJ9"), "never shown");
    let serves: Vec<_> = c.tunnels.tunnels.iter().map(|t| (t.service.as_str(), t.serves.clone())).collect();
    assert!(serves.contains(&("tunnel-forge", Some(("forge".into(), 8010)))), "{serves:?}");
    assert!(serves.contains(&("tunnel", None)), "{serves:?}");

    // Not installed: no tunnel service, and why, for the log; the rest is as ever.
    let c = parse("[tunnels]\nquick = true\nprogram = \"no-cloudflared-here\"\n[services.files]\napp = \"files\"\nport = 7010\ntunnel = true\n").unwrap();
    assert!(c.services.is_empty());
    assert!(c.tunnels.problem.unwrap().contains("`no-cloudflared-here` is not installed"));

    // A tunnel without a port; quick tunnels that no port asks for; a name a tunnel needs.
    let e = first_error("[tunnels]\nquick = true\nprogram = \"sh\"\n[services.a]\ncommand = \"true\"\ntunnel = true\n");
    assert_eq!((e.key.as_str(), e.at.unwrap().0), ("services.a.tunnel", 6));
    assert!(e.message.contains("has none"), "{}", e.message);
    let e = first_error("[tunnels]\nquick = true\nprogram = \"sh\"\n");
    assert_eq!((e.key.as_str(), e.at.unwrap().0), ("tunnels.quick", 2));
    let e = first_error(
        "[tunnels]\nquick = true\nprogram = \"sh\"\n[services.files]\napp = \"files\"\nport = 7010\ntunnel = true\n[services.tunnel-files]\ncommand = \"true\"\n",
    );
    assert_eq!((e.key.as_str(), e.at.unwrap().0), ("services.tunnel-files", 8));
    assert!(e.message.contains("taken by the quick tunnel of `files`"), "{}", e.message);
    // Off: a service's `tunnel = true` is only a wish.
    let c = parse("[services.files]\napp = \"files\"\nport = 7010\ntunnel = true\n").unwrap();
    assert!(c.services.is_empty() && c.tunnels.tunnels.is_empty() && c.tunnels.problem.is_none());
}
