//! Reading the rings with filters and a search: by service, stream, sequence window, and text or
//! regular expression, newest first up to a limit, optionally with context lines.
//!
//! A search runs over each chunk's whole text at once (its lines are separated by `\n`), so a
//! million lines cost about two thousand scans of 64 KiB, not a million matcher calls. Each
//! service's chunks are in sequence order; the newest matches of each service are merged by
//! sequence number. Context lines come from the same service as their match.

use std::sync::Arc;

use regex::{Regex, RegexBuilder};

use super::ring::Chunk;
use super::{LogLine, Stream};

/// What to read.
#[derive(Debug, Default, Clone)]
pub struct Query {
    /// Only these services (`None`: all).
    pub services: Option<Vec<String>>,
    /// Only these streams (`None`: all).
    pub streams: Option<Vec<Stream>>,
    /// Exclusive bounds on sequence numbers.
    pub after: u64,
    pub before: Option<u64>,
    /// Only lines that came at or after this time (milliseconds since the epoch; 0: any).
    pub since_ms: u64,
    /// Most lines returned (matches, when searching): the newest of the window.
    pub limit: usize,
    pub matcher: Option<Matcher>,
    /// With a matcher: lines around each match.
    pub context: usize,
}

/// Most lines one query returns.
pub const MAX_LIMIT: usize = 100_000;

/// A compiled search.
#[derive(Debug, Clone)]
pub struct Matcher {
    re: Regex,
}

impl Matcher {
    /// `pattern` as text (case-insensitive unless `case`) or as a regular expression.
    pub fn new(pattern: &str, regex: bool, case: bool) -> Result<Matcher, String> {
        let source = if regex { pattern.to_string() } else { regex::escape(pattern) };
        RegexBuilder::new(&source)
            .case_insensitive(!case)
            .multi_line(true)
            .size_limit(8 << 20)
            .build()
            .map(|re| Matcher { re })
            .map_err(|e| e.to_string())
    }

    pub fn is_match(&self, line: &str) -> bool {
        self.re.is_match(line)
    }

    /// Byte ranges of the matches in `line`, for highlighting.
    pub fn ranges(&self, line: &str) -> Vec<(usize, usize)> {
        self.re.find_iter(line).filter(|m| !m.is_empty()).map(|m| (m.start(), m.end())).collect()
    }

    /// Indexes of the lines of `chunk` that match, in order.
    fn lines_of(&self, chunk: &Chunk) -> Vec<usize> {
        let b = &chunk.lines;
        let text = b.text.as_str();
        let mut out = Vec::new();
        let mut pos = 0;
        while pos < text.len() {
            let Some(m) = self.re.find_at(text, pos) else { break };
            let i = b.ends.partition_point(|&e| (e as usize) < m.start());
            if i >= b.len() {
                break;
            }
            let (start, end) = (b.start(i), b.ends[i] as usize);
            // A match that runs over the line's end (`\s` can match the separator) may hide a
            // match inside the line: ask the line alone.
            if m.end() <= end || self.re.is_match(&text[start..end]) {
                out.push(i);
            }
            pos = end + 1;
        }
        out
    }
}

/// What a query found.
#[derive(Debug, Default)]
pub struct Found {
    /// Oldest first. With context, `matched` tells matches from context lines.
    pub lines: Vec<LogLine>,
    pub matched: Vec<bool>,
    /// With context: this line does not follow the one before it of its service (or is the first
    /// of its service after others' lines), so a separator goes before it, as grep's `--`.
    pub new_group: Vec<bool>,
    /// Older lines in the window were left out by the limit.
    pub more: bool,
    /// Lines looked at.
    pub scanned: u64,
    /// The oldest sequence number the selected rings hold (0 when they are empty).
    pub first_seq: u64,
    /// The newest sequence number handed out when the rings were looked at: every line up to it
    /// was either considered or is not in the selected rings.
    pub last_seq: u64,
}

/// A line's place: service, chunk and line index.
type Pos = (usize, usize, usize);

/// Runs `q` over the chunks of some services (each list oldest first). Long because the newest
/// matches of every service are merged by sequence number and their context gathered in one
/// pass over shared positions.
pub fn run(rings: &[Vec<Arc<Chunk>>], q: &Query) -> Found {
    let mut found = Found {
        first_seq: rings.iter().filter_map(|r| r.first()).map(|c| c.first_seq()).min().unwrap_or(0),
        ..Found::default()
    };
    let seq = |(s, c, i): Pos| rings[s][c].seqs[i];
    let keep = |(s, c, i): Pos| {
        let chunk = &rings[s][c];
        let n = chunk.seqs[i];
        n > q.after
            && q.before.is_none_or(|b| n < b)
            && chunk.times[i] >= q.since_ms
            && q.streams.as_ref().is_none_or(|st| st.contains(&chunk.streams[i]))
    };

    // Each service's newest hits, up to the limit, then merged by sequence number.
    let mut hits: Vec<Pos> = Vec::new();
    for (s, chunks) in rings.iter().enumerate() {
        let mut mine = 0;
        'chunks: for (c, chunk) in chunks.iter().enumerate().rev() {
            // Chunks are in order of time as of sequence: older ones hold nothing wanted.
            if chunk.last_seq() <= q.after || chunk.times.last().is_some_and(|t| *t < q.since_ms) {
                break;
            }
            if q.before.is_some_and(|b| chunk.first_seq() >= b) {
                continue;
            }
            found.scanned += chunk.len() as u64;
            let candidates: Vec<usize> = match &q.matcher {
                Some(m) => m.lines_of(chunk),
                None => (0..chunk.len()).collect(),
            };
            for &i in candidates.iter().rev() {
                if !keep((s, c, i)) {
                    continue;
                }
                if mine == q.limit {
                    found.more = true;
                    break 'chunks;
                }
                hits.push((s, c, i));
                mine += 1;
            }
        }
    }
    hits.sort_unstable_by_key(|p| std::cmp::Reverse(seq(*p)));
    if hits.len() > q.limit {
        hits.truncate(q.limit);
        found.more = true;
    }
    hits.reverse();

    let with_context = q.matcher.is_some() && q.context > 0;
    // A service's line before and after a position, and whether the stream filter shows it.
    let step_back = |(s, c, i): Pos| -> Option<Pos> {
        if i > 0 {
            Some((s, c, i - 1))
        } else if c > 0 {
            Some((s, c - 1, rings[s][c - 1].len() - 1))
        } else {
            None
        }
    };
    let step_on = |(s, c, i): Pos| -> Option<Pos> {
        if i + 1 < rings[s][c].len() {
            Some((s, c, i + 1))
        } else if c + 1 < rings[s].len() {
            Some((s, c + 1, 0))
        } else {
            None
        }
    };
    let shown = |(s, c, i): Pos| q.streams.as_ref().is_none_or(|st| st.contains(&rings[s][c].streams[i]));
    let mut out: Vec<(u64, Pos, bool)> = Vec::with_capacity(hits.len());
    for &hit in &hits {
        out.push((seq(hit), hit, true));
        if !with_context {
            continue;
        }
        let (s, _, _) = hit;
        for step in [&step_back as &dyn Fn(Pos) -> Option<Pos>, &step_on] {
            let mut p = hit;
            let mut taken = 0;
            while taken < q.context {
                let Some(next) = step(p) else { break };
                p = next;
                debug_assert_eq!(p.0, s);
                if !shown(p) {
                    continue; // another stream: skipped, not counted
                }
                if !keep(p) {
                    break; // out of the window
                }
                out.push((seq(p), p, false));
                taken += 1;
            }
        }
    }
    // In order, each line once; a match wins over the same line as context.
    out.sort_unstable_by_key(|(n, _, matched)| (*n, !*matched));
    out.dedup_by_key(|(n, _, _)| *n);
    if with_context {
        // The line a reader of this service's (filtered) lines would see after `p`.
        let next_shown = |mut p: Pos| -> Option<Pos> {
            loop {
                p = step_on(p)?;
                if shown(p) {
                    return Some(p);
                }
            }
        };
        let mut last: Vec<Option<Pos>> = vec![None; rings.len()];
        for (k, &(_, pos, _)) in out.iter().enumerate() {
            let split = match last[pos.0] {
                Some(prev) => next_shown(prev) != Some(pos),
                None => k > 0,
            };
            found.new_group.push(split);
            last[pos.0] = Some(pos);
        }
    }
    found.matched = out.iter().map(|(_, _, m)| *m).collect();
    found.lines = out.iter().map(|&(_, (s, c, i), _)| rings[s][c].line(i)).collect();
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::LineBatch;

    /// One service's lines: `(seq, stream, text)`, in chunks of at most `per_chunk` lines.
    fn chunks(service: &str, lines: &[(u64, Stream, &str)], per_chunk: usize) -> Vec<Arc<Chunk>> {
        lines
            .chunks(per_chunk)
            .map(|part| {
                let mut c = Chunk {
                    service: service.into(),
                    lines: LineBatch::default(),
                    seqs: vec![],
                    times: vec![],
                    streams: vec![],
                };
                for (seq, stream, text) in part {
                    c.lines.push_str(text);
                    c.seqs.push(*seq);
                    // A line's time is ten times its number: time bounds are testable.
                    c.times.push(seq * 10);
                    c.streams.push(*stream);
                }
                Arc::new(c)
            })
            .collect()
    }

    fn texts(f: &Found) -> Vec<String> {
        f.lines.iter().map(|l| format!("{}:{}", l.seq, l.text)).collect()
    }

    fn blocks() -> Vec<Vec<Arc<Chunk>>> {
        use Stream::{Stderr as E, Stdout as O};
        vec![
            chunks(
                "a",
                &[
                    (1, O, "one"),
                    (2, O, "two ERROR"),
                    (3, O, "three"),
                    (6, O, "six"),
                    (7, O, "seven error"),
                    (8, O, "eight"),
                ],
                2,
            ),
            chunks("b", &[(4, E, "error: four"), (5, E, "five")], 10),
        ]
    }

    #[test]
    fn newest_first_up_to_the_limit_returned_oldest_first() {
        let q = Query { limit: 3, ..Query::default() };
        let f = run(&blocks(), &q);
        assert_eq!(texts(&f), ["6:six", "7:seven error", "8:eight"]);
        assert!(f.more);
        let q = Query { limit: 100, after: 2, before: Some(7), ..Query::default() };
        assert_eq!(texts(&run(&blocks(), &q)), ["3:three", "4:error: four", "5:five", "6:six"]);
    }

    #[test]
    fn a_time_bound_leaves_out_older_lines_of_every_service() {
        let q = Query { limit: 100, since_ms: 45, ..Query::default() };
        assert_eq!(texts(&run(&blocks(), &q)), ["5:five", "6:six", "7:seven error", "8:eight"]);
        let q = Query { limit: 100, since_ms: 81, ..Query::default() };
        assert!(run(&blocks(), &q).lines.is_empty());
    }

    #[test]
    fn text_search_is_case_insensitive_and_regex_works() {
        let m = Matcher::new("error", false, false).unwrap();
        let q = Query { limit: 100, matcher: Some(m), ..Query::default() };
        assert_eq!(texts(&run(&blocks(), &q)), ["2:two ERROR", "4:error: four", "7:seven error"]);
        let m = Matcher::new("^error:", true, true).unwrap();
        let q = Query { limit: 100, matcher: Some(m), ..Query::default() };
        assert_eq!(texts(&run(&blocks(), &q)), ["4:error: four"], "^ anchors at each line");
        let m = Matcher::new("e\\s+f", true, false).unwrap();
        let q = Query { limit: 100, matcher: Some(m), ..Query::default() };
        assert!(run(&blocks(), &q).lines.is_empty(), "a match never spans two lines");
        assert!(Matcher::new("(unclosed", true, false).is_err());
        assert_eq!(Matcher::new("a.b", false, false).unwrap().ranges("xa.b a_b A.B"), [(1, 4), (9, 12)]);
    }

    #[test]
    fn filters_and_context() {
        let q = Query {
            limit: 100,
            services: None,
            streams: Some(vec![Stream::Stdout]),
            matcher: Some(Matcher::new("error", false, false).unwrap()),
            context: 1,
            ..Query::default()
        };
        let f = run(&blocks(), &q);
        assert_eq!(texts(&f), ["1:one", "2:two ERROR", "3:three", "6:six", "7:seven error", "8:eight"]);
        assert_eq!(f.matched, [false, true, false, false, true, false]);
        let q = Query { context: 5, ..q };
        let f = run(&blocks(), &q);
        assert_eq!(f.lines.len(), 6, "overlapping context: each line once");
        assert_eq!(f.matched.iter().filter(|m| **m).count(), 2);
        // Context comes from the match's own service, skipping other streams.
        let q = Query {
            streams: None,
            services: None,
            context: 1,
            limit: 100,
            matcher: Some(Matcher::new("four", false, false).unwrap()),
            ..Query::default()
        };
        assert_eq!(texts(&run(&blocks(), &q)), ["4:error: four", "5:five"]);
        // Groups: a line that does not follow the previous one of its service starts one, and so
        // does the first line of a service after another's.
        let q = Query { matcher: Some(Matcher::new("one|eight|four", true, false).unwrap()), ..q };
        let f = run(&blocks(), &q);
        assert_eq!(texts(&f), ["1:one", "2:two ERROR", "4:error: four", "5:five", "7:seven error", "8:eight"]);
        assert_eq!(f.new_group, [false, false, true, false, true, false]);
        let q = Query {
            matcher: Some(Matcher::new("error", false, false).unwrap()),
            streams: Some(vec![Stream::Stdout]),
            ..q
        };
        let f = run(&blocks(), &q);
        assert_eq!(f.new_group, [false; 6], "1 2 3 6 7 8 follow each other in service a");
    }
}
