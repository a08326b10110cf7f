//! Password hashing (Argon2id, PHC strings) and constant-time comparison.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use sha2::{Digest, Sha256};

/// Argon2id with 7 MiB and 5 passes: one of OWASP's recommended settings, chosen for the smallest
/// memory, since gpubox must stay small. Verification uses the parameters stored in each hash.
fn argon2() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::new(7 * 1024, 5, 1, None).expect("valid parameters"))
}

/// A PHC string (`$argon2id$v=19$...`) for `password`, with a random salt.
pub fn hash(password: &str) -> String {
    let salt = SaltString::generate(&mut OsRng);
    argon2().hash_password(password.as_bytes(), &salt).expect("argon2 with fixed parameters").to_string()
}

/// The same, with a given salt (a base64 string without padding): the same input gives the same
/// string, which is how a password change is detected across restarts.
pub fn hash_with_salt(password: &str, salt: &str) -> Option<String> {
    let salt = SaltString::from_b64(salt).ok()?;
    Some(argon2().hash_password(password.as_bytes(), &salt).ok()?.to_string())
}

pub fn new_salt() -> String {
    SaltString::generate(&mut OsRng).as_str().to_string()
}

pub fn verify(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
}

/// Equal strings, in time that does not depend on where they differ.
pub fn ct_eq(a: &str, b: &str) -> bool {
    let (ha, hb) = (Sha256::digest(a.as_bytes()), Sha256::digest(b.as_bytes()));
    ha.iter().zip(hb.iter()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_and_verify() {
        let h = hash("s3cret");
        assert!(h.starts_with("$argon2id$"));
        assert!(verify("s3cret", &h));
        assert!(!verify("S3cret", &h));
        let salt = new_salt();
        assert_eq!(hash_with_salt("x", &salt), hash_with_salt("x", &salt));
        assert_ne!(hash_with_salt("x", &salt), hash_with_salt("y", &salt));
    }

    #[test]
    fn constant_time_equality() {
        assert!(ct_eq("abc", "abc"));
        assert!(!ct_eq("abc", "abd"));
        assert!(!ct_eq("abc", "abcd"));
    }
}
