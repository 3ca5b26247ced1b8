//! Forming xorbs (XET-PROTOCOL.md §6.1): chunks in, an upload body and the
//! bookkeeping a shard needs out.

use std::ops::Range;

use super::compression::{compress_chunk, CompressedChunk, SchemeSelector};
use super::footer::{write_v1, FOOTER_BUFFER_LEN};
use super::{
    CompressionPolicy, CompressionScheme, XorbObjectInfo, CHUNK_HEADER_LEN, MAX_XORB_BYTES, MAX_XORB_CHUNKS,
};
use crate::chunker::MAX_CHUNK_SIZE;
use crate::error::{Error, Result};
use crate::hash::{xorb_hash, HashedLength};
use crate::MerkleHash;

/// Where one chunk sits in a built xorb.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct XorbChunkInfo {
    /// The chunk hash.
    pub hash: MerkleHash,
    /// Its length uncompressed.
    pub uncompressed_len: u32,
    /// Sum of the uncompressed lengths of the chunks before it: the start offset a
    /// shard's CAS-Info entry records (§6.1, §7.4).
    pub uncompressed_start: u32,
    /// Start of its record (header included) in the body.
    pub byte_start: u32,
    /// End (exclusive) of its record in the body.
    pub byte_end: u32,
    /// The scheme its payload was stored with.
    pub scheme: CompressionScheme,
}

impl XorbChunkInfo {
    /// Its record's byte range in the body.
    pub fn record_range(&self) -> Range<usize> {
        self.byte_start as usize..self.byte_end as usize
    }
}

/// Collects chunks into one xorb, compressing each under a [`CompressionPolicy`].
///
/// Add chunks in order with [`add_chunk`](Self::add_chunk) until it returns
/// `false` (the chunk did not fit: [`finish`](Self::finish) this xorb and add it to
/// a new one), calling [`start_file`](Self::start_file) where a new file's chunks
/// begin (only the `auto` policy cares). With a chunk list and a policy matching the
/// official client's, the body is byte-identical to the one it uploads.
///
/// # When is a xorb full
///
/// A chunk is refused if the xorb would then hold more than [`MAX_XORB_CHUNKS`]
/// chunks, more than [`MAX_XORB_BYTES`] uncompressed bytes, or more than
/// [`MAX_XORB_BYTES`] serialized bytes counting the new chunk at its worst case
/// (header plus uncompressed length). The spec limits the serialized size; xet-core
/// cuts on the uncompressed size, which lets incompressible xorbs exceed 64 MiB by
/// their headers. How strictly servers check is unconfirmed (§6.1, §14 #14), so we
/// are the cautious client and satisfy both readings. Counting the new chunk at its
/// worst case also means the cut never depends on how well it compresses, so
/// compressing ahead on other threads ([`add_compressed`](Self::add_compressed))
/// cuts at the same places.
///
/// ```
/// use xet_format::{hash::chunk_hash, xorb::{decode_xorb, CompressionPolicy, XorbBuilder}};
/// let mut b = XorbBuilder::new(CompressionPolicy::Auto);
/// for chunk in [&b"hello world"[..], &[0u8; 1000][..]] {
///     assert!(b.add_chunk(chunk_hash(chunk), chunk).unwrap());
/// }
/// let xorb = b.finish();
/// assert_eq!(xorb.chunks.len(), 2);
/// let back = decode_xorb(&xorb.body).unwrap();
/// assert_eq!((back.hash, &back.chunks[1].data[..]), (xorb.hash, &[0u8; 1000][..]));
/// ```
#[derive(Debug, Clone)]
pub struct XorbBuilder {
    selector: SchemeSelector,
    body: Vec<u8>,
    chunks: Vec<XorbChunkInfo>,
    raw_len: u64,
}

impl XorbBuilder {
    /// An empty xorb whose chunks will be compressed under `policy`.
    pub fn new(policy: CompressionPolicy) -> Self {
        Self::with_selector(SchemeSelector::new(policy))
    }

    /// An empty xorb whose chunks' schemes `selector` picks (for a non-default
    /// retest interval). The selector should be fresh.
    pub fn with_selector(selector: SchemeSelector) -> Self {
        XorbBuilder {
            selector,
            body: Vec::new(),
            chunks: Vec::new(),
            raw_len: 0,
        }
    }

    /// Reserves room for `additional` more body bytes, so a body built to a known
    /// size is allocated once instead of grown by copying.
    pub fn reserve(&mut self, additional: usize) {
        self.body
            .reserve(additional.min(MAX_XORB_BYTES - self.body.len().min(MAX_XORB_BYTES)));
    }

    /// The compression policy.
    pub fn policy(&self) -> CompressionPolicy {
        self.selector.policy()
    }

    /// Marks that the next chunk added is the first (new) chunk of another file; the
    /// `auto` policy decides afresh there (§6.3). The first chunk of a xorb always
    /// counts as such.
    pub fn start_file(&mut self) {
        self.selector.start_file();
    }

    /// Whether a chunk of `uncompressed_len` bytes would fit (see the type's docs).
    pub fn fits(&self, uncompressed_len: usize) -> bool {
        self.chunks.len() < MAX_XORB_CHUNKS
            && self.raw_len + uncompressed_len as u64 <= MAX_XORB_BYTES as u64
            && self.body.len() + CHUNK_HEADER_LEN + uncompressed_len <= MAX_XORB_BYTES
    }

    /// Compresses and appends a chunk whose bytes are `data` and chunk hash `hash`
    /// (trusted; [`validate_xorb`](super::validate_xorb) would catch a wrong one).
    /// Returns `false`, changing nothing, if the xorb has no room for it. Fails if
    /// the chunk is longer than 131072 bytes.
    pub fn add_chunk(&mut self, hash: MerkleHash, data: &[u8]) -> Result<bool> {
        if data.len() > MAX_CHUNK_SIZE {
            return Err(Error::LimitExceeded {
                what: "chunk size",
                limit: MAX_CHUNK_SIZE as u64,
                actual: data.len() as u64,
            });
        }
        if !self.fits(data.len()) {
            return Ok(false);
        }
        let scheme = self.selector.next_scheme(data);
        let chunk = compress_chunk(data, scheme)?;
        self.push(hash, &chunk);
        Ok(true)
    }

    /// Appends a chunk compressed elsewhere (with [`compress_chunk`], say on a worker
    /// thread, with the scheme a [`SchemeSelector`] of the same policy gave for it).
    /// Returns `false`, changing nothing, if it does not fit; the fit does not depend
    /// on the compressed size, so it is the same answer [`add_chunk`](Self::add_chunk)
    /// would give. Where the `auto` policy opens a block, `chunk.requested` becomes
    /// the block's scheme. Fails if the header and payload disagree.
    pub fn add_compressed(&mut self, hash: MerkleHash, chunk: &CompressedChunk<'_>) -> Result<bool> {
        chunk.header.validate()?;
        if chunk.header.compressed_len as usize != chunk.payload.len() {
            return Err(Error::invalid(
                "compressed chunk",
                0,
                format!(
                    "header says {} payload bytes, the payload has {}",
                    chunk.header.compressed_len,
                    chunk.payload.len()
                ),
            ));
        }
        if !self.fits(chunk.header.uncompressed_len as usize) {
            return Ok(false);
        }
        self.selector.advance_with(chunk.requested);
        self.push(hash, chunk);
        Ok(true)
    }

    fn push(&mut self, hash: MerkleHash, chunk: &CompressedChunk<'_>) {
        let byte_start = self.body.len();
        chunk.write_record(&mut self.body);
        // `fits` keeps the body and the raw total within 64 MiB, so both fit a u32.
        self.chunks.push(XorbChunkInfo {
            hash,
            uncompressed_len: chunk.header.uncompressed_len,
            uncompressed_start: self.raw_len as u32,
            byte_start: byte_start as u32,
            byte_end: self.body.len() as u32,
            scheme: chunk.header.scheme,
        });
        self.raw_len += u64::from(chunk.header.uncompressed_len);
    }

    /// Chunks added so far.
    pub fn num_chunks(&self) -> usize {
        self.chunks.len()
    }

    /// Bytes of the body so far (headers and payloads).
    pub fn serialized_len(&self) -> usize {
        self.body.len()
    }

    /// Uncompressed bytes added so far.
    pub fn raw_len(&self) -> u64 {
        self.raw_len
    }

    /// Whether no chunk was added.
    pub fn is_empty(&self) -> bool {
        self.chunks.is_empty()
    }

    /// The finished xorb. An empty builder gives the empty xorb (no chunks, empty
    /// body, hash zero), which is never uploaded and which
    /// [`validate_xorb`](super::validate_xorb) refuses.
    pub fn finish(self) -> SerializedXorb {
        let leaves: Vec<HashedLength> = self
            .chunks
            .iter()
            .map(|c| (c.hash, u64::from(c.uncompressed_len)))
            .collect();
        SerializedXorb {
            hash: xorb_hash(&leaves),
            body: self.body,
            chunks: self.chunks,
        }
    }
}

/// A finished xorb: its hash, the body a client uploads, and where each chunk is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SerializedXorb {
    /// The xorb hash (§4.4).
    pub hash: MerkleHash,
    /// The chunk records, without footer: the upload body (§6.2, §6.5).
    pub body: Vec<u8>,
    /// Each chunk's place, in order.
    pub chunks: Vec<XorbChunkInfo>,
}

impl SerializedXorb {
    /// Total uncompressed bytes.
    pub fn raw_len(&self) -> u64 {
        self.chunks.iter().map(|c| u64::from(c.uncompressed_len)).sum()
    }

    /// Each chunk's `(hash, uncompressed length)`, the leaves of the xorb hash.
    pub fn hashed_lengths(&self) -> Vec<HashedLength> {
        self.chunks
            .iter()
            .map(|c| (c.hash, u64::from(c.uncompressed_len)))
            .collect()
    }

    /// The version 1 footer of this xorb, with a zero buffer (no nonce), as the
    /// official client builds it (§6.5).
    pub fn footer(&self) -> XorbObjectInfo {
        XorbObjectInfo {
            xorb_hash: self.hash,
            chunk_hashes: self.chunks.iter().map(|c| c.hash).collect(),
            chunk_boundary_offsets: self.chunks.iter().map(|c| c.byte_end).collect(),
            unpacked_chunk_offsets: Some(
                self.chunks
                    .iter()
                    .map(|c| c.uncompressed_start + c.uncompressed_len)
                    .collect(),
            ),
            buffer: [0; FOOTER_BUFFER_LEN],
        }
    }

    /// The body followed by the footer: the xorb as stored (the `NAME.xorb.*.bin`
    /// vector files). Clients upload [`body`](Self::body) only.
    pub fn to_bytes_with_footer(&self) -> Vec<u8> {
        let f = self.footer();
        let mut out = Vec::with_capacity(self.body.len() + f.info_length() + 4);
        out.extend_from_slice(&self.body);
        // Built from our own records, so the vectors agree and the offsets are
        // valid; write directly rather than through the checking encoder.
        let unpacked = f.unpacked_chunk_offsets.as_deref().unwrap_or_default();
        write_v1(
            &mut out,
            &f.xorb_hash,
            &f.chunk_hashes,
            &f.chunk_boundary_offsets,
            unpacked,
            &f.buffer,
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::chunk_hash;
    use crate::test_support::read_vector;
    use crate::xorb::testing::vector_xorbs;
    use crate::xorb::{compress_chunk, ChunkHeader, ChunkRecords};

    /// Every official xorb, in all four policies, byte for byte: the upload body,
    /// the stored form with footer, the xorb hash and every chunk header.
    #[test]
    fn vectors_reproduced_byte_for_byte() {
        for v in vector_xorbs() {
            for policy in CompressionPolicy::ALL {
                let s = &v.json["xorb"]["serialized"][policy.name()];
                let file = read_vector(s["file"].as_str().unwrap());
                let footer_start = s["footer_start"].as_u64().unwrap() as usize;
                let mut b = XorbBuilder::new(policy);
                b.start_file();
                for ((h, _), data) in v.chunks.iter().zip(v.chunk_data()) {
                    assert!(b.add_chunk(*h, data).unwrap());
                }
                assert_eq!(b.serialized_len(), footer_start);
                let x = b.finish();
                let what = format!("{} {policy}", v.name);
                assert_eq!(
                    x.hash.to_string(),
                    v.json["xorb"]["hash"].as_str().unwrap(),
                    "{what}"
                );
                assert!(x.body == file[..footer_start], "{what}: body differs");
                assert!(x.to_bytes_with_footer() == file, "{what}: stored form differs");
                assert_eq!(x.footer().to_bytes().unwrap(), &file[footer_start..], "{what}");
                assert_eq!(x.raw_len(), v.json["xorb"]["raw_bytes"].as_u64().unwrap());
                let headers = s["chunk_headers"].as_array().unwrap();
                assert_eq!(headers.len(), x.chunks.len());
                let mut raw = 0;
                for ((c, want), rec) in x.chunks.iter().zip(headers).zip(ChunkRecords::new(&x.body)) {
                    let rec = rec.unwrap();
                    assert_eq!(
                        u64::from(c.byte_start),
                        want["offset"].as_u64().unwrap(),
                        "{what}"
                    );
                    assert_eq!(rec.offset, want["offset"].as_u64().unwrap());
                    assert_eq!(c.scheme.name(), want["scheme"].as_str().unwrap(), "{what}");
                    assert_eq!(rec.header.scheme, c.scheme);
                    assert_eq!(
                        u64::from(rec.header.compressed_len),
                        want["compressed_length"].as_u64().unwrap()
                    );
                    assert_eq!(
                        u64::from(c.uncompressed_len),
                        want["uncompressed_length"].as_u64().unwrap()
                    );
                    assert_eq!(c.byte_end as usize, c.byte_start as usize + rec.record_len());
                    assert_eq!(c.uncompressed_start, raw);
                    raw += c.uncompressed_len;
                }
            }
        }
    }

    /// The parallel path (selector + compress_chunk + add_compressed) gives the
    /// same bytes as add_chunk, here on the vectors under `auto`.
    #[test]
    fn compressing_ahead_gives_the_same_xorb() {
        for v in vector_xorbs() {
            let mut serial = XorbBuilder::new(CompressionPolicy::Auto);
            let mut sel = SchemeSelector::new(CompressionPolicy::Auto);
            let compressed: Vec<_> = v
                .chunk_data()
                .map(|d| compress_chunk(d, sel.next_scheme(d)).unwrap())
                .collect();
            let mut parallel = XorbBuilder::new(CompressionPolicy::Auto);
            for (((h, _), d), c) in v.chunks.iter().zip(v.chunk_data()).zip(&compressed) {
                assert!(serial.add_chunk(*h, d).unwrap());
                assert!(parallel.add_compressed(*h, c).unwrap());
            }
            assert_eq!(serial.finish(), parallel.finish());
        }
    }

    #[test]
    fn file_starts_reset_the_auto_blocks() {
        // Chunk A opens a BG4 block, chunk B alone would be LZ4. Without a file
        // start, B follows A's block; after start_file, B is decided afresh.
        let mut a = crate::test_support::gen(8192, 5);
        for q in a.chunks_exact_mut(4) {
            q[3] = 0xFF;
        }
        let b_data = vec![0u8; 8192];
        for (new_file, want) in [
            (false, CompressionScheme::ByteGrouping4Lz4),
            (true, CompressionScheme::Lz4),
        ] {
            let mut b = XorbBuilder::new(CompressionPolicy::Auto);
            b.add_chunk(chunk_hash(&a), &a).unwrap();
            if new_file {
                b.start_file();
            }
            b.add_chunk(chunk_hash(&b_data), &b_data).unwrap();
            let x = b.finish();
            assert_eq!(x.chunks[0].scheme, CompressionScheme::ByteGrouping4Lz4);
            assert_eq!(x.chunks[1].scheme, want);
        }
    }

    #[test]
    fn cut_at_8192_chunks() {
        let mut b = XorbBuilder::new(CompressionPolicy::Lz4);
        let h = chunk_hash(b"x");
        for _ in 0..MAX_XORB_CHUNKS {
            assert!(b.add_chunk(h, b"x").unwrap());
        }
        assert!(!b.fits(0));
        assert!(!b.add_chunk(h, b"x").unwrap());
        assert_eq!(b.num_chunks(), MAX_XORB_CHUNKS);
        let c = compress_chunk(b"x", CompressionScheme::Lz4).unwrap();
        assert!(!b.add_compressed(h, &c).unwrap());
        assert_eq!(b.finish().chunks.len(), MAX_XORB_CHUNKS);
    }

    #[test]
    fn cut_at_64_mib_serialized_for_incompressible_chunks() {
        // 131072-byte random chunks stored as is take 131080 bytes each: 511 fit in
        // 64 MiB, the 512th (which would still fit by raw size) does not.
        let data = crate::test_support::gen(MAX_CHUNK_SIZE, 77);
        let h = chunk_hash(&data);
        let mut b = XorbBuilder::new(CompressionPolicy::None);
        let mut n = 0;
        while b.add_chunk(h, &data).unwrap() {
            n += 1;
        }
        assert_eq!(n, 511);
        assert!(b.serialized_len() <= MAX_XORB_BYTES);
        assert_eq!(b.raw_len(), 511 * MAX_CHUNK_SIZE as u64);
        // Still room for a smaller chunk.
        assert!(b.add_chunk(chunk_hash(b"tail"), b"tail").unwrap());
    }

    #[test]
    fn cut_at_64_mib_raw_for_compressible_chunks() {
        // Zeros compress ~250x, but the xorb still stops at 64 MiB of chunks, as the
        // official client's does.
        let data = vec![0u8; MAX_CHUNK_SIZE];
        let h = chunk_hash(&data);
        let c = compress_chunk(&data, CompressionScheme::Lz4).unwrap();
        let mut b = XorbBuilder::new(CompressionPolicy::Lz4);
        let mut n = 0;
        while b.add_compressed(h, &c).unwrap() {
            n += 1;
        }
        assert_eq!(n, 512);
        assert_eq!(b.raw_len(), MAX_XORB_BYTES as u64);
        assert!(b.serialized_len() < 1 << 20);
        // Full by raw size: one more byte does not fit, an empty chunk still does.
        assert!(!b.fits(1) && b.fits(0));
    }

    #[test]
    fn typed_errors() {
        let mut b = XorbBuilder::new(CompressionPolicy::Auto);
        let big = vec![0u8; MAX_CHUNK_SIZE + 1];
        assert!(matches!(
            b.add_chunk(chunk_hash(&big), &big),
            Err(Error::LimitExceeded {
                what: "chunk size",
                limit: 131072,
                actual: 131073
            })
        ));
        let mut c = compress_chunk(&[1u8; 100], CompressionScheme::Lz4).unwrap();
        c.header.compressed_len += 1;
        assert!(matches!(
            b.add_compressed(MerkleHash::ZERO, &c),
            Err(Error::InvalidField { .. })
        ));
        c.header = ChunkHeader {
            uncompressed_len: 1 << 20,
            ..c.header
        };
        assert!(b.add_compressed(MerkleHash::ZERO, &c).is_err());
        assert!(b.is_empty());
    }

    #[test]
    fn empty_builder_gives_the_empty_xorb() {
        let x = XorbBuilder::new(CompressionPolicy::Auto).finish();
        assert_eq!(x.hash, MerkleHash::ZERO);
        assert!(x.body.is_empty() && x.chunks.is_empty());
        assert_eq!(x.to_bytes_with_footer().len(), 96);
    }
}
