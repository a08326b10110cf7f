//! Pictures in the file manager through the real binary: thumbnails made once and cached (a
//! changed file gets a new one), refused for what is not a picture, and the generation text
//! Forge writes into a PNG; a shared folder's gallery of thumbnails for a stranger.

use serde_json::{json, Value};

use crate::files::{picture, start};
use crate::http::request;

const PROMPT: &str = "a lighthouse at dusk, oil painting\nNegative prompt: blurry, text\nSteps: 24, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 6.5, Seed: 1234, Size: 640x480, Model hash: 0123456789, Model: sdxl_base, Version: f2.0.1";

#[test]
fn pictures_get_cached_thumbnails_and_their_generation_text() {
    let f = start();
    let ws = f.ws();
    std::fs::create_dir_all(ws.join("outputs")).unwrap();
    std::fs::write(ws.join("outputs/a.png"), picture(640, 480, PROMPT)).unwrap();
    std::fs::write(ws.join("outputs/notes.txt"), "not a picture").unwrap();
    std::fs::write(ws.join("outputs/broken.png"), b"\x89PNG\r\n\x1a\ncut short").unwrap();

    // A thumbnail: JPEG, 256 px on the longer side, the shape kept, an ETag.
    let r = f.req("GET", "/api/thumb?path=outputs/a.png", &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("image/jpeg"));
    let img = image::load_from_memory(&r.body).unwrap();
    assert_eq!((img.width(), img.height()), (256, 192));
    let etag = r.header("etag").unwrap().to_string();
    assert!(r.header("cache-control").unwrap().contains("private"));
    // Kept under gpubox's private area, not in the workspace.
    let cached = std::fs::read_dir(f.g.path("ws/.gpubox/thumbs")).unwrap().count();
    assert_eq!(cached, 1, "one thumbnail kept");
    let mut names: Vec<String> =
        std::fs::read_dir(ws.join("outputs")).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["a.png", "broken.png", "notes.txt"]);
    // Asked again: the same bytes from the cache, or 304 with the ETag.
    assert_eq!(f.req("GET", "/api/thumb?path=outputs/a.png", &[], b"").body, r.body);
    let again = f.req("GET", "/api/thumb?path=outputs/a.png", &[("If-None-Match", &etag)], b"");
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());
    // 512 for dense screens; any other size is a clear 400.
    let big = f.req("GET", "/api/thumb?path=outputs/a.png&size=512", &[], b"");
    assert_eq!(image::load_from_memory(&big.body).unwrap().width(), 512);
    let bad = f.req("GET", "/api/thumb?path=outputs/a.png&size=300", &[], b"");
    assert_eq!(bad.status, 400);
    assert!(bad.text().contains("256 or 512"), "{}", bad.text());
    // The file changes: a new thumbnail, a new ETag.
    std::fs::write(ws.join("outputs/a.png"), picture(300, 600, "other")).unwrap();
    let r2 = f.req("GET", "/api/thumb?path=outputs/a.png", &[("If-None-Match", &etag)], b"");
    assert_eq!(r2.status, 200);
    assert_ne!(r2.header("etag").unwrap(), etag);
    assert_eq!(image::load_from_memory(&r2.body).unwrap().height(), 256);
    // Not pictures: 415 saying why; a folder, a missing file: as any path.
    for (path, status, says) in [
        ("outputs/notes.txt", 415, "not a PNG, JPEG, WebP or GIF"),
        ("outputs/broken.png", 415, "no thumbnail of /outputs/broken.png"),
        ("outputs", 400, ""),
        ("outputs/none.png", 404, ""),
    ] {
        // Twice: the second answer comes from what the first one learnt.
        for _ in 0..2 {
            let r = f.req("GET", &format!("/api/thumb?path={path}"), &[], b"");
            assert_eq!(r.status, status, "{path}: {}", r.text());
            assert!(r.text().contains(says), "{path}: {}", r.text());
        }
    }
    let bad = std::fs::read_dir(f.g.path("ws/.gpubox/thumbs")).unwrap().flatten();
    assert_eq!(bad.filter(|e| e.file_name().to_string_lossy().ends_with(".bad")).count(), 2, "two failures remembered");
    // Without the login: nothing.
    assert_eq!(request(f.port, "GET", "/api/thumb?path=outputs/a.png", &[], b"").status, 401);

    // The generation text, split as Forge splits it.
    std::fs::write(ws.join("outputs/a.png"), picture(640, 480, PROMPT)).unwrap();
    let v: Value = serde_json::from_slice(&f.req("GET", "/api/imageinfo?path=outputs/a.png", &[], b"").body).unwrap();
    assert_eq!((v["width"].as_u64(), v["height"].as_u64()), (Some(640), Some(480)));
    let g = &v["generation"];
    assert_eq!(g["prompt"], "a lighthouse at dusk, oil painting");
    assert_eq!(g["negative_prompt"], "blurry, text");
    assert_eq!(g["settings"][0], json!(["Steps", "24"]));
    assert_eq!(g["settings"][1], json!(["Sampler", "DPM++ 2M"]));
    assert_eq!(g["text"], PROMPT);
    // A file without it: none, and no error.
    for path in ["outputs/notes.txt", "outputs/broken.png"] {
        let r = f.req("GET", &format!("/api/imageinfo?path={path}"), &[], b"");
        assert_eq!(r.status, 200, "{path}");
        let v: Value = serde_json::from_slice(&r.body).unwrap();
        assert!(v["generation"].is_null() && v["width"].is_null(), "{path}: {v}");
    }
}

#[test]
fn a_shared_folder_is_a_gallery_of_thumbnails_for_a_stranger() {
    let f = start();
    let ws = f.ws();
    std::fs::create_dir_all(ws.join("outputs/day1")).unwrap();
    std::fs::write(ws.join("outputs/day1/x.png"), picture(100, 100, "x")).unwrap();
    std::fs::write(ws.join("outputs/day1/readme.txt"), "words").unwrap();
    std::fs::write(ws.join("private.png"), picture(100, 100, "private")).unwrap();
    let r = f.json("POST", "/api/shares", json!({ "path": "outputs", "max_downloads": 1 }));
    assert_eq!(r.status, 201, "{}", r.text());
    let link = serde_json::from_slice::<Value>(&r.body).unwrap()["url"].as_str().unwrap().to_string();

    let page = request(f.port, "GET", &format!("{link}?path=day1"), &[], b"").text();
    assert!(page.contains("class=\"share-gallery\""), "{page}");
    let src = page.split("<img src=\"").nth(1).unwrap().split('"').next().unwrap().replace("&amp;", "&");
    assert!(src.starts_with(&format!("{link}/thumb?path=day1/x.png&v=")), "{src}");
    assert!(page.contains("class=\"share-list\"") && page.contains("data-name=\"readme.txt\""), "the rest is a list");
    // A stranger gets the thumbnail, and it does not use up the one download.
    for _ in 0..3 {
        let t = request(f.port, "GET", &src, &[], b"");
        assert_eq!(t.status, 200);
        assert_eq!(image::load_from_memory(&t.body).unwrap().width(), 100);
    }
    assert_eq!(request(f.port, "GET", &format!("{link}/file?path=day1%2Fx.png"), &[], b"").status, 200);
    // Outside the shared folder, or not a picture: the plain 404.
    for path in ["..%2Fprivate.png", "day1%2Freadme.txt", "%2Fprivate.png"] {
        let r = request(f.port, "GET", &format!("{link}/thumb?path={path}"), &[], b"");
        assert_eq!(r.status, 404, "{path}");
        assert!(!r.text().contains("private"), "{path}: {}", r.text());
    }
    // Used up: the link ends, thumbnails too.
    assert_eq!(request(f.port, "GET", &src, &[], b"").status, 404);
}
