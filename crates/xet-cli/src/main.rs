//! The `xet` command-line tool: argument parsing and output over the project's
//! libraries. Logic lives in the libraries; this file only wires it up.

mod chunk;
mod hash;
mod serve;

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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Hash(args) => hash::run(args),
        Command::Chunk(args) => chunk::run(args),
        Command::Serve(args) => serve::run(*args),
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
