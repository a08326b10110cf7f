//! A bounded, in-memory buffer of a service's most recent lines, ordered by sequence number.
//!
//! Lines are kept in [`Block`]s: the lines of one chunk of output, sharing one allocation, one
//! timestamp and consecutive sequence numbers. A flood of short lines then costs one allocation
//! per 64 KiB read instead of two per line; readers get owned [`LogLine`]s built on demand.

use std::collections::VecDeque;
use std::sync::Arc;

use super::lines::LineBatch;
use super::{LogLine, Stream};

/// Bytes charged per block on top of its buffers: the `Arc`, the struct and the deque slot.
const BLOCK_OVERHEAD: usize = 128;

#[derive(Debug)]
pub struct Block {
    pub first_seq: u64,
    pub time_ms: u64,
    pub service: Arc<str>,
    pub stream: Stream,
    pub lines: LineBatch,
}

impl Block {
    pub fn last_seq(&self) -> u64 {
        self.first_seq + self.lines.len() as u64 - 1
    }

    pub fn time(&self) -> std::time::SystemTime {
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(self.time_ms)
    }

    /// Memory held, in bytes.
    pub fn bytes(&self) -> usize {
        self.lines.text.capacity() + self.lines.ends.capacity() * 4 + BLOCK_OVERHEAD
    }

    pub fn line(&self, i: usize) -> LogLine {
        LogLine {
            seq: self.first_seq + i as u64,
            time_ms: self.time_ms,
            service: self.service.clone(),
            stream: self.stream,
            text: self.lines.line(i).to_string(),
        }
    }
}

pub struct Ring {
    blocks: VecDeque<Arc<Block>>,
    bytes: usize,
    capacity: usize,
    /// Sequence number of the newest line evicted so far (0: none).
    pub evicted_upto: u64,
}

impl Ring {
    pub fn new(capacity: usize) -> Ring {
        Ring { blocks: VecDeque::new(), bytes: 0, capacity, evicted_upto: 0 }
    }

    /// Adds a block; the oldest blocks go when over capacity (the newest always stays).
    pub fn push(&mut self, block: Arc<Block>) {
        self.bytes += block.bytes();
        self.blocks.push_back(block);
        while self.bytes > self.capacity && self.blocks.len() > 1 {
            let old = self.blocks.pop_front().expect("non-empty");
            self.bytes -= old.bytes();
            self.evicted_upto = old.last_seq();
        }
    }

    /// Lines with a sequence number above `after`, at most `max` of them, oldest first.
    pub fn after(&self, after: u64, max: usize) -> Vec<LogLine> {
        let start = self.blocks.partition_point(|b| b.last_seq() <= after);
        let mut out = Vec::new();
        for b in self.blocks.range(start..) {
            let skip = after.saturating_sub(b.first_seq - 1).min(b.lines.len() as u64) as usize;
            for i in skip..b.lines.len() {
                if out.len() == max {
                    return out;
                }
                out.push(b.line(i));
            }
        }
        out
    }

    /// The last `n` lines, oldest first.
    pub fn last(&self, n: usize) -> Vec<LogLine> {
        let mut out = Vec::new();
        for b in self.blocks.iter().rev() {
            for i in (0..b.lines.len()).rev() {
                if out.len() == n {
                    out.reverse();
                    return out;
                }
                out.push(b.line(i));
            }
        }
        out.reverse();
        out
    }

    /// Every block held, oldest first.
    pub fn blocks(&self) -> impl Iterator<Item = &Arc<Block>> {
        self.blocks.iter()
    }

    pub fn len(&self) -> usize {
        self.blocks.iter().map(|b| b.lines.len()).sum()
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(first_seq: u64, lines: &[&str]) -> Arc<Block> {
        let mut b = LineBatch::default();
        for l in lines {
            b.push_str(l);
        }
        Arc::new(Block { first_seq, time_ms: 0, service: "s".into(), stream: Stream::Stdout, lines: b })
    }

    #[test]
    fn reads_by_sequence_inside_and_across_blocks() {
        let mut r = Ring::new(1 << 20);
        r.push(block(1, &["a", "b", "c"]));
        r.push(block(7, &["d", "e"]));
        let texts = |v: Vec<LogLine>| v.into_iter().map(|l| (l.seq, l.text)).collect::<Vec<_>>();
        assert_eq!(texts(r.after(2, 10)), [(3, "c".into()), (7, "d".into()), (8, "e".into())]);
        assert_eq!(texts(r.after(5, 10)), [(7, "d".into()), (8, "e".into())]);
        assert_eq!(texts(r.after(0, 2)), [(1, "a".into()), (2, "b".into())]);
        assert_eq!(texts(r.last(3)), [(3, "c".into()), (7, "d".into()), (8, "e".into())]);
        assert_eq!(r.len(), 5);
    }

    #[test]
    fn bounded_by_bytes_and_tracks_eviction() {
        let mut r = Ring::new(3 * (BLOCK_OVERHEAD + 64));
        for i in 0..10 {
            r.push(block(i * 2 + 1, &["x", "y"]));
        }
        assert!(r.bytes() <= 3 * (BLOCK_OVERHEAD + 64));
        assert!(r.evicted_upto > 0);
        assert_eq!(r.after(0, 100)[0].seq, r.evicted_upto + 1);
        assert_eq!(r.last(1)[0].seq, 20);
    }
}
