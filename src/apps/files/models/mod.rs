//! The Models view: Forge's model folders by category with each file's size, date and, once
//! known, its SHA-256, source and preview; and "Add model": a pasted Civitai or Hugging Face link
//! resolved (`resolve`), then fetched as a job with the provisioning downloader (resumable,
//! retried, the hash checked, tokens only to their own sites), its preview saved beside it as
//! `<name>.preview.png` (the name Forge's extra-networks cards read), and what was learnt kept
//! in `${state_dir}/models.json`.

mod resolve;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::fs::{clean, Rel, Root};
use super::{blocking, jobs, FilesApp};
use crate::http::{ApiError, JsonBody};
use crate::provision::download::{safe_filename, Token};
use resolve::{Input, Resolved, Sites};

/// Our categories: id, label, the folder under the models folder (Forge's names; embeddings
/// where the images' forge-launch points Forge: `models/embeddings`).
pub const CATEGORIES: [(&str, &str, &str); 7] = [
    ("checkpoints", "Checkpoints", "Stable-diffusion"),
    ("lora", "LoRA", "Lora"),
    ("vae", "VAE", "VAE"),
    ("text_encoder", "Text encoders", "text_encoder"),
    ("embeddings", "Embeddings", "embeddings"),
    ("controlnet", "ControlNet", "ControlNet"),
    ("upscalers", "Upscalers", "ESRGAN"),
];

/// Files that are models by their name.
const MODEL_EXTS: [&str; 9] = [".safetensors", ".ckpt", ".pt", ".pth", ".bin", ".gguf", ".sft", ".onnx", ".pkl"];
const PREVIEW_EXTS: [&str; 5] = ["png", "jpg", "jpeg", "webp", "gif"];
/// A preview picture larger than this is not kept.
const MAX_PREVIEW: u64 = 32 << 20;

/// What gpubox learnt of a model it fetched (or hashed).
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Record {
    pub sha256: Option<String>,
    pub size: u64,
    /// The file's mtime (ms) when it was hashed: a file put in its place since is another one.
    #[serde(default)]
    pub modified: Option<i64>,
    pub source: Option<String>,
    pub page: Option<String>,
    pub name: Option<String>,
    pub version: Option<String>,
}

pub struct Models {
    file: PathBuf,
    records: Mutex<BTreeMap<String, Record>>,
    /// Names being downloaded to (`folder/name`): a second add of one name is refused at once.
    pending: Mutex<std::collections::HashSet<String>>,
}

impl Models {
    pub fn load(state_dir: &Path) -> Models {
        let file = state_dir.join("models.json");
        let records = std::fs::read(&file).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default();
        Models { file, records: Mutex::new(records), pending: Mutex::default() }
    }

    fn get(&self, path: &str) -> Option<Record> {
        self.records.lock().unwrap_or_else(|e| e.into_inner()).get(path).cloned()
    }

    /// Keeps a record (blocking: written to a temporary file and renamed); records of files that
    /// are gone are dropped on the way, so the file does not only grow.
    fn put(&self, root: &Root, path: String, r: Record) {
        let mut all = self.records.lock().unwrap_or_else(|e| e.into_inner());
        all.insert(path, r);
        all.retain(|p, _| clean(p).map(|rel| root.stat(&rel).is_ok()).unwrap_or(false));
        let text = serde_json::to_vec_pretty(&*all).unwrap_or_default();
        let tmp = self.file.with_extension("json.tmp");
        if std::fs::write(&tmp, text).is_ok() {
            let _ = std::fs::rename(&tmp, &self.file);
        }
    }
}

/// A name being downloaded to (`folder/name`), held while its add is answered and its job runs:
/// a second add of it is refused at once. Let go when dropped.
struct Reserved(Arc<FilesApp>, String);

impl Reserved {
    fn take(app: &Arc<FilesApp>, key: String) -> Option<Reserved> {
        let fresh = app.models.pending.lock().unwrap_or_else(|e| e.into_inner()).insert(key.clone());
        fresh.then(|| Reserved(app.clone(), key))
    }
}

impl Drop for Reserved {
    fn drop(&mut self) {
        self.0.models.pending.lock().unwrap_or_else(|e| e.into_inner()).remove(&self.1);
    }
}

/// Where Forge's models are: `forge/models` (the forge image), else `models`.
fn models_root(root: &Root) -> Rel {
    for p in ["forge/models", "models"] {
        let rel = clean(p).expect("a clean path");
        if root.stat(&rel).map(|st| super::fs::kind_of(&st) == "dir").unwrap_or(false) {
            return rel;
        }
    }
    clean("forge/models").expect("a clean path")
}

/// Which site a pasted token is for, by its form: Hugging Face's start with `hf_`; anything else
/// is taken for a Civitai key. A token is sent only to the site of its form, and only for a link
/// of that site.
fn token_site(token: &str) -> &'static str {
    if token.trim().starts_with("hf_") {
        "huggingface"
    } else {
        "civitai"
    }
}

/// A pasted token for a link of another site: refused, so it cannot travel there.
fn check_token(token: Option<&str>, source: &str) -> Result<(), ApiError> {
    match token.map(str::trim).filter(|t| !t.is_empty()) {
        Some(t) if token_site(t) != source => Err(ApiError::bad_request(
            "token_site",
            format!(
                "the token pasted looks like a {} token, and this link is {}'s: clear the token field, or paste that site's token",
                if token_site(t) == "huggingface" { "Hugging Face" } else { "Civitai" },
                if source == "huggingface" { "Hugging Face" } else { "Civitai" },
            ),
        )),
        _ => Ok(()),
    }
}

fn sites(user_token: Option<&str>, source_hint: Option<&str>) -> Sites {
    let (mut tokens, _) = crate::provision::tokens();
    let hubs = crate::provision::hubs();
    // A token pasted for this one download goes before the environment's, to its site only.
    if let Some(v) = user_token.map(str::trim).filter(|v| !v.is_empty()) {
        let hosts = if source_hint == Some("huggingface") { hubs.hf_hosts } else { hubs.civitai_hosts };
        tokens.insert(0, Token { value: v.to_string(), hosts });
    }
    Sites { civitai: hubs.civitai, hf: hubs.hf, tokens }
}

fn category(id: &str) -> Option<(&'static str, &'static str, &'static str)> {
    CATEGORIES.iter().copied().find(|(c, _, _)| *c == id)
}

#[derive(Serialize)]
struct ModelFile {
    name: String,
    size: u64,
    modified: i64,
    sha256: Option<String>,
    source: Option<String>,
    page: Option<String>,
    /// The preview picture's path in the workspace (Forge's `<name>.preview.<ext>` or `<name>.<ext>`).
    preview: Option<String>,
    /// Its mtime and size, for the thumbnail's URL (a new preview is a new URL).
    preview_version: Option<String>,
}

/// `GET /api/models`: every category's folder and the models in it.
pub(super) async fn list(State(app): State<Arc<FilesApp>>) -> Result<Response, ApiError> {
    blocking(move || {
        let base = models_root(&app.root);
        let mut cats = Vec::new();
        for (id, label, folder) in CATEGORIES {
            let dir = base.join(folder);
            let entries = app.root.list(&dir);
            let names: std::collections::HashMap<&str, &super::fs::Entry> =
                entries.as_deref().unwrap_or_default().iter().map(|e| (e.name.as_str(), e)).collect();
            let mut files = Vec::new();
            for e in entries.as_deref().unwrap_or_default() {
                let lower = e.name.to_ascii_lowercase();
                if e.kind != "file" || !MODEL_EXTS.iter().any(|x| lower.ends_with(x)) {
                    continue;
                }
                let stem = e.name.rsplit_once('.').map(|(s, _)| s).unwrap_or(&e.name);
                let preview = PREVIEW_EXTS
                    .iter()
                    .flat_map(|x| [format!("{stem}.preview.{x}"), format!("{stem}.{x}")])
                    .find_map(|n| names.get(n.as_str()).copied());
                let path = dir.join(&e.name).as_str();
                let rec =
                    app.models.get(&path).filter(|r| r.size == e.size && r.modified.is_none_or(|m| m == e.modified));
                files.push(ModelFile {
                    name: e.name.clone(),
                    size: e.size,
                    modified: e.modified,
                    sha256: rec.as_ref().and_then(|r| r.sha256.clone()),
                    source: rec.as_ref().and_then(|r| r.source.clone()),
                    page: rec.as_ref().and_then(|r| r.page.clone()),
                    preview: preview.map(|p| dir.join(&p.name).as_str()),
                    preview_version: preview.map(|p| format!("{}-{}", p.modified, p.size)),
                });
            }
            files.sort_by_key(|a| a.name.to_lowercase());
            cats.push(json!({
                "id": id, "label": label, "folder": dir.as_str(), "missing": entries.is_err(), "files": files,
            }));
        }
        Ok(Json(json!({ "root": base.as_str(), "categories": cats })).into_response())
    })
    .await
}

#[derive(Deserialize)]
pub(super) struct ResolveRequest {
    input: String,
    #[serde(default)]
    token: Option<String>,
}

/// `POST /api/models/resolve {"input", "token"?}`: what a pasted link is, and where it would go.
pub(super) async fn resolve_link(
    State(app): State<Arc<FilesApp>>,
    JsonBody(r): JsonBody<ResolveRequest>,
) -> Result<Response, ApiError> {
    let input = resolve::parse_input(&r.input).map_err(|e| ApiError::bad_request("bad_link", e))?;
    let pick = resolve::pick_of(&r.input);
    let hint = matches!(input, Input::HuggingFace { .. }).then_some("huggingface");
    check_token(r.token.as_deref(), hint.unwrap_or("civitai"))?;
    let sites = sites(r.token.as_deref(), hint);
    let found = blocking(move || resolve::resolve(&sites, &input, &pick))
        .await
        .map_err(|e| ApiError::new(StatusCode::BAD_GATEWAY, "not_resolved", e))?;
    let (base, free) = blocking(move || (models_root(&app.root), app.root.space().map(|s| s.0))).await;
    let folder = found.category.as_deref().and_then(category).map(|(_, _, f)| base.join(f).as_str());
    Ok(Json(json!({ "model": found, "folder": folder, "free": free })).into_response())
}

#[derive(Deserialize)]
pub(super) struct AddRequest {
    model: Resolved,
    /// The category chosen (the resolved one, or the user's).
    category: String,
    /// The name to save under (the site's, or the user's).
    #[serde(default)]
    filename: Option<String>,
    #[serde(default)]
    token: Option<String>,
}

/// `POST /api/models/add {"model", "category", "filename"?, "token"?}`: fetches a resolved model
/// into its category's folder as a job: 202 `{"id"}`. Refused at once (nothing started) when the
/// name is taken or the disk cannot hold it.
pub(super) async fn add(
    State(app): State<Arc<FilesApp>>,
    JsonBody(r): JsonBody<AddRequest>,
) -> Result<Response, ApiError> {
    let (_, _, folder) = category(&r.category).ok_or_else(|| {
        let ids: Vec<&str> = CATEGORIES.iter().map(|c| c.0).collect();
        ApiError::bad_request(
            "bad_category",
            format!("`{}` is not a category; choose one of {}", r.category, ids.join(", ")),
        )
    })?;
    let mut m = r.model;
    if !(m.url.starts_with("https://") || m.url.starts_with("http://")) {
        return Err(ApiError::bad_request("bad_url", "the model's URL is not http(s)"));
    }
    // Shown later as a link: only a web page's address is kept.
    if !m.page.starts_with("https://") {
        m.page = String::new();
    }
    check_token(r.token.as_deref(), if m.source == "huggingface" { "huggingface" } else { "civitai" })?;
    let wanted = r.filename.as_deref().unwrap_or(&m.file);
    let filename = safe_filename(wanted)
        .filter(|n| !n.starts_with('.'))
        .ok_or_else(|| ApiError::bad_request("bad_name", format!("`{wanted}` is not a plain file name")))?;
    let (a, name) = (app.clone(), filename.clone());
    let (dir, taken, free) = blocking(move || {
        let dir = models_root(&a.root).join(folder);
        let taken = a.root.stat(&dir.join(&name)).is_ok();
        (dir, taken, a.root.space().map(|s| s.0))
    })
    .await;
    let reserved = Reserved::take(&app, dir.join(&filename).as_str());
    if taken || reserved.is_none() {
        let why = if reserved.is_none() { "is being downloaded already" } else { "already exists" };
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "exists",
            format!("/{}/{filename} {why}: remove it first, or save this one under another name", dir.as_str()),
        ));
    }
    if let (Some(size), Some(free)) = (m.size, free) {
        if size > free {
            return Err(ApiError::new(
                StatusCode::INSUFFICIENT_STORAGE,
                "disk_full",
                format!(
                    "{filename} needs {} and the workspace disk has {} free: free some space first (a Vast disk cannot grow)",
                    crate::human::bytes(size),
                    crate::human::bytes(free)
                ),
            ));
        }
    }
    let hint = (m.source == "huggingface").then_some("huggingface");
    let sites = sites(r.token.as_deref(), hint);
    let label = format!("add {} to /{}", filename, dir.as_str());
    let a = app.clone();
    let id = app.jobs.start("model", label, move |job| {
        let _name_held_until_the_job_ends = reserved;
        add_model(&a, job, &sites.tokens, &m, &dir, &filename)
    });
    Ok((StatusCode::ACCEPTED, Json(json!({ "id": id }))).into_response())
}

#[derive(Deserialize)]
pub(super) struct IdentifyRequest {
    path: String,
}

/// `POST /api/models/identify {"path"}`: a model already in the workspace (uploaded, provisioned)
/// hashed as a job, then looked up on Civitai by its SHA-256; what is found (its page, name and
/// preview, saved as `<name>.preview.png` when it has none) is kept like a fetched model's.
pub(super) async fn identify(
    State(app): State<Arc<FilesApp>>,
    JsonBody(r): JsonBody<IdentifyRequest>,
) -> Result<Response, ApiError> {
    let rel = clean(&r.path).map_err(|e| ApiError::bad_request("bad_path", e.to_string()))?;
    let name =
        rel.name().map(str::to_string).ok_or_else(|| ApiError::bad_request("bad_path", "give a model file's path"))?;
    let (a, at) = (app.clone(), rel.clone());
    let is_file = blocking(move || a.root.stat(&at).map(|st| super::fs::kind_of(&st) == "file")).await;
    match is_file {
        Ok(true) => {}
        Ok(false) => return Err(ApiError::bad_request("not_a_file", format!("/{} is not a file", rel.as_str()))),
        Err(e) => return Err(e.into()),
    }
    let sites = sites(None, None);
    let a = app.clone();
    let label = format!("identify /{}", rel.as_str());
    let id = app.jobs.start("model", label, move |job| {
        let (sha256, size) = jobs::hash_file(&a.root, job, &rel)?;
        let found = resolve::by_hash(&sites, &sha256);
        let mut rec =
            Record { sha256: Some(sha256.clone()), size, modified: mtime(&a.root, &rel), ..Default::default() };
        let told = match &found {
            Ok(Some(m)) => {
                rec.source = Some(m.source.clone());
                rec.page = Some(m.page.clone());
                rec.name = Some(m.name.clone());
                rec.version = m.version.clone();
                format!(
                    "it is {}{} on Civitai",
                    m.name,
                    m.version.as_deref().map(|v| format!(" ({v})")).unwrap_or_default()
                )
            }
            Ok(None) => "Civitai does not know it".into(),
            Err(e) => format!("Civitai could not be asked: {e}"),
        };
        a.models.put(&a.root, rel.as_str(), rec);
        let dir = rel.parent();
        let stem = name.rsplit_once('.').map(|(s, _)| s).unwrap_or(&name);
        let has_preview = PREVIEW_EXTS.iter().any(|x| {
            [format!("{stem}.preview.{x}"), format!("{stem}.{x}")].iter().any(|n| a.root.stat(&dir.join(n)).is_ok())
        });
        let preview = match (&found, has_preview) {
            (Ok(Some(Resolved { preview: Some(url), .. })), false) => {
                let scratch = a.scratch.join(format!("model-{}", job.id()));
                let saved = save_preview(&a, job, &sites.tokens, url, &dir, &name, &scratch);
                let _ = std::fs::remove_dir_all(&scratch);
                match saved {
                    Ok(p) => format!("; preview /{p}"),
                    Err(e) => format!("; no preview ({e})"),
                }
            }
            _ => String::new(),
        };
        Ok(format!("SHA-256 {sha256}: {told}{preview}"))
    });
    Ok((StatusCode::ACCEPTED, Json(json!({ "id": id }))).into_response())
}

/// A file's mtime in ms, as listings give it.
fn mtime(root: &Root, rel: &Rel) -> Option<i64> {
    root.stat(rel).ok().map(|st| super::fs::mtime_ms(&st))
}

/// The job: the model, checked against its SHA-256, into its folder; then its preview beside it.
fn add_model(
    app: &FilesApp,
    job: &jobs::Job,
    tokens: &[Token],
    m: &Resolved,
    dir: &Rel,
    filename: &str,
) -> Result<String, String> {
    app.root.mkdir_all(dir).map_err(|e| format!("cannot create /{}: {e}", dir.as_str()))?;
    let scratch = app.scratch.join(format!("model-{}", job.id()));
    let result = (|| {
        let path = jobs::download(job, &scratch, &m.url, Some(filename.to_string()), m.sha256.clone(), tokens.to_vec())
            .map_err(|e| explain(&e, &m.url, m.source == "civitai"))?;
        let sha256 = match &m.sha256 {
            Some(s) => s.clone(),
            None => {
                crate::provision::download::sha256_file(&path).map_err(|e| format!("cannot hash the download: {e}"))?
            }
        };
        if job.cancelled() {
            return Err("cancelled".into());
        }
        let size = std::fs::metadata(&path).map(|md| md.len()).unwrap_or(0);
        // A name taken meanwhile (an upload): the download is kept under a free name.
        let name = if app.root.stat(&dir.join(filename)).is_ok() {
            jobs::free_name(&app.root, dir, filename)
        } else {
            filename.to_string()
        };
        let to = dir.join(&name);
        app.root.adopt(&path, &to, false).map_err(|e| format!("cannot put the model at /{}: {e}", to.as_str()))?;
        app.models.put(
            &app.root,
            to.as_str(),
            Record {
                sha256: Some(sha256.clone()),
                size,
                modified: mtime(&app.root, &to),
                source: Some(m.source.clone()),
                page: Some(m.page.clone()),
                name: Some(m.name.clone()),
                version: m.version.clone(),
            },
        );
        let checked =
            if m.sha256.is_some() { "SHA-256 checked" } else { "SHA-256 noted (the site gave none to check)" };
        let preview = match &m.preview {
            None => String::new(),
            Some(url) => match save_preview(app, job, tokens, url, dir, filename, &scratch) {
                Ok(p) => format!("; preview /{p}"),
                Err(e) => format!("; no preview ({e})"),
            },
        };
        Ok(format!("saved /{} ({checked}){preview}", to.as_str()))
    })();
    let _ = std::fs::remove_dir_all(&scratch);
    result
}

/// The downloader's words for a refused download, with what to do for the site that refused.
fn explain(e: &str, url: &str, civitai: bool) -> String {
    if e.contains("refused access (401)") || e.contains("refused access (403)") {
        let status = if e.contains("(401)") { 401 } else { 403 };
        resolve::login_needed(url, status, civitai)
    } else {
        e.to_string()
    }
}

/// The preview picture, whatever its format, as `<stem>.preview.png` beside the model.
fn save_preview(
    app: &FilesApp,
    job: &jobs::Job,
    tokens: &[Token],
    url: &str,
    dir: &Rel,
    filename: &str,
    scratch: &Path,
) -> Result<String, String> {
    let sub = scratch.join("preview");
    let got = jobs::download(job, &sub, url, Some("preview".into()), None, tokens.to_vec())?;
    if std::fs::metadata(&got).map(|m| m.len()).unwrap_or(0) > MAX_PREVIEW {
        return Err("the picture is too big".into());
    }
    // A hostile picture may make a decoder panic: that fails the preview, not the task.
    let img = std::panic::catch_unwind(|| {
        image::ImageReader::open(&got)
            .and_then(|r| r.with_guessed_format())
            .map_err(|e| e.to_string())?
            .decode()
            .map_err(|e| format!("not a picture: {e}"))
    })
    .unwrap_or_else(|_| Err("not a picture".into()))?;
    // Forge's cards are small: at most 1024 pixels a side is kept.
    let img = if img.width() > 1024 || img.height() > 1024 { img.thumbnail(1024, 1024) } else { img };
    let png = sub.join("preview.png");
    img.save_with_format(&png, image::ImageFormat::Png).map_err(|e| e.to_string())?;
    let stem = filename.rsplit_once('.').map(|(s, _)| s).unwrap_or(filename);
    let to = dir.join(&format!("{stem}.preview.png"));
    app.root.adopt(&png, &to, false).map_err(|e| e.to_string())?;
    Ok(to.as_str())
}
