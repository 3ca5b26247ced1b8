//! Lookup tables of full shards (XET-PROTOCOL.md §7.5), keyed global-dedup responses
//! (§4.7, §8.3), and the client-side chunk lookup against such a response.
//!
//! Row order, learned from xet-core `shard_format.rs::serialize_from` /
//! `export_as_keyed_shard` (read to understand, not copied):
//!
//! - the file and xorb tables have one row per block, in section order. xet-core
//!   writes its sections from a `BTreeMap` keyed by hash, whose order compares the
//!   words `w0, w1, w2, w3` as `u64` — so section order is already ascending by the
//!   row key `w0`. We sort rows by `(key, record index)`, which is that same order for
//!   sorted sections and still a valid (binary-searchable) table for unsorted ones;
//! - a row's index counts 48-byte records from the start of its section (the first
//!   file or xorb is 0, the next one `1 + its entries` further on);
//! - the chunk table's "xorb index" is likewise the record index of the xorb's header
//!   in the CAS Info section, not its ordinal; its rows are sorted by key only
//!   (`sort_unstable_by_key`), so rows with equal keys have no defined order there. We
//!   break ties by (xorb record, chunk index). Equal keys need the same chunk in two
//!   xorbs of one shard or a 64-bit prefix collision, which the official client's
//!   session dedup never produces, so its output is still reproduced byte for byte.

use std::collections::HashMap;

use super::{put_u32, put_u64, FullOptions, Shard};
use crate::error::{Error, Result};
use crate::hash::keyed_chunk_hash_or_raw;
use crate::MerkleHash;

/// Writes the three lookup tables of `shard` (§7.5).
pub(super) fn write_tables(shard: &Shard, out: &mut Vec<u8>) -> Result<()> {
    let mut rows: Vec<(u64, u32)> = Vec::with_capacity(shard.files.len());
    let mut index: u64 = 0;
    for f in &shard.files {
        rows.push((f.file_hash.w0(), record_index(index)?));
        index += f.record_count();
    }
    rows.sort_unstable();
    for (key, idx) in &rows {
        put_u64(out, *key);
        put_u32(out, *idx);
    }

    rows.clear();
    let num_chunks: usize = shard.xorbs.iter().map(|x| x.chunks.len()).sum();
    let mut chunk_rows: Vec<(u64, u32, u32)> = Vec::with_capacity(num_chunks);
    let mut index: u64 = 0;
    for x in &shard.xorbs {
        let xorb_record = record_index(index)?;
        rows.push((x.xorb_hash.w0(), xorb_record));
        for (i, c) in x.chunks.iter().enumerate() {
            // i < chunks.len(), which the section writer has already checked fits u32.
            chunk_rows.push((c.hash.w0(), xorb_record, i as u32));
        }
        index += x.record_count();
    }
    rows.sort_unstable();
    for (key, idx) in &rows {
        put_u64(out, *key);
        put_u32(out, *idx);
    }
    chunk_rows.sort_unstable();
    for (key, xorb, chunk) in &chunk_rows {
        put_u64(out, *key);
        put_u32(out, *xorb);
        put_u32(out, *chunk);
    }
    Ok(())
}

fn record_index(index: u64) -> Result<u32> {
    u32::try_from(index).map_err(|_| Error::LimitExceeded {
        what: "shard records in one section",
        limit: u64::from(u32::MAX),
        actual: index,
    })
}

impl Shard {
    /// The global-dedup response form of this shard (§8.3): no files, every CAS chunk
    /// hash keyed with `key` (BLAKE3 keyed, §4.7; a zero key leaves them raw), and a
    /// footer carrying the key and times, with lookup tables, as xet-core's
    /// `export_as_keyed_shard` writes it. Encode it with
    /// [`to_bytes`](Shard::to_bytes).
    ///
    /// Fails if this shard's hashes are already keyed (keying twice would make them
    /// unmatchable).
    pub fn dedup_response(&self, key: [u8; 32], creation_timestamp: u64, key_expiry: u64) -> Result<Shard> {
        if self.hmac_key() != [0; 32] {
            return Err(Error::invalid(
                "shard footer hmac key",
                self.footer.map_or(0, |f| f.footer_offset as usize + 72),
                "the chunk hashes are already keyed; key the raw shard instead",
            ));
        }
        let mut xorbs = self.xorbs.clone();
        for x in &mut xorbs {
            for c in &mut x.chunks {
                c.hash = keyed_chunk_hash_or_raw(&key, &c.hash);
            }
        }
        let mut out = Shard::new(Vec::new(), xorbs);
        let options = FullOptions {
            hmac_key: key,
            creation_timestamp,
            key_expiry,
            lookup_tables: true,
        };
        out.footer = Some(out.footer_for(&options)?);
        Ok(out)
    }

    /// Where the chunk with this **raw** hash sits: `(xorb index in `xorbs`, chunk
    /// index in that xorb)`, first match in section order. The footer's key is applied
    /// first (§8.3 step 2). A linear scan; for many queries build a [`ChunkLookup`].
    pub fn find_chunk(&self, raw_chunk_hash: &MerkleHash) -> Option<(usize, usize)> {
        let wanted = keyed_chunk_hash_or_raw(&self.hmac_key(), raw_chunk_hash);
        self.xorbs
            .iter()
            .enumerate()
            .find_map(|(xi, x)| x.chunks.iter().position(|c| c.hash == wanted).map(|ci| (xi, ci)))
    }
}

/// A hash index over a shard's CAS chunk entries, for a client matching many chunks
/// against a global-dedup response (§8.3). Built once; each query keys the raw hash
/// with the shard's key.
#[derive(Debug, Clone)]
pub struct ChunkLookup {
    key: [u8; 32],
    map: HashMap<MerkleHash, (usize, usize)>,
}

impl ChunkLookup {
    /// Indexes every chunk entry of `shard` (the first one wins for repeated hashes).
    pub fn new(shard: &Shard) -> Self {
        let mut map = HashMap::new();
        for (xi, x) in shard.xorbs.iter().enumerate() {
            for (ci, c) in x.chunks.iter().enumerate() {
                map.entry(c.hash).or_insert((xi, ci));
            }
        }
        ChunkLookup {
            key: shard.hmac_key(),
            map,
        }
    }

    /// `(xorb index, chunk index)` of the chunk with this raw hash, like
    /// [`Shard::find_chunk`].
    pub fn find(&self, raw_chunk_hash: &MerkleHash) -> Option<(usize, usize)> {
        self.map
            .get(&keyed_chunk_hash_or_raw(&self.key, raw_chunk_hash))
            .copied()
    }

    /// The key queries are keyed with (all zeros: raw).
    pub fn hmac_key(&self) -> [u8; 32] {
        self.key
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::keyed_chunk_hash;
    use crate::shard::{FileInfo, FileTerm, XorbInfo, FILE_LOOKUP_ROW_BYTES, XORB_LOOKUP_ROW_BYTES};

    fn h(words: [u64; 4]) -> MerkleHash {
        MerkleHash::from_words(words)
    }

    fn two_xorbs() -> Shard {
        let x1 =
            XorbInfo::from_chunks(h([5, 0, 0, 1]), &[(h([9, 0, 0, 1]), 10), (h([2, 0, 0, 1]), 20)]).unwrap();
        let x2 = XorbInfo::from_chunks(h([3, 0, 0, 1]), &[(h([7, 0, 0, 1]), 5)]).unwrap();
        let file = |w0| FileInfo {
            file_hash: h([w0, 0, 0, 1]),
            terms: vec![FileTerm::new(h([5, 0, 0, 1]), 10, 0, 1)],
            verification: Some(vec![MerkleHash::ZERO]),
            sha256: None,
        };
        Shard::new(vec![file(8), file(4)], vec![x1, x2])
    }

    #[test]
    fn table_rows_index_records_and_sort_by_key() {
        let s = two_xorbs();
        let full = s.to_full_bytes(&FullOptions::default()).unwrap();
        let f = s.footer_for(&FullOptions::default()).unwrap();
        let at = f.file_lookup_offset as usize;
        let row = |o: usize| {
            (
                u64::from_le_bytes(full[o..o + 8].try_into().unwrap()),
                u32::from_le_bytes(full[o + 8..o + 12].try_into().unwrap()),
            )
        };
        // Files: w0 8 at record 0 (3 records: header, term, verification), w0 4 at record 3.
        assert_eq!(row(at), (4, 3));
        assert_eq!(row(at + FILE_LOOKUP_ROW_BYTES), (8, 0));
        // Xorbs: w0 5 at record 0 (header + 2 chunks), w0 3 at record 3.
        let at = f.xorb_lookup_offset as usize;
        assert_eq!(row(at), (3, 3));
        assert_eq!(row(at + XORB_LOOKUP_ROW_BYTES), (5, 0));
        // Chunks sorted by key; the xorb index is the xorb's record index.
        let at = f.chunk_lookup_offset as usize;
        let chunk = |o: usize| {
            let (k, x) = row(o);
            (k, x, u32::from_le_bytes(full[o + 12..o + 16].try_into().unwrap()))
        };
        assert_eq!(chunk(at), (2, 0, 1));
        assert_eq!(chunk(at + 16), (7, 3, 0));
        assert_eq!(chunk(at + 32), (9, 0, 0));
        assert_eq!(at + 48, f.footer_offset as usize);
    }

    #[test]
    fn keyed_response_and_lookup() {
        let s = two_xorbs();
        let key = [0x42; 32];
        let resp = s.dedup_response(key, 100, 200).unwrap();
        assert!(resp.files.is_empty());
        assert_eq!(
            resp.xorbs[0].chunks[1].hash,
            keyed_chunk_hash(&key, &h([2, 0, 0, 1]))
        );
        let bytes = resp.to_bytes().unwrap();
        let back = Shard::decode(&bytes).unwrap();
        assert_eq!(back, resp);
        let f = back.footer.unwrap();
        assert_eq!((f.hmac_key, f.creation_timestamp, f.key_expiry), (key, 100, 200));
        assert_eq!(
            (f.file_lookup_count, f.xorb_lookup_count, f.chunk_lookup_count),
            (0, 2, 3)
        );
        assert_eq!(f.materialized_bytes, 0);
        assert_eq!(f.stored_bytes, 35);

        // A client finds its raw chunk hashes; keyed or unknown hashes miss.
        let lookup = ChunkLookup::new(&back);
        for (raw, at) in [
            (h([9, 0, 0, 1]), (0, 0)),
            (h([2, 0, 0, 1]), (0, 1)),
            (h([7, 0, 0, 1]), (1, 0)),
        ] {
            assert_eq!(back.find_chunk(&raw), Some(at));
            assert_eq!(lookup.find(&raw), Some(at));
        }
        assert_eq!(back.find_chunk(&resp.xorbs[0].chunks[0].hash), None);
        assert_eq!(lookup.find(&h([1, 1, 1, 1])), None);
        assert_eq!(lookup.hmac_key(), key);

        // Keying a keyed shard again is refused.
        assert!(back.dedup_response(key, 0, 0).is_err());
    }

    #[test]
    fn zero_key_response_is_raw() {
        let s = two_xorbs();
        let resp = s.dedup_response([0; 32], 0, 0).unwrap();
        assert_eq!(resp.xorbs, s.xorbs);
        assert_eq!(resp.find_chunk(&h([7, 0, 0, 1])), Some((1, 0)));
    }
}
