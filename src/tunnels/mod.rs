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
    pub fn new(settings: &TunnelSettings) -> Arc<Tunnels> {
        let t = Arc::new(Tunnels::default());
        t.configure(settings);
        t
    }

    /// Takes a new configuration (at start and on reload): addresses of tunnels that are gone
    /// are forgotten; the others are kept while their process runs.
    pub fn configure(&self, settings: &TunnelSettings) {
        let mut inner = self.inner.write().expect("tunnels lock");
        inner.specs = settings.tunnels.clone();
        inner.problem = settings.problem.clone();
        let names: Vec<String> = inner.specs.iter().map(|t| t.service.clone()).collect();
        inner.learned.retain(|k, _| names.contains(k));
    }

    /// Whether any tunnel is configured: then loopback is a proxy whose word on the client's
    /// address is believed (every request through a tunnel comes from cloudflared on 127.0.0.1).
    pub fn active(&self) -> bool {
        !self.inner.read().expect("tunnels lock").specs.is_empty()
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

    /// The public addresses of one port.
    pub fn links_of(&self, port: u16) -> Vec<String> {
        self.links().into_iter().filter(|l| l.port == port).map(|l| l.url).collect()
    }

    /// The tunnel services with, for each, what it serves (`None`: the named tunnel).
    pub fn services(&self) -> Vec<Tunnel> {
        self.inner.read().expect("tunnels lock").specs.clone()
    }

    /// The port that a `Host` header names through a tunnel, if it is one of the tunnels' names.
    pub fn port_of_host(&self, host: &str) -> Option<u16> {
        let host = host.trim().trim_end_matches('.').to_ascii_lowercase();
        let host =
            host.rsplit_once(':').filter(|(_, p)| p.bytes().all(|b| b.is_ascii_digit())).map_or(&*host, |(h, _)| h);
        self.links().into_iter().find(|l| l.url.strip_prefix("https://") == Some(host)).map(|l| l.port)
    }

    /// Follows the tunnel services' output until gpubox stops: started once, at start.
    pub fn follow(self: &Arc<Self>, hub: Hub, sup: Arc<Supervisor>) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            let mut changed = hub.watch();
            loop {
                me.read_new(&hub, &sup);
                // New lines wake it; the timer notices a process that ended without a line.
                let _ = tokio::time::timeout(Duration::from_secs(2), changed.changed()).await;
                // A burst of lines is read at once.
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    }

    fn read_new(&self, hub: &Hub, sup: &Supervisor) {
        let specs = self.services();
        for spec in specs {
            let status = sup.status_of(&spec.service);
            let running = status.as_ref().filter(|s| matches!(s.state, State::Starting | State::Running));
            let pid = running.and_then(|s| s.pid);
            // Lines from before this process started are an earlier process's.
            let since = running.and_then(|s| s.started_at_ms).unwrap_or(u64::MAX);
            let mut inner = self.inner.write().expect("tunnels lock");
            // Addresses live as long as the process that said them.
            if inner.learned.get(&spec.service).is_some_and(|(p, _)| Some(*p) != pid) {
                inner.learned.remove(&spec.service);
            }
            let after = inner.cursor.get(&spec.service).copied().unwrap_or(0);
            drop(inner);
            let batch = hub.read(Some(&spec.service), after, 2000);
            let Some(last) = batch.lines.last().map(|l| l.seq) else { continue };
            let mut inner = self.inner.write().expect("tunnels lock");
            inner.cursor.insert(spec.service.clone(), last);
            let Some(pid) = pid else { continue };
            for line in batch.lines.iter().filter(|l| l.time_ms >= since) {
                let links = match (parse::line(&line.text), &spec.serves) {
                    (Some(parse::Said::QuickUrl(url)), Some((_, port))) => {
                        vec![Link { port: *port, url, via: spec.service.clone() }]
                    }
                    (Some(parse::Said::Ingress(rules)), None) => rules
                        .into_iter()
                        .map(|(host, port)| Link { port, url: format!("https://{host}"), via: spec.service.clone() })
                        .collect(),
                    _ => continue,
                };
                inner.learned.insert(spec.service.clone(), (pid, links));
            }
        }
    }
}
