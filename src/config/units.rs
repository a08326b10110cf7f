//! Durations (`"10s"`, `"500ms"`, `"7d"`, or a number of seconds) and byte sizes (`"10MiB"`,
//! `"512k"`, or a number of bytes) as written in the configuration.

use std::time::Duration;

pub fn parse_duration(v: &toml::Value) -> Result<Duration, String> {
    match v {
        toml::Value::Integer(n) if *n >= 0 => Ok(Duration::from_secs(*n as u64)),
        toml::Value::Float(f) if *f >= 0.0 && f.is_finite() => Ok(Duration::from_secs_f64(*f)),
        toml::Value::String(s) => {
            humantime::parse_duration(s.trim()).map_err(|e| format!("`{s}` is not a duration ({e})"))
        }
        other => Err(format!("expected a duration, found {}", other.type_str())),
    }
}

pub fn parse_size(v: &toml::Value) -> Result<u64, String> {
    match v {
        toml::Value::Integer(n) if *n >= 0 => Ok(*n as u64),
        toml::Value::String(s) => parse_size_str(s),
        other => Err(format!("expected a size, found {}", other.type_str())),
    }
}

fn parse_size_str(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let num: f64 = num.parse().map_err(|_| format!("`{s}` is not a size"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1000,
        "kib" => 1 << 10,
        "m" | "mb" => 1000 * 1000,
        "mib" => 1 << 20,
        "g" | "gb" => 1000 * 1000 * 1000,
        "gib" => 1 << 30,
        other => return Err(format!("`{s}` has an unknown unit `{other}` (use B, KB, KiB, MB, MiB, GB or GiB)")),
    };
    let n = num * mult as f64;
    // TOML's integers (and so `config show`) stop at 2^63 - 1; nothing gpubox sizes comes near.
    if !n.is_finite() || n >= i64::MAX as f64 {
        return Err(format!("`{s}` is too big"));
    }
    Ok(n as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use toml::Value;

    #[test]
    fn durations() {
        assert_eq!(parse_duration(&Value::String("10s".into())).unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration(&Value::String("500ms".into())).unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration(&Value::String("7d".into())).unwrap(), Duration::from_secs(7 * 86400));
        assert_eq!(parse_duration(&Value::Integer(3)).unwrap(), Duration::from_secs(3));
        assert!(parse_duration(&Value::String("soon".into())).unwrap_err().contains("not a duration"));
        assert!(parse_duration(&Value::Boolean(true)).is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size(&Value::String("10MiB".into())).unwrap(), 10 << 20);
        assert!(parse_size(&Value::String("18446744073709551615GiB".into())).unwrap_err().contains("too big"));
        assert!(parse_size(&Value::String("9999999999999999999".into())).unwrap_err().contains("too big"));
        assert_eq!(parse_size(&Value::String("1.5 KB".into())).unwrap(), 1500);
        assert_eq!(parse_size(&Value::Integer(42)).unwrap(), 42);
        assert!(parse_size(&Value::String("10 parsecs".into())).unwrap_err().contains("unknown unit"));
    }
}

/// An address or a network (`10.0.0.0/8`, `fd00::/8`, `127.0.0.1`): what `trusted_proxies`
/// holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: std::net::IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Whether `ip` is in this network (an IPv4 address given as IPv6, `::ffff:a.b.c.d`, counts
    /// as the IPv4 one).
    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        use std::net::IpAddr;
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        let bits = |n: u32, len: u32| if n == 0 { 0 } else { u128::MAX << (len - n) };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(a)) => {
                let mask = bits(self.prefix as u32, 32) as u32;
                u32::from(net) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(a)) => {
                let mask = bits(self.prefix as u32, 128);
                u128::from(net) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

impl std::str::FromStr for Cidr {
    type Err = String;
    fn from_str(s: &str) -> Result<Cidr, String> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: std::net::IpAddr =
            addr.trim().parse().map_err(|_| format!("\"{s}\" is not an address or a network"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => match p.trim().parse::<u8>() {
                Ok(n) if n <= max => n,
                _ => return Err(format!("\"{s}\": the prefix length must be 0 to {max}")),
            },
        };
        Ok(Cidr { addr, prefix })
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl serde::Serialize for Cidr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod cidr_tests {
    use super::Cidr;

    #[test]
    fn networks_and_addresses() {
        let net: Cidr = "10.0.0.0/8".parse().unwrap();
        assert!(net.contains("10.200.3.4".parse().unwrap()));
        assert!(!net.contains("11.0.0.1".parse().unwrap()));
        assert!(net.contains("::ffff:10.1.2.3".parse().unwrap()), "an IPv4 address as IPv6");
        let one: Cidr = "127.0.0.1".parse().unwrap();
        assert!(one.contains("127.0.0.1".parse().unwrap()));
        assert!(!one.contains("127.0.0.2".parse().unwrap()));
        let any: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(any.contains("203.0.113.7".parse().unwrap()));
        let v6: Cidr = "fd00::/8".parse().unwrap();
        assert!(v6.contains("fd12::1".parse().unwrap()));
        assert!(!v6.contains("fe80::1".parse().unwrap()));
        assert!(!v6.contains("10.0.0.1".parse().unwrap()));
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert!("example.org".parse::<Cidr>().is_err());
        assert_eq!(net.to_string(), "10.0.0.0/8");
    }
}
