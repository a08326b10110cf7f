//! The `[auth]` table: one set of credentials for every port.

use std::time::Duration;

use serde::Serialize;

use super::raw::RawAuth;
use super::validate::Ctx;

/// Shorter tokens are ignored: a guessable token would open every port. (Vast's template sets
/// `OPEN_BUTTON_TOKEN=1` and Vast replaces it with a long random one; where nothing replaces it,
/// "1" must not become a password.)
pub const MIN_TOKEN_LEN: usize = 16;

#[derive(Debug, Clone, Serialize)]
pub struct AuthSettings {
    pub username: String,
    #[serde(skip)]
    pub password: PasswordSetting,
    /// Accepted as `?token=` and `Authorization: Bearer`; `None` when off.
    #[serde(skip)]
    pub token: Option<String>,
    /// Why a configured token is not used, for the start-up log.
    #[serde(skip)]
    pub token_ignored: Option<String>,
    #[serde(serialize_with = "super::show::duration")]
    pub session_ttl: Duration,
    /// The seed's admin/admin is in force: every page and the start-up log say so.
    pub defaults_in_force: bool,
    /// Failed attempts from one address before it is locked out for `lockout`.
    pub max_failures: u32,
    #[serde(serialize_with = "super::show::duration")]
    pub lockout: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordSetting {
    Plain(String),
    /// A PHC string from `gpubox hash-password`.
    Hash(String),
}

/// The `[auth]` table. Long because it is one check per key, in file order.
pub fn auth_settings(cx: &mut Ctx, raw: &RawAuth) -> AuthSettings {
    let env = |cx: &Ctx, name: &str| (cx.lookup)(name).filter(|v| !v.is_empty());
    let username = match &raw.username {
        Some(u) => cx.expand(u, "auth.username").unwrap_or_default(),
        None => env(cx, "USERNAME").unwrap_or_else(|| "admin".into()),
    };
    if username.is_empty() || username.contains(':') {
        let span = raw.username.as_ref().map_or(0..0, |u| u.span());
        cx.error(span, "auth.username", "must be non-empty and without `:`".into(), Some("set USERNAME".into()));
    }
    let password = match (&raw.password, &raw.password_hash) {
        (Some(_), Some(h)) => {
            cx.error(
                h.span(),
                "auth.password_hash",
                "both `password` and `password_hash` are set".into(),
                Some("keep one of them".into()),
            );
            PasswordSetting::Plain(String::new())
        }
        (_, Some(h)) => {
            let hash = cx.expand(h, "auth.password_hash").unwrap_or_default();
            match argon2::PasswordHash::new(&hash) {
                Err(_) => cx.error(
                    h.span(),
                    "auth.password_hash",
                    "is not a password hash".into(),
                    Some("make one with `gpubox hash-password`".into()),
                ),
                // Every login attempt, unauthenticated ones included, pays the hash's costs:
                // m=4294967295 passed the check and the first attempt aborted gpubox.
                Ok(parsed) => {
                    if let Some(problem) = hash_cost_problem(&parsed) {
                        cx.error(
                            h.span(),
                            "auth.password_hash",
                            problem,
                            Some("make one with `gpubox hash-password` (19 MiB, 2 passes)".into()),
                        );
                    }
                }
            }
            PasswordSetting::Hash(hash)
        }
        (Some(p), None) => {
            let plain = cx.expand(p, "auth.password").unwrap_or_default();
            if plain.is_empty() {
                cx.error(p.span(), "auth.password", "is empty".into(), Some("set PASSWORD to a password".into()));
            }
            PasswordSetting::Plain(plain)
        }
        (None, None) => PasswordSetting::Plain(env(cx, "PASSWORD").unwrap_or_else(|| "admin".into())),
    };
    let token = match &raw.token {
        Some(t) => cx.expand(t, "auth.token").unwrap_or_default(),
        None => env(cx, "OPEN_BUTTON_TOKEN").unwrap_or_default(),
    };
    let (token, token_ignored) = if token.is_empty() {
        (None, None)
    } else if token.chars().count() < MIN_TOKEN_LEN {
        (
            None,
            Some(format!("the token is shorter than {MIN_TOKEN_LEN} characters, so ?token= and Bearer login are off")),
        )
    } else {
        (Some(token), None)
    };
    let session_ttl = cx.duration(&raw.session_ttl, "auth.session_ttl", Duration::from_secs(7 * 86400));
    let defaults_in_force = username == "admin" && matches!(&password, PasswordSetting::Plain(p) if p == "admin");
    let max_failures = match &raw.max_failures {
        None => 10,
        Some(m) if *m.get_ref() == 0 => {
            cx.error(
                m.span(),
                "auth.max_failures",
                "is 0: no login could ever fail without a lockout".into(),
                Some("failed logins allowed per address before the lockout, at least 1 (default 10)".into()),
            );
            1
        }
        Some(m) => *m.get_ref(),
    };
    let lockout = cx.duration(&raw.lockout, "auth.lockout", Duration::from_secs(15 * 60));
    AuthSettings { username, password, token, token_ignored, session_ttl, defaults_in_force, max_failures, lockout }
}

/// The most an Argon2 hash may cost per login attempt: 256 MiB, 10 passes, 8 lanes.
const MAX_HASH_MEMORY_KIB: u32 = 256 * 1024;
const MAX_HASH_PASSES: u32 = 10;
const MAX_HASH_LANES: u32 = 8;

/// Why a parsed hash cannot serve as the login's, if it cannot: not Argon2, or costs that each
/// login attempt (unauthenticated ones included) could not afford.
fn hash_cost_problem(hash: &argon2::PasswordHash) -> Option<String> {
    if !hash.algorithm.as_str().starts_with("argon2") {
        return Some(format!("is a {} hash; gpubox checks Argon2 hashes", hash.algorithm));
    }
    let Ok(params) = argon2::Params::try_from(hash) else {
        return Some("has Argon2 parameters out of range".into());
    };
    let (m, t, p) = (params.m_cost(), params.t_cost(), params.p_cost());
    if m > MAX_HASH_MEMORY_KIB || t > MAX_HASH_PASSES || p > MAX_HASH_LANES {
        return Some(format!(
            "costs m={m} KiB, t={t}, p={p} per login attempt; at most m={MAX_HASH_MEMORY_KIB}, t={MAX_HASH_PASSES}, p={MAX_HASH_LANES}, since anyone can make an attempt"
        ));
    }
    None
}
