//! `${VAR}` expansion for configuration values.
//!
//! Supported forms, close to POSIX shell parameter expansion so that users can copy what they
//! already know from Dockerfiles and compose files:
//!
//! | form | result |
//! | --- | --- |
//! | `${NAME}` | the value, or empty when unset |
//! | `${NAME:-default}` | the value, or `default` when unset *or empty* |
//! | `${NAME-default}` | the value, or `default` only when unset |
//! | `${NAME:?message}` | the value, or an error with `message` when unset or empty |
//! | `$$` | a literal `$` |
//!
//! A `$` not followed by `{` or `$` stays as it is, so `$HOME` in a command is passed through to
//! the program untouched (no shell runs it). Defaults may themselves contain `${...}`.

/// Expands every `${...}` in `input`, looking variables up with `lookup`.
pub fn expand(input: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body_and_tail) = after.strip_prefix('{') {
            let end = matching_brace(body_and_tail)
                .ok_or_else(|| format!("`${{` at `{}` has no closing `}}`", clip(&rest[pos..])))?;
            out.push_str(&expand_one(&body_and_tail[..end], lookup)?);
            rest = &body_and_tail[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// The index of the `}` that closes a `${`, allowing nested `${...}` in defaults.
fn matching_brace(s: &str) -> Option<usize> {
    let mut depth = 0usize;
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'$' if bytes.get(i + 1) == Some(&b'{') => {
                depth += 1;
                i += 1;
            }
            b'}' if depth == 0 => return Some(i),
            b'}' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    None
}

fn expand_one(body: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let name_len = body.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(body.len());
    let (name, op) = body.split_at(name_len);
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(format!(
            "`${{{body}}}` is not a variable reference: a name is letters, digits and `_`, not starting with a digit"
        ));
    }
    let value = lookup(name);
    let set_and_nonempty = value.as_deref().is_some_and(|v| !v.is_empty());
    if op.is_empty() {
        return Ok(value.unwrap_or_default());
    }
    if let Some(default) = op.strip_prefix(":-") {
        return if set_and_nonempty { Ok(value.unwrap_or_default()) } else { expand(default, lookup) };
    }
    if let Some(default) = op.strip_prefix('-') {
        return match value {
            Some(v) => Ok(v),
            None => expand(default, lookup),
        };
    }
    if let Some(message) = op.strip_prefix(":?") {
        return if set_and_nonempty {
            Ok(value.unwrap_or_default())
        } else {
            let message = if message.is_empty() { "is required" } else { message };
            Err(format!("environment variable {name} is not set: {message}"))
        };
    }
    Err(format!(
        "`${{{body}}}` uses an unknown operator `{op}`; use ${{{name}}}, ${{{name}:-default}}, ${{{name}-default}} or ${{{name}:?message}}"
    ))
}

fn clip(s: &str) -> String {
    s.chars().take(30).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "SET" => Some("value".into()),
            "EMPTY" => Some(String::new()),
            "ARGS" => Some("--a --b".into()),
            _ => None,
        }
    }

    fn x(s: &str) -> Result<String, String> {
        expand(s, &env)
    }

    #[test]
    fn plain_and_defaults() {
        assert_eq!(x("a ${SET} b").unwrap(), "a value b");
        assert_eq!(x("${UNSET}").unwrap(), "");
        assert_eq!(x("${UNSET:-/workspace}").unwrap(), "/workspace");
        assert_eq!(x("${EMPTY:-d}").unwrap(), "d");
        assert_eq!(x("${EMPTY-d}").unwrap(), "");
        assert_eq!(x("${UNSET-d}").unwrap(), "d");
        assert_eq!(x("${SET:-d}").unwrap(), "value");
        assert_eq!(x("run ${ARGS:-}").unwrap(), "run --a --b");
    }

    #[test]
    fn nested_default_and_escapes() {
        assert_eq!(x("${UNSET:-${SET}/x}").unwrap(), "value/x");
        assert_eq!(x("$$HOME and $HOME").unwrap(), "$HOME and $HOME");
        assert_eq!(x("cost: 5$").unwrap(), "cost: 5$");
    }

    #[test]
    fn errors_say_what_is_wrong() {
        assert!(x("${UNSET:?set it}").unwrap_err().contains("UNSET is not set: set it"));
        assert!(x("${SET:?x}").is_ok());
        assert!(x("${OPEN").unwrap_err().contains("no closing"));
        assert!(x("${1X}").unwrap_err().contains("not a variable"));
        assert!(x("${X:+y}").unwrap_err().contains("unknown operator"));
    }
}
