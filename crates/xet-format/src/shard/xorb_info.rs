//! CAS Info section records (XET-PROTOCOL.md §7.4): a xorb and the list of its chunks.

use super::{count_u32, le_u32, put_hash, put_u32, rec_hash, Reader, Record, RECORD_BYTES};
use crate::error::{Error, Result};
use crate::MerkleHash;

/// One chunk entry of a xorb block (`CASChunkSequenceEntry`, §7.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct XorbChunk {
    /// The chunk hash; keyed with the footer's HMAC key in global-dedup responses (§8.3).
    pub hash: MerkleHash,
    /// Offset of the chunk's uncompressed bytes inside the xorb (Σ previous lengths).
    pub uncompressed_start: u32,
    /// Uncompressed length of the chunk.
    pub len: u32,
    /// Flags; bit 31 ([`CHUNK_FLAG_GLOBAL_DEDUP`](super::CHUNK_FLAG_GLOBAL_DEDUP)) marks
    /// a global-dedup candidate. Clients upload 0.
    pub flags: u32,
}

/// One xorb block of the CAS Info section (`MDBXorbInfo`, §7.4).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct XorbInfo {
    /// The xorb hash.
    pub xorb_hash: MerkleHash,
    /// Reserved `cas_flags`; 0 from every known writer, kept as read.
    pub flags: u32,
    /// The xorb's chunks, in xorb order.
    pub chunks: Vec<XorbChunk>,
    /// Σ uncompressed chunk lengths.
    pub num_bytes_in_cas: u32,
    /// The serialized xorb's length according to the spec; the official client writes
    /// 0 (§7.4, §14 #9), and so does [`ShardBuilder`](super::ShardBuilder).
    pub num_bytes_on_disk: u32,
}

impl XorbInfo {
    /// A xorb block from `(chunk hash, length)` pairs in xorb order: offsets are the
    /// running sum, flags 0, `num_bytes_on_disk` 0 as the official client writes it.
    /// Fails if the xorb's size does not fit the format's `u32`.
    pub fn from_chunks(xorb_hash: MerkleHash, chunks: &[(MerkleHash, u32)]) -> Result<XorbInfo> {
        let mut start: u32 = 0;
        let mut out = Vec::with_capacity(chunks.len());
        for &(hash, len) in chunks {
            out.push(XorbChunk {
                hash,
                uncompressed_start: start,
                len,
                flags: 0,
            });
            start = start.checked_add(len).ok_or_else(|| Error::LimitExceeded {
                what: "xorb uncompressed bytes (the shard stores them as u32)",
                limit: u64::from(u32::MAX),
                actual: chunks.iter().map(|&(_, l)| u64::from(l)).sum(),
            })?;
        }
        count_u32("chunks in one xorb", chunks.len())?;
        Ok(XorbInfo {
            xorb_hash,
            flags: 0,
            chunks: out,
            num_bytes_in_cas: start,
            num_bytes_on_disk: 0,
        })
    }

    /// The chunk hashes, in xorb order.
    pub fn chunk_hashes(&self) -> Vec<MerkleHash> {
        self.chunks.iter().map(|c| c.hash).collect()
    }

    /// Number of 48-byte records the block takes: header and one per chunk.
    pub fn record_count(&self) -> u64 {
        1 + self.chunks.len() as u64
    }

    /// Encoded length of the block in bytes.
    pub fn encoded_len(&self) -> u64 {
        self.record_count() * RECORD_BYTES as u64
    }

    pub(super) fn write(&self, out: &mut Vec<u8>) -> Result<()> {
        if self.xorb_hash == MerkleHash::BOOKEND {
            return Err(Error::invalid(
                "xorb hash",
                out.len(),
                "the all-ff hash is the section bookend and cannot name a xorb",
            ));
        }
        let n = count_u32("chunks in one xorb", self.chunks.len())?;
        put_hash(out, &self.xorb_hash);
        put_u32(out, self.flags);
        put_u32(out, n);
        put_u32(out, self.num_bytes_in_cas);
        put_u32(out, self.num_bytes_on_disk);
        for c in &self.chunks {
            put_hash(out, &c.hash);
            put_u32(out, c.uncompressed_start);
            put_u32(out, c.len);
            put_u32(out, c.flags);
            put_u32(out, 0);
        }
        Ok(())
    }

    /// Reads the chunk entries of a xorb block whose header `header` sat at byte `at`.
    pub(super) fn read(header: &Record, at: usize, r: &mut Reader<'_>) -> Result<XorbInfo> {
        let n = le_u32(header, 36);
        r.need_records("CAS Info block", at, u64::from(n))?;
        // `need_records` has checked that n records follow, so n fits in memory.
        let mut chunks = Vec::with_capacity(n as usize);
        for _ in 0..n {
            let rec = r.record("CAS chunk entry")?;
            // The last u32 is reserved; ignored on read like xet-core's readers.
            chunks.push(XorbChunk {
                hash: rec_hash(rec),
                uncompressed_start: le_u32(rec, 32),
                len: le_u32(rec, 36),
                flags: le_u32(rec, 40),
            });
        }
        Ok(XorbInfo {
            xorb_hash: rec_hash(header),
            flags: le_u32(header, 32),
            chunks,
            num_bytes_in_cas: le_u32(header, 40),
            num_bytes_on_disk: le_u32(header, 44),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_chunks_offsets_and_totals() {
        let h = |i: u8| MerkleHash::from_bytes([i; 32]);
        let x = XorbInfo::from_chunks(h(1), &[(h(2), 10), (h(3), 20), (h(4), 5)]).unwrap();
        let starts: Vec<u32> = x.chunks.iter().map(|c| c.uncompressed_start).collect();
        assert_eq!(starts, [0, 10, 30]);
        assert_eq!(x.num_bytes_in_cas, 35);
        assert_eq!(x.num_bytes_on_disk, 0);
        assert_eq!(x.chunk_hashes(), [h(2), h(3), h(4)]);
        assert!(matches!(
            XorbInfo::from_chunks(h(1), &[(h(2), u32::MAX), (h(3), 1)]),
            Err(Error::LimitExceeded { .. })
        ));
    }

    #[test]
    fn round_trip_keeps_flags() {
        let h = |i: u8| MerkleHash::from_bytes([i; 32]);
        let mut x = XorbInfo::from_chunks(h(1), &[(h(2), 10), (h(3), 20)]).unwrap();
        x.flags = 7;
        x.chunks[0].flags = super::super::CHUNK_FLAG_GLOBAL_DEDUP;
        x.num_bytes_on_disk = 99;
        let mut out = Vec::new();
        x.write(&mut out).unwrap();
        assert_eq!(out.len() as u64, x.encoded_len());
        let mut r = Reader { data: &out, pos: 0 };
        let header = r.record("h").unwrap();
        assert_eq!(XorbInfo::read(header, 0, &mut r).unwrap(), x);
    }

    #[test]
    fn lying_count_fails_before_allocating() {
        let h = |i: u8| MerkleHash::from_bytes([i; 32]);
        let mut out = Vec::new();
        XorbInfo::from_chunks(h(1), &[(h(2), 10)])
            .unwrap()
            .write(&mut out)
            .unwrap();
        out[36..40].copy_from_slice(&u32::MAX.to_le_bytes());
        let mut r = Reader { data: &out, pos: 0 };
        let header = r.record("h").unwrap();
        assert!(matches!(
            XorbInfo::read(header, 0, &mut r),
            Err(Error::Truncated {
                what: "CAS Info block",
                offset: 0,
                ..
            })
        ));
    }
}
