//! The xorb footer, `XorbObjectInfo` (XET-PROTOCOL.md §6.5; xet-core
//! `xorb_object_format.rs`, not in the spec).
//!
//! Clients upload xorbs without it; stored xorbs carry it, and servers use its
//! boundary offsets to turn chunk ranges into byte ranges. Version 1 is written and
//! read; the legacy version 0 (no unpacked offsets, no section idents) is only read.

use super::header::FOOTER_IDENT;
use super::{CHUNK_HEADER_LEN, MAX_CHUNK_COMPRESSED_LEN, MAX_CHUNK_UNCOMPRESSED_LEN};
use crate::error::{Error, Result};
use crate::MerkleHash;

const HASHES_IDENT: &[u8; 7] = b"XBLBHSH";
const BOUNDARIES_IDENT: &[u8; 7] = b"XBLBBND";
const HASHES_VERSION: u8 = 0;
/// Boundaries version 1 carries the unpacked offsets; xet-core writes and reads only 1.
const BOUNDARIES_VERSION: u8 = 1;
/// Fixed part and per-chunk part of `info_length` (the footer without its trailing
/// length word): V1 is `92 + 40·n`, V0 `60 + 36·n` (§6.5).
const V1_FIXED: usize = 92;
const V1_PER_CHUNK: usize = 40;
const V0_FIXED: usize = 60;
const V0_PER_CHUNK: usize = 36;
/// The footer's trailing 16-byte buffer (§6.5).
pub const FOOTER_BUFFER_LEN: usize = 16;
/// Bytes of the buffer that hold the per-upload uniqueness nonce.
pub const FOOTER_NONCE_LEN: usize = 4;

/// A xorb footer: the xorb hash, each chunk's hash, where each chunk record ends and
/// where each chunk ends once decompressed (§6.5).
///
/// Encoding writes version 1 followed by the `info_length` word; decoding reads
/// versions 1 and 0. Decoding checks every count, identifier, version and section
/// offset, that record ends grow by at least a header and at most a maximal record,
/// and that unpacked ends grow by at most a chunk; whether the footer agrees with the
/// chunks it describes is checked by [`decode_xorb`](super::decode_xorb) and
/// [`validate_xorb`](super::validate_xorb).
///
/// ```
/// use xet_format::xorb::{CompressionPolicy, XorbBuilder, XorbObjectInfo};
/// let mut b = XorbBuilder::new(CompressionPolicy::None);
/// b.add_chunk(xet_format::hash::chunk_hash(b"a"), b"a").unwrap();
/// let xorb = b.finish();
/// let stored = xorb.to_bytes_with_footer();
/// assert_eq!(stored.len(), 145); // §6.5's example
/// let (footer, footer_start) = XorbObjectInfo::from_xorb_tail(&stored).unwrap();
/// assert_eq!((footer_start, footer.chunk_boundary_offsets[0]), (9, 9));
/// assert_eq!(footer, xorb.footer());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XorbObjectInfo {
    /// The xorb hash.
    pub xorb_hash: MerkleHash,
    /// Each chunk's hash, in xorb order.
    pub chunk_hashes: Vec<MerkleHash>,
    /// End (exclusive) of each chunk's record in the serialized xorb, headers
    /// included; chunk 0 starts at 0 and the last end is where the footer starts.
    pub chunk_boundary_offsets: Vec<u32>,
    /// End (exclusive) of each chunk in the decompressed xorb; `None` in a version 0
    /// footer, which does not record them.
    pub unpacked_chunk_offsets: Option<Vec<u32>>,
    /// The trailing 16-byte buffer: bytes 0..4 a random per-upload uniqueness nonce
    /// (zero if unused), the rest reserved. Not part of the xorb hash; kept as read.
    pub buffer: [u8; FOOTER_BUFFER_LEN],
}

/// A reader over the footer bytes that reports absolute offsets.
struct Rd<'a> {
    b: &'a [u8],
    pos: usize,
    base: usize,
}

impl<'a> Rd<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8]> {
        let rest = &self.b[self.pos..];
        if rest.len() < n {
            return Err(Error::truncated(what, self.base + self.pos, n, rest.len()));
        }
        self.pos += n;
        Ok(&rest[..n])
    }

    fn u8(&mut self, what: &'static str) -> Result<u8> {
        Ok(self.take(1, what)?[0])
    }

    fn u32(&mut self, what: &'static str) -> Result<u32> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn hash(&mut self, what: &'static str) -> Result<MerkleHash> {
        let b = self.take(32, what)?;
        Ok(MerkleHash::from_slice(b).unwrap_or_default())
    }

    fn ident(&mut self, want: &[u8; 7], what: &'static str) -> Result<()> {
        let at = self.base + self.pos;
        if self.take(7, what)? != want {
            return Err(Error::BadMagic {
                what,
                offset: at as u64,
            });
        }
        Ok(())
    }

    fn u32s(&mut self, n: usize, what: &'static str) -> Result<(Vec<u32>, usize)> {
        let at = self.base + self.pos;
        let b = self.take(4 * n, what)?;
        Ok((
            b.chunks_exact(4)
                .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
                .collect(),
            at,
        ))
    }

    fn at(&self) -> usize {
        self.base + self.pos
    }
}

impl XorbObjectInfo {
    /// The version this footer decodes from: 1, or 0 for a legacy footer.
    pub fn version(&self) -> u8 {
        u8::from(self.unpacked_chunk_offsets.is_some())
    }

    /// Number of chunks described.
    pub fn num_chunks(&self) -> usize {
        self.chunk_hashes.len()
    }

    /// `info_length` of this footer once encoded (version 1): `92 + 40·n`. The
    /// encoding is that many bytes plus the 4-byte length word.
    pub fn info_length(&self) -> usize {
        V1_FIXED + V1_PER_CHUNK * self.num_chunks()
    }

    /// The per-upload uniqueness nonce: the buffer's first 4 bytes.
    pub fn uniqueness_nonce(&self) -> [u8; FOOTER_NONCE_LEN] {
        let mut n = [0u8; FOOTER_NONCE_LEN];
        n.copy_from_slice(&self.buffer[..FOOTER_NONCE_LEN]);
        n
    }

    /// Sets the uniqueness nonce, leaving the reserved bytes as they are.
    pub fn set_uniqueness_nonce(&mut self, nonce: [u8; FOOTER_NONCE_LEN]) {
        self.buffer[..FOOTER_NONCE_LEN].copy_from_slice(&nonce);
    }

    /// The version 1 encoding followed by its `info_length` word, as stored after
    /// a xorb's chunk records. Fails if the vectors' lengths differ, if the
    /// unpacked offsets are missing (a version 0 footer), or if the offsets are
    /// ones [`decode`](Self::decode) would reject.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(self.info_length() + 4);
        self.write_to(&mut out)?;
        Ok(out)
    }

    /// Appends [`to_bytes`](Self::to_bytes) to `out` (nothing on error).
    pub fn write_to(&self, out: &mut Vec<u8>) -> Result<()> {
        let n = self.num_chunks();
        let Some(unpacked) = &self.unpacked_chunk_offsets else {
            return Err(Error::invalid(
                "xorb footer",
                0,
                "a version 0 footer has no unpacked chunk offsets and cannot be written as version 1",
            ));
        };
        if self.chunk_boundary_offsets.len() != n || unpacked.len() != n {
            return Err(Error::invalid(
                "xorb footer",
                0,
                format!(
                    "{n} chunk hashes, {} boundary offsets and {} unpacked offsets; all three must match",
                    self.chunk_boundary_offsets.len(),
                    unpacked.len()
                ),
            ));
        }
        check_offsets(&self.chunk_boundary_offsets, Some(unpacked), 0, 0)?;
        write_v1(
            out,
            &self.xorb_hash,
            &self.chunk_hashes,
            &self.chunk_boundary_offsets,
            unpacked,
            &self.buffer,
        );
        Ok(())
    }

    /// Decodes a footer: `footer` is the footer and its trailing `info_length` word,
    /// nothing before or after (the bytes from `XETBLOB` to the xorb's end).
    pub fn decode(footer: &[u8]) -> Result<Self> {
        Self::decode_at(footer, 0)
    }

    /// Finds and decodes the footer at the end of a stored xorb through its trailing
    /// `info_length` word. Returns the footer and where it starts, which must be
    /// where the last chunk record ends (0 for no chunks). Chunk records are not read.
    pub fn from_xorb_tail(xorb: &[u8]) -> Result<(Self, usize)> {
        let len = xorb.len();
        if len < 4 {
            return Err(Error::truncated("xorb footer length", 0, 4, len));
        }
        let info_length =
            u32::from_le_bytes([xorb[len - 4], xorb[len - 3], xorb[len - 2], xorb[len - 1]]) as usize;
        if info_length > len - 4 {
            return Err(Error::invalid(
                "xorb footer info length",
                len - 4,
                format!(
                    "says the footer is {info_length} bytes, but only {} bytes precede it",
                    len - 4
                ),
            ));
        }
        let start = len - 4 - info_length;
        let info = Self::decode_at(&xorb[start..], start)?;
        let chunks_end = info.chunk_boundary_offsets.last().map_or(0, |&e| e as usize);
        if chunks_end != start {
            return Err(Error::invalid(
                "xorb footer chunk boundary offsets",
                start,
                format!(
                    "the last chunk record ends at byte {chunks_end}, but the footer starts at byte {start}"
                ),
            ));
        }
        Ok((info, start))
    }

    /// [`decode`](Self::decode) of a footer found at byte `base` of the xorb.
    pub(crate) fn decode_at(footer: &[u8], base: usize) -> Result<Self> {
        let len = footer.len();
        let mut r = Rd {
            b: footer,
            pos: 0,
            base,
        };
        r.ident(FOOTER_IDENT, "xorb footer")?;
        let version = r.u8("xorb footer version")?;
        if version > 1 {
            return Err(Error::UnsupportedVersion {
                what: "xorb footer",
                version: version.into(),
                expected: "1 (or legacy 0)",
            });
        }
        if len < 12 {
            return Err(Error::truncated(
                "xorb footer",
                base,
                if version == 1 { V1_FIXED } else { V0_FIXED } + 4,
                len,
            ));
        }
        let info_len = len - 4;
        let stated =
            u32::from_le_bytes([footer[len - 4], footer[len - 3], footer[len - 2], footer[len - 1]]) as usize;
        if stated != info_len {
            return Err(Error::invalid(
                "xorb footer info length",
                base + info_len,
                format!("says {stated} bytes, but the footer before it is {info_len} bytes"),
            ));
        }
        let (fixed, per) = if version == 1 {
            (V1_FIXED, V1_PER_CHUNK)
        } else {
            (V0_FIXED, V0_PER_CHUNK)
        };
        if info_len < fixed || !(info_len - fixed).is_multiple_of(per) {
            return Err(Error::invalid(
                "xorb footer info length",
                base + info_len,
                format!("{info_len} is not {fixed} + {per}·n for any chunk count n (version {version})"),
            ));
        }
        // The length has been checked against the bytes present, so `n` and every
        // allocation below are bounded by the input.
        let n = (info_len - fixed) / per;
        let info = if version == 1 {
            decode_v1(&mut r, n)?
        } else {
            decode_v0(&mut r, n)?
        };
        debug_assert_eq!(r.pos, info_len);
        Ok(info)
    }
}

fn count_matches(r: &mut Rd<'_>, n: usize, what: &'static str) -> Result<()> {
    let at = r.at();
    let c = r.u32(what)? as usize;
    if c != n {
        return Err(Error::invalid(
            what,
            at,
            format!("says {c} chunks, but the footer's length implies {n}"),
        ));
    }
    Ok(())
}

fn hashes(r: &mut Rd<'_>, n: usize) -> Result<Vec<MerkleHash>> {
    (0..n).map(|_| r.hash("xorb footer chunk hash")).collect()
}

fn decode_v1(r: &mut Rd<'_>, n: usize) -> Result<XorbObjectInfo> {
    let xorb_hash = r.hash("xorb footer xorb hash")?;
    let hash_section = r.pos;
    r.ident(HASHES_IDENT, "xorb footer hash section")?;
    let v = r.u8("xorb footer hash section version")?;
    if v != HASHES_VERSION {
        return Err(Error::UnsupportedVersion {
            what: "xorb footer hash section",
            version: v.into(),
            expected: "0",
        });
    }
    count_matches(r, n, "xorb footer hash section chunk count")?;
    let chunk_hashes = hashes(r, n)?;
    let boundary_section = r.pos;
    r.ident(BOUNDARIES_IDENT, "xorb footer boundary section")?;
    let v = r.u8("xorb footer boundary section version")?;
    if v != BOUNDARIES_VERSION {
        return Err(Error::UnsupportedVersion {
            what: "xorb footer boundary section",
            version: v.into(),
            expected: "1",
        });
    }
    count_matches(r, n, "xorb footer boundary section chunk count")?;
    let (boundaries, b_at) = r.u32s(n, "xorb footer chunk boundary offsets")?;
    let (unpacked, u_at) = r.u32s(n, "xorb footer unpacked chunk offsets")?;
    count_matches(r, n, "xorb footer chunk count")?;
    for (start, what) in [
        (hash_section, "xorb footer hashes section offset"),
        (boundary_section, "xorb footer boundary section offset"),
    ] {
        let at = r.at();
        let stated = r.u32(what)? as usize;
        // Measured from the section start to the end of the buffer, which is what
        // remains of the footer once the two offset words are read, plus the buffer.
        let want = r.b.len() - 4 - start;
        if stated != want {
            return Err(Error::invalid(
                what,
                at,
                format!("is {stated}, but the section is {want} bytes from the end"),
            ));
        }
    }
    let mut buffer = [0u8; FOOTER_BUFFER_LEN];
    buffer.copy_from_slice(r.take(FOOTER_BUFFER_LEN, "xorb footer buffer")?);
    check_offsets(&boundaries, Some(&unpacked), b_at, u_at)?;
    Ok(XorbObjectInfo {
        xorb_hash,
        chunk_hashes,
        chunk_boundary_offsets: boundaries,
        unpacked_chunk_offsets: Some(unpacked),
        buffer,
    })
}

fn decode_v0(r: &mut Rd<'_>, n: usize) -> Result<XorbObjectInfo> {
    let xorb_hash = r.hash("xorb footer xorb hash")?;
    count_matches(r, n, "xorb footer chunk count")?;
    let (boundaries, b_at) = r.u32s(n, "xorb footer chunk boundary offsets")?;
    let chunk_hashes = hashes(r, n)?;
    let mut buffer = [0u8; FOOTER_BUFFER_LEN];
    buffer.copy_from_slice(r.take(FOOTER_BUFFER_LEN, "xorb footer buffer")?);
    check_offsets(&boundaries, None, b_at, 0)?;
    Ok(XorbObjectInfo {
        xorb_hash,
        chunk_hashes,
        chunk_boundary_offsets: boundaries,
        unpacked_chunk_offsets: None,
        buffer,
    })
}

/// Record ends must grow by a header plus a payload readers accept; unpacked ends
/// by at most one chunk. `b_at`/`u_at` locate the arrays for error messages.
fn check_offsets(boundaries: &[u32], unpacked: Option<&[u32]>, b_at: usize, u_at: usize) -> Result<()> {
    let mut prev = 0u64;
    for (k, &end) in boundaries.iter().enumerate() {
        let step = u64::from(end).wrapping_sub(prev);
        if u64::from(end) < prev + CHUNK_HEADER_LEN as u64
            || step > (CHUNK_HEADER_LEN + MAX_CHUNK_COMPRESSED_LEN) as u64
        {
            return Err(Error::invalid(
                "xorb footer chunk boundary offsets",
                b_at + 4 * k,
                format!(
                    "chunk {k}'s record would span bytes {prev}..{end}; a record is 8 to {} bytes",
                    CHUNK_HEADER_LEN + MAX_CHUNK_COMPRESSED_LEN
                ),
            ));
        }
        prev = end.into();
    }
    let mut prev = 0u64;
    for (k, &end) in unpacked.unwrap_or_default().iter().enumerate() {
        if u64::from(end) < prev || u64::from(end) - prev > MAX_CHUNK_UNCOMPRESSED_LEN as u64 {
            return Err(Error::invalid(
                "xorb footer unpacked chunk offsets",
                u_at + 4 * k,
                format!(
                    "chunk {k} would span decompressed bytes {prev}..{end}; a chunk is 0 to {MAX_CHUNK_UNCOMPRESSED_LEN} bytes"
                ),
            ));
        }
        prev = end.into();
    }
    Ok(())
}

/// Writes a version 1 footer and its length word. The slices have equal lengths.
pub(crate) fn write_v1(
    out: &mut Vec<u8>,
    xorb_hash: &MerkleHash,
    chunk_hashes: &[MerkleHash],
    boundaries: &[u32],
    unpacked: &[u32],
    buffer: &[u8; FOOTER_BUFFER_LEN],
) {
    let n = chunk_hashes.len();
    debug_assert!(boundaries.len() == n && unpacked.len() == n);
    // A xorb holds far fewer than 2^32 chunks (8192, and a footer decoded from input
    // is bounded by that input's length), so the counts fit.
    let n32 = (n as u32).to_le_bytes();
    let info_length = V1_FIXED + V1_PER_CHUNK * n;
    out.reserve(info_length + 4);
    out.extend_from_slice(FOOTER_IDENT);
    out.push(1);
    out.extend_from_slice(xorb_hash.as_bytes());
    out.extend_from_slice(HASHES_IDENT);
    out.push(HASHES_VERSION);
    out.extend_from_slice(&n32);
    for h in chunk_hashes {
        out.extend_from_slice(h.as_bytes());
    }
    out.extend_from_slice(BOUNDARIES_IDENT);
    out.push(BOUNDARIES_VERSION);
    out.extend_from_slice(&n32);
    for v in boundaries.iter().chain(unpacked) {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(&n32);
    // Section offsets: from each section's start to the end of the buffer (§6.5).
    out.extend_from_slice(&((52 + 40 * n) as u32).to_le_bytes());
    out.extend_from_slice(&((40 + 8 * n) as u32).to_le_bytes());
    out.extend_from_slice(buffer);
    out.extend_from_slice(&(info_length as u32).to_le_bytes());
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::test_support::{read_vector, unhex, vector_json, vector_names};

    /// §6.5's example: the stored 1-chunk xorb of the single byte `a`.
    const ONE_BYTE_XORB: &str = "000100000001000061\
        584554424c4f4201\
        51feb2fc80edd4a4906f3e1d3259fc7730588da4353ef2fa8a17343f07bf1431\
        58424c424853480001000000\
        51feb2fc80edd4a4906f3e1d3259fc7730588da4353ef2fa8a17343f07bf1431\
        58424c42424e440101000000\
        0900000001000000\
        010000005c00000030000000\
        00000000000000000000000000000000\
        84000000";

    fn sample(n: usize) -> XorbObjectInfo {
        XorbObjectInfo {
            xorb_hash: MerkleHash::from_bytes([7; 32]),
            chunk_hashes: (0..n).map(|i| MerkleHash::from_bytes([i as u8; 32])).collect(),
            chunk_boundary_offsets: (1..=n as u32).map(|i| i * 100).collect(),
            unpacked_chunk_offsets: Some((1..=n as u32).map(|i| i * 1000).collect()),
            buffer: [0; 16],
        }
    }

    #[test]
    fn spec_example() {
        let bytes = unhex(ONE_BYTE_XORB);
        assert_eq!(bytes.len(), 145);
        let (info, start) = XorbObjectInfo::from_xorb_tail(&bytes).unwrap();
        assert_eq!(start, 9);
        assert_eq!(info.version(), 1);
        assert_eq!(
            info.xorb_hash.to_string(),
            "a4d4ed80fcb2fe5177fc59321d3e6f90faf23e35a48d58303114bf073f34178a"
        );
        assert_eq!(info.chunk_hashes, [info.xorb_hash]);
        assert_eq!(info.chunk_boundary_offsets, [9]);
        assert_eq!(info.unpacked_chunk_offsets, Some(vec![1]));
        assert_eq!(info.info_length(), 132);
        assert_eq!(info.to_bytes().unwrap(), &bytes[9..]);
        assert_eq!(read_vector("one_byte.xorb.none.bin"), bytes);
    }

    #[test]
    fn vector_footers_decode_to_their_json() {
        for name in vector_names() {
            let j = vector_json(&format!("{name}.json"));
            if j["xorb"].is_null() || j["xorb"]["num_chunks"].as_u64() == Some(0) {
                continue;
            }
            for (policy, s) in j["xorb"]["serialized"].as_object().unwrap() {
                let bytes = read_vector(s["file"].as_str().unwrap());
                let (info, start) = XorbObjectInfo::from_xorb_tail(&bytes).unwrap();
                let f = &s["footer"];
                let u32s = |v: &serde_json::Value| -> Vec<u32> {
                    v.as_array()
                        .unwrap()
                        .iter()
                        .map(|x| x.as_u64().unwrap() as u32)
                        .collect()
                };
                assert_eq!(
                    start as u64,
                    s["footer_start"].as_u64().unwrap(),
                    "{name} {policy}"
                );
                assert_eq!(info.num_chunks() as u64, f["num_chunks"].as_u64().unwrap());
                assert_eq!(info.info_length() as u64, f["info_length"].as_u64().unwrap());
                assert_eq!(info.chunk_boundary_offsets, u32s(&f["chunk_boundary_offsets"]));
                assert_eq!(
                    info.unpacked_chunk_offsets,
                    Some(u32s(&f["unpacked_chunk_offsets"]))
                );
                assert_eq!(info.xorb_hash.to_string(), j["xorb"]["hash"].as_str().unwrap());
                let hashes: Vec<String> = info.chunk_hashes.iter().map(|h| h.to_string()).collect();
                let want: Vec<String> = j["xorb"]["chunk_hashes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|h| h.as_str().unwrap().to_string())
                    .collect();
                assert_eq!(hashes, want);
                let n = info.num_chunks() as u64;
                assert_eq!(f["hashes_section_offset_from_end"].as_u64().unwrap(), 52 + 40 * n);
                assert_eq!(
                    f["boundary_section_offset_from_end"].as_u64().unwrap(),
                    40 + 8 * n
                );
                assert_eq!(info.buffer, [0; 16]);
                assert_eq!(info.to_bytes().unwrap(), &bytes[start..]);
            }
        }
    }

    #[test]
    fn legacy_v0_is_read() {
        let mut v = sample(2);
        v.unpacked_chunk_offsets = None;
        v.buffer = *b"nonceRESERVED..."; // kept as read
        let mut b = Vec::new();
        b.extend_from_slice(b"XETBLOB\x00");
        b.extend_from_slice(v.xorb_hash.as_bytes());
        b.extend_from_slice(&2u32.to_le_bytes());
        b.extend_from_slice(&100u32.to_le_bytes());
        b.extend_from_slice(&200u32.to_le_bytes());
        for h in &v.chunk_hashes {
            b.extend_from_slice(h.as_bytes());
        }
        b.extend_from_slice(&v.buffer);
        b.extend_from_slice(&(60 + 36 * 2u32).to_le_bytes());
        let got = XorbObjectInfo::decode(&b).unwrap();
        assert_eq!(got, v);
        assert_eq!(got.version(), 0);
        assert_eq!(got.uniqueness_nonce(), *b"nonc");
        assert!(got.to_bytes().is_err(), "version 0 is read-only");
    }

    #[test]
    fn nonce_is_preserved() {
        let mut v = sample(3);
        v.set_uniqueness_nonce([1, 2, 3, 4]);
        v.buffer[15] = 9;
        let b = v.to_bytes().unwrap();
        assert_eq!(XorbObjectInfo::decode(&b).unwrap(), v);
    }

    #[test]
    fn typed_errors() {
        let good = sample(2).to_bytes().unwrap();
        let n = good.len();
        let flip = |at: usize| {
            let mut b = good.clone();
            b[at] ^= 0x01;
            XorbObjectInfo::decode(&b).unwrap_err()
        };
        assert!(matches!(
            flip(0),
            Error::BadMagic {
                what: "xorb footer",
                offset: 0
            }
        ));
        // Version 1 read as 0: 172 bytes is not 60 + 36·n.
        assert!(matches!(
            flip(7),
            Error::InvalidField {
                what: "xorb footer info length",
                ..
            }
        ));
        let mut b = good.clone();
        b[7] = 2;
        assert!(matches!(
            XorbObjectInfo::decode(&b).unwrap_err(),
            Error::UnsupportedVersion { version: 2, .. }
        ));
        assert!(matches!(
            flip(40),
            Error::BadMagic {
                what: "xorb footer hash section",
                offset: 40
            }
        ));
        assert!(matches!(
            flip(47),
            Error::UnsupportedVersion {
                what: "xorb footer hash section",
                ..
            }
        ));
        assert!(matches!(
            flip(48),
            Error::InvalidField {
                what: "xorb footer hash section chunk count",
                offset: 48,
                ..
            }
        ));
        let bnd = 52 + 64;
        assert!(matches!(
            flip(bnd),
            Error::BadMagic {
                what: "xorb footer boundary section",
                ..
            }
        ));
        assert!(matches!(
            flip(bnd + 8),
            Error::InvalidField {
                what: "xorb footer boundary section chunk count",
                ..
            }
        ));
        // Boundary offsets: 100, 200 -> make the second 101 (record of 1 byte).
        let mut b = good.clone();
        b[bnd + 16..bnd + 20].copy_from_slice(&101u32.to_le_bytes());
        let e = XorbObjectInfo::decode(&b).unwrap_err();
        assert!(
            matches!(e, Error::InvalidField { what: "xorb footer chunk boundary offsets", offset, .. } if offset == (bnd + 16) as u64),
            "{e}"
        );
        // Unpacked offsets: 1000, 2000 -> second 900 (goes backwards).
        let mut b = good.clone();
        b[bnd + 24..bnd + 28].copy_from_slice(&900u32.to_le_bytes());
        assert!(matches!(
            XorbObjectInfo::decode(&b).unwrap_err(),
            Error::InvalidField {
                what: "xorb footer unpacked chunk offsets",
                ..
            }
        ));
        // Section offsets and trailing count.
        assert!(matches!(
            flip(n - 32),
            Error::InvalidField {
                what: "xorb footer chunk count",
                ..
            }
        ));
        assert!(matches!(
            flip(n - 28),
            Error::InvalidField {
                what: "xorb footer hashes section offset",
                ..
            }
        ));
        assert!(matches!(
            flip(n - 24),
            Error::InvalidField {
                what: "xorb footer boundary section offset",
                ..
            }
        ));
        // The buffer is free-form.
        assert!(XorbObjectInfo::decode(&{
            let mut b = good.clone();
            b[n - 10] = 0xAA;
            b
        })
        .is_ok());
        // Length word.
        assert!(matches!(
            flip(n - 4),
            Error::InvalidField {
                what: "xorb footer info length",
                ..
            }
        ));
        assert!(matches!(
            XorbObjectInfo::decode(&good[..n - 1]).unwrap_err(),
            Error::InvalidField { .. }
        ));
        assert!(matches!(
            XorbObjectInfo::decode(b"XETBLOB\x01").unwrap_err(),
            Error::Truncated { .. }
        ));
        assert!(matches!(
            XorbObjectInfo::decode(b"XET").unwrap_err(),
            Error::Truncated { .. }
        ));
        // From the tail: the length word points outside, or the records don't end
        // where the footer starts.
        assert!(matches!(
            XorbObjectInfo::from_xorb_tail(&good[1..]).unwrap_err(),
            Error::InvalidField {
                what: "xorb footer info length",
                ..
            }
        ));
        let mut x = vec![0u8; 199];
        x.extend_from_slice(&good);
        assert!(matches!(
            XorbObjectInfo::from_xorb_tail(&x).unwrap_err(),
            Error::InvalidField {
                what: "xorb footer chunk boundary offsets",
                ..
            }
        ));
        x.insert(0, 0);
        assert!(XorbObjectInfo::from_xorb_tail(&x).is_ok());
        assert!(matches!(
            XorbObjectInfo::from_xorb_tail(b"abc").unwrap_err(),
            Error::Truncated { .. }
        ));
        // Encoding refuses what decoding would refuse.
        let mut v = sample(2);
        v.chunk_boundary_offsets[1] = 5;
        assert!(v.to_bytes().is_err());
        let mut v = sample(2);
        v.chunk_hashes.pop();
        assert!(v.to_bytes().is_err());
    }

    #[test]
    fn empty_footer() {
        let v = sample(0);
        let b = v.to_bytes().unwrap();
        assert_eq!(b.len(), 96);
        assert_eq!(XorbObjectInfo::from_xorb_tail(&b).unwrap(), (v, 0));
    }

    proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400), v1 in any::<bool>()) {
            let _ = XorbObjectInfo::decode(&bytes);
            let _ = XorbObjectInfo::from_xorb_tail(&bytes);
            // With a plausible start, so the parser gets further.
            let mut b = b"XETBLOB".to_vec();
            b.push(u8::from(v1));
            b.extend_from_slice(&bytes);
            let _ = XorbObjectInfo::decode(&b);
        }

        #[test]
        fn round_trip(n in 0usize..20, nonce in any::<[u8; 4]>()) {
            let mut v = sample(n);
            v.set_uniqueness_nonce(nonce);
            let b = v.to_bytes().unwrap();
            prop_assert_eq!(b.len(), v.info_length() + 4);
            prop_assert_eq!(XorbObjectInfo::decode(&b).unwrap(), v);
        }
    }
}
