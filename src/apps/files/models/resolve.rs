//! What a pasted model link means: a Civitai page, download URL or AIR, a Hugging Face file URL
//! or `owner/repo/path`, resolved through the sites' public APIs into the one file to fetch, its
//! size, SHA-256, type and a preview picture. The API shapes are in docs/research/models-apis.md
//! (Civitai's REST API v1; Hugging Face's resolve endpoint and its `X-Linked-*` headers).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::provision::download::{host_of, Token};

/// What was pasted, understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    CivitaiVersion(u64),
    /// A model without a version: its newest one.
    CivitaiModel(u64),
    HuggingFace {
        repo: String,
        rev: String,
        path: String,
    },
}

const FORMS: &str = "paste a Civitai model page (https://civitai.com/models/ID…), a Civitai download URL \
(https://civitai.com/api/download/models/VERSION), an AIR (urn:air:sdxl:lora:civitai:MODEL@VERSION), a Hugging Face \
file URL (https://huggingface.co/OWNER/REPO/blob/main/FILE) or OWNER/REPO/FILE";

fn number(s: &str, what: &str) -> Result<u64, String> {
    s.parse().map_err(|_| format!("`{s}` is not a {what} number; {FORMS}"))
}

/// Which of a Civitai version's files a link names: its id (an AIR's `+FILE`), or the download
/// link's `type`, `format`, `size` and `fp` (as Civitai's own download links carry them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pick {
    pub file_id: Option<u64>,
    pub kind: Option<String>,
    pub format: Option<String>,
    pub size: Option<String>,
    pub fp: Option<String>,
}

/// The file a pasted link names, if it names one.
pub fn pick_of(raw: &str) -> Pick {
    let s = raw.trim();
    let mut pick = Pick::default();
    let air = s.strip_prefix("urn:").unwrap_or(s);
    if air.starts_with("air:") {
        pick.file_id = air.split_once('+').and_then(|(_, f)| f.split('.').next()).and_then(|f| f.parse().ok());
        return pick;
    }
    let query = s.split_once('?').map(|(_, q)| q).unwrap_or("");
    for kv in query.split('&') {
        let Some((k, v)) = kv.split_once('=') else { continue };
        let v = Some(decode(v.split('#').next().unwrap_or(v)));
        match k {
            "type" => pick.kind = v,
            "format" => pick.format = v,
            "size" => pick.size = v,
            "fp" => pick.fp = v,
            _ => {}
        }
    }
    pick
}

/// Understands a pasted link.
pub fn parse_input(raw: &str) -> Result<Input, String> {
    let trimmed = raw.trim();
    // Pasted without its scheme: `civitai.com/models/…`, `huggingface.co/…`.
    let schemed;
    let s = if ["civitai.com/", "www.civitai.com/", "civitai.green/", "huggingface.co/", "hf.co/"]
        .iter()
        .any(|p| trimmed.to_ascii_lowercase().starts_with(p))
    {
        schemed = format!("https://{trimmed}");
        schemed.as_str()
    } else {
        trimmed
    };
    if s.is_empty() {
        return Err(format!("nothing was pasted: {FORMS}"));
    }
    // AIR: urn:air:{ecosystem}:{type}:{source}:{id}[@{version}][+{file}][.{format}]
    let air = s.strip_prefix("urn:").unwrap_or(s);
    if let Some(rest) = air.strip_prefix("air:") {
        let parts: Vec<&str> = rest.split(':').collect();
        let (source, id) = match parts.as_slice() {
            [_, _, source, id] => (*source, *id),
            _ => return Err(format!("`{s}` is not an AIR of the form urn:air:ECOSYSTEM:TYPE:SOURCE:ID[@VERSION]")),
        };
        if !source.eq_ignore_ascii_case("civitai") {
            return Err(format!("the AIR `{s}` is from {source}: only civitai AIRs are understood; {FORMS}"));
        }
        let id = id.split(['+', '.']).next().unwrap_or(id);
        return Ok(match id.split_once('@') {
            Some((_, v)) => Input::CivitaiVersion(number(v, "version")?),
            None => Input::CivitaiModel(number(id, "model")?),
        });
    }
    if let Some(rest) = s.strip_prefix("https://").or_else(|| s.strip_prefix("http://")) {
        let (host_port, path_query) = rest.split_once('/').unwrap_or((rest, ""));
        let host = host_port.split(':').next().unwrap_or("").to_ascii_lowercase();
        let (path, query) = path_query.split_once('?').unwrap_or((path_query, ""));
        let path = path.split('#').next().unwrap_or(path);
        let segs: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        let query_version = query
            .split('&')
            .find_map(|kv| kv.strip_prefix("modelVersionId="))
            .map(|v| number(v.split('#').next().unwrap_or(v), "version"));
        if host == "civitai.com" || host.ends_with(".civitai.com") || host == "civitai.green" {
            return match segs.as_slice() {
                ["api", "download", "models", v, ..] => Ok(Input::CivitaiVersion(number(v, "version")?)),
                ["models", m, ..] => match query_version {
                    Some(v) => Ok(Input::CivitaiVersion(v?)),
                    None => Ok(Input::CivitaiModel(number(m, "model")?)),
                },
                _ => Err(format!("`{s}` is a Civitai address but not a model's page or download: {FORMS}")),
            };
        }
        if host == "huggingface.co" || host == "hf.co" || host == "www.huggingface.co" {
            return match segs.as_slice() {
                [owner, repo, "resolve" | "blob", rev, file @ ..] if !file.is_empty() => Ok(Input::HuggingFace {
                    repo: format!("{owner}/{repo}"),
                    rev: decode(rev),
                    path: file.iter().map(|p| decode(p)).collect::<Vec<_>>().join("/"),
                }),
                _ => Err(format!("`{s}` is a Hugging Face address but not a file's (…/blob/REVISION/FILE): {FORMS}")),
            };
        }
        return Err(format!("`{host}` is neither Civitai nor Hugging Face: {FORMS} (any other URL: use \"From URL\")"));
    }
    // owner/repo/path/to/file.ext
    let segs: Vec<&str> = s.split('/').collect();
    if segs.len() >= 3 && segs.iter().all(|p| !p.is_empty() && *p != ".." && !p.contains(char::is_whitespace)) {
        return Ok(Input::HuggingFace {
            repo: format!("{}/{}", segs[0], segs[1]),
            rev: "main".into(),
            path: segs[2..].join("/"),
        });
    }
    Err(format!("cannot tell what `{s}` is: {FORMS}"))
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned()
}

/// Where the sites are (overridable for tests and mirrors: `CIVITAI_ENDPOINT`, `HF_ENDPOINT`).
#[derive(Debug, Clone)]
pub struct Sites {
    pub civitai: String,
    pub hf: String,
    pub tokens: Vec<Token>,
}

/// A model, resolved: what is fetched, from where, to which kind of folder.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Resolved {
    pub source: String,
    /// The model's name and version as the site shows them.
    pub name: String,
    pub version: Option<String>,
    /// The site's type (Civitai: Checkpoint, LORA, …), if it says.
    pub kind: Option<String>,
    pub base_model: Option<String>,
    /// Our category for it (`checkpoints`, `lora`…), when the type tells.
    pub category: Option<String>,
    pub file: String,
    pub size: Option<u64>,
    pub sha256: Option<String>,
    pub url: String,
    pub preview: Option<String>,
    /// The model's page, to link to.
    pub page: String,
}

/// Civitai's model types → our categories (Forge's folders).
pub fn category_of_civitai(kind: &str) -> Option<&'static str> {
    Some(match kind.to_ascii_lowercase().as_str() {
        "checkpoint" => "checkpoints",
        "lora" | "locon" | "dora" | "lycoris" => "lora",
        "vae" => "vae",
        "textualinversion" => "embeddings",
        "controlnet" => "controlnet",
        "upscaler" => "upscalers",
        _ => return None,
    })
}

/// A file of a Hugging Face repository, by its name and path: a guess the user can change.
fn category_of_hf(path: &str) -> &'static str {
    let p = path.to_ascii_lowercase();
    if p.contains("lora") {
        "lora"
    } else if p.contains("vae") {
        "vae"
    } else if p.contains("controlnet") || p.contains("control_") {
        "controlnet"
    } else if p.contains("esrgan") || p.contains("upscale") {
        "upscalers"
    } else if p.contains("text_encoder") || p.contains("t5xxl") || p.contains("clip_l") {
        "text_encoder"
    } else {
        "checkpoints"
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .max_redirects(0)
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .user_agent(concat!("gpubox/", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}

fn token<'a>(tokens: &'a [Token], url: &str) -> Option<&'a str> {
    let host = host_of(url)?;
    tokens.iter().find(|t| t.hosts.iter().any(|h| h.eq_ignore_ascii_case(&host))).map(|t| t.value.as_str())
}

#[derive(Deserialize, Default)]
struct CivFileMeta {
    format: Option<String>,
    size: Option<String>,
    fp: Option<String>,
}

#[derive(Deserialize)]
struct CivFile {
    id: Option<u64>,
    #[serde(default)]
    metadata: CivFileMeta,
    name: String,
    #[serde(rename = "sizeKB")]
    size_kb: Option<f64>,
    #[serde(rename = "type")]
    kind: Option<String>,
    primary: Option<bool>,
    #[serde(default)]
    hashes: std::collections::HashMap<String, String>,
    #[serde(rename = "downloadUrl")]
    download_url: Option<String>,
}

#[derive(Deserialize)]
struct CivImage {
    url: String,
    #[serde(rename = "type")]
    kind: Option<String>,
}

#[derive(Deserialize)]
struct CivModelRef {
    name: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
}

#[derive(Deserialize)]
struct CivVersion {
    id: u64,
    #[serde(rename = "modelId")]
    model_id: Option<u64>,
    name: Option<String>,
    #[serde(rename = "baseModel")]
    base_model: Option<String>,
    model: Option<CivModelRef>,
    #[serde(default)]
    files: Vec<CivFile>,
    #[serde(default)]
    images: Vec<CivImage>,
    #[serde(rename = "downloadUrl")]
    download_url: Option<String>,
}

#[derive(Deserialize)]
struct CivModel {
    id: u64,
    name: String,
    #[serde(rename = "type")]
    kind: Option<String>,
    #[serde(rename = "modelVersions", default)]
    versions: Vec<CivVersion>,
}

fn get_json<T: serde::de::DeserializeOwned>(sites: &Sites, url: &str, what: &str) -> Result<T, String> {
    let mut req = agent().get(url).header("Accept", "application/json");
    if let Some(t) = token(&sites.tokens, url) {
        req = req.header("Authorization", &format!("Bearer {t}"));
    }
    let mut resp = req.call().map_err(|e| format!("cannot reach {}: {e}", host_of(url).unwrap_or_default()))?;
    let status = resp.status().as_u16();
    match status {
        200 => {}
        404 => return Err(format!("{what} does not exist (404)")),
        // (Only Civitai's API is asked for JSON.)
        401 | 403 => return Err(login_needed(url, status, true)),
        _ => return Err(format!("{} answered {status} for {what}", host_of(url).unwrap_or_default())),
    }
    let body = resp
        .body_mut()
        .with_config()
        .limit(8 << 20)
        .read_to_string()
        .map_err(|e| format!("cannot read the answer: {e}"))?;
    serde_json::from_str(&body)
        .map_err(|e| format!("{} answered something unexpected for {what}: {e}", host_of(url).unwrap_or_default()))
}

/// What to do when a site asks for a login.
pub fn login_needed(url: &str, status: u16, civitai: bool) -> String {
    let host = host_of(url).unwrap_or_default();
    if civitai && status == 403 {
        "Civitai refused it (403): it may be in early access (downloadable only by those who paid for it) or need a login. Without a token: create an API key on civitai.com (Account settings → API Keys), then paste it into the token field here, or set CIVITAI_TOKEN in the template's environment variables for every instance".to_string()
    } else if civitai {
        format!("Civitai refused it ({status}): its creator requires a login to download it. Create an API key on civitai.com (Account settings → API Keys), then paste it into the token field here, or set CIVITAI_TOKEN in the template's environment variables for every instance")
    } else {
        format!("{host} refused it ({status}): the repository may be gated or private. Accept its licence on its page, create a read token (huggingface.co → Settings → Access Tokens), then paste it into the token field here, or set HF_TOKEN in the template's environment variables")
    }
}

/// What Civitai knows of a file by its SHA-256 (`GET /api/v1/model-versions/by-hash/{hash}`):
/// `None` when it knows nothing (404).
pub fn by_hash(sites: &Sites, sha256: &str) -> Result<Option<Resolved>, String> {
    let url = format!("{}/api/v1/model-versions/by-hash/{sha256}", sites.civitai.trim_end_matches('/'));
    match get_json::<CivVersion>(sites, &url, &format!("the file with SHA-256 {sha256}")) {
        Ok(ver) => civitai(sites, ver, None, &Pick::default()).map(Some),
        Err(e) if e.ends_with("does not exist (404)") => Ok(None),
        Err(e) => Err(e),
    }
}

/// Asks the site about `input` (`pick`: which of a Civitai version's files).
pub fn resolve(sites: &Sites, input: &Input, pick: &Pick) -> Result<Resolved, String> {
    match input {
        Input::CivitaiVersion(v) => {
            let url = format!("{}/api/v1/model-versions/{v}", sites.civitai.trim_end_matches('/'));
            let ver: CivVersion = get_json(sites, &url, &format!("Civitai model version {v}"))?;
            civitai(sites, ver, None, pick)
        }
        Input::CivitaiModel(m) => {
            let url = format!("{}/api/v1/models/{m}", sites.civitai.trim_end_matches('/'));
            let mut model: CivModel = get_json(sites, &url, &format!("Civitai model {m}"))?;
            if model.versions.is_empty() {
                return Err(format!("Civitai model {m} has no version to download"));
            }
            // The newest version comes first.
            let ver = model.versions.remove(0);
            civitai(sites, ver, Some((model.id, model.name, model.kind)), pick)
        }
        Input::HuggingFace { repo, rev, path } => huggingface(sites, repo, rev, path),
    }
}

fn civitai(
    sites: &Sites,
    ver: CivVersion,
    model: Option<(u64, String, Option<String>)>,
    pick: &Pick,
) -> Result<Resolved, String> {
    let (model_id, name, kind) = match model {
        Some((id, name, kind)) => (Some(id), name, kind),
        None => (
            ver.model_id,
            ver.model.as_ref().and_then(|m| m.name.clone()).unwrap_or_else(|| format!("version {}", ver.id)),
            ver.model.as_ref().and_then(|m| m.kind.clone()),
        ),
    };
    // The file the link names; else the primary file, else the first model file, else the first.
    let same = |want: &Option<String>, have: &Option<String>| {
        want.as_ref().is_none_or(|w| have.as_ref().is_some_and(|h| h.eq_ignore_ascii_case(w)))
    };
    let named = |f: &&CivFile| match pick.file_id {
        Some(id) => f.id == Some(id),
        None => {
            (pick.kind.is_some() || pick.format.is_some() || pick.size.is_some() || pick.fp.is_some())
                && same(&pick.kind, &f.kind)
                && same(&pick.format, &f.metadata.format)
                && same(&pick.size, &f.metadata.size)
                && same(&pick.fp, &f.metadata.fp)
        }
    };
    if (pick.file_id.is_some() || pick.kind.is_some()) && !ver.files.iter().any(|f| named(&f)) {
        return Err(format!("Civitai model version {} has no file like the one the link names", ver.id));
    }
    let file = ver
        .files
        .iter()
        .find(named)
        .or_else(|| ver.files.iter().find(|f| f.primary == Some(true)))
        .or_else(|| ver.files.iter().find(|f| f.kind.as_deref() == Some("Model")))
        .or(ver.files.first())
        .ok_or_else(|| format!("Civitai model version {} has no file", ver.id))?;
    let url = file
        .download_url
        .clone()
        .or(ver.download_url.clone())
        .unwrap_or_else(|| format!("{}/api/download/models/{}", sites.civitai.trim_end_matches('/'), ver.id));
    let sha256 = file
        .hashes
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("SHA256"))
        .map(|(_, v)| v.to_ascii_lowercase())
        .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()));
    let preview = ver.images.iter().find(|i| i.kind.as_deref().is_none_or(|k| k == "image")).map(|i| i.url.clone());
    let page = match model_id {
        Some(m) => format!("https://civitai.com/models/{m}?modelVersionId={}", ver.id),
        None => format!("https://civitai.com/api/download/models/{}", ver.id),
    };
    Ok(Resolved {
        source: "civitai".into(),
        name,
        version: ver.name.clone(),
        category: kind.as_deref().and_then(category_of_civitai).map(str::to_string),
        kind,
        base_model: ver.base_model.clone(),
        file: file.name.clone(),
        size: file.size_kb.map(|kb| (kb * 1024.0).round() as u64),
        sha256,
        url,
        preview,
        page,
    })
}

fn huggingface(sites: &Sites, repo: &str, rev: &str, path: &str) -> Result<Resolved, String> {
    let enc = |p: &str| p.split('/').map(crate::http::coding::encode).collect::<Vec<_>>().join("/");
    let url = format!("{}/{repo}/resolve/{}/{}", sites.hf.trim_end_matches('/'), enc(rev), enc(path));
    let mut req = agent().head(&url);
    if let Some(t) = token(&sites.tokens, &url) {
        req = req.header("Authorization", &format!("Bearer {t}"));
    }
    let mut resp = req.call().map_err(|e| format!("cannot reach {}: {e}", host_of(&url).unwrap_or_default()))?;
    // A file that is not in LFS answers with a redirect on the same site (a relative
    // `/api/resolve-cache/…`, or a renamed repository's new name): followed, with the token, as
    // huggingface_hub does; one to another host (the CDN) is not.
    for _ in 0..3 {
        let status = resp.status().as_u16();
        let linked = resp.headers().contains_key("x-linked-size");
        let loc = resp.headers().get("location").and_then(|v| v.to_str().ok()).map(str::to_string);
        match (status, linked, loc) {
            (300..=399, false, Some(loc)) if loc.starts_with('/') && !loc.starts_with("//") => {
                let (scheme, rest) = url.split_once("://").unwrap_or(("https", &url));
                let next = format!("{scheme}://{}{loc}", rest.split('/').next().unwrap_or(""));
                let mut again = agent().head(&next);
                if let Some(t) = token(&sites.tokens, &next) {
                    again = again.header("Authorization", &format!("Bearer {t}"));
                }
                resp = again.call().map_err(|e| format!("cannot reach {}: {e}", host_of(&next).unwrap_or_default()))?;
            }
            _ => break,
        }
    }
    let status = resp.status().as_u16();
    let h = |k: &str| resp.headers().get(k).and_then(|v| v.to_str().ok()).map(str::to_string);
    match status {
        200..=399 => {}
        404 => {
            return Err(match h("x-error-code").as_deref() {
                Some("RepoNotFound") => {
                    format!("Hugging Face has no repository {repo} (or it is private: then a token is needed)")
                }
                Some("RevisionNotFound") => format!("{repo} has no revision {rev}"),
                _ => format!("{repo} has no file {path} at {rev} (404)"),
            })
        }
        401 | 403 => return Err(login_needed(&url, status, false)),
        _ => return Err(format!("{} answered {status} for {url}", host_of(&url).unwrap_or_default())),
    }
    // LFS files: the SHA-256 is the linked ETag and the size the linked size; others: the size.
    let sha256 = h("x-linked-etag")
        .map(|e| e.trim_matches('"').trim_start_matches("W/").trim_matches('"').to_ascii_lowercase())
        .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()));
    // (A redirect's Content-Length is its own body's, not the file's.)
    let size = h("x-linked-size")
        .or_else(|| if status == 200 { h("content-length") } else { None })
        .and_then(|v| v.parse().ok());
    let file = path.rsplit('/').next().unwrap_or(path).to_string();
    Ok(Resolved {
        source: "huggingface".into(),
        name: format!("{repo}/{path}"),
        version: h("x-repo-commit").map(|c| c.chars().take(12).collect()),
        kind: None,
        base_model: None,
        category: Some(category_of_hf(path).into()),
        file,
        size,
        sha256,
        url,
        preview: None,
        page: format!("https://huggingface.co/{repo}/blob/{}/{}", enc(rev), enc(path)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pasted_form_is_understood() {
        let hf = |repo: &str, rev: &str, path: &str| Input::HuggingFace {
            repo: repo.into(),
            rev: rev.into(),
            path: path.into(),
        };
        for (s, want) in [
            ("https://civitai.com/models/58390/detail-tweaker-lora?modelVersionId=62833", Input::CivitaiVersion(62833)),
            ("https://civitai.com/models/58390/detail-tweaker-lora", Input::CivitaiModel(58390)),
            ("https://civitai.com/models/58390", Input::CivitaiModel(58390)),
            (
                "  https://civitai.com/api/download/models/62833?type=Model&format=SafeTensor ",
                Input::CivitaiVersion(62833),
            ),
            ("https://civitai.green/models/1?modelVersionId=2", Input::CivitaiVersion(2)),
            ("urn:air:sdxl:lora:civitai:328553@368189", Input::CivitaiVersion(368189)),
            ("air:sd1:checkpoint:civitai:4201@130072+1234.safetensors", Input::CivitaiVersion(130072)),
            ("urn:air:sdxl:lora:civitai:328553", Input::CivitaiModel(328553)),
            (
                "https://huggingface.co/stabilityai/stable-diffusion-xl-base-1.0/blob/main/sd_xl_base_1.0.safetensors",
                hf("stabilityai/stable-diffusion-xl-base-1.0", "main", "sd_xl_base_1.0.safetensors"),
            ),
            (
                "https://huggingface.co/owner/repo/resolve/v1.0/sub%20dir/x.safetensors?download=true",
                hf("owner/repo", "v1.0", "sub dir/x.safetensors"),
            ),
            (
                "owner/repo/vae/diffusion_pytorch_model.safetensors",
                hf("owner/repo", "main", "vae/diffusion_pytorch_model.safetensors"),
            ),
            ("civitai.com/models/58390?modelVersionId=62833", Input::CivitaiVersion(62833)),
            ("huggingface.co/owner/repo/blob/main/x.safetensors", hf("owner/repo", "main", "x.safetensors")),
        ] {
            assert_eq!(parse_input(s), Ok(want), "{s}");
        }
        for (s, says) in [
            ("", "nothing was pasted"),
            ("https://example.com/x.safetensors", "neither Civitai nor Hugging Face"),
            ("https://civitai.com/user/someone", "not a model's page"),
            ("https://civitai.com/models/abc", "not a model number"),
            ("https://huggingface.co/owner/repo", "not a file's"),
            ("urn:air:sdxl:lora:huggingface:x@y", "only civitai AIRs"),
            ("just words", "cannot tell"),
            ("a/../b", "cannot tell"),
        ] {
            let e = parse_input(s).unwrap_err();
            assert!(e.contains(says), "{s}: {e}");
        }
    }

    #[test]
    fn a_link_names_one_of_a_versions_files() {
        assert_eq!(pick_of("urn:air:sd1:checkpoint:civitai:4201@130072+1234.safetensors").file_id, Some(1234));
        let p = pick_of("https://civitai.com/api/download/models/62833?type=VAE&format=SafeTensor&fp=fp32");
        assert_eq!(
            (p.kind.as_deref(), p.format.as_deref(), p.fp.as_deref(), p.size),
            (Some("VAE"), Some("SafeTensor"), Some("fp32"), None)
        );
        assert_eq!(pick_of("https://civitai.com/models/1"), Pick::default());
    }

    #[test]
    fn civitai_types_map_to_forge_folders() {
        assert_eq!(category_of_civitai("Checkpoint"), Some("checkpoints"));
        assert_eq!(category_of_civitai("LORA"), Some("lora"));
        assert_eq!(category_of_civitai("LoCon"), Some("lora"));
        assert_eq!(category_of_civitai("DoRA"), Some("lora"));
        assert_eq!(category_of_civitai("TextualInversion"), Some("embeddings"));
        assert_eq!(category_of_civitai("Controlnet"), Some("controlnet"));
        assert_eq!(category_of_civitai("Upscaler"), Some("upscalers"));
        assert_eq!(category_of_civitai("VAE"), Some("vae"));
        assert_eq!(category_of_civitai("Wildcards"), None);
    }
}
