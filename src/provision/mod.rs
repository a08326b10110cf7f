//! Provisioning: models and setup fetched on first start. `gpubox provision` runs it by hand;
//! `gpubox run` runs the same command as a supervised one-shot service named `provision` when
//! `[provision]` names a manifest or a script (see docs/provision.md).
//!
//! Order: the manifest's models (in parallel, resumable, verified), its extensions (git), its
//! Python packages (pip), its shell steps, then the provisioning script. The result is written to
//! `<state_dir>/provision.json` and `provision.txt` whether it succeeds or not.

pub mod download;
pub mod manifest;

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::human::bytes as human_bytes;
use download::{FileProgress, Job, Options, Outcome, Token};

/// What `gpubox provision` is asked to do.
#[derive(Debug, Clone)]
pub struct Settings {
    /// A manifest: a path or an http(s) URL.
    pub manifest: Option<String>,
    /// A shell script: a path or an http(s) URL.
    pub script: Option<String>,
    pub models_dir: PathBuf,
    pub extensions_dir: PathBuf,
    pub python: String,
    pub parallel: usize,
    pub bandwidth: Option<u64>,
    /// Where `provision.json` and `provision.txt` go.
    pub state_dir: PathBuf,
}

/// The hosts each token may go to. `HF_ENDPOINT` (a Hugging Face mirror) counts as Hugging Face.
pub fn tokens() -> (Vec<Token>, String) {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
    let hubs = hubs();
    let mut tokens = Vec::new();
    if let Some(v) = env("HF_TOKEN").or_else(|| env("HUGGING_FACE_HUB_TOKEN")) {
        tokens.push(Token { value: v, hosts: hubs.hf_hosts });
    }
    if let Some(v) = env("CIVITAI_TOKEN") {
        tokens.push(Token { value: v, hosts: hubs.civitai_hosts });
    }
    (tokens, hubs.hf)
}

/// Where Hugging Face and Civitai are (`HF_ENDPOINT`, `CIVITAI_ENDPOINT`: a mirror, the tests'
/// stand-in), and the hosts each site's token may go to: the site's own and its endpoint's.
pub struct Hubs {
    pub hf: String,
    pub civitai: String,
    pub hf_hosts: Vec<String>,
    pub civitai_hosts: Vec<String>,
}

pub fn hubs() -> Hubs {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
    let hf = env("HF_ENDPOINT").unwrap_or_else(|| "https://huggingface.co".into());
    let civitai = env("CIVITAI_ENDPOINT").unwrap_or_else(|| "https://civitai.com".into());
    let mut hf_hosts = vec!["huggingface.co".to_string(), "hf.co".to_string()];
    hf_hosts.extend(download::host_of(&hf));
    let mut civitai_hosts = vec!["civitai.com".to_string()];
    civitai_hosts.extend(download::host_of(&civitai));
    Hubs { hf, civitai, hf_hosts, civitai_hosts }
}

fn fetch_text(location: &str) -> Result<String, String> {
    if location.starts_with("http://") || location.starts_with("https://") {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(60)))
            .user_agent(concat!("gpubox/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        let mut resp = agent.get(location).call().map_err(|e| format!("cannot fetch {location}: {e}"))?;
        resp.body_mut()
            .with_config()
            .limit(4 << 20)
            .read_to_string()
            .map_err(|e| format!("cannot read {location}: {e}"))
    } else {
        std::fs::read_to_string(location).map_err(|e| format!("cannot read {location}: {e}"))
    }
}

struct Report {
    lines: Vec<String>,
    files: Vec<serde_json::Value>,
    failed: Vec<String>,
}

impl Report {
    fn say(&mut self, line: String) {
        println!("{line}");
        self.lines.push(line);
    }

    fn fail(&mut self, what: String) {
        self.say(format!("✗ {what}"));
        self.failed.push(what);
    }
}

/// Runs everything; returns the exit code (0: all done).
pub fn run(s: &Settings) -> i32 {
    let started = Instant::now();
    let mut report = Report { lines: Vec::new(), files: Vec::new(), failed: Vec::new() };
    if let Some(location) = &s.manifest {
        report.say(format!("provisioning from {location}"));
        match fetch_text(location).and_then(|t| manifest::parse(&t, location)) {
            Ok(m) => run_manifest(s, &m, &mut report),
            Err(e) => report.fail(e),
        }
    }
    if let Some(script) = &s.script {
        if report.failed.is_empty() {
            run_script(s, script, &mut report);
        } else {
            report.say(format!("· the provisioning script {script} was not run: the manifest failed"));
        }
    }
    let ok = report.failed.is_empty();
    let summary = if ok {
        format!("provisioning complete in {}", crate::human::duration(started.elapsed()))
    } else {
        format!("provisioning FAILED ({} problems): {}", report.failed.len(), report.failed.join("; "))
    };
    report.say(summary.clone());
    let result = json!({
        "ok": ok,
        "summary": summary,
        "finished_ms": std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64),
        "seconds": started.elapsed().as_secs_f64(),
        "manifest": s.manifest,
        "script": s.script,
        "files": report.files,
        "problems": report.failed,
    });
    if std::fs::create_dir_all(&s.state_dir).is_ok() {
        let _ = write_atomic(&s.state_dir.join("provision.json"), result.to_string().as_bytes());
        let _ = write_atomic(&s.state_dir.join("provision.txt"), (report.lines.join("\n") + "\n").as_bytes());
    }
    if ok {
        0
    } else {
        1
    }
}

fn write_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, data)?;
    std::fs::rename(tmp, path)
}

fn run_manifest(s: &Settings, m: &manifest::Manifest, report: &mut Report) {
    let (tokens, endpoint) = tokens();
    let models = match manifest::resolve(m, &endpoint) {
        Ok(r) => r,
        Err(errors) => {
            for e in errors {
                report.fail(e);
            }
            return;
        }
    };
    if !models.is_empty() {
        // Names the servers gave earlier (Civitai's Content-Disposition), so that a rerun finds
        // those files without asking again.
        let cache_path = s.state_dir.join("download-names.json");
        let mut names: std::collections::BTreeMap<String, String> =
            std::fs::read(&cache_path).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default();
        let mut jobs: Vec<Job> = models
            .iter()
            .map(|r| Job {
                url: r.url.clone(),
                dir: s.models_dir.join(&r.folder),
                filename: r.filename.clone(),
                sha256: r.sha256.clone(),
                label: r.label.clone(),
            })
            .collect();
        for job in jobs.iter_mut().filter(|j| j.filename.is_none()) {
            if let Some(name) = names.get(&job.url).filter(|n| job.dir.join(n).is_file()) {
                job.filename = Some(name.clone());
            }
        }
        let opts = Options { parallel: s.parallel.max(1), bandwidth: s.bandwidth, tokens, ..Options::default() };
        for (url, path) in download_all(&jobs, &opts, report) {
            if let Some(name) = path.file_name() {
                names.insert(url, name.to_string_lossy().into_owned());
            }
        }
        if std::fs::create_dir_all(&s.state_dir).is_ok() {
            let _ = write_atomic(&cache_path, serde_json::to_string_pretty(&names).unwrap_or_default().as_bytes());
        }
    }
    for e in &m.extensions {
        let dir = s.extensions_dir.join(manifest::extension_name(e));
        match git_checkout(&e.url, e.git_ref.as_deref(), &dir) {
            Ok(what) => report.say(format!("✓ extension {}: {what}", dir.display())),
            Err(err) => report.fail(format!("extension {}: {err}", e.url)),
        }
    }
    if !m.python.packages.is_empty() {
        report.say(format!("installing Python packages: {}", m.python.packages.join(" ")));
        let status = Command::new(&s.python)
            .args(["-m", "pip", "install", "--disable-pip-version-check", "--no-input"])
            .args(&m.python.packages)
            .status();
        match status {
            Ok(st) if st.success() => report.say("✓ Python packages installed".into()),
            Ok(st) => report.fail(format!("pip install ended with {st}")),
            Err(e) => report.fail(format!("cannot run {}: {e}", s.python)),
        }
    }
    for step in &m.steps {
        report.say(format!("$ {}", step.run));
        match Command::new("sh").arg("-c").arg(&step.run).status() {
            Ok(st) if st.success() => {}
            Ok(st) => {
                report.fail(format!("step `{}` ended with {st}", step.run));
                return;
            }
            Err(e) => {
                report.fail(format!("cannot run sh: {e}"));
                return;
            }
        }
    }
}

/// Downloads with a progress line: redrawn in place (`\r`) on a terminal, where gpubox's log
/// shows it as the service's live line; each finished file gets a final line of its own.
/// Returns the URL and path of every file that is in place. Long because the workers and the
/// one progress line they share are drawn from the same loop.
fn download_all(jobs: &[Job], opts: &Options, report: &mut Report) -> Vec<(String, PathBuf)> {
    let mut placed = Vec::new();
    let progress: Vec<Arc<FileProgress>> = jobs
        .iter()
        .map(|j| {
            let p = FileProgress::default();
            *p.label.lock().expect("label lock") = j.label.clone();
            Arc::new(p)
        })
        .collect();
    let total_files = jobs.len();
    let live = std::io::stdout().is_terminal();
    let done = std::sync::atomic::AtomicBool::new(false);
    let started = Instant::now();
    let outcomes = std::thread::scope(|scope| {
        let drawer = scope.spawn(|| {
            let mut last = (Instant::now(), 0u64);
            let mut speed = 0.0f64;
            let every = Duration::from_millis(if live { 250 } else { 1000 });
            let mut drawn = Instant::now();
            while !done.load(Ordering::Relaxed) {
                // Short naps, so that a run with nothing to fetch ends at once.
                std::thread::sleep(Duration::from_millis(20));
                if drawn.elapsed() < every {
                    continue;
                }
                drawn = Instant::now();
                let bytes: u64 = progress.iter().map(|p| p.done.load(Ordering::Relaxed)).sum();
                let total: u64 = progress.iter().map(|p| p.total.load(Ordering::Relaxed)).sum();
                let finished = progress.iter().filter(|p| p.state.load(Ordering::Relaxed) >= 2).count();
                let dt = last.0.elapsed().as_secs_f64();
                if dt > 0.0 {
                    let now = bytes.saturating_sub(last.1) as f64 / dt;
                    speed = if speed == 0.0 { now } else { speed * 0.7 + now * 0.3 };
                }
                last = (Instant::now(), bytes);
                let eta = if speed > 1.0 && total > bytes {
                    let secs = ((total - bytes) as f64 / speed).ceil();
                    format!(" · ETA {}", crate::human::duration(Duration::from_secs_f64(secs)))
                } else {
                    String::new()
                };
                let current: Vec<String> = progress
                    .iter()
                    .filter(|p| p.state.load(Ordering::Relaxed) == 1)
                    .map(|p| {
                        let t = p.total.load(Ordering::Relaxed);
                        let pct = (p.done.load(Ordering::Relaxed) * 100).checked_div(t).unwrap_or(0);
                        format!("{} {pct}%", p.label.lock().expect("label lock"))
                    })
                    .collect();
                let line = if total == 0 {
                    format!("[{finished}/{total_files} files] asking the servers for sizes…")
                } else {
                    format!(
                        "[{finished}/{total_files} files] {} of {} · {}/s{eta} · {}",
                        human_bytes(bytes),
                        human_bytes(total),
                        human_bytes(speed as u64),
                        current.join(", ")
                    )
                };
                let mut out = std::io::stdout().lock();
                if live {
                    let _ = write!(out, "\r\x1b[K{}", line.chars().take(200).collect::<String>());
                } else {
                    let _ = writeln!(out, "{line}");
                }
                let _ = out.flush();
            }
            if live {
                print!("\r\x1b[K");
                let _ = std::io::stdout().flush();
            }
        });
        let result = download::run(jobs, opts, &progress);
        done.store(true, Ordering::Relaxed);
        let _ = drawer.join();
        result
    });
    match outcomes {
        Err(e) => report.fail(e),
        Ok(outcomes) => {
            for (job, o) in jobs.iter().zip(outcomes) {
                let (state, path, reason) = match &o {
                    Outcome::Downloaded { path, bytes } => {
                        report.say(format!("✓ {} → {} ({})", job.label, path.display(), human_bytes(*bytes)));
                        placed.push((job.url.clone(), path.clone()));
                        ("downloaded", Some(path.clone()), None)
                    }
                    Outcome::AlreadyThere { path } => {
                        report.say(format!("· {} is already there ({})", job.label, path.display()));
                        placed.push((job.url.clone(), path.clone()));
                        ("already there", Some(path.clone()), None)
                    }
                    Outcome::Failed { reason } => {
                        report.fail(format!("{}: {reason}", job.label));
                        ("failed", None, Some(reason.clone()))
                    }
                };
                report.files.push(
                    json!({ "label": job.label, "url": job.url, "state": state, "path": path, "reason": reason }),
                );
            }
            report.say(format!("downloads finished in {}", crate::human::duration(started.elapsed())));
        }
    }
    placed
}

/// Clones (or updates) a repository at a ref: a branch, a tag or a commit.
fn git_checkout(url: &str, git_ref: Option<&str>, dir: &Path) -> Result<String, String> {
    let git = |args: &[&str], cwd: &Path| -> Result<String, String> {
        let out = Command::new("git")
            .args(args)
            .current_dir(cwd)
            .env("GIT_TERMINAL_PROMPT", "0")
            .output()
            .map_err(|e| format!("cannot run git: {e}"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        } else {
            Err(format!("git {} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()))
        }
    };
    let r = git_ref.unwrap_or("HEAD");
    if !dir.join(".git").exists() {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        git(&["init", "-q"], dir)?;
        git(&["remote", "add", "origin", url], dir)?;
    }
    git(&["fetch", "-q", "--depth", "1", "origin", r], dir)?;
    git(&["checkout", "-q", "--force", "FETCH_HEAD"], dir)?;
    let head = git(&["rev-parse", "--short", "HEAD"], dir)?;
    Ok(format!("{url} at {r} ({head})"))
}

fn run_script(s: &Settings, location: &str, report: &mut Report) {
    let path = if location.starts_with("http://") || location.starts_with("https://") {
        match fetch_text(location) {
            Ok(text) => {
                let p = s.state_dir.join("provisioning-script.sh");
                if let Err(e) = std::fs::create_dir_all(&s.state_dir).and_then(|_| std::fs::write(&p, text)) {
                    report.fail(format!("cannot save the provisioning script: {e}"));
                    return;
                }
                p
            }
            Err(e) => {
                report.fail(e);
                return;
            }
        }
    } else {
        PathBuf::from(location)
    };
    report.say(format!("running the provisioning script {location}"));
    match Command::new("bash").arg(&path).status() {
        Ok(st) if st.success() => report.say("✓ the provisioning script finished".into()),
        Ok(st) => report.fail(format!("the provisioning script {location} ended with {st}")),
        Err(e) => report.fail(format!("cannot run bash {}: {e}", path.display())),
    }
}
