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
    /// Where the header's link goes: through the tunnel the page came through when the port has
    /// one, else the direct address ("/" for this port).
    pub url: String,
    pub here: bool,
    /// The port's direct public address, when known.
    pub direct: Option<String>,
    /// Its addresses through tunnels.
    pub tunnels: Vec<String>,
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
        let banner = if self.warn_defaults {
            format!(
                "<div class=\"banner\" role=\"alert\"><span>{}</span><button type=\"button\" class=\"dismiss\" id=\"banner-hide\" \
title=\"Hide this warning until the browser is closed\">Hide</button></div>",
                escape(DEFAULTS_WARNING)
            )
        } else {
            String::new()
        };
        // `shell.js` also shows the idle stop's warning, to whoever is logged in.
        let script = if self.warn_defaults || self.logged_in {
            "<script src=\"/.gpubox/assets/shell.js\" defer></script>"
        } else {
            ""
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
