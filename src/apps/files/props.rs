//! Property tests (proptest) of what the file manager parses from requests: paths, names on disk,
//! temporary names, `Range`, tus's `Upload-Metadata`, WebDAV's XML and paths. Each runs a bounded
//! number of cases with the unit tests (`PROPTEST_CASES` raises it).

use axum::http::{HeaderMap, HeaderValue};
use proptest::prelude::*;

use super::fs::{clean, name_from_bytes, name_to_bytes, temp_name, PRIVATE};

/// Path-ish strings: the characters that matter to a path resolver, in any order.
fn pathish() -> impl Strategy<Value = String> {
    let atoms = prop_oneof![
        Just("/".to_string()),
        Just(".".to_string()),
        Just("..".to_string()),
        Just("\\".to_string()),
        Just("\0".to_string()),
        Just("%2e".to_string()),
        Just(".gpubox".to_string()),
        Just("\u{7}".to_string()),
        "[a-zA-Z0-9 _.-]{1,8}",
        any::<char>().prop_map(String::from),
    ];
    proptest::collection::vec(atoms, 0..16).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Whatever comes in, a cleaned path has only plain segments, never reaches the private
    /// folder, and cleaning it again gives it back.
    #[test]
    fn cleaned_paths_are_plain_and_stable(p in pathish()) {
        if let Ok(rel) = clean(&p) {
            for seg in &rel.0 {
                prop_assert!(!seg.is_empty() && seg != "." && seg != "..", "{seg:?} from {p:?}");
                prop_assert!(!seg.contains(['/', '\\', '\0']), "{seg:?} from {p:?}");
                prop_assert!(!seg.chars().any(char::is_control), "{seg:?} from {p:?}");
            }
            prop_assert!(rel.0.first().map(String::as_str) != Some(PRIVATE));
            prop_assert_eq!(clean(&rel.as_str()).unwrap().0, rel.0.clone());
        }
    }

    /// Plain segments joined with extra slashes and dots come back as exactly those segments.
    #[test]
    fn plain_segments_survive_cleaning(segs in proptest::collection::vec("[a-zA-Z0-9_-][a-zA-Z0-9 _.-]{0,10}", 1..6), extra in 0usize..3) {
        prop_assume!(segs[0] != PRIVATE);
        let sep = format!("/{}", "./".repeat(extra));
        let p = format!("{sep}{}{sep}", segs.join(&sep));
        let cleaned = clean(&p).unwrap().0;
        let expected: Vec<String> = segs.iter().map(|s| s.trim_end().to_string()).collect();
        prop_assert_eq!(cleaned.len(), expected.len(), "{:?}", p);
    }

    /// Any bytes a name may have on disk come back the same through the API's form of it.
    #[test]
    fn names_on_disk_round_trip(bytes in proptest::collection::vec(1u8..=255, 0..64)) {
        prop_assert_eq!(name_to_bytes(&name_from_bytes(&bytes)), bytes);
    }

    /// A name that is UTF-8 is shown as it is.
    #[test]
    fn utf8_names_are_shown_as_they_are(s in "\\PC{0,32}") {
        prop_assume!(!s.chars().any(|c| ('\u{10FF80}'..='\u{10FFFF}').contains(&c)));
        prop_assert_eq!(name_from_bytes(s.as_bytes()), s);
    }

    /// A temporary name always fits the 255-byte limit and is hidden.
    #[test]
    fn temporary_names_fit(name in "\\PC{1,300}", tag in "[a-z0-9-]{1,20}") {
        let t = temp_name(&name, &tag);
        prop_assert!(name_to_bytes(&t).len() <= 255, "{} bytes", t.len());
        prop_assert!(t.starts_with('.'));
        let suffix = format!(".gpubox-{}", tag);
        prop_assert!(t.ends_with(&suffix));
    }

    /// A range is inside the file or refused; a well-formed one is taken exactly.
    #[test]
    fn ranges_stay_inside_the_file(v in "(bytes=)?[0-9 ,-]{0,24}", len in 0u64..10_000) {
        if let Ok(Some((a, b))) = super::parse_range(Some(&v), len) {
            prop_assert!(a <= b && b < len, "{v:?} of {len}: {a}-{b}");
        }
    }

    #[test]
    fn well_formed_ranges_are_exact(len in 1u64..1_000_000, a in 0u64..1_000_000, n in 1u64..1_000_000) {
        let a = a % len;
        let b = (a + n - 1).min(len - 1);
        prop_assert_eq!(super::parse_range(Some(&format!("bytes={a}-{b}")), len), Ok(Some((a, b))));
        prop_assert_eq!(super::parse_range(Some(&format!("bytes={a}-")), len), Ok(Some((a, len - 1))));
    }

    /// tus's metadata: any header value is taken or ignored, never a panic; what was encoded
    /// comes back.
    #[test]
    fn tus_metadata(raw in "[ -~]{0,80}", name in "\\PC{0,20}", dir in "\\PC{0,20}") {
        let mut h = HeaderMap::new();
        if let Ok(v) = HeaderValue::from_str(&raw) {
            h.insert("upload-metadata", v);
            let _ = super::tus::metadata(&h);
        }
        use base64::Engine;
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let v = format!("filename {},path {}", b64(&name), b64(&dir));
        h.insert("upload-metadata", HeaderValue::from_str(&v).unwrap());
        let m = super::tus::metadata(&h);
        prop_assert_eq!(m.get("filename"), Some(&name));
        prop_assert_eq!(m.get("path"), Some(&dir));
    }

    /// WebDAV bodies: any text parses or is refused, never a panic; paths under /dav clean or
    /// are refused.
    #[test]
    fn dav_xml_and_paths(xml in "(<[a-zA-Z:]{0,6}( xmlns(:[a-z])?=\"[a-zA-Z:/]{0,8}\")?/?>|</[a-zA-Z:]{0,6}>|[a-z &;<>\"]{0,6}){0,12}", path in pathish()) {
        let _ = super::dav::parse(&xml);
        if let Ok(rel) = super::dav::rel_of(&format!("/dav/{path}")) {
            prop_assert!(rel.0.iter().all(|s| s != ".." && !s.contains('/')));
        }
    }
}
