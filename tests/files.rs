//! The file manager (port 7010) through the real binary over real HTTP: a corpus of hostile paths
//! against every endpoint, downloads with ranges, archives checked by real tools (Python's zipfile,
//! tar), tus uploads that resume after a cut connection, a full disk, pipes that must not hang.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use base64::Engine;
use gpubox::api::Client;
use gpubox::api::Request;
use serde_json::{json, Value};

use crate::http::{open, request, Response};
use crate::supervisor::free_port;
use crate::util::Gpubox;

const T: Duration = Duration::from_secs(30);
pub(crate) const SECRET: &str = "TOP-SECRET-OUTSIDE-THE-WORKSPACE";

pub(crate) struct Files {
    pub g: Gpubox,
    pub port: u16,
    pub auth: String,
    pub outside: PathBuf,
    /// Requests sent so far (for the attack figures in docs/security.md).
    pub sent: std::cell::Cell<usize>,
}

pub(crate) fn start() -> Files {
    let port = free_port();
    let g = Gpubox::start(&format!(
        r#"
[auth]
username = "u"
password = "p"

[services.files]
app = "files"
port = {port}
"#
    ));
    g.wait_event(&format!("files: listening on 0.0.0.0:{port}"), T);
    let auth = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("u:p"));
    let outside = g.dir.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("secret.txt"), SECRET).unwrap();
    std::fs::write(outside.join("secret.png"), picture(64, 48, &format!("{SECRET} prompt"))).unwrap();
    Files { g, port, auth, outside, sent: std::cell::Cell::new(0) }
}

impl Files {
    pub fn ws(&self) -> PathBuf {
        self.g.path("ws")
    }

    pub fn origin(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn req(&self, method: &str, path: &str, extra: &[(&str, &str)], body: &[u8]) -> Response {
        self.sent.set(self.sent.get() + 1);
        let origin = self.origin();
        let mut headers = vec![("Authorization", self.auth.as_str()), ("Origin", origin.as_str())];
        headers.extend_from_slice(extra);
        request(self.port, method, path, &headers, body)
    }

    pub fn json(&self, method: &str, path: &str, body: Value) -> Response {
        self.req(method, path, &[("Content-Type", "application/json")], body.to_string().as_bytes())
    }
}

/// A PNG of `w`×`h` pixels with `parameters` as Forge writes it (a tEXt chunk after IHDR).
pub(crate) fn picture(w: u32, h: u32, parameters: &str) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([(x * 7) as u8, (y * 5) as u8, 120]));
    let mut png = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(img).write_to(&mut png, image::ImageFormat::Png).unwrap();
    let png = png.into_inner();
    let mut data = b"parameters\0".to_vec();
    data.extend(parameters.chars().map(|c| c as u8)); // Latin-1, as PIL's tEXt
    let mut chunk = (data.len() as u32).to_be_bytes().to_vec();
    chunk.extend(b"tEXt");
    chunk.extend(&data);
    chunk.extend(crc32fast::hash(&[b"tEXt".as_slice(), &data].concat()).to_be_bytes());
    // Signature (8) and IHDR (25), then the text.
    [&png[..33], &chunk, &png[33..]].concat()
}

pub(crate) fn q(s: &str) -> String {
    gpubox::api::encode(s)
}

/// Everything under `dir`, with contents, to see that nothing changed.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(snapshot(&p));
        } else {
            out.push((p.clone(), std::fs::read(&p).unwrap_or_default()));
        }
    }
    out.sort();
    out
}

#[test]
fn no_hostile_path_reaches_outside_the_workspace() {
    let f = start();
    let ws = f.ws();
    std::fs::create_dir_all(ws.join("sub/deeper")).unwrap();
    std::fs::write(ws.join("sub/ok.txt"), "inside").unwrap();
    std::os::unix::fs::symlink("../outside", ws.join("link-out")).unwrap();
    std::os::unix::fs::symlink(&f.outside, ws.join("link-abs")).unwrap();
    std::os::unix::fs::symlink("/etc", ws.join("link-etc")).unwrap();
    std::os::unix::fs::symlink("../../outside/secret.txt", ws.join("sub/link-file")).unwrap();
    let before = snapshot(&f.outside);
    let o = f.outside.display().to_string();

    let prefixes = [
        "../",
        "../../",
        "../../../../../../",
        "./../",
        "sub/../../",
        "sub/deeper/../../../",
        "/",
        "//",
        "///",
        "..\\",
        "..\\..\\",
        "sub\\..\\..\\",
        "%2e%2e/",
        "%2e%2e%2f",
        "%252e%252e/",
        "..%2f",
        "..%252f",
        "%c0%ae%c0%ae/",
        "....//",
        ".../",
        "..;/",
        "link-out/",
        "link-out/../",
        "link-abs/",
        "link-etc/",
        "link-etc/../",
        "sub/link-file/",
        ".gpubox/",
        ".gpubox/../",
        "sub/./../../",
        " ../",
        "..%00/",
        "\u{0}../",
        "sub/deeper/../../../../",
    ];
    let targets =
        ["secret.txt", "outside/secret.txt", "etc/passwd", "passwd", "", "newfile", &format!("{o}/secret.txt")];
    let mut corpus: Vec<String> = Vec::new();
    for p in prefixes {
        for t in targets {
            corpus.push(format!("{p}{t}"));
        }
    }
    corpus.extend([
        o.clone(),
        format!("{o}/secret.txt"),
        "/etc/passwd".into(),
        "sub/link-file".into(),
        "link-out/secret.txt".into(),
        "link-abs/secret.txt".into(),
        "link-etc/passwd".into(),
        ".gpubox/sessions.json".into(),
        ".gpubox".into(),
        "..".into(),
        ".".into(),
        "sub/\u{7}bell".into(),
        "a\nb".into(),
        "x".repeat(300),
        format!("{}/{}", "a".repeat(255), "b".repeat(300)),
    ]);
    assert!(corpus.len() >= 200, "{} paths", corpus.len());

    // Every route of the app must be attacked here: a new route fails this test until it is.
    let v = Client::call(&f.g.control, &Request::Routes).unwrap();
    let site = v["sites"].as_array().unwrap().iter().find(|s| s["port"] == f.port).unwrap().clone();
    let covered = [
        "/",
        "/api/list",
        "/api/file",
        "/api/archive",
        "/api/sha256",
        "/api/search",
        "/api/thumb",
        "/api/imageinfo",
        "/api/models",
        "/api/models/resolve",
        "/api/models/add",
        "/api/models/identify",
        "/api/space",
        "/api/mkdir",
        "/api/rename",
        "/api/delete",
        "/api/tus",
        "/api/tus/{id}",
        "/api/jobs",
        "/api/jobs/{id}",
        "/dav",
        // The root itself: it takes no path.
        "/dav/",
        "/dav/{*path}",
        "/api/shares",
        "/api/shares/{id}",
        "/.gpubox/s/{id}",
        "/.gpubox/s/{id}/file",
        "/.gpubox/s/{id}/zip",
        "/.gpubox/s/{id}/thumb",
    ];
    for r in site["routes"].as_array().unwrap().iter().filter(|r| r["owner"] == "files") {
        assert!(covered.contains(&r["path"].as_str().unwrap()), "route {r} is not in the hostile-path test");
    }

    let leaked = |r: &Response, what: &str| {
        assert!(!r.text().contains(SECRET), "{what} leaked the secret: {}", r.text());
        assert!(!r.text().contains("root:x:0:0"), "{what} leaked /etc/passwd");
    };
    // A share link of a folder inside the workspace: the same paths below it.
    let r = f.json("POST", "/api/shares", json!({ "path": "sub" }));
    assert_eq!(r.status, 201, "{}", r.text());
    let link = serde_json::from_slice::<Value>(&r.body).unwrap()["url"].as_str().unwrap().to_string();
    let mut refused = 0;
    for p in &corpus {
        let e = q(p);
        for (method, url) in [
            ("GET", format!("{link}?path={e}")),
            ("GET", format!("{link}/file?path={e}")),
            ("GET", format!("{link}/zip?path={e}")),
            ("DELETE", format!("/api/shares/{e}")),
            ("GET", format!("/api/list?path={e}")),
            ("GET", format!("/api/file?path={e}")),
            ("GET", format!("/api/file?path={e}&inline=1")),
            ("GET", format!("/api/archive?paths={e}")),
            ("GET", format!("/api/archive?paths={e}&format=tar")),
            ("GET", format!("/api/sha256?path={e}")),
            ("GET", format!("/api/search?path={e}&q=secret")),
            ("GET", format!("/api/imageinfo?path={e}")),
        ] {
            let r = f.req(method, &url, &[], b"");
            leaked(&r, &url);
            if r.status >= 400 {
                refused += 1;
            }
        }
        // The workspace holds no picture: any thumbnail would be of the one outside.
        let png = q(&p.replace("secret.txt", "secret.png"));
        for url in
            [format!("/api/thumb?path={png}"), format!("{link}/thumb?path={png}"), format!("/api/imageinfo?path={png}")]
        {
            let r = f.req("GET", &url, &[], b"");
            leaked(&r, &url);
            assert!(r.status >= 400 || url.contains("imageinfo"), "{url}: {}", r.status);
        }
        let r = f.req("PUT", &format!("/api/file?path={e}"), &[], b"overwritten");
        leaked(&r, "PUT");
        // The same paths through WebDAV (percent-encoded in the URL path, as clients send them).
        let dav = format!("/dav/{}", p.split('/').map(q).collect::<Vec<_>>().join("/"));
        for method in ["GET", "PROPFIND", "PUT", "MKCOL", "DELETE", "PROPPATCH"] {
            let r = f.req(method, &dav, &[("Depth", "1")], b"");
            leaked(&r, &format!("{method} {dav}"));
        }
        let dest = format!("http://127.0.0.1:{}{dav}", f.port);
        for method in ["COPY", "MOVE"] {
            let r = f.req(method, "/dav/sub/ok.txt", &[("Destination", &dest), ("Overwrite", "T")], b"");
            leaked(&r, method);
            if r.status < 300 && method == "MOVE" {
                f.req("MOVE", &dav, &[("Destination", &format!("http://127.0.0.1:{}/dav/sub/ok.txt", f.port))], b"");
            }
        }
        // A link made for a hostile path (it should not be) shares nothing outside.
        let r = f.json("POST", "/api/shares", json!({ "path": p }));
        leaked(&r, "POST /api/shares");
        if r.status == 201 {
            let made = serde_json::from_slice::<Value>(&r.body).unwrap()["url"].as_str().unwrap().to_string();
            for url in [made.clone(), format!("{made}/file"), format!("{made}/zip"), format!("{made}/thumb")] {
                leaked(&request(f.port, "GET", &url, &[], b""), &url);
            }
        }
        for body in [
            ("/api/mkdir", json!({ "path": p })),
            ("/api/rename", json!({ "from": "sub/ok.txt", "to": p })),
            ("/api/rename", json!({ "from": p, "to": "sub/moved" })),
            ("/api/delete", json!({ "paths": [p] })),
            ("/api/jobs", json!({ "kind": "copy", "paths": [p], "to": "sub" })),
            ("/api/jobs", json!({ "kind": "copy", "paths": ["sub/ok.txt"], "to": p })),
            ("/api/jobs", json!({ "kind": "extract", "path": p })),
            ("/api/jobs", json!({ "kind": "extract", "path": "sub/ok.txt", "to": p })),
            // The URL answers 401 at once (gpubox itself, no login): the job ends quickly.
            ("/api/jobs", json!({ "kind": "fetch", "url": format!("http://127.0.0.1:{}/x", f.port), "to": p })),
            // A model saved under a hostile name: refused, or a plain name in the models folder.
            (
                "/api/models/add",
                json!({
                    "model": { "source": "url", "name": "x", "file": "x.safetensors", "page": "",
                               "url": format!("http://127.0.0.1:{}/x", f.port) },
                    "category": "lora",
                    "filename": p,
                }),
            ),
            ("/api/models/resolve", json!({ "input": p })),
            ("/api/models/identify", json!({ "path": p })),
        ] {
            let r = f.json("POST", body.0, body.1);
            leaked(&r, body.0);
            // Put back what a harmless rename moved, so the next round starts the same.
            if body.0 == "/api/rename" && r.status == 200 {
                let from = if r.text().contains("\"to\":\"sub/moved\"") { "sub/moved" } else { p.as_str() };
                let back = json!({ "from": from, "to": "sub/ok.txt" });
                f.json("POST", "/api/rename", back);
            }
        }
        let meta = |k: &str, v: &str| format!("{k} {}", base64::engine::general_purpose::STANDARD.encode(v));
        for metadata in [
            format!("{},{}", meta("filename", "x.bin"), meta("path", p)),
            format!("{},{}", meta("filename", p), meta("path", "")),
        ] {
            let r = f.req(
                "POST",
                "/api/tus",
                &[("Tus-Resumable", "1.0.0"), ("Upload-Length", "3"), ("Upload-Metadata", &metadata)],
                b"",
            );
            if let Some(loc) = r.header("location").map(str::to_string) {
                let r = f.req(
                    "PATCH",
                    &loc,
                    &[
                        ("Tus-Resumable", "1.0.0"),
                        ("Upload-Offset", "0"),
                        ("Content-Type", "application/offset+octet-stream"),
                    ],
                    b"abc",
                );
                leaked(&r, "tus");
            }
        }
        let r = f.req("HEAD", &format!("/api/tus/{e}"), &[("Tus-Resumable", "1.0.0")], b"");
        assert!(r.status == 404 || r.status == 400, "HEAD /api/tus/{p}: {}", r.status);
    }
    assert!(refused > corpus.len() * 4, "most hostile paths are refused outright ({refused})");
    eprintln!(
        "attack: {} hostile paths, {} requests over every files route, {refused} refused outright",
        corpus.len(),
        f.sent.get()
    );
    // Jobs started with a harmless-looking path ran to the end: wait for them before looking.
    let deadline = Instant::now() + T;
    loop {
        let jobs: Value = serde_json::from_slice(&f.req("GET", "/api/jobs", &[], b"").body).unwrap();
        let running = jobs["jobs"].as_array().unwrap().iter().filter(|j| j["state"] == "running").count();
        if running == 0 || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(f.req("DELETE", "/api/jobs/999999", &[], b"").status, 404);
    assert_eq!(snapshot(&f.outside), before, "nothing outside the workspace was written or deleted");
    assert!(std::fs::read_to_string("/etc/passwd").unwrap().contains("root"), "and /etc/passwd is untouched");
    // Symlinks were never followed out: the links themselves may have gone, their targets not.
    assert!(f.outside.join("secret.txt").exists());
    // gpubox's own state was neither read nor deleted (deleting .gpubox/sessions.json was tried).
    assert!(f.g.path("ws/.gpubox/sessions.json").is_file(), "the sessions file survived");
}

#[test]
fn listing_downloading_ranges_and_archives() {
    let f = start();
    let ws = f.ws();
    std::fs::create_dir_all(ws.join("models/lora")).unwrap();
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(ws.join("models/big.safetensors"), &data).unwrap();
    std::fs::write(ws.join("models/lora/a.txt"), "hello lora").unwrap();
    std::fs::write(ws.join("notes é.md"), "# notes").unwrap();
    nix::unistd::mkfifo(&ws.join("a-pipe"), nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();

    let r = f.req("GET", "/api/list?path=models", &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    let names: Vec<&str> = v["entries"].as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"big.safetensors") && names.contains(&"lora"), "{names:?}");
    assert!(v["free"].as_u64().unwrap() > 0 && v["total"].as_u64().unwrap() > 0);
    let root: Value = serde_json::from_slice(&f.req("GET", "/api/list?path=", &[], b"").body).unwrap();
    let names: Vec<&str> = root["entries"].as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert!(!names.contains(&".gpubox"), "gpubox's own state is not listed: {names:?}");
    assert!(names.contains(&"notes é.md"));

    // Whole, and resumed from the middle (curl -C -), and the last bytes.
    let when = std::time::UNIX_EPOCH + Duration::from_secs(1_795_872_000);
    let big = f.ws().join("models/big.safetensors");
    std::fs::File::options().write(true).open(&big).unwrap().set_modified(when).unwrap();
    let whole = f.req("GET", "/api/file?path=models/big.safetensors", &[], b"");
    assert_eq!((whole.status, whole.body.len()), (200, data.len()));
    assert_eq!(whole.header("accept-ranges"), Some("bytes"));
    // An HTTP date, as browsers and curl -z read it (it was RFC 3339, which they cannot).
    assert_eq!(whole.header("last-modified"), Some("Sat, 28 Nov 2026 13:20:00 GMT"));
    let dav = f.req("GET", "/dav/models/big.safetensors", &[], b"");
    assert_eq!(dav.header("last-modified"), Some("Sat, 28 Nov 2026 13:20:00 GMT"));
    let part = f.req("GET", "/api/file?path=models/big.safetensors", &[("Range", "bytes=1000000-")], b"");
    assert_eq!(part.status, 206);
    assert_eq!(part.body, &data[1_000_000..]);
    assert_eq!(part.header("content-range"), Some("bytes 1000000-2999999/3000000"));
    let tail = f.req("GET", "/api/file?path=models/big.safetensors", &[("Range", "bytes=-10")], b"");
    assert_eq!(tail.body, &data[data.len() - 10..]);
    let bad = f.req("GET", "/api/file?path=models/big.safetensors", &[("Range", "bytes=5000000-")], b"");
    assert_eq!(bad.status, 416);
    // Viewed in the page: never as HTML, always sandboxed.
    std::fs::write(ws.join("page.html"), "<script>alert(1)</script>").unwrap();
    let page = f.req("GET", "/api/file?path=page.html&inline=1", &[], b"");
    assert_eq!(page.header("content-type"), Some("text/plain; charset=utf-8"));
    assert!(page.header("content-security-policy").unwrap().contains("sandbox"));

    // A FIFO is refused at once (opening it would hang the request).
    let started = Instant::now();
    let r = f.req("GET", "/api/file?path=a-pipe", &[], b"");
    assert_eq!(r.status, 400, "{}", r.text());
    let r = f.req("GET", "/api/sha256?path=a-pipe", &[], b"");
    assert_eq!(r.status, 400);
    assert!(started.elapsed() < Duration::from_secs(5));

    // A folder as ZIP and as tar, checked by Python's zipfile and by tar.
    let zip = f.req("GET", &format!("/api/archive?paths={}", q("models")), &[], b"");
    assert_eq!(zip.status, 200);
    let zpath = f.g.path("m.zip");
    std::fs::write(&zpath, &zip.body).unwrap();
    let check = Command::new("python3")
        .arg("-c")
        .arg("import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); assert z.testzip() is None; print(sorted(z.namelist())); print(len(z.read('models/big.safetensors'))); print(z.read('models/lora/a.txt').decode())")
        .arg(&zpath)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&check.stdout);
    assert!(check.status.success(), "{out}{}", String::from_utf8_lossy(&check.stderr));
    assert!(out.contains("'models/big.safetensors'") && out.contains("3000000") && out.contains("hello lora"), "{out}");
    let tar =
        f.req("GET", &format!("/api/archive?paths={}%0A{}&format=tar", q("models/lora"), q("notes é.md")), &[], b"");
    let tpath = f.g.path("m.tar");
    std::fs::write(&tpath, &tar.body).unwrap();
    let listing = Command::new("tar").arg("tf").arg(&tpath).output().unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout);
    assert!(
        listing.contains("lora/a.txt") && listing.contains("notes é.md") && !listing.contains("a-pipe"),
        "{listing}"
    );

    // sha256 and search.
    let r: Value = serde_json::from_slice(&f.req("GET", "/api/sha256?path=models/lora/a.txt", &[], b"").body).unwrap();
    let expected = gpubox::api::sha256_file(&ws.join("models/lora/a.txt")).unwrap();
    assert_eq!(r["sha256"], expected);
    let found = f.req("GET", "/api/search?path=&q=LORA", &[], b"");
    let hits: Vec<Value> = found.text().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(hits.iter().any(|h| h["path"] == "models/lora"), "{hits:?}");
}

/// A `PUT /api/file?path=a/x.txt` that announces 10 MB, for the caller to send part of and drop.
fn gpubox_tests_open(f: &Files, origin: &str) -> std::net::TcpStream {
    open(
        f.port,
        "PUT",
        "/api/file?path=a/x.txt",
        &[("Authorization", &f.auth), ("Origin", origin), ("Content-Length", "10000000")],
        b"",
    )
}

#[test]
fn a_big_folder_lists_every_entry() {
    let f = start();
    let dir = f.ws().join("big");
    std::fs::create_dir_all(&dir).unwrap();
    // Past 4,096 entries the listing stats them on several threads.
    for i in 0..6000 {
        std::fs::write(dir.join(format!("f{i:05}")), i.to_string()).unwrap();
    }
    let r = f.req("GET", "/api/list?path=big", &[], b"");
    assert_eq!(r.status, 200);
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    let mut names: Vec<(String, u64)> = v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["name"].as_str().unwrap().to_string(), e["size"].as_u64().unwrap()))
        .collect();
    names.sort();
    assert_eq!(names.len(), 6000);
    for (i, (name, size)) in names.iter().enumerate() {
        assert_eq!((name.as_str(), *size), (format!("f{i:05}").as_str(), i.to_string().len() as u64));
    }
}

#[test]
fn operations_and_atomic_saves() {
    let f = start();
    let ws = f.ws();
    assert_eq!(f.json("POST", "/api/mkdir", json!({ "path": "a/b" })).status, 404, "the parent must exist");
    assert_eq!(f.json("POST", "/api/mkdir", json!({ "path": "a" })).status, 201);
    assert_eq!(f.json("POST", "/api/mkdir", json!({ "path": "a" })).status, 409);
    assert_eq!(f.req("PUT", "/api/file?path=a/x.txt", &[], b"first").status, 200);
    assert_eq!(std::fs::read_to_string(ws.join("a/x.txt")).unwrap(), "first");
    assert_eq!(f.req("PUT", "/api/file?path=a/x.txt", &[], b"second").status, 200);
    assert_eq!(std::fs::read_to_string(ws.join("a/x.txt")).unwrap(), "second");
    let leftovers: Vec<_> = std::fs::read_dir(ws.join("a")).unwrap().flatten().map(|e| e.file_name()).collect();
    assert_eq!(leftovers.len(), 1, "no temporary file left: {leftovers:?}");
    // A big body is streamed to disk (no size limit), byte for byte.
    let big: Vec<u8> = (0..5 * 1024 * 1024 + 123).map(|i| (i * 7 % 251) as u8).collect();
    let r = f.req("PUT", "/api/file?path=a/big.bin", &[], &big);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(serde_json::from_slice::<Value>(&r.body).unwrap()["bytes"], big.len());
    assert!(std::fs::read(ws.join("a/big.bin")).unwrap() == big);
    // A save cut short changes nothing and leaves no temporary file.
    {
        let origin = f.origin();
        let mut s = gpubox_tests_open(&f, &origin);
        s.write_all(&big[..1 << 20]).unwrap();
        s.flush().unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let names: Vec<_> = std::fs::read_dir(ws.join("a")).unwrap().flatten().map(|e| e.file_name()).collect();
        if names.len() == 2 {
            break;
        }
        assert!(Instant::now() < deadline, "a cut save left {names:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(std::fs::read_to_string(ws.join("a/x.txt")).unwrap(), "second");
    std::fs::remove_file(ws.join("a/big.bin")).unwrap();
    std::fs::write(ws.join("a/y.txt"), "y").unwrap();
    // Rename never replaces by accident; with overwrite it does.
    let r = f.json("POST", "/api/rename", json!({ "from": "a/x.txt", "to": "a/y.txt" }));
    assert_eq!(r.status, 409, "{}", r.text());
    assert_eq!(std::fs::read_to_string(ws.join("a/y.txt")).unwrap(), "y");
    let r = f.json("POST", "/api/rename", json!({ "from": "a/x.txt", "to": "a/y.txt", "overwrite": true }));
    assert_eq!(r.status, 200);
    assert_eq!(std::fs::read_to_string(ws.join("a/y.txt")).unwrap(), "second");
    assert_eq!(f.json("POST", "/api/rename", json!({ "from": "a", "to": "a/inside" })).status, 400);
    let r = f.json("POST", "/api/delete", json!({ "paths": ["a"] }));
    assert_eq!(r.status, 200);
    assert!(!ws.join("a").exists());
    assert_eq!(f.json("POST", "/api/delete", json!({ "paths": [""] })).status, 400, "never the workspace itself");
    // State changes from another origin are refused by the gateway.
    let r = request(
        f.port,
        "POST",
        "/api/mkdir",
        &[("Authorization", &f.auth), ("Origin", "http://evil.example"), ("Content-Type", "application/json")],
        br#"{"path":"evil"}"#,
    );
    assert_eq!(r.status, 403);
    assert!(!ws.join("evil").exists());
}

pub(crate) fn wait_job(f: &Files, id: u64) -> Value {
    let deadline = Instant::now() + T;
    loop {
        let jobs: Value = serde_json::from_slice(&f.req("GET", "/api/jobs", &[], b"").body).unwrap();
        let job = jobs["jobs"].as_array().unwrap().iter().find(|j| j["id"] == id).cloned().expect("the job is listed");
        if job["state"] != "running" {
            return job;
        }
        assert!(Instant::now() < deadline, "job {id} still running: {job}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub(crate) fn start_job(f: &Files, body: Value) -> u64 {
    let r = f.json("POST", "/api/jobs", body);
    assert_eq!(r.status, 202, "{}", r.text());
    serde_json::from_slice::<Value>(&r.body).unwrap()["id"].as_u64().unwrap()
}
