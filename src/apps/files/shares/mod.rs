//! Share links: a file or folder of the workspace, read-only, at `/.gpubox/s/<id>` on the file
//! manager's port, without the login. Each may end (a time, a number of downloads) and may ask
//! for a password; the list lives in `${state_dir}/shares.json`, so links survive a restart.
//!
//! A share never reaches outside its path: a folder share opens its folder as a root of its own
//! (`Root::sub`), beneath which every name is resolved, symlinks included. Links that ended or
//! were taken back answer 404 with a plain page; wrong passwords are throttled like logins.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::fs::clean;
use super::{blocking, FilesApp};
use crate::http::{ApiError, Context};

mod public;
pub(super) use public::{file, show, thumb, unlock, zip};

/// The cookie that holds a password-protected share's unlocking, for that share's path only.
const UNLOCK_COOKIE: &str = "gpubox_share";
const UNLOCK_FOR: Duration = Duration::from_secs(12 * 3600);
/// The longest a share may be given: a year. (`never` is no end at all.)
const LONGEST: Duration = Duration::from_secs(366 * 86400);
const MAX_SHARES: usize = 1000;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Share {
    pub id: String,
    /// The workspace path shared, as `a/b` (empty: the whole workspace).
    pub path: String,
    pub folder: bool,
    pub created_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_ms: Option<u64>,
    /// An Argon2 hash (PHC string) of the share's password.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_downloads: Option<u32>,
    #[serde(default)]
    pub downloads: u32,
    /// The shared file's or folder's identity when it was shared (device, inode): a link serves
    /// nothing else, whatever is later put at its path (a symlink, another folder).
    #[serde(default)]
    pub dev: u64,
    #[serde(default)]
    pub ino: u64,
}

impl Share {
    fn live(&self, now: u64) -> bool {
        self.expires_ms.is_none_or(|e| now < e) && self.max_downloads.is_none_or(|m| self.downloads < m)
    }
}

/// The shares, and who may see the protected ones.
pub struct Shares {
    file: PathBuf,
    list: Mutex<Vec<Share>>,
    /// Unlocking tokens (the cookie's value) → the share and until when.
    unlocked: Mutex<HashMap<String, (String, Instant)>>,
    /// Wrong passwords, per client and link (a right one for one link clears no other's).
    throttle: crate::auth::Throttle<(std::net::IpAddr, u64)>,
    /// Password checks at once (each Argon2 check takes 7 MiB and a core for a while).
    verifying: tokio::sync::Semaphore,
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

impl Shares {
    /// Reads `shares.json` in `state_dir` (none yet: no shares; unreadable: none, said).
    pub fn load(state_dir: &std::path::Path) -> (Shares, Option<String>) {
        let file = state_dir.join("shares.json");
        let (list, problem) = match std::fs::read(&file) {
            Ok(bytes) => match serde_json::from_slice::<Vec<Share>>(&bytes) {
                Ok(l) => (l, None),
                Err(e) => {
                    (Vec::new(), Some(format!("{} is not a list of shares ({e}): no share links work", file.display())))
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (Vec::new(), None),
            Err(e) => (Vec::new(), Some(format!("cannot read {}: {e}: no share links work", file.display()))),
        };
        let shares = Shares {
            file,
            list: Mutex::new(list),
            unlocked: Mutex::new(HashMap::new()),
            // As the login's: a few free tries, then growing waits.
            throttle: crate::auth::Throttle::new(5, Duration::from_secs(300)),
            verifying: tokio::sync::Semaphore::new(2),
        };
        (shares, problem)
    }

    fn get(&self, id: &str) -> Option<Share> {
        let now = now_ms();
        self.list.lock().expect("shares lock").iter().find(|s| s.id == id && s.live(now)).cloned()
    }

    /// Writes the list (live shares only) under a temporary name, then over the real one.
    fn save(&self, list: &[Share]) -> std::io::Result<()> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let folder = self.file.parent().expect("a file in a folder");
        std::fs::create_dir_all(folder)?;
        let tmp = folder.join(format!(".shares.json.{}", std::process::id()));
        let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
        f.write_all(&serde_json::to_vec_pretty(list).expect("shares serialize"))?;
        f.sync_all()?;
        std::fs::rename(&tmp, &self.file)
    }

    /// Counts a download; false when the share has none left (or is gone).
    fn count(&self, id: &str) -> bool {
        let mut list = self.list.lock().expect("shares lock");
        let now = now_ms();
        let Some(s) = list.iter_mut().find(|s| s.id == id && s.live(now)) else { return false };
        s.downloads = s.downloads.saturating_add(1);
        let limited = s.max_downloads.is_some();
        if limited {
            let live: Vec<Share> = list.iter().filter(|s| s.live(now)).cloned().collect();
            // The count must hold across a restart; a failed write is the file's next write's.
            let _ = self.save(&live);
        }
        true
    }

    fn unlocked(&self, id: &str, headers: &HeaderMap) -> bool {
        let tokens = self.unlocked.lock().expect("unlock lock");
        crate::http::cookies::cookies(headers, UNLOCK_COOKIE)
            .any(|t| tokens.get(&t).is_some_and(|(s, until)| s == id && *until > Instant::now()))
    }
}

// ---- the private API (behind the login)

#[derive(Deserialize)]
pub(super) struct NewShare {
    path: String,
    /// `1h`, `1d`, `7d`, any duration up to a year, or `never` / empty.
    #[serde(default)]
    expires: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    max_downloads: Option<u32>,
}

fn answer(s: &Share) -> serde_json::Value {
    json!({
        "id": s.id,
        "url": format!("/.gpubox/s/{}", s.id),
        "path": s.path,
        "folder": s.folder,
        "created_ms": s.created_ms,
        "expires_ms": s.expires_ms,
        "password": s.password.is_some(),
        "max_downloads": s.max_downloads,
        "downloads": s.downloads,
    })
}

pub(super) async fn create(State(app): State<Arc<FilesApp>>, Json(n): Json<NewShare>) -> Result<Response, ApiError> {
    let rel = clean(&n.path).context("path")?;
    let shown = format!("/{}", rel.as_str());
    let expires = match n.expires.trim() {
        "" | "never" => None,
        t => match humantime::parse_duration(t) {
            Ok(d) if d >= Duration::from_secs(1) && d <= LONGEST => Some(now_ms() + d.as_millis() as u64),
            _ => {
                return Err(ApiError::bad_request(
                    "bad_expiry",
                    format!("\"{t}\" is not a time to end the link: give 1h, 1d, 7d (up to a year), or never"),
                ))
            }
        },
    };
    if n.max_downloads == Some(0) {
        return Err(ApiError::bad_request("bad_limit", "a download limit is at least 1 (leave it out for none)"));
    }
    let password = n.password.trim_end_matches(['\r', '\n']).to_string();
    let (a, r) = (app.clone(), rel.clone());
    let stat = blocking(move || a.root.stat(&r)).await.context(&format!("cannot share {shown}"))?;
    let (dev, ino) = (stat.st_dev, stat.st_ino);
    let folder = match super::fs::kind_of(&stat) {
        "dir" => true,
        "file" => false,
        _ => return Err(ApiError::bad_request("not_shareable", format!("{shown} is neither a file nor a folder"))),
    };
    let hash =
        if password.is_empty() { None } else { Some(blocking(move || crate::auth::hash_password(&password)).await) };
    let id =
        crate::random::hex(16).map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "io", e.to_string()))?;
    let share = Share {
        id,
        path: rel.as_str(),
        folder,
        created_ms: now_ms(),
        expires_ms: expires,
        password: hash,
        max_downloads: n.max_downloads,
        downloads: 0,
        dev,
        ino,
    };
    let shares = app.shares.clone();
    let s = share.clone();
    blocking(move || {
        let mut list = shares.list.lock().expect("shares lock");
        let now = now_ms();
        list.retain(|s| s.live(now));
        if list.len() >= MAX_SHARES {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "too_many",
                format!("{MAX_SHARES} links are open already: take some back first"),
            ));
        }
        list.push(s);
        shares.save(&list).map_err(|e| {
            list.pop();
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "io", format!("cannot keep the link: {e}"))
        })
    })
    .await?;
    Ok((StatusCode::CREATED, Json(answer(&share))).into_response())
}

pub(super) async fn list(State(app): State<Arc<FilesApp>>) -> Json<serde_json::Value> {
    let now = now_ms();
    let list = app.shares.list.lock().expect("shares lock");
    let mut shares: Vec<serde_json::Value> = list.iter().filter(|s| s.live(now)).map(answer).collect();
    shares.reverse();
    Json(json!({ "shares": shares }))
}

pub(super) async fn revoke(
    State(app): State<Arc<FilesApp>>,
    UrlPath(id): UrlPath<String>,
) -> Result<Response, ApiError> {
    let shares = app.shares.clone();
    blocking(move || {
        let mut list = shares.list.lock().expect("shares lock");
        let now = now_ms();
        let Some(i) = list.iter().position(|s| s.id == id) else {
            return Err(ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such link (taken back already?)"));
        };
        let gone = list.remove(i);
        list.retain(|s| s.live(now));
        if let Err(e) = shares.save(&list) {
            // Kept, so that it is not said to be gone while it works again after a restart.
            let at = i.min(list.len());
            list.insert(at, gone);
            return Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "io",
                format!("cannot take the link back: {e}"),
            ));
        }
        shares.unlocked.lock().expect("unlock lock").retain(|_, (s, _)| *s != gone.id);
        Ok(())
    })
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ---- the public side
