//! Percent coding: `encode` for a path or a name in a URL or header, `decode_path` for a URL's
//! path (`+` is a plus), `decode_form` for a query or form value (`+` is a space). Built on the
//! `percent-encoding` crate (already in the tree through axum).

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// Everything but the unreserved characters (RFC 3986) and `/`.
const PATH: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~').remove(b'/');

/// Percent-encodes everything but unreserved characters and `/`.
pub fn encode(s: &str) -> String {
    utf8_percent_encode(s, PATH).to_string()
}

/// A URL path's percent-escapes decoded (`+` stays a plus); bytes that are not UTF-8 become
/// U+FFFD.
pub fn decode_path(s: &str) -> String {
    percent_decode_str(s).decode_utf8_lossy().into_owned()
}

/// A query or form value decoded: `+` is a space, then percent-escapes.
pub fn decode_form(s: &str) -> String {
    decode_path(&s.replace('+', " "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_the_plus() {
        assert_eq!(encode("a b/é?#%+"), "a%20b/%C3%A9%3F%23%25%2B");
        for s in ["plain", "a b", "é/ü", "100%", "a+b", "\u{10FFE9}"] {
            assert_eq!(decode_path(&encode(s)), s);
        }
        assert_eq!(decode_path("a%20b+c%zz%4"), "a b+c%zz%4");
        assert_eq!(decode_form("a%20b+c%zz%4"), "a b c%zz%4");
    }
}
