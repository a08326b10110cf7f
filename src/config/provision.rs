//! `[provision]`: where provisioning finds its manifest and script and puts what it fetches, and
//! the one-shot service `provision` that `gpubox run` adds when there is something to fetch.

use std::path::Path;

use super::raw::RawProvision;
use super::validate::{absolute, Ctx};

pub fn settings(cx: &mut Ctx, raw: &RawProvision, workspace: &Path) -> super::ProvisionSettings {
    let text = |cx: &mut Ctx, v: &Option<toml::Spanned<String>>, k: &str| -> Option<String> {
        v.as_ref().and_then(|v| cx.expand(v, k)).map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
    };
    // A manifest or script path is relative to this file; a URL is left as it is.
    let location = |cx: &mut Ctx, v: &Option<toml::Spanned<String>>, k: &str| -> Option<String> {
        let s = text(cx, v, k)?;
        if s.starts_with("http://") || s.starts_with("https://") {
            Some(s)
        } else {
            Some(absolute(cx.base, Path::new(&s)).to_string_lossy().into_owned())
        }
    };
    let manifest = location(cx, &raw.manifest, "provision.manifest");
    let script = location(cx, &raw.script, "provision.script");
    let models_dir = match &raw.models_dir {
        Some(d) => cx.path(d, "provision.models_dir").unwrap_or_default(),
        None => workspace.join("models"),
    };
    let extensions_dir = match &raw.extensions_dir {
        Some(d) => cx.path(d, "provision.extensions_dir").unwrap_or_default(),
        None => workspace.join("extensions"),
    };
    let python = text(cx, &raw.python, "provision.python").unwrap_or_else(|| "python3".into());
    let parallel = match &raw.parallel {
        Some(p) if *p.get_ref() == 0 || *p.get_ref() > 64 => {
            cx.error(p.span(), "provision.parallel", "must be 1 to 64".into(), Some("write parallel = 4".into()));
            4
        }
        Some(p) => *p.get_ref() as usize,
        None => 4,
    };
    let bandwidth = cx.size(&raw.bandwidth, "provision.bandwidth", 0);
    super::ProvisionSettings {
        manifest,
        script,
        models_dir,
        extensions_dir,
        python,
        parallel,
        bandwidth: (bandwidth > 0).then_some(bandwidth),
    }
}

/// The one-shot service that runs `gpubox provision` with these settings, in a PTY so that its
/// progress line is the service's live line in the logs.
pub fn service(p: &super::ProvisionSettings, workspace: &Path, state_dir: &Path) -> super::Service {
    let exe = std::env::current_exe().map_or("gpubox".into(), |p| p.to_string_lossy().into_owned());
    let mut command = vec![exe, "provision".to_string()];
    if let Some(m) = &p.manifest {
        command.push(m.clone());
    }
    if let Some(s) = &p.script {
        command.extend(["--script".to_string(), s.clone()]);
    }
    command.extend([
        "--models-dir".to_string(),
        p.models_dir.to_string_lossy().into_owned(),
        "--extensions-dir".to_string(),
        p.extensions_dir.to_string_lossy().into_owned(),
        "--python".to_string(),
        p.python.clone(),
        "--parallel".to_string(),
        p.parallel.to_string(),
        "--state-dir".to_string(),
        state_dir.to_string_lossy().into_owned(),
    ]);
    if let Some(b) = p.bandwidth {
        command.extend(["--bandwidth".to_string(), b.to_string()]);
    }
    super::Service {
        name: "provision".into(),
        command,
        cwd: workspace.to_path_buf(),
        env: Default::default(),
        user: None,
        restart: super::RestartPolicy::Never,
        ready: None,
        depends_on: Vec::new(),
        stop_signal: nix::sys::signal::Signal::SIGTERM,
        stop_timeout: std::time::Duration::from_secs(10),
        tty: true,
        oneshot: true,
        backoff: super::Backoff::default(),
        listen: None,
    }
}
