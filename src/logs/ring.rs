//! A bounded, in-memory buffer of a service's most recent lines, ordered by sequence number.

use std::collections::VecDeque;
use std::sync::Arc;

use super::LogLine;

/// Bytes charged per line on top of its text: the `Arc`, the struct and the deque slot.
const LINE_OVERHEAD: usize = 96;

pub struct Ring {
    lines: VecDeque<Arc<LogLine>>,
    bytes: usize,
    capacity: usize,
    /// Sequence number of the newest line evicted so far (0: none).
    pub evicted_upto: u64,
}

impl Ring {
    pub fn new(capacity: usize) -> Ring {
        Ring { lines: VecDeque::new(), bytes: 0, capacity, evicted_upto: 0 }
    }

    pub fn push(&mut self, line: Arc<LogLine>) {
        self.bytes += line.text.len() + LINE_OVERHEAD;
        self.lines.push_back(line);
        while self.bytes > self.capacity && self.lines.len() > 1 {
            let old = self.lines.pop_front().expect("non-empty");
            self.bytes -= old.text.len() + LINE_OVERHEAD;
            self.evicted_upto = old.seq;
        }
    }

    /// Lines with a sequence number above `after`, at most `max` of them, oldest first.
    pub fn after(&self, after: u64, max: usize) -> impl Iterator<Item = &Arc<LogLine>> {
        let start = self.lines.partition_point(|l| l.seq <= after);
        self.lines.range(start..).take(max)
    }

    /// The last `n` lines, oldest first.
    pub fn last(&self, n: usize) -> impl Iterator<Item = &Arc<LogLine>> {
        self.lines.range(self.lines.len().saturating_sub(n)..)
    }

    pub fn len(&self) -> usize {
        self.lines.len()
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::Stream;

    fn line(seq: u64, text: &str) -> Arc<LogLine> {
        Arc::new(LogLine { seq, time_ms: 0, service: "s".into(), stream: Stream::Stdout, text: text.into() })
    }

    #[test]
    fn bounded_by_bytes_and_tracks_eviction() {
        let mut r = Ring::new(4 * (LINE_OVERHEAD + 4));
        for i in 1..=10 {
            r.push(line(i, "abcd"));
        }
        assert_eq!(r.len(), 4);
        assert_eq!(r.evicted_upto, 6);
        let seqs: Vec<u64> = r.after(8, 10).map(|l| l.seq).collect();
        assert_eq!(seqs, [9, 10]);
        let seqs: Vec<u64> = r.last(2).map(|l| l.seq).collect();
        assert_eq!(seqs, [9, 10]);
    }
}
