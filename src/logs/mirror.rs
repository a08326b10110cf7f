//! gpubox's own stdout as `[service] line`: what `docker logs` and Vast's log button show.
//!
//! Blocks of lines go through a queue bounded by bytes to one writer thread, so that a stdout
//! nobody reads (a full pipe) never blocks a service. When the queue is full, lines are dropped
//! from the mirror only (the log files and ring buffers still have them) and a line saying how
//! many were dropped is printed once the writer catches up.

use std::io::Write;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;

use super::ring::Block;

/// Most bytes of lines waiting to be printed.
const QUEUE_BYTES: usize = 4 << 20;

enum Msg {
    Block(Arc<Block>),
    Flush(Sender<()>),
}

pub struct Mirror {
    tx: Sender<Msg>,
    queued: Arc<AtomicUsize>,
    dropped: Arc<AtomicU64>,
}

impl Mirror {
    pub fn start() -> Mirror {
        let (tx, rx) = channel();
        let queued = Arc::new(AtomicUsize::new(0));
        let dropped = Arc::new(AtomicU64::new(0));
        let (q, d) = (queued.clone(), dropped.clone());
        std::thread::Builder::new()
            .name("stdout-mirror".into())
            .spawn(move || writer(rx, q, d))
            .expect("spawn stdout mirror thread");
        Mirror { tx, queued, dropped }
    }

    pub fn send(&self, block: Arc<Block>) {
        let size = block.lines.text.len();
        if self.queued.load(Ordering::Relaxed) + size > QUEUE_BYTES {
            self.dropped.fetch_add(block.lines.len() as u64, Ordering::Relaxed);
            return;
        }
        self.queued.fetch_add(size, Ordering::Relaxed);
        let _ = self.tx.send(Msg::Block(block));
    }

    /// Waits (up to two seconds) until every queued line has been written.
    pub fn flush(&self) {
        let (tx, rx) = channel();
        if self.tx.send(Msg::Flush(tx)).is_ok() {
            let _ = rx.recv_timeout(std::time::Duration::from_secs(2));
        }
    }
}

fn writer(rx: Receiver<Msg>, queued: Arc<AtomicUsize>, dropped: Arc<AtomicU64>) {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, stdout.lock());
    // Kept between blocks (see `RotatingFile`'s buffer).
    let mut buf: Vec<u8> = Vec::new();
    let mut next = rx.recv().ok();
    while let Some(msg) = next {
        match msg {
            Msg::Block(block) => {
                let prefix = format!("[{}] ", block.service);
                let p = prefix.as_bytes();
                buf.clear();
                buf.reserve(block.lines.text.len() + p.len() * block.lines.len());
                for line in block.lines.lines_nl() {
                    buf.extend_from_slice(p);
                    buf.extend_from_slice(line);
                }
                let _ = out.write_all(&buf);
                if buf.capacity() > 1 << 20 {
                    buf = Vec::new();
                }
                queued.fetch_sub(block.lines.text.len(), Ordering::Relaxed);
            }
            Msg::Flush(done) => {
                let _ = out.flush();
                let _ = done.send(());
            }
        }
        next = match rx.try_recv() {
            Ok(m) => Some(m),
            Err(_) => {
                let n = dropped.swap(0, Ordering::Relaxed);
                if n > 0 {
                    let _ = writeln!(
                        out,
                        "[gpubox] stdout fell behind: {n} lines were not printed here (they are in the log files)"
                    );
                }
                let _ = out.flush();
                rx.recv().ok()
            }
        };
    }
    let _ = out.flush();
}
