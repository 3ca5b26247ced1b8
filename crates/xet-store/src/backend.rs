//! Object backends: where a store keeps its objects. A backend is a flat key ->
//! bytes map with atomic whole-object writes, whole and ranged reads, and listing;
//! everything protocol-shaped lives above it in [`Store`](crate::Store).

mod local;
mod s3;

use bytes::Bytes;

use crate::error::Result;
pub(crate) use local::{LocalBackend, LocalRange};
pub use s3::S3Config;
pub(crate) use s3::{S3Backend, S3Range};

/// The backends a store can run on. An enum rather than a trait object: there are
/// few, they are known here, and async trait methods cannot be `dyn`.
#[derive(Debug, Clone)]
pub(crate) enum Backend {
    Local(LocalBackend),
    S3(S3Backend),
}

impl Backend {
    pub(crate) async fn put(&self, key: &str, data: Bytes) -> Result<()> {
        match self {
            Backend::Local(b) => b.put(key, data).await,
            Backend::S3(b) => b.put(key, data).await,
        }
    }

    /// An object made of `parts` in order, written as one (atomically, as `put`).
    pub(crate) async fn put_parts(&self, key: &str, parts: Vec<Bytes>) -> Result<()> {
        match self {
            Backend::Local(b) => b.put_parts(key, parts).await,
            // One body for the signed PUT.
            Backend::S3(b) => b.put(key, Bytes::from(parts.concat())).await,
        }
    }

    pub(crate) async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        match self {
            Backend::Local(b) => b.get(key).await,
            Backend::S3(b) => b.get(key).await,
        }
    }

    pub(crate) async fn len(&self, key: &str) -> Result<Option<u64>> {
        match self {
            Backend::Local(b) => b.len(key).await,
            Backend::S3(b) => b.len(key).await,
        }
    }

    /// Half-open ranges `[start, end)`, all within the object.
    pub(crate) async fn get_ranges(&self, key: &str, ranges: Vec<(u64, u64)>) -> Result<Option<Vec<Bytes>>> {
        match self {
            Backend::Local(b) => b.get_ranges(key, ranges).await,
            Backend::S3(b) => b.get_ranges(key, ranges).await,
        }
    }

    /// Opens the half-open range `[start, end)` (within the object) for reading in
    /// pieces of at most [`RANGE_BLOCK_BYTES`]; `None` if the object is absent.
    pub(crate) async fn open_range(&self, key: &str, start: u64, end: u64) -> Result<Option<RangeBody>> {
        Ok(match self {
            Backend::Local(b) => b.open_range(key, start, end).await?.map(RangeBody::Local),
            Backend::S3(b) => b.open_range(key, start, end).await?.map(RangeBody::S3),
        })
    }

    pub(crate) async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        match self {
            Backend::Local(b) => b.list(prefix).await,
            Backend::S3(b) => b.list(prefix).await,
        }
    }

    /// Deletes an object (absent is fine).
    pub(crate) async fn delete(&self, key: &str) -> Result<()> {
        match self {
            Backend::Local(b) => b.delete(key).await,
            Backend::S3(b) => b.delete(key).await,
        }
    }

    /// A URL clients can PUT exactly `content_length` bytes of `key` to directly,
    /// if the backend has such URLs.
    pub(crate) fn presign_put(&self, key: &str, content_length: u64, ttl_secs: u64) -> Option<String> {
        match self {
            Backend::Local(_) => None,
            Backend::S3(b) => Some(b.presign_put(key, content_length, ttl_secs)),
        }
    }

    pub(crate) fn describe(&self) -> String {
        match self {
            Backend::Local(b) => format!("local directory {}", b.root().display()),
            Backend::S3(b) => b.describe(),
        }
    }
}

/// Largest piece a [`RangeBody`] yields: the memory one streamed range holds at a
/// time, whatever its length (ranges reach 64 MiB, §6.1; 16 concurrent downloads of
/// whole ranges would otherwise hold 1 GiB). 256 KiB keeps the read syscalls and
/// blocking-pool hops few (256 per 64 MiB) while staying small.
pub(crate) const RANGE_BLOCK_BYTES: usize = 256 * 1024;

/// An open byte range being read piece by piece. Dropping it mid-way (a client
/// that disconnected) closes the file or the S3 connection; nothing else is owed.
#[derive(Debug)]
pub(crate) enum RangeBody {
    Local(LocalRange),
    S3(S3Range),
}

impl RangeBody {
    /// The next piece (1..=[`RANGE_BLOCK_BYTES`] bytes), or `None` once the whole
    /// range was produced. A backend answering fewer or more bytes than the range
    /// holds is an error, never a silently short body.
    pub(crate) async fn next_block(&mut self) -> Result<Option<Bytes>> {
        match self {
            RangeBody::Local(r) => r.next_block().await,
            RangeBody::S3(r) => r.next_block().await,
        }
    }
}
