//! Child processes, below everything that starts them: the reaper (PID 1's duty to wait for
//! every child, orphans included) through which every child is spawned, and what each child gets
//! (its own session, a PTY, another user, death with gpubox). The supervisor starts services with
//! it, the terminal starts shells with it; neither reaches into the other.

mod child;
mod reaper;

pub use child::{identity, own_session, raise_open_files, Pty};
pub use reaper::{become_subreaper, ExitInfo, Reaper};
