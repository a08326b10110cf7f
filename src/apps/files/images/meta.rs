//! What Forge (and AUTOMATIC1111, and the tools that copy their format) wrote into a picture:
//! the `parameters` text of a PNG (tEXt, or iTXt when it is not Latin-1, or zTXt), the EXIF
//! `UserComment` of a JPEG or WebP (`UNICODE\0` and UTF-16, as piexif writes it); and that text
//! split as Forge's own `parse_generation_parameters` splits it (modules/infotext_utils.py):
//! the prompt, `Negative prompt: …`, and a last line of `Key: value` settings.
//!
//! Only chunk and segment headers are read on the way; picture data is skipped with seeks, so a
//! 50 MB PNG costs a few reads. Every length is checked against a cap before anything is read.

use std::io::{self, Read, Seek, SeekFrom};
use std::sync::OnceLock;

use regex::Regex;
use serde::Serialize;

/// No generation text is longer than this (Forge's are a few KiB).
const MAX_TEXT: u64 = 1 << 20;
/// EXIF blocks above this are not read.
const MAX_EXIF: u64 = 16 << 20;

#[derive(Debug, Default, Serialize, PartialEq)]
pub struct Generation {
    /// The whole text, as written: what Forge's "Read generation parameters" takes.
    pub text: String,
    pub prompt: String,
    pub negative_prompt: String,
    /// The settings line's `Key: value` pairs in order, quotes removed.
    pub settings: Vec<(String, String)>,
}

/// The generation text in a PNG, JPEG or WebP file, told by its first bytes; `None` when there
/// is none (or the file is something else).
pub fn read(f: &mut (impl Read + Seek)) -> io::Result<Option<String>> {
    let mut magic = [0u8; 12];
    let n = read_up_to(f, &mut magic)?;
    let magic = &magic[..n];
    if magic.starts_with(b"\x89PNG\r\n\x1a\n") {
        f.seek(SeekFrom::Start(8))?;
        png(f)
    } else if magic.starts_with(&[0xFF, 0xD8]) {
        f.seek(SeekFrom::Start(2))?;
        jpeg(f)
    } else if magic.len() == 12 && &magic[..4] == b"RIFF" && &magic[8..12] == b"WEBP" {
        webp(f)
    } else {
        Ok(None)
    }
}

fn read_up_to(f: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

fn take(f: &mut impl Read, len: u64) -> io::Result<Vec<u8>> {
    let mut v = Vec::with_capacity(len as usize);
    f.take(len).read_to_end(&mut v)?;
    if (v.len() as u64) < len {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok(v)
}

fn inflate(data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    flate2::read::ZlibDecoder::new(data).take(MAX_TEXT).read_to_end(&mut out).ok()?;
    Some(out)
}

fn latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| b as char).collect()
}

fn png(f: &mut (impl Read + Seek)) -> io::Result<Option<String>> {
    // The text chunks come before or after the picture data; IEND ends it.
    for _ in 0..100_000 {
        let mut head = [0u8; 8];
        if read_up_to(f, &mut head)? < 8 {
            return Ok(None);
        }
        let len = u32::from_be_bytes(head[..4].try_into().expect("4 bytes")) as u64;
        let kind = &head[4..8];
        if kind == b"IEND" {
            return Ok(None);
        }
        if matches!(kind, b"tEXt" | b"zTXt" | b"iTXt") && len <= MAX_TEXT {
            let data = take(f, len)?;
            f.seek(SeekFrom::Current(4))?; // the CRC
                                           // The first `parameters` chunk is the answer, read or not: no second inflate.
            if data.starts_with(b"parameters\0") {
                return Ok(png_text(kind, &data));
            }
        } else {
            f.seek(SeekFrom::Current(len as i64 + 4))?;
        }
    }
    Ok(None)
}

/// The text of a PNG text chunk whose keyword is `parameters`.
fn png_text(kind: &[u8], data: &[u8]) -> Option<String> {
    let nul = data.iter().position(|&b| b == 0)?;
    if &data[..nul] != b"parameters" {
        return None;
    }
    let rest = &data[nul + 1..];
    match kind {
        // Latin-1: every byte is the code point.
        b"tEXt" => Some(latin1(rest)),
        b"zTXt" => inflate(rest.get(1..)?).map(|t| latin1(&t)),
        _ => {
            // iTXt: compressed flag, method, language\0, translated keyword\0, UTF-8 text.
            let (&compressed, rest) = rest.split_first()?;
            let rest = rest.get(1..)?;
            let lang = rest.iter().position(|&b| b == 0)?;
            let rest = &rest[lang + 1..];
            let tk = rest.iter().position(|&b| b == 0)?;
            let text = &rest[tk + 1..];
            let text = if compressed == 1 { inflate(text)? } else { text.to_vec() };
            String::from_utf8(text).ok()
        }
    }
}

fn jpeg(f: &mut (impl Read + Seek)) -> io::Result<Option<String>> {
    for _ in 0..10_000 {
        let mut b = [0u8; 1];
        if read_up_to(f, &mut b)? == 0 || b[0] != 0xFF {
            return Ok(None);
        }
        // Fill bytes: a few are allowed, not a file of them.
        let mut marker = 0xFF;
        for _ in 0..64 {
            if read_up_to(f, &mut b)? == 0 {
                return Ok(None);
            }
            marker = b[0];
            if marker != 0xFF {
                break;
            }
        }
        if marker == 0xFF {
            return Ok(None);
        }
        match marker {
            // The picture data starts (or the file ends): metadata comes before it.
            0xDA | 0xD9 => return Ok(None),
            0x01 | 0xD0..=0xD7 => continue, // markers without a length
            _ => {}
        }
        let mut len = [0u8; 2];
        if read_up_to(f, &mut len)? < 2 {
            return Ok(None);
        }
        let len = u16::from_be_bytes(len) as u64;
        if len < 2 {
            return Ok(None);
        }
        if marker == 0xE1 {
            let data = take(f, len - 2)?;
            if let Some(tiff) = data.strip_prefix(b"Exif\0\0") {
                if let Some(text) = user_comment(tiff) {
                    return Ok(Some(text));
                }
            }
        } else {
            f.seek(SeekFrom::Current(len as i64 - 2))?;
        }
    }
    Ok(None)
}

fn webp(f: &mut (impl Read + Seek)) -> io::Result<Option<String>> {
    // After "RIFF", the size and "WEBP": chunks of a FourCC, a little-endian size and the data,
    // padded to an even length. EXIF usually comes after the picture.
    for _ in 0..10_000 {
        let mut head = [0u8; 8];
        if read_up_to(f, &mut head)? < 8 {
            return Ok(None);
        }
        let len = u32::from_le_bytes(head[4..8].try_into().expect("4 bytes")) as u64;
        let padded = len + (len & 1);
        if &head[..4] == b"EXIF" && len <= MAX_EXIF {
            let data = take(f, len)?;
            let tiff = data.strip_prefix(b"Exif\0\0").unwrap_or(&data);
            return Ok(user_comment(tiff));
        }
        f.seek(SeekFrom::Current(padded as i64))?;
    }
    Ok(None)
}

/// EXIF's UserComment (tag 0x9286 in the Exif IFD) from a TIFF block.
fn user_comment(tiff: &[u8]) -> Option<String> {
    let big = match tiff.get(..2)? {
        b"MM" => true,
        b"II" => false,
        _ => return None,
    };
    let u16_at = |at: usize| -> Option<u16> {
        let b: [u8; 2] = tiff.get(at..at + 2)?.try_into().ok()?;
        Some(if big { u16::from_be_bytes(b) } else { u16::from_le_bytes(b) })
    };
    let u32_at = |at: usize| -> Option<u32> {
        let b: [u8; 4] = tiff.get(at..at + 4)?.try_into().ok()?;
        Some(if big { u32::from_be_bytes(b) } else { u32::from_le_bytes(b) })
    };
    // An IFD's entry for `tag`: (type, count, the offset of its value or the value itself).
    let find = |ifd: usize, tag: u16| -> Option<(u16, u32, usize)> {
        let n = u16_at(ifd)? as usize;
        (0..n.min(1000)).find_map(|i| {
            let e = ifd + 2 + i * 12;
            (u16_at(e)? == tag).then_some(())?;
            Some((u16_at(e + 2)?, u32_at(e + 4)?, e + 8))
        })
    };
    let ifd0 = u32_at(4)? as usize;
    let (_, _, at) = find(ifd0, 0x8769)?;
    let exif_ifd = u32_at(at)? as usize;
    let (_, count, at) = find(exif_ifd, 0x9286)?;
    let count = count as usize;
    let start = if count <= 4 { at } else { u32_at(at)? as usize };
    let raw = tiff.get(start..start.checked_add(count)?)?;
    let (code, body) = (raw.get(..8)?, &raw[8..]);
    let text = match code {
        b"UNICODE\0" => utf16(body, big),
        _ => String::from_utf8_lossy(body).into_owned(),
    };
    let text = text.trim_end_matches('\0').to_string();
    (!text.trim().is_empty()).then_some(text)
}

/// UTF-16 in the order its zero bytes show (piexif writes big-endian whatever the TIFF's order;
/// others follow the TIFF's), else the TIFF's order.
fn utf16(body: &[u8], big: bool) -> String {
    let zeros = |parity: usize| body.iter().skip(parity).step_by(2).filter(|&&b| b == 0).count();
    let (even, odd) = (zeros(0), zeros(1));
    let be = if even != odd { even > odd } else { big };
    let units: Vec<u16> = body
        .chunks_exact(2)
        .map(|c| if be { u16::from_be_bytes([c[0], c[1]]) } else { u16::from_le_bytes([c[0], c[1]]) })
        .collect();
    String::from_utf16_lossy(&units)
}

fn param_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    // Forge's re_param_code, as it is.
    RE.get_or_init(|| Regex::new(r#"\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)"#).expect("valid"))
}

/// Splits generation text as Forge does: the last line is the settings when it holds at least
/// three `Key: value` pairs; the lines before are the prompt, then from `Negative prompt:` on,
/// the negative prompt.
pub fn parse(text: &str) -> Generation {
    let trimmed = text.trim();
    let mut lines: Vec<&str> = trimmed.split('\n').collect();
    let last = lines.pop().unwrap_or("");
    let settings_line = if param_re().find_iter(last).count() >= 3 {
        last
    } else {
        lines.push(last);
        ""
    };
    let (mut prompt, mut negative) = (Vec::new(), Vec::new());
    let mut negative_now = false;
    for line in lines {
        let mut line = line.trim();
        if let Some(rest) = line.strip_prefix("Negative prompt:") {
            negative_now = true;
            line = rest.trim();
        }
        if negative_now {
            negative.push(line);
        } else {
            prompt.push(line);
        }
    }
    let settings = param_re()
        .captures_iter(settings_line)
        .map(|c| {
            let (k, v) = (c[1].to_string(), c[2].to_string());
            let v = if v.len() >= 2 && v.starts_with('"') && v.ends_with('"') {
                serde_json::from_str::<String>(&v).unwrap_or(v)
            } else {
                v
            };
            (k, v)
        })
        .collect();
    Generation { text: text.to_string(), prompt: prompt.join("\n"), negative_prompt: negative.join("\n"), settings }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    const FORGE_TEXT: &str = "girl with an artist's beret, determined, blue eyes, desert scene\n(coquettish), detailed\nNegative prompt: ugly, fat, obese\n[blurry], bad anatomy\nSteps: 20, Sampler: Euler a, Schedule type: Automatic, CFG scale: 7, Seed: 965400086, Size: 512x512, Model hash: 45dee52b, Lora hashes: \"detail: ab12, style: cd34\", Version: f2.0.1";

    #[test]
    fn the_text_is_split_as_forge_splits_it() {
        let g = parse(FORGE_TEXT);
        assert_eq!(
            g.prompt,
            "girl with an artist's beret, determined, blue eyes, desert scene\n(coquettish), detailed"
        );
        assert_eq!(g.negative_prompt, "ugly, fat, obese\n[blurry], bad anatomy");
        let s: Vec<(&str, &str)> = g.settings.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(s[0], ("Steps", "20"));
        assert_eq!(s[1], ("Sampler", "Euler a"));
        assert!(s.contains(&("Size", "512x512")));
        assert!(s.contains(&("Lora hashes", "detail: ab12, style: cd34")), "a quoted value keeps its commas: {s:?}");
        assert_eq!(s.last(), Some(&("Version", "f2.0.1")));
        // No settings line: everything is prompt.
        let g = parse("just a prompt, with: a colon");
        assert_eq!((g.prompt.as_str(), g.settings.len()), ("just a prompt, with: a colon", 0));
        // Only settings (an empty prompt).
        let g = parse("Steps: 4, Sampler: Euler, CFG scale: 1");
        assert_eq!((g.prompt.as_str(), g.settings.len()), ("", 3));
    }

    fn chunk(kind: &[u8], data: &[u8]) -> Vec<u8> {
        let mut v = (data.len() as u32).to_be_bytes().to_vec();
        v.extend_from_slice(kind);
        v.extend_from_slice(data);
        let mut crc = crc32fast::Hasher::new();
        crc.update(kind);
        crc.update(data);
        v.extend_from_slice(&crc.finalize().to_be_bytes());
        v
    }

    fn zlib(text: &str) -> Vec<u8> {
        use std::io::Write;
        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(text.as_bytes()).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn png_text_itxt_and_ztxt_after_a_big_chunk() {
        let ihdr = chunk(b"IHDR", &[0, 0, 0, 1, 0, 0, 0, 1, 8, 2, 0, 0, 0]);
        let idat = chunk(b"IDAT", &vec![7u8; 300_000]);
        let end = chunk(b"IEND", b"");
        let png = |extra: Vec<u8>| {
            let mut v = b"\x89PNG\r\n\x1a\n".to_vec();
            v.extend(&ihdr);
            v.extend(chunk(b"tEXt", b"Software\0something else"));
            v.extend(&idat);
            v.extend(extra);
            v.extend(&end);
            v
        };
        let mut t = b"parameters\0".to_vec();
        t.extend("caf\u{e9} 1girl".chars().map(|c| c as u8)); // Latin-1
        assert_eq!(read(&mut Cursor::new(png(chunk(b"tEXt", &t)))).unwrap().as_deref(), Some("caf\u{e9} 1girl"));

        let mut t = b"parameters\0\0\0en\0\0".to_vec();
        t.extend("猫 prompt".as_bytes());
        assert_eq!(read(&mut Cursor::new(png(chunk(b"iTXt", &t)))).unwrap().as_deref(), Some("猫 prompt"));
        let mut t = b"parameters\0\x01\0\0\0".to_vec();
        t.extend(zlib("squeezed 猫"));
        assert_eq!(read(&mut Cursor::new(png(chunk(b"iTXt", &t)))).unwrap().as_deref(), Some("squeezed 猫"));
        let mut t = b"parameters\0\0".to_vec();
        t.extend(zlib("zipped caf\u{e9}").iter()); // zTXt is Latin-1 like tEXt
        let latin: Vec<u8> = "zipped caf\u{e9}".chars().map(|c| c as u8).collect();
        let mut t2 = b"parameters\0\0".to_vec();
        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut e, &latin).unwrap();
        t2.extend(e.finish().unwrap());
        assert_eq!(read(&mut Cursor::new(png(chunk(b"zTXt", &t2)))).unwrap().as_deref(), Some("zipped caf\u{e9}"));
        drop(t);
        // A `parameters` chunk that cannot be read ends the search: nothing else is inflated.
        let mut bad = b"parameters\0\0".to_vec();
        bad.extend(b"not zlib");
        let mut two = chunk(b"zTXt", &bad);
        two.extend(chunk(b"tEXt", b"parameters\0second"));
        assert_eq!(read(&mut Cursor::new(png(two))).unwrap(), None);

        assert_eq!(read(&mut Cursor::new(png(Vec::new()))).unwrap(), None, "no parameters: none");
        // Cut off in the middle of a chunk: none, no error worth showing.
        let mut cut = png(chunk(b"tEXt", b"parameters\0x"));
        cut.truncate(200);
        assert!(read(&mut Cursor::new(cut)).map(|o| o.is_none()).unwrap_or(true));
        // A chunk that claims 4 GiB is skipped, not read.
        let mut huge = b"\x89PNG\r\n\x1a\n".to_vec();
        huge.extend(0xFFFF_FFF0u32.to_be_bytes());
        huge.extend(b"tEXt");
        assert_eq!(read(&mut Cursor::new(huge)).unwrap(), None);
    }

    /// A TIFF block as piexif.dump writes it for Forge: big-endian, IFD0 with only the Exif
    /// pointer, the Exif IFD with only UserComment.
    fn piexif_tiff(comment: &[u8], big: bool) -> Vec<u8> {
        let w16 = |v: u16| if big { v.to_be_bytes() } else { v.to_le_bytes() };
        let w32 = |v: u32| if big { v.to_be_bytes() } else { v.to_le_bytes() };
        let mut t = Vec::new();
        t.extend(if big { b"MM" } else { b"II" });
        t.extend(w16(42));
        t.extend(w32(8));
        // IFD0 at 8: one entry, then the next-IFD offset.
        t.extend(w16(1));
        t.extend(w16(0x8769));
        t.extend(w16(4));
        t.extend(w32(1));
        t.extend(w32(26));
        t.extend(w32(0));
        // Exif IFD at 26.
        t.extend(w16(1));
        t.extend(w16(0x9286));
        t.extend(w16(7));
        t.extend(w32(comment.len() as u32));
        t.extend(w32(44));
        t.extend(w32(0));
        t.extend(comment);
        t
    }

    fn unicode(text: &str, big: bool) -> Vec<u8> {
        let mut v = b"UNICODE\0".to_vec();
        for u in text.encode_utf16() {
            v.extend(if big { u.to_be_bytes() } else { u.to_le_bytes() });
        }
        v
    }

    #[test]
    fn jpeg_and_webp_user_comment() {
        let tiff = piexif_tiff(&unicode(FORGE_TEXT, true), true);
        let mut exif = b"Exif\0\0".to_vec();
        exif.extend(&tiff);
        let mut jpg = vec![0xFF, 0xD8, 0xFF, 0xE0, 0, 4, 0, 0, 0xFF, 0xE1];
        jpg.extend(((exif.len() + 2) as u16).to_be_bytes());
        jpg.extend(&exif);
        jpg.extend([0xFF, 0xDA, 0, 2, 1, 2, 3, 0xFF, 0xD9]);
        let text = read(&mut Cursor::new(&jpg)).unwrap().unwrap();
        assert_eq!(text, FORGE_TEXT);
        assert_eq!(parse(&text).negative_prompt, "ugly, fat, obese\n[blurry], bad anatomy");

        // Little-endian TIFF with UTF-16LE (as exiftool writes it), and ASCII.
        let le = piexif_tiff(&unicode("Steps: 1, Seed: 2, Size: 3x4 猫", false), false);
        assert_eq!(user_comment(&le).as_deref(), Some("Steps: 1, Seed: 2, Size: 3x4 猫"));
        let ascii = piexif_tiff(b"ASCII\0\0\0plain words\0", true);
        assert_eq!(user_comment(&ascii).as_deref(), Some("plain words"));

        // WebP: the EXIF chunk after the picture's, with an odd-sized chunk before it.
        let mut chunks = Vec::new();
        chunks.extend(b"VP8L");
        chunks.extend(5u32.to_le_bytes());
        chunks.extend([1, 2, 3, 4, 5, 0]);
        chunks.extend(b"EXIF");
        chunks.extend((exif.len() as u32).to_le_bytes());
        chunks.extend(&exif);
        let mut webp = b"RIFF".to_vec();
        webp.extend(((chunks.len() + 4) as u32).to_le_bytes());
        webp.extend(b"WEBP");
        webp.extend(chunks);
        assert_eq!(read(&mut Cursor::new(webp)).unwrap().as_deref(), Some(FORGE_TEXT));

        // Offsets that point outside the block: none, no panic.
        let mut bad = tiff.clone();
        bad[4..8].copy_from_slice(&9999u32.to_be_bytes());
        assert_eq!(user_comment(&bad), None);
        let mut bad = tiff.clone();
        bad[30..34].copy_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(user_comment(&bad), None);
        assert_eq!(read(&mut Cursor::new(b"GIF89a....".to_vec())).unwrap(), None);
        // A JPEG of fill bytes is not read to its end.
        let mut fill = vec![0xFF, 0xD8];
        fill.extend(std::iter::repeat_n(0xFF, 1 << 20));
        let mut c = Cursor::new(fill);
        assert_eq!(read(&mut c).unwrap(), None);
        assert!(c.position() < 1000, "{}", c.position());
    }
}
