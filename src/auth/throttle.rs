//! Failed logins per client address: a few are free, then each failure makes the client wait
//! longer (1 s, 2 s, 4 s, … up to a minute) before its next attempt is even looked at, and after
//! `max_failures` it is locked out for `lockout`. A success clears the record.
//!
//! An attempt counts as a failure from the moment it starts ([`Throttle::begin`]), so a client
//! that sends a hundred attempts at once gets its few free ones and a refusal for the rest,
//! rather than a hundred password checks. IPv6 clients are counted per /64, the block one
//! machine usually owns.

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
    #[cfg(test)]
    pub fn check(&self, ip: IpAddr) -> Result<(), Duration> {
        let clients = self.clients.lock().expect("throttle lock");
        let now = Instant::now();
        match clients.get(&client(ip)) {
            Some(r) if r.blocked_until > now => Err(r.blocked_until - now),
            _ => Ok(()),
        }
    }

    /// Starts an attempt: `Err(wait)` while this address must not try, else the attempt is
    /// counted as a failure until [`Throttle::success`] clears it. Check and count happen under
    /// one lock, so attempts made at the same time cannot all slip through.
    pub fn begin(&self, ip: IpAddr) -> Result<(), Duration> {
        let mut clients = self.clients.lock().expect("throttle lock");
        let now = Instant::now();
        if let Some(r) = clients.get(&client(ip)) {
            if r.blocked_until > now {
                return Err(r.blocked_until - now);
            }
        }
        self.record_failure(&mut clients, client(ip), now);
        Ok(())
    }

    #[cfg(test)]
    pub fn failure(&self, ip: IpAddr) {
        let mut clients = self.clients.lock().expect("throttle lock");
        self.record_failure(&mut clients, client(ip), Instant::now());
    }

    fn record_failure(&self, clients: &mut HashMap<IpAddr, Record>, key: IpAddr, now: Instant) {
        if clients.len() >= MAX_CLIENTS && !clients.contains_key(&key) {
            // Full: forget the records nobody has added to lately, or, failing that, the older
            // half. Either way this runs once per many insertions, not on each.
            let quiet = self.lockout.max(MAX_DELAY);
            clients.retain(|_, r| r.blocked_until > now || now.duration_since(r.last) < quiet);
            if clients.len() >= MAX_CLIENTS {
                let mut lasts: Vec<Instant> = clients.values().map(|r| r.last).collect();
                let (_, median, _) = lasts.select_nth_unstable(MAX_CLIENTS / 2);
                let median = *median;
                clients.retain(|_, r| r.last > median);
            }
        }
        let r = clients.entry(key).or_insert(Record { failures: 0, blocked_until: now, last: now });
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
        self.clients.lock().expect("throttle lock").remove(&client(ip));
    }
}

/// Whom a record is kept for: an IPv4 address, or an IPv6 address's /64.
fn client(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        },
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

    #[test]
    fn attempts_count_from_their_start_and_ipv6_counts_per_64() {
        let t = Throttle::new(100, Duration::from_secs(60));
        let a: IpAddr = "2001:db8:1:2::10".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::99".parse().unwrap();
        let elsewhere: IpAddr = "2001:db8:1:3::10".parse().unwrap();
        // Attempts in flight at once: the free ones start, the next is refused.
        for _ in 0..FREE_FAILURES + 1 {
            assert!(t.begin(a).is_ok());
        }
        assert!(t.begin(b).is_err(), "the same /64 shares the record");
        assert!(t.begin(elsewhere).is_ok());
        t.success(b);
        assert!(t.begin(a).is_ok(), "a success clears the /64's record");
        let mapped: IpAddr = "::ffff:10.0.0.9".parse().unwrap();
        assert_eq!(client(mapped), "10.0.0.9".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn a_full_table_forgets_the_oldest() {
        let t = Throttle::new(5, Duration::from_secs(60));
        for i in 0..MAX_CLIENTS as u32 + 10 {
            t.failure(IpAddr::V4(i.into()));
        }
        let n = t.clients.lock().unwrap().len();
        assert!(n <= MAX_CLIENTS && n > MAX_CLIENTS / 4, "{n} records");
        assert!(t.check(IpAddr::V4((MAX_CLIENTS as u32 + 9).into())).is_ok());
        // The newest records are kept: the last address is still counted.
        assert!(t.clients.lock().unwrap().contains_key(&IpAddr::V4((MAX_CLIENTS as u32 + 9).into())));
    }
}
