//! The provisioning manifest: models by category, Forge extensions, Python packages, shell steps.
//!
//! ```toml
//! [models.checkpoints.sdxl]
//! source = "huggingface"             # huggingface | civitai | url
//! repo = "stabilityai/stable-diffusion-xl-base-1.0"
//! file = "sd_xl_base_1.0.safetensors"
//! revision = "main"                  # optional
//! sha256 = "31e35c80fc4829d14f90153f4c74cd59c90b779f6afe05a74cd6120b893f7e5b"  # optional
//!
//! [models.lora.detail]
//! source = "civitai"
//! version_id = 62833                 # the file name comes from Civitai
//!
//! [models.upscalers.x4]
//! source = "url"
//! url = "https://example.com/4x.pth"
//! filename = "4x.pth"                # optional
//!
//! [[extensions]]
//! url = "https://github.com/Mikubill/sd-webui-controlnet"
//! ref = "main"                       # branch, tag or commit; optional
//!
//! [python]
//! packages = ["insightface==0.7.3"]
//!
//! [[steps]]
//! run = "echo all set"
//! ```

use std::collections::BTreeMap;

use serde::Deserialize;

/// Manifest categories and the folder (under the models folder) Forge reads each from.
pub const CATEGORIES: &[(&str, &str)] = &[
    ("checkpoints", "Stable-diffusion"),
    ("stable-diffusion", "Stable-diffusion"),
    ("lora", "Lora"),
    ("lycoris", "Lora"),
    ("vae", "VAE"),
    ("vae-approx", "VAE-approx"),
    ("controlnet", "ControlNet"),
    ("controlnet-preprocessor", "ControlNetPreprocessor"),
    ("esrgan", "ESRGAN"),
    ("upscalers", "ESRGAN"),
    ("realesrgan", "RealESRGAN"),
    ("gfpgan", "GFPGAN"),
    ("codeformer", "Codeformer"),
    ("embeddings", "embeddings"),
    ("hypernetworks", "hypernetworks"),
    ("text_encoder", "text_encoder"),
    ("clip", "text_encoder"),
    ("diffusers", "diffusers"),
    ("unet", "unet"),
];

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    #[serde(default)]
    pub models: BTreeMap<String, BTreeMap<String, Model>>,
    #[serde(default)]
    pub extensions: Vec<Extension>,
    #[serde(default)]
    pub python: Python,
    #[serde(default)]
    pub steps: Vec<Step>,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct Model {
    pub source: String,
    pub repo: Option<String>,
    pub file: Option<String>,
    pub revision: Option<String>,
    pub version_id: Option<u64>,
    pub url: Option<String>,
    pub filename: Option<String>,
    pub sha256: Option<String>,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct Extension {
    pub url: String,
    #[serde(rename = "ref")]
    pub git_ref: Option<String>,
    /// The folder name under the extensions folder (default: the repository's name).
    pub name: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Python {
    #[serde(default)]
    pub packages: Vec<String>,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct Step {
    pub run: String,
}

/// A model resolved to where it comes from and where it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// `category/name`, as the manifest says.
    pub label: String,
    pub url: String,
    /// The folder under the models folder.
    pub folder: String,
    pub filename: Option<String>,
    pub sha256: Option<String>,
}

pub fn parse(text: &str, source: &str) -> Result<Manifest, String> {
    toml::from_str(text).map_err(|e| {
        let at = e.span().map(|s| {
            let line = text[..s.start.min(text.len())].matches('\n').count() + 1;
            format!(":{line}")
        });
        format!("{source}{}: {}", at.unwrap_or_default(), e.message())
    })
}

/// Every model with its URL and folder; every problem at once, each naming its entry. Long
/// because every kind of source is resolved in one match, next to the others.
pub fn resolve(m: &Manifest, hf_endpoint: &str) -> Result<Vec<Resolved>, Vec<String>> {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for (category, entries) in &m.models {
        let Some((_, folder)) = CATEGORIES.iter().find(|(c, _)| c.eq_ignore_ascii_case(category)) else {
            let valid: Vec<&str> = CATEGORIES.iter().map(|(c, _)| *c).collect();
            errors.push(format!("[models.{category}]: unknown category; the valid ones are: {}", valid.join(", ")));
            continue;
        };
        for (name, model) in entries {
            let label = format!("{category}/{name}");
            let need = |field: &Option<String>, what: &str, errors: &mut Vec<String>| -> Option<String> {
                match field.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
                    Some(v) => Some(v.to_string()),
                    None => {
                        errors.push(format!("[models.{category}.{name}]: source \"{}\" needs `{what}`", model.source));
                        None
                    }
                }
            };
            let url = match model.source.as_str() {
                "huggingface" | "hf" => {
                    let repo = need(&model.repo, "repo", &mut errors);
                    let file = need(&model.file, "file", &mut errors);
                    let rev = model.revision.clone().unwrap_or_else(|| "main".into());
                    match (repo, file) {
                        (Some(repo), Some(file)) => Some(format!(
                            "{}/{repo}/resolve/{}/{}",
                            hf_endpoint.trim_end_matches('/'),
                            crate::http::coding::encode(&rev),
                            file.split('/').map(crate::http::coding::encode).collect::<Vec<_>>().join("/")
                        )),
                        _ => None,
                    }
                }
                "civitai" => match model.version_id {
                    Some(id) => Some(format!("https://civitai.com/api/download/models/{id}")),
                    None => {
                        errors.push(format!("[models.{category}.{name}]: source \"civitai\" needs `version_id` (the number after modelVersionId= on the model's page)"));
                        None
                    }
                },
                "url" => match need(&model.url, "url", &mut errors) {
                    Some(u) if u.starts_with("https://") || u.starts_with("http://") => Some(u),
                    Some(u) => {
                        errors.push(format!("[models.{category}.{name}]: `{u}` is not an http(s) URL"));
                        None
                    }
                    None => None,
                },
                other => {
                    errors.push(format!(
                        "[models.{category}.{name}]: unknown source \"{other}\"; use \"huggingface\", \"civitai\" or \"url\""
                    ));
                    None
                }
            };
            if let Some(sha) = &model.sha256 {
                if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
                    errors.push(format!("[models.{category}.{name}]: `sha256` must be 64 hex digits"));
                }
            }
            let filename = model.filename.clone().or_else(|| {
                (model.source == "huggingface" || model.source == "hf")
                    .then(|| model.file.as_deref().and_then(|f| f.rsplit('/').next()).map(String::from))
                    .flatten()
            });
            if let Some(f) = &filename {
                if super::download::safe_filename(f).is_none() {
                    errors.push(format!("[models.{category}.{name}]: `{f}` is not a plain file name"));
                }
            }
            if let Some(url) = url {
                out.push(Resolved { label, url, folder: folder.to_string(), filename, sha256: model.sha256.clone() });
            }
        }
    }
    for e in &m.extensions {
        let remote = ["https://", "http://", "git@", "ssh://", "file://"];
        if !remote.iter().any(|p| e.url.starts_with(p)) {
            errors.push(format!("[[extensions]] `{}`: not a git URL (https://, ssh://, git@ or file://)", e.url));
        }
        // It becomes a folder under the extensions folder: `..` or a path would clone elsewhere.
        let name = extension_name(e);
        if super::download::safe_filename(&name).is_none_or(|n| n != name) {
            errors
                .push(format!("[[extensions]] `{}`: \"{name}\" is not a plain folder name; set `name` to one", e.url));
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// The folder an extension is cloned into.
pub fn extension_name(e: &Extension) -> String {
    e.name.clone().unwrap_or_else(|| {
        e.url
            .trim_end_matches('/')
            .trim_end_matches(".git")
            .rsplit(['/', ':'])
            .next()
            .unwrap_or("extension")
            .to_string()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_each_source() {
        let m = parse(
            r#"
[models.checkpoints.sdxl]
source = "huggingface"
repo = "stabilityai/sdxl"
file = "sub dir/sd_xl.safetensors"
[models.lora.detail]
source = "civitai"
version_id = 62833
[models.upscalers.x4]
source = "url"
url = "https://example.com/4x.pth"
filename = "4x.pth"
[[extensions]]
url = "https://github.com/Mikubill/sd-webui-controlnet.git"
"#,
            "m.toml",
        )
        .unwrap();
        let r = resolve(&m, "https://huggingface.co").unwrap();
        assert_eq!(r[0].url, "https://huggingface.co/stabilityai/sdxl/resolve/main/sub%20dir/sd_xl.safetensors");
        assert_eq!((r[0].folder.as_str(), r[0].filename.as_deref()), ("Stable-diffusion", Some("sd_xl.safetensors")));
        assert_eq!(r[1].url, "https://civitai.com/api/download/models/62833");
        assert_eq!((r[1].folder.as_str(), r[1].filename.as_deref()), ("Lora", None));
        assert_eq!(r[2].folder, "ESRGAN");
        assert_eq!(extension_name(&m.extensions[0]), "sd-webui-controlnet");
    }

    #[test]
    fn problems_name_their_entries() {
        let m = parse(
            "[models.checkpoint.a]\nsource = \"url\"\nurl = \"https://x/a\"\n[models.lora.b]\nsource = \"civitai\"\n[models.vae.c]\nsource = \"hf\"\nrepo = \"r\"\n",
            "m.toml",
        )
        .unwrap();
        let errors = resolve(&m, "https://huggingface.co").unwrap_err();
        assert!(errors[0].contains("[models.checkpoint]") && errors[0].contains("checkpoints, "), "{errors:?}");
        assert!(errors.iter().any(|e| e.contains("[models.lora.b]") && e.contains("version_id")), "{errors:?}");
        assert!(errors.iter().any(|e| e.contains("[models.vae.c]") && e.contains("`file`")), "{errors:?}");
        let e = parse("[models.lora.x]\nsource = \"url\"\nurll = \"u\"\n", "m.toml").unwrap_err();
        assert!(e.starts_with("m.toml:3:") && e.contains("urll"), "{e}");
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        fn text() -> impl Strategy<Value = String> {
            "[a-z_\\[\\]=\"./: \n0-9-]{0,200}"
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

            /// Any text parses or is refused with a message, never a panic.
            #[test]
            fn any_text(t in text()) {
                let _ = parse(&t, "m.toml").map(|m| resolve(&m, "https://huggingface.co"));
            }

            /// Whatever names a manifest gives, what it resolves to stays in its folders: a file
            /// name is one plain name, an extension's folder one plain name.
            #[test]
            fn resolved_names_stay_in_their_folders(
                filename in "\\PC{0,12}",
                file in "\\PC{0,12}",
                ext_url in "(https://github.com/|git@host:|file:///)?\\PC{0,16}",
                ext_name in proptest::option::of("\\PC{0,8}"),
            ) {
                let q = |s: &str| toml::Value::String(s.to_string()).to_string();
                let text = format!(
                    "[models.lora.a]\nsource = \"url\"\nurl = \"https://x.example/a\"\nfilename = {}\n\
                     [models.vae.b]\nsource = \"huggingface\"\nrepo = \"o/r\"\nfile = {}\n\
                     [[extensions]]\nurl = {}\n{}",
                    q(&filename), q(&file), q(&ext_url),
                    ext_name.as_ref().map(|n| format!("name = {}\n", q(n))).unwrap_or_default(),
                );
                let m = parse(&text, "m.toml").unwrap();
                if let Ok(resolved) = resolve(&m, "https://huggingface.co") {
                    for r in resolved {
                        if let Some(f) = &r.filename {
                            prop_assert!(!f.contains('/') && f != ".." && f != "." && !f.is_empty(), "{f:?}");
                        }
                    }
                    let n = extension_name(&m.extensions[0]);
                    prop_assert!(!n.contains('/') && n != ".." && n != "." && !n.is_empty(), "{n:?}");
                }
            }
        }
    }
}
