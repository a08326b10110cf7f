//! Failed logins per client address: a few are free, then each failure makes the client wait
//! longer (1 s, 2 s, 4 s, … up to a minute) before its next attempt is even looked at, and after
//! `max_failures` it is locked out for `lockout`. A success clears the record.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures allowed before delays start.
const FREE_FAILURES: u32 = 3;
const BASE_DELAY: Duration = Duration::from_secs(1);
const MAX_DELAY: Duration = Duration::from_secs(60);
/// Addresses remembered at most; the oldest records go first beyond this.
const MAX_CLIENTS: usize = 10_000;

pub struct Throttle {
    max_failures: u32,
    lockout: Duration,
    clients: Mutex<HashMap<IpAddr, Record>>,
}

#[derive(Clone, Copy)]
struct Record {
    failures: u32,
    blocked_until: Instant,
    last: Instant,
}

impl Throttle {
    pub fn new(max_failures: u32, lockout: Duration) -> Throttle {
        Throttle { max_failures, lockout, clients: Mutex::new(HashMap::new()) }
    }

    /// `Err(wait)` while this address must not try again.
    pub fn check(&self, ip: IpAddr) -> Result<(), Duration> {
        let clients = self.clients.lock().expect("throttle lock");
        match clients.get(&ip) {
            Some(r) if r.blocked_until > Instant::now() => Err(r.blocked_until - Instant::now()),
            _ => Ok(()),
        }
    }

    pub fn failure(&self, ip: IpAddr) {
        let now = Instant::now();
        let mut clients = self.clients.lock().expect("throttle lock");
        if clients.len() >= MAX_CLIENTS && !clients.contains_key(&ip) {
            if let Some(oldest) = clients.iter().min_by_key(|(_, r)| r.last).map(|(k, _)| *k) {
                clients.remove(&oldest);
            }
        }
        let r = clients.entry(ip).or_insert(Record { failures: 0, blocked_until: now, last: now });
        // A lockout that has run out starts the count again.
        if r.failures >= self.max_failures && r.blocked_until <= now {
            r.failures = 0;
        }
        r.failures += 1;
        r.last = now;
        r.blocked_until = if r.failures >= self.max_failures {
            now + self.lockout
        } else if r.failures > FREE_FAILURES {
            now + (BASE_DELAY * 2u32.pow((r.failures - FREE_FAILURES - 1).min(16))).min(MAX_DELAY)
        } else {
            now
        };
    }

    pub fn success(&self, ip: IpAddr) {
        self.clients.lock().expect("throttle lock").remove(&ip);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_then_growing_then_locked_and_released() {
        let t = Throttle::new(6, Duration::from_millis(50));
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        for _ in 0..FREE_FAILURES {
            t.failure(ip);
            assert!(t.check(ip).is_ok());
        }
        t.failure(ip);
        let wait = t.check(ip).unwrap_err();
        assert!(wait > Duration::from_millis(900) && wait <= BASE_DELAY);
        t.failure(ip);
        assert!(t.check(ip).unwrap_err() > Duration::from_millis(1900));
        t.failure(ip); // the 6th: locked out for 50 ms, not 4 s
        assert!(t.check(ip).unwrap_err() <= Duration::from_millis(50));
        std::thread::sleep(Duration::from_millis(60));
        assert!(t.check(ip).is_ok(), "released after the lockout");
        // Another address was never affected; a success clears the record.
        assert!(t.check("10.0.0.2".parse().unwrap()).is_ok());
        t.failure(ip);
        t.success(ip);
        assert!(t.check(ip).is_ok());
    }
}
