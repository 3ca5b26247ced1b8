//! [`Store`]: validation, object layout and indexes over a [`Backend`].
//!
//! # Object layout
//!
//! | key | content | written |
//! |---|---|---|
//! | `xorbs/default/{hh}/{xorb}` | uploaded chunk records + a version 1 footer (§6.5) | after validation |
//! | `shards/{hh}/{id}` | the shard in the reference server's stored form (§7, full form, no lookup tables) | after its xorbs are stored |
//! | `files/{hh}/{file}` | a one-file shard in upload form: that file's terms and verification | after its shard |
//! | `dedup/{hh}/{chunk}` | id of a shard whose xorbs hold the chunk (global dedup, §8.2) | after its shard |
//! | `staging/{xorb}/{grant}` | a direct (presigned) upload not yet committed, S3 only | by the client; deleted at commit, or swept once abandoned |
//!
//! `{hh}` is the first two characters of the hash string (fan-out for directories).
//! Xorbs are stored with a footer, as the official server stores them, so a
//! reconstruction's byte ranges come from reading the footer alone; footers are
//! cached in memory (xorbs never change). Every object is written atomically by the
//! backend, and in this order, so a reader never sees a file whose shard or xorbs
//! are missing.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use xet_format::hash::HashedLength;
use xet_format::shard::{FileInfo, FullOptions, Shard, StoredXorb};
use xet_format::xorb::{validate_xorb, XorbObjectInfo, MAX_XORB_BYTES_ACCEPTED, MAX_XORB_CHUNKS};
use xet_format::MerkleHash;

use crate::backend::{Backend, LocalBackend, RangeBody, S3Backend, S3Config, RANGE_BLOCK_BYTES};
use crate::chunk_hashes::{self, FileChunkHashes};
use crate::error::{Error, Result};
use crate::reconstruction::{plan, Reconstruction, XorbMeta};

/// Where a store keeps its objects.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreConfig {
    /// A local directory (created if missing): the embedded default.
    Local {
        /// The directory.
        dir: PathBuf,
    },
    /// An S3-compatible bucket, shareable by several server processes.
    S3(S3Config),
}

impl StoreConfig {
    /// A local-directory store.
    pub fn local(dir: impl Into<PathBuf>) -> Self {
        StoreConfig::Local { dir: dir.into() }
    }
}

/// Largest upload a xorb may be: chunk records (64 MiB plus one header per chunk,
/// §6.1 and §14 #14) and, if the client sent one, a footer for 8192 chunks (§6.5).
pub const MAX_XORB_UPLOAD_BYTES: usize = MAX_XORB_BYTES_ACCEPTED + 96 + 40 * MAX_XORB_CHUNKS;

/// Largest shard upload accepted: 64 MiB (§1, §10.6).
pub const MAX_SHARD_UPLOAD_BYTES: usize = xet_format::shard::MAX_SHARD_BYTES as usize;

/// How long a global-dedup response's keyed hashes may be used (§8.3 `shard_key_expiry`).
const DEDUP_KEY_TTL_SECS: u64 = 7 * 24 * 3600;

/// Footers kept in memory before the cache is reset (about 45 KiB each at 1024 chunks).
const META_CACHE_ENTRIES: usize = 20_000;

/// How long after its URL expired a staged upload that was never committed is
/// kept before [`Store::sweep_staged_uploads`] deletes it on its own. No PUT can
/// start once the presigned URL expired; the hour leaves room for a slow 64 MiB
/// upload that started just before and for its commit, and for clock skew between
/// server processes.
pub const STAGED_UPLOAD_GRACE: Duration = Duration::from_secs(3600);

/// How often commits start a sweep of abandoned staged uploads (one LIST of the
/// `staging/` prefix, which only holds uploads in flight or abandoned).
const STAGING_SWEEP_EVERY_SECS: u64 = 600;

/// A direct upload granted by [`Store::presign_xorb_upload`]: the client PUTs the
/// xorb's bytes to `url`, then the server calls [`Store::commit_staged_xorb`] with
/// `id`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StagedUpload {
    /// Names the upload; it records the granted length, CRC-64/NVME and URL expiry,
    /// so the commit needs no state kept between the two requests (any server
    /// process sharing the bucket can commit it). Characters `[0-9a-f-]`.
    pub id: String,
    /// Presigned PUT URL for exactly the granted number of bytes.
    pub url: String,
}

/// What a staged upload's id records (see [`StagedUpload::id`]):
/// `{expiry}-{length}-{crc}-{random}`, all decimal but the 32-hex random part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct GrantId {
    expires: u64,
    length: u64,
    crc: u64,
}

impl GrantId {
    /// Longest id [`GrantId::parse`] considers (three u64s, 32 hex, separators).
    const MAX_LEN: usize = 3 * 20 + 32 + 3;

    fn format(&self, random: &str) -> String {
        format!("{}-{}-{}-{random}", self.expires, self.length, self.crc)
    }

    fn parse(id: &str) -> Option<GrantId> {
        if id.len() > Self::MAX_LEN {
            return None;
        }
        let mut it = id.split('-');
        let mut num = || it.next()?.parse::<u64>().ok();
        let (expires, length, crc) = (num()?, num()?, num()?);
        let random = it.next()?;
        (it.next().is_none() && random.len() == 32 && random.bytes().all(|b| b.is_ascii_hexdigit()))
            .then_some(GrantId { expires, length, crc })
    }
}

/// One byte range of a stored xorb, produced piece by piece by
/// [`XorbRangeReader::next_block`] (see [`Store::open_xorb_range`]). Dropping it
/// early (a client that went away) releases the file or backend connection.
#[derive(Debug)]
pub struct XorbRangeReader {
    body: RangeBody,
    start: u64,
    len: u64,
}

impl XorbRangeReader {
    /// Largest piece [`XorbRangeReader::next_block`] returns.
    pub const MAX_BLOCK_BYTES: usize = RANGE_BLOCK_BYTES;

    /// First byte of the range within the xorb.
    pub fn start(&self) -> u64 {
        self.start
    }

    /// Exact number of bytes the range yields (its end already clamped).
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the range is empty (never, for a range that opened).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The next piece (at most [`Self::MAX_BLOCK_BYTES`] bytes), or `None` once
    /// all [`Self::len`] bytes were returned. A backend that delivers fewer or
    /// more bytes than the range holds makes this an error.
    pub async fn next_block(&mut self) -> Result<Option<Bytes>> {
        self.body.next_block().await
    }
}

/// Progress of [`Store::put_shard_with_progress`], mirroring the `/v2/shards`
/// events of §10.3.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ShardProgress {
    /// Verified `verified` of `total` referenced xorbs.
    Validating {
        /// Done so far.
        verified: u64,
        /// Total.
        total: u64,
    },
    /// Writing the shard object.
    Uploading,
    /// Registering files and the dedup index.
    Syncing,
}

/// The storage engine of a CAS: cheap to clone, safe to share between tasks.
#[derive(Debug, Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    backend: Backend,
    metas: Mutex<HashMap<MerkleHash, Arc<XorbMeta>>>,
    /// When commits last started a sweep of abandoned staged uploads (Unix seconds).
    last_staging_sweep: AtomicU64,
}

fn fan(prefix: &str, h: &MerkleHash) -> String {
    let s = h.to_string();
    format!("{prefix}/{}/{s}", &s[..2])
}

fn xorb_key(h: &MerkleHash) -> String {
    fan("xorbs/default", h)
}
fn shard_key(h: &MerkleHash) -> String {
    fan("shards", h)
}
fn file_key(h: &MerkleHash) -> String {
    fan("files", h)
}
fn dedup_key(h: &MerkleHash) -> String {
    fan("dedup", h)
}
fn staging_key(h: &MerkleHash, grant: &str) -> String {
    format!("staging/{h}/{grant}")
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Store {
    /// Opens the store (creating a local directory if needed).
    pub async fn open(config: StoreConfig) -> Result<Store> {
        let backend = match config {
            StoreConfig::Local { dir } => Backend::Local(LocalBackend::open(dir).await?),
            StoreConfig::S3(c) => Backend::S3(S3Backend::open(c).await?),
        };
        tracing::info!(backend = %backend.describe(), "store opened");
        Ok(Store {
            inner: Arc::new(Inner {
                backend,
                metas: Mutex::new(HashMap::new()),
                last_staging_sweep: AtomicU64::new(0),
            }),
        })
    }

    /// Where the store keeps its data, for logs.
    pub fn describe(&self) -> String {
        self.inner.backend.describe()
    }

    fn backend(&self) -> &Backend {
        &self.inner.backend
    }

    /// Validates a xorb upload (its records decode, it is within the limits of §6.1,
    /// and its chunks' Merkle root is `hash`) and stores it with a footer.
    /// `Ok(true)`: stored now; `Ok(false)`: it was already stored. Invalid bytes are
    /// rejected even when the hash is already stored.
    pub async fn put_xorb(&self, hash: MerkleHash, body: Bytes) -> Result<bool> {
        if body.len() > MAX_XORB_UPLOAD_BYTES {
            return Err(Error::TooLarge {
                what: "xorb",
                actual: body.len() as u64,
                limit: MAX_XORB_UPLOAD_BYTES as u64,
            });
        }
        let (stored, meta) = tokio::task::spawn_blocking(move || -> Result<(Vec<Bytes>, XorbMeta)> {
            let summary =
                validate_xorb(&body, &hash).map_err(|source| Error::InvalidXorb { hash, source })?;
            let footer = summary
                .footer()
                .to_bytes()
                .map_err(|source| Error::InvalidXorb { hash, source })?;
            // The chunk records as received and the footer, written one after the
            // other: no 64 MiB copy of the body (clients send no footer, §6.5; one
            // sent is replaced by ours, which describes the same chunks).
            let stored = vec![body.slice(..summary.body_len), Bytes::from(footer)];
            let meta = XorbMeta {
                chunk_hashes: summary.chunks.iter().map(|c| c.0).collect(),
                record_ends: summary.chunk_boundary_offsets.clone(),
                chunk_lengths: summary.chunks.iter().map(|c| c.1 as u32).collect(),
            };
            Ok((stored, meta))
        })
        .await
        .map_err(|e| Error::Backend {
            message: format!("xorb validation task failed: {e}"),
            retryable: false,
        })??;
        let key = xorb_key(&hash);
        if self.backend().len(&key).await?.is_some() {
            return Ok(false);
        }
        self.backend().put_parts(&key, stored).await?;
        self.cache_meta(hash, Arc::new(meta));
        tracing::debug!(%hash, "xorb stored");
        Ok(true)
    }

    fn cache_meta(&self, hash: MerkleHash, meta: Arc<XorbMeta>) {
        let mut m = self.inner.metas.lock().expect("meta cache poisoned");
        if m.len() >= META_CACHE_ENTRIES {
            m.clear();
        }
        m.insert(hash, meta);
    }

    /// Chunk hashes, lengths and record offsets of a stored xorb, from its footer;
    /// `None` if the xorb is not stored.
    pub async fn xorb_meta(&self, hash: &MerkleHash) -> Result<Option<Arc<XorbMeta>>> {
        if let Some(m) = self.inner.metas.lock().expect("meta cache poisoned").get(hash) {
            return Ok(Some(m.clone()));
        }
        let key = xorb_key(hash);
        let Some(len) = self.backend().len(&key).await? else {
            return Ok(None);
        };
        let corrupt = |reason: String| Error::Corrupt {
            key: key.clone(),
            reason,
        };
        if len < 4 {
            return Err(corrupt(format!("{len} bytes cannot hold a footer")));
        }
        let word = self.read_exact(&key, len - 4, len).await?;
        let info_len = u64::from(u32::from_le_bytes([word[0], word[1], word[2], word[3]]));
        if info_len + 4 > len {
            return Err(corrupt(format!("footer length {info_len} exceeds the object")));
        }
        let footer = self.read_exact(&key, len - 4 - info_len, len).await?;
        let info = XorbObjectInfo::decode(&footer).map_err(|e| corrupt(e.to_string()))?;
        let unpacked = info
            .unpacked_chunk_offsets
            .ok_or_else(|| corrupt("version 0 footer without unpacked offsets".into()))?;
        let mut prev = 0u32;
        let chunk_lengths = unpacked
            .iter()
            .map(|&end| {
                let l = end.wrapping_sub(prev);
                prev = end;
                l
            })
            .collect();
        let meta = Arc::new(XorbMeta {
            chunk_hashes: info.chunk_hashes,
            record_ends: info.chunk_boundary_offsets,
            chunk_lengths,
        });
        if meta.body_len() != len - 4 - info_len {
            return Err(corrupt(
                "footer offsets do not end where the footer starts".into(),
            ));
        }
        self.cache_meta(*hash, meta.clone());
        Ok(Some(meta))
    }

    async fn read_exact(&self, key: &str, start: u64, end: u64) -> Result<Bytes> {
        let mut v = self
            .backend()
            .get_ranges(key, vec![(start, end)])
            .await?
            .ok_or_else(|| Error::Corrupt {
                key: key.to_string(),
                reason: "vanished while being read".into(),
            })?;
        Ok(v.remove(0))
    }

    /// Length of a stored xorb's chunk records (what was uploaded, footer excluded);
    /// `None` if not stored.
    pub async fn xorb_len(&self, hash: &MerkleHash) -> Result<Option<u64>> {
        Ok(self.xorb_meta(hash).await?.map(|m| m.body_len()))
    }

    /// Byte ranges (inclusive ends) of a stored xorb's chunk records, each read
    /// whole into memory. For responses, prefer [`Store::open_xorb_range`], which
    /// streams.
    pub async fn read_xorb_ranges(&self, hash: &MerkleHash, ranges: &[(u64, u64)]) -> Result<Vec<Bytes>> {
        let half_open = self
            .check_xorb_ranges(hash, ranges)
            .await?
            .into_iter()
            .map(|(s, e)| (s, e + 1))
            .collect();
        self.backend()
            .get_ranges(&xorb_key(hash), half_open)
            .await?
            .ok_or(Error::NotFound {
                what: "xorb",
                hash: *hash,
            })
    }

    /// Checks byte ranges (inclusive ends) against a stored xorb's chunk records
    /// and clamps each end to the last byte, as HTTP does: the ranges
    /// [`Store::open_xorb_range`] will produce, so their exact lengths are known
    /// before any byte is read (for `Content-Length`).
    pub async fn check_xorb_ranges(
        &self,
        hash: &MerkleHash,
        ranges: &[(u64, u64)],
    ) -> Result<Vec<(u64, u64)>> {
        let meta = self.xorb_meta(hash).await?.ok_or(Error::NotFound {
            what: "xorb",
            hash: *hash,
        })?;
        let len = meta.body_len();
        let mut out = Vec::with_capacity(ranges.len());
        for &(s, e) in ranges {
            if e < s {
                return Err(Error::BadRequest(format!(
                    "byte range {s}-{e} ends before it starts"
                )));
            }
            if s >= len {
                return Err(Error::RangeNotSatisfiable {
                    what: "xorb",
                    start: s,
                    len,
                });
            }
            out.push((s, e.min(len - 1)));
        }
        Ok(out)
    }

    /// Opens one byte range (inclusive end, clamped like
    /// [`Store::check_xorb_ranges`]) of a stored xorb for streaming: the bytes come
    /// in pieces of at most [`XorbRangeReader::MAX_BLOCK_BYTES`], so serving a
    /// 64 MiB range holds one piece in memory, not 64 MiB.
    pub async fn open_xorb_range(&self, hash: &MerkleHash, start: u64, end: u64) -> Result<XorbRangeReader> {
        let (start, end) = self.check_xorb_ranges(hash, &[(start, end)]).await?[0];
        let body = self
            .backend()
            .open_range(&xorb_key(hash), start, end + 1)
            .await?
            .ok_or(Error::NotFound {
                what: "xorb",
                hash: *hash,
            })?;
        Ok(XorbRangeReader {
            body,
            start,
            len: end - start + 1,
        })
    }

    /// Most dirty ranges one file-chunk-hashes query may name (untrusted input:
    /// bounds the work and the answer).
    pub const MAX_DIRTY_RANGES: usize = 4096;

    /// The windows and gap states a client needs to re-upload `file` after editing
    /// the half-open byte ranges `dirty` (§10.4; see [`FileChunkHashes`]). Ranges
    /// are sorted, merged and clamped to the file; none left is a bad request.
    ///
    /// Memory: the chunk list of the file (40 bytes a chunk, so about 0.6 MiB per
    /// GiB of file), bounded by what is stored, not by the request.
    pub async fn file_chunk_hashes(
        &self,
        file: &MerkleHash,
        dirty: &[(u64, u64)],
    ) -> Result<FileChunkHashes> {
        if dirty.len() > Self::MAX_DIRTY_RANGES {
            return Err(Error::BadRequest(format!(
                "{} dirty ranges: at most {} per query",
                dirty.len(),
                Self::MAX_DIRTY_RANGES
            )));
        }
        let info = self.file_info(file).await?.ok_or(Error::NotFound {
            what: "file",
            hash: *file,
        })?;
        let size = info.size();
        let mut ranges: Vec<(u64, u64)> = dirty
            .iter()
            .map(|&(a, b)| (a, b.min(size)))
            .filter(|&(a, b)| a < b)
            .collect();
        ranges.sort_unstable();
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(ranges.len());
        for (a, b) in ranges {
            match merged.last_mut() {
                Some(last) if a <= last.1 => last.1 = last.1.max(b),
                _ => merged.push((a, b)),
            }
        }
        if merged.is_empty() {
            return Err(Error::BadRequest(format!(
                "no dirty range lies within the file's {size} bytes"
            )));
        }
        let mut chunks: Vec<HashedLength> = Vec::new();
        let mut terms = Vec::with_capacity(info.terms.len());
        for (i, t) in info.terms.iter().enumerate() {
            let meta = self
                .xorb_meta(&t.xorb_hash)
                .await?
                .ok_or_else(|| Error::Corrupt {
                    key: file_key(file),
                    reason: format!("term {i} names xorb {} which is not stored", t.xorb_hash),
                })?;
            let (a, b) = (t.chunk_start as usize, t.chunk_end as usize);
            if a >= b || b > meta.chunk_hashes.len() {
                return Err(Error::Corrupt {
                    key: file_key(file),
                    reason: format!("term {i} chunk range {a}..{b} is outside xorb {}", t.xorb_hash),
                });
            }
            chunks.extend(
                meta.chunk_hashes[a..b]
                    .iter()
                    .zip(&meta.chunk_lengths[a..b])
                    .map(|(h, l)| (*h, u64::from(*l))),
            );
            let v = info.verification.as_ref().and_then(|v| v.get(i).copied());
            terms.push((u64::from(t.unpacked_bytes), v));
        }
        Ok(chunk_hashes::build(&chunks, &merged, &terms))
    }

    /// Whether clients upload xorbs straight into the backend
    /// ([`presign_xorb_upload`](Self::presign_xorb_upload) grants URLs): S3 yes,
    /// the local directory no.
    pub fn has_direct_uploads(&self) -> bool {
        matches!(self.backend(), Backend::S3(_))
    }

    /// For backends clients can upload to directly (S3): a presigned PUT URL, valid
    /// `ttl_secs`, for a staging object that will hold xorb `hash`, `length` bytes
    /// whose CRC-64/NVME is `crc`, so the xorb's bytes never pass through the
    /// server. `Ok(None)` for the local directory; [`Error::TooLarge`] for a length
    /// over [`MAX_XORB_UPLOAD_BYTES`]. Publish with
    /// [`commit_staged_xorb`](Self::commit_staged_xorb).
    pub fn presign_xorb_upload(
        &self,
        hash: &MerkleHash,
        length: u64,
        crc: u64,
        ttl_secs: u64,
    ) -> Result<Option<StagedUpload>> {
        if length > MAX_XORB_UPLOAD_BYTES as u64 {
            return Err(Error::TooLarge {
                what: "xorb upload grant",
                actual: length,
                limit: MAX_XORB_UPLOAD_BYTES as u64,
            });
        }
        let mut random = [0u8; 16];
        crate::random_bytes(&mut random);
        let id = GrantId {
            expires: now_secs().saturating_add(ttl_secs),
            length,
            crc,
        }
        .format(&xet_format::hash::hex(&random));
        Ok(self
            .backend()
            .presign_put(&staging_key(hash, &id), length, ttl_secs)
            .map(|url| StagedUpload { id, url }))
    }

    /// Publishes the xorb uploaded under grant `id` (see
    /// [`presign_xorb_upload`](Self::presign_xorb_upload)): checks the staged
    /// object's length (one HEAD) against the grant and [`MAX_XORB_UPLOAD_BYTES`]
    /// before reading any of it, reads exactly the granted bytes, checks their
    /// CRC-64/NVME, validates them as [`put_xorb`](Self::put_xorb) does, stores the
    /// xorb and deletes the staging object. A staged object that fails any check is
    /// deleted too, and nothing becomes visible: [`Error::TooLarge`] (over the
    /// limit), [`Error::UploadMismatch`] (not the granted length or CRC),
    /// [`Error::InvalidXorb`]. `Err(NotFound)` if nothing was uploaded there;
    /// [`Error::BadRequest`] for an id this store did not issue.
    ///
    /// The granted length is enforced twice: S3 refuses a PUT of another length to
    /// the URL (the length is signed), and this check covers S3-compatible servers
    /// that do not verify signed headers, so a write token never makes the server
    /// read more than one xorb's worth of bytes into memory.
    ///
    /// Commits also start, at most every ten minutes, a background
    /// [`sweep_staged_uploads`](Self::sweep_staged_uploads) with
    /// [`STAGED_UPLOAD_GRACE`].
    pub async fn commit_staged_xorb(&self, hash: MerkleHash, id: &str) -> Result<bool> {
        self.maybe_sweep_staging();
        let grant = GrantId::parse(id).ok_or_else(|| {
            Error::BadRequest(
                "grant id was not issued by this store (or by an older version): ask for a new grant".into(),
            )
        })?;
        let key = staging_key(&hash, id);
        let Some(len) = self.backend().len(&key).await? else {
            return Err(Error::NotFound {
                what: "staged xorb upload",
                hash,
            });
        };
        let refused = if len > MAX_XORB_UPLOAD_BYTES as u64 {
            Some(Error::TooLarge {
                what: "staged xorb upload",
                actual: len,
                limit: MAX_XORB_UPLOAD_BYTES as u64,
            })
        } else if len != grant.length {
            Some(Error::UploadMismatch {
                hash,
                what: "length",
                granted: grant.length,
                actual: len,
            })
        } else {
            None
        };
        if let Some(e) = refused {
            tracing::debug!(%hash, error = %e, "staged xorb upload refused before reading it");
            self.backend().delete(&key).await?;
            return Err(e);
        }
        // Exactly `len` bytes, by range: an object replaced by a longer one since the
        // HEAD is still read no further than the grant.
        let body = if len == 0 {
            Bytes::new()
        } else {
            match self.backend().get_ranges(&key, vec![(0, len)]).await? {
                Some(mut parts) => parts.remove(0),
                // Committed (and deleted) by a concurrent commit of the same grant.
                None => {
                    return Err(Error::NotFound {
                        what: "staged xorb upload",
                        hash,
                    })
                }
            }
        };
        let crc = {
            let body = body.clone();
            tokio::task::spawn_blocking(move || xet_format::api::crc64_nvme(&body))
                .await
                .map_err(|e| Error::Backend {
                    message: format!("CRC task failed: {e}"),
                    retryable: false,
                })?
        };
        let res = if crc != grant.crc {
            Err(Error::UploadMismatch {
                hash,
                what: "CRC-64/NVME",
                granted: grant.crc,
                actual: crc,
            })
        } else {
            self.put_xorb(hash, body).await
        };
        self.backend().delete(&key).await?;
        res
    }

    /// Starts a background sweep if commits have not started one for
    /// [`STAGING_SWEEP_EVERY_SECS`]; its errors are logged, never the commit's.
    fn maybe_sweep_staging(&self) {
        let now = now_secs();
        let last = self.inner.last_staging_sweep.load(Ordering::Relaxed);
        if now < last.saturating_add(STAGING_SWEEP_EVERY_SECS)
            || self
                .inner
                .last_staging_sweep
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let store = self.clone();
        tokio::spawn(async move {
            match store.sweep_staged_uploads(STAGED_UPLOAD_GRACE).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(deleted = n, "abandoned staged xorb uploads deleted"),
                Err(e) => tracing::warn!(error = %e, "sweeping abandoned staged xorb uploads failed"),
            }
        });
    }

    /// Deletes staged uploads never committed whose URL expired more than `grace`
    /// ago (a client that died between its PUT and its commit); returns how many.
    /// Staging objects whose id this version cannot read (written by another
    /// program or an older version) are left alone. Nothing to do on the local
    /// directory, which has no direct uploads.
    pub async fn sweep_staged_uploads(&self, grace: Duration) -> Result<usize> {
        if !self.has_direct_uploads() {
            return Ok(0);
        }
        let now = now_secs();
        let mut deleted = 0;
        for key in self.backend().list("staging").await? {
            let Some(grant) = key.rsplit('/').next().and_then(GrantId::parse) else {
                continue;
            };
            if grant.expires.saturating_add(grace.as_secs()) <= now {
                self.backend().delete(&key).await?;
                deleted += 1;
            }
        }
        Ok(deleted)
    }

    /// [`put_shard_with_progress`](Self::put_shard_with_progress) without progress.
    pub async fn put_shard(&self, body: Bytes) -> Result<bool> {
        self.put_shard_with_progress(body, |_| {}).await
    }

    /// Validates a shard upload (it decodes, follows the upload rules of §7.3-§7.4,
    /// every xorb it references is stored, its CAS Info blocks list exactly the
    /// stored chunks and its verification hashes match them, §4.6), then stores it,
    /// registers its files and indexes its global-dedup chunks (§8.2).
    /// `Ok(true)`: new shard; `Ok(false)`: this shard was already stored (its files
    /// are registered again, which repairs an upload interrupted by a crash).
    pub async fn put_shard_with_progress(
        &self,
        body: Bytes,
        mut progress: impl FnMut(ShardProgress),
    ) -> Result<bool> {
        if body.len() > MAX_SHARD_UPLOAD_BYTES {
            return Err(Error::TooLarge {
                what: "shard",
                actual: body.len() as u64,
                limit: MAX_SHARD_UPLOAD_BYTES as u64,
            });
        }
        let shard = Shard::decode(&body).map_err(|source| Error::InvalidShard { source })?;
        shard
            .validate_for_upload()
            .map_err(|source| Error::InvalidShard { source })?;
        let referenced: Vec<MerkleHash> = {
            let mut seen = HashSet::new();
            shard
                .files
                .iter()
                .flat_map(|f| f.terms.iter().map(|t| t.xorb_hash))
                .chain(shard.xorbs.iter().map(|x| x.xorb_hash))
                .filter(|h| seen.insert(*h))
                .collect()
        };
        let total = referenced.len() as u64;
        progress(ShardProgress::Validating { verified: 0, total });
        let mut stored: HashMap<MerkleHash, StoredXorb> = HashMap::new();
        for (i, h) in referenced.iter().enumerate() {
            if let Some(meta) = self.xorb_meta(h).await? {
                stored.insert(
                    *h,
                    StoredXorb {
                        chunk_hashes: meta.chunk_hashes.clone(),
                        chunk_lengths: Some(meta.chunk_lengths.clone()),
                    },
                );
            }
            progress(ShardProgress::Validating {
                verified: i as u64 + 1,
                total,
            });
        }
        let lookup = |h: &MerkleHash| stored.get(h).cloned();
        shard
            .verify_xorbs(lookup)
            .and_then(|()| shard.verify_terms(lookup))
            .map_err(|source| match source {
                xet_format::Error::UnknownXorb { what, xorb_hash } => Error::MissingXorb {
                    xorb: xorb_hash,
                    what,
                },
                source => Error::InvalidShard { source },
            })?;

        progress(ShardProgress::Uploading);
        // The shard id: a content hash of the upload bytes (any collision-resistant
        // hash works; this one is already at hand).
        let id = xet_format::hash::chunk_hash(&body);
        let key = shard_key(&id);
        let existed = self.backend().len(&key).await?.is_some();
        if !existed {
            let now = now_secs();
            let full = shard
                .with_global_dedup_flags()
                .to_full_bytes(&FullOptions::server_stored(now))
                .map_err(|source| Error::InvalidShard { source })?;
            self.backend().put(&key, Bytes::from(full)).await?;
        }

        progress(ShardProgress::Syncing);
        // Files only now: their shard and every xorb they use are durable (§10.6).
        for f in &shard.files {
            let fk = file_key(&f.file_hash);
            if self.backend().len(&fk).await?.is_some() {
                continue;
            }
            let one = Shard::new(vec![f.clone()], Vec::new())
                .to_upload_bytes()
                .map_err(|source| Error::InvalidShard { source })?;
            self.backend().put(&fk, Bytes::from(one)).await?;
        }
        let id_text = Bytes::from(id.to_string());
        for chunk in shard.global_dedup_eligible_chunks() {
            let dk = dedup_key(&chunk);
            if self.backend().len(&dk).await?.is_none() {
                self.backend().put(&dk, id_text.clone()).await?;
            }
        }
        tracing::debug!(shard = %id, files = shard.files.len(), xorbs = shard.xorbs.len(), existed, "shard registered");
        Ok(!existed)
    }

    async fn file_info(&self, file: &MerkleHash) -> Result<Option<FileInfo>> {
        let key = file_key(file);
        let Some(bytes) = self.backend().get(&key).await? else {
            return Ok(None);
        };
        let shard = Shard::decode(&bytes).map_err(|e| Error::Corrupt {
            key: key.clone(),
            reason: e.to_string(),
        })?;
        shard.files.into_iter().next().map(Some).ok_or(Error::Corrupt {
            key,
            reason: "no file block".into(),
        })
    }

    /// The size of a registered file; `None` if unknown.
    pub async fn file_size(&self, file: &MerkleHash) -> Result<Option<u64>> {
        if *file == MerkleHash::ZERO {
            return Ok(Some(0));
        }
        Ok(self.file_info(file).await?.map(|f| f.size()))
    }

    /// The reconstruction of a registered file, whole or for an inclusive byte range
    /// (an end past the file is clamped; a start at or past it is
    /// [`Error::RangeNotSatisfiable`]).
    pub async fn reconstruction(
        &self,
        file: &MerkleHash,
        range: Option<(u64, u64)>,
    ) -> Result<Reconstruction> {
        let terms = if *file == MerkleHash::ZERO {
            // The empty file (§4.5) needs no upload to exist.
            Vec::new()
        } else {
            self.file_info(file)
                .await?
                .ok_or(Error::NotFound {
                    what: "file",
                    hash: *file,
                })?
                .terms
        };
        let mut metas = HashMap::new();
        for t in &terms {
            if metas.contains_key(&t.xorb_hash) {
                continue;
            }
            let meta = self
                .xorb_meta(&t.xorb_hash)
                .await?
                .ok_or_else(|| Error::Corrupt {
                    key: file_key(file),
                    reason: format!("references xorb {} which is not stored", t.xorb_hash),
                })?;
            metas.insert(t.xorb_hash, meta);
        }
        plan(file, &terms, &metas, range)
    }

    /// The global-dedup answer for a chunk (§8.3): a full-form shard with no files and
    /// the xorbs of the shard that registered the chunk, chunk hashes keyed; `None`
    /// if no registered shard has the chunk as an eligible one.
    pub async fn dedup_shard(&self, chunk: &MerkleHash) -> Result<Option<Bytes>> {
        let Some(id_text) = self.backend().get(&dedup_key(chunk)).await? else {
            return Ok(None);
        };
        let corrupt = |reason: String| Error::Corrupt {
            key: dedup_key(chunk),
            reason,
        };
        let id: MerkleHash = std::str::from_utf8(&id_text)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| corrupt("not a shard id".into()))?;
        let key = shard_key(&id);
        let bytes = self
            .backend()
            .get(&key)
            .await?
            .ok_or_else(|| corrupt(format!("shard {id} is not stored")))?;
        let shard = Shard::decode(&bytes).map_err(|e| Error::Corrupt {
            key: key.clone(),
            reason: e.to_string(),
        })?;
        // A key per shard: it need not be secret (it travels in the answer), only
        // different between shards, so that keyed hashes of one answer say nothing
        // about another's (§8.3).
        let hmac_key = *xet_format::hash::keyed_chunk_hash(&[0x5a; 32], &id).as_bytes();
        let now = now_secs();
        let answer = shard
            .dedup_response(hmac_key, now, now + DEDUP_KEY_TTL_SECS)
            .and_then(|s| s.to_bytes())
            .map_err(|e| Error::Corrupt {
                key,
                reason: e.to_string(),
            })?;
        Ok(Some(Bytes::from(answer)))
    }

    /// Hashes of every stored xorb (for checks and tools; walks the backend).
    pub async fn list_xorbs(&self) -> Result<Vec<MerkleHash>> {
        Ok(self
            .backend()
            .list("xorbs")
            .await?
            .iter()
            .filter_map(|k| k.rsplit('/').next()?.parse().ok())
            .collect())
    }

    /// Hashes of every registered file.
    pub async fn list_files(&self) -> Result<Vec<MerkleHash>> {
        Ok(self
            .backend()
            .list("files")
            .await?
            .iter()
            .filter_map(|k| k.rsplit('/').next()?.parse().ok())
            .collect())
    }
}
