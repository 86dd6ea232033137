//! The `regsync` command: parses arguments, starts logging, and hands over to [`regsync::cli`].

use clap::Parser;

/// jemalloc: with glibc's allocator a seed of 1 000 000 persons held 760 MB resident for 208 MB
/// of live heap (heaptrack), and a national seed peaked at 2.55 GB; jemalloc returns freed pages
/// and took the national seed to 1.40 GB, 10% faster. (mimalloc held more than glibc.) Its
/// options are built in (`.cargo/config.toml`): freed pages go back within about a second.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    let cli = regsync::cli::Cli::parse();
    regsync::cli::init_tracing(cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: starting the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(regsync::cli::execute(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            match e.downcast_ref::<ingest::IngestError>() {
                // Another worker holds the lake: a distinct code a supervisor does not restart on.
                Some(held) if held.lake_held() => {
                    std::process::ExitCode::from(ingest::error::EXIT_LAKE_HELD)
                }
                _ => std::process::ExitCode::FAILURE,
            }
        }
    }
}
