//! The Models view through the real binary against a stand-in of Civitai's and Hugging Face's APIs
//! (tests/fixtures/model_hub.py: their JSON shapes and headers) that redirects downloads to a CDN
//! on another host name (tests/fixtures/dlserver.py): links of every form resolved, the model in
//! its Forge folder with its hash checked and its preview as `<name>.preview.png`, tokens only
//! to their own site, and the errors a user meets, each saying what to do.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::files::Files;
use crate::supervisor::free_port;
use crate::util::{fixture, Gpubox};

struct Hub {
    hub: Child,
    cdn: Child,
    port: u16,
    cdn_port: u16,
    /// What the stand-ins serve; removed with them.
    _root: tempfile::TempDir,
}

impl Drop for Hub {
    fn drop(&mut self) {
        for c in [&mut self.hub, &mut self.cdn] {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn bytes(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

fn hub() -> Hub {
    let root = tempfile::tempdir().unwrap();
    for (name, len, seed) in [
        ("add_detail.safetensors", 3_000_000, 1),
        ("early.safetensors", 100_000, 2),
        ("liar.safetensors", 100_000, 3),
        ("sd_xl_vae.safetensors", 200_000, 4),
        ("add_detail_fp32.safetensors", 150_000, 5),
    ] {
        std::fs::write(root.path().join(name), bytes(len, seed)).unwrap();
    }
    let img = image::RgbImage::from_fn(96, 64, |x, y| image::Rgb([x as u8 * 2, y as u8 * 3, 200]));
    image::DynamicImage::ImageRgb8(img)
        .save_with_format(root.path().join("preview.jpeg"), image::ImageFormat::Jpeg)
        .unwrap();
    let (port, cdn_port) = (free_port(), free_port());
    let cdn = Command::new("python3")
        .arg(fixture("dlserver.py"))
        .arg(cdn_port.to_string())
        .arg(root.path())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let hub = Command::new("python3")
        .arg(fixture("model_hub.py"))
        .args([port.to_string(), cdn_port.to_string()])
        .arg(root.path())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    for p in [port, cdn_port] {
        while std::net::TcpStream::connect(("127.0.0.1", p)).is_err() {
            assert!(Instant::now() < deadline, "the stand-ins did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    Hub { hub, cdn, port, cdn_port, _root: root }
}

/// The file manager with the stand-ins as Civitai and Hugging Face; `tokens`: with the
/// environment's CIVITAI_TOKEN and HF_TOKEN.
fn start(h: &Hub, tokens: bool) -> Files {
    let port = free_port();
    let civ = format!("CIVITAI_ENDPOINT=http://127.0.0.1:{}", h.port);
    // Another host than Civitai's (as in life): each token must go to its own site only.
    let hf = format!("HF_ENDPOINT=http://127.0.0.2:{}/hf", h.port);
    let mut prefix = vec!["env", "-u", "CIVITAI_TOKEN", "-u", "HF_TOKEN", "-u", "HUGGING_FACE_HUB_TOKEN", &civ, &hf];
    if tokens {
        prefix.extend(["CIVITAI_TOKEN=civ-secret", "HF_TOKEN=hf-secret"]);
    }
    let g = Gpubox::start_with(
        &prefix,
        &format!("[auth]\nusername = \"u\"\npassword = \"p\"\n\n[services.files]\napp = \"files\"\nport = {port}\n"),
    );
    g.wait_event(&format!("files: listening on 0.0.0.0:{port}"), Duration::from_secs(30));
    for d in ["Stable-diffusion", "Lora", "VAE"] {
        std::fs::create_dir_all(g.path("ws/forge/models").join(d)).unwrap();
    }
    let auth = format!("Basic {}", base64::Engine::encode(&base64::engine::general_purpose::STANDARD, "u:p"));
    let outside = g.dir.path().join("outside");
    Files { g, port, auth, outside, sent: std::cell::Cell::new(0) }
}

fn resolve(f: &Files, input: &str, token: Option<&str>) -> (u16, Value) {
    let r = f.json("POST", "/api/models/resolve", json!({ "input": input, "token": token }));
    (r.status, serde_json::from_slice(&r.body).unwrap_or(Value::Null))
}

/// Starts adding; waits for the job's end; returns (state, message).
fn add(f: &Files, model: &Value, category: &str, token: Option<&str>) -> (String, String) {
    wait_job(f, f.json("POST", "/api/models/add", json!({ "model": model, "category": category, "token": token })))
}

/// The job a 202 answer started, waited for: (state, message).
fn wait_job(f: &Files, started: crate::http::Response) -> (String, String) {
    assert_eq!(started.status, 202, "{}", started.text());
    let id = serde_json::from_slice::<Value>(&started.body).unwrap()["id"].as_u64().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let jobs: Value = serde_json::from_slice(&f.req("GET", "/api/jobs", &[], b"").body).unwrap();
        let job = jobs["jobs"].as_array().unwrap().iter().find(|j| j["id"] == id).unwrap().clone();
        if job["state"] != "running" {
            assert_eq!(job["kind"], "model");
            return (job["state"].as_str().unwrap().into(), job["message"].as_str().unwrap_or("").into());
        }
        assert!(Instant::now() < deadline, "the job did not end: {job}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn log(port: u16) -> Vec<Value> {
    let r = crate::http::request(port, "GET", "/log", &[], b"");
    r.text().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn a_civitai_link_lands_in_its_folder_checked_with_its_preview_and_the_token_stays_home() {
    let h = hub();
    let f = start(&h, true);
    let want = bytes(3_000_000, 1);
    let sha = {
        use sha2::Digest;
        sha2::Sha256::digest(&want).iter().map(|b| format!("{b:02x}")).collect::<String>()
    };
    // Every form of link to the same version.
    let (status, v) = resolve(&f, "https://civitai.com/models/58390/detail-tweaker-lora?modelVersionId=62833", None);
    assert_eq!(status, 200, "{v}");
    let m = v["model"].clone();
    assert_eq!(m["source"], "civitai");
    assert_eq!(m["name"], "Detail Tweaker LoRA");
    assert_eq!(m["kind"], "LORA");
    assert_eq!(m["category"], "lora");
    assert_eq!(m["file"], "add_detail.safetensors");
    assert_eq!(m["size"], 3_000_000);
    assert_eq!(m["sha256"], sha.as_str(), "Civitai's upper-case SHA256, lower-cased");
    assert_eq!(m["page"], "https://civitai.com/models/58390?modelVersionId=62833");
    assert_eq!(v["folder"], "forge/models/Lora");
    for other in [
        "https://civitai.com/models/58390",
        "urn:air:sd1:lora:civitai:58390@62833",
        "https://civitai.com/api/download/models/62833?type=Model&format=SafeTensor",
    ] {
        let (status, o) = resolve(&f, other, None);
        assert_eq!((status, &o["model"]), (200, &m), "{other}");
    }

    let (state, message) = add(&f, &m, "lora", None);
    assert_eq!(state, "done", "{message}");
    assert!(message.contains("saved /forge/models/Lora/add_detail.safetensors (SHA-256 checked)"), "{message}");
    let saved = f.g.path("ws/forge/models/Lora/add_detail.safetensors");
    assert_eq!(std::fs::read(&saved).unwrap(), want);
    // The preview, a JPEG on the site, as the PNG Forge's cards read.
    let preview = std::fs::read(f.g.path("ws/forge/models/Lora/add_detail.preview.png")).unwrap();
    let img = image::load_from_memory_with_format(&preview, image::ImageFormat::Png).unwrap();
    assert_eq!((img.width(), img.height()), (96, 64));

    // The Models view knows it: size, hash, source, preview; other categories are there, empty.
    let list: Value = serde_json::from_slice(&f.req("GET", "/api/models", &[], b"").body).unwrap();
    assert_eq!(list["root"], "forge/models");
    let lora = list["categories"].as_array().unwrap().iter().find(|c| c["id"] == "lora").unwrap();
    let file = &lora["files"][0];
    assert_eq!(file["name"], "add_detail.safetensors");
    assert_eq!(file["sha256"], sha.as_str());
    assert_eq!(file["source"], "civitai");
    assert_eq!(file["preview"], "forge/models/Lora/add_detail.preview.png");
    assert_eq!(lora["files"].as_array().unwrap().len(), 1, "the preview is not listed as a model");
    let emb = list["categories"].as_array().unwrap().iter().find(|c| c["id"] == "embeddings").unwrap();
    assert_eq!((emb["missing"].as_bool(), emb["files"].as_array().unwrap().len()), (Some(true), 0));

    // The token went to Civitai and to nobody else: not to the CDN the download was sent on to.
    let api = log(h.port);
    let dl: Vec<&Value> = api.iter().filter(|e| e["path"] == "/api/download/models/62833").collect();
    assert!(!dl.is_empty() && dl.iter().all(|e| e["authorization"] == "Bearer civ-secret"), "{api:?}");
    let cdn = crate::http::request(h.cdn_port, "GET", "/log", &[], b"").text();
    assert!(cdn.contains("add_detail.safetensors") && cdn.contains("preview.jpeg"), "{cdn}");
    assert!(!cdn.contains("secret"), "a token reached the CDN: {cdn}");

    // A download link that names another of the version's files (Civitai's own links carry
    // type, format and fp): that file, not the primary one.
    let (status, v) =
        resolve(&f, "https://civitai.com/api/download/models/62833?type=Model&format=SafeTensor&fp=fp32", None);
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        (v["model"]["file"].as_str(), v["model"]["size"].as_u64()),
        (Some("add_detail_fp32.safetensors"), Some(150_000))
    );
    let (state, message) = add(&f, &v["model"], "lora", None);
    assert_eq!(state, "done", "{message}");
    assert_eq!(std::fs::read(f.g.path("ws/forge/models/Lora/add_detail_fp32.safetensors")).unwrap(), bytes(150_000, 5));
    let (status, v) = resolve(&f, "https://civitai.com/api/download/models/62833?type=VAE", None);
    assert_eq!(status, 502);
    assert!(v["error"]["message"].as_str().unwrap().contains("no file like the one the link names"), "{v}");

    // Hugging Face: `owner/repo/file`, its hash from X-Linked-Etag; a VAE by its name.
    let (status, v) = resolve(&f, "owner/repo/sd_xl_vae.safetensors", None);
    assert_eq!(status, 200, "{v}");
    let m = v["model"].clone();
    assert_eq!(
        (m["source"].as_str(), m["category"].as_str(), m["size"].as_u64()),
        (Some("huggingface"), Some("vae"), Some(200_000))
    );
    assert_eq!(m["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(m["version"], "4f7e9a2b1c3d", "the commit it resolved to");
    let (state, message) = add(&f, &m, "vae", None);
    assert_eq!(state, "done", "{message}");
    assert_eq!(std::fs::read(f.g.path("ws/forge/models/VAE/sd_xl_vae.safetensors")).unwrap(), bytes(200_000, 4));
    let hf = log(h.port).into_iter().filter(|e| e["path"].as_str().unwrap().starts_with("/hf/")).collect::<Vec<_>>();
    assert!(hf.iter().all(|e| e["authorization"] == "Bearer hf-secret"), "HF_TOKEN to Hugging Face: {hf:?}");
    assert!(!crate::http::request(h.cdn_port, "GET", "/log", &[], b"").text().contains("secret"));
}

#[test]
fn a_model_already_there_is_hashed_and_found_on_civitai_by_its_hash() {
    let h = hub();
    let f = start(&h, false);
    let lora = f.g.path("ws/forge/models/Lora");
    // Uploaded by hand under a name of the user's: the same bytes as Civitai's version 62833.
    std::fs::write(lora.join("mine.safetensors"), bytes(3_000_000, 1)).unwrap();
    std::fs::write(lora.join("unknown.safetensors"), b"nobody made this").unwrap();
    let identify = |path: &str| wait_job(&f, f.json("POST", "/api/models/identify", json!({ "path": path })));
    let (state, message) = identify("forge/models/Lora/mine.safetensors");
    assert_eq!(state, "done", "{message}");
    assert!(message.contains("it is Detail Tweaker LoRA (v1.0) on Civitai"), "{message}");
    assert!(message.contains("preview /forge/models/Lora/mine.preview.png"), "{message}");
    let (state, message) = identify("forge/models/Lora/unknown.safetensors");
    assert_eq!(state, "done");
    assert!(message.contains("Civitai does not know it"), "{message}");
    let list: Value = serde_json::from_slice(&f.req("GET", "/api/models", &[], b"").body).unwrap();
    let files = list["categories"].as_array().unwrap().iter().find(|c| c["id"] == "lora").unwrap()["files"].clone();
    let mine = files.as_array().unwrap().iter().find(|x| x["name"] == "mine.safetensors").unwrap();
    assert_eq!(mine["source"], "civitai");
    assert_eq!(mine["page"], "https://civitai.com/models/58390?modelVersionId=62833");
    assert_eq!(mine["preview"], "forge/models/Lora/mine.preview.png");
    let unknown = files.as_array().unwrap().iter().find(|x| x["name"] == "unknown.safetensors").unwrap();
    assert_eq!(unknown["sha256"].as_str().unwrap().len(), 64);
    assert!(unknown["source"].is_null());
    // A changed file is not taken for the one that was hashed.
    std::fs::write(lora.join("unknown.safetensors"), b"changed since, another size").unwrap();
    let list: Value = serde_json::from_slice(&f.req("GET", "/api/models", &[], b"").body).unwrap();
    let files = list["categories"].as_array().unwrap().iter().find(|c| c["id"] == "lora").unwrap()["files"].clone();
    assert!(files.as_array().unwrap().iter().find(|x| x["name"] == "unknown.safetensors").unwrap()["sha256"].is_null());
    // Paths that are not model files.
    for (path, status) in [("forge/models/Lora", 400), ("forge/models/Lora/none.safetensors", 404), ("../x", 400)] {
        let r = f.json("POST", "/api/models/identify", json!({ "path": path }));
        assert_eq!(r.status, status, "{path}: {}", r.text());
    }
}

#[test]
fn what_goes_wrong_says_what_to_do_and_leaves_nothing() {
    let h = hub();
    let f = start(&h, false);
    let lora = f.g.path("ws/forge/models/Lora");
    // Links that are not understood, and models that do not exist.
    let (status, v) = resolve(&f, "https://example.com/model.safetensors", None);
    assert_eq!(status, 400);
    assert!(v["error"]["message"].as_str().unwrap().contains("From URL"), "{v}");
    let (status, v) = resolve(&f, "https://civitai.com/models/1?modelVersionId=424242", None);
    assert_eq!(status, 502);
    assert!(
        v["error"]["message"].as_str().unwrap().contains("Civitai model version 424242 does not exist (404)"),
        "{v}"
    );
    let (status, v) = resolve(&f, "https://huggingface.co/owner/gated/blob/main/x.safetensors", None);
    assert_eq!(status, 502);
    assert!(v["error"]["message"].as_str().unwrap().contains("HF_TOKEN"), "a gated repository asks for the token: {v}");

    // A token pasted for the other site is refused before it goes anywhere.
    let (status, v) = resolve(&f, "owner/repo/sd_xl_vae.safetensors", Some("civ-secret"));
    assert_eq!(status, 400);
    assert!(v["error"]["message"].as_str().unwrap().contains("looks like a Civitai token"), "{v}");
    let (status, _) = resolve(&f, "https://civitai.com/models/58390", Some("hf_abc"));
    assert_eq!(status, 400);
    assert!(!log(h.port)
        .iter()
        .any(|e| e["authorization"].as_str().is_some_and(|a| a.contains("civ-secret") || a.contains("hf_abc"))));

    // A model whose creator requires a login: the job says how to get and give a token…
    let (_, v) = resolve(&f, "https://civitai.com/api/download/models/999", None);
    let m = v["model"].clone();
    assert_eq!(m["category"], "checkpoints");
    let (state, message) = add(&f, &m, "checkpoints", None);
    assert_eq!(state, "failed");
    assert!(
        message.contains("requires a login") && message.contains("API Keys") && message.contains("CIVITAI_TOKEN"),
        "{message}"
    );
    assert_eq!(std::fs::read_dir(f.g.path("ws/forge/models/Stable-diffusion")).unwrap().count(), 0);
    // …and a token pasted for this one download works, sent to Civitai alone.
    let (state, message) = add(&f, &m, "checkpoints", Some("civ-secret"));
    assert_eq!(state, "done", "{message}");
    assert!(message.contains("SHA-256 checked"));
    assert!(!crate::http::request(h.cdn_port, "GET", "/log", &[], b"").text().contains("secret"));

    // A hash that does not match: failed, and nothing is left under any name.
    let (_, v) = resolve(&f, "https://civitai.com/models/500?modelVersionId=555", None);
    let (state, message) = add(&f, &v["model"], "vae", None);
    assert_eq!(state, "failed");
    assert!(message.contains("sha256 mismatch"), "{message}");
    assert_eq!(std::fs::read_dir(f.g.path("ws/forge/models/VAE")).unwrap().count(), 0);
    let scratch: Vec<_> =
        std::fs::read_dir(f.g.path("ws/.gpubox/fetch")).map(|d| d.flatten().collect()).unwrap_or_default();
    assert!(scratch.is_empty(), "no download left in the private area: {scratch:?}");

    // Refused before anything starts: more than the disk holds, a name that is taken, a
    // category that does not exist, a name that is a path.
    let jobs_before = serde_json::from_slice::<Value>(&f.req("GET", "/api/jobs", &[], b"").body).unwrap()["jobs"]
        .as_array()
        .unwrap()
        .len();
    let (_, v) = resolve(&f, "urn:air:flux1:checkpoint:civitai:700@777", None);
    let r = f.json("POST", "/api/models/add", json!({ "model": v["model"], "category": "checkpoints" }));
    assert_eq!(r.status, 507, "{}", r.text());
    assert!(r.text().contains("huge.safetensors needs ") && r.text().contains("free some space"), "{}", r.text());
    std::fs::write(lora.join("add_detail.safetensors"), "mine").unwrap();
    let (_, v) = resolve(&f, "urn:air:sd1:lora:civitai:58390@62833", None);
    let r = f.json("POST", "/api/models/add", json!({ "model": v["model"], "category": "lora" }));
    assert_eq!(r.status, 409, "{}", r.text());
    assert!(r.text().contains("/forge/models/Lora/add_detail.safetensors already exists"), "{}", r.text());
    assert_eq!(std::fs::read(lora.join("add_detail.safetensors")).unwrap(), b"mine", "untouched");
    for (body, says) in [
        (json!({ "model": v["model"], "category": "loras" }), "choose one of checkpoints, lora"),
        (
            json!({ "model": v["model"], "category": "lora", "filename": "../../x.safetensors" }),
            "not a plain file name",
        ),
        (json!({ "model": v["model"], "category": "lora", "filename": ".hidden" }), "not a plain file name"),
    ] {
        let r = f.json("POST", "/api/models/add", body);
        assert_eq!(r.status, 400, "{}", r.text());
        assert!(r.text().contains(says), "{}", r.text());
    }
    let jobs_after = serde_json::from_slice::<Value>(&f.req("GET", "/api/jobs", &[], b"").body).unwrap()["jobs"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(jobs_before, jobs_after, "no job was started");
    // Saved under another name: allowed.
    let r = f.json(
        "POST",
        "/api/models/add",
        json!({ "model": v["model"], "category": "lora", "filename": "detail-v1.safetensors" }),
    );
    assert_eq!(r.status, 202, "{}", r.text());
}
