//! Symlinks inside the workspace against the file manager: loops that must not make an archive,
//! a copy or a WebDAV COPY endless, a MOVE onto itself that must not delete the file, and the
//! private `.gpubox` folder that no link may reach.

use std::os::unix::fs::symlink;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::files::{q, start, start_job, wait_job};

/// Lists a ZIP's names with Python's zipfile (which also checks every CRC).
fn zip_names(f: &crate::files::Files, body: &[u8]) -> Vec<String> {
    let path = f.g.path("loop.zip");
    std::fs::write(&path, body).unwrap();
    let out = Command::new("python3")
        .arg("-c")
        .arg("import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); assert z.testzip() is None; print('\\n'.join(z.namelist()))")
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().map(String::from).collect()
}

#[test]
fn symlink_loops_end_archives_copies_and_dav_copies() {
    let f = start();
    let ws = f.ws();
    // Two links to the folder itself, one to its parent, one to a sibling folder.
    std::fs::create_dir_all(ws.join("loop/real")).unwrap();
    std::fs::write(ws.join("loop/f.txt"), "one").unwrap();
    std::fs::write(ws.join("loop/real/g.txt"), "two").unwrap();
    symlink(".", ws.join("loop/a")).unwrap();
    symlink(".", ws.join("loop/b")).unwrap();
    symlink("..", ws.join("loop/up")).unwrap();
    symlink("real", ws.join("loop/same")).unwrap();

    // ZIP and tar: they end at once, with each real file once.
    let started = Instant::now();
    let zip = f.req("GET", &format!("/api/archive?paths={}", q("loop")), &[], b"");
    assert_eq!(zip.status, 200);
    let mut names = zip_names(&f, &zip.body);
    names.sort();
    // `real` sorts before `same`: the folder is stored under its own name, once.
    assert_eq!(names, ["loop/", "loop/f.txt", "loop/real/", "loop/real/g.txt"], "{names:?}");
    let tar = f.req("GET", &format!("/api/archive?paths={}&format=tar", q("loop")), &[], b"");
    assert_eq!(tar.status, 200);
    assert!(tar.body.len() < 64 * 1024, "the tar is {} bytes", tar.body.len());
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());

    // A copy job of the folder ends with one copy of each file.
    std::fs::create_dir_all(ws.join("dest")).unwrap();
    let id = start_job(&f, json!({ "kind": "copy", "paths": ["loop"], "to": "dest" }));
    let job = wait_job(&f, id);
    assert_eq!(job["state"], "done", "{job}");
    assert_eq!(std::fs::read_to_string(ws.join("dest/loop/f.txt")).unwrap(), "one");
    assert_eq!(std::fs::read_to_string(ws.join("dest/loop/real/g.txt")).unwrap(), "two");
    assert!(!ws.join("dest/loop/a").exists() && !ws.join("dest/loop/up").exists());
    assert!(!ws.join("dest/loop/same").exists());

    // A copy into a folder reached through a link back into the source is refused.
    let id = start_job(&f, json!({ "kind": "copy", "paths": ["loop"], "to": "loop/a" }));
    let job = wait_job(&f, id);
    assert_eq!(job["state"], "failed", "{job}");
    assert!(job["message"].as_str().unwrap().contains("into itself"), "{job}");

    // WebDAV COPY of the folder, and into itself through the link.
    let r = f.req("COPY", "/dav/loop", &[("Destination", "/dav/dav-copy")], b"");
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(std::fs::read_to_string(ws.join("dav-copy/f.txt")).unwrap(), "one");
    assert!(!ws.join("dav-copy/a").exists());
    let r = f.req("COPY", "/dav/loop", &[("Destination", "/dav/loop/a/inner")], b"");
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(!ws.join("loop/inner").exists());
    assert!(started.elapsed() < Duration::from_secs(20), "{:?}", started.elapsed());
}

#[test]
fn dav_move_or_copy_onto_itself_through_a_symlink_keeps_the_file() {
    let f = start();
    let ws = f.ws();
    std::fs::create_dir_all(ws.join("dir")).unwrap();
    std::fs::write(ws.join("dir/a.txt"), "precious").unwrap();
    symlink("dir", ws.join("link")).unwrap();
    for method in ["MOVE", "COPY"] {
        let r = f.req(method, "/dav/dir/a.txt", &[("Destination", "/dav/link/a.txt"), ("Overwrite", "T")], b"");
        assert_eq!(r.status, 403, "{method}: {}", r.text());
        assert_eq!(std::fs::read_to_string(ws.join("dir/a.txt")).unwrap(), "precious", "{method}");
    }
    // A folder moved into itself through the link.
    let r = f.req("MOVE", "/dav/dir", &[("Destination", "/dav/link/inside")], b"");
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(ws.join("dir/a.txt").exists());
    // Onto the folder that holds it, by name and through the link: replacing the destination
    // would delete the source with it.
    for dest in ["/dav/dir", "/dav/link"] {
        for method in ["MOVE", "COPY"] {
            let r = f.req(method, "/dav/dir/a.txt", &[("Destination", dest), ("Overwrite", "T")], b"");
            assert_eq!(r.status, 403, "{method} onto {dest}: {}", r.text());
            assert_eq!(std::fs::read_to_string(ws.join("dir/a.txt")).unwrap(), "precious", "{method} onto {dest}");
        }
    }
}

#[test]
fn the_private_folder_is_out_of_reach_through_symlinks() {
    let f = start();
    let ws = f.ws();
    let private = ws.join(".gpubox");
    std::fs::create_dir_all(&private).unwrap();
    std::fs::write(private.join("marker.txt"), "PRIVATE-MARKER").unwrap();
    symlink(".gpubox", ws.join("priv")).unwrap();
    symlink(".", ws.join("me")).unwrap();
    symlink("../.gpubox/marker.txt", {
        std::fs::create_dir_all(ws.join("sub")).unwrap();
        ws.join("sub/deep")
    })
    .unwrap();

    let not_ok = |r: &crate::http::Response, what: &str| {
        assert!(r.status >= 400, "{what}: {} {}", r.status, r.text());
        assert!(!r.text().contains("PRIVATE-MARKER"), "{what}: {}", r.text());
    };
    not_ok(&f.req("GET", "/api/list?path=priv", &[], b""), "list priv");
    not_ok(&f.req("GET", "/api/file?path=priv/marker.txt", &[], b""), "read through the link");
    not_ok(&f.req("GET", "/api/file?path=sub/deep", &[], b""), "read a file link");
    not_ok(&f.req("GET", "/api/file?path=me/.gpubox/marker.txt", &[], b""), "read through a link to the root");
    not_ok(&f.req("GET", "/dav/priv/marker.txt", &[], b""), "WebDAV GET");
    not_ok(&f.req("PROPFIND", "/dav/priv", &[("Depth", "1")], b""), "WebDAV PROPFIND");
    not_ok(&f.req("PUT", "/api/file?path=priv/new.txt", &[], b"written"), "write through the link");
    not_ok(&f.req("PUT", "/dav/me/.gpubox/new.txt", &[], b"written"), "WebDAV PUT through the root link");
    assert!(!private.join("new.txt").exists());
    not_ok(&f.json("POST", "/api/delete", json!({ "paths": ["me/.gpubox"] })), "delete through the root link");
    not_ok(&f.json("POST", "/api/rename", json!({ "from": "me/.gpubox", "to": "stolen" })), "rename it out");
    assert_eq!(std::fs::read_to_string(private.join("marker.txt")).unwrap(), "PRIVATE-MARKER");

    // The link to the root lists the root, without the private folder.
    let r = f.req("GET", "/api/list?path=me", &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    let list: Value = serde_json::from_slice(&r.body).unwrap();
    let names: Vec<&str> = list["entries"].as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"sub") && !names.contains(&".gpubox"), "{names:?}");
    let r = f.req("PROPFIND", "/dav/me", &[("Depth", "1")], b"");
    assert_eq!(r.status, 207);
    assert!(!r.text().contains(".gpubox"), "{}", r.text());

    // An archive of the whole workspace holds neither the folder nor what the links lead to.
    let zip = f.req("GET", "/api/archive?paths=%2F", &[], b"");
    assert_eq!(zip.status, 200, "{}", zip.text());
    let names = zip_names(&f, &zip.body);
    assert!(names.iter().all(|n| !n.contains("marker") && !n.contains(".gpubox")), "{names:?}");
    assert!(!names.iter().any(|n| n.starts_with("workspace/priv/")), "{names:?}");
}
