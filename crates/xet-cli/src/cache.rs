//! `xet cache stats|clear`: the chunk and shard caches under the cache root
//! (`HF_XET_CACHE`, else `$HF_HOME/xet`, else `$XDG_CACHE_HOME/huggingface/xet`,
//! else `~/.cache/huggingface/xet`: the official client's root), one directory
//! per server.
//!
//! The official client shares that root. Version 1.8.0 writes, as we checked by
//! running it: `logs/xet_<time>_<pid>.log`, and per endpoint
//! `<endpoint, 16 chars>-<hash, 16 chars>/shard-cache/<hash>.mdb` and
//! `.../staging/shard-session/...` (no chunk cache: its downloads run without one).
//! Our per-server directories are named differently (the whole endpoint) and hold
//! `chunk-cache/` and `shard-cache/*.shard`. So we list only directories with our
//! cache directories and none of xet-core's marks, and `clear` deletes only our
//! entry files ([`xet_transfer::cache`] scans skip every other file).

use std::path::Path;

use anyhow::Context;
use xet_transfer::cache::{CacheStats, ChunkCache, ShardCache};
use xet_transfer::Config;

/// Arguments of `xet cache`.
#[derive(clap::Args)]
pub struct CacheArgs {
    #[command(subcommand)]
    action: CacheAction,
}

#[derive(clap::Subcommand)]
enum CacheAction {
    /// Print the size of each cache.
    Stats {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Delete every chunk and shard we cached (never the official client's files).
    Clear,
}

/// Runs `xet cache`.
pub fn run(args: CacheArgs) -> anyhow::Result<()> {
    let config = Config::from_env()?;
    let root = config.cache_dir.clone().context("no cache directory")?;
    let mut rows = Vec::new();
    if let Ok(rd) = std::fs::read_dir(&root) {
        let mut servers: Vec<_> = rd.flatten().map(|e| e.path()).filter(|p| is_ours(p)).collect();
        servers.sort();
        for base in servers {
            let chunks = base.join("chunk-cache");
            let shards = base.join("shard-cache");
            let (mut c, mut s) = (CacheStats::default(), CacheStats::default());
            if chunks.is_dir() {
                let cache = ChunkCache::open(&chunks, config.chunk_cache_size)?;
                if matches!(args.action, CacheAction::Clear) {
                    cache.clear()?;
                }
                c = cache.stats();
            }
            if shards.is_dir() {
                let cache = ShardCache::open(&shards, config.shard_cache_size)?;
                if matches!(args.action, CacheAction::Clear) {
                    cache.clear()?;
                }
                s = cache.stats();
            }
            let name = base.file_name().unwrap_or_default().to_string_lossy().to_string();
            rows.push((name, c, s));
        }
    }
    match args.action {
        CacheAction::Stats { json: true } => {
            let v: Vec<serde_json::Value> = rows
                .iter()
                .map(|(n, c, s)| {
                    serde_json::json!({"server": n, "chunk_entries": c.entries, "chunk_bytes": c.bytes,
                        "shard_entries": s.entries, "shard_bytes": s.bytes})
                })
                .collect();
            println!(
                "{}",
                serde_json::to_string_pretty(
                    &serde_json::json!({"root": root.display().to_string(), "servers": v})
                )?
            );
        }
        CacheAction::Stats { json: false } => {
            println!("cache root {}", root.display());
            for (n, c, s) in &rows {
                println!(
                    "{n}: chunk cache {} entries {} bytes; shard cache {} entries {} bytes",
                    c.entries, c.bytes, s.entries, s.bytes
                );
            }
        }
        CacheAction::Clear => println!("cleared {} server cache(s) under {}", rows.len(), root.display()),
    }
    Ok(())
}

/// Whether `dir`, a directory in the cache root, is one of our per-server cache
/// directories: it has our `chunk-cache` or `shard-cache`, and none of the marks
/// of the official client's per-endpoint directory (a `staging` directory, `.mdb`
/// shards), which also has a `shard-cache`.
fn is_ours(dir: &Path) -> bool {
    let (chunks, shards) = (dir.join("chunk-cache"), dir.join("shard-cache"));
    if !chunks.is_dir() && !shards.is_dir() {
        return false;
    }
    let official_shards = std::fs::read_dir(&shards).is_ok_and(|rd| {
        rd.flatten()
            .any(|e| e.path().extension().is_some_and(|x| x == "mdb"))
    });
    !dir.join("staging").is_dir() && !official_shards
}
