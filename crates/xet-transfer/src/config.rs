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
        // xet-core: 5 retries from 3 s. We start lower (most failures on loopback
        // and LAN clear in well under a second, and the cap keeps us polite) but
        // retry as often, so the delays (0.5 + 1 + 2 + 4 + 8 s, with jitter) ride
        // out a server restart of ~10 s.
        RetryConfig {
            max_attempts: 6,
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
    /// No byte for this long on a request or body -> the attempt fails as stalled
    /// (xet-core's read timeout, `HF_XET_CLIENT_READ_TIMEOUT`).
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

    /// Configuration from the process environment: [`from_vars`](Self::from_vars)
    /// over `std::env`, with a relative cache root made absolute (against the
    /// current directory, now) as xet-core does, and `HOME` falling back to the
    /// user database when unset.
    pub fn from_env() -> crate::Result<Self> {
        let mut c = Self::from_vars(|k| match std::env::var(k) {
            Ok(v) => Some(v),
            // xet-core asks `dirs::home_dir`: `$HOME`, else the user database.
            Err(_) if k == "HOME" => std::env::home_dir().map(|h| h.to_string_lossy().into_owned()),
            Err(_) => None,
        })?;
        if let Some(dir) = &c.cache_dir {
            if let Ok(abs) = std::path::absolute(dir) {
                c.cache_dir = Some(abs);
            }
        }
        Ok(c)
    }

    /// Configuration from variables looked up by `get` (the environment for
    /// [`from_env`](Self::from_env), a map in tests), with the official client's
    /// names and defaults so that users can switch between the two. Where a
    /// setting has several names, the first one set wins: the official client's
    /// current name, then its older aliases, then ours. Empty values count as
    /// unset. Unparsable values are reported, not ignored (xet-core logs a warning
    /// and uses the default).
    ///
    /// | variable (first wins) | setting |
    /// |---|---|
    /// | `HF_XET_CACHE` > `HF_HOME` > `XDG_CACHE_HOME` > `HOME` | cache root: `$HF_XET_CACHE`, else `$HF_HOME/xet`, else `$XDG_CACHE_HOME/huggingface/xet`, else `~/.cache/huggingface/xet` (xet-core `xet_cache_root`); a leading `~` is expanded in each |
    /// | `HF_XET_CHUNK_CACHE_SIZE_BYTES` | chunk cache cap, bytes (10 GB); the official client 1.8.0 reads it but downloads without a chunk cache |
    /// | `HF_XET_SHARD_CACHE_SIZE_LIMIT`, `HF_XET_MDB_SHARD_CACHE_SIZE_LIMIT` | shard cache cap: bytes or a size such as `16gb`, `512mib` (16 GB) |
    /// | `HF_XET_MDB_SHARD_LOCAL_CACHE_EXPIRATION` | maximum age of a cached shard (3 weeks): `3w`, `21d`, `36h`, `1814400s`, plain seconds; xet-core reads it only in debug builds |
    /// | `HF_XET_XORB_COMPRESSION_POLICY`, `HF_XET_DATA_XORB_COMPRESSION_POLICY` | `none`, `lz4`, `bg4-lz4`, `auto` |
    /// | `HF_XET_FIXED_UPLOAD_CONCURRENCY`, `HF_XET_MAX_CONCURRENT_UPLOADS` | concurrent xorb uploads (4) |
    /// | `HF_XET_FIXED_DOWNLOAD_CONCURRENCY`, `HF_XET_MAX_CONCURRENT_DOWNLOADS` | concurrent range fetches (8) |
    /// | `HF_XET_UPLOAD_BUFFER_BYTES` | xorb bytes an upload may hold in memory (ours) |
    /// | `HF_XET_DEDUPLICATION_GLOBAL_DEDUP_QUERY_ENABLED` | `true`/`false` (also `1`/`0`, `yes`/`no`, `y`/`n`, `on`/`off`) |
    /// | `HF_XET_DATA_MIN_SPACING_BETWEEN_GLOBAL_DEDUP_QUERIES`, `HF_XET_MIN_SPACING_BETWEEN_GLOBAL_DEDUP_QUERIES` | chunks between two global-dedup queries of a file (256); xet-core reads it but does not apply it (XET-PROTOCOL.md §8.2) |
    /// | `HF_XET_CLIENT_RETRY_MAX_ATTEMPTS` | retries after the first attempt (5, so 6 attempts) |
    /// | `HF_XET_CLIENT_RETRY_BASE_DELAY` | first retry delay (`500ms`; xet-core `3s`) |
    /// | `HF_XET_CLIENT_RETRY_MAX_DURATION` | cap on one retry delay (`30s`; xet-core `6m`) |
    /// | `HF_XET_CLIENT_CONNECT_TIMEOUT` | TCP connect timeout (`30s`; xet-core `60s`) |
    /// | `HF_XET_CLIENT_READ_TIMEOUT`, `HF_XET_CLIENT_STALL_TIMEOUT_SECS` | stall watchdog: no byte for this long fails the attempt (`60s`; xet-core `300s`) |
    /// | `HF_XET_SYNC_DOWNLOADS` | `false` skips the fsync before rename (ours) |
    ///
    /// Durations are written as xet-core reads them (humantime: `500ms`, `30s`,
    /// `1h 30m`); a plain number is seconds. xet-core also substitutes `{PID}` and
    /// `{TIMESTAMP}` in the cache path; we do not (a per-process cache is no cache).
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> crate::Result<Self> {
        let get = |k: &str| get(k).filter(|v| !v.is_empty());
        // The first of `names` that is set, with its name (for error messages).
        let first = |names: &[&'static str]| names.iter().find_map(|&n| get(n).map(|v| (n, v)));
        let bad = |k: &str, v: &str, what: &str| crate::Error::Config(format!("{k}={v} is not {what}"));
        let num = |names: &[&'static str]| -> crate::Result<Option<u64>> {
            first(names)
                .map(|(k, v)| v.trim().parse().map_err(|_| bad(k, &v, "a number")))
                .transpose()
        };
        let size = |names: &[&'static str]| -> crate::Result<Option<u64>> {
            first(names)
                .map(|(k, v)| {
                    parse_byte_size(&v).ok_or_else(|| bad(k, &v, "a size (e.g. 16gb, 512mib, 1000000)"))
                })
                .transpose()
        };
        let duration = |names: &[&'static str]| -> crate::Result<Option<Duration>> {
            first(names)
                .map(|(k, v)| {
                    parse_duration(&v).ok_or_else(|| bad(k, &v, "a duration (e.g. 500ms, 30s, 3w)"))
                })
                .transpose()
        };
        let positive = |names: &[&'static str]| -> crate::Result<Option<Duration>> {
            first(names)
                .map(|(k, v)| match parse_duration(&v) {
                    Some(d) if d.is_zero() => Err(bad(k, &v, "a duration above zero")),
                    Some(d) => Ok(d),
                    None => Err(bad(k, &v, "a duration (e.g. 30s, 2m)")),
                })
                .transpose()
        };
        let flag = |names: &[&'static str]| -> crate::Result<Option<bool>> {
            first(names)
                .map(|(k, v)| parse_bool(&v).ok_or_else(|| bad(k, &v, "true or false")))
                .transpose()
        };
        let count = |v: u64| usize::try_from(v).unwrap_or(usize::MAX).max(1);

        let mut c = Config {
            cache_dir: Some(default_cache_root(get)),
            ..Config::default()
        };
        if let Some(v) = num(&["HF_XET_CHUNK_CACHE_SIZE_BYTES"])? {
            c.chunk_cache_size = v;
        }
        if let Some(v) = size(&[
            "HF_XET_SHARD_CACHE_SIZE_LIMIT",
            "HF_XET_MDB_SHARD_CACHE_SIZE_LIMIT",
        ])? {
            c.shard_cache_size = v;
        }
        if let Some(v) = duration(&["HF_XET_MDB_SHARD_LOCAL_CACHE_EXPIRATION"])? {
            c.shard_cache_max_age = v;
        }
        if let Some((k, v)) = first(&[
            "HF_XET_XORB_COMPRESSION_POLICY",
            "HF_XET_DATA_XORB_COMPRESSION_POLICY",
        ]) {
            c.compression = v
                .trim()
                .parse()
                .map_err(|e| crate::Error::Config(format!("{k}: {e}")))?;
        }
        // xet-core 1.8.0 adapts its concurrency; `HF_XET_FIXED_*_CONCURRENCY` pin
        // its initial, minimum and maximum to one value, which is what ours always
        // is. `HF_XET_MAX_CONCURRENT_*` are its names from before adaptive
        // concurrency (removed in xet-core #623), still accepted.
        if let Some(v) = num(&["HF_XET_FIXED_UPLOAD_CONCURRENCY", "HF_XET_MAX_CONCURRENT_UPLOADS"])? {
            c.upload_concurrency = count(v);
        }
        if let Some(v) = num(&[
            "HF_XET_FIXED_DOWNLOAD_CONCURRENCY",
            "HF_XET_MAX_CONCURRENT_DOWNLOADS",
        ])? {
            c.download_concurrency = count(v);
        }
        if let Some(v) = size(&["HF_XET_UPLOAD_BUFFER_BYTES"])? {
            c.upload_buffer_bytes = v;
        }
        if let Some(v) = flag(&["HF_XET_DEDUPLICATION_GLOBAL_DEDUP_QUERY_ENABLED"])? {
            c.global_dedup = v;
        }
        if let Some(v) = num(&[
            "HF_XET_DATA_MIN_SPACING_BETWEEN_GLOBAL_DEDUP_QUERIES",
            "HF_XET_MIN_SPACING_BETWEEN_GLOBAL_DEDUP_QUERIES",
        ])? {
            c.global_dedup_spacing = usize::try_from(v).unwrap_or(usize::MAX);
        }
        // xet-core counts retries, not attempts: its backoff schedule is
        // `take(retry_max_attempts)` delays after the first try
        // (`retry_wrapper.rs::exponential_retry_delays`).
        if let Some(v) = num(&["HF_XET_CLIENT_RETRY_MAX_ATTEMPTS"])? {
            c.retry.max_attempts = u32::try_from(v).unwrap_or(u32::MAX - 1).saturating_add(1);
        }
        if let Some(v) = duration(&["HF_XET_CLIENT_RETRY_BASE_DELAY"])? {
            c.retry.base_delay = v;
        }
        if let Some(v) = duration(&["HF_XET_CLIENT_RETRY_MAX_DURATION"])? {
            c.retry.max_delay = v;
        }
        if let Some(v) = positive(&["HF_XET_CLIENT_CONNECT_TIMEOUT"])? {
            c.connect_timeout = v;
        }
        // xet-core's read timeout: "maximum time allowed between receiving data
        // packets during a transfer; resets whenever data is received" (reqwest's
        // `read_timeout`), i.e. our stall watchdog. `..._STALL_TIMEOUT_SECS` is our
        // older name.
        if let Some(v) = positive(&["HF_XET_CLIENT_READ_TIMEOUT", "HF_XET_CLIENT_STALL_TIMEOUT_SECS"])? {
            c.stall_timeout = v;
        }
        if let Some(v) = flag(&["HF_XET_SYNC_DOWNLOADS"])? {
            c.sync_downloads = v;
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

/// A duration as xet-core's config reads one (humantime: `3w`, `21days`, `1h 30m`,
/// `500ms`), from nanoseconds up to weeks; a plain number is seconds (humantime
/// refuses it; we take it, as our older variables were plain seconds).
fn parse_duration(v: &str) -> Option<Duration> {
    let v = v.trim();
    if v.is_empty() {
        return None;
    }
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let mut total: u128 = 0;
    let mut rest = v;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        let n: u128 = rest[..digits].parse().ok()?;
        rest = rest[digits..].trim_start();
        let unit_len = rest
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(rest.len());
        const S: u128 = 1_000_000_000;
        let nanos_per = match &rest[..unit_len] {
            "ns" | "nsec" | "nanos" => 1,
            "us" | "usec" | "micros" => 1_000,
            "ms" | "msec" | "millis" => 1_000_000,
            "s" | "sec" | "secs" | "second" | "seconds" => S,
            "m" | "min" | "mins" | "minute" | "minutes" => 60 * S,
            "h" | "hr" | "hrs" | "hour" | "hours" => 3600 * S,
            "d" | "day" | "days" => 86_400 * S,
            "w" | "wk" | "wks" | "week" | "weeks" => 7 * 86_400 * S,
            _ => return None,
        };
        total = total.checked_add(n.checked_mul(nanos_per)?)?;
        rest = rest[unit_len..].trim_start();
    }
    let secs = u64::try_from(total / 1_000_000_000).ok()?;
    Some(Duration::new(secs, (total % 1_000_000_000) as u32))
}

/// A size as xet-core's `ByteSize` reads one: a number with an optional
/// case-insensitive suffix, decimal (`kb`, `mb`, `gb`, `tb`, `pb`) or binary
/// (`kib` ... `pib`), `b` or none for bytes; fractions round to the nearest byte.
fn parse_byte_size(v: &str) -> Option<u64> {
    let v = v.trim();
    if let Ok(n) = v.parse::<u64>() {
        return Some(n);
    }
    let lower = v.to_ascii_lowercase();
    const SUFFIXES: [(&str, u64); 11] = [
        ("pib", 1 << 50),
        ("tib", 1 << 40),
        ("gib", 1 << 30),
        ("mib", 1 << 20),
        ("kib", 1 << 10),
        ("pb", 1_000_000_000_000_000),
        ("tb", 1_000_000_000_000),
        ("gb", 1_000_000_000),
        ("mb", 1_000_000),
        ("kb", 1_000),
        ("b", 1),
    ];
    let (num, mult) = SUFFIXES
        .iter()
        .find_map(|&(suffix, m)| lower.strip_suffix(suffix).map(|n| (n.trim(), m)))
        .unwrap_or((lower.as_str(), 1));
    let n: f64 = num.parse().ok()?;
    // xet-core would wrap negatives and NaN to 0 bytes; a cap of 0 disables a
    // cache, which nobody asks for by writing "-1".
    let bytes = (n * mult as f64).round();
    (bytes.is_finite() && bytes >= 0.0 && bytes < u64::MAX as f64).then_some(bytes as u64)
}

/// A boolean as xet-core's config reads one.
fn parse_bool(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "y" | "on" => Some(true),
        "0" | "false" | "no" | "n" | "off" => Some(false),
        _ => None,
    }
}

/// `path` with a leading `~` (alone or before a `/`) replaced by `home`, as
/// xet-core's `TemplatedPathBuf` does (`shellexpand::tilde`); `~user` and a `~`
/// elsewhere stay as they are, as does everything when `home` is unknown.
fn expand_tilde(path: &str, home: Option<&str>) -> PathBuf {
    match (path.strip_prefix('~'), home) {
        (Some(""), Some(h)) => PathBuf::from(h),
        (Some(rest), Some(h)) if rest.starts_with('/') => Path::new(h).join(rest.trim_start_matches('/')),
        _ => PathBuf::from(path),
    }
}

/// The official client's cache root from the variables `get` looks up (xet-core
/// `xet_runtime/src/core/cache_dir.rs::xet_cache_root`): `$HF_XET_CACHE`, else
/// `$HF_HOME/xet`, else `$XDG_CACHE_HOME/huggingface/xet`, else
/// `$HOME/.cache/huggingface/xet`, else (no home) `./.cache/huggingface/xet`. A
/// leading `~` is expanded in each. Empty values count as unset (xet-core would
/// take an empty `HF_XET_CACHE` as the current directory).
pub fn default_cache_root(get: impl Fn(&str) -> Option<String>) -> PathBuf {
    let get = |k: &str| get(k).filter(|v| !v.is_empty());
    let home = get("HOME");
    let path = |v: String| expand_tilde(&v, home.as_deref());
    if let Some(c) = get("HF_XET_CACHE") {
        return path(c);
    }
    if let Some(h) = get("HF_HOME") {
        return path(h).join("xet");
    }
    if let Some(x) = get("XDG_CACHE_HOME") {
        return path(x).join("huggingface").join("xet");
    }
    let home = home.map(PathBuf::from).unwrap_or_else(|| PathBuf::from("."));
    home.join(".cache").join("huggingface").join("xet")
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::collections::HashMap;

    /// A variable lookup over `pairs`, as `from_vars` takes it.
    fn vars<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        let map: HashMap<&str, &str> = pairs.iter().copied().collect();
        move |k| map.get(k).map(|v| v.to_string())
    }

    fn config(pairs: &[(&str, &str)]) -> Config {
        Config::from_vars(vars(pairs)).unwrap()
    }

    fn error(pairs: &[(&str, &str)]) -> String {
        match Config::from_vars(vars(pairs)) {
            Err(e) => e.to_string(),
            Ok(c) => panic!("{pairs:?} accepted: {c:?}"),
        }
    }

    fn root(pairs: &[(&str, &str)]) -> PathBuf {
        config(pairs).cache_dir.unwrap()
    }

    #[test]
    fn cache_root_precedence() {
        let all = [
            ("HF_XET_CACHE", "/a"),
            ("HF_HOME", "/b"),
            ("XDG_CACHE_HOME", "/x"),
            ("HOME", "/h"),
        ];
        assert_eq!(root(&all), PathBuf::from("/a"));
        assert_eq!(root(&all[1..]), PathBuf::from("/b/xet"));
        assert_eq!(root(&all[2..]), PathBuf::from("/x/huggingface/xet"));
        assert_eq!(root(&all[3..]), PathBuf::from("/h/.cache/huggingface/xet"));
        assert_eq!(root(&[]), PathBuf::from("./.cache/huggingface/xet"));
        // HF_HOME beats XDG_CACHE_HOME without HF_XET_CACHE, whatever the order.
        assert_eq!(
            root(&[("XDG_CACHE_HOME", "/x"), ("HF_HOME", "/b")]),
            PathBuf::from("/b/xet")
        );
        // Empty values count as unset.
        assert_eq!(
            root(&[("HF_XET_CACHE", ""), ("HF_HOME", ""), ("XDG_CACHE_HOME", "/x")]),
            PathBuf::from("/x/huggingface/xet")
        );
        // `default_cache_root` is the same function.
        assert_eq!(
            default_cache_root(vars(&all[2..])),
            PathBuf::from("/x/huggingface/xet")
        );
    }

    #[test]
    fn tilde_is_expanded_in_each_path_variable() {
        let home = ("HOME", "/home/u");
        assert_eq!(root(&[("HF_XET_CACHE", "~/c"), home]), PathBuf::from("/home/u/c"));
        assert_eq!(root(&[("HF_XET_CACHE", "~"), home]), PathBuf::from("/home/u"));
        assert_eq!(
            root(&[("HF_HOME", "~/hf"), home]),
            PathBuf::from("/home/u/hf/xet")
        );
        assert_eq!(
            root(&[("XDG_CACHE_HOME", "~/.xdg"), home]),
            PathBuf::from("/home/u/.xdg/huggingface/xet")
        );
        // Only a leading `~` alone or before `/`, as shellexpand::tilde.
        assert_eq!(root(&[("HF_XET_CACHE", "~bob/c"), home]), PathBuf::from("~bob/c"));
        assert_eq!(root(&[("HF_XET_CACHE", "/a/~/c"), home]), PathBuf::from("/a/~/c"));
        // No home known: left as written.
        assert_eq!(root(&[("HF_XET_CACHE", "~/c")]), PathBuf::from("~/c"));
    }

    #[test]
    fn no_variables_give_the_defaults() {
        let (c, d) = (config(&[]), Config::default());
        assert_eq!(c.chunk_cache_size, d.chunk_cache_size);
        assert_eq!(c.shard_cache_size, d.shard_cache_size);
        assert_eq!(c.upload_concurrency, d.upload_concurrency);
        assert_eq!(c.download_concurrency, d.download_concurrency);
        assert_eq!(c.global_dedup_spacing, d.global_dedup_spacing);
        assert_eq!(c.retry.max_attempts, d.retry.max_attempts);
        assert_eq!(c.stall_timeout, d.stall_timeout);
        assert_eq!(c.connect_timeout, d.connect_timeout);
        assert!(c.global_dedup && c.sync_downloads);
    }

    #[test]
    fn official_names_set_each_setting() {
        let c = config(&[
            ("HF_XET_CHUNK_CACHE_SIZE_BYTES", "123456"),
            ("HF_XET_SHARD_CACHE_SIZE_LIMIT", "2gb"),
            ("HF_XET_MDB_SHARD_LOCAL_CACHE_EXPIRATION", "2d"),
            ("HF_XET_XORB_COMPRESSION_POLICY", "lz4"),
            ("HF_XET_FIXED_UPLOAD_CONCURRENCY", "3"),
            ("HF_XET_FIXED_DOWNLOAD_CONCURRENCY", "11"),
            ("HF_XET_UPLOAD_BUFFER_BYTES", "100mib"),
            ("HF_XET_DEDUPLICATION_GLOBAL_DEDUP_QUERY_ENABLED", "off"),
            ("HF_XET_DATA_MIN_SPACING_BETWEEN_GLOBAL_DEDUP_QUERIES", "17"),
            ("HF_XET_CLIENT_RETRY_MAX_ATTEMPTS", "2"),
            ("HF_XET_CLIENT_RETRY_BASE_DELAY", "250ms"),
            ("HF_XET_CLIENT_RETRY_MAX_DURATION", "1m"),
            ("HF_XET_CLIENT_CONNECT_TIMEOUT", "7s"),
            ("HF_XET_CLIENT_READ_TIMEOUT", "90s"),
            ("HF_XET_SYNC_DOWNLOADS", "n"),
        ]);
        assert_eq!(c.chunk_cache_size, 123_456);
        assert_eq!(c.shard_cache_size, 2_000_000_000);
        assert_eq!(c.shard_cache_max_age, Duration::from_secs(2 * 86_400));
        assert_eq!(c.compression, CompressionPolicy::Lz4);
        assert_eq!(c.upload_concurrency, 3);
        assert_eq!(c.download_concurrency, 11);
        assert_eq!(c.upload_buffer_bytes, 100 << 20);
        assert!(!c.global_dedup);
        assert_eq!(c.global_dedup_spacing, 17);
        // Two retries: three attempts in all.
        assert_eq!(c.retry.max_attempts, 3);
        assert_eq!(c.retry.base_delay, Duration::from_millis(250));
        assert_eq!(c.retry.max_delay, Duration::from_secs(60));
        assert_eq!(c.connect_timeout, Duration::from_secs(7));
        assert_eq!(c.stall_timeout, Duration::from_secs(90));
        assert!(!c.sync_downloads);
        // No retries at all is one attempt.
        assert_eq!(
            config(&[("HF_XET_CLIENT_RETRY_MAX_ATTEMPTS", "0")])
                .retry
                .max_attempts,
            1
        );
    }

    #[test]
    fn aliases_work_and_official_names_win() {
        // Each alias alone.
        let c = config(&[
            ("HF_XET_MDB_SHARD_CACHE_SIZE_LIMIT", "3kib"),
            ("HF_XET_DATA_XORB_COMPRESSION_POLICY", "none"),
            ("HF_XET_MAX_CONCURRENT_UPLOADS", "5"),
            ("HF_XET_MAX_CONCURRENT_DOWNLOADS", "6"),
            ("HF_XET_MIN_SPACING_BETWEEN_GLOBAL_DEDUP_QUERIES", "9"),
            ("HF_XET_CLIENT_STALL_TIMEOUT_SECS", "12"),
        ]);
        assert_eq!(c.shard_cache_size, 3072);
        assert_eq!(c.compression, CompressionPolicy::None);
        assert_eq!(c.upload_concurrency, 5);
        assert_eq!(c.download_concurrency, 6);
        assert_eq!(c.global_dedup_spacing, 9);
        assert_eq!(c.stall_timeout, Duration::from_secs(12));
        // Both set: the official (current) name wins, and an alias is not even
        // parsed then.
        let c = config(&[
            ("HF_XET_SHARD_CACHE_SIZE_LIMIT", "1mb"),
            ("HF_XET_MDB_SHARD_CACHE_SIZE_LIMIT", "3kib"),
            ("HF_XET_XORB_COMPRESSION_POLICY", "bg4-lz4"),
            ("HF_XET_DATA_XORB_COMPRESSION_POLICY", "none"),
            ("HF_XET_FIXED_UPLOAD_CONCURRENCY", "2"),
            ("HF_XET_MAX_CONCURRENT_UPLOADS", "5"),
            ("HF_XET_FIXED_DOWNLOAD_CONCURRENCY", "3"),
            ("HF_XET_MAX_CONCURRENT_DOWNLOADS", "junk"),
            ("HF_XET_DATA_MIN_SPACING_BETWEEN_GLOBAL_DEDUP_QUERIES", "4"),
            ("HF_XET_MIN_SPACING_BETWEEN_GLOBAL_DEDUP_QUERIES", "9"),
            ("HF_XET_CLIENT_READ_TIMEOUT", "2m"),
            ("HF_XET_CLIENT_STALL_TIMEOUT_SECS", "12"),
        ]);
        assert_eq!(c.shard_cache_size, 1_000_000);
        assert_eq!(c.compression, CompressionPolicy::Bg4Lz4);
        assert_eq!(c.upload_concurrency, 2);
        assert_eq!(c.download_concurrency, 3);
        assert_eq!(c.global_dedup_spacing, 4);
        assert_eq!(c.stall_timeout, Duration::from_secs(120));
        // An empty official name does not hide the alias.
        let c = config(&[
            ("HF_XET_FIXED_UPLOAD_CONCURRENCY", ""),
            ("HF_XET_MAX_CONCURRENT_UPLOADS", "7"),
        ]);
        assert_eq!(c.upload_concurrency, 7);
    }

    #[test]
    fn unparsable_values_are_reported_by_name() {
        for (k, v) in [
            ("HF_XET_CHUNK_CACHE_SIZE_BYTES", "10gb"),
            ("HF_XET_SHARD_CACHE_SIZE_LIMIT", "lots"),
            ("HF_XET_MDB_SHARD_CACHE_SIZE_LIMIT", "-1"),
            ("HF_XET_FIXED_UPLOAD_CONCURRENCY", "four"),
            ("HF_XET_MAX_CONCURRENT_DOWNLOADS", "-2"),
            ("HF_XET_DEDUPLICATION_GLOBAL_DEDUP_QUERY_ENABLED", "maybe"),
            ("HF_XET_CLIENT_READ_TIMEOUT", "soon"),
            ("HF_XET_CLIENT_READ_TIMEOUT", "0s"),
            ("HF_XET_CLIENT_CONNECT_TIMEOUT", "0"),
            ("HF_XET_CLIENT_RETRY_BASE_DELAY", "3 fortnights"),
            ("HF_XET_XORB_COMPRESSION_POLICY", "zstd"),
            ("HF_XET_SYNC_DOWNLOADS", "sometimes"),
        ] {
            let e = error(&[(k, v)]);
            assert!(e.contains(k), "{k}={v}: {e}");
        }
    }

    #[test]
    fn sizes_like_xet_core() {
        let b = parse_byte_size;
        assert_eq!(b("16gb"), Some(16_000_000_000));
        assert_eq!(b("16GB"), Some(16_000_000_000));
        assert_eq!(b("1.5 MiB"), Some(1_572_864));
        assert_eq!(b("8mb"), Some(8_000_000));
        assert_eq!(b("512b"), Some(512));
        assert_eq!(b("18446744073709551615"), Some(u64::MAX));
        assert_eq!(b("2.5"), Some(3));
        assert_eq!(b(""), None);
        assert_eq!(b("gb"), None);
        assert_eq!(b("-5kb"), None);
        assert_eq!(b("1e30pb"), None);
    }

    #[test]
    fn booleans_like_xet_core() {
        for t in ["1", "true", "TRUE", "yes", "y", "on", " On "] {
            assert_eq!(parse_bool(t), Some(true), "{t}");
        }
        for f in ["0", "false", "no", "n", "off", "OFF"] {
            assert_eq!(parse_bool(f), Some(false), "{f}");
        }
        assert_eq!(parse_bool("2"), None);
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
        assert_eq!(d("2wk"), Some(1_209_600));
        let ms = |s: &str| parse_duration(s).map(|d| d.as_nanos());
        assert_eq!(ms("500ms"), Some(500_000_000));
        assert_eq!(ms("1s 250ms"), Some(1_250_000_000));
        assert_eq!(ms("3us"), Some(3_000));
        assert_eq!(ms("7ns"), Some(7));
        assert_eq!(ms("10 s"), Some(10_000_000_000));
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
