//! The upload session (§13.1): read -> chunk -> dedup (session, shard cache,
//! global query) -> pack xorbs -> upload xorbs -> upload the shard.
//!
//! # Pipeline and memory
//!
//! Each file is read and chunked on a blocking thread (gear hash, chunk hashes and
//! SHA-256 in one pass over each 8 MiB block); the chunks go through a bounded
//! channel to the dedup stage, so reading never runs far ahead. Files added
//! concurrently are chunked in parallel. New chunks are appended to the session's
//! open xorb as zero-copy slices of the read blocks; a full xorb is compressed and
//! uploaded by its own task (at most `upload_concurrency` at once). Every byte of
//! new chunk data holds a permit of a semaphore sized `upload_buffer_bytes` from
//! the moment it is chunked until its xorb is uploaded, so memory stays bounded
//! whatever the input size and however slow the server.
//!
//! The shard is built and sent by [`UploadSession::finish`], after every xorb it
//! references has been stored (§10.6).

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use xet_format::chunker::Chunker;
use xet_format::hash::{chunk_hash, xorb_hash, HashedLength, Sha256Hasher};
use xet_format::shard::{ChunkLookup, FileTerm, Shard, ShardBuilder};
use xet_format::xorb::{compress_chunk, SchemeSelector, MAX_XORB_BYTES, MAX_XORB_CHUNKS};
use xet_format::{AlignedBuf, MerkleHash};

use xet_format::bufpool::Pool;

use crate::cache::ShardCache;
use crate::cas::{Cas, XorbBody};
use crate::progress::{NoProgress, ProgressUpdate, SharedProgress};
use crate::{CancellationToken, CompressionPolicy, Config, Error, Result};

/// Bytes read per block: large enough to keep syscalls and channel traffic cheap,
/// small enough that a few blocks in flight cost little memory.
const READ_BLOCK: usize = 2 << 20;
/// Batches in flight between a file's reader thread and its dedup stage (each
/// hashed by its own task meanwhile, so this is also how many blocks are hashed at
/// once).
const BATCHES_IN_FLIGHT: usize = 4;
/// A block's chunks, being hashed ((chunk hash, chunk bytes) in file order), and the
/// memory permits that cover their bytes.
type HashedBatch = (
    tokio::task::JoinHandle<Vec<(MerkleHash, Bytes)>>,
    OwnedSemaphorePermit,
);
/// §8.4 fragmentation prevention (xet-core's defaults): target chunks per term,
/// hysteresis factor, and how many recent terms the average is taken over.
const MIN_CHUNKS_PER_TERM: f64 = 8.0;
const HYSTERESIS: f64 = 0.5;
const DEFRAG_WINDOW: usize = 128;

/// What the session reports for one uploaded file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileUpload {
    /// The name given (the path for files).
    pub name: String,
    /// The Xet file hash (file ID, §4.5).
    pub file_hash: MerkleHash,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the contents, unless skipped.
    pub sha256: Option<[u8; 32]>,
    /// Bytes of this file found already stored (session, cache or server).
    pub deduped_bytes: u64,
    /// Bytes of this file that were new.
    pub new_bytes: u64,
}

/// Totals of a finished session.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UploadReport {
    /// The files, in the order they were added.
    pub files: Vec<FileUpload>,
    /// Bytes of all files.
    pub total_bytes: u64,
    /// Bytes found already stored.
    pub deduped_bytes: u64,
    /// Bytes that were new (before compression).
    pub new_bytes: u64,
    /// Xorbs sent.
    pub xorbs_uploaded: u64,
    /// Of those, xorbs the server already had.
    pub xorbs_already_present: u64,
    /// Serialized xorb bytes sent.
    pub xorb_bytes_uploaded: u64,
    /// Shards sent.
    pub shards_uploaded: u64,
    /// Global-dedup queries made, and how many found something.
    pub dedup_queries: u64,
    /// Global-dedup queries that returned a shard.
    pub dedup_query_hits: u64,
}

/// Where the SHA-256 of a file comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sha256Source {
    /// Compute it while chunking (if the session's config asks for SHA-256).
    Compute,
    /// Skip it: no SHA-256 in the shard (fine for Storage Buckets, not for Git repos).
    Skip,
    /// The caller knows it already (e.g. the LFS oid).
    Given([u8; 32]),
}

/// A xorb reference in a term: a xorb being filled (by session slot number) or a
/// stored one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum XorbRef {
    Pending(u64),
    Known(MerkleHash),
}

#[derive(Debug, Clone, Copy)]
struct Loc {
    xorb: XorbRef,
    index: u32,
}

#[derive(Debug, Clone, Copy)]
struct Term {
    xorb: XorbRef,
    start: u32,
    end: u32,
    bytes: u64,
}

/// The xorb being filled.
#[derive(Default)]
struct OpenXorb {
    slot: u64,
    chunks: Vec<(MerkleHash, Bytes)>,
    /// Indices where a new file's chunks start (the `auto` policy re-decides there).
    file_starts: Vec<usize>,
    raw_len: u64,
    permits: Vec<OwnedSemaphorePermit>,
    /// The files whose new chunks it holds, with their raw bytes in it, in order.
    files: Vec<(Arc<FileStats>, u64)>,
}

/// One file's progress counters, shared with the uploads of the xorbs holding its
/// new chunks.
#[derive(Debug)]
struct FileStats {
    index: usize,
    name: String,
    total: Option<u64>,
    processed: AtomicU64,
    deduped: AtomicU64,
    transferred: AtomicU64,
}

impl FileStats {
    fn new(index: usize, name: String, total: Option<u64>) -> Self {
        FileStats {
            index,
            name,
            total,
            processed: AtomicU64::new(0),
            deduped: AtomicU64::new(0),
            transferred: AtomicU64::new(0),
        }
    }

    fn update(&self) -> ProgressUpdate {
        ProgressUpdate::File {
            index: self.index,
            name: self.name.clone(),
            processed: self.processed.load(Ordering::Relaxed),
            total: self.total,
            deduped: self.deduped.load(Ordering::Relaxed),
            transferred: self.transferred.load(Ordering::Relaxed),
        }
    }
}

/// `len` bytes split in proportion to `raw` (the last share takes the rounding
/// remainder, so the shares sum to `len`).
fn shares(len: u64, raw: &[u64]) -> Vec<u64> {
    let total: u128 = raw.iter().map(|&r| u128::from(r)).sum();
    let mut out: Vec<u64> = raw
        .iter()
        .map(|r| {
            (u128::from(len) * u128::from(*r))
                .checked_div(total)
                .map_or(0, |v| v as u64)
        })
        .collect();
    let given: u64 = out.iter().sum();
    if let Some(last) = out.last_mut() {
        *last += len - given;
    }
    out
}

/// The body of a xorb of `chunks` (in order; a new file's chunks begin at each
/// index of `file_starts`, where the `auto` policy decides afresh, §6.3), byte for
/// byte what [`XorbBuilder`](xet_format::xorb::XorbBuilder) writes, as pieces: headers and compressed payloads
/// gathered in runs, and each chunk stored as is (it did not get smaller) as the
/// slice of its read block that it already is. No copy of the data: it stays where
/// it was read until the upload is done, and no second buffer holds it.
fn xorb_body(
    policy: CompressionPolicy,
    chunks: Vec<(MerkleHash, Bytes)>,
    file_starts: &[usize],
) -> Result<XorbBody> {
    let too_big = || Error::Config("xorb packing exceeded the format limits".into());
    if chunks.len() > MAX_XORB_CHUNKS {
        return Err(too_big());
    }
    let mut selector = SchemeSelector::new(policy);
    let mut next_start = file_starts.iter().peekable();
    let mut pieces = Vec::new();
    let mut run = BytesMut::with_capacity(64 << 10);
    let mut len = 0usize;
    for (i, (_, data)) in chunks.into_iter().enumerate() {
        if next_start.peek() == Some(&&i) {
            selector.start_file();
            next_start.next();
        }
        let scheme = selector.next_scheme(&data);
        let chunk = compress_chunk(&data, scheme)?;
        run.extend_from_slice(&chunk.header.to_bytes()?);
        let stored = matches!(chunk.payload, Cow::Borrowed(_));
        if !stored {
            run.extend_from_slice(&chunk.payload);
        }
        len += chunk.record_len();
        drop(chunk);
        if len > MAX_XORB_BYTES {
            return Err(too_big());
        }
        if stored {
            pieces.push(run.split().freeze());
            pieces.push(data);
        }
    }
    pieces.push(run.freeze());
    Ok(XorbBody::new(pieces))
}

/// "data of a, b and c" (at most three names, then how many more) for the files a
/// xorb holds new chunks of.
fn holding(files: &[(Arc<FileStats>, u64)]) -> String {
    // A file appears once per run of its chunks; files added concurrently interleave.
    let mut names: Vec<&str> = Vec::new();
    for (f, _) in files {
        if !names.contains(&f.name.as_str()) {
            names.push(&f.name);
        }
    }
    let shown = names.len().min(3);
    let mut s = format!("data of {}", names[..shown].join(", "));
    if names.len() > shown {
        s.push_str(&format!(" and {} more files", names.len() - shown));
    }
    s
}

/// Shared state of the dedup stage.
struct DedupState {
    /// Raw chunk hash -> where it is stored: this session's xorbs, the shard
    /// cache's unkeyed shards.
    index: HashMap<MerkleHash, Loc>,
    /// Keyed global-dedup shards (§8.3), with the xorb hashes they list.
    keyed: Vec<(ChunkLookup, Vec<MerkleHash>)>,
    open: OpenXorb,
    next_slot: u64,
    /// Hash of each cut xorb slot.
    slots: HashMap<u64, MerkleHash>,
    /// Chunk lists of the xorbs this session created, for the shard's CAS Info.
    new_xorbs: Vec<(MerkleHash, Vec<(MerkleHash, u32)>)>,
}

struct FileRecord {
    upload: FileUpload,
    chunks: Vec<HashedLength>,
    terms: Vec<Term>,
    sha_for_shard: Option<[u8; 32]>,
}

/// An upload session: add files and byte buffers (concurrently if you like), then
/// [`finish`](Self::finish) to store the shard that registers them.
pub struct UploadSession {
    cas: Arc<dyn Cas>,
    config: Config,
    progress: SharedProgress,
    cancel: CancellationToken,
    state: Arc<Mutex<DedupState>>,
    memory: Arc<Semaphore>,
    upload_slots: Arc<Semaphore>,
    uploads: Mutex<JoinSet<Result<()>>>,
    files: Mutex<Vec<(usize, FileRecord)>>,
    shard_cache: Option<ShardCache>,
    counters: Arc<Counters>,
    next_file: AtomicU64,
    /// Read blocks, reused once every chunk sliced from them is gone.
    blocks: Arc<Pool<AlignedBuf>>,
}

#[derive(Default)]
struct Counters {
    processed: AtomicU64,
    deduped: AtomicU64,
    transferred: AtomicU64,
    xorbs: AtomicU64,
    xorbs_present: AtomicU64,
    queries: AtomicU64,
    query_hits: AtomicU64,
}

impl std::fmt::Debug for UploadSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UploadSession")
            .field("cas", &self.cas)
            .finish_non_exhaustive()
    }
}

impl UploadSession {
    /// A session uploading to `cas`. Loads the shard cache (if configured) into
    /// the dedup index.
    pub fn new(cas: Arc<dyn Cas>, config: Config) -> Result<Self> {
        let shard_cache = match config.shard_cache_dir() {
            Some(dir) => {
                Some(ShardCache::open(dir, config.shard_cache_size)?.with_max_age(config.shard_cache_max_age))
            }
            None => None,
        };
        let mut state = DedupState {
            index: HashMap::new(),
            keyed: Vec::new(),
            open: OpenXorb::default(),
            next_slot: 1,
            slots: HashMap::new(),
            new_xorbs: Vec::new(),
        };
        if let Some(cache) = &shard_cache {
            // Expired and unreadable shards are deleted on the way (§8.3 step 5).
            for shard in cache.load(std::time::SystemTime::now()) {
                add_shard(&mut state, &shard);
            }
        }
        // At least one maximal xorb must fit, or the first cut would wait forever.
        let budget = config
            .upload_buffer_bytes
            .max(MAX_XORB_BYTES as u64 + READ_BLOCK as u64 * 2);
        Ok(UploadSession {
            cas,
            memory: Arc::new(Semaphore::new(budget as usize)),
            upload_slots: Arc::new(Semaphore::new(config.upload_concurrency.max(1))),
            // A block comes back when the last xorb holding a slice of it has been
            // uploaded, so a steady upload of new data cycles through as many blocks
            // as the memory budget lets be in flight. Keeping that many idle costs no
            // more than the peak already held, and spares each cycle the page faults
            // of fresh memory (a 1 GiB upload: 49k minor page faults, against
            // 85-102k with 4 blocks kept).
            blocks: Pool::new((budget as usize).div_ceil(READ_BLOCK)),
            config,
            progress: Arc::new(NoProgress),
            cancel: CancellationToken::new(),
            state: Arc::new(Mutex::new(state)),
            uploads: Mutex::new(JoinSet::new()),
            files: Mutex::new(Vec::new()),
            shard_cache,
            counters: Arc::new(Counters::default()),
            next_file: AtomicU64::new(0),
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

    /// Uploads the file at `path`.
    pub async fn upload_file(&self, path: impl AsRef<Path>, sha: Sha256Source) -> Result<FileUpload> {
        let path = path.as_ref().to_path_buf();
        let name = path.display().to_string();
        let file = std::fs::File::open(&path).map_err(|e| Error::io("opening", &path, e))?;
        let size = file.metadata().map(|m| m.len()).ok();
        let p2 = path.clone();
        self.upload_source(name, size, sha, true, move |buf: &mut [u8]| {
            read_full(&file, buf).map_err(|e| Error::io("reading", &p2, e))
        })
        .await
    }

    /// Uploads an in-memory buffer under `name` (a label for progress and reports).
    pub async fn upload_bytes(
        &self,
        name: impl Into<String>,
        data: Bytes,
        sha: Sha256Source,
    ) -> Result<FileUpload> {
        let size = data.len() as u64;
        let mut pos = 0usize;
        self.upload_source(name.into(), Some(size), sha, false, move |buf: &mut [u8]| {
            let n = buf.len().min(data.len() - pos);
            buf[..n].copy_from_slice(&data[pos..pos + n]);
            pos += n;
            Ok(n)
        })
        .await
    }

    async fn upload_source<R>(
        &self,
        name: String,
        size: Option<u64>,
        sha: Sha256Source,
        from_path: bool,
        mut read: R,
    ) -> Result<FileUpload>
    where
        R: FnMut(&mut [u8]) -> Result<usize> + Send + 'static,
    {
        let index = self.next_file.fetch_add(1, Ordering::Relaxed) as usize;
        let want_sha = matches!(sha, Sha256Source::Compute) && self.config.compute_sha256;
        let (tx, mut rx) = mpsc::channel::<Result<HashedBatch>>(BATCHES_IN_FLIGHT);
        let memory = self.memory.clone();
        let cancel = self.cancel.clone();
        // Reader + chunker on a blocking thread; each block's chunks are hashed by
        // a task of their own, so BLAKE3 runs beside the gear scan of the next
        // blocks (on other cores) instead of after it on this thread.
        let runtime = tokio::runtime::Handle::current();
        let blocks = self.blocks.clone();
        let reader = tokio::task::spawn_blocking(move || -> Result<Option<[u8; 32]>> {
            let mut chunker = Chunker::new();
            // SHA-256 is sequential and as costly as chunking plus hashing: it gets
            // its own thread, fed the same (shared, zero-copy) blocks.
            let (sha_tx, sha_thread) = if want_sha {
                let (tx, rx) = std::sync::mpsc::sync_channel::<Bytes>(4);
                let t = std::thread::spawn(move || {
                    let mut h = Sha256Hasher::new();
                    for b in rx {
                        h.update(&b);
                    }
                    h.finish()
                });
                (Some(tx), Some(t))
            } else {
                (None, None)
            };
            let finish_sha = move |tx: Option<std::sync::mpsc::SyncSender<Bytes>>| {
                drop(tx);
                sha_thread.map(|t| t.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            };
            let mut sha_tx = sha_tx;
            let mut partial = BytesMut::new();
            loop {
                if cancel.is_cancelled() {
                    return Err(Error::Cancelled);
                }
                // Page-aligned (the kernel copies into it four times faster) and
                // reused (no page faults).
                let mut block = blocks.take(READ_BLOCK);
                let n = match read(block.get_mut().as_mut_slice()) {
                    Ok(n) => n,
                    Err(e) => {
                        let _ = tx.blocking_send(Err(Error::Cancelled));
                        return Err(e);
                    }
                };
                block.get_mut().truncate(n);
                let block = Bytes::from_owner(block);
                if let Some(tx) = &sha_tx {
                    if tx.send(block.clone()).is_err() {
                        sha_tx = None;
                    }
                }
                let mut batch = Vec::new();
                let mut pos = 0;
                while let Some(k) = chunker.next_boundary(&block[pos..]) {
                    let data = if partial.is_empty() {
                        block.slice(pos..pos + k)
                    } else {
                        partial.extend_from_slice(&block[pos..pos + k]);
                        partial.split().freeze()
                    };
                    batch.push(data);
                    pos += k;
                }
                partial.extend_from_slice(&block[pos..]);
                let eof = n == 0;
                if eof && chunker.finish().is_some() {
                    batch.push(partial.split().freeze());
                }
                if !batch.is_empty() {
                    // Hold memory for the batch before handing it on (released for
                    // deduped chunks by the dedup stage, for new ones after upload),
                    // so that what is read ahead counts against the bound too.
                    let want = batch
                        .iter()
                        .map(|d| d.len())
                        .sum::<usize>()
                        .min(u32::MAX as usize) as u32;
                    let permit = runtime.block_on(cancel.run(async {
                        memory
                            .clone()
                            .acquire_many_owned(want)
                            .await
                            .map_err(|_| Error::Cancelled)
                    }))?;
                    let hashed = runtime
                        .spawn_blocking(move || batch.into_iter().map(|d| (chunk_hash(&d), d)).collect());
                    if tx.blocking_send(Ok((hashed, permit))).is_err() {
                        return Err(Error::Cancelled);
                    }
                }
                if eof {
                    return Ok(finish_sha(sha_tx));
                }
            }
        });

        let stats = Arc::new(FileStats::new(index, name.clone(), size));
        let mut file_chunks: Vec<HashedLength> = Vec::new();
        let mut terms: Vec<Term> = Vec::new();
        let mut defrag = Defrag::default();
        let mut first_new_in_file = true;
        let mut last_query: Option<usize> = None;
        let (mut deduped, mut new_bytes, mut processed) = (0u64, 0u64, 0u64);
        let mut failure: Option<Error> = None;
        while let Some(batch) = self.cancel.run(async { Ok(rx.recv().await) }).await? {
            let (batch, permit) = match batch {
                Ok((b, permit)) => (
                    b.await
                        .map_err(|e| Error::Config(format!("chunk hashing task failed: {e}")))?,
                    permit,
                ),
                Err(_) => break, // the reader failed; its error is reported below
            };
            let batch_bytes: u64 = batch.iter().map(|(_, d)| d.len() as u64).sum();
            if self.config.global_dedup {
                self.global_dedup(&batch, file_chunks.len(), &mut last_query)
                    .await;
            }
            let res = {
                let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
                self.dedup_batch(
                    &mut st,
                    &batch,
                    permit,
                    &mut terms,
                    &mut defrag,
                    &mut first_new_in_file,
                    &stats,
                    &mut deduped,
                    &mut new_bytes,
                )
            };
            if let Err(e) = res {
                failure = Some(e);
                break;
            }
            for (h, d) in &batch {
                file_chunks.push((*h, d.len() as u64));
            }
            processed += batch_bytes;
            self.counters.processed.fetch_add(batch_bytes, Ordering::Relaxed);
            stats.processed.store(processed, Ordering::Relaxed);
            stats.deduped.store(deduped, Ordering::Relaxed);
            self.progress.update(stats.update());
            self.report_total();
        }
        drop(rx);
        let computed_sha = match reader.await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(failure.unwrap_or(e)),
            Err(e) => return Err(Error::Config(format!("reader thread failed: {e}"))),
        };
        if let Some(e) = failure {
            return Err(e);
        }
        let sha256 = match sha {
            Sha256Source::Given(d) => Some(d),
            Sha256Source::Skip => None,
            Sha256Source::Compute => computed_sha,
        };
        // §7.3: the official client writes an all-zero SHA-256 for an empty file
        // uploaded from a path (its byte API writes the real one). We match it so
        // our shards are byte-identical; the report still gives the real digest.
        let sha_for_shard = match (from_path && processed == 0, sha256) {
            (true, Some(_)) => Some([0u8; 32]),
            (_, s) => s,
        };
        let upload = FileUpload {
            name,
            file_hash: xet_format::hash::file_hash(&file_chunks),
            size: processed,
            sha256,
            deduped_bytes: deduped,
            new_bytes,
        };
        self.files.lock().unwrap_or_else(|p| p.into_inner()).push((
            index,
            FileRecord {
                upload: upload.clone(),
                chunks: file_chunks,
                terms,
                sha_for_shard,
            },
        ));
        Ok(upload)
    }

    fn report_total(&self) {
        self.progress.update(ProgressUpdate::Total {
            processed: self.counters.processed.load(Ordering::Relaxed),
            total: None,
            transferred: self.counters.transferred.load(Ordering::Relaxed),
            deduped: self.counters.deduped.load(Ordering::Relaxed),
        });
    }

    /// §8.2: asks the server about eligible chunks that no local level knows, at
    /// most one per `global_dedup_spacing` chunks of the file; answers join the
    /// index (and the shard cache). Failures count as "no match", as in xet-core.
    async fn global_dedup(
        &self,
        batch: &[(MerkleHash, Bytes)],
        file_offset: usize,
        last: &mut Option<usize>,
    ) {
        let mut queries = Vec::new();
        {
            let st = self.state.lock().unwrap_or_else(|p| p.into_inner());
            for (i, (h, _)) in batch.iter().enumerate() {
                let n = file_offset + i;
                let eligible = n == 0 || h.is_global_dedup_eligible();
                let spaced = last.is_none_or(|l| n >= l + self.config.global_dedup_spacing);
                if eligible && spaced && lookup(&st, h).is_none() {
                    queries.push(*h);
                    *last = Some(n);
                }
            }
        }
        if queries.is_empty() {
            return;
        }
        let answers = futures::future::join_all(queries.iter().map(|h| self.cas.query_dedup(h))).await;
        for (h, a) in queries.iter().zip(answers) {
            self.counters.queries.fetch_add(1, Ordering::Relaxed);
            match a {
                Ok(Some(bytes)) => match Shard::decode(&bytes) {
                    Ok(shard) => {
                        self.counters.query_hits.fetch_add(1, Ordering::Relaxed);
                        if let Some(c) = &self.shard_cache {
                            if let Err(e) = c.put(&bytes) {
                                tracing::debug!(error = %e, "could not cache a dedup shard");
                            }
                        }
                        add_shard(&mut self.state.lock().unwrap_or_else(|p| p.into_inner()), &shard);
                    }
                    Err(e) => tracing::debug!(chunk = %h, error = %e, "ignoring undecodable dedup shard"),
                },
                Ok(None) => {}
                Err(e) => tracing::debug!(chunk = %h, error = %e, "global dedup query failed; continuing"),
            }
        }
    }

    /// Dedups one batch of a file's chunks in order, extending `terms`.
    #[allow(clippy::too_many_arguments)]
    fn dedup_batch(
        &self,
        st: &mut DedupState,
        batch: &[(MerkleHash, Bytes)],
        mut permit: OwnedSemaphorePermit,
        terms: &mut Vec<Term>,
        defrag: &mut Defrag,
        first_new_in_file: &mut bool,
        file: &Arc<FileStats>,
        deduped: &mut u64,
        new_bytes: &mut u64,
    ) -> Result<()> {
        let mut i = 0;
        while i < batch.len() {
            let (hash, data) = &batch[i];
            let len = data.len() as u64;
            if let Some(loc) = lookup(st, hash) {
                let continues = terms
                    .last()
                    .is_some_and(|t| same_xorb(st, t.xorb, loc.xorb) && t.end == loc.index);
                // The run of following chunks that continue in the same xorb.
                let mut run = 1;
                while i + run < batch.len() {
                    match lookup(st, &batch[i + run].0) {
                        Some(l) if same_xorb(st, l.xorb, loc.xorb) && l.index == loc.index + run as u32 => {
                            run += 1
                        }
                        _ => break,
                    }
                }
                if continues || defrag.allow(run) {
                    for k in 0..run {
                        let (h, d) = &batch[i + k];
                        let l = lookup(st, h).expect("looked up above");
                        push_term(st, terms, l, d.len() as u64, defrag);
                        *deduped += d.len() as u64;
                    }
                    let run_bytes: u64 = batch[i..i + run].iter().map(|(_, d)| d.len() as u64).sum();
                    self.counters.deduped.fetch_add(run_bytes, Ordering::Relaxed);
                    // Deduped bytes need no buffer.
                    if run_bytes > 0 {
                        drop(permit.split(run_bytes as usize));
                    }
                    i += run;
                    continue;
                }
                // Refused by fragmentation prevention: store the run again as new data.
                for k in 0..run {
                    let (h, d) = &batch[i + k];
                    let piece = permit.split(d.len()).expect("permit covers the batch");
                    let l = self.add_new_chunk(st, *h, d.clone(), piece, first_new_in_file, file)?;
                    push_term(st, terms, l, d.len() as u64, defrag);
                    *new_bytes += d.len() as u64;
                }
                i += run;
                continue;
            }
            let piece = if len > 0 {
                permit.split(len as usize).expect("permit covers the batch")
            } else {
                permit.split(0).expect("zero permits")
            };
            let l = self.add_new_chunk(st, *hash, data.clone(), piece, first_new_in_file, file)?;
            push_term(st, terms, l, len, defrag);
            *new_bytes += len;
            i += 1;
        }
        Ok(())
    }

    /// Appends a new chunk to the open xorb, cutting it first if full (§6.1).
    fn add_new_chunk(
        &self,
        st: &mut DedupState,
        hash: MerkleHash,
        data: Bytes,
        permit: OwnedSemaphorePermit,
        first_new_in_file: &mut bool,
        file: &Arc<FileStats>,
    ) -> Result<Loc> {
        // Worst-case serialized size (header + raw): cutting on it satisfies both
        // readings of the 64 MiB limit (§14 #14) without compressing under the lock.
        let len = data.len() as u64;
        let full = st.open.chunks.len() >= MAX_XORB_CHUNKS
            || st.open.raw_len + 8 * (st.open.chunks.len() as u64 + 1) + len > MAX_XORB_BYTES as u64;
        if full {
            self.cut_xorb(st);
        }
        if st.open.chunks.is_empty() && st.open.slot == 0 {
            st.open.slot = st.next_slot;
            st.next_slot += 1;
        }
        if *first_new_in_file {
            st.open.file_starts.push(st.open.chunks.len());
            *first_new_in_file = false;
        }
        let loc = Loc {
            xorb: XorbRef::Pending(st.open.slot),
            index: st.open.chunks.len() as u32,
        };
        st.open.chunks.push((hash, data));
        st.open.raw_len += len;
        st.open.permits.push(permit);
        match st.open.files.last_mut() {
            Some((f, raw)) if Arc::ptr_eq(f, file) => *raw += len,
            _ => st.open.files.push((file.clone(), len)),
        }
        // Session dedup includes the xorb being built (§7.3).
        st.index.entry(hash).or_insert(loc);
        Ok(lookup(st, &hash).unwrap_or(loc))
    }

    /// Closes the open xorb and starts its upload task.
    fn cut_xorb(&self, st: &mut DedupState) {
        let open = std::mem::take(&mut st.open);
        if open.chunks.is_empty() {
            return;
        }
        tracing::debug!(chunks = open.chunks.len(), "xorb cut");
        let leaves: Vec<HashedLength> = open.chunks.iter().map(|(h, d)| (*h, d.len() as u64)).collect();
        let hash = xorb_hash(&leaves);
        st.slots.insert(open.slot, hash);
        st.new_xorbs
            .push((hash, leaves.iter().map(|(h, l)| (*h, *l as u32)).collect()));
        let cas = self.cas.clone();
        let slots = self.upload_slots.clone();
        let policy = self.config.compression;
        let counters = self.counters.clone();
        let cancel = self.cancel.clone();
        let progress = self.progress.clone();
        self.uploads
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .spawn(async move {
                let _slot = cancel
                    .run(async { slots.acquire_owned().await.map_err(|_| Error::Cancelled) })
                    .await?;
                let chunks = open.chunks;
                let starts = open.file_starts;
                tracing::debug!(xorb = %hash, "xorb compressing");
                let body = tokio::task::spawn_blocking(move || xorb_body(policy, chunks, &starts))
                    .await
                    .map_err(|e| Error::Config(format!("xorb builder failed: {e}")))??;
                let len = body.len() as u64;
                tracing::debug!(xorb = %hash, "xorb sending");
                // Failures surface in `finish()`, away from the file: name the files.
                let was_new = cancel
                    .run(cas.put_xorb(&hash, body))
                    .await
                    .map_err(|e| e.in_context(&holding(&open.files)))?;
                counters.xorbs.fetch_add(1, Ordering::Relaxed);
                if !was_new {
                    counters.xorbs_present.fetch_add(1, Ordering::Relaxed);
                }
                counters.transferred.fetch_add(len, Ordering::Relaxed);
                let raw: Vec<u64> = open.files.iter().map(|(_, r)| *r).collect();
                for ((file, _), share) in open.files.iter().zip(shares(len, &raw)) {
                    file.transferred.fetch_add(share, Ordering::Relaxed);
                    progress.update(file.update());
                }
                progress.update(ProgressUpdate::Total {
                    processed: counters.processed.load(Ordering::Relaxed),
                    total: None,
                    transferred: counters.transferred.load(Ordering::Relaxed),
                    deduped: counters.deduped.load(Ordering::Relaxed),
                });
                tracing::debug!(xorb = %hash, bytes = len, "xorb stored");
                drop(open.permits);
                Ok(())
            });
    }

    /// Flushes the last xorb, waits for every xorb upload, then builds and sends
    /// the shard(s) registering the files (§13.1 steps 6-7), and keeps them in the
    /// shard cache for later sessions' dedup.
    pub async fn finish(self) -> Result<UploadReport> {
        {
            let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
            self.cut_xorb(&mut st);
        }
        let mut uploads = std::mem::take(&mut *self.uploads.lock().unwrap_or_else(|p| p.into_inner()));
        while let Some(r) = self.cancel.run(async { Ok(uploads.join_next().await) }).await? {
            match r {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(e),
                Err(e) => return Err(Error::Config(format!("xorb upload task failed: {e}"))),
            }
        }
        let mut files = std::mem::take(&mut *self.files.lock().unwrap_or_else(|p| p.into_inner()));
        files.sort_by_key(|(i, _)| *i);
        let (new_xorbs, slots) = {
            let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
            (std::mem::take(&mut st.new_xorbs), st.slots.clone())
        };
        let resolve = |x: XorbRef| -> Result<MerkleHash> {
            match x {
                XorbRef::Known(h) => Ok(h),
                XorbRef::Pending(s) => slots
                    .get(&s)
                    .copied()
                    .ok_or_else(|| Error::Config(format!("internal: xorb slot {s} was never cut"))),
            }
        };
        // Shards are cut at 64 MiB (§10.6): xorbs first, then files, each shard
        // sent only once all xorbs are stored (they all are by now).
        let mut shards: Vec<Shard> = Vec::new();
        let mut builder = ShardBuilder::new();
        for (hash, chunks) in &new_xorbs {
            if !builder.is_empty()
                && builder.full_len_after_xorb(chunks.len()) > xet_format::shard::MAX_SHARD_BYTES
            {
                shards.push(std::mem::take(&mut builder).build());
            }
            builder.add_xorb(*hash, chunks)?;
        }
        for (_, f) in &files {
            let terms: Vec<FileTerm> = f
                .terms
                .iter()
                .map(|t| Ok(FileTerm::new(resolve(t.xorb)?, t.bytes as u32, t.start, t.end)))
                .collect::<Result<_>>()?;
            if !builder.is_empty()
                && builder.full_len_after_file(terms.len(), f.sha_for_shard.is_some())
                    > xet_format::shard::MAX_SHARD_BYTES
            {
                shards.push(std::mem::take(&mut builder).build());
            }
            builder.add_file_from_chunks(&f.chunks, terms, f.sha_for_shard)?;
        }
        if !builder.is_empty() {
            shards.push(builder.build());
        }
        let mut shards_sent = 0;
        for shard in &shards {
            let body = shard.to_upload_bytes()?;
            self.cancel.run(self.cas.put_shard(Bytes::from(body))).await?;
            shards_sent += 1;
            if let Some(c) = &self.shard_cache {
                if let Err(e) = shard.to_bytes().map_err(Error::from).and_then(|b| c.put(&b)) {
                    tracing::warn!(error = %e, "could not keep the shard in the shard cache");
                }
            }
        }
        let files: Vec<FileUpload> = files.into_iter().map(|(_, f)| f.upload).collect();
        let c = &self.counters;
        let report = UploadReport {
            total_bytes: files.iter().map(|f| f.size).sum(),
            deduped_bytes: files.iter().map(|f| f.deduped_bytes).sum(),
            new_bytes: files.iter().map(|f| f.new_bytes).sum(),
            files,
            xorbs_uploaded: c.xorbs.load(Ordering::Relaxed),
            xorbs_already_present: c.xorbs_present.load(Ordering::Relaxed),
            xorb_bytes_uploaded: c.transferred.load(Ordering::Relaxed),
            shards_uploaded: shards_sent,
            dedup_queries: c.queries.load(Ordering::Relaxed),
            dedup_query_hits: c.query_hits.load(Ordering::Relaxed),
        };
        self.report_total();
        Ok(report)
    }
}

fn lookup(st: &DedupState, hash: &MerkleHash) -> Option<Loc> {
    if let Some(l) = st.index.get(hash) {
        return Some(*l);
    }
    st.keyed.iter().find_map(|(lk, xorbs)| {
        lk.find(hash).map(|(xi, ci)| Loc {
            xorb: XorbRef::Known(xorbs[xi]),
            index: ci as u32,
        })
    })
}

fn same_xorb(st: &DedupState, a: XorbRef, b: XorbRef) -> bool {
    let resolve = |x: XorbRef| match x {
        XorbRef::Known(h) => Some(h),
        XorbRef::Pending(s) => st.slots.get(&s).copied(),
    };
    a == b || (resolve(a).is_some() && resolve(a) == resolve(b))
}

/// Appends a chunk at `loc` to the file's terms, merging with the previous term
/// when it continues it contiguously in the same xorb (and only then, §7.3).
fn push_term(st: &DedupState, terms: &mut Vec<Term>, loc: Loc, len: u64, defrag: &mut Defrag) {
    if let Some(t) = terms.last_mut() {
        if same_xorb(st, t.xorb, loc.xorb) && t.end == loc.index {
            t.end += 1;
            t.bytes += len;
            defrag.extend_last();
            return;
        }
    }
    terms.push(Term {
        xorb: loc.xorb,
        start: loc.index,
        end: loc.index + 1,
        bytes: len,
    });
    defrag.push();
}

/// Adds every chunk of a shard's xorbs to the dedup index (§8.1 level 2/3).
fn add_shard(st: &mut DedupState, shard: &Shard) {
    if shard.hmac_key() == [0u8; 32] {
        for x in &shard.xorbs {
            for (i, c) in x.chunks.iter().enumerate() {
                st.index.entry(c.hash).or_insert(Loc {
                    xorb: XorbRef::Known(x.xorb_hash),
                    index: i as u32,
                });
            }
        }
    } else {
        let hashes = shard.xorbs.iter().map(|x| x.xorb_hash).collect();
        st.keyed.push((ChunkLookup::new(shard), hashes));
    }
}

/// §8.4 fragmentation prevention, as xet-core does it: keep the chunk counts of the
/// last 128 terms; once there are 128, refuse a dedup run shorter than the average
/// while the average is under the threshold (4 in low mode, 8 in high mode).
#[derive(Default)]
struct Defrag {
    counts: VecDeque<u32>,
    sum: u64,
    high: bool,
}

impl Defrag {
    fn push(&mut self) {
        self.counts.push_back(1);
        self.sum += 1;
        if self.counts.len() > DEFRAG_WINDOW {
            self.sum -= u64::from(self.counts.pop_front().unwrap_or(0));
        }
    }

    fn extend_last(&mut self) {
        if let Some(c) = self.counts.back_mut() {
            *c += 1;
            self.sum += 1;
        }
    }

    fn allow(&mut self, run: usize) -> bool {
        if self.counts.len() < DEFRAG_WINDOW {
            return true;
        }
        let avg = self.sum as f64 / self.counts.len() as f64;
        let threshold = if self.high {
            MIN_CHUNKS_PER_TERM
        } else {
            MIN_CHUNKS_PER_TERM * HYSTERESIS
        };
        if avg >= threshold {
            self.high = false;
            return true;
        }
        if (run as f64) < avg {
            self.high = true;
            return false;
        }
        true
    }
}

/// Reads until `buf` is full or the file ends.
fn read_full(mut f: &std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use xet_format::chunker::chunk_boundaries;
    use xet_format::xorb::XorbBuilder;

    #[test]
    fn a_xorb_names_each_file_it_holds_once() {
        let f = |n: &str| Arc::new(FileStats::new(0, n.into(), None));
        let (a, b) = (f("a"), f("b"));
        // Interleaved runs of two files added concurrently, then more files.
        let files = vec![(a.clone(), 1), (b.clone(), 1), (a, 1), (b, 1)];
        assert_eq!(holding(&files), "data of a, b");
        let mut more = files;
        more.extend(["c", "d", "e"].map(|n| (f(n), 1)));
        assert_eq!(holding(&more), "data of a, b, c and 2 more files");
    }

    #[test]
    fn a_xorbs_bytes_are_shared_by_raw_size_and_add_up() {
        assert_eq!(shares(100, &[1, 2, 3]), vec![16, 33, 51]);
        assert_eq!(shares(0, &[1, 2, 3]), vec![0, 0, 0]);
        assert_eq!(
            shares(u64::MAX, &[u64::MAX / 2, u64::MAX / 2]),
            vec![u64::MAX / 2, u64::MAX - u64::MAX / 2]
        );
        assert_eq!(shares(7, &[0]), vec![7]);
        assert!(shares(7, &[]).is_empty());
    }

    /// Chunks of `data` as the upload holds them (slices of one buffer).
    fn chunks_of(data: &Bytes) -> Vec<(MerkleHash, Bytes)> {
        let mut start = 0;
        chunk_boundaries(data)
            .into_iter()
            .map(|end| {
                let d = data.slice(start..end);
                start = end;
                (chunk_hash(&d), d)
            })
            .collect()
    }

    #[test]
    fn xorb_body_is_what_the_builder_writes() {
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        let random: Vec<u8> = (0..700_000)
            .map(|_| {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                rng as u8
            })
            .collect();
        let text = b"the quick brown fox jumps over the lazy dog; ".repeat(12_000);
        let mut mixed = random.clone();
        mixed.extend_from_slice(&text);
        mixed.extend_from_slice(&vec![0u8; 300_000]);
        mixed.extend_from_slice(&random[..200_000]);
        let data = Bytes::from(mixed);
        let chunks = chunks_of(&data);
        assert!(chunks.len() > 8);
        // Two "files" in the xorb: the auto policy decides afresh at the second.
        let starts = [0, chunks.len() / 2];
        for policy in [
            CompressionPolicy::None,
            CompressionPolicy::Lz4,
            CompressionPolicy::Bg4Lz4,
            CompressionPolicy::Auto,
        ] {
            let mut b = XorbBuilder::new(policy);
            for (i, (h, d)) in chunks.iter().enumerate() {
                if starts.contains(&i) {
                    b.start_file();
                }
                assert!(b.add_chunk(*h, d).unwrap());
            }
            let want = b.finish().body;
            let body = xorb_body(policy, chunks.clone(), &starts).unwrap();
            assert_eq!(body.len(), want.len(), "{policy:?}");
            assert_eq!(&body.to_bytes()[..], &want[..], "{policy:?}");
            assert_eq!(body.crc64(), xet_format::api::crc64_nvme(&want), "{policy:?}");
            if policy == CompressionPolicy::None {
                // Stored chunks are the caller's slices, not copies.
                let shared = body
                    .pieces()
                    .iter()
                    .filter(|p| chunks.iter().any(|(_, d)| d.as_ptr() == p.as_ptr()))
                    .count();
                assert_eq!(shared, chunks.len());
            }
        }
    }

    #[test]
    fn xorb_body_refuses_more_than_the_limits() {
        let data = Bytes::from(vec![7u8; 64]);
        let many: Vec<_> = (0..MAX_XORB_CHUNKS + 1)
            .map(|_| (chunk_hash(&data), data.clone()))
            .collect();
        assert!(xorb_body(CompressionPolicy::None, many, &[0]).is_err());
    }
}
