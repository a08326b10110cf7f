//! Builds the front-end (web/) with npm so that the binary can embed it: `npm ci` when
//! node_modules is missing or older than the lockfile, then `node build.mjs` into OUT_DIR.
//! Cargo reruns this only when something under web/ that the build reads has changed.

use std::path::Path;
use std::process::Command;

fn main() {
    for p in ["web/src", "web/package.json", "web/package-lock.json", "web/build.mjs", "web/tsconfig.json"] {
        println!("cargo:rerun-if-changed={p}");
    }
    // Every stylesheet at web/'s top level is copied by build.mjs.
    for entry in std::fs::read_dir("web").expect("the web/ folder").flatten() {
        if entry.file_name().to_string_lossy().ends_with(".css") {
            println!("cargo:rerun-if-changed=web/{}", entry.file_name().to_string_lossy());
        }
    }
    let out = Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("web");
    let web = Path::new("web");

    let npm_ok = Command::new("npm").arg("--version").output().is_ok_and(|o| o.status.success());
    if !npm_ok {
        panic!(
            "\n\ngpubox embeds its web pages, which are built with Node.js and npm, and `npm` was not found.\n\
             Install them (Debian/Ubuntu: `apt-get install nodejs npm`; or https://nodejs.org), then build again.\n\n"
        );
    }
    let stamp = web.join("node_modules/.package-lock.json");
    let modified = |p: &Path| p.metadata().and_then(|m| m.modified()).ok();
    if modified(&stamp).is_none() || modified(&stamp) < modified(&web.join("package-lock.json")) {
        run(Command::new("npm").args(["ci", "--no-audit", "--no-fund"]).current_dir(web), "npm ci");
    }
    run(Command::new("node").arg("build.mjs").current_dir(web).env("GPUBOX_WEB_OUT", &out), "node build.mjs");
    write_asset_table(&out);
}

/// `OUT_DIR/assets.rs`: every file the web build wrote, as `(name, content type, bytes)`, so that
/// the binary serves whatever web/build.mjs produces under `/.gpubox/assets/`.
fn write_asset_table(out: &Path) {
    let mut names: Vec<String> = std::fs::read_dir(out)
        .expect("the web build's output folder")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    let mut table = String::from("pub const ASSETS: &[(&str, &str, &[u8])] = &[\n");
    for name in names {
        let kind = match name.rsplit('.').next() {
            Some("js") => "text/javascript; charset=utf-8",
            Some("css") => "text/css; charset=utf-8",
            Some("svg") => "image/svg+xml",
            Some("woff2") => "font/woff2",
            _ => continue,
        };
        table.push_str(&format!(
            "    ({name:?}, {kind:?}, include_bytes!({:?})),\n",
            out.join(&name).display().to_string()
        ));
    }
    table.push_str("];\n");
    let path = out.parent().expect("OUT_DIR").join("assets.rs");
    std::fs::write(path, table).expect("writing assets.rs");
}

fn run(cmd: &mut Command, what: &str) {
    match cmd.status() {
        Ok(s) if s.success() => {}
        Ok(s) => panic!("\n\n`{what}` in web/ failed ({s}); its output is above.\n\n"),
        Err(e) => panic!("\n\ncannot run `{what}` in web/: {e}\n\n"),
    }
}
