//! Reading xorbs: runs of chunk records (what a ranged download returns) and whole
//! xorbs with or without footer (XET-PROTOCOL.md §6.2, §6.5, §9.4).

use super::compression::decompress_into;
use super::footer::FOOTER_BUFFER_LEN;
use super::header::FOOTER_IDENT;
use super::{
    ChunkHeader, CompressionScheme, XorbObjectInfo, CHUNK_HEADER_LEN, MAX_XORB_BYTES_ACCEPTED,
    MAX_XORB_CHUNKS,
};
use crate::error::{Error, Result};
use crate::hash::{chunk_hash, xorb_hash, HashedLength};
use crate::MerkleHash;

/// One chunk record as found in the input: its header and its still-compressed
/// payload, borrowed from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkRecord<'a> {
    /// Index of the chunk (counted from the run's first chunk index).
    pub index: u64,
    /// Byte offset of the record's header (counted from the run's first offset).
    pub offset: u64,
    /// The parsed header.
    pub header: ChunkHeader,
    /// The payload, `header.compressed_len` bytes.
    pub payload: &'a [u8],
}

impl ChunkRecord<'_> {
    /// Length of the record: header plus payload.
    pub fn record_len(&self) -> usize {
        CHUNK_HEADER_LEN + self.payload.len()
    }

    /// Decodes the chunk and appends its `header.uncompressed_len` bytes to `out`
    /// (on error `out` is left as it was). At most that many bytes are ever
    /// produced or allocated, whatever the payload claims.
    pub fn decode_into(&self, out: &mut Vec<u8>) -> Result<()> {
        decode_appending(self, out, &mut Vec::new())
    }

    /// Decodes the chunk into a new vector.
    pub fn decode(&self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.decode_into(&mut out)?;
        Ok(out)
    }

    /// Decodes into `out`, exactly `uncompressed_len` long, with a reusable scratch.
    fn decode_to_slice(&self, out: &mut [u8], scratch: &mut Vec<u8>) -> Result<()> {
        decompress_into(self.header.scheme, self.payload, out, scratch).map_err(|reason| {
            Error::Decompression {
                chunk_index: self.index,
                offset: self.offset,
                reason,
            }
        })
    }
}

fn decode_appending(rec: &ChunkRecord<'_>, out: &mut Vec<u8>, scratch: &mut Vec<u8>) -> Result<()> {
    let start = out.len();
    // At most 131072 bytes, checked when the header was parsed.
    out.resize(start + rec.header.uncompressed_len as usize, 0);
    let r = rec.decode_to_slice(&mut out[start..], scratch);
    if r.is_err() {
        out.truncate(start);
    }
    r
}

/// Walks a run of chunk records, `[header][payload]` after `[header][payload]`, and
/// yields each record without decompressing it; stops at the first error.
///
/// This is what a ranged download of a xorb returns (§9.4): records only, no
/// footer; meeting the footer's `XETBLOB` is an error here (use [`decode_xorb`] for
/// stored xorbs). An empty input is an empty run.
///
/// ```
/// use xet_format::xorb::ChunkRecords;
/// let run = b"\x00\x0b\x00\x00\x00\x0b\x00\x00hello world";
/// let chunks: Vec<_> = ChunkRecords::new(run).decoded().collect::<Result<_, _>>().unwrap();
/// assert_eq!(chunks[0].1, b"hello world");
/// ```
#[derive(Debug, Clone)]
pub struct ChunkRecords<'a> {
    bytes: &'a [u8],
    pos: usize,
    index: u64,
    base: u64,
    stop_at_footer: bool,
    done: bool,
}

impl<'a> ChunkRecords<'a> {
    /// A walker over `bytes`, whose first record is chunk 0 at byte 0.
    pub fn new(bytes: &'a [u8]) -> Self {
        Self::starting_at(bytes, 0, 0)
    }

    /// A walker over `bytes` cut from a xorb at byte `byte_offset`, whose first record
    /// is chunk `first_chunk_index`; offsets and indices in records and errors then
    /// refer to the whole xorb.
    pub fn starting_at(bytes: &'a [u8], byte_offset: u64, first_chunk_index: u64) -> Self {
        ChunkRecords {
            bytes,
            pos: 0,
            index: first_chunk_index,
            base: byte_offset,
            stop_at_footer: false,
            done: false,
        }
    }

    /// Ends the walk, without error, where `XETBLOB` appears instead of a header.
    fn stopping_at_footer(mut self) -> Self {
        self.stop_at_footer = true;
        self
    }

    /// Bytes of the input consumed by the records yielded so far.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Turns the walker into one that yields each chunk's header and decoded bytes.
    pub fn decoded(self) -> DecodedChunkRecords<'a> {
        DecodedChunkRecords {
            records: self,
            scratch: Vec::new(),
        }
    }
}

impl<'a> Iterator for ChunkRecords<'a> {
    type Item = Result<ChunkRecord<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let rest = &self.bytes[self.pos..];
        if rest.is_empty() || (self.stop_at_footer && rest.starts_with(FOOTER_IDENT)) {
            self.done = true;
            return None;
        }
        let offset = self.base + self.pos as u64;
        let header = match ChunkHeader::parse_at(rest, offset, self.index) {
            Ok(h) => h,
            Err(e) => {
                self.done = true;
                return Some(Err(e));
            }
        };
        let payload = &rest[CHUNK_HEADER_LEN..];
        let n = header.compressed_len as usize;
        if payload.len() < n {
            self.done = true;
            return Some(Err(Error::XorbTruncated {
                chunk_index: self.index,
                part: "payload",
                offset: offset + CHUNK_HEADER_LEN as u64,
                needed: n as u64,
                remaining: payload.len() as u64,
            }));
        }
        let rec = ChunkRecord {
            index: self.index,
            offset,
            header,
            payload: &payload[..n],
        };
        self.pos += rec.record_len();
        self.index += 1;
        Some(Ok(rec))
    }
}

impl std::iter::FusedIterator for ChunkRecords<'_> {}

/// [`ChunkRecords`] decoding as it goes: yields `(header, chunk bytes)`.
#[derive(Debug, Clone)]
pub struct DecodedChunkRecords<'a> {
    records: ChunkRecords<'a>,
    scratch: Vec<u8>,
}

impl Iterator for DecodedChunkRecords<'_> {
    type Item = Result<(ChunkHeader, Vec<u8>)>;

    fn next(&mut self) -> Option<Self::Item> {
        let rec = match self.records.next()? {
            Ok(r) => r,
            Err(e) => return Some(Err(e)),
        };
        let mut out = Vec::new();
        if let Err(e) = decode_appending(&rec, &mut out, &mut self.scratch) {
            self.records.done = true;
            return Some(Err(e));
        }
        Some(Ok((rec.header, out)))
    }
}

/// Decodes a run of chunk records (a ranged download, §9.4) and appends the chunks'
/// bytes to `out`; returns each chunk's header, whose `uncompressed_len`s split what
/// was appended. On error `out` is left as it was.
pub fn decode_chunk_run(bytes: &[u8], out: &mut Vec<u8>) -> Result<Vec<ChunkHeader>> {
    let start = out.len();
    let mut scratch = Vec::new();
    let mut headers = Vec::new();
    for rec in ChunkRecords::new(bytes) {
        let r = rec.and_then(|rec| decode_appending(&rec, out, &mut scratch).map(|()| rec.header));
        match r {
            Ok(h) => headers.push(h),
            Err(e) => {
                out.truncate(start);
                return Err(e);
            }
        }
    }
    Ok(headers)
}

/// What a walk over a whole xorb found.
struct Walked {
    chunks: Vec<HashedLength>,
    /// End of each record.
    boundaries: Vec<u32>,
    /// Bytes of chunk records (where the footer starts, if any).
    body_len: usize,
    raw_len: u64,
    footer: Option<XorbObjectInfo>,
}

/// Walks every record of a whole xorb, decoding and hashing each chunk, and calls
/// `visit` with it; then decodes the footer if one follows. Enforces the chunk-count
/// limit as it goes. Chunks stored as is are hashed in place, without a copy.
fn walk(bytes: &[u8], mut visit: impl FnMut(&ChunkRecord<'_>, &[u8], MerkleHash)) -> Result<Walked> {
    let mut records = ChunkRecords::new(bytes).stopping_at_footer();
    let mut w = Walked {
        chunks: Vec::new(),
        boundaries: Vec::new(),
        body_len: 0,
        raw_len: 0,
        footer: None,
    };
    let mut buf = Vec::new();
    let mut scratch = Vec::new();
    while let Some(rec) = records.next() {
        let rec = rec.map_err(|e| footer_error_instead(bytes, records.position(), e))?;
        if w.chunks.len() == MAX_XORB_CHUNKS {
            return Err(Error::LimitExceeded {
                what: "xorb chunk count",
                limit: MAX_XORB_CHUNKS as u64,
                actual: MAX_XORB_CHUNKS as u64 + 1,
            });
        }
        let n = rec.header.uncompressed_len as usize;
        let data: &[u8] = if rec.header.scheme == CompressionScheme::None {
            rec.payload
        } else {
            buf.resize(n, 0);
            rec.decode_to_slice(&mut buf[..n], &mut scratch)?;
            &buf[..n]
        };
        let h = chunk_hash(data);
        visit(&rec, data, h);
        w.chunks.push((h, n as u64));
        w.raw_len += n as u64;
        // Records end within the input, and at most 8192 records of at most
        // 8 + 262144 bytes precede this one, so the offset fits in a u32.
        w.boundaries.push((rec.offset as usize + rec.record_len()) as u32);
    }
    w.body_len = records.position();
    if w.body_len < bytes.len() {
        w.footer = Some(XorbObjectInfo::decode_at(&bytes[w.body_len..], w.body_len)?);
    }
    Ok(w)
}

/// A header that fails to parse may be a footer whose `XETBLOB` is damaged: if the
/// xorb's trailing `info_length` says the footer starts right here, report what is
/// wrong with the footer instead. A valid header is never second-guessed this way.
fn footer_error_instead(bytes: &[u8], at: usize, header_error: Error) -> Error {
    let len = bytes.len();
    if len >= at + 4 + 8 {
        let info_length =
            u32::from_le_bytes([bytes[len - 4], bytes[len - 3], bytes[len - 2], bytes[len - 1]]);
        if info_length as usize == len - at - 4 {
            if let Err(e) = XorbObjectInfo::decode_at(&bytes[at..], at) {
                return e;
            }
        }
    }
    header_error
}

/// Checks that a footer describes exactly the chunks walked.
fn check_footer(footer: &XorbObjectInfo, w: &Walked, hash: &MerkleHash) -> Result<()> {
    let at = w.body_len;
    if footer.num_chunks() != w.chunks.len() {
        return Err(Error::invalid(
            "xorb footer chunk count",
            at,
            format!(
                "footer describes {} chunks, the xorb holds {}",
                footer.num_chunks(),
                w.chunks.len()
            ),
        ));
    }
    if let Some(k) = (0..w.chunks.len()).find(|&k| footer.chunk_boundary_offsets[k] != w.boundaries[k]) {
        return Err(Error::invalid(
            "xorb footer chunk boundary offsets",
            at,
            format!(
                "footer says chunk {k}'s record ends at byte {}, it ends at byte {}",
                footer.chunk_boundary_offsets[k], w.boundaries[k]
            ),
        ));
    }
    if let Some(unpacked) = &footer.unpacked_chunk_offsets {
        let mut end = 0u64;
        for (k, (&stated, &(_, len))) in unpacked.iter().zip(&w.chunks).enumerate() {
            end += len;
            if u64::from(stated) != end {
                return Err(Error::invalid(
                    "xorb footer unpacked chunk offsets",
                    at,
                    format!("footer says chunk {k} ends at decompressed byte {stated}, it ends at {end}"),
                ));
            }
        }
    }
    if let Some(k) = (0..w.chunks.len()).find(|&k| footer.chunk_hashes[k] != w.chunks[k].0) {
        return Err(Error::invalid(
            "xorb footer chunk hash",
            at,
            format!(
                "footer says chunk {k} hashes to {}, it hashes to {}",
                footer.chunk_hashes[k], w.chunks[k].0
            ),
        ));
    }
    if footer.xorb_hash != *hash {
        return Err(Error::HashMismatch {
            what: "xorb footer",
            expected: footer.xorb_hash,
            actual: *hash,
        });
    }
    Ok(())
}

/// One chunk of a decoded xorb.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedChunk {
    /// Its record's header.
    pub header: ChunkHeader,
    /// Byte offset of its record in the xorb.
    pub byte_start: usize,
    /// Its chunk hash, computed from `data`.
    pub hash: MerkleHash,
    /// Its decompressed bytes.
    pub data: Vec<u8>,
}

/// A whole xorb, decoded by [`decode_xorb`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedXorb {
    /// The xorb hash, computed from the chunks.
    pub hash: MerkleHash,
    /// The chunks, in order.
    pub chunks: Vec<DecodedChunk>,
    /// Bytes of chunk records: the upload body's length, where a footer starts.
    pub body_len: usize,
    /// The footer, if the xorb had one (it was checked against the chunks).
    pub footer: Option<XorbObjectInfo>,
}

/// Decodes a whole xorb, with or without footer (§6.2, §6.5): every record,
/// decompressed and hashed, then the footer if `XETBLOB` follows the last record,
/// which must then agree with the chunks in every field. At most 8192 chunks.
///
/// An empty input decodes to an empty xorb (no chunks, hash zero), as does a lone
/// footer describing no chunks; [`validate_xorb`] is the stricter check that refuses
/// them.
pub fn decode_xorb(bytes: &[u8]) -> Result<DecodedXorb> {
    let mut chunks = Vec::new();
    let w = walk(bytes, |rec, data, hash| {
        chunks.push(DecodedChunk {
            header: rec.header,
            byte_start: rec.offset as usize,
            hash,
            data: data.to_vec(),
        })
    })?;
    let hash = xorb_hash(&w.chunks);
    if let Some(f) = &w.footer {
        check_footer(f, &w, &hash)?;
    }
    Ok(DecodedXorb {
        hash,
        chunks,
        body_len: w.body_len,
        footer: w.footer,
    })
}

/// What [`validate_xorb`] learnt about a valid xorb: enough to index it and to
/// write its footer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XorbSummary {
    /// The xorb hash (equal to the claimed one).
    pub hash: MerkleHash,
    /// Each chunk's hash and uncompressed length.
    pub chunks: Vec<HashedLength>,
    /// End of each chunk's record (the footer's boundary offsets).
    pub chunk_boundary_offsets: Vec<u32>,
    /// Bytes of chunk records, without any footer: the upload body's length.
    pub body_len: usize,
    /// Total uncompressed bytes.
    pub raw_len: u64,
    /// Whether the input ended with a footer (checked against the chunks).
    pub has_footer: bool,
    /// That footer's 16-byte buffer (its nonce), zero if there was none.
    pub footer_buffer: [u8; FOOTER_BUFFER_LEN],
}

impl XorbSummary {
    /// A version 1 footer for this xorb, keeping the uploaded footer's buffer (and
    /// so its uniqueness nonce) if there was one: what a server appends to store it.
    pub fn footer(&self) -> XorbObjectInfo {
        let mut end = 0u64;
        XorbObjectInfo {
            xorb_hash: self.hash,
            chunk_hashes: self.chunks.iter().map(|c| c.0).collect(),
            chunk_boundary_offsets: self.chunk_boundary_offsets.clone(),
            // At most 8192 chunks of at most 131072 bytes: 2^30, fits a u32.
            unpacked_chunk_offsets: Some(
                self.chunks
                    .iter()
                    .map(|c| {
                        end += c.1;
                        end as u32
                    })
                    .collect(),
            ),
            buffer: self.footer_buffer,
        }
    }
}

/// Checks an uploaded xorb as a CAS server must before storing it under
/// `claimed_hash`: every record well formed and every chunk decompressing to its
/// declared length, the Merkle root of the chunks equal to `claimed_hash`
/// ([`Error::HashMismatch`] otherwise), at most 8192 chunks and at most
/// [`MAX_XORB_BYTES_ACCEPTED`] bytes of records, nothing after the last record but
/// an optional footer, and that footer, if present, agreeing with the chunks in
/// every field.
///
/// A xorb must hold at least one chunk: clients never upload an empty xorb (an
/// empty file has none), and its hash would be the all-zero hash, so an input
/// without chunks (empty, or a lone footer) is refused.
///
/// One pass, no copies of chunks stored as is, one reused buffer for the others.
pub fn validate_xorb(bytes: &[u8], claimed_hash: &MerkleHash) -> Result<XorbSummary> {
    // Bound the work up front: records plus the largest footer (8192 chunks).
    let limit = MAX_XORB_BYTES_ACCEPTED + 92 + 40 * MAX_XORB_CHUNKS + 4;
    if bytes.len() > limit {
        return Err(Error::LimitExceeded {
            what: "xorb size in bytes",
            limit: limit as u64,
            actual: bytes.len() as u64,
        });
    }
    let w = walk(bytes, |_, _, _| {})?;
    if w.chunks.is_empty() {
        return Err(Error::invalid(
            "xorb",
            0,
            "it holds no chunk records; a xorb has at least one chunk (an empty file uploads no xorb)",
        ));
    }
    if w.body_len > MAX_XORB_BYTES_ACCEPTED {
        return Err(Error::LimitExceeded {
            what: "xorb size in bytes",
            limit: MAX_XORB_BYTES_ACCEPTED as u64,
            actual: w.body_len as u64,
        });
    }
    let hash = xorb_hash(&w.chunks);
    if hash != *claimed_hash {
        return Err(Error::HashMismatch {
            what: "xorb",
            expected: *claimed_hash,
            actual: hash,
        });
    }
    if let Some(f) = &w.footer {
        check_footer(f, &w, &hash)?;
    }
    Ok(XorbSummary {
        hash,
        body_len: w.body_len,
        raw_len: w.raw_len,
        has_footer: w.footer.is_some(),
        footer_buffer: w.footer.as_ref().map_or([0; FOOTER_BUFFER_LEN], |f| f.buffer),
        chunks: w.chunks,
        chunk_boundary_offsets: w.boundaries,
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::test_support::read_vector;
    use crate::xorb::testing::vector_xorbs;
    use crate::xorb::{
        compress_chunk, CompressionPolicy, SerializedXorb, XorbBuilder, MAX_CHUNK_UNCOMPRESSED_LEN,
    };

    fn build(chunks: &[Vec<u8>], policy: CompressionPolicy, file_starts: &[usize]) -> SerializedXorb {
        let mut b = XorbBuilder::new(policy);
        for (i, c) in chunks.iter().enumerate() {
            if file_starts.contains(&i) {
                b.start_file();
            }
            assert!(b.add_chunk(chunk_hash(c), c).unwrap());
        }
        b.finish()
    }

    fn datas(x: &DecodedXorb) -> Vec<&[u8]> {
        x.chunks.iter().map(|c| &c.data[..]).collect()
    }

    /// Every official xorb file decodes to the file's chunks, with and without its
    /// footer, and passes validation under its hash.
    #[test]
    fn vectors_decode_and_validate() {
        for v in vector_xorbs() {
            let want: Vec<&[u8]> = v.chunk_data().collect();
            let hash: MerkleHash = v.json["xorb"]["hash"].as_str().unwrap().parse().unwrap();
            for (policy, s) in v.json["xorb"]["serialized"].as_object().unwrap() {
                let what = format!("{} {policy}", v.name);
                let file = read_vector(s["file"].as_str().unwrap());
                let footer_start = s["footer_start"].as_u64().unwrap() as usize;
                let full = decode_xorb(&file).unwrap();
                assert_eq!(datas(&full), want, "{what}");
                assert_eq!((full.hash, full.body_len), (hash, footer_start));
                let footer = full.footer.clone().expect("stored vectors have a footer");
                for (c, h) in full.chunks.iter().zip(&footer.chunk_hashes) {
                    assert_eq!(c.hash, *h);
                }
                let body = decode_xorb(&file[..footer_start]).unwrap();
                assert_eq!(body.footer, None);
                assert_eq!(body.chunks, full.chunks);
                for bytes in [&file[..], &file[..footer_start]] {
                    let sum = validate_xorb(bytes, &hash).unwrap();
                    assert_eq!(sum.has_footer, bytes.len() == file.len());
                    assert_eq!(sum.body_len, footer_start);
                    assert_eq!(sum.raw_len, v.json["xorb"]["raw_bytes"].as_u64().unwrap());
                    assert_eq!(sum.footer(), footer, "{what}");
                }
                // A ranged download: the records of chunks 1..3 (or what exists).
                let n = footer.num_chunks();
                let (a, b) = (1.min(n - 1), 3.min(n));
                let start = if a == 0 {
                    0
                } else {
                    footer.chunk_boundary_offsets[a - 1] as usize
                };
                let end = footer.chunk_boundary_offsets[b - 1] as usize;
                let mut out = b"prefix".to_vec();
                let headers = decode_chunk_run(&file[start..end], &mut out).unwrap();
                assert_eq!(headers.len(), b - a);
                assert_eq!(&out[6..], want[a..b].concat());
                let recs: Vec<_> = ChunkRecords::starting_at(&file[start..end], start as u64, a as u64)
                    .map(|r| r.unwrap())
                    .collect();
                assert_eq!((recs[0].index, recs[0].offset), (a as u64, start as u64));
                // The whole stored file is not a run of records: the footer is refused.
                assert!(matches!(
                    decode_chunk_run(&file, &mut Vec::new()),
                    Err(Error::InvalidField {
                        what: "xorb chunk header",
                        ..
                    })
                ));
                // A wrong claim is refused.
                assert!(matches!(
                    validate_xorb(&file, &MerkleHash::ZERO),
                    Err(Error::HashMismatch { what: "xorb", .. })
                ));
            }
        }
    }

    /// A small xorb with one chunk of each scheme, with footer, for error tests.
    fn sample() -> (SerializedXorb, Vec<Vec<u8>>) {
        let lz4 = b"abcd".repeat(300);
        let mut bg4 = crate::test_support::gen(1000, 4);
        for q in bg4.chunks_exact_mut(4) {
            q[0] = 0;
        }
        let chunks = vec![lz4, bg4, b"hello world".to_vec()];
        let mut b = XorbBuilder::new(CompressionPolicy::Lz4);
        assert!(b.add_chunk(chunk_hash(&chunks[0]), &chunks[0]).unwrap());
        let c = compress_chunk(&chunks[1], CompressionScheme::ByteGrouping4Lz4).unwrap();
        assert!(b.add_compressed(chunk_hash(&chunks[1]), &c).unwrap());
        assert!(b.add_chunk(chunk_hash(&chunks[2]), &chunks[2]).unwrap());
        let x = b.finish();
        let schemes: Vec<_> = x.chunks.iter().map(|c| c.scheme).collect();
        assert_eq!(
            schemes,
            [
                CompressionScheme::Lz4,
                CompressionScheme::ByteGrouping4Lz4,
                CompressionScheme::None
            ]
        );
        (x, chunks)
    }

    #[test]
    fn typed_errors() {
        let (x, _) = sample();
        let body = &x.body;
        let c1 = x.chunks[1].byte_start as usize;
        let c2 = x.chunks[2].byte_start as usize;
        let with = |f: &dyn Fn(&mut Vec<u8>)| {
            let mut b = body.clone();
            f(&mut b);
            decode_xorb(&b).unwrap_err()
        };

        // Truncated header, with the message of the brief.
        let e = with(&|b| b.truncate(c2 + 3));
        assert_eq!(
            e,
            Error::XorbTruncated {
                chunk_index: 2,
                part: "header",
                offset: c2 as u64,
                needed: 8,
                remaining: 3
            }
        );
        assert_eq!(
            e.to_string(),
            format!("xorb truncated at byte {c2}: chunk 2 header needs 8 bytes, 3 remain")
        );
        // Truncated payload.
        let e = with(&|b| b.truncate(c2 + 10));
        assert!(matches!(
            e,
            Error::XorbTruncated {
                chunk_index: 2,
                part: "payload",
                needed: 11,
                remaining: 2,
                ..
            }
        ));
        // Wrong version byte.
        let e = with(&|b| b[c1] = 1);
        assert!(
            matches!(e, Error::InvalidField { what: "xorb chunk header version", offset, .. } if offset == c1 as u64)
        );
        assert!(e.to_string().contains("chunk 1 has version 1"), "{e}");
        // Unknown scheme.
        let e = with(&|b| b[c1 + 4] = 3);
        assert!(matches!(
            e,
            Error::InvalidField {
                what: "xorb chunk compression scheme",
                ..
            }
        ));
        // Uncompressed length over 131072.
        let e = with(&|b| b[c1 + 5..c1 + 8].copy_from_slice(&[1, 0, 2]));
        assert!(matches!(
            e,
            Error::InvalidField {
                what: "xorb chunk uncompressed length",
                ..
            }
        ));
        // A payload that decompresses to one byte fewer, or more, than declared.
        for delta in [-1i32, 1] {
            let e = with(&|b| {
                let u = u32::from_le_bytes([b[5], b[6], b[7], 0]) as i32 + delta;
                b[5..8].copy_from_slice(&u.to_le_bytes()[..3]);
            });
            assert!(
                matches!(
                    e,
                    Error::Decompression {
                        chunk_index: 0,
                        offset: 0,
                        ..
                    }
                ),
                "{e}"
            );
        }
        // The same for BG4, and for a chunk stored as is (whose lengths must agree).
        let e = with(&|b| b[c1 + 5] ^= 1);
        assert!(matches!(e, Error::Decompression { chunk_index: 1, .. }), "{e}");
        let e = with(&|b| b[c2 + 5] = 12);
        assert!(
            matches!(
                e,
                Error::InvalidField {
                    what: "xorb chunk compressed length",
                    ..
                }
            ),
            "{e}"
        );
        // Lying compressed lengths: past the end, or cutting the frame short.
        let e = with(&|b| {
            b[c2 + 1] = 200;
            b[c2 + 5] = 200;
        });
        assert!(matches!(
            e,
            Error::XorbTruncated {
                chunk_index: 2,
                part: "payload",
                ..
            }
        ));
        let e = with(&|b| b[1] -= 4);
        assert!(matches!(e, Error::Decompression { chunk_index: 0, .. }), "{e}");
        // Trailing garbage: not a record.
        let e = with(&|b| b.extend_from_slice(b"garbage"));
        assert!(matches!(
            e,
            Error::XorbTruncated {
                chunk_index: 3,
                part: "header",
                remaining: 7,
                ..
            }
        ));
        let e = with(&|b| b.extend_from_slice(b"garbage!"));
        assert!(matches!(e, Error::InvalidField { .. }));
        // Eight zero bytes are a valid empty chunk: only the hash catches them.
        let mut b = body.clone();
        b.extend_from_slice(&[0; 8]);
        assert_eq!(decode_xorb(&b).unwrap().chunks.len(), 4);
        assert!(matches!(
            validate_xorb(&b, &x.hash),
            Err(Error::HashMismatch { .. })
        ));
    }

    #[test]
    fn footer_must_agree_with_the_chunks() {
        let (x, _) = sample();
        let stored = x.to_bytes_with_footer();
        let fs = x.body.len();
        assert!(decode_xorb(&stored).is_ok());
        let footer_err = |f: &dyn Fn(&mut XorbObjectInfo)| {
            let mut info = x.footer();
            f(&mut info);
            let mut b = x.body.clone();
            info.write_to(&mut b).unwrap();
            (
                decode_xorb(&b).unwrap_err(),
                validate_xorb(&b, &x.hash).unwrap_err(),
            )
        };
        let (e, v) = footer_err(&|i| i.chunk_boundary_offsets[0] += 1);
        assert!(
            matches!(
                e,
                Error::InvalidField {
                    what: "xorb footer chunk boundary offsets",
                    ..
                }
            ),
            "{e}"
        );
        assert_eq!(e, v);
        let (e, _) = footer_err(&|i| i.unpacked_chunk_offsets.as_mut().unwrap()[1] -= 1);
        assert!(
            matches!(
                e,
                Error::InvalidField {
                    what: "xorb footer unpacked chunk offsets",
                    ..
                }
            ),
            "{e}"
        );
        let (e, _) = footer_err(&|i| i.chunk_hashes[2] = MerkleHash::ZERO);
        assert!(
            matches!(
                e,
                Error::InvalidField {
                    what: "xorb footer chunk hash",
                    ..
                }
            ),
            "{e}"
        );
        let (e, _) = footer_err(&|i| i.xorb_hash = MerkleHash::ZERO);
        assert!(
            matches!(
                e,
                Error::HashMismatch {
                    what: "xorb footer",
                    ..
                }
            ),
            "{e}"
        );
        let (e, _) = footer_err(&|i| {
            i.chunk_hashes.pop();
            i.chunk_boundary_offsets.pop();
            i.unpacked_chunk_offsets.as_mut().unwrap().pop();
        });
        assert!(
            matches!(
                e,
                Error::InvalidField {
                    what: "xorb footer chunk count",
                    ..
                }
            ),
            "{e}"
        );
        // A damaged `XETBLOB` is recognised through the trailing length.
        let mut b = stored.clone();
        b[fs] = b'Y';
        assert_eq!(
            decode_xorb(&b).unwrap_err(),
            Error::BadMagic {
                what: "xorb footer",
                offset: fs as u64
            }
        );
        // Anything after the footer, or a footer cut short.
        let mut b = stored.clone();
        b.push(0);
        assert!(decode_xorb(&b).is_err());
        assert!(decode_xorb(&stored[..stored.len() - 1]).is_err());
        // The nonce is free and kept.
        let mut info = x.footer();
        info.set_uniqueness_nonce([9, 8, 7, 6]);
        let mut b = x.body.clone();
        info.write_to(&mut b).unwrap();
        let s = validate_xorb(&b, &x.hash).unwrap();
        assert_eq!(s.footer(), info);
        assert_eq!(decode_xorb(&b).unwrap().footer, Some(info));
    }

    #[test]
    fn empty_xorbs() {
        // Decoding: nothing, or a lone footer of no chunks, is the empty xorb.
        let empty = XorbBuilder::new(CompressionPolicy::Auto).finish();
        for bytes in [Vec::new(), empty.to_bytes_with_footer()] {
            let d = decode_xorb(&bytes).unwrap();
            assert!(d.chunks.is_empty() && d.hash == MerkleHash::ZERO && d.body_len == 0);
            // Validation: a xorb holds at least one chunk.
            let e = validate_xorb(&bytes, &MerkleHash::ZERO).unwrap_err();
            assert!(matches!(e, Error::InvalidField { what: "xorb", .. }), "{e}");
        }
        assert_eq!(decode_chunk_run(b"", &mut Vec::new()).unwrap(), []);
        assert_eq!(ChunkRecords::new(b"").count(), 0);
    }

    #[test]
    fn more_than_8192_chunks() {
        // 8192 empty chunks (8 zero bytes each) are fine, 8193 are not.
        let leaves = vec![(chunk_hash(b""), 0u64); MAX_XORB_CHUNKS];
        let hash = xorb_hash(&leaves);
        let body = vec![0u8; 8 * MAX_XORB_CHUNKS];
        assert_eq!(validate_xorb(&body, &hash).unwrap().chunks.len(), MAX_XORB_CHUNKS);
        let body = vec![0u8; 8 * (MAX_XORB_CHUNKS + 1)];
        let want = Error::LimitExceeded {
            what: "xorb chunk count",
            limit: 8192,
            actual: 8193,
        };
        assert_eq!(validate_xorb(&body, &hash).unwrap_err(), want);
        assert_eq!(decode_xorb(&body).unwrap_err(), want);
        // A record run (a download) has no such limit of its own.
        assert_eq!(
            decode_chunk_run(&body, &mut Vec::new()).unwrap().len(),
            MAX_XORB_CHUNKS + 1
        );
    }

    #[test]
    fn more_than_64_mib() {
        // 513 chunks of 131072 bytes stored as is: 67_244_040 bytes of records,
        // more than 64 MiB plus a header per chunk.
        let chunk = crate::test_support::gen(MAX_CHUNK_UNCOMPRESSED_LEN, 1);
        let mut body = Vec::with_capacity(513 * (MAX_CHUNK_UNCOMPRESSED_LEN + 8));
        for _ in 0..513 {
            compress_chunk(&chunk, CompressionScheme::None)
                .unwrap()
                .write_record(&mut body);
        }
        let e = validate_xorb(&body, &MerkleHash::ZERO).unwrap_err();
        assert!(
            matches!(
                e,
                Error::LimitExceeded {
                    what: "xorb size in bytes",
                    ..
                }
            ),
            "{e}"
        );
        // The official client's largest incompressible xorb (512 such chunks, 64 MiB
        // of data and 4 KiB of headers) is accepted.
        body.truncate(512 * (MAX_CHUNK_UNCOMPRESSED_LEN + 8));
        let hash = xorb_hash(&vec![
            (chunk_hash(&chunk), MAX_CHUNK_UNCOMPRESSED_LEN as u64);
            512
        ]);
        assert_eq!(validate_xorb(&body, &hash).unwrap().raw_len, 64 << 20);
        // And a much larger input is refused before any work.
        body.resize(MAX_XORB_BYTES_ACCEPTED + 400_000, 0);
        assert!(matches!(
            validate_xorb(&body, &hash),
            Err(Error::LimitExceeded { .. })
        ));
    }

    #[test]
    fn decoded_records_iterator() {
        let (x, chunks) = sample();
        let got: Vec<_> = ChunkRecords::new(&x.body)
            .decoded()
            .map(|r| r.unwrap().1)
            .collect();
        assert_eq!(got, chunks);
        // It stops after the first error.
        let mut b = x.body.clone();
        b[x.chunks[1].byte_start as usize + 5] ^= 1;
        let results: Vec<_> = ChunkRecords::new(&b).decoded().collect();
        assert_eq!(results.len(), 2);
        assert!(results[0].is_ok() && results[1].is_err());
        // decode_into appends and leaves `out` alone on error.
        let rec = ChunkRecords::new(&b).nth(1).unwrap().unwrap();
        let mut out = vec![1, 2, 3];
        assert!(rec.decode_into(&mut out).is_err());
        assert_eq!(out, [1, 2, 3]);
    }

    /// Chunk contents for property tests: random, very compressible, or numeric-like
    /// (one byte lane constant, which BG4 likes).
    fn chunk_strategy() -> impl Strategy<Value = Vec<u8>> {
        let size = prop_oneof![
            0usize..300,
            0usize..=MAX_CHUNK_UNCOMPRESSED_LEN,
            Just(MAX_CHUNK_UNCOMPRESSED_LEN)
        ];
        (size, 0u8..3, any::<u64>()).prop_map(|(n, kind, seed)| match kind {
            0 => crate::test_support::gen(n, seed),
            1 => (0..n)
                .map(|i| ((i as u64).wrapping_mul(seed | 1) >> 11) as u8 & 7)
                .collect(),
            _ => {
                let mut d = crate::test_support::gen(n, seed);
                d.iter_mut().step_by(4).for_each(|b| *b = 0x3f);
                d
            }
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        #[test]
        fn round_trip_every_policy(
            chunks in proptest::collection::vec(chunk_strategy(), 1..6),
            starts in proptest::collection::vec(0usize..6, 0..3),
        ) {
            for policy in CompressionPolicy::ALL {
                let x = build(&chunks, policy, &starts);
                let want: Vec<&[u8]> = chunks.iter().map(|c| &c[..]).collect();
                let d = decode_xorb(&x.body).unwrap();
                prop_assert_eq!(datas(&d), want.clone());
                prop_assert_eq!(d.hash, x.hash);
                let stored = x.to_bytes_with_footer();
                let d = decode_xorb(&stored).unwrap();
                prop_assert_eq!(datas(&d), want.clone());
                prop_assert_eq!(d.footer.as_ref(), Some(&x.footer()));
                for bytes in [&x.body, &stored] {
                    let s = validate_xorb(bytes, &x.hash).unwrap();
                    prop_assert_eq!(s.footer(), x.footer());
                    prop_assert_eq!(s.chunks, x.hashed_lengths());
                }
                let mut out = Vec::new();
                let headers = decode_chunk_run(&x.body, &mut out).unwrap();
                prop_assert_eq!(headers.len(), chunks.len());
                prop_assert_eq!(out, chunks.concat());
                for (c, info) in chunks.iter().zip(&x.chunks) {
                    prop_assert!(info.byte_end - info.byte_start <= c.len() as u32 + 8);
                }
            }
        }
    }

    /// Small xorbs (so that every cut point and many flips can be tried).
    fn small_xorb() -> impl Strategy<Value = (SerializedXorb, Vec<Vec<u8>>)> {
        let chunk = (0usize..600, 0u8..2, any::<u64>()).prop_map(|(n, kind, seed)| {
            if kind == 0 {
                crate::test_support::gen(n, seed)
            } else {
                (0..n).map(|i| (i as u64 % (seed % 7 + 1)) as u8).collect()
            }
        });
        (proptest::collection::vec(chunk, 1..5), 0usize..4)
            .prop_map(|(chunks, p)| (build(&chunks, CompressionPolicy::ALL[p], &[]), chunks))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Cutting a stored xorb anywhere: it still decodes only where the cut is a
        /// record boundary (the body has no count, so a prefix of whole records is a
        /// well-formed, shorter xorb: its chunks are the prefix of the chunks), and
        /// it validates under the original hash only uncut or cut exactly at the
        /// footer (the upload body).
        #[test]
        fn truncation((x, chunks) in small_xorb()) {
            let stored = x.to_bytes_with_footer();
            let mut boundaries = vec![0usize];
            boundaries.extend(x.chunks.iter().map(|c| c.byte_end as usize));
            for p in 0..stored.len() {
                let cut = &stored[..p];
                match (decode_xorb(cut), boundaries.iter().position(|&b| b == p)) {
                    (Ok(d), Some(k)) => {
                        let want: Vec<&[u8]> = chunks[..k].iter().map(|c| &c[..]).collect();
                        prop_assert_eq!(datas(&d), want);
                    }
                    (Err(_), None) => {}
                    (r, k) => prop_assert!(false, "cut at {} of {}: {:?} at boundary {:?}", p, stored.len(), r.map(|d| d.chunks.len()), k),
                }
                prop_assert_eq!(validate_xorb(cut, &x.hash).is_ok(), p == x.body.len());
                let _ = decode_chunk_run(cut, &mut Vec::new());
            }
        }

        /// Changing a byte never panics, and validation never accepts a changed
        /// xorb under the original hash unless it still holds the same chunks. (That
        /// can happen: the footer's nonce is free, and an LZ4 frame can encode the
        /// same bytes differently, say a match offset of 1 or 2 into a run of
        /// zeros. The hash names content, not encoding.)
        #[test]
        fn byte_flips((x, chunks) in small_xorb(), at in any::<prop::sample::Index>(), xor in 1u8..=255) {
            let mut b = x.to_bytes_with_footer();
            let i = at.index(b.len());
            b[i] ^= xor;
            let decoded = decode_xorb(&b);
            let _ = decode_chunk_run(&b, &mut Vec::new());
            let _ = ChunkRecords::new(&b).decoded().count();
            if validate_xorb(&b, &x.hash).is_ok() {
                let want: Vec<&[u8]> = chunks.iter().map(|c| &c[..]).collect();
                let d = decoded.unwrap();
                prop_assert_eq!(datas(&d), want);
            }
            if validate_xorb(&b[..x.body.len()], &x.hash).is_ok() {
                let d = decode_xorb(&b[..x.body.len()]).unwrap();
                let want: Vec<&[u8]> = chunks.iter().map(|c| &c[..]).collect();
                prop_assert_eq!(datas(&d), want);
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = decode_xorb(&bytes);
            let _ = validate_xorb(&bytes, &MerkleHash::ZERO);
            let _ = decode_chunk_run(&bytes, &mut Vec::new());
            // Behind a plausible header, so that the payload decoders are reached.
            for scheme in 0..3u8 {
                let mut b = vec![0u8, 0, 0, 0, scheme, 0, 0, 0];
                let n = (bytes.len() as u32).to_le_bytes();
                b[1..4].copy_from_slice(&n[..3]);
                b[5..8].copy_from_slice(&n[..3]);
                b.extend_from_slice(&bytes);
                let _ = decode_xorb(&b);
                let _ = ChunkRecords::new(&b).decoded().count();
            }
        }
    }
}
