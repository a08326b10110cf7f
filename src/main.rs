//! The `gpubox` binary: parses the command line, runs the verb, and decides the exit code.

use clap::Parser;

fn main() {
    let cli = gpubox::cli::Cli::parse();
    let code = match gpubox::cli::dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("gpubox: {e:#}");
            1
        }
    };
    std::process::exit(code);
}
