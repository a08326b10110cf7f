//! The file manager's jobs: archives extracted safely, copies and fetches, and every kind of job
//! cancelled mid-way: it stops at once and leaves nothing behind,
//! and a fetch that is retrying says why while it waits.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::files::{start, start_job, wait_job, Files};
use crate::supervisor::free_port;

fn job(f: &Files, id: u64) -> Value {
    let jobs: Value = serde_json::from_slice(&f.req("GET", "/api/jobs", &[], b"").body).unwrap();
    jobs["jobs"].as_array().unwrap().iter().find(|j| j["id"] == id).cloned().expect("the job is listed")
}

/// Waits until `test` holds for the job's view.
fn wait_until(f: &Files, id: u64, what: &str, test: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let j = job(f, id);
        if test(&j) {
            return j;
        }
        assert!(Instant::now() < deadline, "{what}: {j}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Cancels and checks that the job ends as cancelled within a second.
fn cancel(f: &Files, id: u64) {
    let asked = Instant::now();
    assert_eq!(f.req("DELETE", &format!("/api/jobs/{id}"), &[], b"").status, 204);
    let j = wait_job(f, id);
    assert_eq!(j["state"], "cancelled", "{j}");
    assert!(asked.elapsed() < Duration::from_secs(2), "took {:?} to stop", asked.elapsed());
}

/// Names under `dir` (recursively) that look like a job's leftovers.
fn leftovers(dir: &std::path::Path) -> Vec<String> {
    let out = Command::new("find").arg(dir).arg("-name").arg("*.gpubox-*").output().unwrap();
    String::from_utf8_lossy(&out.stdout).lines().map(String::from).collect()
}

#[test]
fn each_kind_of_job_stops_mid_way_when_cancelled_and_leaves_nothing() {
    let f = start();
    let ws = f.ws();

    // Copy: a 6 GiB sparse file (read at disk speed, so it is still going when cancelled).
    std::fs::create_dir_all(ws.join("big")).unwrap();
    let big = std::fs::File::create(ws.join("big/model.safetensors")).unwrap();
    big.set_len(6 << 30).unwrap();
    std::fs::create_dir_all(ws.join("to")).unwrap();
    let id = start_job(&f, json!({ "kind": "copy", "paths": ["big/model.safetensors"], "to": "to" }));
    wait_until(&f, id, "the copy starts", |j| j["done"].as_u64().unwrap_or(0) > 0 || j["state"] != "running");
    cancel(&f, id);
    assert!(!ws.join("to/model.safetensors").exists());
    assert_eq!(leftovers(&ws), Vec::<String>::new());

    // Extract: a .tar.gz of 256 MiB of zeros in one entry.
    let made = Command::new("python3")
        .arg("-c")
        .arg(
            "import io, sys, tarfile\n\
             class Z(io.RawIOBase):\n    left = 256 << 20\n    def readable(self): return True\n    def readinto(self, b):\n        n = min(len(b), self.left); b[:n] = bytes(n); self.left -= n; return n\n\
             with tarfile.open(sys.argv[1], 'w:gz', compresslevel=1) as t:\n    i = tarfile.TarInfo('zeros.bin'); i.size = 256 << 20; t.addfile(i, io.BufferedReader(Z()))",
        )
        .arg(ws.join("zeros.tar.gz"))
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let id = start_job(&f, json!({ "kind": "extract", "path": "zeros.tar.gz", "to": "unpacked" }));
    wait_until(&f, id, "the extraction starts", |j| j["done"].as_u64().unwrap_or(0) > 0 || j["state"] != "running");
    cancel(&f, id);
    assert!(!ws.join("unpacked/zeros.bin").exists());
    assert_eq!(leftovers(&ws), Vec::<String>::new());

    // Fetch from a port where nothing listens: it retries, says why, and stops when cancelled.
    let dead = free_port();
    let id = start_job(&f, json!({ "kind": "fetch", "url": format!("http://127.0.0.1:{dead}/model.bin"), "to": "dl" }));
    let waiting = wait_until(&f, id, "the fetch says why it waits", |j| j["message"].is_string());
    let why = waiting["message"].as_str().unwrap().to_lowercase();
    assert!(why.contains("refused") && why.contains("attempt 2"), "{waiting}");
    assert_eq!(waiting["state"], "running");
    cancel(&f, id);
    let scratch = f.g.path("ws/.gpubox/fetch");
    let left: Vec<_> = std::fs::read_dir(&scratch).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
}

/// Six uploads of one name with `conflict=rename` finishing together: each lands under a name of
/// its own, none gets 409 after all its bytes arrived, and no part stays in the private area.
#[test]
fn concurrent_uploads_of_one_name_each_land_and_leave_no_part() {
    use crate::files_transfer::tus_create;
    let f = start();
    let ws = f.ws();
    std::fs::create_dir_all(ws.join("in")).unwrap();
    let data = vec![7u8; 300_000];
    let locations: Vec<String> = (0..6)
        .map(|_| {
            let r = tus_create(&f, "in", "same.bin", data.len(), Some("rename"));
            assert_eq!(r.status, 201, "{}", r.text());
            r.header("location").unwrap().to_string()
        })
        .collect();
    let answers: Vec<(u16, String)> = std::thread::scope(|s| {
        let handles: Vec<_> = locations
            .iter()
            .map(|loc| {
                let (port, auth, origin, data) = (f.port, f.auth.clone(), f.origin(), &data);
                s.spawn(move || {
                    let headers = [
                        ("Authorization", auth.as_str()),
                        ("Origin", origin.as_str()),
                        ("Tus-Resumable", "1.0.0"),
                        ("Upload-Offset", "0"),
                        ("Content-Type", "application/offset+octet-stream"),
                    ];
                    let r = crate::http::request(port, "PATCH", loc, &headers, data);
                    (r.status, r.header("x-gpubox-upload").unwrap_or("").to_string())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (status, placed) in &answers {
        assert_eq!(*status, 204, "{answers:?}");
        assert!(placed.starts_with("saved:"), "{answers:?}");
    }
    let mut names: Vec<String> = std::fs::read_dir(ws.join("in"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names.len(), 6, "{names:?}");
    assert!(names.contains(&"same.bin".to_string()) && names.contains(&"same (5).bin".to_string()), "{names:?}");
    let parts: Vec<_> = std::fs::read_dir(ws.join(".gpubox/uploads"))
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(parts.is_empty(), "{parts:?}");
}

/// A folder holding a `.gpubox` folder of its own (only the workspace's is private) copies whole.
#[test]
fn a_nested_gpubox_folder_is_copied_like_any_other() {
    let f = start();
    let ws = f.ws();
    std::fs::create_dir_all(ws.join("proj/.gpubox")).unwrap();
    std::fs::write(ws.join("proj/.gpubox/settings.json"), "{}").unwrap();
    std::fs::create_dir_all(ws.join("to")).unwrap();
    let job = wait_job(&f, start_job(&f, json!({ "kind": "copy", "paths": ["proj"], "to": "to" })));
    assert_eq!(job["state"], "done", "{job}");
    assert_eq!(std::fs::read_to_string(ws.join("to/proj/.gpubox/settings.json")).unwrap(), "{}");
    let r = f.req("COPY", "/dav/proj", &[("Destination", "/dav/proj2")], b"");
    assert_eq!(r.status, 201, "{}", r.text());
    assert!(ws.join("proj2/.gpubox/settings.json").exists());
}

#[test]
fn archives_extract_safely_copies_and_fetches_run_as_jobs() {
    let f = start();
    let ws = f.ws();
    std::fs::create_dir_all(ws.join("in")).unwrap();
    // A ZIP with a zip-slip entry and an absolute one, made by Python's zipfile.
    let made = Command::new("python3")
        .arg("-c")
        .arg(
            "import sys, zipfile\nz = zipfile.ZipFile(sys.argv[1], 'w', zipfile.ZIP_DEFLATED)\n\
z.writestr('model/a.txt', 'alpha')\nz.writestr('model/deep/b.txt', 'beta' * 1000)\n\
z.writestr('../escaped.txt', 'evil')\nz.writestr('/abs.txt', 'evil')\nz.close()",
        )
        .arg(ws.join("in/pack.zip"))
        .status()
        .unwrap();
    assert!(made.success());
    let job = wait_job(&f, start_job(&f, json!({ "kind": "extract", "path": "in/pack.zip" })));
    assert_eq!(job["state"], "done", "{job}");
    assert_eq!(std::fs::read_to_string(ws.join("in/pack/model/a.txt")).unwrap(), "alpha");
    assert_eq!(std::fs::read_to_string(ws.join("in/pack/model/deep/b.txt")).unwrap().len(), 4000);
    assert!(!f.g.path("ws/escaped.txt").exists() && !f.g.path("escaped.txt").exists());
    assert!(job["message"].as_str().unwrap().contains("skipped"), "{job}");
    // `/abs.txt` loses its leading `/`, as GNU tar does: it lands inside the target folder.
    assert_eq!(std::fs::read_to_string(ws.join("in/pack/abs.txt")).unwrap(), "evil");
    // tar, tar.gz and tar.zst, made by tar itself.
    std::fs::create_dir_all(f.g.path("src/t")).unwrap();
    std::fs::write(f.g.path("src/t/x.txt"), "from tar").unwrap();
    for (name, flag) in [("t.tar", ""), ("t.tar.gz", "-z"), ("t.tar.zst", "--zstd")] {
        let mut cmd = Command::new("tar");
        cmd.arg("-c");
        if !flag.is_empty() {
            cmd.arg(flag);
        }
        let st = cmd.arg("-f").arg(ws.join("in").join(name)).arg("-C").arg(f.g.path("src")).arg("t").status().unwrap();
        assert!(st.success());
        let to = format!("out-{name}");
        let job = wait_job(&f, start_job(&f, json!({ "kind": "extract", "path": format!("in/{name}"), "to": to })));
        assert_eq!(job["state"], "done", "{name}: {job}");
        assert_eq!(std::fs::read_to_string(ws.join(&to).join("t/x.txt")).unwrap(), "from tar", "{name}");
    }
    // Extracting beside the archive: entries that share one top folder put that folder there,
    // not `t/t/`; a second time, under a free name (nothing is overwritten).
    let job = wait_job(&f, start_job(&f, json!({ "kind": "extract", "path": "in/t.tar.gz" })));
    assert_eq!(job["state"], "done", "{job}");
    assert_eq!(std::fs::read_to_string(ws.join("in/t/x.txt")).unwrap(), "from tar");
    assert!(!ws.join("in/t/t").exists());
    let job = wait_job(&f, start_job(&f, json!({ "kind": "extract", "path": "in/t.tar.gz" })));
    assert_eq!(std::fs::read_to_string(ws.join("in/t (2)/x.txt")).unwrap(), "from tar");
    assert!(job["message"].as_str().unwrap().contains("into /in/t (2)"), "{job}");
    // Not an archive: a clear failure, and nothing half-made is left beside it.
    std::fs::write(ws.join("in/not.zip"), "nope").unwrap();
    let job = wait_job(&f, start_job(&f, json!({ "kind": "extract", "path": "in/not.zip" })));
    assert_eq!(job["state"], "failed");
    assert!(job["message"].as_str().unwrap().contains("ZIP"), "{job}");
    let hidden: Vec<String> = std::fs::read_dir(ws.join("in"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".gpubox-"))
        .collect();
    assert!(hidden.is_empty(), "left behind: {hidden:?}");

    // Copy: a folder next to itself gets a new name; the original is untouched.
    let job = wait_job(&f, start_job(&f, json!({ "kind": "copy", "paths": ["in/pack"], "to": "in" })));
    assert_eq!(job["state"], "done", "{job}");
    assert_eq!(std::fs::read_to_string(ws.join("in/pack (copy)/model/a.txt")).unwrap(), "alpha");
    assert!(job["total"].as_u64().unwrap() >= 4005, "{job}");
    let r = f.json("POST", "/api/jobs", json!({ "kind": "copy", "paths": ["in"], "to": "in/pack" }));
    let job = wait_job(&f, serde_json::from_slice::<Value>(&r.body).unwrap()["id"].as_u64().unwrap());
    assert_eq!(job["state"], "failed", "a folder cannot be copied into itself: {job}");

    // Fetch from a URL into a folder: the server's file name, written via the private area.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("weights.bin"), vec![7u8; 200_000]).unwrap();
    let port = free_port();
    let mut server = Command::new("python3")
        .arg(crate::util::fixture("dlserver.py"))
        .arg(port.to_string())
        .arg(dir.path())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(50));
    }
    let url = format!("http://127.0.0.1:{port}/weights.bin?cd=model.safetensors");
    let job = wait_job(&f, start_job(&f, json!({ "kind": "fetch", "url": url, "to": "models/new" })));
    let _ = server.kill();
    let _ = server.wait();
    assert_eq!(job["state"], "done", "{job}");
    assert_eq!(std::fs::read(ws.join("models/new/model.safetensors")).unwrap().len(), 200_000);
    assert_eq!(job["done"], 200_000);
    let r = f.json("POST", "/api/jobs", json!({ "kind": "fetch", "url": "file:///etc/passwd", "to": "x" }));
    assert_eq!(r.status, 400);
}
