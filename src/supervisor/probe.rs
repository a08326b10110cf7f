//! Readiness probes: a TCP connect, or an HTTP GET answered with a status below 500.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

use crate::config::ReadyProbe;

const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);

/// One attempt.
pub async fn check(probe: &ReadyProbe) -> bool {
    timeout(ATTEMPT_TIMEOUT, attempt(probe)).await.unwrap_or(false)
}

async fn attempt(probe: &ReadyProbe) -> bool {
    match probe {
        ReadyProbe::Tcp { host, port } => TcpStream::connect((host.as_str(), *port)).await.is_ok(),
        ReadyProbe::Http { host, port, path } => {
            let Ok(mut s) = TcpStream::connect((host.as_str(), *port)).await else {
                return false;
            };
            let req = format!(
                "GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: gpubox-probe\r\nAccept: */*\r\nConnection: close\r\n\r\n"
            );
            if s.write_all(req.as_bytes()).await.is_err() {
                return false;
            }
            let mut head = [0u8; 64];
            let mut n = 0;
            while n < 12 {
                match s.read(&mut head[n..]).await {
                    Ok(0) | Err(_) => return false,
                    Ok(k) => n += k,
                }
            }
            let ok = status_ok(&head[..n]);
            // Read the rest before closing: hanging up mid-answer makes some servers (Python's
            // http.server among them) print a traceback into the service's log for every probe.
            // A server that keeps the connection open anyway gets half a second, not a failure.
            let drain = async {
                let mut rest = [0u8; 8192];
                let mut total = 0usize;
                while total < 1 << 20 {
                    match s.read(&mut rest).await {
                        Ok(0) | Err(_) => break,
                        Ok(k) => total += k,
                    }
                }
            };
            let _ = timeout(Duration::from_millis(500), drain).await;
            ok
        }
    }
}

/// `HTTP/1.1 204 ...` → true; 5xx or garbage → false.
fn status_ok(head: &[u8]) -> bool {
    let text = String::from_utf8_lossy(head);
    let mut parts = text.split(' ');
    let proto_ok = parts.next().is_some_and(|p| p.starts_with("HTTP/"));
    let code = parts.next().and_then(|c| c.parse::<u16>().ok());
    proto_ok && code.is_some_and(|c| (100..500).contains(&c))
}

/// Polls until the probe succeeds: often at first, then once a second.
pub async fn wait_ready(probe: &ReadyProbe) {
    let mut delay = Duration::from_millis(50);
    loop {
        if check(probe).await {
            return;
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines() {
        assert!(status_ok(b"HTTP/1.1 200 OK\r\n"));
        assert!(status_ok(b"HTTP/1.0 404 Not Found"));
        assert!(!status_ok(b"HTTP/1.1 502 Bad Gateway"));
        assert!(!status_ok(b"SSH-2.0-OpenSSH"));
    }

    #[tokio::test]
    async fn tcp_and_http_against_a_real_listener() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            loop {
                let (mut s, _) = listener.accept().await.unwrap();
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf).await;
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").await;
            }
        });
        assert!(check(&ReadyProbe::Tcp { host: "127.0.0.1".into(), port }).await);
        assert!(check(&ReadyProbe::Http { host: "127.0.0.1".into(), port, path: "/".into() }).await);
        // A port nobody listens on: bind one and drop it.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        assert!(!check(&ReadyProbe::Tcp { host: "127.0.0.1".into(), port: closed }).await);
    }
}
