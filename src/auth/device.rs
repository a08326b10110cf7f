//! Device cookies, OWASP's answer to lockouts on a shared address: a browser that once logged in
//! with the password keeps a long-lived signed cookie, and its later password attempts are
//! throttled by that cookie instead of by its address. Guessing from an address it shares (Vast's
//! proxy, a tunnel, an office NAT) then cannot lock it out, and a guesser gains nothing from the
//! cookie: it is not a credential, only a name for whose failures to count.
//!
//! The cookie is `nonce.mac`: 16 random bytes and an HMAC-SHA-256 over the username and the nonce
//! with a key kept in the state folder (`device.key`, 0600), so cookies survive a restart and a
//! forged or foreign one is treated as none.

use std::path::Path;

use sha2::{Digest, Sha256};

pub struct Devices {
    key: [u8; 32],
}

impl Devices {
    /// The key from `state_dir/device.key`, made on first use. Without a writable state folder a
    /// key for this run only (cookies then last until the next start).
    pub fn load(state_dir: &Path) -> Devices {
        let path = state_dir.join("device.key");
        if let Ok(bytes) = std::fs::read(&path) {
            if let Ok(key) = <[u8; 32]>::try_from(bytes.as_slice()) {
                return Devices { key };
            }
        }
        let key = crate::random::bytes::<32>().expect("the system's random source");
        if let Err(e) = super::sessions::write_private(&path, &key) {
            eprintln!("[gpubox] cannot save {}: {e}; device cookies last until the next start", path.display());
        }
        Devices { key }
    }

    fn mac(&self, username: &str, nonce: &[u8; 16]) -> [u8; 32] {
        // HMAC (RFC 2104) over SHA-256.
        let mut ipad = [0x36u8; 64];
        let mut opad = [0x5cu8; 64];
        for (i, k) in self.key.iter().enumerate() {
            ipad[i] ^= k;
            opad[i] ^= k;
        }
        let inner = Sha256::new()
            .chain_update(ipad)
            .chain_update(username.as_bytes())
            .chain_update([0])
            .chain_update(nonce)
            .finalize();
        Sha256::new().chain_update(opad).chain_update(inner).finalize().into()
    }

    /// A new cookie value for `username`.
    pub fn issue(&self, username: &str) -> String {
        let nonce = crate::random::bytes::<16>().expect("the system's random source");
        format!("{}.{}", hex(&nonce), hex(&self.mac(username, &nonce)))
    }

    /// The cookie's nonce when it is one this instance issued for `username`.
    pub fn check(&self, cookie: &str, username: &str) -> Option<[u8; 16]> {
        let (nonce, mac) = cookie.split_once('.')?;
        let nonce: [u8; 16] = unhex(nonce)?.try_into().ok()?;
        let expected = hex(&self.mac(username, &nonce));
        super::ct_eq(mac, &expected).then_some(nonce)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_cookies_check_and_survive_a_reload_forged_ones_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let d = Devices::load(dir.path());
        let c = d.issue("admin");
        let nonce = d.check(&c, "admin").expect("its own cookie");
        assert!(d.check(&c, "someone-else").is_none(), "bound to the username");
        let reloaded = Devices::load(dir.path());
        assert_eq!(reloaded.check(&c, "admin"), Some(nonce), "the key is kept");
        let mut forged = c.clone();
        let last = forged.pop().unwrap();
        forged.push(if last == '0' { '1' } else { '0' });
        assert!(d.check(&forged, "admin").is_none());
        assert!(d.check("zz.zz", "admin").is_none() && d.check("", "admin").is_none());
        let other = Devices::load(tempfile::tempdir().unwrap().path());
        assert!(other.check(&c, "admin").is_none(), "another instance's cookie is none");
    }
}
