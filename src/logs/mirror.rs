//! gpubox's own stdout as `[service] line`: what `docker logs` and Vast's log button show.
//!
//! Lines go through a bounded queue to one writer thread, so that a stdout nobody reads (a full
//! pipe) never blocks a service. When the queue is full, lines are dropped from the mirror only
//! (the log files and ring buffers still have them) and a line saying how many were dropped is
//! printed once the writer catches up.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;

use super::LogLine;

const QUEUE: usize = 8192;

enum Msg {
    Line(Arc<LogLine>),
    Flush(std::sync::mpsc::Sender<()>),
}

pub struct Mirror {
    tx: SyncSender<Msg>,
    dropped: Arc<AtomicU64>,
}

impl Mirror {
    pub fn start() -> Mirror {
        let (tx, rx) = sync_channel(QUEUE);
        let dropped = Arc::new(AtomicU64::new(0));
        let d = dropped.clone();
        std::thread::Builder::new()
            .name("stdout-mirror".into())
            .spawn(move || writer(rx, d))
            .expect("spawn stdout mirror thread");
        Mirror { tx, dropped }
    }

    pub fn send(&self, line: Arc<LogLine>) {
        if let Err(TrySendError::Full(_)) = self.tx.try_send(Msg::Line(line)) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Waits until every queued line has been written.
    pub fn flush(&self) {
        let (tx, rx) = std::sync::mpsc::channel();
        if self.tx.send(Msg::Flush(tx)).is_ok() {
            let _ = rx.recv_timeout(std::time::Duration::from_secs(2));
        }
    }
}

fn writer(rx: Receiver<Msg>, dropped: Arc<AtomicU64>) {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, stdout.lock());
    let mut next = rx.recv().ok();
    while let Some(msg) = next {
        match msg {
            Msg::Line(line) => {
                let _ = writeln!(out, "[{}] {}", line.service, line.text);
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
