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
    /// The instance certificate Vast's images hold.
    Instance(PathBuf, PathBuf),
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
        return Choice::Instance(instance.0.to_path_buf(), instance.1.to_path_buf());
    }
    Choice::SelfSigned(state_dir.join("tls"))
}

/// Sets up HTTPS: the chosen certificate, made first when it is a self-signed one that does not
/// exist yet. `names` go into a new certificate's subject alternative names. Errors name the
/// file and say what to do.
pub fn setup(choice: &Choice, names: &[String]) -> Result<Tls, String> {
    let (cert, key, source) = match choice {
        Choice::Configured(c, k) => (c.clone(), k.clone(), "the configured certificate".to_string()),
        Choice::Instance(c, k) => (c.clone(), k.clone(), "the instance certificate".to_string()),
        Choice::SelfSigned(dir) => {
            let (c, k) = (dir.join("self-signed.crt"), dir.join("self-signed.key"));
            let fresh = c.is_file() && k.is_file() && !expiring(dir);
            let made = if fresh { false } else { make_self_signed(dir, &c, &k, names)? };
            let what =
                if made { "a self-signed certificate, made now" } else { "the self-signed certificate made before" };
            (c, k, what.to_string())
        }
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("cannot read the certificate {}: {e}; it must be PEM", cert.display()))?;
    let Some(first) = certs.first() else {
        return Err(format!("{} holds no certificate; it must be PEM (-----BEGIN CERTIFICATE-----)", cert.display()));
    };
    let fingerprint = fingerprint(first.as_ref());
    let private = PrivateKeyDer::from_pem_file(&key)
        .map_err(|e| format!("cannot read the private key {}: {e}; it must be PEM", key.display()))?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let mut config = tokio_rustls::rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_no_client_auth()
        .with_single_cert(certs, private)
        .map_err(|e| format!("{} and {} do not go together: {e}", cert.display(), key.display()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Tls { acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)), source, cert_path: cert, fingerprint })
}

/// Makes a self-signed certificate for `names` (IP addresses become IP names) and writes it and
/// its key (0600) into `dir`, each under a temporary name first: a crash leaves no half file.
fn make_self_signed(dir: &Path, cert: &Path, key: &Path, names: &[String]) -> Result<bool, String> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let fail = |what: &str, e: &dyn std::fmt::Display| format!("cannot {what} in {}: {e}", dir.display());
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(|e| fail("create the folder", &e))?;
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
    let write = |path: &Path, text: &str, mode: u32| -> Result<(), String> {
        let tmp = path.with_extension("tmp");
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)
            .map_err(|e| fail("write", &e))?;
        std::io::Write::write_all(&mut f, text.as_bytes()).and_then(|_| f.sync_all()).map_err(|e| fail("write", &e))?;
        std::fs::rename(&tmp, path).map_err(|e| fail("write", &e))
    };
    write(key, &pair.serialize_pem(), 0o600)?;
    write(cert, &made.pem(), 0o644)?;
    write(&dir.join(EXPIRES), &params.not_after.unix_timestamp().to_string(), 0o644)?;
    Ok(true)
}

/// How long a self-signed certificate is valid.
const VALID_DAYS: i64 = 800;
/// Beside the self-signed certificate: when it ends (seconds since the epoch).
const EXPIRES: &str = "self-signed.expires";

/// The self-signed certificate in `dir` ends within a month (or has ended).
fn expiring(dir: &Path) -> bool {
    let Some(end) = std::fs::read_to_string(dir.join(EXPIRES)).ok().and_then(|s| s.trim().parse::<i64>().ok()) else {
        return false;
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
        assert_eq!(choose(&settings(None, None), (&c, &k), &state), Choice::Instance(c.clone(), k.clone()));
    }

    #[test]
    fn a_self_signed_certificate_is_made_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let choice = Choice::SelfSigned(dir.path().join("tls"));
        let names = vec!["203.0.113.7".to_string(), "localhost".to_string()];
        let first = setup(&choice, &names).unwrap();
        assert!(first.source.contains("made now"), "{}", first.source);
        assert_eq!(first.fingerprint.len(), 32 * 3 - 1);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("tls/self-signed.key")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the key is private");
        let again = setup(&choice, &names).unwrap();
        assert_eq!(again.fingerprint, first.fingerprint, "kept: the fingerprint survives a restart");
        assert!(again.source.contains("made before"));
        // Near its end it is made again.
        let soon = time::OffsetDateTime::now_utc().unix_timestamp() + 86400;
        std::fs::write(dir.path().join("tls").join(EXPIRES), soon.to_string()).unwrap();
        let renewed = setup(&choice, &names).unwrap();
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
        let e = setup(&Choice::Configured(dir.path().join("missing.pem"), k), &[]).err().unwrap();
        assert!(e.contains("missing.pem"), "{e}");
    }
}
