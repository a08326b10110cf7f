//! The `gpubox` binary: parses the command line, runs the verb, and decides the exit code.

use clap::Parser;

fn main() {
    let cli = gpubox::Cli::parse();
    if !matches!(cli.command, gpubox::Command::Run { .. }) {
        // A verb that prints ends quietly when its reader goes away (`gpubox routes | head -1`),
        // as other command-line tools do: Rust ignores SIGPIPE, which turned the closed pipe
        // into a panic or an error message. `run` keeps ignoring it: a server must see EPIPE on
        // a closed connection, not die of it.
        // SAFETY: no other thread exists yet, and SIG_DFL installs no handler code.
        unsafe {
            let _ = nix::sys::signal::signal(nix::sys::signal::Signal::SIGPIPE, nix::sys::signal::SigHandler::SigDfl);
        }
    }
    let code = match gpubox::dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("gpubox: {e:#}");
            1
        }
    };
    std::process::exit(code);
}
