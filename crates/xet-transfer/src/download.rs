//! The download session (§9, §13.2): reconstruction -> fetch ranges (chunk cache
//! first) -> decode -> verify -> write at offsets -> atomic rename.
//!
//! # Integrity
//!
//! Every term's decoded length must equal its `unpacked_length` (§9.5). For a
//! whole-file download the chunk hashes of everything written are aggregated into
//! the file hash and compared with the one asked for; only then is the temporary
//! file renamed into place. A mismatch (a corrupt body that still decoded) drops
//! the cache entries involved and downloads once more, bypassing the cache, before
//! giving up. A byte range cannot be checked against the file hash; it gets the
//! structural checks only.
//!
//! # Resume
//!
//! Data goes to `OUT.xetpart`; a journal `OUT.xetpart.log` records, after the data
//! was synced, which terms are complete. A new download of the same file and range
//! to the same path reuses them (re-reading and re-hashing them from disk for the
//! final check) and fetches only the rest.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::Semaphore;
use xet_format::api::{ReconstructionV2, XorbMultiRangeFetch};
use xet_format::chunker::Chunker;
use xet_format::hash::{chunk_hash, file_hash, HashedLength};
use xet_format::xorb::{ChunkRecords, CompressionScheme};
use xet_format::MerkleHash;

use crate::cache::ChunkCache;
use crate::cas::Cas;
use crate::progress::{NoProgress, ProgressUpdate, SharedProgress};
use crate::{CancellationToken, Config, Error, Result};

/// Bytes of decoded data synced between two journal checkpoints.
const CHECKPOINT_BYTES: u64 = 64 << 20;

/// What a finished download reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DownloadReport {
    /// Bytes written.
    pub bytes: u64,
    /// Bytes fetched from the server (compressed, as sent).
    pub fetched_bytes: u64,
    /// Range fetches served by the chunk cache.
    pub cache_hits: u64,
    /// Bytes already on disk from an interrupted download.
    pub resumed_bytes: u64,
    /// Whether the file hash was verified (whole-file downloads).
    pub verified: bool,
}

/// Downloads files (whole or byte ranges) from a CAS.
pub struct DownloadSession {
    cas: Arc<dyn Cas>,
    config: Config,
    cache: Option<Arc<ChunkCache>>,
    progress: SharedProgress,
    cancel: CancellationToken,
    /// Index of the next file, for progress reports.
    next_file: AtomicU64,
    /// Bytes written over every file, as last reported per file.
    processed: AtomicU64,
    /// Σ the sizes of the files planned so far.
    total: AtomicU64,
    /// Bytes fetched from the server over every file.
    transferred: AtomicU64,
}

/// One file's progress: what was last reported for it, so that the session totals
/// stay right when a download restarts (verification failure, expired URLs).
struct FileProgress {
    index: usize,
    name: String,
    /// Output length, once the reconstruction is planned.
    total: OnceLock<u64>,
    processed: AtomicU64,
    /// Xorb bytes fetched over the network for this file.
    transferred: AtomicU64,
}

impl std::fmt::Debug for DownloadSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DownloadSession")
            .field("cas", &self.cas)
            .finish_non_exhaustive()
    }
}

/// One term placed in the output.
#[derive(Debug, Clone)]
struct PlacedTerm {
    xorb: MerkleHash,
    start: u32,
    end: u32,
    /// Offset of the term's first byte in the untrimmed concatenation.
    virt: u64,
    len: u64,
}

/// A unit of fetching: one range of one fetch entry and the terms it serves.
struct Unit {
    xorb: MerkleHash,
    fetch: Arc<XorbMultiRangeFetch>,
    range_index: usize,
    terms: Vec<usize>,
}

struct Plan {
    terms: Vec<PlacedTerm>,
    units: Vec<Unit>,
    /// Untrimmed bytes to skip at the front.
    skip: u64,
    /// Output length.
    out_len: u64,
}

struct Shared {
    file: File,
    /// Held while writing to `file`.
    write_lock: Mutex<()>,
    path: PathBuf,
    /// Per term: chunk (hash, len) list, once written.
    hashes: Mutex<Vec<Option<Vec<HashedLength>>>>,
    /// Terms written since the last checkpoint.
    pending: Mutex<Vec<usize>>,
    journal: Mutex<File>,
    since_checkpoint: AtomicU64,
    written: AtomicU64,
    fetched: AtomicU64,
    cache_hits: AtomicU64,
    used_cache: Mutex<Vec<(MerkleHash, u32, u32)>>,
    /// Whole-file download: the file hash is checked at the end.
    verify: bool,
    /// The file is synced before the rename: start its writeback as it is written.
    sync: bool,
}

impl DownloadSession {
    /// A session over `cas`, with the chunk cache if `config` enables one.
    pub fn new(cas: Arc<dyn Cas>, config: Config) -> Result<Self> {
        let cache = match config.chunk_cache_dir() {
            Some(d) => Some(Arc::new(ChunkCache::open(d, config.chunk_cache_size)?)),
            None => None,
        };
        Ok(DownloadSession {
            cas,
            config,
            cache,
            progress: Arc::new(NoProgress),
            cancel: CancellationToken::new(),
            next_file: AtomicU64::new(0),
            processed: AtomicU64::new(0),
            total: AtomicU64::new(0),
            transferred: AtomicU64::new(0),
        })
    }

    /// Reports progress to `sink`.
    pub fn with_progress(mut self, sink: SharedProgress) -> Self {
        self.progress = sink;
        self
    }

    /// Stops when `token` is cancelled.
    pub fn with_cancellation(mut self, token: CancellationToken) -> Self {
        self.cancel = token;
        self
    }

    /// Downloads `file` (or the inclusive byte `range` of it) into memory. Progress
    /// reports name the file by its hash.
    pub async fn download_bytes(&self, file: &MerkleHash, range: Option<(u64, u64)>) -> Result<Vec<u8>> {
        let dir = tempfile_dir()?;
        let out = dir.join("out");
        let res = self
            .download_named(file, None, &out, range, file.to_string())
            .await;
        let data = res.and_then(|_| std::fs::read(&out).map_err(|e| Error::io("reading", &out, e)));
        let _ = std::fs::remove_dir_all(&dir);
        data
    }

    /// Downloads `file` (or the inclusive byte `range` of it) to `out`, atomically:
    /// `out` appears only once complete and verified. Progress reports name the
    /// file by `out`; several downloads may run at once on one session.
    pub async fn download_to_path(
        &self,
        file: &MerkleHash,
        out: &Path,
        range: Option<(u64, u64)>,
    ) -> Result<DownloadReport> {
        self.download_named(file, None, out, range, out.display().to_string())
            .await
    }

    /// [`download_to_path`](Self::download_to_path) of a file whose size the caller
    /// knows (from an LFS pointer, the Hub, a manifest): for a whole-file download,
    /// a file of another size fails with [`Error::SizeMismatch`] as soon as the
    /// reconstruction is known, before anything is fetched or written, so `out`
    /// never holds a verified file of the wrong size. `None`, or a `range`, skips the
    /// check: a range's reconstruction does not give the file's length (a range past
    /// the end fails with [`Error::RangeNotSatisfiable`]).
    pub async fn download_to_path_sized(
        &self,
        file: &MerkleHash,
        size: Option<u64>,
        out: &Path,
        range: Option<(u64, u64)>,
    ) -> Result<DownloadReport> {
        self.download_named(file, size, out, range, out.display().to_string())
            .await
    }

    async fn download_named(
        &self,
        file: &MerkleHash,
        size: Option<u64>,
        out: &Path,
        range: Option<(u64, u64)>,
        name: String,
    ) -> Result<DownloadReport> {
        let fp = FileProgress {
            index: self.next_file.fetch_add(1, Ordering::Relaxed) as usize,
            name,
            total: OnceLock::new(),
            processed: AtomicU64::new(0),
            transferred: AtomicU64::new(0),
        };
        // The size is checked only for whole files.
        let expected = size.filter(|_| range.is_none());
        let report = self.download_file(file, expected, out, range, &fp).await?;
        // The last report says "done" even when nothing was left to fetch (a
        // finished resume, the empty file).
        self.set_file_total(&fp, report.bytes);
        self.report(&fp, report.bytes);
        Ok(report)
    }

    fn set_file_total(&self, fp: &FileProgress, len: u64) {
        if fp.total.set(len).is_ok() {
            self.total.fetch_add(len, Ordering::Relaxed);
        }
    }

    /// Reports `processed` bytes of a file and the session totals.
    fn report(&self, fp: &FileProgress, processed: u64) {
        let prev = fp.processed.swap(processed, Ordering::Relaxed);
        if processed >= prev {
            self.processed.fetch_add(processed - prev, Ordering::Relaxed);
        } else {
            self.processed.fetch_sub(prev - processed, Ordering::Relaxed);
        }
        self.progress.update(ProgressUpdate::File {
            index: fp.index,
            name: fp.name.clone(),
            processed,
            total: fp.total.get().copied(),
            deduped: 0,
            transferred: fp.transferred.load(Ordering::Relaxed),
        });
        self.progress.update(ProgressUpdate::Total {
            processed: self.processed.load(Ordering::Relaxed),
            total: Some(self.total.load(Ordering::Relaxed)),
            transferred: self.transferred.load(Ordering::Relaxed),
            deduped: 0,
        });
    }

    async fn download_file(
        &self,
        file: &MerkleHash,
        expected: Option<u64>,
        out: &Path,
        range: Option<(u64, u64)>,
        fp: &FileProgress,
    ) -> Result<DownloadReport> {
        if let Some((s, e)) = range {
            if e < s {
                return Err(Error::Config(format!("byte range {s}-{e} ends before it starts")));
            }
        }
        let part = with_suffix(out, ".xetpart");
        let log = with_suffix(out, ".xetpart.log");
        // §13.2 step 6: the empty file needs no server.
        if *file == MerkleHash::ZERO {
            if range.is_some() {
                return Err(Error::RangeNotSatisfiable {
                    file: *file,
                    start: range.map_or(0, |r| r.0),
                });
            }
            check_size(file, expected, 0)?;
            write_atomically(out, &part)?;
            return Ok(DownloadReport {
                verified: true,
                ..DownloadReport::default()
            });
        }
        let mut use_cache = true;
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self
                .download_once(file, expected, out, &part, &log, range, use_cache, fp)
                .await
            {
                Err(Error::Corrupt { what }) if use_cache => {
                    tracing::warn!(file = %file, %what, "download failed verification; retrying without cache");
                    let _ = std::fs::remove_file(&part);
                    let _ = std::fs::remove_file(&log);
                    use_cache = false;
                }
                // §9.4: a 403 from a transfer URL means its signature expired: ask
                // for a fresh reconstruction; terms already written are kept
                // (journaled) and not fetched again.
                Err(Error::Unauthorized { status: 403, op, .. }) if attempt < 3 => {
                    tracing::info!(%op, "transfer URL refused (expired?); refreshing the reconstruction");
                }
                Err(e @ Error::Corrupt { .. }) => {
                    let _ = std::fs::remove_file(&part);
                    let _ = std::fs::remove_file(&log);
                    return Err(e);
                }
                other => return other,
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn download_once(
        &self,
        file: &MerkleHash,
        expected: Option<u64>,
        out: &Path,
        part: &Path,
        log: &Path,
        range: Option<(u64, u64)>,
        use_cache: bool,
        fp: &FileProgress,
    ) -> Result<DownloadReport> {
        let recon = self.cancel.run(self.cas.reconstruction(file, range)).await?;
        let plan = plan(&recon, range)?;
        // Before the part file is opened: a wrong size leaves nothing behind, and
        // an earlier interrupted download to `out` keeps its resume data.
        check_size(file, expected, plan.out_len)?;
        self.set_file_total(fp, plan.out_len);
        let header = format!(
            "xet-resume v1 {file} {} {}",
            range.map_or("-".to_string(), |(s, e)| format!("{s}-{e}")),
            plan.out_len
        );
        let done = read_journal(log, &header, plan.terms.len());
        let resuming = !done.is_empty() && part.exists();
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(!resuming)
            .open(part)
            .map_err(|e| Error::io("creating", part, e))?;
        f.set_len(plan.out_len)
            .map_err(|e| Error::io("sizing", part, e))?;
        let mut journal = OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|e| Error::io("creating", log, e))?;
        if !resuming {
            journal.set_len(0).map_err(|e| Error::io("resetting", log, e))?;
            writeln!(journal, "{header}").map_err(|e| Error::io("writing", log, e))?;
        }
        let shared = Arc::new(Shared {
            file: f,
            write_lock: Mutex::new(()),
            path: part.to_path_buf(),
            hashes: Mutex::new(vec![None; plan.terms.len()]),
            pending: Mutex::new(Vec::new()),
            journal: Mutex::new(journal),
            since_checkpoint: AtomicU64::new(0),
            written: AtomicU64::new(0),
            fetched: AtomicU64::new(0),
            cache_hits: AtomicU64::new(0),
            used_cache: Mutex::new(Vec::new()),
            verify: range.is_none(),
            sync: self.config.sync_downloads,
        });
        let verify = range.is_none();
        // Resumed terms: re-hash from disk (whole files only: a term starts at a
        // chunk boundary and chunking restarts there, §3.2, so re-chunking its bytes
        // gives its chunks).
        let mut resumed = 0u64;
        if resuming {
            for &t in &done {
                let pt = &plan.terms[t];
                let (lo, hi) = clip(pt.virt, pt.len, plan.skip, plan.out_len);
                resumed += hi - lo;
                if verify {
                    let hs = rehash(&shared.file, lo - plan.skip, hi - lo)
                        .map_err(|e| Error::io("reading", part, e))?;
                    shared.hashes.lock().unwrap()[t] = Some(hs);
                } else {
                    shared.hashes.lock().unwrap()[t] = Some(Vec::new());
                }
            }
            shared.written.fetch_add(resumed, Ordering::Relaxed);
            tracing::info!(bytes = resumed, "resuming download");
        }
        // Indices, not `&Unit`: mapping references into the stream below makes
        // this future fail `Send` for `tokio::spawn` ("implementation of `FnOnce`
        // is not general enough", rust-lang/rust#89976), and callers spawn downloads.
        let todo: Vec<usize> = (0..plan.units.len())
            .filter(|&i| plan.units[i].terms.iter().any(|t| !done.contains(t)))
            .collect();
        // Memory bound: fetched-but-unwritten data is at most this many bytes.
        let budget = (self.config.download_concurrency as u64 * (16 << 20)).max(128 << 20);
        let memory = Arc::new(Semaphore::new(budget as usize));
        let plan_ref = &plan;
        let results = futures::stream::iter(todo.into_iter().map(|i| {
            let shared = shared.clone();
            let memory = memory.clone();
            async move {
                let u = &plan_ref.units[i];
                let r = &u.fetch.ranges[u.range_index];
                let want = (r.bytes.end - r.bytes.start + 1).min(budget) as u32;
                let _permit = memory.acquire_many(want).await.map_err(|_| Error::Cancelled)?;
                self.run_unit(plan_ref, u, &shared, verify, use_cache, fp).await
            }
        }))
        .buffer_unordered(self.config.download_concurrency.max(1));
        let mut results = std::pin::pin!(results);
        while let Some(r) = self.cancel.run(async { Ok(results.next().await) }).await? {
            if let Err(e) = r {
                // Keep what is done for a later resume, then report.
                let _ = checkpoint(&shared);
                if matches!(e, Error::Corrupt { .. }) {
                    self.drop_used_cache(&shared);
                }
                return Err(e);
            }
        }
        checkpoint(&shared)?;
        if verify {
            let hashes = shared.hashes.lock().unwrap();
            let all: Vec<HashedLength> = hashes.iter().flatten().flatten().copied().collect();
            let actual = file_hash(&all);
            if actual != *file {
                drop(hashes);
                self.drop_used_cache(&shared);
                return Err(Error::corrupt(format!(
                    "downloaded data hashes to {actual}, expected file {file}"
                )));
            }
        }
        if self.config.sync_downloads {
            shared
                .file
                .sync_all()
                .map_err(|e| Error::io("syncing", part, e))?;
        }
        std::fs::rename(part, out).map_err(|e| Error::io("renaming into place", out, e))?;
        let _ = std::fs::remove_file(log);
        Ok(DownloadReport {
            bytes: plan.out_len,
            fetched_bytes: shared.fetched.load(Ordering::Relaxed),
            cache_hits: shared.cache_hits.load(Ordering::Relaxed),
            resumed_bytes: resumed,
            verified: verify,
        })
    }

    fn drop_used_cache(&self, shared: &Shared) {
        if let Some(cache) = &self.cache {
            for (x, s, e) in shared.used_cache.lock().unwrap().drain(..) {
                cache.remove(&x, s, e);
            }
        }
    }

    /// Fetches (or reads from cache) one range, decodes it and writes its terms.
    async fn run_unit(
        &self,
        plan: &Plan,
        u: &Unit,
        shared: &Arc<Shared>,
        verify: bool,
        use_cache: bool,
        fp: &FileProgress,
    ) -> Result<()> {
        let r = &u.fetch.ranges[u.range_index];
        let (cs, ce) = (r.chunks.start, r.chunks.end);
        let cached = match (&self.cache, use_cache) {
            (Some(c), true) => {
                let c = c.clone();
                let x = u.xorb;
                tokio::task::spawn_blocking(move || c.get(&x, cs, ce))
                    .await
                    .ok()
                    .flatten()
            }
            _ => None,
        };
        let (first, raw, from_cache) = match cached {
            Some((first, raw)) => {
                shared.cache_hits.fetch_add(1, Ordering::Relaxed);
                shared.used_cache.lock().unwrap().push((u.xorb, cs, ce));
                (first, raw, true)
            }
            None => {
                let one = XorbMultiRangeFetch {
                    url: u.fetch.url.clone(),
                    ranges: vec![r.clone()],
                };
                // Several ranges of one fetch entry share a URL; fetching them one by
                // one keeps each unit independent (retries, cache entries).
                let raw = self.cancel.run(self.cas.fetch_ranges(&u.xorb, &one)).await?;
                let raw = raw
                    .into_iter()
                    .next()
                    .ok_or_else(|| Error::corrupt(format!("no data for xorb {}", u.xorb)))?;
                shared.fetched.fetch_add(raw.len() as u64, Ordering::Relaxed);
                self.transferred.fetch_add(raw.len() as u64, Ordering::Relaxed);
                fp.transferred.fetch_add(raw.len() as u64, Ordering::Relaxed);
                (cs, raw, false)
            }
        };
        // Decode + hash + write on a blocking thread.
        let terms: Vec<(usize, PlacedTerm)> = u.terms.iter().map(|&t| (t, plan.terms[t].clone())).collect();
        let sh = shared.clone();
        let (skip, out_len) = (plan.skip, plan.out_len);
        let xorb = u.xorb;
        let raw2 = raw.clone();
        let written = tokio::task::spawn_blocking(move || -> Result<u64> {
            let chunks = decode_range(&raw2, first, cs, ce)
                .map_err(|e| Error::corrupt(format!("xorb {xorb} chunks {cs}..{ce}: {e}")))?;
            let mut written = 0;
            let mut done = Vec::new();
            // (output offset, bytes) to write once the unit is checked and hashed.
            let mut pieces: Vec<(u64, &[u8])> = Vec::new();
            for (ti, t) in terms {
                if sh.hashes.lock().unwrap()[ti].is_some() {
                    continue; // resumed
                }
                let sel = chunks
                    .get((t.start - cs) as usize..(t.end - cs) as usize)
                    .ok_or_else(|| Error::corrupt(format!("term {ti} outside its fetch range")))?;
                let len: u64 = sel.iter().map(|c| c.len() as u64).sum();
                if len != t.len {
                    return Err(Error::corrupt(format!(
                        "term {ti} of xorb {xorb} decodes to {len} bytes, expected {}",
                        t.len
                    )));
                }
                let mut hs = Vec::new();
                let mut pos = t.virt;
                for c in sel {
                    if verify {
                        hs.push((chunk_hash(c), c.len() as u64));
                    }
                    let (lo, hi) = clip(pos, c.len() as u64, skip, out_len);
                    if hi > lo {
                        pieces.push((lo - skip, &c[(lo - pos) as usize..(hi - pos) as usize]));
                        written += hi - lo;
                    }
                    pos += c.len() as u64;
                }
                done.push((ti, hs));
            }
            // One writer at a time: concurrent writes to one file serialize on its
            // inode lock in the kernel anyway, where the waiters spin (measured: a
            // tenth of a warm download's CPU); here they sleep.
            {
                let _writer = sh.write_lock.lock().unwrap_or_else(|p| p.into_inner());
                for &(at, piece) in &pieces {
                    sh.file
                        .write_all_at(piece, at)
                        .map_err(|e| Error::io("writing", &sh.path, e))?;
                }
            }
            if sh.sync {
                for (at, n) in crate::writeback::runs(pieces.iter().map(|&(a, p)| (a, p.len() as u64))) {
                    crate::writeback::start(&sh.file, at, n);
                }
            }
            for (ti, hs) in done {
                sh.hashes.lock().unwrap()[ti] = Some(hs);
                sh.pending.lock().unwrap().push(ti);
            }
            Ok(written)
        })
        .await
        .map_err(|e| Error::Config(format!("decoder thread failed: {e}")))??;
        if !from_cache {
            if let Some(c) = &self.cache {
                let c = c.clone();
                let x = u.xorb;
                // A cache write failure (disk full, read-only) costs only a refetch later.
                let _ = tokio::task::spawn_blocking(move || {
                    if let Err(e) = c.put(&x, cs, ce, &raw) {
                        tracing::debug!(error = %e, "chunk cache write failed");
                    }
                })
                .await;
            }
        }
        let total = shared.written.fetch_add(written, Ordering::Relaxed) + written;
        if shared.since_checkpoint.fetch_add(written, Ordering::Relaxed) + written >= CHECKPOINT_BYTES {
            shared.since_checkpoint.store(0, Ordering::Relaxed);
            let sh = shared.clone();
            tokio::task::spawn_blocking(move || checkpoint(&sh))
                .await
                .map_err(|e| Error::Config(format!("checkpoint failed: {e}")))??;
        }
        self.report(fp, total);
        Ok(())
    }
}

/// The caller's expected size of a whole file against its actual one.
fn check_size(file: &MerkleHash, expected: Option<u64>, actual: u64) -> Result<()> {
    match expected {
        Some(expected) if expected != actual => Err(Error::SizeMismatch {
            file: *file,
            expected,
            actual,
        }),
        _ => Ok(()),
    }
}

/// Journals the terms written since the last call.
fn checkpoint(sh: &Shared) -> Result<()> {
    let pending: Vec<usize> = std::mem::take(&mut *sh.pending.lock().unwrap());
    if pending.is_empty() {
        return Ok(());
    }
    // For a byte range, sync the data before journaling it: nothing checks resumed
    // bytes later. A whole file needs no sync here: resumed terms are re-hashed
    // from disk and the file hash must match, so data lost in an OS crash after its
    // journal line is caught (and the download restarted) rather than trusted.
    if !sh.verify {
        sh.file
            .sync_data()
            .map_err(|e| Error::io("syncing", &sh.path, e))?;
    }
    let mut j = sh.journal.lock().unwrap();
    let line: String = pending.iter().map(|t| format!("{t}\n")).collect();
    j.write_all(line.as_bytes())
        .and_then(|_| j.flush())
        .map_err(|e| Error::io("writing", &sh.path, e))
}

/// Term indices recorded in a journal whose header matches.
fn read_journal(log: &Path, header: &str, n_terms: usize) -> std::collections::BTreeSet<usize> {
    let mut done = std::collections::BTreeSet::new();
    let Ok(f) = File::open(log) else { return done };
    let mut lines = std::io::BufReader::new(f).lines();
    if lines.next().and_then(|l| l.ok()).as_deref() != Some(header) {
        return done;
    }
    for l in lines.map_while(|l| l.ok()) {
        if let Ok(t) = l.trim().parse::<usize>() {
            if t < n_terms {
                done.insert(t);
            }
        }
    }
    done
}

/// The chunks (hash, len) of `len` bytes at `offset` of `f`.
fn rehash(f: &File, offset: u64, len: u64) -> std::io::Result<Vec<HashedLength>> {
    let mut data = vec![0u8; len as usize];
    f.read_exact_at(&mut data, offset)?;
    let mut out = Vec::new();
    let mut chunker = Chunker::new();
    let mut pos = 0;
    let mut start = 0;
    while let Some(n) = chunker.next_boundary(&data[pos..]) {
        pos += n;
        out.push((chunk_hash(&data[start..pos]), (pos - start) as u64));
        start = pos;
    }
    if start < data.len() {
        out.push((chunk_hash(&data[start..]), (data.len() - start) as u64));
    }
    Ok(out)
}

/// Decodes the chunk records in `raw` (whose first record is chunk `first`) and
/// returns chunks `[cs, ce)`. Chunks stored uncompressed are slices of `raw`, not
/// copies: incompressible data (most model weights) costs no decode at all.
fn decode_range(raw: &Bytes, first: u32, cs: u32, ce: u32) -> Result<Vec<Bytes>> {
    let mut out = Vec::with_capacity((ce - cs) as usize);
    for (idx, rec) in (first..).zip(ChunkRecords::new(raw)) {
        if idx >= ce {
            break;
        }
        let rec = rec?;
        if idx >= cs {
            let stored = rec.header.scheme == CompressionScheme::None
                && rec.payload.len() == rec.header.uncompressed_len as usize;
            out.push(if stored {
                raw.slice_ref(rec.payload)
            } else {
                Bytes::from(rec.decode()?)
            });
        }
    }
    if out.len() != (ce - cs) as usize {
        return Err(Error::corrupt(format!(
            "range holds {} of the {} chunks expected",
            out.len(),
            ce - cs
        )));
    }
    Ok(out)
}

/// The part of `[pos, pos+len)` inside the output window `[skip, skip+out_len)`.
fn clip(pos: u64, len: u64, skip: u64, out_len: u64) -> (u64, u64) {
    let lo = pos.max(skip);
    let hi = (pos + len).min(skip + out_len);
    (lo, hi.max(lo))
}

/// Places terms and groups them into fetch units.
fn plan(recon: &ReconstructionV2, range: Option<(u64, u64)>) -> Result<Plan> {
    let mut terms = Vec::with_capacity(recon.terms.len());
    let mut virt = 0u64;
    for t in &recon.terms {
        if t.range.end <= t.range.start {
            return Err(Error::protocol(
                "reconstruction",
                "a term has an empty chunk range",
            ));
        }
        terms.push(PlacedTerm {
            xorb: t.hash,
            start: t.range.start,
            end: t.range.end,
            virt,
            len: u64::from(t.unpacked_length),
        });
        virt += u64::from(t.unpacked_length);
    }
    let skip = recon.offset_into_first_range;
    let mut out_len = virt.saturating_sub(skip);
    if let Some((s, e)) = range {
        out_len = out_len.min(e - s + 1);
    }
    // Each term goes to the first range of its xorb that contains it (§9.3).
    let mut units: Vec<Unit> = Vec::new();
    let mut unit_of: BTreeMap<(MerkleHash, usize, usize), usize> = BTreeMap::new();
    let fetches: BTreeMap<MerkleHash, Vec<Arc<XorbMultiRangeFetch>>> = recon
        .xorbs
        .iter()
        .map(|(h, fs)| (*h, fs.iter().cloned().map(Arc::new).collect()))
        .collect();
    for (ti, t) in terms.iter().enumerate() {
        // Terms wholly outside the output window need not be fetched.
        let (lo, hi) = clip(t.virt, t.len, skip, out_len);
        if hi <= lo && t.len > 0 {
            continue;
        }
        let fs = fetches
            .get(&t.xorb)
            .ok_or_else(|| Error::protocol("reconstruction", format!("no fetch info for xorb {}", t.xorb)))?;
        let found = fs.iter().enumerate().find_map(|(fi, f)| {
            f.ranges
                .iter()
                .position(|r| r.chunks.start <= t.start && t.end <= r.chunks.end)
                .map(|ri| (fi, ri))
        });
        let (fi, ri) = found.ok_or_else(|| {
            Error::protocol(
                "reconstruction",
                format!(
                    "no fetch range covers chunks {}..{} of xorb {}",
                    t.start, t.end, t.xorb
                ),
            )
        })?;
        let key = (t.xorb, fi, ri);
        let ui = *unit_of.entry(key).or_insert_with(|| {
            units.push(Unit {
                xorb: t.xorb,
                fetch: fs[fi].clone(),
                range_index: ri,
                terms: Vec::new(),
            });
            units.len() - 1
        });
        units[ui].terms.push(ti);
    }
    Ok(Plan {
        terms,
        units,
        skip,
        out_len,
    })
}

fn with_suffix(p: &Path, suffix: &str) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Creates an empty file at `out` atomically.
fn write_atomically(out: &Path, part: &Path) -> Result<()> {
    let f = File::create(part).map_err(|e| Error::io("creating", part, e))?;
    f.sync_all().map_err(|e| Error::io("syncing", part, e))?;
    std::fs::rename(part, out).map_err(|e| Error::io("renaming into place", out, e))
}

fn tempfile_dir() -> Result<PathBuf> {
    static N: AtomicU64 = AtomicU64::new(0);
    let d = std::env::temp_dir().join(format!(
        "xet-dl-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&d).map_err(|e| Error::io("creating", &d, e))?;
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_window() {
        assert_eq!(clip(0, 10, 3, 4), (3, 7));
        assert_eq!(clip(10, 10, 3, 4), (10, 10));
        assert_eq!(clip(0, 10, 0, 100), (0, 10));
    }

    #[test]
    fn rehash_matches_digest() {
        let data: Vec<u8> = (0..400_000u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        let dir = std::env::temp_dir().join(format!("xet-rehash-{}", std::process::id()));
        std::fs::write(&dir, &data).unwrap();
        let f = File::open(&dir).unwrap();
        let hs = rehash(&f, 0, data.len() as u64).unwrap();
        assert_eq!(hs, xet_format::digest_slice(&data, false, 1).chunks);
        let _ = std::fs::remove_file(&dir);
    }
}
