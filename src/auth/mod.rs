//! One login for every port: credentials, sessions, Basic/Bearer/`?token=` checks, throttling.
//! It does not know which app is behind it; the gateway asks it about each request.

mod device;
mod password;
mod sessions;
mod throttle;

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;
use sha2::{Digest, Sha256};

use crate::config::{AuthSettings, PasswordSetting};
pub use password::{ct_eq, hash as hash_password, verify as verify_password};
pub use sessions::Loaded;
pub use throttle::{client as throttle_key, Throttle};

/// How long a checked Basic header is remembered, so that a script's requests do not each pay
/// for an Argon2 verification.
const BASIC_CACHE_TTL: Duration = Duration::from_secs(300);

/// A successful password login.
pub struct Login {
    pub session: String,
    /// A new device cookie for a browser that had none (or a stale one).
    pub device: Option<String>,
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denial {
    /// No credentials at all.
    Missing,
    /// Wrong credentials, an unknown or expired session.
    Invalid,
    /// Too many failures from this address: try again after this long.
    Throttled(Duration),
}

pub struct Auth {
    username: String,
    /// The password as an Argon2 hash: the plain text is not kept.
    verifier: String,
    token: Option<String>,
    pub defaults_in_force: bool,
    pub session_ttl: Duration,
    sessions: sessions::Sessions,
    /// Failed password attempts by address, and by device cookie for browsers that have one.
    throttle: throttle::Throttle<IpAddr>,
    device_throttle: throttle::Throttle<[u8; 16]>,
    devices: device::Devices,
    basic_ok: Mutex<HashMap<[u8; 32], Instant>>,
    /// One Argon2 verification at a time: each takes 7 MiB and tens of milliseconds, and a
    /// flood of logins must not take the machine's memory or every core.
    argon2: Mutex<()>,
}

impl Auth {
    /// Hashes the password (Argon2: tens of milliseconds; call it off the async threads) and loads
    /// the sessions kept in `state_dir`.
    pub fn new(settings: &AuthSettings, state_dir: &Path) -> (Auth, Loaded) {
        let (verifier, secret) = match &settings.password {
            PasswordSetting::Plain(p) => (password::hash(p), p.clone()),
            PasswordSetting::Hash(h) => (h.clone(), h.clone()),
        };
        let identity = format!("{}\0{secret}", settings.username);
        let (sessions, loaded) = sessions::Sessions::load(state_dir, settings.session_ttl, |salt| {
            password::hash_with_salt(&identity, salt).unwrap_or_default()
        });
        let auth = Auth {
            username: settings.username.clone(),
            verifier,
            token: settings.token.clone(),
            defaults_in_force: settings.defaults_in_force,
            session_ttl: settings.session_ttl,
            sessions,
            throttle: throttle::Throttle::new(settings.max_failures, settings.lockout),
            device_throttle: throttle::Throttle::new(settings.max_failures, settings.lockout),
            devices: device::Devices::load(state_dir),
            basic_ok: Mutex::new(HashMap::new()),
            argon2: Mutex::new(()),
        };
        (auth, loaded)
    }

    fn credentials_ok(&self, user: &str, pass: &str) -> bool {
        // Both checks always run, so timing does not tell which one failed.
        let user_ok = ct_eq(user, &self.username);
        let pass_ok = {
            let _one_at_a_time = self.argon2.lock().unwrap_or_else(|e| e.into_inner());
            password::verify(pass, &self.verifier)
        };
        user_ok && pass_ok
    }

    /// Runs a password check under the throttle of `ip` (or of the browser's device cookie, when
    /// it has a valid one): the attempt counts as a failure from its start, and a success clears
    /// the record.
    fn throttled(&self, ip: IpAddr, device: Option<[u8; 16]>, check: impl FnOnce() -> bool) -> Result<(), Denial> {
        let ip = throttle::client(ip);
        match device {
            Some(d) => self.device_throttle.begin(d),
            None => self.throttle.begin(ip),
        }
        .map_err(Denial::Throttled)?;
        if check() {
            match device {
                Some(d) => self.device_throttle.success(d),
                None => self.throttle.success(ip),
            }
            Ok(())
        } else {
            Err(Denial::Invalid)
        }
    }

    /// The login form: on success, a new session id for the cookie, and a device cookie when the
    /// browser has none yet. `device` is the browser's `gpubox_device` cookie, if any.
    pub fn login(&self, user: &str, pass: &str, ip: IpAddr, device: Option<&str>) -> Result<Login, Denial> {
        let known = device.and_then(|d| self.devices.check(d, &self.username));
        self.throttled(ip, known, || self.credentials_ok(user, pass))?;
        Ok(Login {
            session: self.sessions.create(),
            device: known.is_none().then(|| self.devices.issue(&self.username)),
        })
    }

    /// `?token=` from Vast's Open button: on success, a new session id for the cookie.
    pub fn login_with_token(&self, token: &str, ip: IpAddr) -> Result<String, Denial> {
        self.check_bearer(token, ip)?;
        Ok(self.sessions.create())
    }

    pub fn username(&self) -> &str {
        &self.username
    }

    pub fn check_session(&self, id: &str) -> bool {
        self.sessions.touch(id)
    }

    pub fn logout(&self, id: &str) {
        self.sessions.revoke(id);
    }

    /// A token is checked even from an address that is locked out, and a wrong one is not
    /// counted: it is at least 16 characters (Vast's are random), which no one guesses at any
    /// rate; someone guessing passwords from an address shared with the user (Vast's proxy, a
    /// tunnel) must not lock the user out; and free token checks must not be a cheap way to fill
    /// the throttle's table.
    pub fn check_bearer(&self, token: &str, _ip: IpAddr) -> Result<(), Denial> {
        let Some(expected) = &self.token else { return Err(Denial::Invalid) };
        if ct_eq(token, expected) {
            Ok(())
        } else {
            Err(Denial::Invalid)
        }
    }

    /// Whether this Basic header was checked successfully a short while ago (cheap).
    pub fn basic_recently_ok(&self, encoded: &str) -> bool {
        let digest: [u8; 32] = Sha256::digest(encoded.trim().as_bytes()).into();
        self.basic_ok.lock().expect("basic cache lock").get(&digest).is_some_and(|t| t.elapsed() < BASIC_CACHE_TTL)
    }

    /// The value of an `Authorization: Basic ...` header (after `Basic `). Runs Argon2 unless
    /// the header was checked recently: call it off the async threads.
    pub fn check_basic(&self, encoded: &str, ip: IpAddr) -> Result<(), Denial> {
        if self.basic_recently_ok(encoded) {
            return Ok(());
        }
        let digest: [u8; 32] = Sha256::digest(encoded.trim().as_bytes()).into();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok());
        self.throttled(ip, None, || {
            decoded
                .as_deref()
                .and_then(|d| d.split_once(':'))
                .is_some_and(|(user, pass)| self.credentials_ok(user, pass))
        })?;
        let mut cache = self.basic_ok.lock().expect("basic cache lock");
        cache.retain(|_, t| t.elapsed() < BASIC_CACHE_TTL);
        cache.insert(digest, Instant::now());
        Ok(())
    }

    /// Writes sessions whose expiry moved; called now and then and at shutdown.
    pub fn flush(&self) {
        self.sessions.flush();
    }
}
