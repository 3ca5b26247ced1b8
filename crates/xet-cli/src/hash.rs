//! `xet hash FILE...`

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use anyhow::Context;
use xet_format::{digest_read_at, digest_reader, hash::hex, FileDigest};

/// Arguments of `xet hash`.
#[derive(clap::Args)]
pub struct HashArgs {
    /// Files to hash.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Print a JSON array of {path, hash, size, sha256} instead of text lines.
    #[arg(long)]
    json: bool,
    /// Skip the SHA-256 (faster; printed as "-" or null).
    #[arg(long)]
    no_sha256: bool,
}

#[derive(serde::Serialize)]
struct Entry {
    path: String,
    hash: String,
    size: u64,
    sha256: Option<String>,
}

/// Digest of one file, on every core.
///
/// A regular file is cut into segments chunked in parallel (the SHA-256, which is
/// sequential, on a core of its own); anything else (a pipe, a device) is streamed
/// through a two-thread pipeline.
pub fn digest_file(path: &PathBuf, sha: bool) -> anyhow::Result<FileDigest> {
    let f = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let meta = f
        .metadata()
        .with_context(|| format!("cannot stat {}", path.display()))?;
    let result = if meta.is_file() {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        digest_read_at(&f, meta.len(), threads, sha)
    } else {
        digest_reader(f, sha)
    };
    result.with_context(|| format!("cannot read {}", path.display()))
}

/// Hashes every file, printing as results come, in argument order.
pub fn run(args: HashArgs) -> anyhow::Result<()> {
    let sha = !args.no_sha256;
    let out = std::io::stdout();
    let mut out = BufWriter::new(out.lock());
    let mut entries = Vec::new();
    for path in &args.files {
        let d = digest_file(path, sha)?;
        let e = Entry {
            path: path.display().to_string(),
            hash: d.file_hash.to_string(),
            size: d.size,
            sha256: d.sha256.map(|s| hex(&s)),
        };
        if args.json {
            entries.push(e);
        } else {
            writeln!(
                out,
                "{}  {}  {}  {}",
                e.hash,
                e.size,
                e.sha256.as_deref().unwrap_or("-"),
                e.path
            )?;
        }
    }
    if args.json {
        serde_json::to_writer_pretty(&mut out, &entries)?;
        writeln!(out)?;
    }
    out.flush()?;
    Ok(())
}
