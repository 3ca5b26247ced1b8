//! The `xet` command-line tool: argument parsing and output over the project's
//! libraries. Logic lives in the libraries; this file only wires it up.

mod cache;
mod chunk;
mod download;
mod hash;
mod progress;
mod serve;
mod upload;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Xet storage tool: hash and chunk files exactly as the Xet protocol does.
#[derive(Parser)]
#[command(name = "xet", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the Xet file hash, size and SHA-256 of each file (no network).
    Hash(hash::HashArgs),
    /// Print the content-defined chunks of a file: offset, length, chunk hash.
    Chunk(chunk::ChunkArgs),
    /// Run a Xet CAS server (the official client and ours can upload to it).
    Serve(Box<serve::ServeArgs>),
    /// Upload files to a CAS server; prints each file's Xet hash, size and SHA-256.
    Upload(upload::UploadArgs),
    /// Download a file (or a byte range of it) by its Xet hash.
    Download(download::DownloadArgs),
    /// Show or clear the local chunk and shard caches.
    Cache(cache::CacheArgs),
}

/// Runs an async command on a runtime made for it.
fn block_on(fut: impl std::future::Future<Output = anyhow::Result<()>>) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(fut)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Logs go to stderr: a server says what it does (info), the other commands stay
    // quiet unless something is wrong; RUST_LOG overrides either. One subscriber for
    // the process, installed here and nowhere else.
    let default_level = if matches!(cli.command, Command::Serve(_)) {
        "info"
    } else {
        "warn"
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level)),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        Command::Hash(args) => hash::run(args),
        Command::Chunk(args) => chunk::run(args),
        Command::Serve(args) => serve::run(*args),
        Command::Upload(args) => block_on(upload::run(args)),
        Command::Download(args) => block_on(download::run(args)),
        Command::Cache(args) => cache::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // A closed pipe (`xet chunk big | head`) is not a failure worth reporting.
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) {
                return ExitCode::SUCCESS;
            }
            eprintln!("xet: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
