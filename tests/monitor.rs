//! Issue 19 through the real binary: the GPU and machine history (from a stand-in NVML library
//! built here, and from a stand-in `nvidia-smi`), saved and read back; alerts to a local
//! receiver in each target's format, deduplicated, retried; a real OOM kill in a memory cgroup.
//! The idle stop is in idle_stop.rs, which uses the stand-ins and helpers here.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::Value;

use crate::http::{request, Response};
use crate::supervisor::free_port;
use crate::util::{config_dir, fixture, wait_for, Gpubox};

pub const T: Duration = Duration::from_secs(30);
const BACKGROUND: (&str, &str) = ("X-Gpubox-Background", "1");

/// tests/fixtures/receiver.py: records every request it gets.
pub struct Receiver {
    child: Child,
    port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Receiver {
    pub fn start() -> Receiver {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("requests.jsonl");
        let port = free_port();
        let child = Command::new("python3")
            .arg(fixture("receiver.py"))
            .arg(port.to_string())
            .arg(&log)
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        wait_for(|| std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(), T, "the receiver to listen");
        Receiver { child, port, log, _dir: dir }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn requests(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// The requests to paths starting with `prefix`.
    pub fn to(&self, prefix: &str) -> Vec<Value> {
        self.requests().into_iter().filter(|r| r["path"].as_str().unwrap().starts_with(prefix)).collect()
    }

    /// Waits until `ok` holds for the requests to `prefix`; returns them.
    pub fn wait(&self, prefix: &str, what: &str, ok: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        wait_for(|| ok(&self.to(prefix)), T, what);
        self.to(prefix)
    }
}

/// The JSON body of a recorded request.
pub fn body(r: &Value) -> Value {
    serde_json::from_str(r["body"].as_str().unwrap()).unwrap_or(Value::Null)
}

pub fn events(reqs: &[Value]) -> Vec<String> {
    reqs.iter().map(|r| body(r)["event"].as_str().unwrap_or("").to_string()).collect()
}

pub struct Mon {
    g: Gpubox,
    port: u16,
    auth: String,
}

/// gpubox with the logs app, samples every second, and `extra` configuration; `env`: variables
/// for gpubox (`K=V`).
pub fn start(env: &[&str], extra: &str) -> Mon {
    start_in(config_dir(&body_for(free_port(), extra)), env)
}

fn body_for(port: u16, extra: &str) -> String {
    format!(
        "[auth]\nusername = \"u\"\npassword = \"p\"\n\n[metrics]\ninterval = \"1s\"\n\n[services.logs]\napp = \"logs\"\nport = {port}\n{extra}\n"
    )
}

fn start_in(dir: tempfile::TempDir, env: &[&str]) -> Mon {
    let text = std::fs::read_to_string(dir.path().join("gpubox.toml")).unwrap();
    let port: u16 = text.split("port = ").nth(1).unwrap().lines().next().unwrap().trim().parse().unwrap();
    let mut prefix =
        vec!["env", "-u", "CONTAINER_ID", "-u", "CONTAINER_API_KEY", "-u", "RUNPOD_POD_ID", "-u", "RUNPOD_API_KEY"];
    prefix.extend_from_slice(env);
    let g = Gpubox::start_in(dir, &prefix);
    g.wait_event(&format!("logs: listening on 0.0.0.0:{port}"), T);
    let auth = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("u:p"));
    Mon { g, port, auth }
}

impl Mon {
    pub fn get(&self, path: &str, background: bool) -> Response {
        let mut h = vec![("Authorization", self.auth.as_str())];
        if background {
            h.push(BACKGROUND);
        }
        request(self.port, "GET", path, &h, b"")
    }

    pub fn json(&self, path: &str) -> Value {
        let r = self.get(path, true);
        assert_eq!(r.status, 200, "GET {path}: {}", r.text());
        serde_json::from_slice(&r.body).unwrap()
    }

    pub fn post(&self, path: &str) -> Response {
        request(self.port, "POST", path, &[("Authorization", &self.auth), ("Content-Length", "0")], b"")
    }

    /// The newest sample, once one with GPUs has been taken.
    fn latest_with_gpus(&self) -> Value {
        let last = std::cell::RefCell::new(Value::Null);
        wait_for(
            || {
                *last.borrow_mut() = self.json("/api/metrics?range=15m");
                last.borrow()["latest"]["gpus"].as_array().is_some_and(|g| !g.is_empty())
            },
            T,
            "a sample with GPUs",
        );
        last.into_inner()
    }

    fn alerts(&self) -> Value {
        self.json("/api/alerts")
    }
}

/// Builds the NVML stand-in (tests/fixtures/nvml_stub.c) as `libnvidia-ml.so.1` in `dir`.
fn build_nvml(dir: &Path) {
    let out = Command::new("cc")
        .args(["-shared", "-fPIC", "-o"])
        .arg(dir.join("libnvidia-ml.so.1"))
        .arg(fixture("nvml_stub.c"))
        .output()
        .expect("cc (the C compiler Rust links with) runs");
    assert!(out.status.success(), "building the NVML stand-in: {}", String::from_utf8_lossy(&out.stderr));
}

fn approx(v: &Value, want: f64) -> bool {
    v.as_f64().is_some_and(|x| (x - want).abs() < 0.01 * want.abs().max(1.0))
}

#[test]
fn nvml_is_loaded_at_run_time_and_the_history_survives_a_restart() {
    let lib = tempfile::tempdir().unwrap();
    build_nvml(lib.path());
    let readings = lib.path().join("gpu0");
    std::fs::write(&readings, "37 1234 81559 45 70120").unwrap();
    let ld = format!("LD_LIBRARY_PATH={}", lib.path().display());
    let stub = format!("NVML_STUB_FILE={}", readings.display());
    let m = start(&[&ld, &stub, "PATH=/usr/bin:/bin"], "");

    let first = m.latest_with_gpus();
    assert!(first["gpu_source"].as_str().unwrap().starts_with("NVML"), "{}", first["gpu_source"]);
    let g = &first["latest"]["gpus"];
    assert_eq!(g[0]["name"], "NVIDIA Stub 0");
    assert!(approx(&g[0]["utilization"], 37.0), "{g}");
    assert_eq!(g[0]["memory_used"], 1234u64 << 20);
    assert_eq!(g[0]["memory_total"], 81559u64 << 20);
    assert!(approx(&g[0]["temperature"], 45.0));
    assert!(approx(&g[0]["power"], 70.12), "milliwatts become watts: {}", g[0]["power"]);
    assert_eq!(g[1]["power"], Value::Null, "a card without power readings says none");

    // The readings move; the history has both.
    std::fs::write(&readings, "80 2048 81559 61 250000").unwrap();
    wait_for(
        || approx(&m.json("/api/metrics?range=15m")["latest"]["gpus"][0]["utilization"], 80.0),
        T,
        "the new reading",
    );
    // Ten minutes at 1 s is under 720 points: every sample, unthinned.
    let h = m.json("/api/metrics?range=10m");
    assert_eq!(h["step"], 1);
    let util: Vec<f64> = h["series"]["gpu0_util"].as_array().unwrap().iter().filter_map(Value::as_f64).collect();
    assert!(util.iter().any(|u| (*u - 37.0).abs() < 0.5) && util.iter().any(|u| (*u - 80.0).abs() < 0.5), "{util:?}");
    let t: Vec<u64> = h["t"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
    assert!(t.windows(2).all(|w| w[0] < w[1]), "times ascend");
    for s in ["cpu", "mem", "disk", "net_rx", "net_tx", "gpu0_mem", "gpu0_temp", "gpu0_power", "gpu1_util"] {
        assert_eq!(h["series"][s].as_array().map(Vec::len), Some(t.len()), "series {s}");
    }
    assert!(h["series"]["cpu"].as_array().unwrap().iter().any(|v| v.as_f64().is_some_and(|c| c >= 0.0)));
    assert_eq!(h["range"], 600);
    assert_eq!(m.json("/api/metrics?range=1h")["step"], 5, "an hour at 1 s is thinned to 720 points of 5 s");
    assert_eq!(m.json("/api/metrics?range=24h")["range"], 86400);
    // Wrong ranges and no login are refused.
    let bad = m.get("/api/metrics?range=soon", true);
    assert_eq!(bad.status, 400, "{}", bad.text());
    assert!(bad.text().contains("15m"), "{}", bad.text());
    assert_eq!(request(m.port, "GET", "/api/metrics", &[], b"").status, 401);
    // The home page draws the last minutes under the gauges.
    // (A line needs two readings: the first sample has no CPU rate yet.)
    wait_for(|| m.get("/.gpubox/", true).text().contains("data-series=\"cpu\""), T, "a CPU sparkline");
    let home = m.get("/.gpubox/", true).text();
    assert!(home.contains("data-series=\"gpu0_util\""), "a GPU sparkline: {home}");
    assert!(home.contains("80% · NVIDIA Stub 0"), "the gauge: {home}");

    // Saved when gpubox stops; read back when it starts.
    let mut g = m.g;
    let oldest = t[0];
    g.terminate();
    let saved = std::fs::read_to_string(g.path("ws/.gpubox/metrics.json")).expect("the history is saved");
    assert!(saved.contains("gpu0_util"));
    let dir = std::mem::replace(&mut g.dir, tempfile::tempdir().unwrap());
    let m2 = start_in(dir, &[&ld, &stub]);
    let back = m2.json("/api/metrics?range=1h");
    let t2: Vec<u64> = back["t"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
    assert!(t2.first().is_some_and(|f| *f <= oldest), "the earlier samples came back: {t2:?} vs {oldest}");
}

/// A stand-in `nvidia-smi`: prints what `smi.out` in `dir` holds (or first sleeps 30 s, `hang`),
/// and counts its runs in `runs`. Returns its folder, for the PATH.
pub fn fake_smi(dir: &Path, line: &str, hang: bool) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let script = format!(
        "#!/bin/sh\necho run >> {}\n{}cat {}\n",
        dir.join("runs").display(),
        if hang { "sleep 30\n" } else { "" },
        dir.join("smi.out").display()
    );
    std::fs::write(dir.join("smi.out"), line).unwrap();
    std::fs::write(bin.join("nvidia-smi"), script).unwrap();
    let mut p = std::fs::metadata(bin.join("nvidia-smi")).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut p, 0o755);
    std::fs::set_permissions(bin.join("nvidia-smi"), p).unwrap();
    bin
}

pub fn path_with(bin: &Path) -> String {
    format!("PATH={}:/usr/bin:/bin", bin.display())
}

#[test]
fn nvidia_smi_stands_in_without_nvml_and_one_that_hangs_is_asked_less() {
    let d = tempfile::tempdir().unwrap();
    let bin = fake_smi(d.path(), "0, NVIDIA H100 80GB HBM3, 12, 4000, 81559, 51, [N/A]\n", false);
    let path = path_with(&bin);
    let m = start(&["LD_LIBRARY_PATH=/nonexistent", &path], "");
    let h = m.latest_with_gpus();
    assert!(h["gpu_source"].as_str().unwrap().starts_with("nvidia-smi"), "{}", h["gpu_source"]);
    let g = &h["latest"]["gpus"][0];
    assert!(approx(&g["utilization"], 12.0));
    assert_eq!(g["memory_used"], 4000u64 << 20);
    assert_eq!(g["power"], Value::Null, "[N/A] is none");
    drop(m);

    // One that never answers: each try is cut at 4 s, and after three it is asked once a minute;
    // the machine's samples go on meanwhile.
    let d = tempfile::tempdir().unwrap();
    let bin = fake_smi(d.path(), "", true);
    let path = path_with(&bin);
    let m = start(&[&path], "");
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs(16));
    let runs = std::fs::read_to_string(d.path().join("runs")).unwrap_or_default().lines().count();
    assert!((2..=4).contains(&runs), "{runs} runs of a hanging nvidia-smi in {:?}", started.elapsed());
    let h = m.json("/api/metrics?range=15m");
    let cpu = h["series"]["cpu"].as_array().unwrap().iter().filter(|v| v.is_number()).count();
    assert!(cpu >= 3, "samples went on while nvidia-smi hung: {cpu}");
    assert_eq!(h["latest"]["gpus"].as_array().map(Vec::len), Some(0));
}

#[test]
fn alerts_reach_each_target_in_its_own_format_once_per_storm() {
    let r = Receiver::start();
    let m = start(
        &["NTFY_TOKEN=tk_secret"],
        &format!(
            r#"
[alerts]
webhook = "{}"
ntfy = "{}"
discord = "{}"
slack = "{}"

[services.crash]
command = ["sh", "-c", "echo 'loading model'; echo 'boom: last words' >&2; sleep 0.2; exit 3"]
restart_delay = "1s"
restart_delay_max = "1s"
"#,
            r.url("/ok/hook"),
            r.url("/ok/topic"),
            r.url("/discord/123/abc"),
            r.url("/ok/slack")
        ),
    );
    let hook = r.wait("/ok/hook", "the webhook's exit alert", |v| events(v).contains(&"exit".to_string()));
    let exit = body(&hook[0]);
    assert_eq!(exit["event"], "exit");
    assert_eq!(exit["service"], "crash");
    assert_eq!(exit["level"], "error");
    assert!(exit["title"].as_str().unwrap().contains("crash exited with code 3"), "{exit}");
    assert!(exit["lines"].as_array().unwrap().iter().any(|l| l == "boom: last words"), "{exit}");
    assert!(exit["instance"].is_string() && exit["time"].as_str().unwrap().ends_with('Z'));
    assert_eq!(hook[0]["headers"]["content-type"], "application/json");

    let ntfy = r.wait("/ok/topic", "ntfy's alert", |v| !v.is_empty());
    let h = &ntfy[0]["headers"];
    assert!(h["title"].as_str().unwrap().contains("crash exited with code 3"), "{h}");
    assert_eq!(h["priority"], "high");
    assert_eq!(h["authorization"], "Bearer tk_secret");
    assert!(ntfy[0]["body"].as_str().unwrap().contains("boom: last words"));

    let discord = r.wait("/discord/123/abc", "Discord's alert", |v| !v.is_empty());
    let e = &body(&discord[0])["embeds"][0];
    assert!(e["title"].as_str().unwrap().contains("crash exited"), "{e}");
    assert!(e["description"].as_str().unwrap().contains("```\n"), "the lines in a code block");
    assert_eq!(e["color"], 0xD93025);

    let slack = r.wait("/ok/slack", "Slack's alert", |v| !v.is_empty());
    let s = body(&slack[0]);
    assert_eq!(s["blocks"][0]["type"], "header");
    assert!(s["text"].as_str().unwrap().contains("crash exited"));

    // It keeps crashing: one crash-loop alert, and the exits after the first are held back.
    let hook = r.wait("/ok/hook", "the crash-loop alert", |v| events(v).contains(&"crash_loop".to_string()));
    std::thread::sleep(Duration::from_secs(4));
    let ev = events(&r.to("/ok/hook"));
    assert_eq!(ev.iter().filter(|e| *e == "exit").count(), 1, "{ev:?}");
    assert_eq!(ev.iter().filter(|e| *e == "crash_loop").count(), 1, "{ev:?}");
    assert!(hook.len() <= 3, "no storm: {ev:?}");
    let listed = m.alerts();
    let exit = listed["alerts"].as_array().unwrap().iter().find(|a| a["kind"] == "exit").unwrap();
    assert!(exit["later"].as_u64().unwrap() >= 1, "the repeats are counted on the one sent: {listed}");
    let exits = listed["alerts"].as_array().unwrap().iter().filter(|a| a["kind"] == "exit").count();
    assert_eq!(exits, 1, "repeats are not kept as records of their own: {listed}");
    let sent = &exit["deliveries"];
    assert_eq!(sent.as_array().unwrap().len(), 4);
    assert!(sent.as_array().unwrap().iter().all(|d| d["state"] == "sent"), "{sent}");
    // The configuration shows where alerts go without their secrets.
    let targets = listed["targets"].to_string();
    assert!(!targets.contains("abc") && !targets.contains("tk_secret"), "{targets}");
}

#[test]
fn a_failing_target_is_retried_and_a_deleted_one_is_not() {
    let r = Receiver::start();
    let m = start(
        &[],
        &format!("[alerts]\nwebhook = \"{}\"\nslack = \"{}\"\n", r.url("/flaky/2/hook"), r.url("/gone/slack")),
    );
    // Not from another site's page.
    let foreign = request(
        m.port,
        "POST",
        "/.gpubox/api/alerts/test",
        &[("Authorization", &m.auth), ("Origin", "http://evil.example"), ("Content-Length", "0")],
        b"",
    );
    assert_eq!(foreign.status, 403);
    assert_eq!(m.post("/.gpubox/api/alerts/test").status, 200);
    let hook = r.wait("/flaky/2/hook", "three tries", |v| v.len() >= 3);
    assert!(hook.iter().all(|h| body(h)["event"] == "test"));
    wait_for(
        || {
            let a = m.alerts();
            let d = &a["alerts"][0]["deliveries"];
            d[0]["state"] == "sent" && d[0]["attempts"] == 3 && d[1]["state"] == "failed"
        },
        T,
        "the deliveries' outcome",
    );
    let a = m.alerts();
    let slack = &a["alerts"][0]["deliveries"][1];
    assert_eq!(slack["attempts"], 1, "a 404 is not retried: {slack}");
    assert!(slack["error"].as_str().unwrap().contains("404"), "{slack}");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(r.to("/gone/slack").len(), 1);
    assert_eq!(r.to("/flaky/2/hook").len(), 3);
}

#[test]
fn a_log_line_that_matches_a_pattern_is_sent_with_it() {
    let r = Receiver::start();
    let _m = start(
        &[],
        &format!(
            r#"
[alerts]
webhook = "{}"

[services.forge]
command = ["sh", "-c", "echo 'Model loaded'; sleep 1; echo 'torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB'; exec sleep 60"]
alert_on = ["CUDA out of memory", "^Traceback"]
"#,
            r.url("/ok/hook")
        ),
    );
    let hook = r.wait("/ok/hook", "the log-pattern alert", |v| events(v).contains(&"log_match".to_string()));
    let a = body(hook.iter().find(|h| body(h)["event"] == "log_match").unwrap());
    assert_eq!(a["service"], "forge");
    assert!(a["title"].as_str().unwrap().contains("CUDA out of memory. Tried to allocate"), "{a}");
    assert!(a["message"].as_str().unwrap().contains("CUDA out of memory"), "{a}");
    assert!(a["lines"].as_array().unwrap().iter().any(|l| l == "Model loaded"), "{a}");
}

#[test]
fn a_bad_pattern_or_target_is_refused_with_where_and_what() {
    let (code, out, _, _d) = crate::util::check(
        "[alerts]\nntfy = \"https://ntfy.sh/\"\ndiscord = \"discord.com/api/webhooks/1\"\n\n[services.a]\ncommand = \"true\"\nalert_on = [\"CUDA (out\"]\n",
    );
    assert_ne!(code, 0);
    assert!(out.contains("alerts.ntfy") && out.contains("names no topic"), "{out}");
    assert!(out.contains("alerts.discord") && out.contains("not an http"), "{out}");
    assert!(out.contains("services.a.alert_on") && out.contains("not a regular expression"), "{out}");
    let (code, out, _, _d) = crate::util::check("[idle_stop]\nafter = \"soon\"\n");
    assert_ne!(code, 0);
    assert!(out.contains("idle_stop.after") && out.contains("30m"), "{out}");
}

/// A memory cgroup of its own (v1 `memory` or v2), removed when dropped.
struct Cgroup(PathBuf);

impl Cgroup {
    fn new(limit: u64) -> Cgroup {
        let root = Path::new("/sys/fs/cgroup");
        let (dir, limit_file) = if root.join("cgroup.controllers").exists() {
            (root.join(format!("gpubox-oom-{}", std::process::id())), "memory.max")
        } else {
            (root.join(format!("memory/gpubox-oom-{}", std::process::id())), "memory.limit_in_bytes")
        };
        std::fs::create_dir(&dir)
            .unwrap_or_else(|e| panic!("making the memory cgroup {}: {e} (the test needs root)", dir.display()));
        std::fs::write(dir.join(limit_file), limit.to_string()).unwrap();
        Cgroup(dir)
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::fs::remove_dir(&self.0).is_err() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

#[test]
fn a_real_oom_kill_in_gpuboxs_cgroup_is_told() {
    let cg = Cgroup::new(300 << 20);
    let r = Receiver::start();
    let enter = format!("echo $$ > {}/cgroup.procs && exec env \"$@\"", cg.0.display());
    let port = free_port();
    let mut g = Gpubox::start_in(
        config_dir(&body_for(
            port,
            &format!(
                r#"
[alerts]
webhook = "{}"

[services.hog]
command = ["python3", "-c", "import time; time.sleep(2); b = [bytearray(1 << 20) for _ in range(1000)]"]
restart = "never"
"#,
                r.url("/ok/hook")
            ),
        )),
        &["sh", "-c", &enter, "sh"],
    );
    let hook = r.wait("/ok/hook", "the OOM alert", |v| events(v).contains(&"oom".to_string()));
    let oom = body(hook.iter().find(|h| body(h)["event"] == "oom").unwrap());
    assert!(oom["title"].as_str().unwrap().contains("out of memory"), "{oom}");
    assert!(oom["message"].as_str().unwrap().contains("oom_kill 0 → 1"), "{oom}");
    let exit = r.wait("/ok/hook", "the hog's exit", |v| events(v).contains(&"exit".to_string()));
    let exit = body(exit.iter().find(|h| body(h)["event"] == "exit").unwrap());
    assert!(exit["title"].as_str().unwrap().contains("hog was killed by SIGKILL"), "{exit}");
    g.terminate();
    drop(g);
}

#[test]
fn a_wrong_variable_is_left_out_and_said_instead_of_stopping_the_start() {
    let m =
        start(&["NTFY_TOPIC_URL=https://user:pw@ntfy.sh/", "IDLE_STOP_AFTER=30s", "ALERT_WEBHOOK=hooks.example/x"], "");
    let said = m.g.wait_event("IDLE_STOP_AFTER (environment)", T).join("\n");
    assert!(said.contains("the idle stop is off"), "{said}");
    let said = m.g.wait_event("NTFY_TOPIC_URL (environment)", T).join("\n");
    assert!(said.contains("names no topic") && said.contains("left out"), "{said}");
    assert!(!said.contains("pw"), "the address's secrets are not shown: {said}");
    m.g.wait_event("ALERT_WEBHOOK (environment)", T);
    assert_eq!(m.json("/.gpubox/api/idle")["enabled"], false);
    assert_eq!(m.alerts()["targets"].as_array().map(Vec::len), Some(0));
}
