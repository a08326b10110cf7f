//! Integration tests: the real `gpubox` binary, its control socket and real child processes.

mod util;

mod config;
mod control;
mod logs;
mod pid1;
mod supervisor;
