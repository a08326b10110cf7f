//! A request body streamed into a file: what tus uploads, `PUT /api/file` and WebDAV's `PUT`
//! share.

use std::fs::File;
use std::io::{self, Write};

use axum::body::Body;
use http_body_util::BodyExt;

use super::fs::{FsError, Rel};
use super::FilesApp;

/// A response body fed by a blocking task through a channel (a file read, an archive being built,
/// search results): the task stops when the client leaves and its sends fail.
pub fn channel_body(rx: tokio::sync::mpsc::Receiver<io::Result<axum::body::Bytes>>) -> Body {
    Body::from_stream(futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|c| (c, rx)) }))
}

/// The size of the writes the bytes go to the file in (see [`write_body`]).
const PIECE: usize = 16 * 1024;

/// How a body ended.
pub enum End {
    /// Every byte arrived and was written.
    Complete,
    /// The connection dropped; what arrived was written.
    Cut,
    /// More than `max` bytes came; nothing past the last written piece was kept.
    TooLong,
}

/// Writes `body` to `file`, whose end is at byte `at`, taking at most `max` bytes in all (the
/// file's size included). The bytes are gathered into pieces of about 1 MiB and written off the
/// serving thread. The same buffer comes back each time: a fresh one per piece is a fresh mapping
/// from the allocator, whose pages the kernel must zero and fault in (about 15% of an upload's
/// CPU time). Each piece goes to the file in 16 KiB writes ending on 16 KiB boundaries of the
/// file: on the benchmark's VM (Linux 6.18, ext4) copying into the page cache cost 2 to 4 times
/// more CPU in 1 MiB writes than in 16 KiB ones, and a write that covers part of a new page-cache
/// block makes the kernel zero the rest of it first (docs/benchmarks.md, Files).
///
/// Returns the file (for a sync), the size it has reached, and how the body ended.
pub async fn write_body(body: &mut Body, mut file: File, mut at: u64, max: u64) -> (File, u64, io::Result<End>) {
    let mut pending: Vec<u8> = Vec::with_capacity(1 << 20);
    let mut end = End::Complete;
    loop {
        let frame = body.frame().await;
        let last = !matches!(frame, Some(Ok(_)));
        match frame {
            Some(Ok(f)) => {
                if let Ok(data) = f.into_data() {
                    if at + pending.len() as u64 + data.len() as u64 > max {
                        return (file, at, Ok(End::TooLong));
                    }
                    pending.extend_from_slice(&data);
                }
            }
            Some(Err(_)) => end = End::Cut,
            None => {}
        }
        if pending.len() >= (1 << 20) || (last && !pending.is_empty()) {
            let chunk = std::mem::take(&mut pending);
            let start = at;
            let (f, back, r) = super::blocking(move || {
                let r = write_aligned(&mut file, start, &chunk);
                (file, chunk, r)
            })
            .await;
            file = f;
            if let Err(e) = r {
                return (file, at, Err(e));
            }
            at += back.len() as u64;
            // An upload that moves (tus, WebDAV, a form) is someone using the instance.
            crate::alerts::idle::ACTIVITY.touch();
            pending = back;
            pending.clear();
        }
        if last {
            return (file, at, Ok(end));
        }
    }
}

fn write_aligned(file: &mut File, mut at: u64, mut rest: &[u8]) -> io::Result<()> {
    while !rest.is_empty() {
        let n = (PIECE - (at % PIECE as u64) as usize).min(rest.len());
        file.write_all(&rest[..n])?;
        at += n as u64;
        rest = &rest[n..];
    }
    Ok(())
}

/// Saves `body` as `target` through `tmp` (a new file beside it, opened as `file`): streamed with
/// [`write_body`], synced, `before_rename` run, then renamed over `target`. Anything short of a
/// whole body removes `tmp` and leaves `target` as it was. Returns the bytes saved.
pub async fn save_as(
    app: &std::sync::Arc<FilesApp>,
    body: &mut Body,
    file: File,
    tmp: Rel,
    target: Rel,
    before_rename: impl FnOnce(&FilesApp) + Send + 'static,
) -> Result<u64, FsError> {
    let (file, bytes, end) = write_body(body, file, 0, u64::MAX).await;
    let (a, t) = (app.clone(), tmp.clone());
    let result = super::blocking(move || match end {
        Ok(End::Complete) => {
            file.sync_all()?;
            before_rename(&a);
            a.root.rename(&t, &target, true)
        }
        Ok(_) => Err(FsError::Io(io::Error::other("the connection was cut before the whole file came"))),
        Err(e) => Err(FsError::from(e)),
    })
    .await;
    if result.is_err() {
        let a = app.clone();
        super::blocking(move || a.root.remove(&tmp)).await.ok();
    }
    result.map(|()| bytes)
}
