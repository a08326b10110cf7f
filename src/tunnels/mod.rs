//! The tunnels' public addresses, as cloudflared says them (see `config/tunnels.rs` for the
//! services that run it). One task reads each tunnel service's new log lines and keeps what it
//! learns here: a quick tunnel's `https://<words>.trycloudflare.com`, a named tunnel's host names
//! and the ports they serve. An address is forgotten as soon as the process that said it is gone
//! (a restarted quick tunnel gets a new address).

mod parse;

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde::Serialize;

use crate::config::{Tunnel, TunnelSettings};
use crate::logs::Hub;
use crate::supervisor::{State, Supervisor};

/// One public address of a port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Link {
    pub port: u16,
    pub url: String,
    /// The service that runs the tunnel.
    pub via: String,
}

#[derive(Default)]
struct Inner {
    specs: Vec<Tunnel>,
    problem: Option<String>,
    /// The ports gpubox serves (a named tunnel's rule to any other port skips the login).
    served: Vec<u16>,
    /// Rules already warned about.
    warned: Vec<(String, u16)>,
    /// By tunnel service: the process the addresses came from, and the addresses.
    learned: BTreeMap<String, (i32, Vec<Link>)>,
    /// By tunnel service: the last log line read.
    cursor: BTreeMap<String, u64>,
}

/// The tunnels that run and what they serve. Shared by the gateway (links, host names, whom to
/// believe) and the control socket (`gpubox status`).
#[derive(Default)]
pub struct Tunnels {
    inner: RwLock<Inner>,
}

impl Tunnels {
    pub fn new(config: &crate::config::Config) -> Arc<Tunnels> {
        let t = Arc::new(Tunnels::default());
        t.configure(config);
        t
    }

    /// Takes a new configuration (at start and on reload): addresses of tunnels that are gone
    /// are forgotten; the others are kept while their process runs.
    pub fn configure(&self, config: &crate::config::Config) {
        let settings: &TunnelSettings = &config.tunnels;
        let mut inner = self.inner.write().expect("tunnels lock");
        inner.specs = settings.tunnels.clone();
        inner.problem = settings.problem.clone();
        inner.served = config.ports().iter().map(|(_, l)| l.port).collect();
        let names: Vec<String> = inner.specs.iter().map(|t| t.service.clone()).collect();
        inner.learned.retain(|k, _| names.contains(k));
    }

    /// Whether a named tunnel is configured: then loopback is a proxy whose word on the
    /// client's address is believed (its cloudflared comes from 127.0.0.1 to the ports the
    /// dashboard names).
    pub fn named(&self) -> bool {
        self.inner.read().expect("tunnels lock").specs.iter().any(|t| t.serves.is_none())
    }

    /// Why no tunnel runs although one was asked for.
    pub fn problem(&self) -> Option<String> {
        self.inner.read().expect("tunnels lock").problem.clone()
    }

    /// Every known public address, by port.
    pub fn links(&self) -> Vec<Link> {
        let inner = self.inner.read().expect("tunnels lock");
        let mut v: Vec<Link> = inner.learned.values().flat_map(|(_, l)| l.iter().cloned()).collect();
        v.sort_by(|a, b| (a.port, &a.url).cmp(&(b.port, &b.url)));
        v
    }

    /// The tunnel services with, for each, what it serves (`None`: the named tunnel).
    pub fn services(&self) -> Vec<Tunnel> {
        self.inner.read().expect("tunnels lock").specs.clone()
    }

    /// The address a `Host` header names, if it is one of the tunnels' names.
    pub fn link_of_host(&self, host: &str) -> Option<Link> {
        let host = host.trim().trim_end_matches('.').to_ascii_lowercase();
        let host =
            host.rsplit_once(':').filter(|(_, p)| p.bytes().all(|b| b.is_ascii_digit())).map_or(&*host, |(h, _)| h);
        self.links().into_iter().find(|l| l.url.strip_prefix("https://") == Some(host))
    }

    /// Follows the tunnel services' output until gpubox stops: started once, at start.
    pub fn follow(self: &Arc<Self>, hub: Hub, sup: Arc<Supervisor>) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            let mut changed = hub.watch();
            loop {
                for warning in me.read_new(&hub, &sup) {
                    hub.event(warning);
                }
                // New lines wake it; the timer notices a process that ended without a line.
                let _ = tokio::time::timeout(Duration::from_secs(2), changed.changed()).await;
                // A burst of lines is read at once.
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    }

    /// Reads the tunnel services' new lines; returns warnings for gpubox's log.
    fn read_new(&self, hub: &Hub, sup: &Supervisor) -> Vec<String> {
        let mut warnings = Vec::new();
        for spec in self.services() {
            let after = self.inner.read().expect("tunnels lock").cursor.get(&spec.service).copied().unwrap_or(0);
            // The lines first, then the process: a line read here was written by this process
            // or an earlier one, never by a later one.
            let batch = hub.read(Some(&spec.service), after, 2000);
            let status = sup.status_of(&spec.service);
            let running = status.as_ref().filter(|s| matches!(s.state, State::Starting | State::Running));
            let pid = running.and_then(|s| s.pid);
            // Lines from before this process started are an earlier process's (half a second
            // of slack: the start is noted just after the process is made).
            let since = running.and_then(|s| s.started_at_ms).map_or(u64::MAX, |t| t.saturating_sub(500));
            let mut inner = self.inner.write().expect("tunnels lock");
            // Addresses live as long as the process that said them.
            if inner.learned.get(&spec.service).is_some_and(|(p, _)| Some(*p) != pid) {
                inner.learned.remove(&spec.service);
            }
            let Some(last) = batch.lines.last().map(|l| l.seq) else { continue };
            inner.cursor.insert(spec.service.clone(), last);
            let Some(pid) = pid else { continue };
            for line in batch.lines.iter().filter(|l| l.time_ms >= since) {
                let links = match (parse::line(&line.text), &spec.serves) {
                    // A quick tunnel's address is said once: the first is the one.
                    (Some(parse::Said::QuickUrl(url)), Some((_, port))) => {
                        if inner.learned.get(&spec.service).is_some_and(|(p, _)| *p == pid) {
                            continue;
                        }
                        vec![Link { port: *port, url, via: spec.service.clone() }]
                    }
                    (Some(parse::Said::Ingress(rules)), None) => {
                        for (host, port) in &rules {
                            let key = (host.clone(), *port);
                            if !inner.served.contains(port) && !inner.warned.contains(&key) {
                                warnings.push(format!(
                                    "tunnels: WARNING: the named tunnel sends {host} to port {port}, which gpubox does not serve, \
                                     so no login is in front of it; point it at one of gpubox's ports ({}) in Cloudflare's dashboard",
                                    inner.served.iter().map(u16::to_string).collect::<Vec<_>>().join(", ")
                                ));
                                inner.warned.push(key);
                            }
                        }
                        let served = inner.served.clone();
                        rules
                            .into_iter()
                            .filter(|(_, port)| served.contains(port))
                            .map(|(host, port)| Link {
                                port,
                                url: format!("https://{host}"),
                                via: spec.service.clone(),
                            })
                            .collect()
                    }
                    _ => continue,
                };
                inner.learned.insert(spec.service.clone(), (pid, links));
            }
        }
        warnings
    }
}
