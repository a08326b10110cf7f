//! Sending: each target's documented format, and the retries. Formats and limits as the
//! services document them (sources in docs/research/alerts-idle.md §3):
//!
//! - webhook: gpubox's JSON (docs/alerts.md), POSTed;
//! - ntfy: POST to the topic's address, the text as the body (≤ 4,096 bytes), `Title`,
//!   `Priority`, `Tags`, `Click` headers (a non-ASCII title RFC 2047-encoded), `Authorization:
//!   Bearer` with `NTFY_TOKEN`;
//! - Discord: `{"username", "embeds": [{title ≤ 256, description ≤ 4,096, color, url, timestamp,
//!   footer}]}`, everything together under 6,000 characters;
//! - Slack: `{"text", "blocks": [header ≤ 150, section ≤ 3,000, …]}`.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use serde_json::json;
use tokio::sync::mpsc;

use super::{Alert, Alerts, Level};
use crate::config::{AlertTarget, TargetKind};

/// Attempts per target.
const ATTEMPTS: u32 = 3;
/// Waits between attempts (a `Retry-After` up to [`MAX_WAIT`] replaces them).
const BACKOFF: [Duration; 2] = [Duration::from_secs(2), Duration::from_secs(10)];
const MAX_WAIT: Duration = Duration::from_secs(60);

/// A request ready to go: method, headers, body.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: &'static str,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

/// Cuts `s` to at most `max` bytes on a character boundary, marking the cut.
pub(super) fn cut(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max.saturating_sub(3);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// Cuts to at most `max` characters (Discord and Slack count characters).
fn cut_chars(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// The lines, the newest kept when they are too long for `max` bytes (a single line longer
/// than that is cut).
fn tail_lines(lines: &[String], max: usize) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut used = 0;
    for l in lines.iter().rev() {
        let l = if l.len() > max { cut(l, max.saturating_sub(1)) } else { l.clone() };
        if used + l.len() + 1 > max {
            break;
        }
        used += l.len() + 1;
        out.push(l);
    }
    out.reverse();
    out.join("\n")
}

fn rfc3339(ms: u64) -> String {
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

/// The request for one target.
pub fn request(
    target: &AlertTarget,
    alert: &Alert,
    instance: &str,
    link: Option<&str>,
    repeats: u32,
    time_ms: u64,
) -> Request {
    let title = format!("{instance}: {}", alert.title);
    let mut text = alert.text.clone();
    if repeats > 0 {
        text.push_str(&format!(" ({repeats} more like it were held back since the last one sent.)"));
    }
    let json = |v: serde_json::Value| Request {
        method: "POST",
        headers: vec![("Content-Type", "application/json".into())],
        body: serde_json::to_vec(&v).unwrap_or_default(),
    };
    match target.kind {
        TargetKind::Webhook => json(json!({
            "instance": instance,
            "event": alert.kind,
            "level": alert.level,
            "service": alert.service,
            "title": alert.title,
            "message": text,
            // At most 64 KB of the newest lines.
            "lines": tail_lines(&alert.lines, 64 * 1024).lines().collect::<Vec<_>>(),
            "link": link,
            "repeats": repeats,
            "time": rfc3339(time_ms),
        })),
        TargetKind::Ntfy => {
            let mut body = text;
            if !alert.lines.is_empty() {
                body.push_str("\n\n");
                let room = 4000usize.saturating_sub(body.len());
                body.push_str(&tail_lines(&alert.lines, room));
            }
            let title = cut(&title, 250);
            let title = if title.is_ascii() {
                title
            } else {
                format!("=?UTF-8?B?{}?=", base64::engine::general_purpose::STANDARD.encode(title.as_bytes()))
            };
            let (priority, tags) = match alert.level {
                Level::Error => ("high", "rotating_light"),
                Level::Warning => ("default", "warning"),
                Level::Info => ("default", "information_source"),
            };
            let mut headers = vec![
                ("Content-Type", "text/plain; charset=utf-8".to_string()),
                ("Title", title),
                ("Priority", priority.into()),
                ("Tags", tags.into()),
            ];
            if let Some(l) = link {
                headers.push(("Click", l.to_string()));
            }
            if let Some(t) = &target.token {
                headers.push(("Authorization", format!("Bearer {t}")));
            }
            Request { method: "POST", headers, body: cut(&body, 4096).into_bytes() }
        }
        TargetKind::Discord => {
            let color = match alert.level {
                Level::Error => 0xD93025,
                Level::Warning => 0xF29900,
                Level::Info => 0x1A73E8,
            };
            let mut description = cut_chars(&text, 1000);
            if !alert.lines.is_empty() {
                // The lines in a code block: the description stays under 4,096 characters, and
                // everything under 6,000 with the title (256) and the footer (200).
                let lines = tail_lines(&alert.lines, 3000).replace("```", "'''");
                description.push_str(&format!("\n```\n{}\n```", cut_chars(&lines, 3000)));
            }
            let mut embed = json!({
                "title": cut_chars(&title, 256),
                "description": description,
                "color": color,
                "timestamp": rfc3339(time_ms),
                "footer": {"text": cut_chars(&format!("gpubox · {}", alert.kind), 200)},
            });
            if let Some(l) = link {
                embed["url"] = json!(l);
            }
            json(json!({"username": "gpubox", "embeds": [embed]}))
        }
        TargetKind::Slack => {
            // Slack's markup: &, < and > are escaped (a log line's `<!channel>` must not ping
            // everyone).
            let text = slack_escape(&text);
            let mut blocks = vec![
                json!({"type": "header", "text": {"type": "plain_text", "text": cut_chars(&title, 150)}}),
                json!({"type": "section", "text": {"type": "mrkdwn", "text": cut_chars(&text, 2900)}}),
            ];
            if !alert.lines.is_empty() {
                let lines = slack_escape(&tail_lines(&alert.lines, 2800)).replace("```", "'''");
                blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": format!("```{}```", cut_chars(&lines, 2900))}}));
            }
            if let Some(l) = link {
                blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": format!("<{l}|Open the logs>")}]}));
            }
            json(json!({"text": cut_chars(&format!("{}: {text}", slack_escape(&title)), 3000), "blocks": blocks}))
        }
    }
}

/// What one attempt came to.
enum Outcome {
    Sent,
    /// Try again (after this long, if the service said).
    Retry(String, Option<Duration>),
    /// Trying again would not help.
    Fail(String),
}

fn attempt(agent: &ureq::Agent, url: &str, req: &Request) -> Outcome {
    let mut r = match req.method {
        "PUT" => agent.put(url),
        _ => agent.post(url),
    };
    for (k, v) in &req.headers {
        r = r.header(*k, v);
    }
    match r.send(&req.body[..]) {
        Ok(mut resp) => {
            let status = resp.status().as_u16();
            let retry_after = resp
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<f64>().ok())
                .filter(|s| s.is_finite() && *s >= 0.0)
                .map(|s| Duration::from_secs_f64(s).min(MAX_WAIT));
            let body = resp.body_mut().with_config().limit(4096).read_to_string().unwrap_or_default();
            let said = cut(body.trim(), 200);
            match status {
                200..=299 => Outcome::Sent,
                429 | 500..=599 | 408 => Outcome::Retry(format!("HTTP {status} {said}"), retry_after),
                _ => Outcome::Fail(format!(
                    "HTTP {status} {said} (the address or the message was refused: check the URL)"
                )),
            }
        }
        Err(e) => Outcome::Retry(e.to_string(), None),
    }
}

/// gpubox's client for alerts (15 s a try, redirects followed: 3) and the stop request (a minute,
/// as vast-cli allows two; none followed). Statuses are answers, not errors.
pub(super) fn agent(timeout: Duration, redirects: u32) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(redirects)
        .timeout_global(Some(timeout))
        .user_agent(concat!("gpubox/", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}

/// Sends the alerts queued for target `i`, one at a time.
pub(super) async fn worker(alerts: Arc<Alerts>, i: usize, mut rx: mpsc::Receiver<super::Queued>) {
    let agent = agent(Duration::from_secs(15), 3);
    let target = alerts.settings.targets[i].clone();
    while let Some((id, alert, repeats)) = rx.recv().await {
        let req = request(&target, &alert, alerts.instance(), alerts.link(), repeats, super::now_ms());
        for n in 1..=ATTEMPTS {
            let (a, url, r) = (agent.clone(), target.url.clone(), req.clone());
            let outcome = tokio::task::spawn_blocking(move || attempt(&a, &url, &r))
                .await
                .unwrap_or_else(|_| Outcome::Fail("the sending thread failed".into()));
            let (state, error, wait) = match outcome {
                Outcome::Sent => ("sent", None, None),
                Outcome::Fail(e) => ("failed", Some(e), None),
                Outcome::Retry(e, after) if n < ATTEMPTS => {
                    ("pending", Some(e), Some(after.unwrap_or(BACKOFF[(n - 1) as usize])))
                }
                Outcome::Retry(e, _) => ("failed", Some(e), None),
            };
            alerts.update(id, i, |d| {
                d.state = state;
                d.attempts = n;
                d.error = error;
            });
            match wait {
                Some(w) => tokio::time::sleep(w).await,
                None => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(kind: TargetKind) -> AlertTarget {
        AlertTarget { kind, url: "http://127.0.0.1/x".into(), token: Some("tk".into()) }
    }

    fn alert(lines: usize, long: usize) -> Alert {
        let mut a = Alert::new(
            "exit",
            Level::Error,
            Some("forge"),
            format!("forge exited with code 1{}", "é".repeat(long)),
            "It is started again in 2 s.".into(),
        );
        a.lines = (0..lines).map(|i| format!("line {i} {}", "x".repeat(long))).collect();
        a
    }

    #[test]
    fn discord_stays_inside_its_limits() {
        let r = request(&target(TargetKind::Discord), &alert(500, 300), "box", Some("https://l"), 2, 0);
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        let e = &v["embeds"][0];
        let n = |v: &serde_json::Value| v.as_str().unwrap().chars().count();
        assert!(n(&e["title"]) <= 256);
        assert!(n(&e["description"]) <= 4096);
        assert!(n(&e["title"]) + n(&e["description"]) + n(&e["footer"]["text"]) <= 6000);
        assert_eq!(e["url"], "https://l");
        assert!(e["description"].as_str().unwrap().contains("line 499"), "the newest lines are kept");
        assert!(e["description"].as_str().unwrap().contains("2 more like it"));
    }

    #[test]
    fn slack_stays_inside_its_limits() {
        let r = request(&target(TargetKind::Slack), &alert(500, 300), "box", None, 0, 0);
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert!(v["blocks"][0]["text"]["text"].as_str().unwrap().chars().count() <= 150);
        for b in v["blocks"].as_array().unwrap() {
            if b["type"] == "section" {
                assert!(b["text"]["text"].as_str().unwrap().chars().count() <= 3000);
            }
        }
        assert!(v["text"].as_str().unwrap().starts_with("box: forge exited"));
    }

    #[test]
    fn ntfy_has_its_headers_and_a_bounded_body() {
        let r = request(&target(TargetKind::Ntfy), &alert(500, 300), "box", Some("https://l"), 0, 0);
        assert!(r.body.len() <= 4096);
        let h = |k: &str| r.headers.iter().find(|(n, _)| *n == k).map(|(_, v)| v.as_str());
        assert!(h("Title").unwrap().starts_with("=?UTF-8?B?"), "a non-ASCII title is encoded");
        assert_eq!(h("Priority"), Some("high"));
        assert_eq!(h("Click"), Some("https://l"));
        assert_eq!(h("Authorization"), Some("Bearer tk"));
        let r = request(&target(TargetKind::Ntfy), &alert(1, 0), "box", None, 0, 0);
        let h = |k: &str| r.headers.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone());
        assert_eq!(h("Title").as_deref(), Some("box: forge exited with code 1"));
        assert_eq!(h("Click"), None);
    }

    #[test]
    fn the_webhook_gets_every_field() {
        let r = request(&target(TargetKind::Webhook), &alert(3, 0), "box", Some("https://l"), 1, 1_700_000_000_000);
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["event"], "exit");
        assert_eq!(v["level"], "error");
        assert_eq!(v["service"], "forge");
        assert_eq!(v["lines"].as_array().unwrap().len(), 3);
        assert_eq!(v["time"], "2023-11-14T22:13:20Z");
        assert_eq!(v["repeats"], 1);
    }
}
