//! On-disk caches: the download chunk cache and the shard cache used by dedup.
//!
//! Both are plain directories of immutable files, so several processes can share
//! them without locks:
//! - entries are written to a unique temporary name and renamed into place
//!   (atomic on POSIX), so a reader sees a whole entry or none;
//! - every entry carries its length and a BLAKE3 checksum; a truncated or corrupt
//!   entry (crash, disk error, another tool) is detected on read, deleted and
//!   reported as a miss, so the caller refetches;
//! - eviction deletes the least recently used files (modification time, bumped on
//!   each hit) until the total is under the cap; a file deleted while another
//!   process reads it stays readable through the open handle (POSIX unlink).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use bytes::Bytes;
use xet_format::MerkleHash;

use crate::{Error, Result};

/// Entry header: magic, payload length, BLAKE3 of the payload.
const MAGIC: &[u8; 8] = b"XETCC\x00\x00\x01";
const HEADER: usize = 8 + 8 + 32;

/// After eviction the cache is at most this fraction of its cap, so that eviction
/// (a directory scan) runs once per many inserts, not on every one.
const EVICT_TO: f64 = 0.8;

/// Size and entry count of a cache directory.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Entries.
    pub entries: u64,
    /// Bytes on disk.
    pub bytes: u64,
}

/// A size-capped directory of checksummed, immutable entries.
#[derive(Debug)]
struct EntryDir {
    dir: PathBuf,
    cap: u64,
    /// Our estimate of the directory's size; re-measured at each eviction because
    /// other processes write too.
    approx: AtomicU64,
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

impl EntryDir {
    fn open(dir: PathBuf, cap: u64) -> Result<Self> {
        fs::create_dir_all(&dir).map_err(|e| Error::io("creating cache directory", &dir, e))?;
        let approx = AtomicU64::new(scan(&dir).iter().map(|(_, len, _)| len).sum());
        Ok(EntryDir { dir, cap, approx })
    }

    /// Reads and checks the entry at `path`; a bad entry is deleted.
    fn read(&self, path: &Path) -> Option<Bytes> {
        let raw = fs::read(path).ok()?;
        match check(&raw) {
            Some(range) => {
                // LRU bump; failure only weakens eviction order.
                if let Ok(f) = fs::File::options().append(true).open(path) {
                    let _ = f.set_modified(SystemTime::now());
                }
                Some(Bytes::from(raw).slice(range))
            }
            None => {
                tracing::warn!(path = %path.display(), "dropping corrupt cache entry");
                let _ = fs::remove_file(path);
                None
            }
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
            head[16..].copy_from_slice(blake3::hash(data).as_bytes());
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
        let total = self
            .approx
            .fetch_add((HEADER + data.len()) as u64, Ordering::Relaxed)
            + (HEADER + data.len()) as u64;
        if total > self.cap {
            self.evict();
        }
        Ok(())
    }

    /// Deletes the least recently used entries until under `EVICT_TO × cap`.
    fn evict(&self) {
        let mut entries = scan(&self.dir);
        let mut total: u64 = entries.iter().map(|(_, len, _)| len).sum();
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
        let entries = scan(&self.dir);
        CacheStats {
            entries: entries.len() as u64,
            bytes: entries.iter().map(|(_, l, _)| l).sum(),
        }
    }

    fn clear(&self) -> Result<()> {
        for (path, _, _) in scan(&self.dir) {
            let _ = fs::remove_file(path);
        }
        self.approx.store(0, Ordering::Relaxed);
        Ok(())
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
    (blake3::hash(&raw[HEADER..]).as_bytes() == &raw[16..HEADER]).then_some(HEADER..raw.len())
}

/// Every entry file under `dir` (recursively) with its size and mtime; temporary
/// files of writers are skipped.
fn scan(dir: &Path) -> Vec<(PathBuf, u64, SystemTime)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let Ok(md) = e.metadata() else { continue };
            if md.is_dir() {
                stack.push(e.path());
            } else if !e.file_name().to_string_lossy().starts_with(".tmp-") {
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
            inner: EntryDir::open(dir.into(), cap)?,
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

    /// Deletes every entry.
    pub fn clear(&self) -> Result<()> {
        self.inner.clear()
    }
}

/// Shards kept for dedup (§8.1 level 2): our own uploaded shards and global-dedup
/// answers. Named by content, so storing the same shard twice is a no-op.
#[derive(Debug)]
pub struct ShardCache {
    inner: EntryDir,
}

impl ShardCache {
    /// Opens (creating) the cache at `dir`, capped at `cap` bytes.
    pub fn open(dir: impl Into<PathBuf>, cap: u64) -> Result<Self> {
        Ok(ShardCache {
            inner: EntryDir::open(dir.into(), cap)?,
        })
    }

    /// Stores a shard.
    pub fn put(&self, shard: &[u8]) -> Result<()> {
        let name = blake3::hash(shard).to_hex();
        let path = self.inner.dir.join(format!("{name}.shard"));
        if path.exists() {
            return Ok(());
        }
        self.inner.write(&path, shard)
    }

    /// Every readable shard, most recently used first. Corrupt ones are dropped.
    pub fn all(&self) -> Vec<Bytes> {
        let mut entries = scan(&self.inner.dir);
        entries.sort_by_key(|(_, _, t)| std::cmp::Reverse(*t));
        entries
            .iter()
            .filter_map(|(p, _, _)| self.inner.read(p))
            .collect()
    }

    /// Entries and bytes on disk.
    pub fn stats(&self) -> CacheStats {
        self.inner.stats()
    }

    /// Deletes every entry.
    pub fn clear(&self) -> Result<()> {
        self.inner.clear()
    }
}

#[cfg(test)]
mod tests {
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
    fn shard_cache_roundtrip() {
        let d = tempfile::tempdir().unwrap();
        let c = ShardCache::open(d.path(), 1 << 20).unwrap();
        c.put(b"one").unwrap();
        c.put(b"one").unwrap();
        c.put(b"two").unwrap();
        let mut all: Vec<_> = c.all().into_iter().map(|b| b.to_vec()).collect();
        all.sort();
        assert_eq!(all, vec![b"one".to_vec(), b"two".to_vec()]);
        c.clear().unwrap();
        assert_eq!(c.stats(), CacheStats::default());
    }
}
