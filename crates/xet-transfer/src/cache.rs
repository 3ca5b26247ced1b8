//! On-disk caches: the download chunk cache and the shard cache used by dedup.
//!
//! Both are plain directories of immutable files, so several processes can share
//! them without locks:
//! - entries are written to a unique temporary name and renamed into place
//!   (atomic on POSIX), so a reader sees a whole entry or none; a temporary file
//!   left by a killed writer is deleted by the next scan once it is an hour old;
//! - every entry carries its length and a CRC-64/NVME of its payload; a truncated or
//!   corrupt entry (crash, disk error, another tool) is detected on read, deleted
//!   and reported as a miss, so the caller refetches. A CRC, not a cryptographic
//!   hash: it guards against accidents (a local attacker who can write the cache
//!   can change the program too), whole-file downloads verify every chunk hash
//!   against the file hash anyway, and at ~7 GB/s it costs a fifth of BLAKE3
//!   (which was a quarter of a warm download's CPU);
//! - eviction deletes the least recently used files (modification time, bumped on
//!   each hit) until the total is under the cap; a file deleted while another
//!   process reads it stays readable through the open handle (POSIX unlink).
//!
//! Only our own entry files count: scans (sizes, eviction, [`ChunkCache::clear`])
//! skip any other file, so a directory shared with another program, such as the
//! official client's `shard-cache` of `<hash>.mdb` files, never loses its files to
//! us ([`Layout`]).
//!
//! Shards also expire ([`ShardCache::load`]): a global-dedup answer's keyed hashes
//! are valid only until its footer's `shard_key_expiry` (§8.3 step 5), and any
//! cached shard is dropped once older than a maximum age (xet-core keeps its own
//! shards for 3 weeks, §8.1).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use xet_format::api::crc64_nvme;
use xet_format::shard::Shard;
use xet_format::{AlignedBuf, MerkleHash};

use crate::{Error, Result};
use xet_format::bufpool::{Pool, Pooled};

/// Entry header: magic, payload length, CRC-64/NVME of the payload (both
/// little-endian). Version 1 entries (BLAKE3 checksum) fail the magic check and are
/// dropped like corrupt ones.
const MAGIC: &[u8; 8] = b"XETCC\x00\x00\x02";
const HEADER: usize = 8 + 8 + 8;

/// Largest entry file read: a whole xorb's chunk records or a shard, plus slack.
const MAX_ENTRY_BYTES: u64 = 2 * (xet_format::xorb::MAX_XORB_BYTES_ACCEPTED as u64 + HEADER as u64);

/// After eviction the cache is at most this fraction of its cap, so that eviction
/// (a directory scan) runs once per many inserts, not on every one.
const EVICT_TO: f64 = 0.8;

/// Default maximum age of a cached shard: xet-core's `MDB_SHARD_LOCAL_CACHE_EXPIRATION`
/// (`xet_core_structures/src/metadata_shard/constants.rs`), 3 weeks. Past it a shard
/// mostly names xorbs that later uploads have superseded, and loading it costs time
/// at every session start.
pub const DEFAULT_SHARD_MAX_AGE: Duration = Duration::from_secs(3 * 7 * 24 * 3600);

/// Size and entry count of a cache directory.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Entries.
    pub entries: u64,
    /// Bytes on disk.
    pub bytes: u64,
}

/// Where a cache keeps its entries and what they are called. Scans follow it
/// strictly: the official client 1.8.0 writes `<hash>.mdb` shards and
/// `.<uuid>.mdb_temp` files into directories named `shard-cache` too (under its
/// own per-endpoint directory, so not ours, but a file of its copied or linked
/// into ours must survive our eviction and `clear`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// `<xx>/<xorb hash hex, starting xx>/<first chunk>-<end chunk>`.
    Chunks,
    /// `<BLAKE3 hex of the shard>.shard`.
    Shards,
}

impl Layout {
    /// Directory levels between the cache directory and an entry.
    fn depth(self) -> usize {
        match self {
            Layout::Chunks => 2,
            Layout::Shards => 0,
        }
    }

    /// Whether `name`, a directory at `depth` (0 = in the cache directory) whose
    /// parent is called `parent`, is one of ours to look into.
    fn is_dir(self, depth: usize, name: &str, parent: &str) -> bool {
        match (self, depth) {
            (Layout::Chunks, 0) => name.len() == 2 && is_hex(name),
            (Layout::Chunks, 1) => name.len() == 64 && is_hex(name) && name.starts_with(parent),
            _ => false,
        }
    }

    /// Whether `name`, a file at the entry depth, is one of our entries.
    fn is_entry(self, name: &str) -> bool {
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        match self {
            Layout::Chunks => name.split_once('-').is_some_and(|(a, b)| digits(a) && digits(b)),
            Layout::Shards => name
                .strip_suffix(".shard")
                .is_some_and(|h| h.len() == 64 && is_hex(h)),
        }
    }
}

/// Lowercase hexadecimal, as `MerkleHash::to_hex` and BLAKE3's `to_hex` write it.
fn is_hex(s: &str) -> bool {
    s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A size-capped directory of checksummed, immutable entries.
#[derive(Debug)]
struct EntryDir {
    dir: PathBuf,
    layout: Layout,
    cap: u64,
    /// Our estimate of the directory's size; re-measured at each eviction because
    /// other processes write too.
    approx: AtomicU64,
    /// Bytes this handle wrote since it last measured the directory. Another
    /// process's writes do not show in `approx`, so two processes below the cap
    /// each could fill the directory past it together: the directory is measured
    /// again (and evicted if over the cap) every `cap / 8` bytes we write, and
    /// once more when the handle is dropped after writing, so that the last
    /// writer to finish always sees everyone's entries.
    unmeasured: AtomicU64,
    /// Bump an entry's mtime when it is read, making eviction least-recently-used.
    /// Off for shards: every session reads all of them, so the bump would only
    /// erase the time each was stored, which their expiry and eviction need.
    touch_on_read: bool,
    /// Buffers entries are read into.
    buffers: Arc<Pool<AlignedBuf>>,
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

impl EntryDir {
    fn open(
        dir: PathBuf,
        layout: Layout,
        cap: u64,
        touch_on_read: bool,
        idle_buffers: usize,
    ) -> Result<Self> {
        fs::create_dir_all(&dir).map_err(|e| Error::io("creating cache directory", &dir, e))?;
        let approx = AtomicU64::new(scan(&dir, layout).iter().map(|(_, len, _)| len).sum());
        Ok(EntryDir {
            dir,
            layout,
            cap,
            approx,
            unmeasured: AtomicU64::new(0),
            touch_on_read,
            buffers: Pool::new(idle_buffers),
        })
    }

    /// Reads and checks the entry at `path`; a bad entry is deleted.
    fn read(&self, path: &Path) -> Option<Bytes> {
        let raw = read_entry(path, &self.buffers).ok()?;
        match check(raw.as_ref()) {
            Some(range) => {
                if self.touch_on_read {
                    touch(path);
                }
                Some(Bytes::from_owner(raw).slice(range))
            }
            None => {
                tracing::warn!(path = %path.display(), "dropping corrupt cache entry");
                self.remove(path, raw.as_ref().len() as u64);
                None
            }
        }
    }

    /// Deletes the entry at `path` of `len` bytes (someone else may have already).
    fn remove(&self, path: &Path, len: u64) {
        if fs::remove_file(path).is_ok() {
            let _ = self
                .approx
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |a| {
                    Some(a.saturating_sub(len))
                });
        }
    }

    /// Writes `data` at `path` atomically, then evicts if over the cap.
    fn write(&self, path: &Path, data: &[u8]) -> Result<()> {
        let parent = path.parent().unwrap_or(&self.dir);
        fs::create_dir_all(parent).map_err(|e| Error::io("creating cache directory", parent, e))?;
        let tmp = parent.join(format!(
            ".tmp-{}-{}",
            std::process::id(),
            TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let res = (|| {
            let mut f = fs::File::create(&tmp)?;
            let mut head = [0u8; HEADER];
            head[..8].copy_from_slice(MAGIC);
            head[8..16].copy_from_slice(&(data.len() as u64).to_le_bytes());
            head[16..].copy_from_slice(&crc64_nvme(data).to_le_bytes());
            f.write_all(&head)?;
            f.write_all(data)?;
            // No fsync: a cache entry lost or torn by a crash is detected by its
            // checksum and refetched; syncing would cost more than it saves.
            drop(f);
            fs::rename(&tmp, path)
        })();
        if let Err(e) = res {
            let _ = fs::remove_file(&tmp);
            return Err(Error::io("writing cache entry", path, e));
        }
        let len = (HEADER + data.len()) as u64;
        let total = self.approx.fetch_add(len, Ordering::Relaxed) + len;
        let unmeasured = self.unmeasured.fetch_add(len, Ordering::Relaxed) + len;
        if total > self.cap || unmeasured > self.cap / 8 {
            self.rebalance();
        }
        Ok(())
    }

    /// Measures the directory; if it is over the cap, deletes the least recently
    /// used entries until under `EVICT_TO × cap`.
    fn rebalance(&self) {
        self.unmeasured.store(0, Ordering::Relaxed);
        let mut entries = scan(&self.dir, self.layout);
        let mut total: u64 = entries.iter().map(|(_, len, _)| len).sum();
        if total <= self.cap {
            self.approx.store(total, Ordering::Relaxed);
            return;
        }
        let target = (self.cap as f64 * EVICT_TO) as u64;
        entries.sort_by_key(|(_, _, t)| *t);
        for (path, len, _) in entries {
            if total <= target {
                break;
            }
            // Someone else may have evicted it already: fine either way.
            let _ = fs::remove_file(&path);
            total -= len;
        }
        self.approx.store(total, Ordering::Relaxed);
    }

    fn stats(&self) -> CacheStats {
        let entries = scan(&self.dir, self.layout);
        CacheStats {
            entries: entries.len() as u64,
            bytes: entries.iter().map(|(_, l, _)| l).sum(),
        }
    }

    fn clear(&self) -> Result<()> {
        for (path, _, _) in scan(&self.dir, self.layout) {
            let _ = fs::remove_file(path);
        }
        self.approx.store(0, Ordering::Relaxed);
        self.unmeasured.store(0, Ordering::Relaxed);
        Ok(())
    }
}

impl Drop for EntryDir {
    fn drop(&mut self) {
        if self.unmeasured.load(Ordering::Relaxed) > 0 {
            self.rebalance();
        }
    }
}

/// The whole file at `path`, in a page-aligned buffer from `pool` (the kernel copies
/// into one four times faster than into `fs::read`'s, and a reused one needs no page
/// faults).
fn read_entry(path: &Path, pool: &Arc<Pool<AlignedBuf>>) -> std::io::Result<Pooled<AlignedBuf>> {
    use std::io::Read;
    let mut f = fs::File::open(path)?;
    let len = f.metadata()?.len();
    // No entry we write is larger (a xorb range or a shard, plus the header): a
    // bigger file is not ours, and is not read into memory.
    if len > MAX_ENTRY_BYTES {
        return Err(std::io::Error::other("cache entry too large"));
    }
    let mut buf = pool.take(len as usize);
    f.read_exact(buf.get_mut().as_mut_slice())?;
    // A file that grew since the stat is another writer's: not ours to trust.
    let mut probe = [0u8; 1];
    if f.read(&mut probe)? != 0 {
        return Err(std::io::Error::other("cache entry changed while being read"));
    }
    Ok(buf)
}

/// Sets `path`'s mtime to now; failure only weakens eviction order or expiry.
fn touch(path: &Path) {
    if let Ok(f) = fs::File::options().append(true).open(path) {
        let _ = f.set_modified(SystemTime::now());
    }
}

/// The payload range of a raw entry, if its header and checksum hold.
fn check(raw: &[u8]) -> Option<std::ops::Range<usize>> {
    if raw.len() < HEADER || &raw[..8] != MAGIC {
        return None;
    }
    let len = u64::from_le_bytes(raw[8..16].try_into().ok()?);
    if raw.len() as u64 != HEADER as u64 + len {
        return None;
    }
    let crc = u64::from_le_bytes(raw[16..HEADER].try_into().ok()?);
    (crc64_nvme(&raw[HEADER..]) == crc).then_some(HEADER..raw.len())
}

/// A writer's temporary file older than this was left by a process that died
/// mid-write (a write takes well under a second): [`scan`] deletes it.
const STALE_TMP: std::time::Duration = std::time::Duration::from_secs(3600);

/// Whether `name` is one of our writers' temporary names, `.tmp-<pid>-<n>`.
fn is_our_tmp(name: &str) -> bool {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    name.strip_prefix(".tmp-")
        .and_then(|rest| rest.split_once('-'))
        .is_some_and(|(pid, n)| digits(pid) && digits(n))
}

/// Every entry file of ours under `dir` (as `layout` places and names them) with
/// its size and mtime. Anything else is not ours and is skipped: writers'
/// temporary files (`.tmp-*`), other programs' files, directories they made.
/// Our own temporary files older than [`STALE_TMP`] are deleted on the way, so a
/// process killed while writing does not leave them to fill the disk.
fn scan(dir: &Path, layout: Layout) -> Vec<(PathBuf, u64, SystemTime)> {
    let now = SystemTime::now();
    let mut out = Vec::new();
    let mut stack = vec![(dir.to_path_buf(), 0usize)];
    while let Some((d, depth)) = stack.pop() {
        let Ok(rd) = fs::read_dir(&d) else { continue };
        let parent = d.file_name().and_then(|n| n.to_str()).unwrap_or("").to_string();
        for e in rd.flatten() {
            let Ok(md) = e.metadata() else { continue };
            let name = e.file_name();
            let Some(name) = name.to_str() else { continue };
            if md.is_dir() {
                if depth < layout.depth() && layout.is_dir(depth, name, &parent) {
                    stack.push((e.path(), depth + 1));
                }
            } else if md.is_file() && depth == layout.depth() && is_our_tmp(name) {
                let stale = md
                    .modified()
                    .ok()
                    .and_then(|t| now.duration_since(t).ok())
                    .is_some_and(|age| age > STALE_TMP);
                if stale {
                    let _ = fs::remove_file(e.path());
                }
            } else if md.is_file() && depth == layout.depth() && layout.is_entry(name) {
                out.push((
                    e.path(),
                    md.len(),
                    md.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                ));
            }
        }
    }
    out
}

/// Download cache of raw xorb byte ranges (chunk records exactly as the server
/// sent them), keyed by xorb and chunk index range. §9.8 recommends caching
/// ranges rather than single chunks: neighbours are usually needed together.
#[derive(Debug)]
pub struct ChunkCache {
    inner: EntryDir,
}

impl ChunkCache {
    /// Opens (creating) the cache at `dir`, capped at `cap` bytes.
    pub fn open(dir: impl Into<PathBuf>, cap: u64) -> Result<Self> {
        Ok(ChunkCache {
            // Idle read buffers kept: about what a download has in flight.
            inner: EntryDir::open(dir.into(), Layout::Chunks, cap, true, 4)?,
        })
    }

    fn xorb_dir(&self, xorb: &MerkleHash) -> PathBuf {
        let hex = xorb.to_hex();
        self.inner.dir.join(&hex[..2]).join(hex)
    }

    /// A cached range of `xorb` covering chunks `[start, end)`: the chunk index it
    /// starts at and its raw bytes. Corrupt entries are dropped and missed.
    pub fn get(&self, xorb: &MerkleHash, start: u32, end: u32) -> Option<(u32, Bytes)> {
        let dir = self.xorb_dir(xorb);
        let rd = fs::read_dir(&dir).ok()?;
        let mut best: Option<(u32, u32, PathBuf)> = None;
        for e in rd.flatten() {
            let name = e.file_name();
            let Some((s, t)) = name.to_str().and_then(|n| n.split_once('-')) else {
                continue;
            };
            let (Ok(s), Ok(t)) = (s.parse::<u32>(), t.parse::<u32>()) else {
                continue;
            };
            // The smallest entry that covers the request wastes the least decoding.
            if s <= start && end <= t && best.as_ref().is_none_or(|(bs, bt, _)| t - s < bt - bs) {
                best = Some((s, t, e.path()));
            }
        }
        let (s, _, path) = best?;
        self.inner.read(&path).map(|b| (s, b))
    }

    /// Deletes the entries of `xorb` that cover chunks `[start, end)` (after the data
    /// they gave failed verification).
    pub fn remove(&self, xorb: &MerkleHash, start: u32, end: u32) {
        let Ok(rd) = fs::read_dir(self.xorb_dir(xorb)) else {
            return;
        };
        for e in rd.flatten() {
            let name = e.file_name();
            let Some((s, t)) = name.to_str().and_then(|n| n.split_once('-')) else {
                continue;
            };
            if let (Ok(s), Ok(t)) = (s.parse::<u32>(), t.parse::<u32>()) {
                if s <= start && end <= t {
                    let _ = fs::remove_file(e.path());
                }
            }
        }
    }

    /// Stores the raw bytes of chunks `[start, end)` of `xorb`.
    pub fn put(&self, xorb: &MerkleHash, start: u32, end: u32, data: &[u8]) -> Result<()> {
        let path = self.xorb_dir(xorb).join(format!("{start}-{end}"));
        self.inner.write(&path, data)
    }

    /// Entries and bytes on disk.
    pub fn stats(&self) -> CacheStats {
        self.inner.stats()
    }

    /// Deletes every entry (ours only: other files in the directory stay).
    pub fn clear(&self) -> Result<()> {
        self.inner.clear()
    }
}

/// Shards kept for dedup (§8.1 level 2): our own uploaded shards and global-dedup
/// answers. Named by content, so storing the same shard twice is a no-op.
///
/// A shard leaves the cache at the earlier of
/// - its footer's `shard_key_expiry` (§8.3 step 5: a global-dedup answer's keyed
///   hashes are valid until then; xet-core uses a shard while `now <= expiry`), and
/// - [`max_age`](Self::with_max_age) after it was created: the footer's
///   `shard_creation_timestamp` if set, else the time it was stored here (the
///   file's mtime, which reads do not bump). This is what retires our own shards:
///   they are kept in upload form, without a footer, so they carry neither time.
///
/// Expired shards are deleted as soon as [`load`](Self::load) sees them. xet-core
/// waits a further 7 days (`MDB_SHARD_EXPIRATION_BUFFER`) because its sessions keep
/// reading shard files by path; ours read each shard whole at session start, so a
/// deletion never pulls a file from under a running session.
#[derive(Debug)]
pub struct ShardCache {
    inner: EntryDir,
    max_age: Duration,
}

impl ShardCache {
    /// Opens (creating) the cache at `dir`, capped at `cap` bytes, with shards
    /// kept for [`DEFAULT_SHARD_MAX_AGE`].
    pub fn open(dir: impl Into<PathBuf>, cap: u64) -> Result<Self> {
        Ok(ShardCache {
            // Shards are read once per session: keep one buffer, not a set.
            inner: EntryDir::open(dir.into(), Layout::Shards, cap, false, 1)?,
            max_age: DEFAULT_SHARD_MAX_AGE,
        })
    }

    /// Drops shards created more than `max_age` ago.
    pub fn with_max_age(mut self, max_age: Duration) -> Self {
        self.max_age = max_age;
        self
    }

    /// Stores a shard. Storing one that is already there restarts its age if it has
    /// no creation time of its own (it was just uploaded again).
    pub fn put(&self, shard: &[u8]) -> Result<()> {
        let name = blake3::hash(shard).to_hex();
        let path = self.inner.dir.join(format!("{name}.shard"));
        if path.exists() {
            touch(&path);
            return Ok(());
        }
        self.inner.write(&path, shard)
    }

    /// Every usable shard as of `now`, most recently stored first. Shards that are
    /// expired (see the type's docs), corrupt or undecodable are deleted and left
    /// out: a bad cache entry costs dedup, never the session.
    pub fn load(&self, now: SystemTime) -> Vec<Shard> {
        let mut entries = scan(&self.inner.dir, self.inner.layout);
        entries.sort_by_key(|(_, _, t)| std::cmp::Reverse(*t));
        let mut out = Vec::with_capacity(entries.len());
        for (path, len, stored) in entries {
            // A corrupt entry is deleted by `read`.
            let Some(bytes) = self.inner.read(&path) else {
                continue;
            };
            let shard = match Shard::decode(&bytes) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "dropping undecodable cached shard");
                    self.inner.remove(&path, len);
                    continue;
                }
            };
            match self.expired(&shard, stored, now) {
                Some(why) => {
                    tracing::debug!(path = %path.display(), why, "dropping expired cached shard");
                    self.inner.remove(&path, len);
                }
                None => out.push(shard),
            }
        }
        out
    }

    /// Why `shard` (stored at `stored`) is no longer usable at `now`, if it is not.
    fn expired(&self, shard: &Shard, stored: SystemTime, now: SystemTime) -> Option<&'static str> {
        let now_secs = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let footer = shard.footer.as_ref();
        if footer.is_some_and(|f| f.key_expiry < now_secs) {
            return Some("key expiry passed");
        }
        let created = match footer.map(|f| f.creation_timestamp) {
            // `checked_add`: the footer is input; a time past what `SystemTime`
            // holds is as good as "now".
            Some(t) if t != 0 => SystemTime::UNIX_EPOCH
                .checked_add(Duration::from_secs(t))
                .unwrap_or(now),
            _ => stored,
        };
        // A creation time in the future (clock skew) counts as age zero.
        let age = now.duration_since(created).unwrap_or(Duration::ZERO);
        (age > self.max_age).then_some("older than the maximum age")
    }

    /// Entries and bytes on disk.
    pub fn stats(&self) -> CacheStats {
        self.inner.stats()
    }

    /// Deletes every entry (ours only: other files in the directory stay).
    pub fn clear(&self) -> Result<()> {
        self.inner.clear()
    }
}

#[cfg(test)]
mod tests {
    use xet_format::shard::FullOptions;

    use super::*;

    fn h(n: u8) -> MerkleHash {
        MerkleHash::from_bytes([n; 32])
    }

    #[test]
    fn put_get_covering_range() {
        let d = tempfile::tempdir().unwrap();
        let c = ChunkCache::open(d.path(), 1 << 20).unwrap();
        c.put(&h(1), 2, 10, b"abcdef").unwrap();
        assert_eq!(c.get(&h(1), 3, 5), Some((2, Bytes::from_static(b"abcdef"))));
        assert_eq!(c.get(&h(1), 0, 5), None);
        assert_eq!(c.get(&h(2), 3, 5), None);
        assert_eq!(c.stats().entries, 1);
    }

    #[test]
    fn corrupt_and_truncated_entries_are_dropped() {
        let d = tempfile::tempdir().unwrap();
        let c = ChunkCache::open(d.path(), 1 << 20).unwrap();
        c.put(&h(1), 0, 4, &[7u8; 1000]).unwrap();
        c.put(&h(2), 0, 4, &[8u8; 1000]).unwrap();
        let p1 = c.xorb_dir(&h(1)).join("0-4");
        let p2 = c.xorb_dir(&h(2)).join("0-4");
        let mut raw = fs::read(&p1).unwrap();
        raw[HEADER + 10] ^= 1;
        fs::write(&p1, raw).unwrap();
        let raw = fs::read(&p2).unwrap();
        fs::write(&p2, &raw[..raw.len() - 3]).unwrap();
        assert_eq!(c.get(&h(1), 0, 4), None);
        assert_eq!(c.get(&h(2), 0, 4), None);
        assert!(!p1.exists() && !p2.exists());
    }

    #[test]
    fn eviction_keeps_under_cap_and_prefers_recent() {
        let d = tempfile::tempdir().unwrap();
        let c = ChunkCache::open(d.path(), 10_000).unwrap();
        for i in 0..30u8 {
            c.put(&h(i), 0, 1, &[i; 1000]).unwrap();
            // mtime granularity: make order unambiguous.
            let p = c.xorb_dir(&h(i)).join("0-1");
            let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000 + u64::from(i));
            fs::File::options()
                .append(true)
                .open(p)
                .unwrap()
                .set_modified(t)
                .unwrap();
        }
        let s = c.stats();
        assert!(s.bytes <= 10_000, "{s:?}");
        assert!(c.get(&h(29), 0, 1).is_some());
        assert!(c.get(&h(0), 0, 1).is_none());
    }

    #[test]
    fn two_handles_share_one_directory() {
        // Two processes = two independent handles on one directory.
        let d = tempfile::tempdir().unwrap();
        let a = ChunkCache::open(d.path(), 1 << 20).unwrap();
        let b = ChunkCache::open(d.path(), 1 << 20).unwrap();
        std::thread::scope(|s| {
            s.spawn(|| {
                for i in 0..50u8 {
                    a.put(&h(i), 0, 1, &[i; 500]).unwrap();
                }
            });
            s.spawn(|| {
                for i in 0..50u8 {
                    b.put(&h(i), 0, 1, &[i; 500]).unwrap();
                    let _ = b.get(&h(i), 0, 1);
                }
            });
        });
        for i in 0..50u8 {
            assert_eq!(a.get(&h(i), 0, 1).unwrap().1, Bytes::from(vec![i; 500]));
        }
    }

    #[test]
    fn handles_that_fill_past_the_cap_together_evict() {
        // Processes = independent handles. Each writes less than the cap and
        // less than the re-measure interval, so none evicts while writing; the
        // directory goes over the cap, and whoever writes on or finishes after
        // that measures it and evicts.
        let d = tempfile::tempdir().unwrap();
        let cap = 10_000;
        // All open before any writes, as processes started together.
        let handles: Vec<_> = (0..12)
            .map(|_| ChunkCache::open(d.path(), cap).unwrap())
            .collect();
        for (i, c) in handles.iter().enumerate() {
            c.put(&h(i as u8), 0, 1, &[i as u8; 1000]).unwrap();
        }
        assert!(handles[0].stats().bytes > cap, "{:?}", handles[0].stats());
        drop(handles);
        let c = ChunkCache::open(d.path(), cap).unwrap();
        assert!(c.stats().bytes <= cap, "{:?}", c.stats());
        // Writing on measures too: nine handles past the cap, one writes more.
        let d = tempfile::tempdir().unwrap();
        let handles: Vec<_> = (0..9).map(|_| ChunkCache::open(d.path(), cap).unwrap()).collect();
        for (i, c) in handles.iter().enumerate() {
            c.put(&h(i as u8), 0, 1, &[i as u8; 1200]).unwrap();
        }
        assert!(handles[0].stats().bytes > cap);
        handles[3].put(&h(99), 0, 1, &[9; 1200]).unwrap();
        assert!(handles[0].stats().bytes <= cap, "{:?}", handles[0].stats());
        assert!(handles[0].get(&h(99), 0, 1).is_some(), "the newest entry stays");
    }

    /// Files of other programs (the official client's shard and temp names, and
    /// look-alikes of ours in the wrong place), each with distinct content.
    fn plant_foreign(dir: &Path, names: &[&str]) -> Vec<(PathBuf, Vec<u8>)> {
        names
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let p = dir.join(n);
                fs::create_dir_all(p.parent().unwrap()).unwrap();
                let data = vec![i as u8; 3000 + i];
                fs::write(&p, &data).unwrap();
                (p, data)
            })
            .collect()
    }

    fn assert_intact(files: &[(PathBuf, Vec<u8>)]) {
        for (p, data) in files {
            assert_eq!(&fs::read(p).unwrap(), data, "{} was changed", p.display());
        }
    }

    #[test]
    fn stale_temporary_files_of_ours_are_swept_fresh_and_foreign_ones_kept() {
        let d = tempfile::tempdir().unwrap();
        let c = ChunkCache::open(d.path(), 1 << 20).unwrap();
        c.put(&h(7), 0, 1, &[7; 100]).unwrap();
        let entry_dir = c.xorb_dir(&h(7));
        let old = SystemTime::now() - STALE_TMP - std::time::Duration::from_secs(60);
        let plant = |name: &str, mtime: SystemTime| {
            let p = entry_dir.join(name);
            let f = fs::File::create(&p).unwrap();
            f.set_len(5000).unwrap();
            f.set_modified(mtime).unwrap();
            p
        };
        let stale = plant(".tmp-4242-17", old);
        let fresh = plant(".tmp-4242-18", SystemTime::now());
        let foreign = plant(".tmp-notours", old);
        drop(c);
        let c = ChunkCache::open(d.path(), 1 << 20).unwrap();
        assert!(!stale.exists(), "a dead writer's temporary file is swept");
        assert!(fresh.exists(), "a live writer's temporary file is left alone");
        assert!(foreign.exists(), "other names are not ours");
        assert_eq!(c.stats().entries, 1, "temporary files are not entries");
        assert!(c.get(&h(7), 0, 1).is_some());
        assert!(
            is_our_tmp(".tmp-1-0")
                && !is_our_tmp(".tmp--0")
                && !is_our_tmp(".tmp-1-")
                && !is_our_tmp("tmp-1-0")
        );
    }

    #[test]
    fn foreign_files_are_never_counted_evicted_or_cleared() {
        let hex = h(1).to_hex();
        let d = tempfile::tempdir().unwrap();
        let foreign = plant_foreign(
            d.path(),
            &[
                "c01dd0505d7664c3f56403280e8f586d55051a9ca4cc670b23408b08bde711ce.mdb",
                ".0f1e2d3c-aaaa-bbbb-cccc-000000000000.mdb_temp",
                "0-4",
                "zz/notes.txt",
                &format!("{}/{hex}/0-x", &hex[..2]),
                &format!("{}/{hex}/nested/0-4", &hex[..2]),
                &format!("ab/{hex}/0-4"),
            ],
        );
        let c = ChunkCache::open(d.path(), 20_000).unwrap();
        assert_eq!(c.stats(), CacheStats::default(), "nothing of ours yet");
        // Enough of ours to evict several times over.
        for i in 0..40u8 {
            c.put(&h(i), 0, 1, &[i; 1000]).unwrap();
        }
        assert!(c.stats().entries < 40, "evicted: {:?}", c.stats());
        assert_intact(&foreign);
        c.clear().unwrap();
        assert_eq!(c.stats(), CacheStats::default());
        assert_intact(&foreign);

        let d = tempfile::tempdir().unwrap();
        let foreign = plant_foreign(
            d.path(),
            &[
                "c01dd0505d7664c3f56403280e8f586d55051a9ca4cc670b23408b08bde711ce.mdb",
                ".0f1e2d3c-aaaa-bbbb-cccc-000000000000.mdb_temp",
                "staging/shard-session/xorb_metadata",
                &format!("sub/{hex}.shard"),
                &format!("{}.shard", &hex[..63]),
            ],
        );
        let s = ShardCache::open(d.path(), 1 << 20).unwrap();
        assert_eq!(s.stats(), CacheStats::default());
        s.put(&own_shard(1).to_bytes().unwrap()).unwrap();
        assert_eq!(s.stats().entries, 1);
        assert_eq!(s.load(SystemTime::now()), vec![own_shard(1)]);
        s.clear().unwrap();
        assert_eq!(s.stats(), CacheStats::default());
        assert_intact(&foreign);
        // Expiry deletes only ours too.
        let s = s.with_max_age(Duration::ZERO);
        s.put(&own_shard(2).to_bytes().unwrap()).unwrap();
        assert!(s.load(SystemTime::now() + Duration::from_secs(5)).is_empty());
        assert_eq!(s.stats(), CacheStats::default());
        assert_intact(&foreign);
    }

    /// A one-xorb shard in upload form (what we cache after our own uploads).
    fn own_shard(seed: u8) -> Shard {
        let chunks = [(h(seed), 1000u32), (h(seed.wrapping_add(1)), 2000)];
        let leaves: Vec<_> = chunks.iter().map(|&(c, l)| (c, u64::from(l))).collect();
        let mut b = xet_format::shard::ShardBuilder::new();
        b.add_xorb(xet_format::hash::xorb_hash(&leaves), &chunks).unwrap();
        b.build()
    }

    /// Unix seconds of a test clock: a fixed instant, not the machine's.
    const NOW: u64 = 1_800_000_000;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn set_mtime(path: &Path, t: SystemTime) {
        fs::File::options()
            .append(true)
            .open(path)
            .unwrap()
            .set_modified(t)
            .unwrap();
    }

    fn shard_paths(c: &ShardCache) -> Vec<PathBuf> {
        scan(&c.inner.dir, Layout::Shards)
            .into_iter()
            .map(|(p, _, _)| p)
            .collect()
    }

    #[test]
    fn shard_cache_roundtrip() {
        let d = tempfile::tempdir().unwrap();
        let c = ShardCache::open(d.path(), 1 << 20).unwrap();
        let (a, b) = (own_shard(1), own_shard(2));
        c.put(&a.to_bytes().unwrap()).unwrap();
        c.put(&a.to_bytes().unwrap()).unwrap();
        c.put(&b.to_bytes().unwrap()).unwrap();
        assert_eq!(c.stats().entries, 2);
        let mut all = c.load(SystemTime::now());
        all.sort_by_key(|s| s.xorbs[0].xorb_hash.to_hex());
        let mut want = vec![a, b];
        want.sort_by_key(|s| s.xorbs[0].xorb_hash.to_hex());
        assert_eq!(all, want);
        c.clear().unwrap();
        assert_eq!(c.stats(), CacheStats::default());
    }

    #[test]
    fn shard_past_its_key_expiry_is_deleted() {
        let d = tempfile::tempdir().unwrap();
        let c = ShardCache::open(d.path(), 1 << 20).unwrap();
        let raw = own_shard(1);
        // Global-dedup answers: keyed, created an hour ago, one expiring a second
        // ago, one in a day, one exactly now (still usable, as in xet-core).
        let expired = raw.dedup_response([7; 32], NOW - 3600, NOW - 1).unwrap();
        let fresh = raw.dedup_response([8; 32], NOW - 3600, NOW + 86_400).unwrap();
        let edge = raw.dedup_response([9; 32], NOW - 3600, NOW).unwrap();
        for s in [&expired, &fresh, &edge] {
            c.put(&s.to_bytes().unwrap()).unwrap();
        }
        let mut loaded: Vec<_> = c.load(at(NOW)).into_iter().map(|s| s.hmac_key()).collect();
        loaded.sort();
        assert_eq!(loaded, vec![[8; 32], [9; 32]]);
        assert_eq!(c.stats().entries, 2, "the expired shard is deleted");
        // A second session sees the same two.
        assert_eq!(c.load(at(NOW)).len(), 2);
    }

    #[test]
    fn shard_older_than_max_age_is_deleted() {
        let d = tempfile::tempdir().unwrap();
        let day = 86_400;
        let c = ShardCache::open(d.path(), 1 << 20).unwrap();
        // Footer times decide when present: created 22 and 20 days ago, no expiry.
        let old = FullOptions {
            creation_timestamp: NOW - 22 * day,
            ..FullOptions::default()
        };
        let young = FullOptions {
            creation_timestamp: NOW - 20 * day,
            ..FullOptions::default()
        };
        c.put(&own_shard(1).to_full_bytes(&old).unwrap()).unwrap();
        c.put(&own_shard(2).to_full_bytes(&young).unwrap()).unwrap();
        let loaded = c.load(at(NOW));
        assert_eq!(loaded.len(), 1);
        assert_eq!(loaded[0].footer.unwrap().creation_timestamp, NOW - 20 * day);
        assert_eq!(c.stats().entries, 1);
        // A shorter maximum age drops the other one too.
        let c = c.with_max_age(Duration::from_secs(7 * day));
        assert!(c.load(at(NOW)).is_empty());
        assert_eq!(c.stats().entries, 0);
    }

    #[test]
    fn footerless_shard_ages_from_when_it_was_stored() {
        let d = tempfile::tempdir().unwrap();
        let day = 86_400;
        let c = ShardCache::open(d.path(), 1 << 20).unwrap();
        c.put(&own_shard(1).to_bytes().unwrap()).unwrap();
        let path = shard_paths(&c).pop().unwrap();
        set_mtime(&path, at(NOW - 20 * day));
        assert_eq!(c.load(at(NOW)).len(), 1);
        // Reading does not make it younger.
        assert_eq!(
            fs::metadata(&path).unwrap().modified().unwrap(),
            at(NOW - 20 * day)
        );
        assert!(c.load(at(NOW + 2 * day)).is_empty());
        assert!(!path.exists());
        // Uploading the same shard again restarts its age (`put` sets the real
        // time, so the clock here is the machine's).
        let now = SystemTime::now();
        c.put(&own_shard(1).to_bytes().unwrap()).unwrap();
        set_mtime(&path, now - Duration::from_secs(20 * day));
        c.put(&own_shard(1).to_bytes().unwrap()).unwrap();
        assert_eq!(c.load(now + Duration::from_secs(2 * day)).len(), 1);
    }

    #[test]
    fn unreadable_shards_are_dropped_not_fatal() {
        let d = tempfile::tempdir().unwrap();
        let c = ShardCache::open(d.path(), 1 << 20).unwrap();
        // A well-formed entry that is not a shard, a corrupt entry, a good shard.
        c.put(b"not a shard").unwrap();
        c.put(&own_shard(2).to_bytes().unwrap()).unwrap();
        let corrupt = shard_paths(&c)
            .into_iter()
            .find(|p| fs::read(p).unwrap().len() > HEADER + 20)
            .unwrap();
        let mut raw = fs::read(&corrupt).unwrap();
        raw[HEADER + 5] ^= 1;
        fs::write(&corrupt, raw).unwrap();
        c.put(&own_shard(3).to_bytes().unwrap()).unwrap();
        let loaded = c.load(SystemTime::now());
        assert_eq!(loaded, vec![own_shard(3)]);
        assert_eq!(c.stats().entries, 1);
    }

    #[test]
    fn far_future_footer_times_do_not_panic() {
        let d = tempfile::tempdir().unwrap();
        let c = ShardCache::open(d.path(), 1 << 20).unwrap();
        let opts = FullOptions {
            creation_timestamp: u64::MAX,
            ..FullOptions::default()
        };
        c.put(&own_shard(1).to_full_bytes(&opts).unwrap()).unwrap();
        assert_eq!(c.load(at(NOW)).len(), 1);
    }
}
