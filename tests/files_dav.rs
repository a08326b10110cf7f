//! WebDAV details clients rely on: byte ranges on GET (rclone mount reads here and there), a
//! Destination on another server (502, RFC 4918) or with a query string (not part of the name).

use crate::files::start;

#[test]
fn ranges_and_destinations() {
    let f = start();
    let ws = f.ws();
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(ws.join("model.bin"), &data).unwrap();

    let r = f.req("GET", "/dav/model.bin", &[("Range", "bytes=1000-1999")], b"");
    assert_eq!(r.status, 206, "{}", r.text());
    assert_eq!(r.body, &data[1000..2000]);
    assert_eq!(r.header("content-range"), Some("bytes 1000-1999/100000"));
    let r = f.req("GET", "/dav/model.bin", &[("Range", "bytes=-10")], b"");
    assert_eq!((r.status, r.body.as_slice()), (206, &data[99_990..]));
    let r = f.req("GET", "/dav/model.bin", &[("Range", "bytes=200000-")], b"");
    assert_eq!(r.status, 416);
    assert_eq!(r.header("content-range"), Some("bytes */100000"));
    let r = f.req("GET", "/dav/model.bin", &[], b"");
    assert_eq!((r.status, r.body.len(), r.header("accept-ranges")), (200, data.len(), Some("bytes")));

    // Another server's URL: 502, and nothing is written here.
    let r = f.req("COPY", "/dav/model.bin", &[("Destination", "http://other.example/dav/copied.bin")], b"");
    assert_eq!(r.status, 502, "{}", r.text());
    assert!(!ws.join("copied.bin").exists());
    // This server's URL with a query string: the query is no part of the name.
    let dest = format!("http://127.0.0.1:{}/dav/copied.bin?version=2#frag", f.port);
    let r = f.req("COPY", "/dav/model.bin", &[("Destination", &dest)], b"");
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(std::fs::read(ws.join("copied.bin")).unwrap(), data);
    let r = f.req("MOVE", "/dav/copied.bin", &[("Destination", "/dav/moved.bin?x=1")], b"");
    assert_eq!(r.status, 201, "{}", r.text());
    assert!(ws.join("moved.bin").exists() && !ws.join("moved.bin?x=1").exists());
}

/// Names at the edges: 250 bytes long (a temporary name beside it must still fit in 255), and
/// names that are not UTF-8 (and a folder holding one), which must list, open, rename and delete.
#[test]
fn long_names_and_names_that_are_not_utf8() {
    use crate::files::q;
    use serde_json::{json, Value};
    use std::os::unix::ffi::OsStrExt;
    let f = start();
    let ws = f.ws();

    let long = format!("{}.safetensors", "m".repeat(250 - ".safetensors".len()));
    assert_eq!(long.len(), 250);
    let r = f.req("PUT", &format!("/api/file?path={}", q(&long)), &[], b"saved");
    assert!(r.status < 300, "PUT /api/file: {} {}", r.status, r.text());
    let r = f.req("PUT", &format!("/dav/{}", q(&format!("d{}", &long[1..]))), &[], b"dav");
    assert!(r.status < 300, "WebDAV PUT: {} {}", r.status, r.text());
    std::fs::create_dir_all(ws.join("to")).unwrap();
    let id = crate::files::start_job(&f, json!({ "kind": "copy", "paths": [long], "to": "to" }));
    assert_eq!(crate::files::wait_job(&f, id)["state"], "done");
    assert_eq!(std::fs::read(ws.join("to").join(&long)).unwrap(), b"saved");

    // Not UTF-8: a Latin-1 file name, and a folder with such a name holding another.
    let latin1 = std::ffi::OsStr::from_bytes(b"caf\xe9.txt");
    std::fs::write(ws.join(latin1), "latin-1").unwrap();
    let dir = ws.join(std::ffi::OsStr::from_bytes(b"d\xff"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(std::ffi::OsStr::from_bytes(b"\x80\x81")), "x").unwrap();
    let listing: Value = serde_json::from_slice(&f.req("GET", "/api/list?path=", &[], b"").body).unwrap();
    let names: Vec<String> =
        listing["entries"].as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap().to_string()).collect();
    let shown = names.iter().find(|n| n.starts_with("caf")).expect("listed").clone();
    assert!(!shown.contains('\u{fffd}'), "{shown:?}");
    let r = f.req("GET", &format!("/api/file?path={}", q(&shown)), &[], b"");
    assert_eq!((r.status, r.text().as_str()), (200, "latin-1"));
    let r = f.json("POST", "/api/rename", json!({ "from": shown, "to": "cafe.txt" }));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(std::fs::read_to_string(ws.join("cafe.txt")).unwrap(), "latin-1");
    let folder = names.iter().find(|n| n.starts_with('d') && n.chars().count() == 2).expect("the folder").clone();
    let inner: Value =
        serde_json::from_slice(&f.req("GET", &format!("/api/list?path={}", q(&folder)), &[], b"").body).unwrap();
    assert_eq!(inner["entries"].as_array().unwrap().len(), 1, "{inner}");
    // A long Latin-1 name: 200 bytes on disk, 800 in the API's form; still a valid name.
    let long_latin1 = std::ffi::OsStr::from_bytes(&[0xe9u8; 200]);
    std::fs::write(ws.join(long_latin1), "long").unwrap();
    let listing: Value = serde_json::from_slice(&f.req("GET", "/api/list?path=", &[], b"").body).unwrap();
    let long_shown = listing["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_string())
        .find(|n| n.chars().count() == 200)
        .expect("the long name is listed");
    let r = f.json("POST", "/api/rename", json!({ "from": long_shown, "to": "long.txt" }));
    assert_eq!(r.status, 200, "{}", r.text());
    let r = f.json("POST", "/api/delete", json!({ "paths": [folder] }));
    assert!(r.status < 300, "{} {}", r.status, r.text());
    assert!(!dir.exists(), "the folder and the name inside it are gone");
}
