//! The Host rule, against DNS rebinding: a web page on `attacker.example` whose name its owner
//! points at 127.0.0.1 (or at the instance) would otherwise be same-origin with gpubox in the
//! victim's browser, and with the default password could open a root shell. So gpubox answers only
//! to names it knows: IP literals, `localhost` and `*.localhost`, the container's host name, names
//! whose DNS the cloud controls (Cloudflare quick tunnels, RunPod's and Vast's proxies: nobody
//! else can point them at an address), and `[http] allowed_hosts` / `GPUBOX_ALLOWED_HOSTS`.
//! Anything else gets a page that says how to allow it. Two `Host` headers get 400.

use std::net::{Ipv4Addr, Ipv6Addr};

/// Names whose DNS belongs to a provider in front of the instance.
const PROVIDERS: &[&str] = &["localhost", "*.localhost", "*.trycloudflare.com", "*.proxy.runpod.net", "*.vast.ai"];

pub struct Hosts {
    /// Lower-case names, exact or `*.suffix`.
    names: Vec<String>,
    /// `*` was given: every name is accepted.
    any: bool,
}

impl Hosts {
    pub fn new(configured: &[String]) -> Hosts {
        let mut names: Vec<String> = PROVIDERS.iter().map(|s| s.to_string()).collect();
        if let Ok(h) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
            let h = h.trim();
            if !h.is_empty() {
                names.push(h.to_ascii_lowercase());
            }
        }
        names.extend(configured.iter().map(|n| n.trim().trim_end_matches('.').to_ascii_lowercase()));
        let any = names.iter().any(|n| n == "*");
        Hosts { names, any }
    }

    /// Whether a `Host` header's value (a name or address, perhaps with a port) is one to answer.
    pub fn allows(&self, host: &str) -> bool {
        let host = host.trim();
        if let Some(rest) = host.strip_prefix('[') {
            // [IPv6] or [IPv6]:port
            return rest.split_once(']').is_some_and(|(ip, port)| {
                ip.parse::<Ipv6Addr>().is_ok() && (port.is_empty() || port.strip_prefix(':').is_some_and(digits))
            });
        }
        let name = match host.rsplit_once(':') {
            Some((name, port)) if digits(port) => name,
            Some(_) => return false,
            None => host,
        };
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        if name.is_empty() {
            return false;
        }
        if self.any || name.parse::<Ipv4Addr>().is_ok() {
            return true;
        }
        self.names.iter().any(|n| match n.strip_prefix("*.") {
            Some(suffix) => {
                name.len() > suffix.len() + 1
                    && name.ends_with(suffix)
                    && name[..name.len() - suffix.len()].ends_with('.')
            }
            None => *n == name,
        })
    }
}

fn digits(s: &str) -> bool {
    !s.is_empty() && s.len() <= 5 && s.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_known_names_and_allowed_ones_pass_others_do_not() {
        let h = Hosts::new(&["models.example.org".into(), "*.mylab.net".into()]);
        for ok in [
            "127.0.0.1:7010",
            "203.0.113.7",
            "[::1]:8010",
            "[2001:db8::1]",
            "localhost:7010",
            "app.localhost",
            "abc-def.trycloudflare.com",
            "x1y2-7010.proxy.runpod.net",
            "MODELS.example.org.:443",
            "gpu.mylab.net",
        ] {
            assert!(h.allows(ok), "{ok}");
        }
        for bad in [
            "rebind.attacker.example:7010",
            "attacker.example",
            "mylab.net",
            "evilmylab.net",
            "localhost.attacker.example",
            "trycloudflare.com.attacker.example",
            "127.0.0.1:port",
            "[::1",
            "",
            ":80",
        ] {
            assert!(!h.allows(bad), "{bad}");
        }
        assert!(Hosts::new(&["*".into()]).allows("anything.example"));
    }

    proptest::proptest! {
        /// Any Host value is answered yes or no, never a panic; every IP literal is answered.
        #[test]
        fn any_host(h in "\\PC{0,40}", ip in proptest::prelude::any::<std::net::IpAddr>(), port in proptest::option::of(0u16..)) {
            let hosts = Hosts::new(&[]);
            let _ = hosts.allows(&h);
            let lit = match ip {
                std::net::IpAddr::V4(v4) => v4.to_string(),
                std::net::IpAddr::V6(v6) => format!("[{v6}]"),
            };
            let lit = port.map_or(lit.clone(), |p| format!("{lit}:{p}"));
            proptest::prop_assert!(hosts.allows(&lit), "{}", lit);
        }
    }
}
