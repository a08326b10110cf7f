//! Names on disk are bytes; the API's are strings. These turn one into the other without loss,
//! and make gpubox's temporary names beside a file.

/// The first of the characters that stand for bytes that are not UTF-8 (0x80–0xFF), at the end of
/// Unicode's last private-use plane, where no file name's own characters are found in practice.
const BYTE_STANDIN: u32 = 0x10_FF00;

/// A name on disk as the API shows it: UTF-8 as it is; each byte of a sequence that is not UTF-8
/// as U+10FF80–U+10FFFF. Such a name (written by a Windows tool, an old archive) can then be
/// listed, opened, renamed and deleted, and its folder too, instead of showing as `�` and
/// leading nowhere.
pub fn name_from_bytes(b: &[u8]) -> String {
    let mut out = String::with_capacity(b.len());
    for chunk in b.utf8_chunks() {
        out.push_str(chunk.valid());
        for &byte in chunk.invalid() {
            out.push(char::from_u32(BYTE_STANDIN + byte as u32).expect("a valid char"));
        }
    }
    out
}

/// The bytes on disk for a name from the API (the inverse of [`name_from_bytes`]).
pub fn name_to_bytes(s: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    for c in s.chars() {
        match c as u32 {
            n @ 0x10_FF80..=0x10_FFFF => out.push((n - BYTE_STANDIN) as u8),
            _ => out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
        }
    }
    out
}

/// A hidden temporary name beside `name` (`.name.gpubox-tag`) that stays within the 255 bytes a
/// name may have: for a long name, a shortened copy of it.
pub fn temp_name(name: &str, tag: &str) -> String {
    let suffix = format!(".gpubox-{tag}");
    let room = 255usize.saturating_sub(1 + suffix.len());
    let mut keep = name;
    while name_to_bytes(keep).len() > room {
        let mut end = keep.len() - 1;
        while !keep.is_char_boundary(end) {
            end -= 1;
        }
        keep = &keep[..end];
    }
    format!(".{keep}{suffix}")
}
