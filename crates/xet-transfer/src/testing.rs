//! Test helpers (feature `testing`): [`MemoryCas`], an in-memory CAS that checks
//! everything it receives with `xet-format` the way a strict server would, and
//! [`conformance`], the suite every [`Cas`] implementation must pass (STYLE.md §5),
//! and [`serve`], a `MemoryCas` over HTTP on loopback.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use bytes::Bytes;
use xet_format::api::{
    ByteRangeInclusive, IndexRange, ReconstructionTerm, ReconstructionV2, XorbMultiRangeFetch,
    XorbRangeDescriptor,
};
use xet_format::shard::{FileInfo, Shard, StoredXorb};
use xet_format::xorb::validate_xorb;
use xet_format::MerkleHash;

use crate::cas::{BoxFuture, Cas, XorbBody};
use crate::{Error, Result};

mod server;
pub use server::serve;

struct StoredXorbData {
    body: Bytes,
    /// End offset of each chunk record.
    ends: Vec<u32>,
    /// Each chunk's (hash, uncompressed length).
    chunks: Vec<(MerkleHash, u64)>,
}

#[derive(Default)]
struct State {
    xorbs: HashMap<MerkleHash, StoredXorbData>,
    files: HashMap<MerkleHash, FileInfo>,
    /// Eligible chunk -> index of the shard that lists it.
    dedup: HashMap<MerkleHash, usize>,
    shards: Vec<Shard>,
}

/// An in-memory CAS server. Rejects (as [`Error::Rejected`]) xorbs whose chunks do
/// not hash to the claimed hash, shards that do not decode or break the upload
/// rules, and shards referencing xorbs not stored before them.
#[derive(Default)]
pub struct MemoryCas {
    state: Mutex<State>,
    /// Counters of calls, by kind.
    pub calls: CallCounts,
    /// The key global-dedup answers are keyed with (zero = unkeyed).
    pub dedup_key: [u8; 32],
    /// Chunk hashes of global-dedup queries, in the order they arrived.
    queried: Mutex<Vec<MerkleHash>>,
}

/// How many times each [`Cas`] method was called on a [`MemoryCas`].
#[derive(Debug, Default)]
pub struct CallCounts {
    /// `put_xorb` calls.
    pub put_xorb: AtomicU64,
    /// `put_shard` calls.
    pub put_shard: AtomicU64,
    /// `reconstruction` calls.
    pub reconstruction: AtomicU64,
    /// `fetch_ranges` calls.
    pub fetch_ranges: AtomicU64,
    /// `query_dedup` calls.
    pub query_dedup: AtomicU64,
    /// Bytes of xorb bodies received.
    pub xorb_bytes: AtomicU64,
}

impl std::fmt::Debug for MemoryCas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryCas")
            .field("calls", &self.calls)
            .finish_non_exhaustive()
    }
}

fn rejected(op: &str, message: impl Into<String>) -> Error {
    Error::Rejected {
        op: op.to_string(),
        status: 400,
        message: message.into(),
    }
}

impl MemoryCas {
    /// An empty server.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty server whose global-dedup answers are keyed with `key` (§8.3).
    pub fn with_dedup_key(key: [u8; 32]) -> Self {
        MemoryCas {
            dedup_key: key,
            ..Self::default()
        }
    }

    /// The stored body of a xorb.
    pub fn xorb(&self, hash: &MerkleHash) -> Option<Bytes> {
        self.state.lock().unwrap().xorbs.get(hash).map(|x| x.body.clone())
    }

    /// The number of stored xorbs.
    pub fn xorb_count(&self) -> usize {
        self.state.lock().unwrap().xorbs.len()
    }

    /// The chunk hash of every global-dedup query received, in the order received.
    pub fn dedup_queries(&self) -> Vec<MerkleHash> {
        self.queried.lock().unwrap().clone()
    }

    /// Every shard received, decoded.
    pub fn shards(&self) -> Vec<Shard> {
        self.state.lock().unwrap().shards.clone()
    }

    /// Overwrites a byte of a stored xorb (to test that downloads catch it).
    pub fn corrupt_xorb(&self, hash: &MerkleHash, offset: usize) {
        let mut st = self.state.lock().unwrap();
        if let Some(x) = st.xorbs.get_mut(hash) {
            let mut v = x.body.to_vec();
            v[offset] ^= 0xa5;
            x.body = Bytes::from(v);
        }
    }

    fn put_xorb_sync(&self, hash: &MerkleHash, body: Bytes) -> Result<bool> {
        let op = format!("upload xorb {hash}");
        self.calls.put_xorb.fetch_add(1, Ordering::Relaxed);
        self.calls
            .xorb_bytes
            .fetch_add(body.len() as u64, Ordering::Relaxed);
        let summary = validate_xorb(&body, hash).map_err(|e| rejected(&op, e.to_string()))?;
        if summary.has_footer {
            return Err(rejected(&op, "clients upload xorbs without footer (§6.5)"));
        }
        let mut st = self.state.lock().unwrap();
        if st.xorbs.contains_key(hash) {
            return Ok(false);
        }
        st.xorbs.insert(
            *hash,
            StoredXorbData {
                body,
                ends: summary.chunk_boundary_offsets.clone(),
                chunks: summary.chunks.clone(),
            },
        );
        Ok(true)
    }

    fn put_shard_sync(&self, body: Bytes) -> Result<bool> {
        let op = "upload shard";
        self.calls.put_shard.fetch_add(1, Ordering::Relaxed);
        let shard = Shard::decode(&body).map_err(|e| rejected(op, e.to_string()))?;
        if shard.footer.is_some() {
            return Err(rejected(op, "upload shards carry no footer (§7.1)"));
        }
        shard
            .validate_for_upload()
            .map_err(|e| rejected(op, e.to_string()))?;
        let mut st = self.state.lock().unwrap();
        let lookup = |h: &MerkleHash| {
            st.xorbs.get(h).map(|x| StoredXorb {
                chunk_hashes: x.chunks.iter().map(|c| c.0).collect(),
                chunk_lengths: Some(x.chunks.iter().map(|c| c.1 as u32).collect()),
            })
        };
        // Every referenced xorb must be stored before the shard (§10.6).
        shard
            .verify_xorbs(lookup)
            .map_err(|e| rejected(op, e.to_string()))?;
        shard
            .verify_terms(lookup)
            .map_err(|e| rejected(op, e.to_string()))?;
        let mut new = false;
        for f in &shard.files {
            new |= st.files.insert(f.file_hash, f.clone()).is_none();
        }
        let idx = st.shards.len();
        for c in shard.global_dedup_eligible_chunks() {
            st.dedup.entry(c).or_insert(idx);
        }
        st.shards.push(shard);
        Ok(new)
    }

    fn reconstruction_sync(&self, file: &MerkleHash, range: Option<(u64, u64)>) -> Result<ReconstructionV2> {
        self.calls.reconstruction.fetch_add(1, Ordering::Relaxed);
        let st = self.state.lock().unwrap();
        let info = st.files.get(file).ok_or_else(|| Error::NotFound {
            what: format!("file {file}"),
        })?;
        let size = info.size();
        let (start, end) = match range {
            None => (0, size),
            Some((s, _)) if s >= size => {
                return Err(Error::RangeNotSatisfiable {
                    file: *file,
                    start: s,
                })
            }
            Some((s, e)) => (s, (e + 1).min(size)),
        };
        let mut out = ReconstructionV2 {
            offset_into_first_range: 0,
            terms: Vec::new(),
            xorbs: Default::default(),
        };
        let mut pos = 0u64;
        for t in &info.terms {
            let x = st.xorbs.get(&t.xorb_hash).ok_or_else(|| Error::NotFound {
                what: format!("xorb {}", t.xorb_hash),
            })?;
            // Narrow the term to the chunks overlapping [start, end).
            let (mut cs, mut ce) = (t.chunk_start as usize, t.chunk_end as usize);
            let mut cpos = pos;
            let mut first_skip = None;
            let mut kept = (usize::MAX, 0usize);
            for ci in cs..ce {
                let len = x.chunks[ci].1;
                if cpos + len > start && cpos < end {
                    if kept.0 == usize::MAX {
                        kept.0 = ci;
                        first_skip = Some(start.saturating_sub(cpos));
                    }
                    kept.1 = ci + 1;
                }
                cpos += len;
            }
            pos += u64::from(t.unpacked_bytes);
            if kept.0 == usize::MAX {
                continue;
            }
            (cs, ce) = kept;
            if out.terms.is_empty() {
                out.offset_into_first_range = first_skip.unwrap_or(0);
            }
            let unpacked: u64 = x.chunks[cs..ce].iter().map(|c| c.1).sum();
            out.terms.push(ReconstructionTerm {
                hash: t.xorb_hash,
                unpacked_length: unpacked as u32,
                range: IndexRange {
                    start: cs as u32,
                    end: ce as u32,
                },
            });
            let byte_start = if cs == 0 { 0 } else { x.ends[cs - 1] };
            let byte_end = x.ends[ce - 1] - 1;
            let fetches = out.xorbs.entry(t.xorb_hash).or_insert_with(|| {
                vec![XorbMultiRangeFetch {
                    url: format!("memory://{}", t.xorb_hash),
                    ranges: Vec::new(),
                }]
            });
            let ranges = &mut fetches[0].ranges;
            if !ranges
                .iter()
                .any(|r| r.chunks.start == cs as u32 && r.chunks.end == ce as u32)
            {
                ranges.push(XorbRangeDescriptor {
                    chunks: IndexRange {
                        start: cs as u32,
                        end: ce as u32,
                    },
                    bytes: ByteRangeInclusive {
                        start: u64::from(byte_start),
                        end: u64::from(byte_end),
                    },
                });
                ranges.sort_by_key(|r| r.chunks.start);
            }
        }
        Ok(out)
    }

    fn fetch_sync(&self, xorb: &MerkleHash, fetch: &XorbMultiRangeFetch) -> Result<Vec<Bytes>> {
        self.calls.fetch_ranges.fetch_add(1, Ordering::Relaxed);
        let st = self.state.lock().unwrap();
        let x = st.xorbs.get(xorb).ok_or_else(|| Error::NotFound {
            what: format!("xorb {xorb}"),
        })?;
        fetch
            .ranges
            .iter()
            .map(|r| {
                x.body
                    .get(r.bytes.start as usize..=r.bytes.end as usize)
                    .map(|b| x.body.slice_ref(b))
                    .ok_or_else(|| rejected("fetch", "range outside the xorb"))
            })
            .collect()
    }

    fn query_sync(&self, chunk: &MerkleHash) -> Result<Option<Bytes>> {
        self.calls.query_dedup.fetch_add(1, Ordering::Relaxed);
        self.queried.lock().unwrap().push(*chunk);
        let st = self.state.lock().unwrap();
        let Some(&idx) = st.dedup.get(chunk) else {
            return Ok(None);
        };
        let answer = st.shards[idx].dedup_response(self.dedup_key, 0, u64::MAX)?;
        Ok(Some(Bytes::from(answer.to_bytes()?)))
    }
}

impl Cas for MemoryCas {
    fn put_xorb<'a>(&'a self, hash: &'a MerkleHash, body: XorbBody) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move { self.put_xorb_sync(hash, body.to_bytes()) })
    }
    fn put_shard(&self, body: Bytes) -> BoxFuture<'_, Result<bool>> {
        Box::pin(async move { self.put_shard_sync(body) })
    }
    fn reconstruction<'a>(
        &'a self,
        file: &'a MerkleHash,
        range: Option<(u64, u64)>,
    ) -> BoxFuture<'a, Result<ReconstructionV2>> {
        Box::pin(async move { self.reconstruction_sync(file, range) })
    }
    fn fetch_ranges<'a>(
        &'a self,
        xorb: &'a MerkleHash,
        fetch: &'a XorbMultiRangeFetch,
    ) -> BoxFuture<'a, Result<Vec<Bytes>>> {
        Box::pin(async move { self.fetch_sync(xorb, fetch) })
    }
    fn query_dedup<'a>(&'a self, chunk: &'a MerkleHash) -> BoxFuture<'a, Result<Option<Bytes>>> {
        Box::pin(async move { self.query_sync(chunk) })
    }
}

/// The conformance suite: every [`Cas`] implementation must pass it. Each function
/// takes a fresh, empty CAS.
pub mod conformance {
    use std::sync::Arc;

    use bytes::Bytes;
    use xet_format::MerkleHash;

    use crate::cas::Cas;
    use crate::{Config, DownloadSession, Error, Sha256Source, UploadSession};

    fn data(n: usize, seed: u64) -> Vec<u8> {
        let mut s = seed | 1;
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                s as u8
            })
            .collect()
    }

    /// Runs every check.
    pub async fn run_all(cas: Arc<dyn Cas>) {
        unknown_file_is_not_found(cas.clone()).await;
        upload_download_roundtrip(cas.clone()).await;
        xorb_upload_is_idempotent(cas.clone()).await;
        bad_xorb_is_rejected(cas).await;
    }

    /// An unknown file hash gives `NotFound`.
    pub async fn unknown_file_is_not_found(cas: Arc<dyn Cas>) {
        let h = MerkleHash::from_bytes([7; 32]);
        match cas.reconstruction(&h, None).await {
            Err(Error::NotFound { .. }) => {}
            other => panic!("expected NotFound, got {other:?}"),
        }
    }

    /// Files uploaded through a session download byte-identical, whole and ranged.
    pub async fn upload_download_roundtrip(cas: Arc<dyn Cas>) {
        let a = data(700_000, 11);
        let session = UploadSession::new(cas.clone(), Config::default()).unwrap();
        let fa = session
            .upload_bytes("a", Bytes::from(a.clone()), Sha256Source::Compute)
            .await
            .unwrap();
        session.finish().await.unwrap();
        let dl = DownloadSession::new(cas.clone(), Config::default()).unwrap();
        assert_eq!(dl.download_bytes(&fa.file_hash, None).await.unwrap(), a);
        assert_eq!(
            dl.download_bytes(&fa.file_hash, Some((1000, 300_000)))
                .await
                .unwrap(),
            a[1000..=300_000]
        );
        match cas.reconstruction(&fa.file_hash, Some((700_000, 800_000))).await {
            Err(Error::RangeNotSatisfiable { .. }) => {}
            other => panic!("expected RangeNotSatisfiable, got {other:?}"),
        }
    }

    /// Putting the same xorb twice succeeds and reports it as not new.
    pub async fn xorb_upload_is_idempotent(cas: Arc<dyn Cas>) {
        let chunk = data(5000, 3);
        let mut b = xet_format::xorb::XorbBuilder::new(xet_format::xorb::CompressionPolicy::None);
        b.add_chunk(xet_format::hash::chunk_hash(&chunk), &chunk).unwrap();
        let x = b.finish();
        let body = Bytes::from(x.body);
        assert!(cas.put_xorb(&x.hash, body.clone().into()).await.unwrap());
        assert!(!cas.put_xorb(&x.hash, body.into()).await.unwrap());
    }

    /// A xorb whose chunks do not hash to the claimed hash is refused.
    pub async fn bad_xorb_is_rejected(cas: Arc<dyn Cas>) {
        let chunk = data(5000, 4);
        let mut b = xet_format::xorb::XorbBuilder::new(xet_format::xorb::CompressionPolicy::None);
        b.add_chunk(xet_format::hash::chunk_hash(&chunk), &chunk).unwrap();
        let x = b.finish();
        let wrong = MerkleHash::from_bytes([9; 32]);
        assert!(cas.put_xorb(&wrong, x.body.into()).await.is_err());
    }
}
