//! Failed logins per client address: a few are free, then each failure makes the client wait
//! longer (1 s, 2 s, 4 s, … up to a minute) before its next attempt is even looked at, and after
//! `max_failures` it is locked out for `lockout`. A success clears the record.
//!
//! An attempt counts as a failure from the moment it starts ([`Throttle::begin`]), so a client
//! that sends a hundred attempts at once gets its few free ones and a refusal for the rest,
//! rather than a hundred password checks. IPv6 clients are counted per /64, the block one
//! machine usually owns ([`client`]); a browser with a device cookie is counted by its cookie.
//!
//! The table is bounded, and a record that is locked out is never forgotten to make room: filling
//! the table with other addresses must not unlock one. When the table is full of locked-out
//! records (4 × the usual size), new addresses wait until some lockouts end.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures allowed before delays start.
const FREE_FAILURES: u32 = 3;
const BASE_DELAY: Duration = Duration::from_secs(1);
const MAX_DELAY: Duration = Duration::from_secs(60);
/// Records kept at most before the oldest ones that are not locked out are forgotten.
const MAX_CLIENTS: usize = 10_000;
/// Records kept at most, locked-out ones included (about 50 bytes each).
const MAX_LOCKED: usize = 4 * MAX_CLIENTS;

pub struct Throttle<K> {
    max_failures: u32,
    lockout: Duration,
    clients: Mutex<Table<K>>,
}

struct Table<K> {
    map: HashMap<K, Record>,
    /// The size at which the next clean-up runs (so it runs once per many insertions).
    scan_at: usize,
    /// While the table is full of lockouts: when the first of them ends.
    full_until: Option<Instant>,
}

impl<K> std::ops::Deref for Table<K> {
    type Target = HashMap<K, Record>;
    fn deref(&self) -> &Self::Target {
        &self.map
    }
}

impl<K> std::ops::DerefMut for Table<K> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.map
    }
}

#[derive(Clone, Copy)]
struct Record {
    failures: u32,
    blocked_until: Instant,
    last: Instant,
}

impl<K: Hash + Eq + Copy> Throttle<K> {
    pub fn new(max_failures: u32, lockout: Duration) -> Throttle<K> {
        Throttle {
            max_failures,
            lockout,
            clients: Mutex::new(Table { map: HashMap::new(), scan_at: MAX_CLIENTS, full_until: None }),
        }
    }

    /// `Err(wait)` while this address must not try again.
    #[cfg(test)]
    pub fn check(&self, key: K) -> Result<(), Duration> {
        let clients = self.clients.lock().expect("throttle lock");
        let now = Instant::now();
        match clients.get(&key) {
            Some(r) if r.blocked_until > now => Err(r.blocked_until - now),
            _ => Ok(()),
        }
    }

    /// Starts an attempt: `Err(wait)` while this address must not try, else the attempt is
    /// counted as a failure until [`Throttle::success`] clears it. Check and count happen under
    /// one lock, so attempts made at the same time cannot all slip through.
    pub fn begin(&self, key: K) -> Result<(), Duration> {
        let mut clients = self.clients.lock().expect("throttle lock");
        let now = Instant::now();
        if let Some(r) = clients.get(&key) {
            if r.blocked_until > now {
                return Err(r.blocked_until - now);
            }
        }
        self.record_failure(&mut clients, key, now)
    }

    #[cfg(test)]
    pub fn failure(&self, key: K) {
        let mut clients = self.clients.lock().expect("throttle lock");
        let _ = self.record_failure(&mut clients, key, Instant::now());
    }

    fn record_failure(&self, clients: &mut Table<K>, key: K, now: Instant) -> Result<(), Duration> {
        if !clients.contains_key(&key) {
            if let Some(until) = clients.full_until {
                if until > now {
                    return Err(until - now);
                }
                clients.full_until = None;
                clients.scan_at = clients.len();
            }
        }
        if clients.len() >= clients.scan_at && !clients.contains_key(&key) {
            // Full: forget the records nobody has added to lately, or, failing that, the older
            // half of those not locked out.
            let quiet = self.lockout.max(MAX_DELAY);
            clients.retain(|_, r| r.blocked_until > now || now.duration_since(r.last) < quiet);
            let free: usize = clients.values().filter(|r| r.blocked_until <= now).count();
            if clients.len() >= MAX_CLIENTS && free > 0 {
                let mut lasts: Vec<Instant> =
                    clients.values().filter(|r| r.blocked_until <= now).map(|r| r.last).collect();
                let (_, median, _) = lasts.select_nth_unstable(free / 2);
                let median = *median;
                clients.retain(|_, r| r.blocked_until > now || r.last > median);
            }
            clients.scan_at = (clients.len() + MAX_CLIENTS / 4).clamp(MAX_CLIENTS, MAX_LOCKED);
            if clients.len() >= MAX_LOCKED {
                // Every record is a lockout in force: newcomers wait for the first to end.
                let first_end = clients.values().map(|r| r.blocked_until).min().unwrap_or(now);
                let until = first_end.max(now + Duration::from_secs(1));
                clients.full_until = Some(until);
                return Err(until - now);
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
        Ok(())
    }

    pub fn success(&self, key: K) {
        self.clients.lock().expect("throttle lock").remove(&key);
    }
}

/// Whom a record is kept for: an IPv4 address, or an IPv6 address's /64.
pub fn client(ip: IpAddr) -> IpAddr {
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
        let _: &Throttle<IpAddr> = &t;
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
        let a: IpAddr = client("2001:db8:1:2::10".parse().unwrap());
        let b: IpAddr = client("2001:db8:1:2:ffff::99".parse().unwrap());
        let elsewhere: IpAddr = client("2001:db8:1:3::10".parse().unwrap());
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
        let t: Throttle<IpAddr> = Throttle::new(5, Duration::from_secs(60));
        for i in 0..MAX_CLIENTS as u32 + 10 {
            t.failure(IpAddr::V4(i.into()));
        }
        let n = t.clients.lock().unwrap().map.len();
        assert!(n <= MAX_CLIENTS && n > MAX_CLIENTS / 4, "{n} records");
        assert!(t.check(IpAddr::V4((MAX_CLIENTS as u32 + 9).into())).is_ok());
        // The newest records are kept: the last address is still counted.
        assert!(t.clients.lock().unwrap().contains_key(&IpAddr::V4((MAX_CLIENTS as u32 + 9).into())));
    }

    #[test]
    fn filling_the_table_does_not_unlock_anyone() {
        let t: Throttle<IpAddr> = Throttle::new(2, Duration::from_secs(600));
        let locked = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));
        t.failure(locked);
        t.failure(locked);
        assert!(t.check(locked).is_err(), "locked out");
        // 10,050 other addresses, one failure each (not locked).
        for i in 0..MAX_CLIENTS as u32 + 50 {
            let _ = t.begin(IpAddr::V4((0x0A00_0000 + i).into()));
        }
        assert!(t.check(locked).is_err(), "still locked out after the table filled");
        // A table of nothing but lockouts stops taking newcomers instead of forgetting them.
        let t: Throttle<u32> = Throttle::new(1, Duration::from_secs(600));
        for i in 0..MAX_LOCKED as u32 {
            let _ = t.begin(i);
        }
        assert!(t.begin(u32::MAX).is_err(), "a newcomer waits");
        assert!(t.check(0).is_err() && t.check(MAX_LOCKED as u32 - 1).is_err(), "every lockout kept");
        assert!(t.clients.lock().unwrap().len() <= MAX_LOCKED);
    }
}
