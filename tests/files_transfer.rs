//! The file manager's transfers through the real binary: tus uploads that resume after a cut
//! connection and land only when complete, a full disk, and WebDAV (the litmus suite, and a PUT
//! bigger than memory should hold).

use std::io::Write;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::files::{start, Files, SECRET};
use crate::http::{open, request, Response};
use crate::supervisor::free_port;
use base64::Engine;

const T: Duration = Duration::from_secs(30);

pub(crate) fn tus_create(f: &Files, dir: &str, name: &str, len: usize, conflict: Option<&str>) -> Response {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let mut meta = format!("filename {},path {}", b64(name), b64(dir));
    if let Some(c) = conflict {
        meta.push_str(&format!(",conflict {}", b64(c)));
    }
    let len = len.to_string();
    f.req("POST", "/api/tus", &[("Tus-Resumable", "1.0.0"), ("Upload-Length", &len), ("Upload-Metadata", &meta)], b"")
}

fn tus_patch(f: &Files, loc: &str, offset: usize, data: &[u8]) -> Response {
    let off = offset.to_string();
    f.req(
        "PATCH",
        loc,
        &[("Tus-Resumable", "1.0.0"), ("Upload-Offset", &off), ("Content-Type", "application/offset+octet-stream")],
        data,
    )
}

fn tus_offset(f: &Files, loc: &str) -> usize {
    let r = f.req("HEAD", loc, &[("Tus-Resumable", "1.0.0")], b"");
    assert_eq!(r.status, 200);
    r.header("upload-offset").unwrap().parse().unwrap()
}

#[test]
fn uploads_resume_after_a_cut_and_land_only_when_complete() {
    let f = start();
    let ws = f.ws();
    std::fs::create_dir_all(ws.join("in")).unwrap();
    let data: Vec<u8> = (0..5_000_000u32).map(|i| (i % 253) as u8).collect();
    let r = tus_create(&f, "in", "model.bin", data.len(), None);
    assert_eq!(r.status, 201, "{}", r.text());
    let loc = r.header("location").unwrap().to_string();
    // A PATCH that dies half-way: the connection drops after 2 MB of a 5 MB body.
    {
        let origin = f.origin();
        let mut s = open(
            f.port,
            "PATCH",
            &loc,
            &[
                ("Authorization", &f.auth),
                ("Origin", &origin),
                ("Tus-Resumable", "1.0.0"),
                ("Upload-Offset", "0"),
                ("Content-Type", "application/offset+octet-stream"),
                ("Content-Length", "5000000"),
            ],
            b"",
        );
        s.write_all(&data[..2_000_000]).unwrap();
        s.flush().unwrap();
        std::thread::sleep(Duration::from_millis(300));
        drop(s);
    }
    let deadline = Instant::now() + T;
    let mut offset = tus_offset(&f, &loc);
    while offset < 2_000_000 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        offset = tus_offset(&f, &loc);
    }
    assert_eq!(offset, 2_000_000, "what arrived was kept");
    assert!(!ws.join("in/model.bin").exists(), "no half file under its real name");
    // The wrong offset is refused; the right one finishes it.
    assert_eq!(tus_patch(&f, &loc, 0, &data[..10]).status, 409);
    let r = tus_patch(&f, &loc, offset, &data[offset..]);
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(r.header("x-gpubox-upload"), Some("saved:/in/model.bin"));
    assert_eq!(std::fs::read(ws.join("in/model.bin")).unwrap(), data);
    assert_eq!(f.req("HEAD", &loc, &[("Tus-Resumable", "1.0.0")], b"").status, 404, "finished uploads are gone");
    // Conflicts: rename (default) keeps both, skip keeps the old one, overwrite replaces it.
    for (conflict, expect) in
        [(None, "saved:/in/model%20%281%29.bin"), (Some("skip"), "skipped"), (Some("overwrite"), "saved:/in/model.bin")]
    {
        let r = tus_create(&f, "in", "model.bin", 3, conflict);
        let loc = r.header("location").unwrap().to_string();
        let r = tus_patch(&f, &loc, 0, b"new");
        assert_eq!(r.header("x-gpubox-upload"), Some(expect), "{conflict:?}");
    }
    assert_eq!(std::fs::read(ws.join("in/model.bin")).unwrap(), b"new");
    assert_eq!(std::fs::read(ws.join("in/model (1).bin")).unwrap(), b"new");
    // An upload can be cancelled.
    let loc = tus_create(&f, "in", "gone.bin", 10, None).header("location").unwrap().to_string();
    assert_eq!(f.req("DELETE", &loc, &[("Tus-Resumable", "1.0.0")], b"").status, 204);
    assert!(!ws.join("in/gone.bin").exists());
}

#[test]
fn a_full_disk_refuses_or_cleans_up_and_the_server_keeps_serving() {
    // The workspace on a 2 MiB tmpfs.
    let dir = tempfile::tempdir().unwrap();
    let small = dir.path().join("small");
    std::fs::create_dir_all(&small).unwrap();
    let mounted = Command::new("mount").args(["-t", "tmpfs", "-o", "size=2m", "tmpfs"]).arg(&small).status().unwrap();
    assert!(mounted.success(), "this test needs root to mount a small tmpfs");
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
    let _u = Unmount(small.clone());
    // gpubox with its workspace on the tmpfs (its logs elsewhere).
    let port = free_port();
    let body = format!(
        "[auth]\nusername = \"u\"\npassword = \"p\"\n[logs]\ndir = \"{logs}\"\n[services.files]\napp = \"files\"\nport = {port}\n",
        logs = dir.path().join("logs").display()
    );
    let cfg = dir.path().join("g.toml");
    std::fs::write(&cfg, format!("workspace = \"{}\"\n{body}", small.display())).unwrap();
    let child = Command::new(crate::util::BIN)
        .args(["--control"])
        .arg(dir.path().join("c.sock"))
        .args(["run", "--config"])
        .arg(&cfg)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(self.0.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let _ = self.0.wait();
        }
    }
    let _k = Kill(child);
    let deadline = Instant::now() + T;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "gpubox did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let auth = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("u:p"));
    let origin = format!("http://127.0.0.1:{port}");
    let h = |extra: &[(&'static str, String)]| -> Vec<(String, String)> {
        let mut v = vec![("Authorization".to_string(), auth.clone()), ("Origin".to_string(), origin.clone())];
        v.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
        v
    };
    let send = |method: &str, path: &str, extra: &[(&'static str, String)], body: &[u8]| {
        let hs = h(extra);
        let refs: Vec<(&str, &str)> = hs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        request(port, method, path, &refs, body)
    };
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    // Too big for the disk: refused before a byte is sent, saying how much is free.
    let r = send(
        "POST",
        "/api/tus",
        &[
            ("Tus-Resumable", "1.0.0".into()),
            ("Upload-Length", "5000000".into()),
            ("Upload-Metadata", format!("filename {}", b64("big.bin"))),
        ],
        b"",
    );
    assert_eq!(r.status, 507, "{}", r.text());
    assert!(r.text().contains("free"), "{}", r.text());
    // Fits when it starts, then the disk fills up (another writer): the partial upload goes.
    let r = send(
        "POST",
        "/api/tus",
        &[
            ("Tus-Resumable", "1.0.0".into()),
            ("Upload-Length", "1000000".into()),
            ("Upload-Metadata", format!("filename {}", b64("mid.bin"))),
        ],
        b"",
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let loc = r.header("location").unwrap().to_string();
    let filler = vec![0u8; 1_700_000];
    let _ = std::fs::write(small.join("filler"), &filler);
    let r = send(
        "PATCH",
        &loc,
        &[
            ("Tus-Resumable", "1.0.0".into()),
            ("Upload-Offset", "0".into()),
            ("Content-Type", "application/offset+octet-stream".into()),
        ],
        &vec![1u8; 1_000_000],
    );
    assert_eq!(r.status, 507, "{}", r.text());
    assert!(r.text().contains("disk is full"), "{}", r.text());
    assert!(!small.join("mid.bin").exists());
    let uploads: Vec<_> =
        std::fs::read_dir(small.join(".gpubox/uploads")).map(|d| d.flatten().collect()).unwrap_or_default();
    assert!(uploads.is_empty(), "the partial upload was removed: {uploads:?}");
    // And the server goes on.
    let r = send("GET", "/api/list?path=", &[], b"");
    assert_eq!(r.status, 200);
}

/// Waits for a job and returns its final view.

#[test]
fn webdav_passes_the_litmus_basic_copymove_and_props_groups() {
    let f = start();
    // litmus (Debian's package; scripts/test installs it) against /dav/ with the same login.
    let out = Command::new("litmus")
        .current_dir(f.g.dir.path()) // it writes debug.log and child.log where it runs
        .env("TESTS", "basic copymove props")
        .arg(format!("http://127.0.0.1:{}/dav/", f.port))
        .args(["u", "p"])
        .output()
        .expect("litmus is installed (apt-get install litmus)");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    for group in ["basic", "copymove", "props"] {
        let line = text
            .lines()
            .find(|l| l.contains(&format!("summary for `{group}'")))
            .unwrap_or_else(|| panic!("no {group} summary:\n{text}"));
        assert!(line.contains("100.0%"), "{line}\n{text}");
    }
    assert!(out.status.success(), "{text}");
    // A WebDAV client is challenged for credentials; a browser is not (it gets the login page).
    let r = request(f.port, "PROPFIND", "/dav/", &[("Depth", "0")], b"");
    assert_eq!(r.status, 401);
    assert!(r.header("www-authenticate").is_some_and(|v| v.starts_with("Basic")));
    let r = request(f.port, "GET", "/dav/", &[("Accept", "text/html")], b"");
    assert_eq!(r.status, 303);
    assert!(r.header("www-authenticate").is_none());
    // Dead properties live with the file: a MOVE takes them along.
    let ws = f.ws();
    std::fs::write(ws.join("p.txt"), "x").unwrap();
    let set = r#"<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:g="urn:gpubox"><D:set><D:prop><g:color>blue &amp; green</g:color></D:prop></D:set></D:propertyupdate>"#;
    assert_eq!(f.req("PROPPATCH", "/dav/p.txt", &[], set.as_bytes()).status, 207);
    let dest = format!("http://127.0.0.1:{}/dav/q.txt", f.port);
    assert_eq!(f.req("MOVE", "/dav/p.txt", &[("Destination", &dest)], b"").status, 201);
    let get =
        r#"<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop><color xmlns="urn:gpubox"/></D:prop></D:propfind>"#;
    let r = f.req("PROPFIND", "/dav/q.txt", &[("Depth", "0")], get.as_bytes());
    assert!(r.text().contains("blue &amp; green") && r.text().contains("200 OK"), "{}", r.text());
    // And the hostile paths of the other tests hold here too.
    for p in [
        "/dav/../outside/secret.txt",
        "/dav/%2e%2e/outside/secret.txt",
        "/dav/link-out/secret.txt",
        "/dav/.gpubox/sessions.json",
    ] {
        let r = f.req("GET", p, &[], b"");
        assert!(r.status >= 400 && !r.text().contains(SECRET), "{p}: {}", r.status);
    }
    let r = f.req("COPY", "/dav/q.txt", &[("Destination", "http://127.0.0.1:1/dav/../../outside/x")], b"");
    assert!(r.status >= 400, "{}", r.status);
    assert!(!f.outside.join("x").exists());
}

/// Issue 14 (2): a WebDAV PUT held the whole body in memory (a 1.5 GB upload took gpubox from
/// 13 MB to 1.8 GB), so rclone or Finder copying a model bigger than the free memory killed PID 1.
/// A 1 GiB PUT now goes to disk with gpubox's peak memory growing by less than 64 MiB; one cut
/// short leaves the old file as it was and no temporary file.
#[test]
fn a_webdav_put_streams_to_disk_in_bounded_memory() {
    let f = start();
    std::fs::write(f.ws().join("model.bin"), b"the old model").unwrap();
    let before = crate::util::peak_kib(f.g.pid());
    let piece: Vec<u8> = (0..1 << 20).map(|i| (i * 7 % 251) as u8).collect();
    let total: u64 = 1 << 30;
    let len = total.to_string();
    let mut s = open(f.port, "PUT", "/dav/model.bin", &[("Authorization", &f.auth), ("Content-Length", &len)], b"");
    for _ in 0..total >> 20 {
        s.write_all(&piece).unwrap();
    }
    let r = crate::http::read_response(&mut std::io::BufReader::new(&mut s), true);
    assert_eq!(r.status, 204, "{}", r.text());
    let grew = crate::util::peak_kib(f.g.pid()).saturating_sub(before);
    assert!(grew < 64 * 1024, "gpubox's peak memory grew by {grew} KiB for a 1 GiB PUT");
    let meta = std::fs::metadata(f.ws().join("model.bin")).unwrap();
    assert_eq!(meta.len(), total);
    let mut head = vec![0u8; 1 << 20];
    std::io::Read::read_exact(&mut std::fs::File::open(f.ws().join("model.bin")).unwrap(), &mut head).unwrap();
    assert!(head == piece);
    std::fs::remove_file(f.ws().join("model.bin")).unwrap();

    // Cut short: the file stays as it was.
    std::fs::write(f.ws().join("model.bin"), b"the old model").unwrap();
    {
        let mut s =
            open(f.port, "PUT", "/dav/model.bin", &[("Authorization", &f.auth), ("Content-Length", "10000000")], b"");
        s.write_all(&piece).unwrap();
        s.flush().unwrap();
    }
    let names = || -> Vec<String> {
        std::fs::read_dir(f.ws()).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect()
    };
    let temp = || names().iter().any(|n| n.ends_with(".gpubox-dav"));
    // The temporary file may not exist yet when the client has gone: wait for it to appear (or a
    // while, if it came and went already), then for it to go.
    let appear = Instant::now() + Duration::from_secs(3);
    while !temp() && Instant::now() < appear {
        std::thread::sleep(Duration::from_millis(10));
    }
    let until = Instant::now() + T;
    while temp() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(std::fs::read(f.ws().join("model.bin")).unwrap(), b"the old model");
    assert!(!names().iter().any(|n| n.ends_with(".gpubox-dav")), "{:?}", names());
}
