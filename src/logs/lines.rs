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

    #[cfg(test)]
    pub fn lines(&self) -> impl Iterator<Item = &str> {
        (0..self.len()).map(|i| self.line(i))
    }

    /// Each line with its `\n`, as bytes: what the file and the stdout mirror copy out.
    pub fn lines_nl(&self) -> impl Iterator<Item = &[u8]> {
        let text = self.text.as_bytes();
        let mut start = 0;
        self.ends.iter().map(move |&e| {
            let line = &text[start..=e as usize];
            start = e as usize + 1;
            line
        })
    }

    fn push(&mut self, bytes: &[u8]) {
        self.push_str(&String::from_utf8_lossy(bytes));
    }

    /// Appends whole lines at once: `lines` ends with `\n` and holds no `\r`. Returns false, and
    /// appends nothing, when one of them is too long to be kept as one line.
    fn push_lines(&mut self, lines: &str) -> bool {
        let (base, before) = (self.text.len(), self.ends.len());
        let mut start = 0;
        for nl in memchr::memchr_iter(b'\n', lines.as_bytes()) {
            if nl - start >= MAX_LINE {
                self.ends.truncate(before);
                return false;
            }
            self.ends.push((base + nl) as u32);
            start = nl + 1;
        }
        self.text.push_str(lines);
        true
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
        let mut tried = false;
        while i < data.len() {
            // The common case: valid text, no line begun, and up to the chunk's last `\n` no `\r`
            // (a pipe, not a progress bar): every whole line copied at once, their ends found in
            // one pass. Tried once, as soon as a line begun in the last chunk is done.
            if let (Some(text), false, true, false) = (valid, self.pending_cr, self.cur.is_empty(), tried) {
                tried = true;
                if let Some(last) = memchr::memrchr(b'\n', &data[i..]).map(|l| i + l) {
                    if memchr::memchr(b'\r', &data[i..last]).is_none() && batch.push_lines(&text[i..=last]) {
                        i = last + 1;
                        continue;
                    }
                }
            }
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

    /// The whole-chunk path gives what the line-by-line path gives, however the output is cut
    /// into reads: plain lines, `\r\n`, progress frames, long lines and a line split over reads.
    #[test]
    fn any_chunking_gives_the_same_lines() {
        let mut text = Vec::new();
        for i in 0..3000u32 {
            // Mostly plain lines (the whole-chunk path), now and then the others.
            match i % 500 {
                0 => text.extend_from_slice(format!("crlf {i}\r\n").as_bytes()),
                1 => text.extend_from_slice(format!("frame {i}\rfinal {i}\n").as_bytes()),
                250 => text.extend(std::iter::repeat_n(b'x', MAX_LINE + 7).chain([b'\n'])),
                _ => text.extend_from_slice(format!("{i}\n").as_bytes()),
            }
        }
        // Lines only: a live line per one-byte read would be a copy of the line so far each time.
        let lines = |chunks: &[&[u8]]| {
            let (mut s, mut b) = (LineSplitter::default(), LineBatch::default());
            for c in chunks {
                s.feed(c, &mut b);
            }
            s.finish(&mut b);
            b.lines().map(String::from).collect::<Vec<_>>()
        };
        let one_by_one: Vec<&[u8]> = text.chunks(1).collect();
        let reference = lines(&one_by_one);
        let mut seed = 7u64;
        for _ in 0..20 {
            let mut chunks = Vec::new();
            let mut rest = &text[..];
            while !rest.is_empty() {
                seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let n = (1 + (seed >> 33) % 140_000) as usize;
                let (a, b) = rest.split_at(n.min(rest.len()));
                chunks.push(a);
                rest = b;
            }
            assert_eq!(lines(&chunks), reference);
        }
        assert!(reference.iter().any(|l| l == "final 1") && reference.len() > 3000);
        assert!(reference.iter().any(|l| l == "crlf 500") && !reference.iter().any(|l| l.contains('\r')));
    }

    #[test]
    fn invalid_utf8_is_replaced_not_dropped() {
        assert_eq!(split(&[b"caf\xe9\n"]).0, ["caf\u{fffd}"]);
    }
}
