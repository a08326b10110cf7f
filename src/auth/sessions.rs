//! Browser sessions: random 256-bit ids, kept server-side with a sliding expiry, persisted so that
//! they survive a restart of gpubox.
//!
//! The file (`<state_dir>/sessions.json`, mode 0600) holds only SHA-256 hashes of the ids, so
//! reading it does not give a usable session. It also holds a fingerprint of the credentials (an
//! Argon2 hash with a salt stored beside it): when the username or password changes, the
//! fingerprint no longer matches and every session is dropped.

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[derive(Default, Serialize, Deserialize)]
struct File {
    salt: String,
    fingerprint: String,
    /// Hex SHA-256 of the session id → expiry (ms since the Unix epoch).
    sessions: HashMap<String, u64>,
}

pub struct Sessions {
    path: PathBuf,
    ttl: Duration,
    state: Mutex<State>,
    /// Held while the file is written, so that writes land in the order their snapshots were
    /// taken; `state` itself is held only to take the snapshot, never across disk I/O.
    writing: Mutex<()>,
}

struct State {
    file: File,
    /// Expiries moved by use but not yet written (written by [`Sessions::flush`]).
    dirty: bool,
}

/// What loading found, for the start-up log.
pub enum Loaded {
    Fresh,
    Kept(usize),
    /// The credentials changed since the sessions were made.
    Revoked(usize),
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// Hex SHA-256 of a session id: what the file and the map hold. Asked on every request.
fn key(id: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(64);
    for b in Sha256::digest(id.as_bytes()) {
        out.push(HEX[(b >> 4) as usize] as char);
        out.push(HEX[(b & 15) as usize] as char);
    }
    out
}

impl Sessions {
    /// Loads the sessions file; `fingerprint` computes the credentials' fingerprint for a salt.
    pub fn load(state_dir: &Path, ttl: Duration, fingerprint: impl Fn(&str) -> String) -> (Sessions, Loaded) {
        let path = state_dir.join("sessions.json");
        let old: Option<File> = std::fs::read(&path).ok().and_then(|b| serde_json::from_slice(&b).ok());
        let (file, loaded) = match old {
            Some(mut f) if !f.salt.is_empty() => {
                let now = now_ms();
                f.sessions.retain(|_, exp| *exp > now);
                // A file from elsewhere cannot grant more than a session's lifetime.
                let latest = now.saturating_add(ttl.as_millis() as u64);
                f.sessions.values_mut().for_each(|exp| *exp = (*exp).min(latest));
                let fp = fingerprint(&f.salt);
                if fp == f.fingerprint {
                    let n = f.sessions.len();
                    (f, if n > 0 { Loaded::Kept(n) } else { Loaded::Fresh })
                } else {
                    let n = f.sessions.len();
                    let file = File { salt: f.salt, fingerprint: fp, sessions: HashMap::new() };
                    (file, if n > 0 { Loaded::Revoked(n) } else { Loaded::Fresh })
                }
            }
            _ => {
                let salt = super::password::new_salt();
                let fingerprint = fingerprint(&salt);
                (File { salt, fingerprint, sessions: HashMap::new() }, Loaded::Fresh)
            }
        };
        let s = Sessions { path, ttl, state: Mutex::new(State { file, dirty: true }), writing: Mutex::new(()) };
        s.flush();
        (s, loaded)
    }

    /// A new session; returns its id (43 characters, URL-safe).
    pub fn create(&self) -> String {
        // Without randomness no safe session can be made: stopping is the only safe answer.
        let bytes = crate::random::bytes::<32>().expect("the system's random source");
        let id = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        let mut st = self.state.lock().expect("sessions lock");
        st.file.sessions.insert(key(&id), now_ms() + self.ttl.as_millis() as u64);
        st.dirty = true;
        drop(st);
        self.flush();
        id
    }

    /// Whether `id` is a live session; using it moves its expiry forward.
    pub fn touch(&self, id: &str) -> bool {
        let k = key(id);
        let now = now_ms();
        let mut st = self.state.lock().expect("sessions lock");
        match st.file.sessions.get_mut(&k) {
            Some(exp) if *exp > now => {
                let new = now + self.ttl.as_millis() as u64;
                // Writing the file on every request would be wasteful; a minute's drift is not.
                if new.saturating_sub(*exp) > 60_000 {
                    st.dirty = true;
                }
                *st.file.sessions.get_mut(&k).expect("present") = new;
                true
            }
            Some(_) => {
                st.file.sessions.remove(&k);
                st.dirty = true;
                false
            }
            None => false,
        }
    }

    pub fn revoke(&self, id: &str) {
        let mut st = self.state.lock().expect("sessions lock");
        if st.file.sessions.remove(&key(id)).is_some() {
            st.dirty = true;
        }
        drop(st);
        self.flush();
    }

    /// Writes the file if anything changed: to a temporary name, then renamed into place. The
    /// disk work happens outside the sessions lock, so requests are not held up by an fsync.
    pub fn flush(&self) {
        let _writing = self.writing.lock().unwrap_or_else(|e| e.into_inner());
        let json = {
            let mut st = self.state.lock().expect("sessions lock");
            if !st.dirty {
                return;
            }
            let now = now_ms();
            st.file.sessions.retain(|_, exp| *exp > now);
            let Ok(json) = serde_json::to_vec(&st.file) else { return };
            st.dirty = false;
            json
        };
        if let Err(e) = write_private(&self.path, &json) {
            self.state.lock().expect("sessions lock").dirty = true;
            eprintln!("[gpubox] cannot save sessions to {}: {e}", self.path.display());
        }
    }
}

pub(super) fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    crate::atomic::write(path, data, 0o600)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn survive_a_reload_and_die_with_a_credential_change() {
        let dir = tempfile::tempdir().unwrap();
        let ttl = Duration::from_secs(60);
        let (s, _) = Sessions::load(dir.path(), ttl, |salt| format!("fp-a-{salt}"));
        let id = s.create();
        assert!(s.touch(&id));
        assert!(!s.touch("not-a-session"));
        let text = std::fs::read_to_string(dir.path().join("sessions.json")).unwrap();
        assert!(!text.contains(&id), "the file must not hold session ids");

        let (s2, loaded) = Sessions::load(dir.path(), ttl, |salt| format!("fp-a-{salt}"));
        assert!(matches!(loaded, Loaded::Kept(1)));
        assert!(s2.touch(&id));
        s2.revoke(&id);
        assert!(!s2.touch(&id));

        let id = s2.create();
        let (s3, loaded) = Sessions::load(dir.path(), ttl, |salt| format!("fp-b-{salt}"));
        assert!(matches!(loaded, Loaded::Revoked(1)));
        assert!(!s3.touch(&id));
    }

    #[test]
    fn a_file_cannot_grant_more_than_the_ttl() {
        let dir = tempfile::tempdir().unwrap();
        let ttl = Duration::from_secs(60);
        let (s, _) = Sessions::load(dir.path(), ttl, |_| "fp".into());
        let id = s.create();
        let path = dir.path().join("sessions.json");
        let mut f: File = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        f.sessions.values_mut().for_each(|exp| *exp = u64::MAX);
        std::fs::write(&path, serde_json::to_vec(&f).unwrap()).unwrap();
        let (s, loaded) = Sessions::load(dir.path(), ttl, |_| "fp".into());
        assert!(matches!(loaded, Loaded::Kept(1)));
        let exp = *s.state.lock().unwrap().file.sessions.values().next().unwrap();
        assert!(exp <= now_ms() + 60_000, "expiry capped at now + ttl");
        assert!(s.touch(&id), "and the session still works");
    }

    #[test]
    fn expired_sessions_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (s, _) = Sessions::load(dir.path(), Duration::from_millis(30), |_| "fp".into());
        let id = s.create();
        assert!(s.touch(&id));
        std::thread::sleep(Duration::from_millis(40));
        assert!(!s.touch(&id));
    }
}
