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
            eprintln!("xet: error: {}", error_text(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes, `: `-separated, each cause left out when an earlier
/// message already says it (our errors name their source in their own message,
/// and reqwest repeats its inner errors too: `{e:#}` said everything twice).
fn error_text(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Wrapping(std::io::Error);
    impl std::fmt::Display for Wrapping {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "uploading: connection failed: {}", self.0)
        }
    }
    impl std::error::Error for Wrapping {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn causes_already_said_are_not_repeated() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused");
        let e = anyhow::Error::new(Wrapping(io)).context("xet upload big.bin");
        assert_eq!(
            error_text(&e),
            "xet upload big.bin: uploading: connection failed: connection refused"
        );
        // Causes that add something are kept.
        let e = anyhow::anyhow!("disk full").context("writing out.bin");
        assert_eq!(error_text(&e), "writing out.bin: disk full");
    }
}
