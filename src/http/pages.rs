//! gpubox's own HTML pages, rendered on the server: the shared shell (header with the instance's
//! name and a link to every service, a banner while the default password is in force), the login
//! page, the home page, and the proxy's waiting pages. No script runs on any of them.

use std::fmt::Write;
use std::sync::Arc;

use axum::http::HeaderMap;

/// Renders the shared page shell (header, links, banner) for a request; the gateway makes one
/// per port, and the apps and the proxy's waiting page call it.
pub type ShellFn = Arc<dyn Fn(&HeaderMap) -> Shell + Send + Sync>;

/// `<`, `>`, `&`, `"` and `'` escaped for HTML text and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

pub struct Link {
    pub name: String,
    pub port: u16,
    pub url: String,
    pub here: bool,
}

/// What every page's header shows.
pub struct Shell {
    pub instance: String,
    pub links: Vec<Link>,
    /// Show the warning that the default login is in force (it is, and this browser has not
    /// hidden the warning for its session).
    pub warn_defaults: bool,
    pub logged_in: bool,
}

pub const DEFAULTS_WARNING: &str = "The login is the default admin / admin: anyone who finds this address can use it. \
Set the USERNAME and PASSWORD environment variables (in the Vast template) and restart.";

impl Shell {
    /// An app's page: an empty `#<app>-app` that `<app>.js` builds, styled by `<app>.css` (both
    /// built from web/src/<app>/).
    pub fn app(&self, title: &str, app: &str) -> String {
        self.page(
            title,
            &format!(
                "<link rel=\"stylesheet\" href=\"/.gpubox/assets/{app}.css\"><div id=\"{app}-app\"></div>\
<script src=\"/.gpubox/assets/{app}.js\"></script>"
            ),
        )
    }

    pub fn page(&self, title: &str, body: &str) -> String {
        let mut nav = String::new();
        for l in &self.links {
            let class = if l.here { " class=\"here\"" } else { "" };
            let _ =
                write!(nav, "<a{class} href=\"{}\" title=\"port {}\">{}</a>", escape(&l.url), l.port, escape(&l.name));
        }
        let logout = if self.logged_in {
            "<form method=\"post\" action=\"/.gpubox/logout\"><button class=\"link\" type=\"submit\">Log out</button></form>"
        } else {
            ""
        };
        // Hidden for the browser's session by a cookie that `shell.js` sets (cookies do not
        // depend on the port: hidden on one app, it is hidden on all).
        let (banner, script) = if self.warn_defaults {
            (
                format!(
                    "<div class=\"banner\" role=\"alert\"><span>{}</span><button type=\"button\" class=\"dismiss\" id=\"banner-hide\" \
title=\"Hide this warning until the browser is closed\">Hide</button></div>",
                    escape(DEFAULTS_WARNING)
                ),
                "<script src=\"/.gpubox/assets/shell.js\" defer></script>",
            )
        } else {
            (String::new(), "")
        };
        format!(
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>{title} · {instance}</title><link rel=\"icon\" href=\"data:,\"><link rel=\"stylesheet\" href=\"/.gpubox/assets/gpubox.css\">{script}</head>\
<body><header class=\"shell\">{name}<nav>{nav}</nav>{logout}</header>{banner}\
<main>{body}</main></body></html>\n",
            title = escape(title),
            instance = escape(&self.instance),
            // Logged in, the name leads to the instance's overview (every service, its state
            // and links), on whatever port this is.
            name = if self.logged_in {
                format!(
                    "<a class=\"name\" href=\"/.gpubox/\" title=\"this instance: every service and its state\">{}</a>",
                    escape(&self.instance)
                )
            } else {
                format!("<span class=\"name\">{}</span>", escape(&self.instance))
            },
        )
    }
}

/// The login form. `username` is put back after a failed attempt (the password never is); a
/// small script carries the URL's `#fragment` (a deep link such as `/#/outputs`, which browsers
/// never send) through the login.
pub fn login(shell: &Shell, next: &str, username: &str, error: Option<&str>) -> String {
    let error = error.map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", escape(e))).unwrap_or_default();
    let (user_focus, pass_focus) = if username.is_empty() { (" autofocus", "") } else { ("", " autofocus") };
    let body = format!(
        "<form id=\"login\" class=\"card narrow\" method=\"post\" action=\"/.gpubox/login\">\
<h1>Log in</h1>\
<input type=\"hidden\" name=\"next\" value=\"{next}\">\
<label for=\"username\">Username</label>\
<input id=\"username\" name=\"username\" type=\"text\" autocomplete=\"username\" autocapitalize=\"none\" value=\"{username}\" required{user_focus}>\
<label for=\"password\">Password</label>\
<input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required{pass_focus}>\
{error}<button type=\"submit\">Log in</button></form>\
<script src=\"/.gpubox/assets/login.js\" defer></script>",
        next = escape(next),
        username = escape(username),
    );
    shell.page("Log in", &body)
}

/// One tile of the home page.
pub struct Tile {
    pub name: String,
    /// What it is: a built-in app's description, or "a service".
    pub what: String,
    pub port: Option<u16>,
    /// Its public address (a built-in app or a proxied service).
    pub url: Option<String>,
    /// A supervised service's state and readiness (none for the built-in apps).
    pub state: Option<(String, bool)>,
    /// Its progress line, while it draws one (provisioning's downloads).
    pub live: Option<String>,
}

/// The instance's home page: tiles, then the machine's gauges. No inline style (the CSP has
/// none): gauges are `<meter>` elements. `home.js` refreshes it.
pub fn home(shell: &Shell, tiles: &[Tile], m: &crate::apps::logs::machine::Machine) -> String {
    let mut body = String::from("<div id=\"home\" class=\"home\"><section class=\"tiles\" aria-label=\"services\">");
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
        if let Some(url) = &t.url {
            let _ = write!(
                body,
                "<div class=\"link\"><a href=\"{u}\">{u}</a><button type=\"button\" class=\"copy\" data-copy=\"{u}\">Copy</button></div>",
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
    if let Some(load) = m.load {
        gauge(&mut body, "g-cpu", "CPU", load[0].min(cores), cores, format!("load {:.2} on {cores} cores", load[0]));
    }
    let limit = m.memory.limit.or(m.memory.total);
    if let (Some(used), Some(limit)) = (m.memory.used, limit) {
        let text = format!("{} of {}", crate::human::bytes(used), crate::human::bytes(limit));
        gauge(&mut body, "g-memory", "Memory", used as f64, limit as f64, text);
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
                format!("{u}% · {}", g.name),
            );
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
        body.push_str("<p class=\"muted small\">No GPU seen (no nvidia-smi answered).</p>");
    }
    body.push_str("</section></div><script src=\"/.gpubox/assets/home.js\" defer></script>");
    shell.page("Home", &body)
}

/// The page a proxied service shows while it is not ready: its state, its last log lines, kept
/// live by a script that polls the service and shows the app as soon as it is up, whatever the
/// state was (a stopped service started from a terminal included). Without JavaScript the page
/// reloads itself: every 3 s while waiting makes sense (`refresh`), else every 15 s.
pub fn waiting(shell: &Shell, service: &str, headline: &str, detail: &str, log: &[String], refresh: bool) -> String {
    let mut lines = String::new();
    for l in log {
        lines.push_str(&escape(l));
        lines.push('\n');
    }
    let body = format!(
        "<div class=\"card\" data-service=\"{}\"><h1>{}</h1><p class=\"muted\">{}</p><pre class=\"log\">{}</pre></div>",
        escape(service),
        escape(headline),
        escape(detail),
        if lines.is_empty() { format!("({} has printed nothing yet)", escape(service)) } else { lines }
    );
    let page = shell.page(service, &body);
    let every = if refresh { 3 } else { 15 };
    page.replacen(
        "</head>",
        &format!("<script src=\"/.gpubox/assets/waiting.js\" defer></script><noscript><meta http-equiv=\"refresh\" content=\"{every}\"></noscript></head>"),
        1,
    )
}
