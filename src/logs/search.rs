//! Reading the rings with filters and a search: by service, stream, sequence window, and text or
//! regular expression, newest first up to a limit, optionally with context lines.
//!
//! A search runs over each block's whole text at once (its lines are separated by `\n`), so a
//! million lines cost a few hundred block scans, not a million matcher calls. Blocks never overlap
//! in sequence numbers (each takes a contiguous range), so sorting them by their first number gives
//! the global order of every line.

use std::collections::HashMap;
use std::sync::Arc;

use regex::{Regex, RegexBuilder};

use super::ring::Block;
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
    /// Most lines returned (matches, when searching): the newest of the window.
    pub limit: usize,
    pub matcher: Option<Matcher>,
    /// With a matcher: lines around each match.
    pub context: usize,
}

/// Most lines one query returns.
pub const MAX_LIMIT: usize = 100_000;

impl Query {
    /// The query in the logs app's parameters (`service`, `stream`, `after`, `before`, `limit`,
    /// `q`, `regex`, `case`, `context`; docs/logs-app.md), shared with `gpubox logs`. An error is
    /// `(code, message)`.
    pub fn parse(args: &HashMap<String, String>, default_limit: usize) -> Result<Query, (String, String)> {
        let bad = |m: String| ("bad_parameter".to_string(), m);
        fn number<T: std::str::FromStr>(args: &HashMap<String, String>, key: &str) -> Result<Option<T>, String> {
            match args.get(key).map(|v| v.trim()).filter(|v| !v.is_empty()) {
                None => Ok(None),
                Some(v) => v.parse().map(Some).map_err(|_| format!("`{key}` must be a whole number, not \"{v}\"")),
            }
        }
        let flag = |key: &str| args.get(key).is_some_and(|v| matches!(v.as_str(), "1" | "true" | "yes" | "on"));
        let list = |key: &str| -> Option<Vec<String>> {
            let items: Vec<String> =
                args.get(key)?.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect();
            (!items.is_empty()).then_some(items)
        };
        let streams = match list("stream") {
            None => None,
            Some(names) => Some(
                names
                    .iter()
                    .map(|n| {
                        Stream::parse(n)
                            .ok_or_else(|| bad(format!("unknown stream \"{n}\": use stdout, stderr, tty or event")))
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            ),
        };
        let matcher = match args.get("q").filter(|q| !q.is_empty()) {
            None => None,
            Some(q) => Some(
                Matcher::new(q, flag("regex"), flag("case"))
                    .map_err(|e| ("bad_regex".to_string(), format!("this regular expression does not parse: {e}")))?,
            ),
        };
        Ok(Query {
            services: list("service"),
            streams,
            after: number(args, "after").map_err(bad)?.unwrap_or(0),
            before: number(args, "before").map_err(bad)?,
            limit: number(args, "limit").map_err(bad)?.unwrap_or(default_limit).clamp(1, MAX_LIMIT),
            matcher,
            context: number(args, "context").map_err(bad)?.unwrap_or(0).min(20),
        })
    }
}

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

    /// Indexes of the lines of `block` that match, in order.
    fn lines_of(&self, block: &Block) -> Vec<usize> {
        let b = &block.lines;
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
    /// Older lines in the window were left out by the limit.
    pub more: bool,
    /// Lines looked at.
    pub scanned: u64,
    /// The oldest sequence number the selected rings hold (0 when they are empty).
    pub first_seq: u64,
}

/// A line's place: block index and line index within it.
type Pos = (usize, usize);

pub fn run(blocks: Vec<Arc<Block>>, q: &Query) -> Found {
    let mut blocks: Vec<Arc<Block>> = blocks
        .into_iter()
        .filter(|b| q.streams.as_ref().is_none_or(|s| s.contains(&b.stream)))
        .filter(|b| b.last_seq() > q.after && q.before.is_none_or(|before| b.first_seq < before))
        .collect();
    blocks.sort_by_key(|b| b.first_seq);
    let mut found = Found { first_seq: blocks.first().map_or(0, |b| b.first_seq), ..Found::default() };
    let in_window = |b: &Block, i: usize| {
        let seq = b.first_seq + i as u64;
        seq > q.after && q.before.is_none_or(|before| seq < before)
    };

    // Newest first, up to the limit.
    let mut hits: Vec<Pos> = Vec::new();
    'blocks: for (bi, b) in blocks.iter().enumerate().rev() {
        let candidates: Vec<usize> = match &q.matcher {
            Some(m) => m.lines_of(b),
            None => (0..b.lines.len()).collect(),
        };
        found.scanned += b.lines.len() as u64;
        for &i in candidates.iter().rev() {
            if !in_window(b, i) {
                continue;
            }
            if hits.len() == q.limit {
                found.more = true;
                break 'blocks;
            }
            hits.push((bi, i));
        }
    }
    hits.reverse();

    if q.matcher.is_none() || q.context == 0 {
        found.matched = vec![true; hits.len()];
        found.lines = hits.iter().map(|&(bi, i)| blocks[bi].line(i)).collect();
        return found;
    }
    // Context: the lines around each match, in the same filtered order, each line once.
    let step_back = |(bi, i): Pos| -> Option<Pos> {
        if i > 0 {
            Some((bi, i - 1))
        } else if bi > 0 {
            Some((bi - 1, blocks[bi - 1].lines.len() - 1))
        } else {
            None
        }
    };
    let step_on = |(bi, i): Pos| -> Option<Pos> {
        if i + 1 < blocks[bi].lines.len() {
            Some((bi, i + 1))
        } else if bi + 1 < blocks.len() {
            Some((bi + 1, 0))
        } else {
            None
        }
    };
    let mut out: Vec<(Pos, bool)> = Vec::new();
    for &hit in &hits {
        let mut before = Vec::new();
        let mut p = hit;
        for _ in 0..q.context {
            match step_back(p) {
                Some(prev) if in_window(&blocks[prev.0], prev.1) => {
                    before.push(prev);
                    p = prev;
                }
                _ => break,
            }
        }
        for &pos in before.iter().rev() {
            push_once(&mut out, pos, false);
        }
        push_once(&mut out, hit, true);
        let mut p = hit;
        for _ in 0..q.context {
            match step_on(p) {
                Some(next) if in_window(&blocks[next.0], next.1) => {
                    push_once(&mut out, next, false);
                    p = next;
                }
                _ => break,
            }
        }
    }
    found.matched = out.iter().map(|(_, m)| *m).collect();
    found.lines = out.iter().map(|&((bi, i), _)| blocks[bi].line(i)).collect();
    found
}

/// Adds a line to the sorted list unless it is there already; a match wins over a context line.
fn push_once(out: &mut Vec<(Pos, bool)>, pos: Pos, matched: bool) {
    match out.binary_search_by(|(p, _)| p.cmp(&pos)) {
        Ok(i) => out[i].1 |= matched,
        Err(i) => out.insert(i, (pos, matched)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::LineBatch;

    fn block(first_seq: u64, service: &str, stream: Stream, lines: &[&str]) -> Arc<Block> {
        let mut b = LineBatch::default();
        for l in lines {
            b.push_str(l);
        }
        Arc::new(Block { first_seq, time_ms: 0, service: service.into(), stream, lines: b })
    }

    fn texts(f: &Found) -> Vec<String> {
        f.lines.iter().map(|l| format!("{}:{}", l.seq, l.text)).collect()
    }

    fn blocks() -> Vec<Arc<Block>> {
        vec![
            block(1, "a", Stream::Stdout, &["one", "two ERROR", "three"]),
            block(4, "b", Stream::Stderr, &["error: four", "five"]),
            block(6, "a", Stream::Stdout, &["six", "seven error", "eight"]),
        ]
    }

    #[test]
    fn newest_first_up_to_the_limit_returned_oldest_first() {
        let q = Query { limit: 3, ..Query::default() };
        let f = run(blocks(), &q);
        assert_eq!(texts(&f), ["6:six", "7:seven error", "8:eight"]);
        assert!(f.more);
        let q = Query { limit: 100, after: 2, before: Some(7), ..Query::default() };
        assert_eq!(texts(&run(blocks(), &q)), ["3:three", "4:error: four", "5:five", "6:six"]);
    }

    #[test]
    fn text_search_is_case_insensitive_and_regex_works() {
        let m = Matcher::new("error", false, false).unwrap();
        let q = Query { limit: 100, matcher: Some(m), ..Query::default() };
        assert_eq!(texts(&run(blocks(), &q)), ["2:two ERROR", "4:error: four", "7:seven error"]);
        let m = Matcher::new("^error:", true, true).unwrap();
        let q = Query { limit: 100, matcher: Some(m), ..Query::default() };
        assert_eq!(texts(&run(blocks(), &q)), ["4:error: four"], "^ anchors at each line");
        let m = Matcher::new("e\\s+f", true, false).unwrap();
        let q = Query { limit: 100, matcher: Some(m), ..Query::default() };
        assert!(run(blocks(), &q).lines.is_empty(), "a match never spans two lines");
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
        let f = run(blocks(), &q);
        assert_eq!(texts(&f), ["1:one", "2:two ERROR", "3:three", "6:six", "7:seven error", "8:eight"]);
        assert_eq!(f.matched, [false, true, false, false, true, false]);
        let q = Query { context: 5, ..q };
        let f = run(blocks(), &q);
        assert_eq!(f.lines.len(), 6, "overlapping context: each line once");
        assert_eq!(f.matched.iter().filter(|m| **m).count(), 2);
    }
}
