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
