//! Share links (`/.gpubox/s/<id>` on the file manager's port) through the real binary: they open
//! without the login and reach nothing but what was shared (a corpus of hostile paths, a symlink
//! out of the shared folder), a folder as a list and a ZIP, links taken back, ending, used up,
//! asking for a password (throttled), and kept across a restart.

use std::time::Duration;

use serde_json::{json, Value};

use crate::files::{start, Files, SECRET};
use crate::http::{request, Response};
use crate::util::Gpubox;

/// Makes a link; its path on the port.
fn share(f: &Files, body: Value) -> String {
    let r = f.json("POST", "/api/shares", body);
    assert_eq!(r.status, 201, "{}", r.text());
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    v["url"].as_str().unwrap().to_string()
}

/// A request as a stranger: no credentials.
fn get(f: &Files, path: &str) -> Response {
    request(f.port, "GET", path, &[], b"")
}

fn gone(r: &Response, what: &str) {
    assert_eq!(r.status, 404, "{what}: {}", r.text());
    assert!(r.text().contains("This link does not work"), "{what}: the plain page");
}

fn q(s: &str) -> String {
    gpubox::api::encode(s)
}

#[test]
fn a_share_link_opens_without_the_login_and_reaches_only_what_was_shared() {
    let f = start();
    let ws = f.ws();
    std::fs::create_dir_all(ws.join("shared/sub")).unwrap();
    std::fs::write(ws.join("shared/a.txt"), "shared text").unwrap();
    std::fs::write(ws.join("shared/sub/b.png"), b"\x89PNG\r\n\x1a\nnot really").unwrap();
    std::fs::write(ws.join("private.txt"), SECRET).unwrap();
    std::fs::write(ws.join("note.txt"), "just this file").unwrap();
    // A symlink inside the shared folder to a workspace file outside it, and one out of the workspace.
    std::os::unix::fs::symlink("../private.txt", ws.join("shared/link-up")).unwrap();
    std::os::unix::fs::symlink(f.outside.join("secret.txt"), ws.join("shared/link-out")).unwrap();

    // The private API needs the login.
    assert_eq!(request(f.port, "GET", "/api/shares", &[], b"").status, 401);
    let folder = share(&f, json!({ "path": "shared" }));
    assert!(folder.starts_with("/.gpubox/s/") && folder.len() == "/.gpubox/s/".len() + 32, "{folder}");

    // A stranger sees the folder, opens a file, a picture inline, a ZIP of it all.
    let page = get(&f, &folder);
    assert_eq!(page.status, 200);
    for name in ["a.txt", "sub"] {
        assert!(page.text().contains(&format!("data-name=\"{name}\"")), "{}", page.text());
    }
    // Symlinks that lead out of the shared folder are not listed.
    assert!(!page.text().contains("data-name=\"link-up\"") && !page.text().contains("data-name=\"link-out\""));
    assert_eq!(get(&f, &format!("{folder}/file?path=a.txt")).text(), "shared text");
    let pic = get(&f, &format!("{folder}/file?path=sub/b.png&inline=1"));
    assert_eq!(pic.header("content-type"), Some("image/png"));
    assert!(pic.header("content-security-policy").is_some_and(|c| c.contains("sandbox")));
    let sub = get(&f, &format!("{folder}?path=sub"));
    assert!(sub.status == 200 && sub.text().contains("data-name=\"b.png\""));
    let zip = get(&f, &format!("{folder}/zip"));
    assert_eq!(zip.status, 200);
    let names = std::process::Command::new("python3")
        .args([
            "-c",
            "import io,sys,zipfile; print(sorted(zipfile.ZipFile(io.BytesIO(sys.stdin.buffer.read())).namelist()))",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(&zip.body)?;
            c.wait_with_output()
        })
        .unwrap();
    let names = String::from_utf8(names.stdout).unwrap();
    assert!(names.contains("shared/a.txt") && names.contains("shared/sub/b.png"), "{names}");
    assert!(!String::from_utf8_lossy(&zip.body).contains(SECRET), "the ZIP holds nothing from outside the share");

    // Nothing outside the shared folder, by any path.
    let prefixes = [
        "",
        "../",
        "../../",
        "sub/../../",
        "/",
        "//",
        "..\\",
        "%2e%2e/",
        "..%2f",
        "link-up/",
        "link-out/",
        ".gpubox/",
        "sub/./../../",
    ];
    let targets = ["private.txt", "note.txt", "secret.txt", "outside/secret.txt", "ws/private.txt", "etc/passwd", ""];
    let mut tried = 0;
    for p in prefixes {
        for t in targets {
            let path = format!("{p}{t}");
            for url in [
                format!("{folder}/file?path={}", q(&path)),
                format!("{folder}?path={}", q(&path)),
                format!("{folder}/zip?path={}", q(&path)),
            ] {
                let r = get(&f, &url);
                tried += 1;
                assert!(!r.text().contains(SECRET), "{url} leaked the secret");
                assert!(!r.text().contains("just this file"), "{url} reached a file outside the share");
                assert!(!r.text().contains("root:x:0:0"), "{url} leaked /etc/passwd");
            }
        }
    }
    for link in ["link-up", "link-out"] {
        gone(&get(&f, &format!("{folder}/file?path={link}")), link);
    }
    assert!(tried > 250, "{tried}");

    // A file's link: its page, the file, and nothing beside it.
    let file = share(&f, json!({ "path": "note.txt" }));
    let page = get(&f, &file);
    assert!(page.status == 200 && page.text().contains("note.txt") && page.text().contains("Download"));
    assert_eq!(get(&f, &format!("{file}/file")).text(), "just this file");
    gone(&get(&f, &format!("{file}/file?path=../private.txt")), "a path below a file share");
    gone(&get(&f, &format!("{file}/zip")), "a ZIP of a file share");

    // Whatever is later put at a shared path is not what was shared: a symlink to the whole
    // workspace in place of the folder, a symlink to another file in place of the file.
    let other = share(&f, json!({ "path": "shared/sub" }));
    std::fs::rename(ws.join("shared/sub"), ws.join("shared/sub-old")).unwrap();
    std::os::unix::fs::symlink("../..", ws.join("shared/sub")).unwrap();
    gone(&get(&f, &other), "a folder link whose folder was replaced by a symlink");
    gone(&get(&f, &format!("{other}/file?path=private.txt")), "a file through the replaced folder");
    std::fs::rename(ws.join("note.txt"), ws.join("note-old.txt")).unwrap();
    std::os::unix::fs::symlink("private.txt", ws.join("note.txt")).unwrap();
    gone(&get(&f, &format!("{file}/file")), "a file link whose file was replaced by a symlink");
    std::fs::remove_file(ws.join("note.txt")).unwrap();
    std::fs::rename(ws.join("note-old.txt"), ws.join("note.txt")).unwrap();
    assert_eq!(get(&f, &format!("{file}/file")).text(), "just this file", "the same file back: it works again");
    let other_id = other.rsplit('/').next().unwrap();
    assert_eq!(f.req("DELETE", &format!("/api/shares/{other_id}"), &[], b"").status, 204);

    // Listed behind the login; taken back at once.
    let list: Value = serde_json::from_slice(&f.req("GET", "/api/shares", &[], b"").body).unwrap();
    let ids: Vec<&str> = list["shares"].as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 2);
    let id = folder.rsplit('/').next().unwrap();
    assert_eq!(f.req("DELETE", &format!("/api/shares/{id}"), &[], b"").status, 204);
    gone(&get(&f, &folder), "a link taken back");
    gone(&get(&f, &format!("{folder}/file?path=a.txt")), "a file of a link taken back");
    gone(&get(&f, "/.gpubox/s/0123456789abcdef0123456789abcdef"), "a link that never was");
    // Paths and values that make no sense are refused with a reason.
    for (body, code) in [
        (json!({ "path": "../outside" }), 400),
        (json!({ "path": "missing" }), 404),
        (json!({ "path": "note.txt", "expires": "soon" }), 400),
        (json!({ "path": "note.txt", "max_downloads": 0 }), 400),
    ] {
        let r = f.json("POST", "/api/shares", body.clone());
        assert_eq!(r.status, code, "{body}: {}", r.text());
    }
}

#[test]
fn share_links_end_get_used_up_ask_for_a_password_and_survive_a_restart() {
    let mut f = start();
    let ws = f.ws();
    std::fs::write(ws.join("file.bin"), "0123456789").unwrap();

    let brief = share(&f, json!({ "path": "file.bin", "expires": "2s" }));
    assert_eq!(get(&f, &format!("{brief}/file")).status, 200);
    let twice = share(&f, json!({ "path": "file.bin", "max_downloads": 2 }));
    assert_eq!(get(&f, &format!("{twice}/file")).status, 200);
    // A resumed download (a range past the start) is not another download.
    let part = request(f.port, "GET", &format!("{twice}/file"), &[("Range", "bytes=5-")], b"");
    assert_eq!((part.status, part.text().as_str()), (206, "56789"));
    assert_eq!(get(&f, &format!("{twice}/file")).status, 200);
    gone(&get(&f, &format!("{twice}/file")), "the third download of two allowed");
    // Ranges that send the whole file count as a download, however they are written.
    for range in ["bytes=-999999", "bytes=1-1,2-2", "bytes=00-"] {
        let once = share(&f, json!({ "path": "file.bin", "max_downloads": 1 }));
        let r = request(f.port, "GET", &format!("{once}/file"), &[("Range", range)], b"");
        assert!(r.status == 200 || r.status == 206, "{range}: {}", r.status);
        gone(&get(&f, &format!("{once}/file")), range);
    }

    let locked = share(&f, json!({ "path": "file.bin", "password": "open sesame" }));
    let page = get(&f, &locked);
    assert!(page.status == 200 && page.text().contains("asks for a password"), "{}", page.text());
    assert!(!page.text().contains("Download"));
    gone(&get(&f, &format!("{locked}/file")), "a protected file without its password");
    let origin = f.origin();
    let unlock = |password: &str| {
        request(
            f.port,
            "POST",
            &locked,
            &[("Content-Type", "application/x-www-form-urlencoded"), ("Origin", &origin)],
            format!("password={}", password.replace(' ', "+")).as_bytes(),
        )
    };
    let ok = unlock("open sesame");
    assert_eq!(ok.status, 303);
    let cookie = ok.header("set-cookie").unwrap().to_string();
    assert!(cookie.contains(&format!("Path={locked}")) && cookie.contains("HttpOnly"), "{cookie}");
    let cookie = cookie.split(';').next().unwrap().to_string();
    let r = request(f.port, "GET", &format!("{locked}/file"), &[("Cookie", &cookie)], b"");
    assert_eq!(r.text(), "0123456789", "unlocked for this browser");
    // Wrong passwords: refused, then throttled like logins.
    let mut statuses = Vec::new();
    for _ in 0..8 {
        statuses.push(unlock("guess").status);
    }
    assert_eq!(statuses[0], 401);
    assert!(statuses.contains(&429), "{statuses:?}");

    // Kept across a restart: the limited link's count, the protected one.
    std::thread::sleep(Duration::from_millis(2100));
    gone(&get(&f, &format!("{brief}/file")), "an ended link");
    f.g.terminate();
    let dir = std::mem::replace(&mut f.g.dir, tempfile::tempdir().unwrap());
    let g = Gpubox::start_in(dir, &[]);
    g.wait_event(&format!("files: listening on 0.0.0.0:{}", f.port), Duration::from_secs(30));
    gone(&get(&f, &format!("{twice}/file")), "a used-up link after a restart");
    assert!(get(&f, &locked).text().contains("asks for a password"), "a protected link after a restart");
    let list = request(f.port, "GET", "/api/shares", &[("Authorization", &f.auth)], b"");
    let v: Value = serde_json::from_slice(&list.body).unwrap();
    assert_eq!(v["shares"].as_array().unwrap().len(), 1, "only the live one is listed: {v}");
    let kept = std::fs::read_to_string(g.path("ws/.gpubox/shares.json")).unwrap();
    assert!(!kept.contains("open sesame"), "the password is kept as a hash only");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(g.path("ws/.gpubox/shares.json")).unwrap().permissions(),
    );
    assert_eq!(mode & 0o077, 0, "shares.json is private");
}
