//! `xet cache stats|clear`: the chunk and shard caches under the cache root
//! (`HF_XET_CACHE`, else `$HF_HOME/xet`, else `~/.cache/huggingface/xet`), one
//! directory per server.

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
    /// Delete every cached chunk and shard.
    Clear,
}

/// Runs `xet cache`.
pub fn run(args: CacheArgs) -> anyhow::Result<()> {
    let config = Config::from_env()?;
    let root = config.cache_dir.clone().context("no cache directory")?;
    let mut rows = Vec::new();
    if let Ok(rd) = std::fs::read_dir(&root) {
        for server in rd.flatten().filter(|e| e.path().is_dir()) {
            let base = server.path();
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
            rows.push((server.file_name().to_string_lossy().to_string(), c, s));
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
