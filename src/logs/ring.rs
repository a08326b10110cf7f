//! A bounded, in-memory buffer of a service's most recent lines, ordered by sequence number.
//!
//! Output arrives in [`Block`]s: the lines of one read of a child's pipe, sharing a timestamp and
//! consecutive sequence numbers (the file writer and the stdout mirror take those as they are).
//! A service that flushes after every line (Python with `PYTHONUNBUFFERED=1`, as Forge runs) sends
//! one line per read, so the ring does not keep blocks: it copies their lines into [`Chunk`]s of up
//! to 64 KiB of text, with each line's number, time and stream beside it. A line then costs its
//! text plus 21 bytes instead of an allocation or two, and a search scans a few large strings
//! instead of a million small ones.

use std::collections::VecDeque;
use std::sync::Arc;

use super::lines::LineBatch;
use super::{LogLine, Stream};

/// Text per chunk before a new one is started.
const CHUNK_TEXT: usize = 64 * 1024;
/// Bytes charged per chunk on top of its buffers: the `Arc`, the struct and the deque slot.
const CHUNK_OVERHEAD: usize = 160;

/// The lines of one read of a service's output.
#[derive(Debug)]
pub struct Block {
    pub first_seq: u64,
    pub time_ms: u64,
    pub service: Arc<str>,
    pub stream: Stream,
    pub lines: LineBatch,
}

impl Block {
    pub fn time(&self) -> std::time::SystemTime {
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(self.time_ms)
    }
}

/// Lines of one service, oldest first, with each one's sequence number, time and stream.
#[derive(Debug, Clone)]
pub struct Chunk {
    pub service: Arc<str>,
    pub lines: LineBatch,
    pub seqs: Vec<u64>,
    pub times: Vec<u64>,
    pub streams: Vec<Stream>,
}

impl Chunk {
    fn new(service: Arc<str>, text: usize) -> Chunk {
        Chunk {
            service,
            lines: LineBatch { text: String::with_capacity(text), ends: Vec::new() },
            seqs: Vec::new(),
            times: Vec::new(),
            streams: Vec::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.seqs.len()
    }

    pub fn first_seq(&self) -> u64 {
        self.seqs.first().copied().unwrap_or(0)
    }

    pub fn last_seq(&self) -> u64 {
        self.seqs.last().copied().unwrap_or(0)
    }

    /// Memory held, in bytes.
    pub fn bytes(&self) -> usize {
        self.lines.text.capacity()
            + self.lines.ends.capacity() * 4
            + self.seqs.capacity() * 8
            + self.times.capacity() * 8
            + self.streams.capacity()
            + CHUNK_OVERHEAD
    }

    pub fn line(&self, i: usize) -> LogLine {
        LogLine {
            seq: self.seqs[i],
            time_ms: self.times[i],
            service: self.service.clone(),
            stream: self.streams[i],
            text: self.lines.line(i).to_string(),
        }
    }

    /// Index of the first line with a sequence number above `seq`.
    fn after(&self, seq: u64) -> usize {
        self.seqs.partition_point(|s| *s <= seq)
    }
}

pub struct Ring {
    chunks: VecDeque<Arc<Chunk>>,
    /// Text per chunk: 64 KiB, less in a small ring, so that it holds several.
    chunk_text: usize,
    bytes: usize,
    capacity: usize,
    lines: usize,
    /// Sequence number of the newest line evicted so far (0: none).
    pub evicted_upto: u64,
}

impl Ring {
    pub fn new(capacity: usize) -> Ring {
        let chunk_text = (capacity / 8).clamp(1024, CHUNK_TEXT);
        Ring { chunks: VecDeque::new(), chunk_text, bytes: 0, capacity, lines: 0, evicted_upto: 0 }
    }

    /// Adds a block's lines; the oldest chunks go when over capacity (the newest always stays).
    /// The lines that fit in the newest chunk are copied in one go (their text with its `\n`s,
    /// then their ends, numbers, times and streams): work per block, not per line.
    pub fn push(&mut self, block: &Block) {
        let b = &block.lines;
        let mut i = 0;
        while i < b.len() {
            // A chunk is filled up to the text buffer it was made with, never grown; an empty one
            // takes any line.
            let line_len = b.ends[i] as usize - b.start(i);
            let fits = |c: &Chunk| c.len() == 0 || c.lines.text.len() + line_len < c.lines.text.capacity();
            if !self.chunks.back().is_some_and(|c| fits(c)) {
                let c = Chunk::new(block.service.clone(), self.chunk_text);
                self.bytes += c.bytes();
                self.chunks.push_back(Arc::new(c));
            }
            let last = self.chunks.back_mut().expect("a chunk");
            let before = last.bytes();
            // A reader holding this chunk keeps its own copy (readers are few and brief).
            let c = Arc::make_mut(last);
            let start = b.start(i);
            // Every line whose text and `\n` still fit: at least the first (see `fits`).
            let room = c.lines.text.capacity().saturating_sub(c.lines.text.len());
            let fit = b.ends[i..].partition_point(|&e| e as usize + 1 - start <= room);
            let j = i + fit.max(1);
            let end = b.ends[j - 1] as usize + 1;
            let off = c.lines.text.len();
            c.lines.text.push_str(&b.text[start..end]);
            c.lines.ends.extend(b.ends[i..j].iter().map(|&e| (e as usize - start + off) as u32));
            c.seqs.extend((i..j).map(|k| block.first_seq + k as u64));
            c.times.resize(c.times.len() + (j - i), block.time_ms);
            c.streams.resize(c.streams.len() + (j - i), block.stream);
            self.bytes = self.bytes - before + c.bytes();
            i = j;
        }
        self.lines += block.lines.len();
        while self.bytes > self.capacity && self.chunks.len() > 1 {
            let old = self.chunks.pop_front().expect("non-empty");
            self.bytes -= old.bytes();
            self.lines -= old.len();
            self.evicted_upto = old.last_seq();
        }
    }

    /// Lines with a sequence number above `after`, at most `max` of them, oldest first.
    pub fn after(&self, after: u64, max: usize) -> Vec<LogLine> {
        let start = self.chunks.partition_point(|c| c.last_seq() <= after);
        let mut out = Vec::new();
        for c in self.chunks.range(start..) {
            for i in c.after(after)..c.len() {
                if out.len() == max {
                    return out;
                }
                out.push(c.line(i));
            }
        }
        out
    }

    /// The last `n` lines, oldest first.
    pub fn last(&self, n: usize) -> Vec<LogLine> {
        let mut out = Vec::new();
        for c in self.chunks.iter().rev() {
            for i in (0..c.len()).rev() {
                if out.len() == n {
                    out.reverse();
                    return out;
                }
                out.push(c.line(i));
            }
        }
        out.reverse();
        out
    }

    /// Every chunk held, oldest first.
    pub fn chunks(&self) -> impl Iterator<Item = &Arc<Chunk>> {
        self.chunks.iter()
    }

    pub fn len(&self) -> usize {
        self.lines
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(first_seq: u64, lines: &[&str]) -> Block {
        let mut b = LineBatch::default();
        for l in lines {
            b.push_str(l);
        }
        Block { first_seq, time_ms: first_seq * 10, service: "s".into(), stream: Stream::Stdout, lines: b }
    }

    #[test]
    fn reads_by_sequence_inside_and_across_blocks() {
        let mut r = Ring::new(1 << 20);
        r.push(&block(1, &["a", "b", "c"]));
        r.push(&block(7, &["d", "e"]));
        let texts = |v: Vec<LogLine>| v.into_iter().map(|l| (l.seq, l.text)).collect::<Vec<_>>();
        assert_eq!(texts(r.after(2, 10)), [(3, "c".into()), (7, "d".into()), (8, "e".into())]);
        assert_eq!(texts(r.after(5, 10)), [(7, "d".into()), (8, "e".into())]);
        assert_eq!(texts(r.after(0, 2)), [(1, "a".into()), (2, "b".into())]);
        assert_eq!(texts(r.last(3)), [(3, "c".into()), (7, "d".into()), (8, "e".into())]);
        assert_eq!(r.len(), 5);
        // Each line keeps its own time, even when blocks share a chunk.
        let times: Vec<u64> = r.after(0, 10).iter().map(|l| l.time_ms).collect();
        assert_eq!(times, [10, 10, 10, 70, 70]);
        assert_eq!(r.chunks().count(), 1, "small blocks share a chunk");
    }

    #[test]
    fn one_line_per_read_costs_little() {
        let mut r = Ring::new(64 << 20);
        let line = "x".repeat(79);
        for i in 0..100_000u64 {
            r.push(&block(i * 2 + 1, &[&line]));
        }
        let per_line = r.bytes() as f64 / 100_000.0;
        assert!(per_line < 80.0 + 40.0, "{per_line} bytes per 80-byte line");
    }

    #[test]
    fn bounded_by_bytes_and_tracks_eviction() {
        let mut r = Ring::new(200 * 1024);
        let line = "y".repeat(1000);
        for i in 0..1000u64 {
            r.push(&block(i * 2 + 1, &[&line, &line]));
        }
        assert!(r.bytes() <= 200 * 1024, "{}", r.bytes());
        assert!(r.evicted_upto > 0);
        assert_eq!(r.after(0, 1_000_000)[0].seq, r.evicted_upto + 1);
        assert_eq!(r.last(1)[0].seq, 2000);
        assert_eq!(r.len(), r.after(0, 1_000_000).len());
    }
}
