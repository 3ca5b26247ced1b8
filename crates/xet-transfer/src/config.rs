//! Plain configuration values (STYLE.md §7). Only [`Config::from_env`] reads the
//! environment; everything else takes a `Config` as it is given.

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use xet_format::xorb::CompressionPolicy;

/// Retry policy for CAS calls (§10.5).
#[derive(Debug, Clone)]
pub struct RetryConfig {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// Delay before the second attempt; doubles each time (with jitter).
    pub base_delay: Duration,
    /// Cap on one delay (a server's `Retry-After` is honoured up to this too).
    pub max_delay: Duration,
}

impl Default for RetryConfig {
    fn default() -> Self {
        // xet-core: 5 attempts from 3 s. We start lower: most failures on loopback
        // and LAN clear in well under a second, and the cap keeps us polite.
        RetryConfig {
            max_attempts: 5,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
        }
    }
}

/// Everything an upload or download session needs to know.
#[derive(Debug, Clone)]
pub struct Config {
    /// Root of the on-disk caches; `None` disables both caches.
    pub cache_dir: Option<PathBuf>,
    /// Size cap of the download chunk cache in bytes; 0 disables it.
    pub chunk_cache_size: u64,
    /// Size cap of the shard cache used by dedup in bytes; 0 disables it.
    pub shard_cache_size: u64,
    /// Cached shards older than this (from their footer's creation time, else from
    /// when they were stored) are dropped: [`ShardCache`](crate::cache::ShardCache).
    pub shard_cache_max_age: Duration,
    /// Xorb compression policy for uploads.
    pub compression: CompressionPolicy,
    /// Concurrent xorb uploads.
    pub upload_concurrency: usize,
    /// Concurrent range fetches during downloads.
    pub download_concurrency: usize,
    /// Bytes of xorb data (open plus in flight) an upload session may hold; bounds
    /// memory whatever the input size. At least one maximal xorb (64 MiB).
    pub upload_buffer_bytes: u64,
    /// Ask the server for global dedup (§8.2).
    pub global_dedup: bool,
    /// Minimum chunks between two global-dedup queries of one file (§8.2: ≈ 4 MB).
    pub global_dedup_spacing: usize,
    /// Compute SHA-256 of uploaded files (needed for Git-backed Hub repos, §12.1).
    pub compute_sha256: bool,
    /// Retry policy.
    pub retry: RetryConfig,
    /// No byte for this long on a request or body -> the attempt fails as stalled.
    pub stall_timeout: Duration,
    /// Connect timeout of HTTP connections.
    pub connect_timeout: Duration,
    /// Refresh a token this long before it expires (§11.3: at least 30 s).
    pub token_refresh_margin: Duration,
    /// fsync each downloaded file before renaming it into place, so that not even
    /// a power loss can leave a complete-looking file with missing data. Costs the
    /// time to flush the file to disk.
    pub sync_downloads: bool,
    /// `User-Agent` of HTTP requests; `None`: `xet-rs/<version>`. Embedders (the C
    /// ABI's hosts) name themselves here.
    pub user_agent: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            cache_dir: None,
            // xet-core's default chunk cache capacity is 10 GB, its shard cache 16 GB.
            chunk_cache_size: 10_000_000_000,
            shard_cache_size: 16_000_000_000,
            shard_cache_max_age: crate::cache::DEFAULT_SHARD_MAX_AGE,
            compression: CompressionPolicy::Auto,
            upload_concurrency: 4,
            download_concurrency: 8,
            // 64 MiB open + ~1.5 xorbs in flight: two uploads overlap (a 1 GiB
            // upload ran 4.4 s instead of 6.9 s with 128 MiB) and peak RSS stays
            // under 256 MiB (BENCHMARKS.md).
            upload_buffer_bytes: 160 << 20,
            global_dedup: true,
            global_dedup_spacing: 256,
            compute_sha256: true,
            retry: RetryConfig::default(),
            stall_timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(30),
            token_refresh_margin: Duration::from_secs(30),
            sync_downloads: true,
            user_agent: None,
        }
    }
}

impl Config {
    /// Defaults with the caches under `dir` (`dir/chunk-cache`, `dir/shard-cache`).
    pub fn with_cache_dir(dir: impl Into<PathBuf>) -> Self {
        Config {
            cache_dir: Some(dir.into()),
            ..Config::default()
        }
    }

    /// Configuration from the environment, with the official client's names and
    /// defaults so users can switch between the two:
    ///
    /// | variable | meaning |
    /// |---|---|
    /// | `HF_XET_CACHE` | cache root (default `$HF_HOME/xet`, else `~/.cache/huggingface/xet`) |
    /// | `HF_HOME` | see above |
    /// | `HF_XET_CHUNK_CACHE_SIZE_BYTES` | chunk cache cap (10 GB) |
    /// | `HF_XET_SHARD_CACHE_SIZE_LIMIT` | shard cache cap (16 GB) |
    /// | `HF_XET_MDB_SHARD_LOCAL_CACHE_EXPIRATION` | maximum age of a cached shard (3 weeks): `3w`, `21d`, `36h`, `1814400s`, plain seconds; xet-core reads it only in debug builds |
    /// | `HF_XET_XORB_COMPRESSION_POLICY` | `none`, `lz4`, `bg4-lz4`, `auto` |
    /// | `HF_XET_MAX_CONCURRENT_UPLOADS` | concurrent xorb uploads |
    /// | `HF_XET_MAX_CONCURRENT_DOWNLOADS` | concurrent range fetches |
    /// | `HF_XET_UPLOAD_BUFFER_BYTES` | xorb bytes an upload may hold in memory (ours) |
    /// | `HF_XET_DEDUPLICATION_GLOBAL_DEDUP_QUERY_ENABLED` | `true`/`false` |
    /// | `HF_XET_CLIENT_RETRY_MAX_ATTEMPTS` | attempts per call |
    /// | `HF_XET_CLIENT_STALL_TIMEOUT_SECS` | stall watchdog (ours; no official equivalent) |
    /// | `HF_XET_SYNC_DOWNLOADS` | `false` skips the fsync before rename (ours) |
    ///
    /// Unparsable values are reported, not ignored.
    pub fn from_env() -> crate::Result<Self> {
        let get = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let mut c = Config {
            cache_dir: Some(default_cache_root(
                get("HF_XET_CACHE"),
                get("HF_HOME"),
                get("HOME"),
            )),
            ..Config::default()
        };
        fn num<T: std::str::FromStr>(k: &str, v: Option<String>) -> crate::Result<Option<T>> {
            v.map(|v| {
                v.trim()
                    .parse()
                    .map_err(|_| crate::Error::Config(format!("{k}={v} is not a number")))
            })
            .transpose()
        }
        if let Some(v) = num(
            "HF_XET_CHUNK_CACHE_SIZE_BYTES",
            get("HF_XET_CHUNK_CACHE_SIZE_BYTES"),
        )? {
            c.chunk_cache_size = v;
        }
        if let Some(v) = num(
            "HF_XET_SHARD_CACHE_SIZE_LIMIT",
            get("HF_XET_SHARD_CACHE_SIZE_LIMIT"),
        )? {
            c.shard_cache_size = v;
        }
        if let Some(v) = get("HF_XET_MDB_SHARD_LOCAL_CACHE_EXPIRATION") {
            c.shard_cache_max_age = parse_duration(&v).ok_or_else(|| {
                crate::Error::Config(format!(
                    "HF_XET_MDB_SHARD_LOCAL_CACHE_EXPIRATION={v} is not a duration (e.g. 3w, 21d, 36h, 1814400s)"
                ))
            })?;
        }
        if let Some(v) = get("HF_XET_XORB_COMPRESSION_POLICY") {
            c.compression = v
                .parse()
                .map_err(|e| crate::Error::Config(format!("HF_XET_XORB_COMPRESSION_POLICY: {e}")))?;
        }
        if let Some(v) = num::<usize>(
            "HF_XET_MAX_CONCURRENT_UPLOADS",
            get("HF_XET_MAX_CONCURRENT_UPLOADS"),
        )? {
            c.upload_concurrency = v.max(1);
        }
        if let Some(v) = num::<usize>(
            "HF_XET_MAX_CONCURRENT_DOWNLOADS",
            get("HF_XET_MAX_CONCURRENT_DOWNLOADS"),
        )? {
            c.download_concurrency = v.max(1);
        }
        if let Some(v) = num("HF_XET_UPLOAD_BUFFER_BYTES", get("HF_XET_UPLOAD_BUFFER_BYTES"))? {
            c.upload_buffer_bytes = v;
        }
        if let Some(v) = get("HF_XET_DEDUPLICATION_GLOBAL_DEDUP_QUERY_ENABLED") {
            c.global_dedup = !matches!(v.to_ascii_lowercase().as_str(), "0" | "false" | "no" | "off");
        }
        if let Some(v) = num::<u32>(
            "HF_XET_CLIENT_RETRY_MAX_ATTEMPTS",
            get("HF_XET_CLIENT_RETRY_MAX_ATTEMPTS"),
        )? {
            c.retry.max_attempts = v.max(1);
        }
        if let Some(v) = num::<u64>(
            "HF_XET_CLIENT_STALL_TIMEOUT_SECS",
            get("HF_XET_CLIENT_STALL_TIMEOUT_SECS"),
        )? {
            c.stall_timeout = Duration::from_secs(v.max(1));
        }
        if let Some(v) = get("HF_XET_SYNC_DOWNLOADS") {
            c.sync_downloads = !matches!(v.to_ascii_lowercase().as_str(), "0" | "false" | "no" | "off");
        }
        Ok(c)
    }

    /// Directory of the download chunk cache, if enabled.
    pub fn chunk_cache_dir(&self) -> Option<PathBuf> {
        self.cache_dir
            .as_deref()
            .filter(|_| self.chunk_cache_size > 0)
            .map(|d| d.join("chunk-cache"))
    }

    /// Directory of the dedup shard cache, if enabled.
    pub fn shard_cache_dir(&self) -> Option<PathBuf> {
        self.cache_dir
            .as_deref()
            .filter(|_| self.shard_cache_size > 0)
            .map(|d| d.join("shard-cache"))
    }
}

/// A duration as xet-core's config reads one (humantime: `3w`, `21days`, `1h 30m`),
/// restricted to seconds up to weeks; a plain number is seconds.
fn parse_duration(v: &str) -> Option<Duration> {
    let v = v.trim();
    if v.is_empty() {
        return None;
    }
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let mut total: u64 = 0;
    let mut rest = v;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        let n: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "s" | "sec" | "secs" | "second" | "seconds" => 1,
            "m" | "min" | "mins" | "minute" | "minutes" => 60,
            "h" | "hr" | "hrs" | "hour" | "hours" => 3600,
            "d" | "day" | "days" => 86_400,
            "w" | "week" | "weeks" => 7 * 86_400,
            _ => return None,
        };
        total = total.checked_add(n.checked_mul(unit)?)?;
        rest = rest[unit_len..].trim_start();
    }
    Some(Duration::from_secs(total))
}

/// The official client's cache root: `HF_XET_CACHE`, else `$HF_HOME/xet`, else
/// `~/.cache/huggingface/xet`.
pub fn default_cache_root(
    hf_xet_cache: Option<String>,
    hf_home: Option<String>,
    home: Option<String>,
) -> PathBuf {
    if let Some(c) = hf_xet_cache {
        return PathBuf::from(c);
    }
    if let Some(h) = hf_home {
        return Path::new(&h).join("xet");
    }
    let home = home.map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
    home.join(".cache").join("huggingface").join("xet")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_root_precedence() {
        let s = |v: &str| Some(v.to_string());
        assert_eq!(default_cache_root(s("/a"), s("/b"), s("/h")), PathBuf::from("/a"));
        assert_eq!(
            default_cache_root(None, s("/b"), s("/h")),
            PathBuf::from("/b/xet")
        );
        assert_eq!(
            default_cache_root(None, None, s("/h")),
            PathBuf::from("/h/.cache/huggingface/xet")
        );
    }

    #[test]
    fn durations_like_xet_core() {
        let d = |s: &str| parse_duration(s).map(|d| d.as_secs());
        assert_eq!(d("3w"), Some(1_814_400));
        assert_eq!(d("21days"), Some(1_814_400));
        assert_eq!(d("1814400s"), Some(1_814_400));
        assert_eq!(d("1814400"), Some(1_814_400));
        assert_eq!(d("1h 30m"), Some(5400));
        assert_eq!(d("1d2h"), Some(93_600));
        assert_eq!(d(""), None);
        assert_eq!(d("3 fortnights"), None);
        assert_eq!(d("w"), None);
        assert_eq!(d("99999999999999999999w"), None);
    }

    #[test]
    fn compression_names() {
        assert_eq!(
            "bg4-lz4".parse::<CompressionPolicy>().unwrap(),
            CompressionPolicy::Bg4Lz4
        );
        assert!("zstd".parse::<CompressionPolicy>().is_err());
    }
}
