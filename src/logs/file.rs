//! `<dir>/<service>.log`, rotated by size: `.log` → `.log.1` → … → `.log.<max_files>`.
//!
//! Lines are written as `<RFC 3339 time> <stream> <text>`. Writes go through a buffer that the
//! caller flushes after each chunk of output, so a burst costs one `write` per chunk, not per line.
//! A failing disk (full, read-only) never stops a service: the error is reported once, lines are
//! not written while it lasts, and the file is reopened on a later write.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::ring::Block;

const RETRY_AFTER: Duration = Duration::from_secs(10);

pub struct RotatingFile {
    path: PathBuf,
    max_size: u64,
    max_files: u32,
    out: Option<BufWriter<File>>,
    size: u64,
    /// The block being laid out, kept between blocks: a fresh buffer of this size each time is a
    /// fresh mapping whose pages the kernel must zero and fault in.
    buf: Vec<u8>,
    /// Set while the disk refuses writes; lines are skipped until then.
    broken_since: Option<Instant>,
    pub lines_lost: u64,
}

impl RotatingFile {
    pub fn new(path: PathBuf, max_size: u64, max_files: u32) -> RotatingFile {
        RotatingFile {
            path,
            max_size,
            max_files,
            out: None,
            size: 0,
            buf: Vec::new(),
            broken_since: None,
            lines_lost: 0,
        }
    }

    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// Writes a block of lines; returns an error only when the disk starts failing.
    pub fn write(&mut self, block: &Block) -> Option<io::Error> {
        if let Some(since) = self.broken_since {
            if since.elapsed() < RETRY_AFTER {
                self.lines_lost += block.lines.len() as u64;
                return None;
            }
            self.broken_since = None;
        }
        match self.try_write(block) {
            Ok(()) => None,
            Err(e) => {
                self.out = None;
                self.broken_since = Some(Instant::now());
                self.lines_lost += block.lines.len() as u64;
                Some(e)
            }
        }
    }

    fn try_write(&mut self, block: &Block) -> io::Result<()> {
        // One timestamp for the whole block: its lines arrived in the same read. The block is
        // laid out in one buffer (prefix, line and its `\n`, line after line) and written at
        // once, split only where the file reaches its size and rotates.
        let prefix = format!("{} {} ", humantime::format_rfc3339_millis(block.time()), block.stream.as_str());
        let p = prefix.as_bytes();
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        buf.reserve(block.lines.text.len() + p.len() * block.lines.len());
        let result = self.lay_out(block, p, &mut buf);
        if buf.capacity() <= 1 << 20 {
            self.buf = buf;
        }
        result
    }

    fn lay_out(&mut self, block: &Block, p: &[u8], buf: &mut Vec<u8>) -> io::Result<()> {
        if self.out.is_none() {
            self.open()?;
        }
        for line in block.lines.lines_nl() {
            let len = (p.len() + line.len()) as u64;
            let at = self.size + buf.len() as u64;
            if at > 0 && at + len > self.max_size {
                self.put(buf)?;
                buf.clear();
                self.rotate()?;
            }
            buf.extend_from_slice(p);
            buf.extend_from_slice(line);
        }
        self.put(buf)
    }

    /// Appends bytes laid out by `try_write` (opening the file if needed).
    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        if self.out.is_none() {
            self.open()?;
        }
        self.out.as_mut().expect("opened above").write_all(bytes)?;
        self.size += bytes.len() as u64;
        Ok(())
    }

    pub fn flush(&mut self) {
        if let Some(out) = self.out.as_mut() {
            if out.flush().is_err() {
                self.out = None;
                self.broken_since = Some(Instant::now());
            }
        }
    }

    fn open(&mut self) -> io::Result<()> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let f = OpenOptions::new().create(true).append(true).open(&self.path)?;
        self.size = f.metadata()?.len();
        self.out = Some(BufWriter::with_capacity(64 * 1024, f));
        Ok(())
    }

    fn rotate(&mut self) -> io::Result<()> {
        if let Some(mut out) = self.out.take() {
            out.flush()?;
        }
        let numbered = |i: u32| {
            let mut p = self.path.clone().into_os_string();
            p.push(format!(".{i}"));
            PathBuf::from(p)
        };
        if self.max_files == 0 {
            std::fs::remove_file(&self.path).or_else(ignore_missing)?;
        } else {
            std::fs::remove_file(numbered(self.max_files)).or_else(ignore_missing)?;
            for i in (1..self.max_files).rev() {
                std::fs::rename(numbered(i), numbered(i + 1)).or_else(ignore_missing)?;
            }
            std::fs::rename(&self.path, numbered(1)).or_else(ignore_missing)?;
        }
        self.size = 0;
        Ok(())
    }
}

fn ignore_missing(e: io::Error) -> io::Result<()> {
    if e.kind() == io::ErrorKind::NotFound {
        Ok(())
    } else {
        Err(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::lines::LineBatch;
    use crate::logs::Stream;

    #[test]
    fn rotates_and_keeps_max_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("svc.log");
        let mut f = RotatingFile::new(path.clone(), 200, 2);
        for i in 0..40 {
            let block = Block {
                first_seq: i + 1,
                time_ms: 0,
                service: "svc".into(),
                stream: Stream::Stdout,
                lines: LineBatch::one(format!("line {i}")),
            };
            assert!(f.write(&block).is_none());
        }
        f.flush();
        let mut names: Vec<String> =
            std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        names.sort();
        assert_eq!(names, ["svc.log", "svc.log.1", "svc.log.2"]);
        let current = std::fs::read_to_string(&path).unwrap();
        assert!(current.trim_end().ends_with("stdout line 39"), "{current}");
        assert!(current.len() <= 200);
    }
}
