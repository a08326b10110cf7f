//! Splits a child's raw output into lines, with terminal-like `\r` handling.
//!
//! A line ended by `\n` (or `\r\n`, which is what a PTY sends) is final. A `\r` that is *not*
//! followed by `\n` moves the cursor back to the start of the line, as progress bars (tqdm, pip,
//! curl) do for every frame: the text so far is discarded and the next frame replaces it. Only the
//! frame showing when the line finally ends is kept as a final line; the frame on screen at the
//! end of a chunk is reported as the *live* line, which readers may show but which is never stored.
//!
//! Lines are collected into a [`LineBatch`] per chunk read, so that everything downstream (the
//! lock, the clock, the file, the ring, the mirror) is paid once per chunk, not once per line.

use memchr::memchr2;

/// Longest line kept as one: a longer run of bytes without a line ending is cut into lines of this
/// length, so that a child printing megabytes without `\n` cannot grow gpubox's memory.
pub const MAX_LINE: usize = 64 * 1024;

/// Lines, each followed by `\n`, in one string, with the end offset of each (before its `\n`).
/// The separators let a search run over a whole batch at once (see `logs::search`).
#[derive(Debug, Default, Clone)]
pub struct LineBatch {
    pub text: String,
    pub ends: Vec<u32>,
}

impl LineBatch {
    pub fn one(mut line: String) -> LineBatch {
        let ends = vec![line.len() as u32];
        line.push('\n');
        LineBatch { text: line, ends }
    }

    /// Start offset of line `i`.
    pub fn start(&self, i: usize) -> usize {
        if i == 0 {
            0
        } else {
            self.ends[i - 1] as usize + 1
        }
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    pub fn line(&self, i: usize) -> &str {
        &self.text[self.start(i)..self.ends[i] as usize]
    }

    pub fn lines(&self) -> impl Iterator<Item = &str> {
        (0..self.len()).map(|i| self.line(i))
    }

    fn push(&mut self, bytes: &[u8]) {
        self.push_str(&String::from_utf8_lossy(bytes));
    }

    /// Appends one line (valid UTF-8 in the common case) without checking it again.
    pub fn push_str(&mut self, line: &str) {
        self.text.push_str(line);
        self.ends.push(self.text.len() as u32);
        self.text.push('\n');
    }
}

#[derive(Default)]
pub struct LineSplitter {
    cur: Vec<u8>,
    pending_cr: bool,
}

impl LineSplitter {
    /// Adds the final lines found in `data` to `batch`; returns the live line, if one is being
    /// drawn when the chunk ends.
    pub fn feed(&mut self, data: &[u8], batch: &mut LineBatch) -> Option<String> {
        // `\n` and `\r` are never inside a multi-byte character, so slices between them of a
        // valid chunk are valid too.
        let valid = std::str::from_utf8(data).ok();
        let mut i = 0;
        while i < data.len() {
            if self.pending_cr {
                self.pending_cr = false;
                if data[i] == b'\n' {
                    self.emit(batch);
                    i += 1;
                    continue;
                }
                // A bare `\r`: the next bytes overwrite this line.
                self.cur.clear();
            }
            let rest = &data[i..];
            match memchr2(b'\n', b'\r', rest) {
                Some(at) => {
                    let seg = &rest[..at];
                    if rest[at] == b'\n' && self.cur.is_empty() && seg.len() < MAX_LINE {
                        // The common case: a whole line inside this chunk, copied once (and, when
                        // the chunk is valid UTF-8, without checking each line again).
                        match valid {
                            Some(text) => batch.push_str(&text[i..i + at]),
                            None => batch.push(seg),
                        }
                    } else {
                        self.extend(seg, batch);
                        if rest[at] == b'\n' {
                            self.emit(batch);
                        } else {
                            self.pending_cr = true;
                        }
                    }
                    i += at + 1;
                }
                None => {
                    self.extend(rest, batch);
                    i = data.len();
                }
            }
        }
        (!self.cur.is_empty()).then(|| String::from_utf8_lossy(&self.cur).into_owned())
    }

    /// The stream ended: whatever is left is a final line.
    pub fn finish(&mut self, batch: &mut LineBatch) {
        self.pending_cr = false;
        if !self.cur.is_empty() {
            self.emit(batch);
        }
    }

    fn extend(&mut self, bytes: &[u8], batch: &mut LineBatch) {
        self.cur.extend_from_slice(bytes);
        while self.cur.len() >= MAX_LINE {
            batch.push(&self.cur[..MAX_LINE]);
            self.cur.drain(..MAX_LINE);
        }
    }

    fn emit(&mut self, batch: &mut LineBatch) {
        batch.push(&self.cur);
        self.cur.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Final lines and live lines of feeding `chunks` one after another.
    fn split(chunks: &[&[u8]]) -> (Vec<String>, Vec<String>) {
        let mut s = LineSplitter::default();
        let mut b = LineBatch::default();
        let mut live = Vec::new();
        for c in chunks {
            live.extend(s.feed(c, &mut b));
        }
        s.finish(&mut b);
        (b.lines().map(String::from).collect(), live)
    }

    #[test]
    fn plain_lines_and_crlf() {
        assert_eq!(split(&[b"a\nb\r\nc"]).0, ["a", "b", "c"]);
    }

    #[test]
    fn crlf_split_across_chunks_is_one_line_end() {
        assert_eq!(split(&[b"a\r", b"\nb\n"]).0, ["a", "b"]);
    }

    #[test]
    fn a_line_split_across_chunks_is_joined() {
        let (lines, live) = split(&[b"hel", b"lo\nwor", b"ld\n"]);
        assert_eq!(lines, ["hello", "world"]);
        assert_eq!(live, ["hel", "wor"]);
    }

    #[test]
    fn progress_bar_keeps_only_its_final_frame() {
        let (lines, live) = split(&[b"start\n\r 10%|#", b"\r 50%|#####\r100%|##########|\nend\n"]);
        assert_eq!(lines, ["start", "100%|##########|", "end"]);
        assert_eq!(live, [" 10%|#"]);
    }

    #[test]
    fn long_lines_are_cut() {
        let big = vec![b'x'; MAX_LINE * 2 + 5];
        let (lines, _) = split(&[&big, b"\n"]);
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0].len(), MAX_LINE);
        assert_eq!(lines[2].len(), 5);
    }

    #[test]
    fn invalid_utf8_is_replaced_not_dropped() {
        assert_eq!(split(&[b"caf\xe9\n"]).0, ["caf\u{fffd}"]);
    }
}
