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

/// Reads one line of cloudflared's output (its console log format, colours off:
/// `<time> <LVL> <message> <fields>`).
pub fn line(text: &str) -> Option<Said> {
    let mut parts = text.splitn(3, ' ');
    let (_time, level, rest) = (parts.next()?, parts.next()?, parts.next()?);
    if level != "INF" {
        return None;
    }
    // The box's line with the address: `|  https://... |`.
    if let Some(inside) = rest.strip_prefix("|  ").and_then(|r| r.trim_end().strip_suffix('|')) {
        return quick_url(inside.trim()).map(Said::QuickUrl);
    }
    if let Some(fields) = rest.strip_prefix("Updated to new configuration ") {
        let config = field(fields, "config")?;
        return ingress(&config).map(Said::Ingress);
    }
    None
}

/// `https://<label>.trycloudflare.com`, and nothing else.
fn quick_url(text: &str) -> Option<String> {
    const SUFFIX: &str = ".trycloudflare.com";
    let rest = text.strip_prefix("https://")?;
    let host: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '.').collect();
    if host.len() != rest.len() {
        return None;
    }
    let label = host.strip_suffix(SUFFIX)?;
    // One label: the address cloudflared was given (a sub-domain of the quick-tunnel zone).
    let ok = !label.is_empty() && label.len() <= 63 && !label.contains('.') && !label.starts_with('-');
    ok.then(|| format!("https://{}", host.to_ascii_lowercase()))
}

/// The value of `name=` among a zerolog console line's fields: a Go-quoted string
/// (`strconv.Quote`), or a bare word.
fn field(fields: &str, name: &str) -> Option<String> {
    let prefix = format!("{name}=");
    let at = if fields.starts_with(&prefix) { 0 } else { fields.find(&format!(" {prefix}"))? + 1 };
    let rest = &fields[at + prefix.len()..];
    let Some(quoted) = rest.strip_prefix('"') else {
        return Some(rest.split_whitespace().next()?.to_string());
    };
    let mut out = String::new();
    let mut chars = quoted.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(out),
            '\\' => {
                let hex = |chars: &mut std::str::Chars, n: usize| -> Option<u32> {
                    let digits: String = chars.by_ref().take(n).collect();
                    (digits.len() == n).then(|| u32::from_str_radix(&digits, 16).ok()).flatten()
                };
                match chars.next()? {
                    'n' => out.push('\n'),
                    't' => out.push('\t'),
                    'r' => out.push('\r'),
                    'a' => out.push('\u{7}'),
                    'b' => out.push('\u{8}'),
                    'f' => out.push('\u{c}'),
                    'v' => out.push('\u{b}'),
                    // A byte; Go quotes only bytes of invalid UTF-8 so, which JSON never has.
                    'x' => out.push(char::from_u32(hex(&mut chars, 2)?)?),
                    'u' => out.push(char::from_u32(hex(&mut chars, 4)?)?),
                    'U' => out.push(char::from_u32(hex(&mut chars, 8)?)?),
                    other => out.push(other),
                }
            }
            c => out.push(c),
        }
    }
    None
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
        // A rule for part of a site (`path`) or for many names is no address of a whole port.
        if host.is_empty()
            || host.contains('*')
            || r.get("path").and_then(|p| p.as_str()).is_some_and(|p| !p.is_empty())
        {
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
        // Not a quick tunnel's address: another zone, deeper names, or not the box's line.
        assert_eq!(line("2026-12-03T02:00:01Z INF |  https://developers.cloudflare.com/x  |"), None);
        assert_eq!(line("2026-12-03T02:00:01Z INF |  https://a.b.trycloudflare.com  |"), None);
        assert_eq!(line("2026-12-03T02:00:01Z INF |  https://api.trycloudflare.com.evil.example/  |"), None);
        let request = "2026-12-03T02:00:09Z ERR Request failed error=x dest=https://other-words.trycloudflare.com/";
        assert_eq!(line(request), None, "an address in another line is not the tunnel's");
    }

    #[test]
    fn a_named_tunnels_configuration_gives_its_hosts_and_ports() {
        let l = r#"2026-12-03T02:00:02Z INF Updated to new configuration config="{\"ingress\":[{\"hostname\":\"files.example.com\",\"service\":\"http://localhost:7010\"},{\"hostname\":\"Forge.example.com\",\"service\":\"http://127.0.0.1:8010/\"},{\"hostname\":\"x.example.com\",\"service\":\"http://10.0.0.2:80\"},{\"service\":\"http_status:404\"}],\"warp-routing\":{\"enabled\":false}}" version=3"#;
        assert_eq!(
            line(l),
            Some(Said::Ingress(vec![("files.example.com".into(), 7010), ("forge.example.com".into(), 8010)]))
        );
        assert_eq!(line("2026-12-03T02:00:02Z INF Updated to new configuration config=garbage version=1"), None);
        // Go's escapes in a quoted field, and a rule for a path only.
        let l = r#"2026-12-03T02:00:02Z INF Updated to new configuration config="{\"ingress\":[{\"hostname\":\"caf\u00e9.example.com\",\"service\":\"http://localhost:7010\"},{\"hostname\":\"a.example.com\",\"path\":\"/api\",\"service\":\"http://localhost:7020\"}],\"note\":\"\x41\"}" version=4"#;
        assert_eq!(line(l), Some(Said::Ingress(vec![("café.example.com".into(), 7010)])));
    }
}
