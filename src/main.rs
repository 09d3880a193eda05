//! The `cortex` binary: parse, start tracing, dispatch, pick the exit code.
//! Exit 0: done; 1: ran, and the answer is no (the agent failed); 2: error;
//! 3: the configured Core could not be reached.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cortex::cli::Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CORTEX_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
    match cortex::cli::run(cli) {
        Ok(code) => code,
        Err(error) => {
            let broken_pipe = error.chain().any(|cause| {
                cause.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            });
            if broken_pipe {
                return ExitCode::SUCCESS;
            }
            eprintln!("error: {error:#}");
            let unreachable = error.chain().any(|cause| cause.is::<cortex::cli::Unreachable>());
            ExitCode::from(if unreachable { 3 } else { 2 })
        }
    }
}
