//! The `cortex` binary: parse, start tracing, dispatch, pick the exit code.
//! Exit 0: done; 1: ran, and the answer is no (the agent failed); 2: error;
//! 3: the configured Core could not be reached.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    quiet_on_a_closed_stdout();
    let cli = cortex::cli::Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(cli.log_filter())
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
    match cortex::cli::run(cli) {
        Ok(code) => code,
        Err(error) => {
            let broken_pipe = error.chain().any(|cause| {
                let kind = cause
                    .downcast_ref::<std::io::Error>()
                    .map(std::io::Error::kind)
                    .or_else(|| cause.downcast_ref::<serde_json::Error>().and_then(serde_json::Error::io_error_kind));
                kind == Some(std::io::ErrorKind::BrokenPipe)
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

/// A closed stdout (`cortex session list | head`) ends the command quietly
/// with success, as in git. `println!` panics on a broken pipe; that one
/// panic becomes a quiet exit. (SIGPIPE stays ignored: a codex child that
/// dies must not take Cortex with it.)
fn quiet_on_a_closed_stdout() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if message.starts_with("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(0);
        }
        default(info);
    }));
}
