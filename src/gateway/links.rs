//! Public URLs of the instance's ports, as a person outside the container must use them.
//!
//! Vast maps each container port to a random public port and says which in
//! `VAST_TCP_PORT_<port>`, with the address in `PUBLIC_IPADDR`. RunPod gives `RUNPOD_PUBLIC_IP`
//! with `RUNPOD_TCP_PORT_<port>` for TCP ports, or an HTTPS proxy at
//! `https://<pod>-<port>.proxy.runpod.net`. Elsewhere the request's own host is used with the
//! service's port.

/// How a request came: its host and whether over HTTPS (as the browser sees it).
pub struct Seen<'a> {
    /// `None` when the request's host is not the instance's own (it came through a tunnel).
    pub host: Option<&'a str>,
    pub https: bool,
}

/// The address of `port` as a person outside the container uses it: the cloud's mapped port
/// (over HTTPS when gpubox serves HTTPS, `tls`), RunPod's proxy, or the port on the host the
/// request came to. `None` when the cloud names none and the request's host is not the
/// instance's.
pub fn direct_url(port: u16, seen: &Seen, tls: bool, lookup: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
    let scheme = if tls { "https" } else { "http" };
    if let (Some(ip), Some(ext)) = (get("PUBLIC_IPADDR"), get(&format!("VAST_TCP_PORT_{port}"))) {
        return Some(format!("{scheme}://{}:{}", ip.trim(), ext.trim()));
    }
    if let (Some(ip), Some(ext)) = (get("RUNPOD_PUBLIC_IP"), get(&format!("RUNPOD_TCP_PORT_{port}"))) {
        return Some(format!("{scheme}://{}:{}", ip.trim(), ext.trim()));
    }
    if let Some(pod) = get("RUNPOD_POD_ID") {
        return Some(format!("https://{}-{port}.proxy.runpod.net", pod.trim()));
    }
    let scheme = if seen.https { "https" } else { "http" };
    Some(format!("{scheme}://{}:{port}", host_without_port(seen.host?)))
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

    fn public_url(port: u16, host: &str, https: bool, tls: bool, lookup: &dyn Fn(&str) -> Option<String>) -> String {
        direct_url(port, &Seen { host: Some(host), https }, tls, lookup).unwrap()
    }

    #[test]
    fn vast_then_runpod_then_request_host() {
        let vast = env(&[("PUBLIC_IPADDR", "1.2.3.4"), ("VAST_TCP_PORT_8010", "41234")]);
        assert_eq!(public_url(8010, "127.0.0.1:7010", false, false, &vast), "http://1.2.3.4:41234");
        // gpubox serves HTTPS: so does the mapped port, however this request came.
        assert_eq!(public_url(8010, "x.trycloudflare.com", true, true, &vast), "https://1.2.3.4:41234");
        // A port Vast did not map falls back to the request's host.
        assert_eq!(public_url(7030, "box.local:7010", false, false, &vast), "http://box.local:7030");
        let rp = env(&[("RUNPOD_PUBLIC_IP", "5.6.7.8"), ("RUNPOD_TCP_PORT_7020", "10022"), ("RUNPOD_POD_ID", "abc")]);
        assert_eq!(public_url(7020, "x", false, false, &rp), "http://5.6.7.8:10022");
        assert_eq!(public_url(8010, "x", false, false, &rp), "https://abc-8010.proxy.runpod.net");
        assert_eq!(public_url(7010, "[::1]:8010", true, false, &env(&[])), "https://[::1]:7010");
        // Through a tunnel, without a mapped port: no direct address is known.
        assert_eq!(direct_url(7010, &Seen { host: None, https: true }, false, &env(&[])), None);
    }
}
