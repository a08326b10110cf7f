//! The samples of the last `keep` (24 h by default): a bounded ring of columns, one per series
//! (`cpu`, `mem`, `gpu0_util`, …), 32-bit floats with NaN for "not read". Columns suit both the
//! charts (uPlot takes columns) and thinning a range down to a few hundred points.
//!
//! Size: 24 h at 5 s is 17,280 samples; each is a 4-byte time plus 4 bytes per series: 5 series
//! for the machine and 4 per GPU, so 0.7 MiB with one GPU and 2.5 MiB with eight.

use std::collections::VecDeque;
use std::path::Path;

use serde::{Deserialize, Serialize};

#[derive(Debug)]
pub struct History {
    cap: usize,
    /// Seconds since the Unix epoch, ascending.
    t: VecDeque<u32>,
    cols: Vec<(String, VecDeque<f32>)>,
}

/// A range of the history as the API gives it: times and, per series, values (`null`: not read).
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct Columns {
    /// Seconds between points (each point is the mean of the samples in its step).
    pub step: u32,
    pub t: Vec<u32>,
    pub series: std::collections::BTreeMap<String, Vec<Option<f32>>>,
}

impl History {
    pub fn new(cap: usize) -> History {
        // Whole from the start: grown by doubling, a ring of 17,280 would take 32,768 places.
        // Pages of it not written yet take no memory.
        let cap = cap.max(1);
        History { cap, t: VecDeque::with_capacity(cap), cols: Vec::new() }
    }

    pub fn len(&self) -> usize {
        self.t.len()
    }

    /// Adds one sample; a series not seen before is NaN before it, one missing now is NaN now.
    /// A time not after the last one is dropped (the clock went back).
    pub fn push(&mut self, t: u32, values: &[(String, f32)]) {
        if self.t.back().is_some_and(|&last| t <= last) {
            return;
        }
        if self.t.len() == self.cap {
            self.t.pop_front();
            for (_, c) in &mut self.cols {
                c.pop_front();
            }
        }
        let n = self.t.len();
        self.t.push_back(t);
        for (name, v) in values {
            match self.cols.iter_mut().find(|(c, _)| c == name) {
                Some((_, col)) => col.push_back(*v),
                None => {
                    let mut col: VecDeque<f32> = VecDeque::with_capacity(self.cap);
                    col.extend(std::iter::repeat_n(f32::NAN, n));
                    col.push_back(*v);
                    self.cols.push((name.clone(), col));
                }
            }
        }
        for (_, col) in &mut self.cols {
            if col.len() < n + 1 {
                col.push_back(f32::NAN);
            }
        }
    }

    /// The samples from `from` (seconds) on, thinned to at most `points` by the mean of each
    /// `step`-second bucket (a step that is a multiple of `interval`).
    pub fn range(&self, from: u32, points: usize, interval: u32) -> Columns {
        let start = self.t.partition_point(|&t| t < from);
        let span = self.t.back().map_or(0, |&last| last.saturating_sub(from));
        let interval = interval.max(1);
        let mut step = interval;
        while points > 0 && (span / step) as usize > points {
            step += interval;
        }
        // Buckets of samples; where samples are missing for longer than two steps (gpubox or
        // the instance was stopped), one empty point, so that no chart draws a line across.
        let mut t = Vec::new();
        let mut spans: Vec<Option<(usize, usize)>> = Vec::new();
        for i in start..self.t.len() {
            let bucket = self.t[i] / step * step;
            match t.last() {
                Some(&last) if last == bucket => {
                    if let Some(Some((_, end))) = spans.last_mut() {
                        *end = i + 1;
                    }
                }
                last => {
                    if last.is_some_and(|&l| bucket > l + 2 * step) {
                        t.push(t.last().copied().unwrap_or(0) + step);
                        spans.push(None);
                    }
                    t.push(bucket);
                    spans.push(Some((i, i + 1)));
                }
            }
        }
        let mut series = std::collections::BTreeMap::new();
        for (name, col) in &self.cols {
            let vals = spans
                .iter()
                .map(|span| {
                    let (a, z) = (*span)?;
                    let (sum, n) = (a..z)
                        .map(|i| col[i])
                        .filter(|v| v.is_finite())
                        .fold((0f64, 0u32), |(s, n), v| (s + v as f64, n + 1));
                    (n > 0).then(|| (sum / n as f64) as f32)
                })
                .collect();
            series.insert(name.clone(), vals);
        }
        Columns { step, t, series }
    }

    /// The whole history, every sample (what is saved).
    pub fn all(&self) -> Columns {
        let series = self
            .cols
            .iter()
            .map(|(n, c)| (n.clone(), c.iter().map(|v| v.is_finite().then_some(*v)).collect()))
            .collect();
        Columns { step: 0, t: self.t.iter().copied().collect(), series }
    }

    /// Reads a saved history, keeping what is newer than `since` and not after `until` (a
    /// sample from the future, written under a clock that was ahead, would make every new one
    /// look old and be dropped); an unreadable file is reported and otherwise ignored.
    pub fn load(path: &Path, cap: usize, since: u32, until: u32) -> Result<History, String> {
        let mut h = History::new(cap);
        let text = match std::fs::read(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(h),
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        let saved: Saved =
            serde_json::from_slice(&text).map_err(|e| format!("{} is not a saved history: {e}", path.display()))?;
        let c = saved.columns;
        if c.series.values().any(|v| v.len() != c.t.len()) {
            return Err(format!("{} is not a saved history: its columns differ in length", path.display()));
        }
        let skip = c.t.len().saturating_sub(cap);
        for i in skip..c.t.len() {
            if c.t[i] < since || c.t[i] > until {
                continue;
            }
            let row: Vec<(String, f32)> = c.series.iter().map(|(n, v)| (n.clone(), v[i].unwrap_or(f32::NAN))).collect();
            h.push(c.t[i], &row);
        }
        Ok(h)
    }
}

/// Writes columns taken with [`History::all`] to `path` (a temporary file renamed over it: a
/// crash leaves the old one or the new one whole). Done without the history's lock held.
pub fn save(columns: Columns, path: &Path) -> std::io::Result<()> {
    let mut text = serde_json::to_vec(&Saved { version: 1, columns }).map_err(std::io::Error::other)?;
    text.push(b'\n');
    crate::atomic::write(path, &text, 0o600)
}

#[derive(Serialize, Deserialize)]
struct Saved {
    version: u32,
    columns: Columns,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(cpu: f32) -> Vec<(String, f32)> {
        vec![("cpu".into(), cpu)]
    }

    #[test]
    fn the_ring_keeps_the_newest_and_new_series_start_empty() {
        let mut h = History::new(3);
        for i in 0..5u32 {
            h.push(100 + i * 5, &row(i as f32));
        }
        h.push(120, &row(9.0)); // not after the last: dropped
        let all = h.all();
        assert_eq!(all.t, vec![110, 115, 120]);
        assert_eq!(all.series["cpu"], vec![Some(2.0), Some(3.0), Some(4.0)]);
        h.push(125, &[("cpu".into(), 5.0), ("gpu0_util".into(), 50.0)]);
        h.push(130, &[("gpu0_util".into(), 60.0)]);
        let all = h.all();
        assert_eq!(all.series["gpu0_util"], vec![None, Some(50.0), Some(60.0)]);
        assert_eq!(all.series["cpu"], vec![Some(4.0), Some(5.0), None]);
    }

    #[test]
    fn a_range_is_thinned_to_means_of_whole_steps() {
        let mut h = History::new(10_000);
        for i in 0..720u32 {
            // one hour at 5 s; NaN every tenth sample
            let v = if i % 10 == 9 { f32::NAN } else { (i % 2) as f32 * 10.0 };
            h.push(1_000_000 + i * 5, &row(v));
        }
        let r = h.range(1_000_000, 100, 5);
        assert!(r.t.len() <= 101, "{}", r.t.len());
        assert_eq!(r.step % 5, 0);
        assert!(r.t.windows(2).all(|w| w[1] - w[0] == r.step));
        // Pairs of 0 and 10 average to 5 wherever a whole pair is in the bucket.
        let mid = r.series["cpu"][10].unwrap();
        assert!((4.0..=6.0).contains(&mid), "{mid}");
        // The last 15 minutes, unthinned.
        let last = h.range(1_000_000 + 719 * 5 - 900, 720, 5);
        assert_eq!(last.step, 5);
        assert_eq!(last.t.len(), 181);
    }

    #[test]
    fn a_stretch_without_samples_is_a_gap_not_a_line() {
        let mut h = History::new(1000);
        for i in 0..10u32 {
            h.push(1000 + i * 5, &row(1.0));
        }
        // Stopped for an hour.
        for i in 0..10u32 {
            h.push(5000 + i * 5, &row(2.0));
        }
        let r = h.range(900, 2000, 5);
        assert_eq!(r.step, 5);
        let gap = r.t.iter().position(|&t| t == 1050).expect("an empty point after the last sample");
        assert_eq!(r.series["cpu"][gap], None);
        assert_eq!(r.series["cpu"][gap + 1], Some(2.0));
        assert_eq!(r.t.len(), 21);
        assert!(r.t.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn saved_and_loaded_it_is_the_same_and_old_samples_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.json");
        let mut h = History::new(100);
        for i in 0..50u32 {
            h.push(1000 + i, &[("cpu".into(), i as f32), ("mem".into(), if i == 3 { f32::NAN } else { 1e9 })]);
        }
        save(h.all(), &path).unwrap();
        let back = History::load(&path, 100, 0, u32::MAX).unwrap();
        assert_eq!(back.all(), h.all());
        let newer = History::load(&path, 100, 1040, u32::MAX).unwrap();
        assert_eq!(newer.all().t.first(), Some(&1040));
        let past = History::load(&path, 100, 0, 1009).unwrap();
        assert_eq!(past.all().t.last(), Some(&1009), "nothing from after `until`");
        let small = History::load(&path, 10, 0, u32::MAX).unwrap();
        assert_eq!(small.len(), 10);
        std::fs::write(&path, b"{\"version\":1,\"columns\":{\"step\":0,\"t\":[1,2],\"series\":{\"cpu\":[1]}}}")
            .unwrap();
        assert!(History::load(&path, 10, 0, u32::MAX).unwrap_err().contains("differ in length"));
        std::fs::write(&path, b"garbage").unwrap();
        assert!(History::load(&path, 10, 0, u32::MAX).is_err());
        assert_eq!(History::load(&dir.path().join("none"), 10, 0, u32::MAX).unwrap().len(), 0);
    }
}
