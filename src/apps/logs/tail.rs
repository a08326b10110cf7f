//! Follows extra log files (`files = [...]` on the logs app): the globs are expanded again every
//! 2 s, so a file that appears later is picked up; each file is read as it grows, and followed
//! across rotation (a new file under the name: the old one is read to its end first) and
//! truncation (read again from the start). Only regular files are opened: a FIFO or a device that
//! matches a glob is never read.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::logs::{Hub, LineBatch, LineSplitter, LogWriter, Stream};

const GLOB_EVERY: Duration = Duration::from_secs(2);
const POLL: Duration = Duration::from_millis(300);
/// Of a file that exists at start, this much of its end is shown.
const BACKLOG: u64 = 64 * 1024;
/// Most bytes read from one file per round, so one busy file cannot starve the others.
const ROUND: usize = 1 << 20;

struct Followed {
    file: File,
    dev_ino: (u64, u64),
    pos: u64,
    splitter: LineSplitter,
    writer: LogWriter,
}

pub fn start(hub: Hub, patterns: Vec<String>) {
    let spawned = std::thread::Builder::new().name("log-files".into()).spawn(move || run(hub, patterns));
    if let Err(e) = spawned {
        eprintln!("[gpubox] cannot start following log files: {e}");
    }
}

fn open(path: &Path) -> Option<(File, std::fs::Metadata)> {
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_file() {
        return None;
    }
    let file = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(path).ok()?;
    let meta = file.metadata().ok()?;
    meta.is_file().then_some((file, meta))
}

fn run(hub: Hub, patterns: Vec<String>) {
    let mut followed: HashMap<PathBuf, Followed> = HashMap::new();
    let mut warned: Vec<String> = Vec::new();
    let mut first = true;
    let mut globbed = Instant::now() - GLOB_EVERY;
    loop {
        if globbed.elapsed() >= GLOB_EVERY {
            globbed = Instant::now();
            for pattern in &patterns {
                let paths = match glob::glob(pattern) {
                    Ok(p) => p,
                    Err(e) => {
                        if !warned.contains(pattern) {
                            hub.event(format!("logs: `{pattern}` is not a valid glob ({e}); it is ignored"));
                            warned.push(pattern.clone());
                        }
                        continue;
                    }
                };
                for path in paths.flatten() {
                    if followed.contains_key(&path) {
                        continue;
                    }
                    let Some((mut file, meta)) = open(&path) else { continue };
                    // A file that was there at start shows its latest lines; one that appears
                    // later is read from its beginning.
                    let pos = if first { meta.len().saturating_sub(BACKLOG) } else { 0 };
                    if file.seek(SeekFrom::Start(pos)).is_err() {
                        continue;
                    }
                    let name = hub.register_file(&path);
                    let mut f = Followed {
                        file,
                        dev_ino: (meta.dev(), meta.ino()),
                        pos,
                        splitter: LineSplitter::default(),
                        writer: hub.writer(&name),
                    };
                    if pos > 0 {
                        skip_partial_line(&mut f);
                    }
                    followed.insert(path, f);
                }
            }
            first = false;
        }
        for (path, f) in followed.iter_mut() {
            read_new(f);
            match std::fs::metadata(path) {
                // Rotated: a new file under the name. The old one was read to its end above.
                Ok(m) if (m.dev(), m.ino()) != f.dev_ino => {
                    if let Some((file, meta)) = open(path) {
                        finish_line(f);
                        f.file = file;
                        f.dev_ino = (meta.dev(), meta.ino());
                        f.pos = 0;
                        read_new(f);
                    }
                }
                // Truncated in place (`> file`, copytruncate): from the start again.
                Ok(m) if m.len() < f.pos => {
                    finish_line(f);
                    if f.file.seek(SeekFrom::Start(0)).is_ok() {
                        f.pos = 0;
                        read_new(f);
                    }
                }
                _ => {}
            }
        }
        std::thread::sleep(POLL);
    }
}

fn skip_partial_line(f: &mut Followed) {
    let mut byte = [0u8; 1];
    while let Ok(1) = f.file.read(&mut byte) {
        f.pos += 1;
        if byte[0] == b'\n' {
            break;
        }
    }
}

fn read_new(f: &mut Followed) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0;
    while total < ROUND {
        let n = match f.file.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        total += n;
        f.pos += n as u64;
        let mut batch = LineBatch::default();
        let live = f.splitter.feed(&buf[..n], &mut batch);
        f.writer.lines(Stream::Stdout, batch);
        if let Some(text) = live {
            f.writer.live(Stream::Stdout, text);
        }
    }
    if total > 0 {
        f.writer.flush();
    }
}

/// The file is being replaced: a last line without its `\n` is final now.
fn finish_line(f: &mut Followed) {
    let mut batch = LineBatch::default();
    f.splitter.finish(&mut batch);
    if !batch.is_empty() {
        f.writer.clear_live();
        f.writer.lines(Stream::Stdout, batch);
    }
}
