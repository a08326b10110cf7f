//! One log query as every reader says it. `gpubox logs` builds a [`LogFilter`] from its flags, the
//! control socket carries it as JSON in its `logs` request, and the logs app reads it from its
//! query parameters ([`LogFilter::from_params`]); all three compile it into the [`Query`] the rings
//! run, with the same checks and the same errors.

use serde::{Deserialize, Serialize};

use super::search::{Matcher, Query, MAX_LIMIT};
use super::Stream;

/// Most lines of context around each match.
pub const MAX_CONTEXT: usize = 20;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LogFilter {
    /// Only these services (none: all).
    pub services: Vec<String>,
    /// Only these streams (none: all).
    pub streams: Vec<Stream>,
    /// Only lines containing this text (any case unless `case`), or matching it (`regex`).
    pub text: Option<String>,
    pub regex: bool,
    pub case: bool,
    /// With `text`: this many lines around each match (at most [`MAX_CONTEXT`]).
    pub context: usize,
    /// Only lines with a sequence number above this one.
    pub after: u64,
    /// Only lines with a sequence number below this one.
    pub before: Option<u64>,
    /// Only lines that came at or after this time (milliseconds since the epoch).
    pub since: Option<u64>,
    /// The newest this many lines (matches, with `text`) of the window; none: the reader's default.
    pub limit: Option<usize>,
}

/// A filter that cannot be run: a code for programs and a message for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterError {
    pub code: &'static str,
    pub message: String,
}

fn bad(message: String) -> FilterError {
    FilterError { code: "bad_parameter", message }
}

impl LogFilter {
    /// From the logs app's parameters (docs/logs-app.md): `service` and `stream` (several
    /// separated by commas), `q`, `regex`, `case`, `context`, `after`, `before`, `since` (milliseconds since the epoch), `limit`. Others
    /// are left to the caller. An empty value is the same as none; the text searched for is taken
    /// as it is (spaces are something to look for), everything else without surrounding blanks.
    pub fn from_params<'a>(params: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<LogFilter, FilterError> {
        fn number<T: std::str::FromStr>(key: &str, v: &str) -> Result<T, FilterError> {
            v.parse().map_err(|_| bad(format!("`{key}` must be a whole number, not \"{v}\"")))
        }
        let list = |v: &str| -> Vec<String> {
            v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect()
        };
        let mut f = LogFilter::default();
        for (key, value) in params {
            if key == "q" {
                f.text = (!value.is_empty()).then(|| value.to_string());
                continue;
            }
            let v = value.trim();
            if v.is_empty() {
                continue;
            }
            match key {
                "service" => f.services = list(v),
                "stream" => f.streams = streams(v)?,
                "regex" => f.regex = flag(v),
                "case" => f.case = flag(v),
                "context" => f.context = number(key, v)?,
                "after" => f.after = number(key, v)?,
                "before" => f.before = Some(number(key, v)?),
                "since" => f.since = Some(number(key, v)?),
                "limit" => f.limit = Some(number(key, v)?),
                _ => {}
            }
        }
        Ok(f)
    }

    /// The query the rings run; `default_limit` when no limit was given. Limits are clamped to
    /// 1..=[`MAX_LIMIT`], context to [`MAX_CONTEXT`].
    pub fn compile(&self, default_limit: usize) -> Result<Query, FilterError> {
        let matcher = match self.text.as_deref().filter(|t| !t.is_empty()) {
            None => None,
            Some(t) => Some(Matcher::new(t, self.regex, self.case).map_err(|e| FilterError {
                code: "bad_regex",
                message: format!("this regular expression does not parse: {e}"),
            })?),
        };
        Ok(Query {
            services: (!self.services.is_empty()).then(|| self.services.clone()),
            streams: (!self.streams.is_empty()).then(|| self.streams.clone()),
            after: self.after,
            before: self.before,
            since_ms: self.since.unwrap_or(0),
            limit: self.limit.unwrap_or(default_limit).clamp(1, MAX_LIMIT),
            matcher,
            context: self.context.min(MAX_CONTEXT),
        })
    }

    /// Whether a line of `service` on `stream` passes the service and stream filters.
    pub fn wants(&self, service: &str, stream: Stream) -> bool {
        (self.services.is_empty() || self.services.iter().any(|s| s == service))
            && (self.streams.is_empty() || self.streams.contains(&stream))
    }
}

/// Stream names separated by commas.
pub fn streams(list: &str) -> Result<Vec<Stream>, FilterError> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|n| {
            Stream::parse(n).ok_or_else(|| bad(format!("unknown stream \"{n}\": use stdout, stderr, tty or event")))
        })
        .collect()
}

/// `1`, `true`, `yes` or `on`.
pub fn flag(v: &str) -> bool {
    matches!(v, "1" | "true" | "yes" | "on")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_parse_into_the_filter_and_compile() {
        let f = LogFilter::from_params([
            ("service", "app, gpubox"),
            ("stream", "stderr"),
            ("q", "Error"),
            ("case", "1"),
            ("context", "50"),
            ("after", "7"),
            ("limit", ""),
            ("other", "x"),
        ])
        .unwrap();
        assert_eq!(f.services, ["app", "gpubox"]);
        assert_eq!(f.streams, [Stream::Stderr]);
        assert_eq!((f.text.as_deref(), f.regex, f.case, f.after, f.limit), (Some("Error"), false, true, 7, None));
        let q = f.compile(1000).unwrap();
        assert_eq!((q.limit, q.context, q.after), (1000, MAX_CONTEXT, 7));
        assert!(q.matcher.unwrap().is_match("an Error") && f.wants("app", Stream::Stderr));
        assert!(!f.wants("app", Stream::Stdout) && !f.wants("other", Stream::Stderr));

        let e = LogFilter::from_params([("limit", "ten")]).unwrap_err();
        assert_eq!((e.code, e.message.as_str()), ("bad_parameter", "`limit` must be a whole number, not \"ten\""));
        assert_eq!(LogFilter::from_params([("stream", "stdin")]).unwrap_err().code, "bad_parameter");
        let spaces = LogFilter::from_params([("q", "  ")]).unwrap();
        assert_eq!(spaces.text.as_deref(), Some("  "), "blanks are something to look for");
        let f = LogFilter { text: Some("(unclosed".into()), regex: true, ..LogFilter::default() };
        assert_eq!(f.compile(10).unwrap_err().code, "bad_regex");
        assert_eq!(LogFilter { limit: Some(0), ..LogFilter::default() }.compile(10).unwrap().limit, 1);
    }

    #[test]
    fn the_wire_form_round_trips() {
        let f = LogFilter {
            services: vec!["a".into()],
            streams: vec![Stream::Tty],
            limit: Some(5),
            ..LogFilter::default()
        };
        let json = serde_json::to_string(&f).unwrap();
        assert_eq!(serde_json::from_str::<LogFilter>(&json).unwrap(), f);
        assert_eq!(serde_json::from_str::<LogFilter>("{}").unwrap(), LogFilter::default());
    }
}
