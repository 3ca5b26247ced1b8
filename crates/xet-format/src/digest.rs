//! Whole-file digests: chunk list, Xet file hash, size and SHA-256 in one pass.
//!
//! [`FileHasher`] is the streaming, single-threaded form. [`digest_slice`] and
//! [`digest_reader`] use several threads and give the same [`FileDigest`].

use std::io::{self, Read};
use std::sync::mpsc;

use crate::chunker::{chunk_boundaries_parallel, Chunker};
use crate::hash::{chunk_hash, file_hash, ChunkHasher, HashedLength, Sha256Hasher};
use crate::MerkleHash;

mod segments;
pub use segments::{digest_read_at, ReadAt};

/// What hashing a file gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileDigest {
    /// The Xet file hash (file ID).
    pub file_hash: MerkleHash,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the contents (conventional byte order), if it was asked for.
    pub sha256: Option<[u8; 32]>,
    /// Every chunk's hash and length, in file order.
    pub chunks: Vec<HashedLength>,
}

/// Streaming digest of one file.
///
/// ```
/// use xet_format::FileHasher;
/// let mut h = FileHasher::new(true);
/// h.update(b"hello ");
/// h.update(b"world");
/// let d = h.finish();
/// assert_eq!(d.file_hash.to_string(), "f15edd43b7e85cfd25e2758ffe13b99fdd09dfa817e8d9f6548722a7a126db7f");
/// assert_eq!(d.size, 11);
/// ```
#[derive(Clone)]
pub struct FileHasher {
    chunks: ChunkStream,
    sha: Option<Sha256Hasher>,
}

impl FileHasher {
    /// A hasher for a new file; `with_sha256` also computes the SHA-256.
    pub fn new(with_sha256: bool) -> Self {
        FileHasher {
            chunks: ChunkStream::default(),
            sha: with_sha256.then(Sha256Hasher::new),
        }
    }

    /// Feeds the next bytes of the file.
    pub fn update(&mut self, data: &[u8]) {
        if let Some(s) = &mut self.sha {
            s.update(data);
        }
        self.chunks.update(data);
    }

    /// Chunks completed so far.
    pub fn chunks(&self) -> &[HashedLength] {
        &self.chunks.hashes.chunks
    }

    /// Ends the file and returns its digest.
    pub fn finish(self) -> FileDigest {
        let (chunks, size) = self.chunks.finish();
        FileDigest {
            file_hash: file_hash(&chunks),
            size,
            sha256: self.sha.map(Sha256Hasher::finish),
            chunks,
        }
    }
}

/// Chunking and chunk hashing of a stream, without SHA-256.
#[derive(Clone, Default)]
struct ChunkStream {
    chunker: Chunker,
    hashes: ChunkHashes,
}

impl ChunkStream {
    fn update(&mut self, data: &[u8]) {
        let mut ends = Vec::new();
        block_ends(&mut self.chunker, data, &mut ends);
        self.hashes.update(data, &ends);
    }

    fn finish(mut self) -> (Vec<HashedLength>, u64) {
        self.hashes.finish(self.chunker.finish().is_some())
    }
}

/// Appends to `ends` the offsets in `data` where chunks end, continuing `chunker`.
fn block_ends(chunker: &mut Chunker, data: &[u8], ends: &mut Vec<usize>) {
    let mut pos = 0;
    while let Some(n) = chunker.next_boundary(&data[pos..]) {
        pos += n;
        ends.push(pos);
    }
}

/// Chunk hashing given the chunk ends found in each block of the stream.
#[derive(Clone, Default)]
struct ChunkHashes {
    hasher: ChunkHasher,
    /// Bytes of the current chunk already fed to `hasher`.
    pending: u64,
    chunks: Vec<HashedLength>,
    size: u64,
}

impl ChunkHashes {
    /// Hashes `data`, the stream's next block; `ends` are the offsets in it where
    /// chunks end (ascending).
    fn update(&mut self, data: &[u8], ends: &[usize]) {
        self.size += data.len() as u64;
        let mut start = 0;
        for &end in ends {
            let piece = &data[start..end];
            let hash = if self.pending == 0 {
                // The whole chunk is in this block: one-shot hashing is faster.
                crate::hash::chunk_hash(piece)
            } else {
                self.hasher.update(piece);
                self.hasher.finish_reset()
            };
            self.chunks.push((hash, self.pending + piece.len() as u64));
            self.pending = 0;
            start = end;
        }
        if start < data.len() {
            self.hasher.update(&data[start..]);
            self.pending += (data.len() - start) as u64;
        }
    }

    /// Ends the stream; `last_chunk_pending` says whether the chunker had bytes left.
    fn finish(mut self, last_chunk_pending: bool) -> (Vec<HashedLength>, u64) {
        if last_chunk_pending {
            self.chunks.push((self.hasher.finish_reset(), self.pending));
        }
        (self.chunks, self.size)
    }
}

/// Digest of an in-memory file with up to `threads` threads.
pub fn digest_slice(data: &[u8], with_sha256: bool, threads: usize) -> FileDigest {
    let threads = threads.max(1);
    std::thread::scope(|s| {
        let sha = with_sha256.then(|| s.spawn(|| crate::hash::sha256(data)));
        // The SHA-256 is sequential and takes one thread; the rest chunk and hash.
        let workers = if with_sha256 {
            threads.saturating_sub(1).max(1)
        } else {
            threads
        };
        let ends = chunk_boundaries_parallel(data, workers);
        let mut chunks: Vec<HashedLength> = vec![(MerkleHash::ZERO, 0); ends.len()];
        let per = ends.len().div_ceil(workers).max(1);
        std::thread::scope(|s2| {
            for (i, out) in chunks.chunks_mut(per).enumerate() {
                let ends = &ends;
                s2.spawn(move || {
                    for (j, slot) in out.iter_mut().enumerate() {
                        let k = i * per + j;
                        let start = if k == 0 { 0 } else { ends[k - 1] };
                        let bytes = &data[start..ends[k]];
                        *slot = (chunk_hash(bytes), bytes.len() as u64);
                    }
                });
            }
        });
        FileDigest {
            file_hash: file_hash(&chunks),
            size: data.len() as u64,
            sha256: sha.map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))),
            chunks,
        }
    })
}

/// Size of the blocks [`digest_reader`] reads: small enough that a block is still in
/// cache when the second thread hashes it, large enough to keep syscalls cheap.
const READ_BLOCK: usize = 256 << 10;
/// Blocks in flight between the two threads: bounds memory to `READ_BLOCK × this`.
const BLOCKS_IN_FLIGHT: usize = 4;

/// A zeroed byte buffer whose start is page-aligned: read files into these.
///
/// Measured: the kernel's copy from the page cache into a buffer that is not
/// page-aligned (as `malloc` returns for large sizes: page + 16 bytes) costs about four
/// times more CPU (0.5 s instead of 0.13 s per GiB here), a third of `xet hash`'s time.
/// It implements `AsRef<[u8]>` (the first [`len`](Self::len) bytes), so it can own
/// the memory of a `bytes::Bytes` (`Bytes::from_owner`).
pub struct AlignedBuf {
    raw: Vec<u8>,
    offset: usize,
    len: usize,
}

impl AlignedBuf {
    const ALIGN: usize = 4096;

    /// `len` zero bytes, the first at a page boundary.
    pub fn new(len: usize) -> Self {
        let raw = vec![0u8; len + Self::ALIGN];
        let offset = raw.as_ptr().align_offset(Self::ALIGN).min(Self::ALIGN);
        AlignedBuf { raw, offset, len }
    }

    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.raw[self.offset..self.offset + self.len]
    }

    /// The bytes, to fill.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut self.raw[self.offset..self.offset + self.len]
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the buffer holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Shortens the buffer to `len` bytes (no effect if it is not longer).
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }

    /// The most bytes the buffer can hold without reallocating.
    pub fn capacity(&self) -> usize {
        self.raw.len() - self.offset
    }

    /// Sets the length to `len`, at most [`capacity`](Self::capacity), to reuse the
    /// buffer: bytes past the old length keep whatever they held.
    pub fn set_len(&mut self, len: usize) {
        self.len = len.min(self.capacity());
    }
}

impl AsRef<[u8]> for AlignedBuf {
    fn as_ref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl std::fmt::Debug for AlignedBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlignedBuf")
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

/// A block read by the first thread, passed to the second.
struct Block {
    buf: AlignedBuf,
    len: usize,
    /// Chunk ends in the block, when the first thread found them.
    ends: Option<Vec<usize>>,
}

/// Digest of everything `reader` yields, on two threads with bounded memory
/// (1 MiB of buffers, whatever the input size).
///
/// The work is split to keep both cores busy: the calling thread reads and computes
/// the SHA-256 while the second finds chunk boundaries and hashes chunks; without
/// SHA-256 the calling thread finds the boundaries instead.
pub fn digest_reader<R: Read>(mut reader: R, with_sha256: bool) -> io::Result<FileDigest> {
    let (full_tx, full_rx) = mpsc::sync_channel::<Block>(BLOCKS_IN_FLIGHT);
    let (empty_tx, empty_rx) = mpsc::sync_channel::<Block>(BLOCKS_IN_FLIGHT);
    for _ in 0..BLOCKS_IN_FLIGHT {
        // Cannot fail: the receiver is alive and the channel has room.
        let _ = empty_tx.send(Block {
            buf: AlignedBuf::new(READ_BLOCK),
            len: 0,
            ends: Some(Vec::new()),
        });
    }
    std::thread::scope(|s| {
        let worker = s.spawn(move || {
            let mut chunker = Chunker::new();
            let mut hashes = ChunkHashes::default();
            let mut own_ends = Vec::new();
            for mut block in full_rx {
                let ends = match &block.ends {
                    Some(ends) => ends,
                    None => {
                        own_ends.clear();
                        block_ends(&mut chunker, &block.buf.as_slice()[..block.len], &mut own_ends);
                        &own_ends
                    }
                };
                hashes.update(&block.buf.as_slice()[..block.len], ends);
                block.ends.get_or_insert_with(Vec::new).clear();
                // The reader may have stopped; then the block is just dropped.
                let _ = empty_tx.send(block);
            }
            (chunker, hashes)
        });
        let mut sha = with_sha256.then(Sha256Hasher::new);
        let mut chunker = Chunker::new();
        let read_result = (|| -> io::Result<()> {
            while let Ok(mut block) = empty_rx.recv() {
                block.len = read_full(&mut reader, block.buf.as_mut_slice())?;
                let data = &block.buf.as_slice()[..block.len];
                match &mut sha {
                    Some(sha) => {
                        sha.update(data);
                        block.ends = None;
                    }
                    None => {
                        let ends = block.ends.get_or_insert_with(Vec::new);
                        block_ends(&mut chunker, data, ends);
                    }
                }
                let last = block.len < READ_BLOCK;
                if full_tx.send(block).is_err() || last {
                    break;
                }
            }
            Ok(())
        })();
        drop(full_tx);
        let (worker_chunker, hashes) = worker.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
        read_result?;
        // Whichever thread chunked knows whether a final chunk is pending.
        let pending = if with_sha256 { worker_chunker } else { chunker }
            .finish()
            .is_some();
        let (chunks, size) = hashes.finish(pending);
        Ok(FileDigest {
            file_hash: file_hash(&chunks),
            size,
            sha256: sha.map(Sha256Hasher::finish),
            chunks,
        })
    })
}

/// Reads until `buf` is full or the input ends; returns the bytes read.
fn read_full<R: Read>(reader: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match reader.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{gen, read_vector, vector_json, vector_names};

    #[test]
    fn every_vector_file_hash_chunks_and_sha() {
        for name in vector_names() {
            let j = vector_json(&format!("{name}.json"));
            let data = read_vector(&format!("{name}.input.bin"));
            let expected_chunks: Vec<(String, u64)> = j["chunks"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| {
                    (
                        c["hash"].as_str().unwrap().to_string(),
                        c["length"].as_u64().unwrap(),
                    )
                })
                .collect();
            let check = |d: &FileDigest, how: &str| {
                assert_eq!(
                    d.file_hash.to_string(),
                    j["file_hash"].as_str().unwrap(),
                    "{name} {how}"
                );
                assert_eq!(d.size, data.len() as u64);
                let got: Vec<(String, u64)> = d.chunks.iter().map(|(h, l)| (h.to_string(), *l)).collect();
                assert_eq!(got, expected_chunks, "{name} {how} chunks");
                if let Some(sha) = d.sha256 {
                    assert_eq!(
                        crate::hash::hex(&sha),
                        j["sha256"].as_str().unwrap(),
                        "{name} {how} sha"
                    );
                }
            };
            check(&digest_slice(&data, true, 3), "slice");
            check(&digest_slice(&data, false, 1), "slice/1");
            check(&digest_reader(&data[..], true).unwrap(), "reader");
            check(&digest_reader(&data[..], false).unwrap(), "reader/nosha");
            let mut h = FileHasher::new(true);
            for p in data.chunks(12_345) {
                h.update(p);
            }
            check(&h.finish(), "streaming");
        }
    }

    #[test]
    fn section5_files() {
        let d = digest_slice(&gen(1_000_000, 1), true, 2);
        assert_eq!(
            d.file_hash.to_string(),
            "14f3356658517aa9cec95ed857b20536b46a3fbc41a7f0d105429302747f5a1a"
        );
        assert_eq!(
            crate::hash::merkle_root(&d.chunks).to_string(),
            "e42649f256e7ae8f1da8f7049fa17503808da0b93b9cd76068a411e61f4f01ec"
        );
        assert_eq!(crate::hash::hex(&d.sha256.unwrap())[..8], *"2c80730e");
        let z = digest_slice(&[0u8; 300_000], false, 2);
        assert_eq!(
            z.file_hash.to_string(),
            "3d7bd4178bc2851ba07d59c24c3a88ae0c7220e9920d6c5c6a06b01556d46404"
        );
        let g = digest_slice(&gen(5000, 7), false, 2);
        assert_eq!(
            g.file_hash.to_string(),
            "5855f16ca3addad79b8d23834785fae6e55b6c717509ebe6e08411d570f11f12"
        );
        assert_eq!(
            crate::hash::merkle_root(&g.chunks).to_string(),
            "39676d9dc2808643275ae6f6e4962267d05647fe9039e8ac3df7c9d4a8a3a118"
        );
    }

    #[test]
    fn hash_primitives_vectors() {
        let j = vector_json("hash_primitives.json");
        for e in j["compute_data_hash"].as_array().unwrap() {
            let got = chunk_hash(e["input_utf8"].as_str().unwrap().as_bytes());
            assert_eq!(got.to_string(), e["hash"].as_str().unwrap());
        }
        for e in j["compute_internal_node_hash"].as_array().unwrap() {
            let got = crate::hash::internal_node_hash(e["input_utf8"].as_str().unwrap().as_bytes());
            assert_eq!(got.to_string(), e["hash"].as_str().unwrap());
        }
        assert_eq!(
            crate::hash::xorb_hash(&[]).to_string(),
            j["empty_list"]["xorb_hash"].as_str().unwrap()
        );
        assert_eq!(
            file_hash(&[]).to_string(),
            j["empty_list"]["file_hash"].as_str().unwrap()
        );
        let ex = &j["example_hex_vs_bytes"];
        let h: MerkleHash = ex["hash_hex"].as_str().unwrap().parse().unwrap();
        assert_eq!(
            crate::hash::hex(h.as_bytes()),
            ex["raw_bytes_hex"].as_str().unwrap()
        );
        let data = read_vector("xorshift_3mib.input.bin");
        let chunks = digest_slice(&data, false, 2).chunks;
        let prefixes = j["xorshift_3mib_prefixes"].as_array().unwrap();
        assert_eq!(prefixes.len(), 54);
        for p in prefixes {
            let n = p["num_chunks"].as_u64().unwrap() as usize;
            assert_eq!(
                crate::hash::xorb_hash(&chunks[..n]).to_string(),
                p["xorb_hash"].as_str().unwrap(),
                "{n}"
            );
            assert_eq!(
                file_hash(&chunks[..n]).to_string(),
                p["file_hash"].as_str().unwrap(),
                "{n}"
            );
        }
    }

    #[test]
    fn generated_stream_matches_input_files() {
        let data = read_vector("xorshift_3mib.input.bin");
        assert_eq!(crate::test_support::xorshift_stream(data.len()), data);
    }
}
