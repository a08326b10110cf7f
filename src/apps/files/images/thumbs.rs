//! Thumbnails for the grid (and a shared folder's gallery): made on one thread of the lowest
//! priority (the CPU belongs to Forge), one picture at a time with a bounded decode, and kept
//! under gpubox's private area, named by a hash of the path, size, mtime and inode, so a changed
//! file gets a new one and nothing ever has to be invalidated. The cache is pruned, oldest
//! first, when it passes its cap.

use std::fs::File;
use std::io::{BufReader, Cursor, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Mutex;
use std::time::SystemTime;

use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits};
use sha2::Digest;
use tokio::sync::oneshot;

/// The sides a client may ask for (the longer side of the result, in pixels).
pub const SIDES: [u32; 2] = [256, 512];
/// Bigger files are not read for a thumbnail (the grid shows the type's icon); the JPEG decoder
/// reads a whole file into memory first.
pub const MAX_FILE: u64 = 64 << 20;
/// At most this many pictures wait for the thread; beyond, a request gets 503 and the page
/// asks again when the tile is still in view.
const QUEUE: usize = 128;
/// A decoded picture may take at most this much memory, and be at most this wide or tall.
const MAX_ALLOC: u64 = 512 << 20;
const MAX_SIDE: u32 = 20_000;
/// The cache's cap in disk blocks' bytes and in files; past either the oldest half goes.
const CACHE_CAP: u64 = 512 << 20;
const CACHE_FILES: u64 = 50_000;
/// Changes whenever the thumbnails made change (size, format, quality): old ones are not used.
const VERSION: u32 = 1;

pub struct Thumbs {
    dir: PathBuf,
    queue: Mutex<Option<SyncSender<Job>>>,
}

struct Job {
    file: File,
    side: u32,
    name: String,
    reply: oneshot::Sender<Result<Vec<u8>, String>>,
}

/// Why no thumbnail came.
pub enum Miss {
    /// Too many waiting: ask again shortly.
    Busy,
    /// The picture could not be read (corrupt, too big, not a picture): the message says why.
    Bad(String),
}

impl Thumbs {
    pub fn new(dir: PathBuf) -> Thumbs {
        Thumbs { dir, queue: Mutex::new(None) }
    }

    /// The cache file's name for this file at this side: changes with its path, size, mtime,
    /// device and inode.
    pub fn key(path: &str, meta: &std::fs::Metadata, side: u32) -> String {
        let mut h = sha2::Sha256::new();
        let line = format!(
            "{VERSION}\0{path}\0{}\0{}.{}\0{}\0{}\0{side}",
            meta.len(),
            meta.mtime(),
            meta.mtime_nsec(),
            meta.dev(),
            meta.ino()
        );
        h.update(line.as_bytes());
        h.finalize()[..16].iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The cache's folder: a thumbnail made before is the file named by its key.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Makes the thumbnail of `file` (already opened beneath the root) on the thumbnail thread;
    /// a request that goes away before its turn costs nothing.
    pub async fn make(&self, file: File, key: String, side: u32) -> Result<Vec<u8>, Miss> {
        let (reply, answer) = oneshot::channel();
        let job = Job { file, side, name: key, reply };
        {
            let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
            let tx = q.get_or_insert_with(|| {
                let (tx, rx) = sync_channel(QUEUE);
                let dir = self.dir.clone();
                std::thread::Builder::new()
                    .name("thumbnails".into())
                    .spawn(move || worker(rx, dir))
                    .expect("spawn the thumbnail thread");
                tx
            });
            match tx.try_send(job) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) => return Err(Miss::Busy),
                Err(TrySendError::Disconnected(_)) => {
                    *q = None;
                    return Err(Miss::Busy);
                }
            }
        }
        match answer.await {
            Ok(r) => r.map_err(Miss::Bad),
            Err(_) => Err(Miss::Busy),
        }
    }
}

fn worker(rx: Receiver<Job>, dir: PathBuf) {
    // The lowest priority for this thread alone (on Linux the nice value is per thread).
    let tid = rustix::process::Pid::from_raw(nix::unistd::gettid().as_raw());
    let _ = rustix::process::setpriority_process(tid, 19);
    let _ = std::fs::create_dir_all(&dir);
    let (mut used, mut count) = cache_size(&dir);
    for job in rx {
        if job.reply.is_closed() {
            continue; // the tile scrolled away, the page closed
        }
        let path = dir.join(&job.name);
        if let Ok(b) = std::fs::read(&path) {
            let _ = job.reply.send(Ok(b)); // made for an earlier request of the same picture
            continue;
        }
        // A decoder that panics on a hostile file fails that picture, not the thread.
        let (file, side) = (job.file, job.side);
        let made = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| thumbnail(file, side)))
            .unwrap_or_else(|_| Err("the decoder failed on it".into()));
        // A picture that cannot be read is remembered as such: not decoded again on every view.
        let written = match &made {
            Ok(bytes) => write_new(&path, bytes),
            Err(why) => write_new(&path.with_extension("bad"), why.as_bytes()),
        };
        if let Ok(on_disk) = written {
            used += on_disk;
            count += 1;
            if used > CACHE_CAP || count > CACHE_FILES {
                (used, count) = prune(&dir, CACHE_CAP / 2, CACHE_FILES / 2);
            }
        }
        let _ = job.reply.send(made);
    }
}

/// Decodes `file` (PNG, JPEG, WebP or GIF's first frame, told by its first bytes; turned as its
/// EXIF orientation says) and scales it to fit `side`×`side`: JPEG, or PNG when some of it is
/// transparent.
pub fn thumbnail(file: File, side: u32) -> Result<Vec<u8>, String> {
    let mut reader =
        ImageReader::new(BufReader::new(file)).with_guessed_format().map_err(|e| format!("cannot read it: {e}"))?;
    match reader.format() {
        Some(ImageFormat::Png | ImageFormat::Jpeg | ImageFormat::WebP | ImageFormat::Gif) => {}
        _ => return Err("not a PNG, JPEG, WebP or GIF picture".into()),
    }
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_ALLOC);
    reader.limits(limits);
    let mut decoder = reader.into_decoder().map_err(|e| format!("cannot decode it: {e}"))?;
    // The decoders check the sides only: the memory a decode takes is checked here.
    if decoder.total_bytes() > MAX_ALLOC {
        let (w, h) = decoder.dimensions();
        return Err(format!("cannot decode it: {w}×{h} pixels take more than {} MiB", MAX_ALLOC >> 20));
    }
    let orientation = decoder.orientation().unwrap_or(image::metadata::Orientation::NoTransforms);
    let img = DynamicImage::from_decoder(decoder).map_err(|e| format!("cannot decode it: {e}"))?;
    // Scaled first, then turned: turning the small one costs nothing.
    let mut small = if img.width() > side || img.height() > side { img.thumbnail(side, side) } else { img };
    small.apply_orientation(orientation);
    let mut out = Cursor::new(Vec::new());
    // GIF and some WebP decode with an alpha channel that is opaque everywhere: JPEG then.
    let rgba = small.color().has_alpha().then(|| small.to_rgba8()).filter(|p| p.pixels().any(|p| p.0[3] != 255));
    if let Some(rgba) = rgba {
        DynamicImage::ImageRgba8(rgba).write_to(&mut out, ImageFormat::Png)
    } else {
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 82).encode_image(&small.to_rgb8())
    }
    .map_err(|e| format!("cannot encode the thumbnail: {e}"))?;
    Ok(out.into_inner())
}

/// Whether a name is of a kind that gets a thumbnail (what pages offer one for; the thread itself
/// goes by the file's first bytes).
pub fn thumbnailed(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    [".png", ".jpg", ".jpeg", ".webp", ".gif"].iter().any(|x| lower.ends_with(x))
}

/// The content type of a thumbnail's bytes.
pub fn content_type(bytes: &[u8]) -> &'static str {
    if bytes.starts_with(b"\x89PNG") {
        "image/png"
    } else {
        "image/jpeg"
    }
}

/// Writes under a temporary name and renames: a reader never sees half a thumbnail (one thread
/// writes, so one temporary name is enough). Returns what it takes on the disk.
fn write_new(path: &Path, bytes: &[u8]) -> std::io::Result<u64> {
    let tmp = path.with_extension("part");
    let mut f = match File::create(&tmp) {
        // The folder went away while gpubox ran (removed by hand): made again, not given up on.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(path.parent().unwrap_or(Path::new(".")))?;
            File::create(&tmp)?
        }
        r => r?,
    };
    f.write_all(bytes)?;
    drop(f);
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })?;
    Ok(std::fs::metadata(path).map(|m| on_disk(&m)).unwrap_or(bytes.len() as u64))
}

/// A file's size on the disk: whole blocks (a 40-byte marker takes a 4 KiB block and an inode).
fn on_disk(m: &std::fs::Metadata) -> u64 {
    (m.blocks() * 512).max(m.len())
}

/// The cache's bytes on the disk and its number of files.
fn cache_size(dir: &Path) -> (u64, u64) {
    let Ok(rd) = std::fs::read_dir(dir) else { return (0, 0) };
    rd.flatten().filter_map(|e| e.metadata().ok()).fold((0, 0), |(b, n), m| (b + on_disk(&m), n + 1))
}

/// Removes the oldest thumbnails until at most `keep` bytes in at most `files` files are left;
/// returns what is left.
fn prune(dir: &Path, keep: u64, files: u64) -> (u64, u64) {
    let Ok(rd) = std::fs::read_dir(dir) else { return (0, 0) };
    let mut all: Vec<(SystemTime, u64, PathBuf)> = rd
        .flatten()
        .filter_map(|e| {
            let m = e.metadata().ok()?;
            Some((m.modified().ok()?, on_disk(&m), e.path()))
        })
        .collect();
    all.sort_by_key(|f| std::cmp::Reverse(f.0)); // newest first
    let (mut total, mut count) = (0, 0);
    for (_, len, path) in all {
        if total + len <= keep && count < files {
            total += len;
            count += 1;
        } else {
            let _ = std::fs::remove_file(path);
        }
    }
    (total, count)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn picture(dir: &Path, name: &str, w: u32, h: u32, format: ImageFormat, alpha: bool) -> PathBuf {
        let path = dir.join(name);
        let img = if alpha {
            DynamicImage::ImageRgba8(image::RgbaImage::from_fn(w, h, |x, y| image::Rgba([x as u8, y as u8, 90, 128])))
        } else {
            DynamicImage::ImageRgb8(image::RgbImage::from_fn(w, h, |x, y| image::Rgb([x as u8, y as u8, 90])))
        };
        img.save_with_format(&path, format).unwrap();
        path
    }

    #[test]
    fn every_kind_is_scaled_to_fit_and_keeps_its_shape() {
        let dir = tempfile::tempdir().unwrap();
        for (name, format) in [
            ("a.png", ImageFormat::Png),
            ("a.jpg", ImageFormat::Jpeg),
            ("a.webp", ImageFormat::WebP),
            ("a.gif", ImageFormat::Gif),
        ] {
            let p = picture(dir.path(), name, 800, 400, format, false);
            let t = thumbnail(File::open(&p).unwrap(), 256).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(content_type(&t), "image/jpeg", "{name}");
            let img = image::load_from_memory(&t).unwrap();
            assert_eq!((img.width(), img.height()), (256, 128), "{name}");
        }
        // Transparency stays: PNG out.
        let p = picture(dir.path(), "alpha.png", 300, 600, ImageFormat::Png, true);
        let t = thumbnail(File::open(&p).unwrap(), 256).unwrap();
        assert_eq!(content_type(&t), "image/png");
        let img = image::load_from_memory(&t).unwrap();
        assert_eq!((img.width(), img.height()), (128, 256));
        // A small picture is not made bigger.
        let p = picture(dir.path(), "small.png", 40, 30, ImageFormat::Png, false);
        let img = image::load_from_memory(&thumbnail(File::open(&p).unwrap(), 256).unwrap()).unwrap();
        assert_eq!((img.width(), img.height()), (40, 30));
        // A name that lies: told by the bytes.
        std::fs::rename(dir.path().join("a.jpg"), dir.path().join("liar.png")).unwrap();
        assert!(thumbnail(File::open(dir.path().join("liar.png")).unwrap(), 256).is_ok());
    }

    #[test]
    fn what_is_not_a_picture_or_is_too_big_is_refused_with_a_reason() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.png");
        std::fs::write(&p, b"not a picture at all").unwrap();
        let e = thumbnail(File::open(&p).unwrap(), 256).unwrap_err();
        assert!(e.contains("not a PNG"), "{e}");
        // A PNG header that claims 100,000 × 100,000 pixels is refused before any allocation.
        let good = picture(dir.path(), "g.png", 8, 8, ImageFormat::Png, false);
        let mut bytes = std::fs::read(&good).unwrap();
        bytes[16..20].copy_from_slice(&100_000u32.to_be_bytes());
        bytes[20..24].copy_from_slice(&100_000u32.to_be_bytes());
        let crc = crc32fast::hash(&bytes[12..29]);
        bytes[29..33].copy_from_slice(&crc.to_be_bytes());
        std::fs::write(&p, &bytes).unwrap();
        let e = thumbnail(File::open(&p).unwrap(), 256).unwrap_err();
        assert!(e.contains("cannot decode"), "{e}");
        // 16,000 × 16,000 at 16 bits and four channels: within the sides, 2 GB of memory.
        let mut bytes = std::fs::read(&good).unwrap();
        bytes[16..20].copy_from_slice(&16_000u32.to_be_bytes());
        bytes[20..24].copy_from_slice(&16_000u32.to_be_bytes());
        bytes[24] = 16;
        bytes[25] = 6;
        let crc = crc32fast::hash(&bytes[12..29]);
        bytes[29..33].copy_from_slice(&crc.to_be_bytes());
        std::fs::write(&p, &bytes).unwrap();
        let e = thumbnail(File::open(&p).unwrap(), 256).unwrap_err();
        assert!(e.contains("take more than 512 MiB"), "{e}");
        // A truncated PNG.
        std::fs::write(&p, &std::fs::read(&good).unwrap()[..40]).unwrap();
        assert!(thumbnail(File::open(&p).unwrap(), 256).is_err());
    }

    #[test]
    fn a_cache_folder_removed_while_running_is_made_again() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("thumbs");
        let written = write_new(&cache.join("k"), b"thumbnail").unwrap();
        assert!(written >= 9);
        assert_eq!(std::fs::read(cache.join("k")).unwrap(), b"thumbnail");
        assert!(!cache.join("k.part").exists());
    }

    #[test]
    fn the_key_changes_with_the_file_and_the_cache_is_pruned_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"one").unwrap();
        let a = Thumbs::key("x/f", &std::fs::metadata(&p).unwrap(), 256);
        assert_eq!(a.len(), 32);
        assert_ne!(a, Thumbs::key("x/g", &std::fs::metadata(&p).unwrap(), 256));
        assert_ne!(a, Thumbs::key("x/f", &std::fs::metadata(&p).unwrap(), 512));
        std::fs::write(&p, b"three").unwrap();
        assert_ne!(a, Thumbs::key("x/f", &std::fs::metadata(&p).unwrap(), 256));

        let cache = dir.path().join("cache");
        std::fs::create_dir(&cache).unwrap();
        for i in 0..4u64 {
            let f = cache.join(format!("t{i}"));
            std::fs::write(&f, vec![0u8; 100]).unwrap();
            let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000 + i);
            File::options().write(true).open(&f).unwrap().set_modified(t).unwrap();
        }
        let block = on_disk(&std::fs::metadata(cache.join("t0")).unwrap());
        assert!(block >= 100, "a file takes at least its length");
        assert_eq!(cache_size(&cache), (4 * block, 4));
        assert_eq!(prune(&cache, 2 * block + 50, 100), (2 * block, 2));
        assert!(cache.join("t3").exists() && cache.join("t2").exists());
        assert!(!cache.join("t1").exists() && !cache.join("t0").exists());
        assert_eq!(prune(&cache, u64::MAX, 1), (block, 1), "the number of files is capped too");
        assert!(cache.join("t3").exists() && !cache.join("t2").exists());
    }
}
