//! The `dbapp` binary: parses the command line and hands the subcommand to the `dbapp` library
//! (`src/lib.rs`), which owns the commands. This file is wiring: the allocator, the one read of
//! the environment, and how a failed command is reported.

use clap::Parser;

/// mimalloc rather than glibc's allocator: a request allocates a few dozen small, short-lived
/// blocks across worker threads, and glibc's malloc/free was ~15 % of the server's instructions
/// on the hottest routes (callgrind; `docs/performance.md`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = dbapp::Cli::parse();
    // The one read of the process environment: every command parses its configuration from
    // this snapshot (`dbapp_server::config`).
    let env = dbapp_databricks::Environment::capture();
    match cli.run(env).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => report(&error),
    }
}

/// A failed command is a message for its user, not a crash: one `error:` line with its causes,
/// and never a backtrace (even with `RUST_BACKTRACE=1`, which `anyhow` would honour). A reader
/// that stopped reading (`dbapp openapi | head`) is not an error at all.
fn report(error: &anyhow::Error) -> std::process::ExitCode {
    let closed_pipe = error.chain().any(|cause| {
        let kind = match cause.downcast_ref::<serde_json::Error>() {
            Some(e) => e.io_error_kind(),
            None => cause.downcast_ref::<std::io::Error>().map(|e| e.kind()),
        };
        kind == Some(std::io::ErrorKind::BrokenPipe)
    });
    if closed_pipe {
        return std::process::ExitCode::SUCCESS;
    }
    eprintln!("error: {error:#}");
    std::process::ExitCode::FAILURE
}
