//! What cloudflared's output says about its public addresses.
//!
//! A quick tunnel prints its address once, in a box (cmd/cloudflared/tunnel/quick_tunnel.go):
//! `... INF |  https://<words>.trycloudflare.com  |`. A named tunnel run with a token gets its
//! ingress rules from Cloudflare and logs each version it applies (orchestration/orchestrator.go):
//! `... INF Updated to new configuration config="{\"ingress\":[{\"hostname\":...,\"service\":...}]}" version=N`.

/// What one line of cloudflared's output tells.
#[derive(Debug, PartialEq, Eq)]
pub enum Said {
    /// A quick tunnel's address.
    QuickUrl(String),
    /// A named tunnel's ingress rules: public host name → local port.
    Ingress(Vec<(String, u16)>),
}

/// Reads one line of cloudflared's output (its console log format, colours off).
pub fn line(text: &str) -> Option<Said> {
    if let Some(url) = quick_url(text) {
        return Some(Said::QuickUrl(url));
    }
    if text.contains("Updated to new configuration") {
        let config = field(text, "config")?;
        return ingress(&config).map(Said::Ingress);
    }
    None
}

/// `https://<label>.trycloudflare.com` anywhere in the line.
fn quick_url(text: &str) -> Option<String> {
    const SUFFIX: &str = ".trycloudflare.com";
    let start = text.find("https://")?;
    let rest = &text[start + "https://".len()..];
    let host: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '.').collect();
    let label = host.strip_suffix(SUFFIX)?;
    // One label: the address cloudflared was given (a sub-domain of the quick-tunnel zone).
    let ok = !label.is_empty() && label.len() <= 63 && !label.contains('.') && !label.starts_with('-');
    ok.then(|| format!("https://{}", host.to_ascii_lowercase()))
}

/// The value of `name=` in a zerolog console line: a Go-quoted string, or a bare word.
fn field(text: &str, name: &str) -> Option<String> {
    let at = text.find(&format!(" {name}="))? + name.len() + 2;
    let rest = &text[at..];
    if let Some(quoted) = rest.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = quoted.chars();
        while let Some(c) = chars.next() {
            match c {
                '"' => return Some(out),
                '\\' => match chars.next()? {
                    'n' => out.push('\n'),
                    't' => out.push('\t'),
                    other => out.push(other),
                },
                c => out.push(c),
            }
        }
        None
    } else {
        Some(rest.split_whitespace().next()?.to_string())
    }
}

/// `{"ingress": [{"hostname": "a.example.com", "service": "http://localhost:7010"}, ...]}` →
/// the rules that name a host and a local port (the catch-all `http_status:404` has neither).
fn ingress(config: &str) -> Option<Vec<(String, u16)>> {
    let v: serde_json::Value = serde_json::from_str(config).ok()?;
    let rules = v.get("ingress")?.as_array()?;
    let mut out = Vec::new();
    for r in rules {
        let (Some(host), Some(service)) =
            (r.get("hostname").and_then(|h| h.as_str()), r.get("service").and_then(|s| s.as_str()))
        else {
            continue;
        };
        if host.is_empty() || host.contains('*') {
            continue;
        }
        if let Some(port) = local_port(service) {
            out.push((host.to_ascii_lowercase(), port));
        }
    }
    Some(out)
}

/// The port of `http(s)://localhost:7010` or `http://127.0.0.1:7010/`; a local service only.
fn local_port(service: &str) -> Option<u16> {
    let rest = service.strip_prefix("http://").or_else(|| service.strip_prefix("https://"))?;
    let authority = rest.split('/').next()?;
    let (host, port) = authority.rsplit_once(':')?;
    matches!(host, "localhost" | "127.0.0.1" | "[::1]" | "0.0.0.0").then_some(())?;
    port.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quick_tunnels_box_gives_its_address() {
        // The lines as cloudflared prints them (see the module's comment), colours off.
        let lines = [
            "2026-12-03T02:00:00Z INF Requesting new quick Tunnel on trycloudflare.com...",
            "2026-12-03T02:00:01Z INF +--------------------------------------------------------------------------------------------+",
            "2026-12-03T02:00:01Z INF |  Your quick Tunnel has been created! Visit it at (it may take some time to be reachable):  |",
            "2026-12-03T02:00:01Z INF |  https://seasonal-deck-organisms-sf.trycloudflare.com                                       |",
        ];
        let said: Vec<_> = lines.iter().filter_map(|l| line(l)).collect();
        assert_eq!(said, vec![Said::QuickUrl("https://seasonal-deck-organisms-sf.trycloudflare.com".into())]);
        // Not a quick tunnel's address: another zone, or deeper names.
        assert_eq!(line("INF see https://developers.cloudflare.com/x"), None);
        assert_eq!(line("INF https://a.b.trycloudflare.com"), None);
        assert_eq!(line("INF https://api.trycloudflare.com.evil.example/"), None);
    }

    #[test]
    fn a_named_tunnels_configuration_gives_its_hosts_and_ports() {
        let l = r#"2026-12-03T02:00:02Z INF Updated to new configuration config="{\"ingress\":[{\"hostname\":\"files.example.com\",\"service\":\"http://localhost:7010\"},{\"hostname\":\"Forge.example.com\",\"service\":\"http://127.0.0.1:8010/\"},{\"hostname\":\"x.example.com\",\"service\":\"http://10.0.0.2:80\"},{\"service\":\"http_status:404\"}],\"warp-routing\":{\"enabled\":false}}" version=3"#;
        assert_eq!(
            line(l),
            Some(Said::Ingress(vec![("files.example.com".into(), 7010), ("forge.example.com".into(), 8010)]))
        );
        assert_eq!(line("INF Updated to new configuration config=garbage version=1"), None);
    }
}
