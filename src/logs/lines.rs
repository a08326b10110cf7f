//! Splits a child's raw output into lines, with terminal-like `\r` handling.
//!
//! A line ended by `\n` (or `\r\n`, which is what a PTY sends) is final. A `\r` that is *not*
//! followed by `\n` moves the cursor back to the start of the line, as progress bars (tqdm, pip,
//! curl) do for every frame: the text so far is discarded and the next frame replaces it. Only the
//! frame showing when the line finally ends is kept as a final line; the frames in between are
//! reported as the *live* line, which readers may show but which is never stored.

/// What a chunk of output turned into.
#[derive(Debug, PartialEq, Eq)]
pub enum Piece {
    /// A finished line, without its line ending.
    Line(String),
    /// The line currently being drawn (a progress-bar frame or a partial line).
    Live(String),
}

/// Longest line kept as one: a longer run of bytes without a line ending is cut into lines of this
/// length, so that a child printing megabytes without `\n` cannot grow gpubox's memory.
pub const MAX_LINE: usize = 64 * 1024;

#[derive(Default)]
pub struct LineSplitter {
    cur: Vec<u8>,
    pending_cr: bool,
}

impl LineSplitter {
    pub fn feed(&mut self, data: &[u8], out: &mut impl FnMut(Piece)) {
        for &b in data {
            if self.pending_cr {
                self.pending_cr = false;
                if b == b'\n' {
                    self.emit_line(out);
                    continue;
                }
                // A bare `\r`: the next bytes overwrite this line.
                self.cur.clear();
            }
            match b {
                b'\r' => self.pending_cr = true,
                b'\n' => self.emit_line(out),
                _ => {
                    self.cur.push(b);
                    if self.cur.len() >= MAX_LINE {
                        self.emit_line(out);
                    }
                }
            }
        }
        if !self.cur.is_empty() {
            out(Piece::Live(String::from_utf8_lossy(&self.cur).into_owned()));
        }
    }

    /// The stream ended: whatever is left is a final line.
    pub fn finish(&mut self, out: &mut impl FnMut(Piece)) {
        self.pending_cr = false;
        if !self.cur.is_empty() {
            self.emit_line(out);
        }
    }

    fn emit_line(&mut self, out: &mut impl FnMut(Piece)) {
        out(Piece::Line(String::from_utf8_lossy(&self.cur).into_owned()));
        self.cur.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(chunks: &[&[u8]]) -> Vec<Piece> {
        let mut s = LineSplitter::default();
        let mut v = Vec::new();
        for c in chunks {
            s.feed(c, &mut |p| v.push(p));
        }
        s.finish(&mut |p| v.push(p));
        v
    }

    fn lines(pieces: &[Piece]) -> Vec<&str> {
        pieces.iter().filter_map(|p| if let Piece::Line(l) = p { Some(l.as_str()) } else { None }).collect()
    }

    #[test]
    fn plain_lines_and_crlf() {
        let p = split(&[b"a\nb\r\nc"]);
        assert_eq!(lines(&p), ["a", "b", "c"]);
    }

    #[test]
    fn crlf_split_across_chunks_is_one_line_end() {
        let p = split(&[b"a\r", b"\nb\n"]);
        assert_eq!(lines(&p), ["a", "b"]);
    }

    #[test]
    fn progress_bar_keeps_only_its_final_frame() {
        let p = split(&[b"start\n\r 10%|#", b"\r 50%|#####\r100%|##########|\nend\n"]);
        assert_eq!(lines(&p), ["start", "100%|##########|", "end"]);
        assert!(p.contains(&Piece::Live(" 10%|#".into())));
    }

    #[test]
    fn long_lines_are_cut() {
        let big = vec![b'x'; MAX_LINE * 2 + 5];
        let p = split(&[&big]);
        let l = lines(&p);
        assert_eq!(l.len(), 3);
        assert_eq!(l[0].len(), MAX_LINE);
        assert_eq!(l[2].len(), 5);
    }
}
