//! Public URLs of the instance's ports, as a person outside the container must use them.
//!
//! Vast maps each container port to a random public port and says which in
//! `VAST_TCP_PORT_<port>`, with the address in `PUBLIC_IPADDR`. RunPod gives `RUNPOD_PUBLIC_IP`
//! with `RUNPOD_TCP_PORT_<port>` for TCP ports, or an HTTPS proxy at
//! `https://<pod>-<port>.proxy.runpod.net`. Elsewhere the request's own host is used with the
//! service's port.

pub fn public_url(port: u16, request_host: &str, https: bool, lookup: &dyn Fn(&str) -> Option<String>) -> String {
    let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
    if let (Some(ip), Some(ext)) = (get("PUBLIC_IPADDR"), get(&format!("VAST_TCP_PORT_{port}"))) {
        return format!("http://{}:{}", ip.trim(), ext.trim());
    }
    if let (Some(ip), Some(ext)) = (get("RUNPOD_PUBLIC_IP"), get(&format!("RUNPOD_TCP_PORT_{port}"))) {
        return format!("http://{}:{}", ip.trim(), ext.trim());
    }
    if let Some(pod) = get("RUNPOD_POD_ID") {
        return format!("https://{}-{port}.proxy.runpod.net", pod.trim());
    }
    let scheme = if https { "https" } else { "http" };
    format!("{scheme}://{}:{port}", host_without_port(request_host))
}

/// `example.com:8010` → `example.com`; `[::1]:80` → `[::1]`.
pub fn host_without_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.split_inclusive(']').next().unwrap_or(host);
    }
    match host.rsplit_once(':') {
        Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) => h,
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |n| pairs.iter().find(|(k, _)| *k == n).map(|(_, v)| v.to_string())
    }

    #[test]
    fn vast_then_runpod_then_request_host() {
        let vast = env(&[("PUBLIC_IPADDR", "1.2.3.4"), ("VAST_TCP_PORT_8010", "41234")]);
        assert_eq!(public_url(8010, "127.0.0.1:7010", false, &vast), "http://1.2.3.4:41234");
        // A port Vast did not map falls back to the request's host.
        assert_eq!(public_url(7030, "box.local:7010", false, &vast), "http://box.local:7030");
        let rp = env(&[("RUNPOD_PUBLIC_IP", "5.6.7.8"), ("RUNPOD_TCP_PORT_7020", "10022"), ("RUNPOD_POD_ID", "abc")]);
        assert_eq!(public_url(7020, "x", false, &rp), "http://5.6.7.8:10022");
        assert_eq!(public_url(8010, "x", false, &rp), "https://abc-8010.proxy.runpod.net");
        assert_eq!(public_url(7010, "[::1]:8010", true, &env(&[])), "https://[::1]:7010");
    }
}
