//! The instance's home page (`/.gpubox/` on every port): a tile per app and service, the
//! machine's gauges. Rendered here (not in `http::pages`) because it reads the machine through
//! the logs app's probe.

use std::fmt::Write;

use crate::apps::logs::machine::Machine;
use crate::http::pages::{escape, Shell};
use crate::metrics::Columns;

/// One tile of the home page.
pub struct Tile {
    pub name: String,
    /// What it is: a built-in app's description, or "a service".
    pub what: String,
    pub port: Option<u16>,
    /// Its direct public address (a built-in app or a proxied service).
    pub url: Option<String>,
    /// Its addresses through tunnels.
    pub tunnels: Vec<String>,
    /// A supervised service's state and readiness (none for the built-in apps).
    pub state: Option<(String, bool)>,
    /// Its progress line, while it draws one (provisioning's downloads).
    pub live: Option<String>,
}

/// The instance's home page: tiles, then the machine's gauges. No inline style (the CSP has
/// none): gauges are `<meter>` elements. `home.js` refreshes it.
pub fn page(shell: &Shell, tiles: &[Tile], tunnel_problem: Option<&str>, m: &Machine, history: &Columns) -> String {
    let mut body = String::from("<div id=\"home\" class=\"home\">");
    if let Some(p) = tunnel_problem {
        let _ = write!(body, "<p class=\"notice\" id=\"tunnel-problem\">Tunnels: {}</p>", escape(p));
    }
    body.push_str("<section class=\"tiles\" aria-label=\"services\">");
    for t in tiles {
        let (label, class) = match &t.state {
            None => ("built in".to_string(), "st-running"),
            Some((_, true)) => ("ready".to_string(), "st-running"),
            Some((state, false)) => (
                state.clone(),
                match state.as_str() {
                    "failed" | "backoff" => "st-failed",
                    "starting" | "waiting" | "stopping" => "st-starting",
                    _ => "st-other",
                },
            ),
        };
        let _ = write!(
            body,
            "<article class=\"tile\" data-service=\"{name}\"><header><h2>{name}</h2><span class=\"pill {class}\" data-state=\"{label}\">{label}</span></header><p class=\"muted\">{what}{port}</p>",
            name = escape(&t.name),
            label = escape(&label),
            what = escape(&t.what),
            port = t.port.map_or(String::new(), |p| format!(" · port {p}")),
        );
        let links = t.url.iter().map(|u| (u, "direct")).chain(t.tunnels.iter().map(|u| (u, "tunnel")));
        for (url, kind) in links {
            let _ = write!(
                body,
                "<div class=\"link {kind}\"><span class=\"kind\">{kind}</span><a href=\"{u}\">{u}</a><button type=\"button\" class=\"copy\" data-copy=\"{u}\">Copy</button></div>",
                u = escape(url)
            );
        }
        if let Some(live) = &t.live {
            let _ = write!(body, "<pre class=\"live\">{}</pre>", escape(live));
        }
        body.push_str("</article>");
    }
    body.push_str("</section><section class=\"gauges\" aria-label=\"machine\"><h2>Machine</h2>");
    let gauge = |body: &mut String, id: &str, name: &str, used: f64, total: f64, text: String| {
        let _ = write!(
            body,
            "<div class=\"gauge\" id=\"{id}\"><span class=\"g-name\">{}</span><meter min=\"0\" max=\"{total}\" low=\"{}\" high=\"{}\" optimum=\"0\" value=\"{used}\"></meter><span class=\"g-text\">{}</span></div>",
            escape(name),
            total * 0.75,
            total * 0.9,
            escape(&text)
        );
    };
    let cores = m.cpu_quota.unwrap_or(m.cpus as f64).max(1.0);
    // The container's own use (its cgroup's CPU time) when sampled; the host's load otherwise.
    let cpu_now = history.series.get("cpu").and_then(|c| c.last().copied().flatten());
    if let Some(pct) = cpu_now {
        gauge(&mut body, "g-cpu", "CPU", pct as f64, 100.0, format!("{pct:.0}% of {cores} cores"));
    } else if let Some(load) = m.load {
        gauge(&mut body, "g-cpu", "CPU", load[0].min(cores), cores, format!("load {:.2} on {cores} cores", load[0]));
    }
    spark(&mut body, history, "cpu", 100.0);
    let limit = m.memory.limit.or(m.memory.total);
    if let (Some(used), Some(limit)) = (m.memory.used, limit) {
        let text = format!("{} of {}", crate::human::bytes(used), crate::human::bytes(limit));
        gauge(&mut body, "g-memory", "Memory", used as f64, limit as f64, text);
        spark(&mut body, history, "mem", limit as f64);
    }
    if let Some(d) = &m.disk {
        let text = format!("{} used, {} free", crate::human::bytes(d.used), crate::human::bytes(d.free));
        gauge(&mut body, "g-disk", "Disk", d.used as f64, d.total as f64, text);
    }
    for g in &m.gpus {
        if let Some(u) = g.utilization {
            gauge(
                &mut body,
                &format!("g-gpu{}", g.index),
                &format!("GPU {}", g.index),
                u as f64,
                100.0,
                format!("{u:.0}% · {}", g.name),
            );
            spark(&mut body, history, &format!("gpu{}_util", g.index), 100.0);
        }
        if let (Some(used), Some(total)) = (g.memory_used, g.memory_total) {
            let text = format!("{} of {}", crate::human::bytes(used), crate::human::bytes(total));
            gauge(
                &mut body,
                &format!("g-vram{}", g.index),
                &format!("GPU {} memory", g.index),
                used as f64,
                total as f64,
                text,
            );
        }
    }
    if m.gpus.is_empty() {
        body.push_str("<p class=\"muted small\">No GPU seen (neither NVML nor nvidia-smi answered).</p>");
    }
    body.push_str("</section></div><script src=\"/.gpubox/assets/home.js\" defer></script>");
    shell.page("Home", &body)
}

/// Width and height of a sparkline's drawing (it is stretched to the gauge's width).
const SPARK_W: f64 = 240.0;
const SPARK_H: f64 = 24.0;

/// The last minutes of one series under its gauge: an SVG path (no script, no inline style:
/// presentation attributes only), broken where nothing was read. Nothing when the history has
/// fewer than two readings of it.
fn spark(body: &mut String, history: &Columns, series: &str, max: f64) {
    let Some(values) = history.series.get(series) else { return };
    let (Some(&first), Some(&last)) = (history.t.first(), history.t.last()) else { return };
    if values.iter().flatten().count() < 2 || last <= first || max <= 0.0 {
        return;
    }
    let span = (last - first) as f64;
    let mut d = String::new();
    let mut pen_down = false;
    for (t, v) in history.t.iter().zip(values) {
        match v {
            Some(v) => {
                let x = (*t - first) as f64 / span * SPARK_W;
                let y = SPARK_H - 1.0 - (*v as f64 / max).clamp(0.0, 1.0) * (SPARK_H - 2.0);
                let _ = write!(d, "{}{x:.1} {y:.1}", if pen_down { "L" } else { "M" });
                pen_down = true;
            }
            None => pen_down = false,
        }
    }
    let minutes = (span / 60.0).round();
    let _ = write!(
        body,
        "<svg class=\"spark\" data-series=\"{series}\" viewBox=\"0 0 {SPARK_W} {SPARK_H}\" preserveAspectRatio=\"none\" width=\"100%\" height=\"{SPARK_H}\" role=\"img\" aria-label=\"{} over the last {minutes} min\"><path d=\"{d}\" fill=\"none\" stroke=\"currentColor\" stroke-width=\"1.5\" vector-effect=\"non-scaling-stroke\"/></svg>",
        escape(series)
    );
}
