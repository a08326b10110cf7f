//! HTTPS on every port (`[tls]`): which certificate (one configured, the instance certificate a
//! Vast image may hold, or one made here on first start and kept under the state folder), and
//! the acceptor every port's connections go through. rustls with the ring provider: no OpenSSL.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::Digest;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::TlsSettings;

/// Where Vast's own images keep the instance's certificate, signed by Vast's root certificate.
pub const INSTANCE_CERT: &str = "/etc/instance.crt";
pub const INSTANCE_KEY: &str = "/etc/instance.key";

/// The certificate in use, and the acceptor made from it.
pub struct Tls {
    pub acceptor: tokio_rustls::TlsAcceptor,
    /// Where the certificate came from, in words ("self-signed, made on …", "the instance's").
    pub source: String,
    pub cert_path: PathBuf,
    /// SHA-256 of the certificate (DER), as colon-separated hex: what a browser shows.
    pub fingerprint: String,
}

/// The certificate and key to use, and what they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    /// `[tls] cert` and `key`.
    Configured(PathBuf, PathBuf),
    /// The instance certificate Vast's images hold; the folder for a self-signed one, should it
    /// not be usable.
    Instance(PathBuf, PathBuf, PathBuf),
    /// Made here (when missing) and kept in this folder.
    SelfSigned(PathBuf),
}

/// Configured files first, then the instance certificate when both its files exist, else a
/// self-signed one under `state_dir`.
pub fn choose(settings: &TlsSettings, instance: (&Path, &Path), state_dir: &Path) -> Choice {
    if let (Some(c), Some(k)) = (&settings.cert, &settings.key) {
        return Choice::Configured(c.clone(), k.clone());
    }
    if instance.0.is_file() && instance.1.is_file() {
        return Choice::Instance(instance.0.to_path_buf(), instance.1.to_path_buf(), state_dir.join("tls"));
    }
    Choice::SelfSigned(state_dir.join("tls"))
}

/// Sets up HTTPS with the chosen certificate. A configured one that cannot be used stops the
/// start (the error names the file and says what to do). One found without being asked for
/// (the instance certificate, which may be half-written while Vast signs it) falls back to the
/// self-signed one, and a self-signed one that cannot be kept (the state folder is not
/// writable) is made for this run only: both said in `warnings`, so that gpubox still starts
/// and its login can be reached to fix things. `names` go into a new certificate.
pub fn setup(choice: &Choice, names: &[String]) -> Result<(Tls, Vec<String>), String> {
    let mut warnings = Vec::new();
    match choice {
        Choice::Configured(c, k) => {
            let (cert, key) = (read(c)?, read(k)?);
            Ok((config(&cert, &key, c, k, "the configured certificate".into())?, warnings))
        }
        Choice::Instance(c, k, fallback) => {
            let instance = read(c)
                .and_then(|cert| Ok((cert, read(k)?)))
                .and_then(|(cert, key)| config(&cert, &key, c, k, "the instance certificate".into()));
            match instance {
                Ok(t) => Ok((t, warnings)),
                Err(e) => {
                    warnings.push(format!("the instance certificate cannot be used ({e}); a self-signed one is used"));
                    self_signed(fallback, names, &mut warnings).map(|t| (t, warnings))
                }
            }
        }
        Choice::SelfSigned(dir) => self_signed(dir, names, &mut warnings).map(|t| (t, warnings)),
    }
}

/// The self-signed certificate kept in `dir`, made when missing or near its end; made for this
/// run only when `dir` cannot hold it.
fn self_signed(dir: &Path, names: &[String], warnings: &mut Vec<String>) -> Result<Tls, String> {
    let (c, k) = (dir.join("self-signed.crt"), dir.join("self-signed.key"));
    if let Err(why) = private_folder(dir) {
        warnings.push(format!("{why}; the self-signed certificate is made for this run only"));
        let (cert, key) = make_self_signed(names)?;
        return config(cert.as_bytes(), key.as_bytes(), &c, &k, "a self-signed certificate for this run only".into());
    }
    if c.is_file() && k.is_file() && !expiring(dir) {
        if let (Ok(cert), Ok(key)) = (read(&c), read(&k)) {
            match config(&cert, &key, &c, &k, "the self-signed certificate made before".into()) {
                Ok(t) => return Ok(t),
                Err(e) => warnings.push(format!("{e}; making a new self-signed certificate")),
            }
        }
    }
    let (cert, key) = make_self_signed(names)?;
    let kept = crate::atomic::write(&k, key.as_bytes(), 0o600)
        .and_then(|_| crate::atomic::write(&c, cert.as_bytes(), 0o644))
        .and_then(|_| {
            let end = time::OffsetDateTime::now_utc().unix_timestamp() + VALID_DAYS * 86400;
            crate::atomic::write(&dir.join(EXPIRES), end.to_string().as_bytes(), 0o644)
        });
    let source = match kept {
        Ok(()) => "a self-signed certificate, made now".to_string(),
        Err(e) => {
            warnings.push(format!(
                "cannot keep the self-signed certificate in {}: {e}; it is for this run only",
                dir.display()
            ));
            "a self-signed certificate for this run only".to_string()
        }
    };
    config(cert.as_bytes(), key.as_bytes(), &c, &k, source)
}

/// The folder for the key: made 0700 if missing, set to 0700 if not, and refused when it is not
/// gpubox's user's (others could swap the key).
fn private_folder(dir: &Path) -> Result<(), String> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let m = std::fs::symlink_metadata(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    let me = nix::unistd::geteuid().as_raw();
    if !m.is_dir() || m.uid() != me {
        return Err(format!("{} is not a folder of gpubox's user (uid {me})", dir.display()));
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| format!("cannot make {} private: {e}", dir.display()))
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// The rustls configuration for a certificate chain and key (PEM).
fn config(cert: &[u8], key: &[u8], cert_path: &Path, key_path: &Path, source: String) -> Result<Tls, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{} is not a PEM certificate ({e})", cert_path.display()))?;
    let Some(first) = certs.first() else {
        return Err(format!(
            "{} holds no certificate: it must be PEM (-----BEGIN CERTIFICATE-----)",
            cert_path.display()
        ));
    };
    let fingerprint = fingerprint(first.as_ref());
    let private = PrivateKeyDer::from_pem_slice(key).map_err(|e| {
        format!("{} is not an unencrypted PEM private key (PKCS#8, PKCS#1 or SEC1): {e}", key_path.display())
    })?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let mut config = tokio_rustls::rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_no_client_auth()
        .with_single_cert(certs, private)
        .map_err(|e| format!("{} and {} do not go together: {e}", cert_path.display(), key_path.display()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Tls {
        acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
        source,
        cert_path: cert_path.to_path_buf(),
        fingerprint,
    })
}

/// A self-signed certificate for `names` (IP addresses become IP names), as PEM text: the
/// certificate and its key.
fn make_self_signed(names: &[String]) -> Result<(String, String), String> {
    let fail = |what: &str, e: &dyn std::fmt::Display| format!("cannot {what}: {e}");
    let mut params = rcgen::CertificateParams::new(names.to_vec()).map_err(|e| fail("name the certificate", &e))?;
    params.distinguished_name.push(rcgen::DnType::CommonName, names.first().map_or("gpubox", String::as_str));
    params.distinguished_name.push(rcgen::DnType::OrganizationName, "gpubox (self-signed)");
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    // Apple's platforms refuse TLS server certificates valid for more than 825 days (their
    // published rule, as we read it; not checked here): 800, made again a month before the end.
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(VALID_DAYS);
    let pair = rcgen::KeyPair::generate().map_err(|e| fail("make a key", &e))?;
    let made = params.self_signed(&pair).map_err(|e| fail("sign the certificate", &e))?;
    Ok((made.pem(), pair.serialize_pem()))
}

/// How long a self-signed certificate is valid.
const VALID_DAYS: i64 = 800;
/// Beside the self-signed certificate: when it ends (seconds since the epoch).
const EXPIRES: &str = "self-signed.expires";

/// The self-signed certificate in `dir` ends within a month, has ended, or its end is unknown.
fn expiring(dir: &Path) -> bool {
    let Some(end) = std::fs::read_to_string(dir.join(EXPIRES)).ok().and_then(|s| s.trim().parse::<i64>().ok()) else {
        return true;
    };
    time::OffsetDateTime::now_utc().unix_timestamp() > end - 30 * 86400
}

/// SHA-256 of DER bytes as `AB:CD:…`.
pub fn fingerprint(der: &[u8]) -> String {
    let digest = sha2::Sha256::digest(der);
    digest.iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":")
}

/// The names a self-signed certificate is made for: the public address Vast gives, the
/// container's host name, and the loopback names.
pub fn names(lookup: &dyn Fn(&str) -> Option<String>) -> Vec<String> {
    let mut names = Vec::new();
    if let Some(ip) = lookup("PUBLIC_IPADDR").map(|s| s.trim().to_string()).filter(|s| !s.is_empty()) {
        names.push(ip);
    }
    if let Ok(host) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
        let h = host.trim();
        if !h.is_empty() && h != "localhost" {
            names.push(h.to_string());
        }
    }
    names.push("localhost".into());
    names.push("127.0.0.1".into());
    names.dedup();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(cert: Option<&str>, key: Option<&str>) -> TlsSettings {
        TlsSettings { enabled: true, cert: cert.map(PathBuf::from), key: key.map(PathBuf::from) }
    }

    #[test]
    fn configured_then_instance_then_self_signed() {
        let dir = tempfile::tempdir().unwrap();
        let (c, k) = (dir.path().join("i.crt"), dir.path().join("i.key"));
        let state = dir.path().join("state");
        assert_eq!(
            choose(&settings(Some("/a.crt"), Some("/a.key")), (&c, &k), &state),
            Choice::Configured("/a.crt".into(), "/a.key".into())
        );
        assert_eq!(choose(&settings(None, None), (&c, &k), &state), Choice::SelfSigned(state.join("tls")));
        std::fs::write(&c, "x").unwrap();
        assert_eq!(
            choose(&settings(None, None), (&c, &k), &state),
            Choice::SelfSigned(state.join("tls")),
            "both or none"
        );
        std::fs::write(&k, "x").unwrap();
        assert_eq!(
            choose(&settings(None, None), (&c, &k), &state),
            Choice::Instance(c.clone(), k.clone(), state.join("tls"))
        );
        // Not a certificate (half-written while it is signed): the self-signed one, with a word.
        let (t, warnings) = setup(&choose(&settings(None, None), (&c, &k), &state), &["localhost".into()]).unwrap();
        assert!(t.source.contains("self-signed"), "{}", t.source);
        assert!(warnings[0].contains("instance certificate cannot be used"), "{warnings:?}");
    }

    #[test]
    fn a_self_signed_certificate_is_made_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let choice = Choice::SelfSigned(dir.path().join("tls"));
        let names = vec!["203.0.113.7".to_string(), "localhost".to_string()];
        let first = setup(&choice, &names).unwrap().0;
        assert!(first.source.contains("made now"), "{}", first.source);
        assert_eq!(first.fingerprint.len(), 32 * 3 - 1);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("tls/self-signed.key")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the key is private");
        let again = setup(&choice, &names).unwrap().0;
        assert_eq!(again.fingerprint, first.fingerprint, "kept: the fingerprint survives a restart");
        assert!(again.source.contains("made before"));
        // Near its end it is made again.
        let soon = time::OffsetDateTime::now_utc().unix_timestamp() + 86400;
        std::fs::write(dir.path().join("tls").join(EXPIRES), soon.to_string()).unwrap();
        let renewed = setup(&choice, &names).unwrap().0;
        assert_ne!(renewed.fingerprint, first.fingerprint);
        assert!(renewed.source.contains("made now"));
    }

    #[test]
    fn bad_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let (c, k) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
        std::fs::write(&c, "not a certificate").unwrap();
        std::fs::write(&k, "not a key").unwrap();
        let e = setup(&Choice::Configured(c.clone(), k.clone()), &[]).err().unwrap();
        assert!(e.contains("c.pem") && e.contains("no certificate"), "{e}");
        // Others may not swap the key: the folder is made private again at every start.
        use std::os::unix::fs::PermissionsExt;
        let tls = dir.path().join("tls");
        std::fs::create_dir(&tls).unwrap();
        std::fs::set_permissions(&tls, std::fs::Permissions::from_mode(0o777)).unwrap();
        setup(&Choice::SelfSigned(tls.clone()), &["localhost".into()]).unwrap();
        assert_eq!(std::fs::metadata(&tls).unwrap().permissions().mode() & 0o777, 0o700);
        let e = setup(&Choice::Configured(dir.path().join("missing.pem"), k), &[]).err().unwrap();
        assert!(e.contains("missing.pem"), "{e}");
    }
}
