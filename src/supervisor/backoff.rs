//! Restart delays: exponential, capped, reset after a stable run.

use std::time::Duration;

use crate::config::Backoff;

pub struct BackoffState {
    cfg: Backoff,
    next: Duration,
}

impl BackoffState {
    pub fn new(cfg: Backoff) -> BackoffState {
        BackoffState { cfg, next: cfg.initial }
    }

    /// The delay before the next start, given how long the run that just ended lasted.
    pub fn after_exit(&mut self, ran_for: Duration) -> Duration {
        if ran_for >= self.cfg.reset_after {
            self.next = self.cfg.initial;
        }
        let delay = self.next.min(self.cfg.max);
        self.next = (delay * 2).min(self.cfg.max).max(self.cfg.initial);
        delay
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_caps_and_resets() {
        let ms = Duration::from_millis;
        let mut b = BackoffState::new(Backoff { initial: ms(100), max: ms(500), reset_after: ms(1000) });
        let quick = ms(10);
        let delays: Vec<u128> = (0..5).map(|_| b.after_exit(quick).as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 500, 500]);
        assert_eq!(b.after_exit(ms(1000)), ms(100));
        assert_eq!(b.after_exit(quick), ms(200));
    }
}
