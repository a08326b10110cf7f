//! Provisioning through the real binary against a real HTTP server on a real socket
//! (tests/fixtures/dlserver.py) that cuts connections, answers 429 and 503, redirects to another
//! host name and serves wrong bytes on request: resume, retries, token scoping, checksums, a full
//! disk, idempotent reruns, and the `provision` service that others wait for.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::supervisor::free_port;
use crate::util::{fixture, Gpubox, BIN};

struct Server {
    child: Child,
    port: u16,
    root: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn server() -> Server {
    let root = tempfile::tempdir().unwrap();
    let port = free_port();
    let child = Command::new("python3")
        .arg(fixture("dlserver.py"))
        .arg(port.to_string())
        .arg(root.path())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the file server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    Server { child, port, root }
}

impl Server {
    /// A file of `len` pseudo-random bytes at `name`; returns its sha256.
    fn file(&self, name: &str, len: usize) -> String {
        let mut data = Vec::with_capacity(len);
        let mut x: u32 = 2463534242;
        for _ in 0..len {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            data.push(x as u8);
        }
        let path = self.root.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &data).unwrap();
        gpubox::api::sha256_file(&path).unwrap()
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/{path}", self.port)
    }

    /// Every request the server has seen: (path, host, authorization, range).
    fn log(&self) -> Vec<serde_json::Value> {
        let r = crate::http::request(self.port, "GET", "/log", &[], b"");
        r.text().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    }
}

struct Run {
    out: Output,
    dir: tempfile::TempDir,
}

impl Run {
    fn text(&self) -> String {
        format!("{}{}", String::from_utf8_lossy(&self.out.stdout), String::from_utf8_lossy(&self.out.stderr))
    }

    fn models(&self) -> PathBuf {
        self.dir.path().join("models")
    }

    fn result(&self) -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(self.dir.path().join("state/provision.json")).unwrap()).unwrap()
    }
}

/// `gpubox provision` with `manifest` in a fresh folder (or `dir`), with these variables.
fn provision(manifest: &str, env: &[(&str, &str)], dir: Option<tempfile::TempDir>) -> Run {
    let dir = dir.unwrap_or_else(|| tempfile::tempdir().unwrap());
    let m = dir.path().join("manifest.toml");
    std::fs::write(&m, manifest).unwrap();
    let mut cmd = Command::new(BIN);
    cmd.arg("provision").arg(&m);
    for (flag, sub) in [("--models-dir", "models"), ("--extensions-dir", "extensions"), ("--state-dir", "state")] {
        cmd.arg(flag).arg(dir.path().join(sub));
    }
    cmd.env_remove("HF_TOKEN").env_remove("CIVITAI_TOKEN").env_remove("HF_ENDPOINT");
    cmd.envs(env.iter().copied());
    let out = cmd.output().unwrap();
    Run { out, dir }
}

fn sha(path: &Path) -> String {
    gpubox::api::sha256_file(path).unwrap()
}

#[test]
fn a_cut_connection_resumes_and_errors_are_retried() {
    let s = server();
    let sum = s.file("big.bin", 3_000_000);
    s.file("other.bin", 200_000);
    let manifest = format!(
        r#"
[models.checkpoints.big]
source = "url"
url = "{cut}"
filename = "big.safetensors"
sha256 = "{sum}"
[models.lora.busy]
source = "url"
url = "{busy}"
filename = "busy.safetensors"
[models.vae.broken]
source = "url"
url = "{broken}"
filename = "broken.safetensors"
"#,
        cut = s.url("big.bin?cut=700000"),
        busy = s.url("other.bin?status=429&times=2&retry_after=1"),
        broken = s.url("other.bin?status=503&times=1"),
    );
    let started = Instant::now();
    let run = provision(&manifest, &[], None);
    assert_eq!(run.out.status.code(), Some(0), "{}", run.text());
    let big = run.models().join("Stable-diffusion/big.safetensors");
    assert_eq!(sha(&big), sum, "resumed to the right bytes");
    assert!(run.models().join("Lora/busy.safetensors").is_file());
    assert!(run.models().join("VAE/broken.safetensors").is_file());
    // The resume asked for the rest only.
    let log = s.log();
    assert!(
        log.iter().any(|e| e["path"].as_str().unwrap().starts_with("/big.bin") && e["range"] == "bytes=700000-"),
        "{log:#?}"
    );
    // Retry-After: 1 twice was honoured.
    assert!(started.elapsed() >= Duration::from_secs(2), "{:?}", started.elapsed());
    assert!(!run.models().join("Stable-diffusion/big.safetensors.part").exists());
    assert_eq!(run.result()["ok"], true);

    // A second run finds everything in place, asks nothing and ends at once.
    let requests = s.log().len();
    let started = Instant::now();
    let again = provision(&manifest, &[], Some(run.dir));
    assert_eq!(again.out.status.code(), Some(0), "{}", again.text());
    assert!(started.elapsed() < Duration::from_millis(800), "rerun took {:?}", started.elapsed());
    assert!(again.text().contains("already there"), "{}", again.text());
    assert_eq!(s.log().len(), requests + 1, "only the log request itself: nothing was downloaded again");
}

#[test]
fn tokens_reach_only_their_host_and_never_follow_a_redirect() {
    let s = server();
    s.file("org/model/resolve/main/weights.bin", 50_000);
    s.file("direct.bin", 1000);
    let manifest = format!(
        r#"
[models.checkpoints.hf]
source = "huggingface"
repo = "hop/{port}/org/model"
file = "weights.bin"
[models.embeddings.elsewhere]
source = "url"
url = "http://localhost:{port}/direct.bin"
"#,
        port = s.port
    );
    // HF_ENDPOINT makes this server "Hugging Face" under the name 127.0.0.1; under the name
    // localhost it is another host.
    let endpoint = format!("http://127.0.0.1:{}", s.port);
    let run = provision(
        &manifest,
        &[("HF_ENDPOINT", &endpoint), ("HF_TOKEN", "hf-secret"), ("CIVITAI_TOKEN", "cv-secret")],
        None,
    );
    assert_eq!(run.out.status.code(), Some(0), "{}", run.text());
    assert!(run.models().join("Stable-diffusion/weights.bin").is_file());
    assert!(run.models().join("embeddings/direct.bin").is_file());
    let log = s.log();
    let hops: Vec<&serde_json::Value> =
        log.iter().filter(|e| e["path"].as_str().unwrap().starts_with("/hop/")).collect();
    assert!(!hops.is_empty() && hops.iter().all(|e| e["authorization"] == "Bearer hf-secret"), "{log:#?}");
    let other_host: Vec<&serde_json::Value> =
        log.iter().filter(|e| e["host"].as_str().unwrap().starts_with("localhost")).collect();
    assert!(!other_host.is_empty(), "{log:#?}");
    for e in &other_host {
        assert!(e["authorization"].is_null(), "a token crossed to another host: {e}");
    }
    assert!(!log.iter().any(|e| e["authorization"].as_str().is_some_and(|a| a.contains("cv-secret"))), "{log:#?}");
}

#[test]
fn a_checksum_mismatch_is_caught_and_nothing_is_left_under_the_name() {
    let s = server();
    let sum = s.file("m.bin", 100_000);
    let manifest = format!(
        "[models.checkpoints.m]\nsource = \"url\"\nurl = \"{}\"\nfilename = \"m.safetensors\"\nsha256 = \"{sum}\"\n",
        s.url("m.bin?corrupt=1")
    );
    let run = provision(&manifest, &[], None);
    assert_eq!(run.out.status.code(), Some(1), "{}", run.text());
    assert!(run.text().contains("sha256 mismatch"), "{}", run.text());
    let dir = run.models().join("Stable-diffusion");
    let left: Vec<_> =
        std::fs::read_dir(&dir).map(|d| d.flatten().map(|e| e.file_name()).collect()).unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
    let result = run.result();
    assert_eq!(result["ok"], false);
    assert!(result["problems"][0].as_str().unwrap().contains("sha256 mismatch"), "{result}");
    let txt = std::fs::read_to_string(run.dir.path().join("state/provision.txt")).unwrap();
    assert!(txt.contains("FAILED"), "{txt}");
}

#[test]
fn a_disk_too_small_is_told_before_a_byte_and_a_full_disk_loses_nothing() {
    let s = server();
    s.file("big.bin", 3_000_000);
    let dir = tempfile::tempdir().unwrap();
    let models = dir.path().join("models");
    std::fs::create_dir_all(&models).unwrap();
    let mounted = Command::new("mount").args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"]).arg(&models).status().unwrap();
    assert!(mounted.success(), "this test needs root to mount a small tmpfs");
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(models.clone());
    // Known size: refused before any byte is written, with the sizes in the message.
    let manifest = format!("[models.checkpoints.big]\nsource = \"url\"\nurl = \"{}\"\n", s.url("big.bin"));
    let run = provision(&manifest, &[], Some(dir));
    assert_eq!(run.out.status.code(), Some(1), "{}", run.text());
    assert!(run.text().contains("not enough space") && run.text().contains("3.0 MB"), "{}", run.text());
    let written: u64 = walk(&models).iter().map(|p| p.metadata().unwrap().len()).sum();
    assert_eq!(written, 0, "nothing was written");
    // Unknown size (chunked): the disk fills mid-way; the error says so and the part is removed.
    let manifest = format!(
        "[models.checkpoints.big]\nsource = \"url\"\nurl = \"{}\"\nfilename = \"big.bin\"\n",
        s.url("big.bin?chunked=1")
    );
    let run = provision(&manifest, &[], Some(run.dir));
    assert_eq!(run.out.status.code(), Some(1), "{}", run.text());
    assert!(run.text().contains("the disk is full"), "{}", run.text());
    assert!(walk(&models).is_empty(), "left behind: {:?}", walk(&models));
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn a_bad_manifest_names_what_is_wrong() {
    let run = provision("[models.checkpoint.x]\nsource = \"url\"\nurl = \"https://example.com/x\"\n", &[], None);
    assert_eq!(run.out.status.code(), Some(1));
    assert!(run.text().contains("unknown category") && run.text().contains("checkpoints, "), "{}", run.text());
    let run = provision("[models.lora.x]\nsource = \"civitai\"\n", &[], None);
    assert!(run.text().contains("[models.lora.x]") && run.text().contains("version_id"), "{}", run.text());
    let out = Command::new(BIN).arg("provision").arg("--models-dir").arg("/tmp").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing to do"));
}

/// A git repository with two commits, the first tagged `v1`.
fn git_repo(dir: &Path) -> PathBuf {
    let repo = dir.join("ext-repo");
    std::fs::create_dir_all(&repo).unwrap();
    let git = |args: &[&str]| {
        let st = Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@t", "-c", "init.defaultBranch=main"])
            .args(args)
            .current_dir(&repo)
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(st.success(), "git {args:?}");
    };
    git(&["init", "-q"]);
    std::fs::write(repo.join("version.txt"), "one\n").unwrap();
    git(&["add", "."]);
    git(&["commit", "-q", "-m", "one"]);
    git(&["tag", "v1"]);
    std::fs::write(repo.join("version.txt"), "two\n").unwrap();
    git(&["commit", "-q", "-am", "two"]);
    repo
}

#[test]
fn the_provision_service_runs_first_and_others_wait_for_it() {
    let s = server();
    let sum = s.file("w.bin", 400_000);
    let dir = tempfile::tempdir().unwrap();
    let repo = git_repo(dir.path());
    // The manifest and the script come over HTTP, as PROVISION_URL and PROVISIONING_SCRIPT do.
    std::fs::write(
        s.root.path().join("manifest.toml"),
        format!(
            "[models.checkpoints.w]\nsource = \"url\"\nurl = \"{}\"\nfilename = \"w.safetensors\"\nsha256 = \"{sum}\"\n\
[[extensions]]\nurl = \"file://{}\"\nref = \"v1\"\nname = \"my-ext\"\n\
[[steps]]\nrun = \"echo step ran\"\n",
            s.url("w.bin?status=503&times=1"),
            repo.display()
        ),
    )
    .unwrap();
    std::fs::write(s.root.path().join("setup.sh"), "echo script says hello from $0\n").unwrap();
    let g = Gpubox::start(&format!(
        r#"
[provision]
manifest = "{}"
script = "{}"

[services.app]
command = ["sh", "-c", "ls models/Stable-diffusion; sleep 3600"]
depends_on = ["provision"]
"#,
        s.url("manifest.toml"),
        s.url("setup.sh"),
    ));
    g.wait_event("provision: finished successfully", Duration::from_secs(60));
    g.wait_event("app: started", Duration::from_secs(20));
    let deadline = Instant::now() + Duration::from_secs(20);
    while !g.log_texts("app").iter().any(|l| l == "w.safetensors") {
        assert!(Instant::now() < deadline, "app did not see the model: {:?}", g.log_texts("app"));
        std::thread::sleep(Duration::from_millis(100));
    }
    let texts = g.log_texts("provision");
    assert!(texts.iter().any(|l| l.contains("step ran")), "{texts:?}");
    assert!(texts.iter().any(|l| l.contains("script says hello")), "{texts:?}");
    // The extension is checked out at its tag, not at the branch's newest commit.
    let ext = g.path("ws/extensions/my-ext/version.txt");
    assert_eq!(std::fs::read_to_string(&ext).unwrap(), "one\n");
    assert!(texts.iter().any(|l| l.contains("provisioning complete")), "{texts:?}");
    assert_eq!(g.service_status("provision")["state"], "done");
    let result: serde_json::Value =
        serde_json::from_slice(&std::fs::read(g.path("ws/.gpubox/provision.json")).unwrap()).unwrap();
    assert_eq!(result["ok"], true, "{result}");
}
