//! Logging in from an address shared with an attacker (Vast's proxy, a tunnel, a NAT), the login
//! form's manners (the username kept after a mistake), and session cookies that come in twos.

use crate::gateway::{basic, start, PASSWORD, TOKEN, USER};
use crate::http::{request, Response};

fn form_login(port: u16, origin: &str, pass: &str, cookie: Option<&str>) -> Response {
    let body = format!("username={USER}&password={}&next=/", pass.replace(' ', "+"));
    let mut headers = vec![("Content-Type", "application/x-www-form-urlencoded"), ("Origin", origin)];
    if let Some(c) = cookie {
        headers.push(("Cookie", c));
    }
    request(port, "POST", "/.gpubox/login", &headers, body.as_bytes())
}

/// The `gpubox_device` cookie a login answer sets, as `name=value`.
fn device_cookie(r: &Response) -> Option<String> {
    r.headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
        .map(|(_, v)| v.split(';').next().unwrap_or("").to_string())
        .find(|c| c.starts_with("gpubox_device="))
}

#[test]
fn guessing_from_a_shared_address_does_not_lock_out_the_user() {
    let b = start("max_failures = 5\nlockout = \"10m\"", 0.0).ready();
    let origin = b.origin();
    // The user logged in from this browser before: it holds a device cookie.
    let first = form_login(b.port, &origin, PASSWORD, None);
    assert_eq!(first.status, 303, "{}", first.text());
    let device = device_cookie(&first).expect("a device cookie after a password login");
    let set = first.headers.iter().find(|(_, v)| v.starts_with("gpubox_device=")).unwrap().1.clone();
    assert!(set.contains("HttpOnly") && set.contains("Path=/.gpubox/login"), "{set}");

    // Someone on the same address guesses until the address is locked out.
    let mut locked = false;
    for _ in 0..8 {
        let r = form_login(b.port, &origin, "guess", None);
        assert!(r.status == 401 || r.status == 429, "{}", r.status);
        locked |= r.status == 429;
    }
    assert!(locked, "the guesser is locked out");
    assert_eq!(form_login(b.port, &origin, PASSWORD, None).status, 429, "a browser never seen before waits");
    let r = request(b.port, "GET", "/.gpubox/session", &[("Authorization", &basic(USER, PASSWORD))], b"");
    assert_eq!(r.status, 429, "so does a new Basic client");

    // The user's browser, with its device cookie, logs in; so do the token and Bearer.
    let r = form_login(b.port, &origin, PASSWORD, Some(&device));
    assert_eq!(r.status, 303, "the device cookie's login: {}", r.text());
    assert!(r.session_cookie().is_some());
    assert!(device_cookie(&r).is_none(), "a known device keeps its cookie");
    let r = request(b.port, "GET", "/.gpubox/session", &[("Authorization", &format!("Bearer {TOKEN}"))], b"");
    assert_eq!(r.status, 200, "Bearer with the token");
    let r = request(b.port, "GET", &format!("/?token={TOKEN}"), &[("Accept", "text/html")], b"");
    assert_eq!(r.status, 303, "the Open button's ?token=");
    assert!(r.session_cookie().is_some());

    // The device cookie is its own throttle: wrong passwords with it lock it out, not others'.
    for _ in 0..6 {
        let _ = form_login(b.port, &origin, "typo", Some(&device));
    }
    assert_eq!(form_login(b.port, &origin, PASSWORD, Some(&device)).status, 429);
    // A forged device cookie counts as none.
    let forged = format!("{}0", &device[..device.len() - 1]);
    let forged = if forged == device { format!("{}1", &device[..device.len() - 1]) } else { forged };
    assert_eq!(form_login(b.port, &origin, PASSWORD, Some(&forged)).status, 429);
}

#[test]
fn a_wrong_password_keeps_the_username_and_two_session_cookies_are_each_tried() {
    let b = start("", 0.0).ready();
    let origin = b.origin();
    let r = form_login(b.port, &origin, "wrong", None);
    assert_eq!(r.status, 401);
    let page = r.text();
    assert!(page.contains(&format!("value=\"{USER}\"")), "the username is kept: {page}");
    assert!(
        page.contains(
            "id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required autofocus"
        ),
        "{page}"
    );
    assert!(!page.contains("value=\"wrong\""), "never the password");

    // A stale cookie (say one an app set with a narrower path) first, the valid one second.
    let session = b.login();
    let cookie = format!("gpubox_session=stale-or-foreign; gpubox_session={session}");
    let r = request(b.port, "GET", "/.gpubox/session", &[("Cookie", &cookie)], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    let cookie = "gpubox_session=stale; other=1; gpubox_session=also-stale";
    assert_eq!(request(b.port, "GET", "/.gpubox/session", &[("Cookie", cookie)], b"").status, 401);
}
