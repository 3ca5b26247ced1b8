//! The local-directory object backend: one file per object under a root directory.
//!
//! Durability: an object is written to `tmp/`, fsynced, renamed into place and its
//! directory fsynced. A rename is atomic on POSIX file systems, so after a crash
//! (`kill -9`, power loss) an object is either absent or complete; the fsyncs make
//! "complete" survive power loss too, not only process death. Leftover temp files
//! are deleted when the store opens.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;

use super::RANGE_BLOCK_BYTES;
use crate::error::{Error, Result};

/// Objects as files under `root`, keyed by relative paths (`xorbs/ab/abcd...`).
#[derive(Debug, Clone)]
pub(crate) struct LocalBackend {
    root: PathBuf,
}

const TMP_DIR: &str = "tmp";

impl LocalBackend {
    /// Opens (creating if needed) a store directory and clears temp files an earlier
    /// process left behind when it died mid-write.
    pub(crate) async fn open(root: PathBuf) -> Result<Self> {
        blocking(move || {
            let tmp = root.join(TMP_DIR);
            fs::create_dir_all(&tmp).map_err(|e| Error::io("creating store directory", &tmp, e))?;
            for entry in fs::read_dir(&tmp).map_err(|e| Error::io("listing", &tmp, e))? {
                let entry = entry.map_err(|e| Error::io("listing", &tmp, e))?;
                let _ = fs::remove_file(entry.path());
            }
            Ok(LocalBackend { root })
        })
        .await
    }

    fn path(&self, key: &str) -> PathBuf {
        self.root.join(key)
    }

    /// Writes `data` under `key` atomically (see the module docs). An existing object
    /// is replaced; every key of the store is content-addressed or written once, so a
    /// replacement carries the same content.
    pub(crate) async fn put(&self, key: &str, data: Bytes) -> Result<()> {
        self.put_parts(key, vec![data]).await
    }

    /// Writes an object made of `parts`, in order, atomically (as [`put`](Self::put)).
    pub(crate) async fn put_parts(&self, key: &str, parts: Vec<Bytes>) -> Result<()> {
        let path = self.path(key);
        let tmp = self.root.join(TMP_DIR).join(temp_name());
        blocking(move || write_atomic(&path, &tmp, &parts)).await
    }

    /// Deletes an object; absent is fine.
    pub(crate) async fn delete(&self, key: &str) -> Result<()> {
        let path = self.path(key);
        blocking(move || match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io("deleting", &path, e)),
        })
        .await
    }

    /// The whole object, or `None` if absent.
    pub(crate) async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        let path = self.path(key);
        blocking(move || match fs::read(&path) {
            Ok(v) => Ok(Some(Bytes::from(v))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io("reading", &path, e)),
        })
        .await
    }

    /// The object's length, or `None` if absent.
    pub(crate) async fn len(&self, key: &str) -> Result<Option<u64>> {
        let path = self.path(key);
        blocking(move || match fs::metadata(&path) {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io("reading metadata of", &path, e)),
        })
        .await
    }

    /// Byte ranges `[start, end)` of an object, or `None` if absent. Ranges must lie
    /// within the object (callers check against its length first).
    pub(crate) async fn get_ranges(&self, key: &str, ranges: Vec<(u64, u64)>) -> Result<Option<Vec<Bytes>>> {
        let path = self.path(key);
        blocking(move || {
            let file = match File::open(&path) {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(Error::io("opening", &path, e)),
            };
            let mut out = Vec::with_capacity(ranges.len());
            for (start, end) in ranges {
                let mut buf = vec![0u8; (end - start) as usize];
                file.read_exact_at(&mut buf, start)
                    .map_err(|e| Error::io("reading", &path, e))?;
                out.push(Bytes::from(buf));
            }
            Ok(Some(out))
        })
        .await
    }

    /// Opens `[start, end)` for reading in blocks; `None` if absent.
    pub(crate) async fn open_range(&self, key: &str, start: u64, end: u64) -> Result<Option<LocalRange>> {
        let path = self.path(key);
        blocking(move || match File::open(&path) {
            Ok(f) => Ok(Some(LocalRange {
                file: Arc::new(f),
                path,
                pos: start,
                end,
            })),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io("opening", &path, e)),
        })
        .await
    }

    /// Keys of the objects directly or indirectly under `prefix` (a directory key).
    pub(crate) async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        let root = self.root.clone();
        let dir = self.path(prefix);
        blocking(move || {
            let mut out = Vec::new();
            let mut stack = vec![dir];
            while let Some(d) = stack.pop() {
                let rd = match fs::read_dir(&d) {
                    Ok(rd) => rd,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(Error::io("listing", &d, e)),
                };
                for entry in rd {
                    let entry = entry.map_err(|e| Error::io("listing", &d, e))?;
                    let p = entry.path();
                    if p.is_dir() {
                        stack.push(p);
                    } else if let Ok(rel) = p.strip_prefix(&root) {
                        out.push(rel.to_string_lossy().into_owned());
                    }
                }
            }
            out.sort();
            Ok(out)
        })
        .await
    }

    /// The root directory.
    pub(crate) fn root(&self) -> &Path {
        &self.root
    }
}

/// A range of a local object read one block per blocking task, so at most one
/// block per reader is in memory. The file stays open while the reader lives (an
/// object renamed over or deleted meanwhile keeps its old bytes readable).
#[derive(Debug)]
pub(crate) struct LocalRange {
    file: Arc<File>,
    path: PathBuf,
    pos: u64,
    end: u64,
}

impl LocalRange {
    pub(crate) async fn next_block(&mut self) -> Result<Option<Bytes>> {
        if self.pos >= self.end {
            return Ok(None);
        }
        let n = (self.end - self.pos).min(RANGE_BLOCK_BYTES as u64) as usize;
        let (file, path, pos) = (self.file.clone(), self.path.clone(), self.pos);
        let block = blocking(move || {
            let mut buf = vec![0u8; n];
            // A short file (truncated behind our back) fails here as UnexpectedEof.
            file.read_exact_at(&mut buf, pos)
                .map_err(|e| Error::io("reading", &path, e))?;
            Ok(Bytes::from(buf))
        })
        .await?;
        self.pos += n as u64;
        Ok(Some(block))
    }
}

fn write_atomic(path: &Path, tmp: &Path, parts: &[Bytes]) -> Result<()> {
    let parent = path.parent().expect("object keys have a parent directory");
    if !parent.is_dir() {
        create_dir_durable(parent)?;
    }
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(tmp)
        .map_err(|e| Error::io("creating", tmp, e))?;
    let res = parts
        .iter()
        .try_for_each(|p| f.write_all(p))
        .and_then(|()| f.sync_all())
        .map_err(|e| Error::io("writing", tmp, e))
        .and_then(|()| fs::rename(tmp, path).map_err(|e| Error::io("renaming into place", path, e)));
    if res.is_err() {
        let _ = fs::remove_file(tmp);
    }
    res?;
    // The rename is only durable once the directory entry is.
    sync_dir(parent)
}

/// Creates `dir` and its missing ancestors, fsyncing each new entry's parent so the
/// directories survive a power loss along with the objects written into them.
fn create_dir_durable(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        create_dir_durable(parent)?;
    }
    match fs::create_dir(dir) {
        Ok(()) => {}
        // Another writer created it concurrently.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(()),
        Err(e) => return Err(Error::io("creating directory", dir, e)),
    }
    match dir.parent() {
        Some(parent) => sync_dir(parent),
        None => Ok(()),
    }
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io("syncing directory", dir, e))
}

/// A unique temp file name: process id plus random bits.
fn temp_name() -> String {
    let mut r = [0u8; 8];
    crate::random_bytes(&mut r);
    format!("{}-{}.tmp", std::process::id(), u64::from_le_bytes(r))
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(|e| Error::Backend {
        message: format!("blocking I/O task failed: {e}"),
        retryable: false,
    })?
}
