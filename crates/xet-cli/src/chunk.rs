//! `xet chunk FILE`

use std::io::{BufWriter, Write};
use std::path::PathBuf;

/// Arguments of `xet chunk`.
#[derive(clap::Args)]
pub struct ChunkArgs {
    /// The file to chunk.
    file: PathBuf,
    /// Print a JSON array of {offset, length, hash} instead of text lines.
    #[arg(long)]
    json: bool,
}

#[derive(serde::Serialize)]
struct Entry {
    offset: u64,
    length: u64,
    hash: String,
}

/// Prints one line per chunk: offset, length, chunk hash.
pub fn run(args: ChunkArgs) -> anyhow::Result<()> {
    let d = crate::hash::digest_file(&args.file, false)?;
    let out = std::io::stdout();
    let mut out = BufWriter::new(out.lock());
    let mut offset = 0u64;
    let mut entries = Vec::new();
    for (hash, length) in &d.chunks {
        if args.json {
            entries.push(Entry {
                offset,
                length: *length,
                hash: hash.to_string(),
            });
        } else {
            writeln!(out, "{offset} {length} {hash}")?;
        }
        offset += length;
    }
    if args.json {
        serde_json::to_writer_pretty(&mut out, &entries)?;
        writeln!(out)?;
    }
    out.flush()?;
    Ok(())
}
