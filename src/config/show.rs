//! `gpubox config show`: the effective configuration as TOML, with secrets masked.

use std::time::Duration;

use nix::sys::signal::Signal;
use serde::Serializer;

use super::Config;

const MASK: &str = "********";

pub fn duration<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&humantime::format_duration(*d))
}

pub fn optional_duration<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => duration(d, s),
        None => s.serialize_none(),
    }
}

pub fn signal<S: Serializer>(sig: &Signal, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(sig.as_str())
}

pub fn bytes<S: Serializer>(n: &u64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(*n)
}

/// Whether a variable or flag name looks like it holds a secret.
pub fn is_secret_name(name: &str) -> bool {
    let n = name.to_ascii_uppercase();
    ["PASSWORD", "PASSWD", "TOKEN", "SECRET", "API_KEY", "APIKEY", "API-KEY", "CREDENTIAL", "PRIVATE"]
        .iter()
        .any(|w| n.contains(w))
}

/// Masks values of secret-looking environment variables and the values of secret-looking flags
/// (`--api-key X`, `--token=X`) in commands.
pub fn to_masked_toml(config: &Config) -> String {
    let mut c = config.clone();
    for s in &mut c.services {
        for (k, v) in s.env.iter_mut() {
            if is_secret_name(k) && !v.is_empty() {
                *v = MASK.into();
            }
        }
        let mut mask_next = false;
        for arg in s.command.iter_mut() {
            if mask_next {
                *arg = MASK.into();
                mask_next = false;
            } else if let Some((flag, _)) = arg.split_once('=').filter(|(f, _)| f.starts_with('-')) {
                if is_secret_name(flag) {
                    *arg = format!("{flag}={MASK}");
                }
            } else if arg.starts_with('-') && is_secret_name(arg) {
                mask_next = true;
            }
        }
    }
    let mut out = format!("# effective configuration from {}\n", config.source);
    out.push_str(&toml::to_string_pretty(&ShowConfig(&c)).unwrap_or_else(|e| format!("# cannot render: {e}\n")));
    out
}

/// Services as a table keyed by name, as they are written.
struct ShowConfig<'a>(&'a Config);

impl serde::Serialize for ShowConfig<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let c = self.0;
        #[derive(serde::Serialize)]
        #[serde(untagged)]
        enum Entry<'a> {
            Program(&'a super::Service),
            App(&'a super::AppService),
        }
        let services: std::collections::BTreeMap<&str, Entry> = c
            .services
            .iter()
            .map(|s| (s.name.as_str(), Entry::Program(s)))
            .chain(c.apps.iter().map(|a| (a.name.as_str(), Entry::App(a))))
            .collect();
        let mut st = s.serialize_struct("Config", 6)?;
        st.serialize_field("workspace", &c.workspace)?;
        st.serialize_field("name", &c.name)?;
        st.serialize_field("state_dir", &c.state_dir)?;
        st.serialize_field("logs", &c.logs)?;
        st.serialize_field("auth", &ShowAuth(&c.auth))?;
        st.serialize_field("services", &services)?;
        st.end()
    }
}

/// The auth table with its secrets masked.
struct ShowAuth<'a>(&'a super::AuthSettings);

impl serde::Serialize for ShowAuth<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let a = self.0;
        let mut st = s.serialize_struct("Auth", 4)?;
        st.serialize_field("username", &a.username)?;
        match &a.password {
            super::PasswordSetting::Plain(_) => st.serialize_field("password", MASK)?,
            super::PasswordSetting::Hash(_) => st.serialize_field("password_hash", MASK)?,
        }
        st.serialize_field("token", if a.token.is_some() { MASK } else { "" })?;
        st.serialize_field("session_ttl", &humantime::format_duration(a.session_ttl).to_string())?;
        st.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn secrets_are_masked() {
        let text = r#"
[services.a]
command = "sh --api-key abc --token=xyz --port 1"
env = { HF_TOKEN = "hf_secret", PLAIN = "visible" }
"#;
        let env = |n: &str| (n == "PATH").then(|| "/usr/bin:/bin".to_string());
        let c = Config::parse(text, "t.toml", Path::new("/tmp"), &env).unwrap();
        let shown = to_masked_toml(&c);
        assert!(!shown.contains("hf_secret") && !shown.contains("abc") && !shown.contains("xyz"), "{shown}");
        assert!(shown.contains("visible") && shown.contains("--port"), "{shown}");
        assert!(shown.contains("stop_timeout = \"10s\""), "{shown}");
    }
}
