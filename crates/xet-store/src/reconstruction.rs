//! From a file's terms to what a client fetches (XET-PROTOCOL.md §9): the terms
//! overlapping a byte range, trimmed to the chunks that hold it, and per xorb the
//! merged chunk ranges with the stored byte ranges that hold them.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use xet_format::api::{ByteRangeInclusive, IndexRange, ReconstructionTerm, XorbRangeDescriptor};
use xet_format::shard::FileTerm;
use xet_format::MerkleHash;

use crate::error::{Error, Result};

/// What the store knows about a stored xorb, read from its footer (§6.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XorbMeta {
    /// Chunk hashes in xorb order.
    pub chunk_hashes: Vec<MerkleHash>,
    /// End offset (exclusive) of each chunk's record in the stored bytes.
    pub record_ends: Vec<u32>,
    /// Uncompressed length of each chunk.
    pub chunk_lengths: Vec<u32>,
}

impl XorbMeta {
    /// Bytes of chunk records (the uploaded body, without the footer).
    pub fn body_len(&self) -> u64 {
        self.record_ends.last().map_or(0, |&e| u64::from(e))
    }

    /// Stored byte range (inclusive) of chunks `[start, end)`; `end > start`.
    pub fn byte_range(&self, start: u32, end: u32) -> ByteRangeInclusive {
        let first = if start == 0 {
            0
        } else {
            self.record_ends[start as usize - 1]
        };
        ByteRangeInclusive {
            start: u64::from(first),
            end: u64::from(self.record_ends[end as usize - 1]) - 1,
        }
    }
}

/// A file's reconstruction without URLs: the HTTP layer signs one URL per fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reconstruction {
    /// Bytes of the first term's output to skip (non-zero only for ranges, §9.6).
    pub offset_into_first_range: u64,
    /// Terms in file order, trimmed to the requested range.
    pub terms: Vec<ReconstructionTerm>,
    /// Per xorb, merged chunk ranges and the stored bytes holding them, ascending.
    pub fetches: BTreeMap<MerkleHash, Vec<XorbRangeDescriptor>>,
    /// The whole file's size.
    pub file_size: u64,
}

/// Builds the reconstruction of `terms` for the inclusive byte `range` (whole file if
/// `None`; an end past the file is clamped as HTTP ranges are).
pub(crate) fn plan(
    file: &MerkleHash,
    terms: &[FileTerm],
    metas: &HashMap<MerkleHash, Arc<XorbMeta>>,
    range: Option<(u64, u64)>,
) -> Result<Reconstruction> {
    let size: u64 = terms.iter().map(|t| u64::from(t.unpacked_bytes)).sum();
    let (s, e) = match range {
        None if size == 0 => {
            return Ok(Reconstruction {
                offset_into_first_range: 0,
                terms: Vec::new(),
                fetches: BTreeMap::new(),
                file_size: 0,
            })
        }
        None => (0, size - 1),
        Some((s, e)) if e < s => {
            return Err(Error::BadRequest(format!("range {s}-{e} ends before it starts")));
        }
        Some((s, _)) if s >= size => {
            return Err(Error::RangeNotSatisfiable {
                what: "file",
                start: s,
                len: size,
            })
        }
        Some((s, e)) => (s, e.min(size - 1)),
    };
    let corrupt = |reason: String| Error::Corrupt {
        key: format!("files/{file}"),
        reason,
    };
    let mut out_terms = Vec::new();
    let mut chunk_ranges: BTreeMap<MerkleHash, Vec<(u32, u32)>> = BTreeMap::new();
    let mut offset_into_first_range = 0;
    let mut pos = 0u64;
    for t in terms {
        let (tstart, tend) = (pos, pos + u64::from(t.unpacked_bytes));
        pos = tend;
        if tend <= s {
            continue;
        }
        if tstart > e {
            break;
        }
        let meta = metas.get(&t.xorb_hash).ok_or_else(|| {
            corrupt(format!(
                "term references xorb {} which is not stored",
                t.xorb_hash
            ))
        })?;
        if t.chunk_start >= t.chunk_end || t.chunk_end as usize > meta.chunk_lengths.len() {
            return Err(corrupt(format!(
                "term chunks [{}, {}) out of xorb {} with {} chunks",
                t.chunk_start,
                t.chunk_end,
                t.xorb_hash,
                meta.chunk_lengths.len()
            )));
        }
        let len = |i: u32| u64::from(meta.chunk_lengths[i as usize]);
        // Skip whole chunks before the range start.
        let (mut cs, mut off) = (t.chunk_start, tstart);
        while cs + 1 < t.chunk_end && off + len(cs) <= s {
            off += len(cs);
            cs += 1;
        }
        if out_terms.is_empty() {
            offset_into_first_range = s.saturating_sub(off);
        }
        // Take chunks until the range end is covered.
        let (mut ce, mut acc) = (cs, off);
        while ce < t.chunk_end && acc <= e {
            acc += len(ce);
            ce += 1;
        }
        out_terms.push(ReconstructionTerm {
            hash: t.xorb_hash,
            unpacked_length: u32::try_from(acc - off)
                .map_err(|_| corrupt("term longer than 4 GiB".into()))?,
            range: IndexRange { start: cs, end: ce },
        });
        chunk_ranges.entry(t.xorb_hash).or_default().push((cs, ce));
    }
    let fetches = chunk_ranges
        .into_iter()
        .map(|(hash, mut ranges)| {
            let meta = &metas[&hash];
            ranges.sort_unstable();
            let mut merged: Vec<(u32, u32)> = Vec::with_capacity(ranges.len());
            for (a, b) in ranges {
                match merged.last_mut() {
                    // Overlapping or adjacent ranges are fetched once (§9.1).
                    Some(last) if a <= last.1 => last.1 = last.1.max(b),
                    _ => merged.push((a, b)),
                }
            }
            let descs = merged
                .into_iter()
                .map(|(a, b)| XorbRangeDescriptor {
                    chunks: IndexRange { start: a, end: b },
                    bytes: meta.byte_range(a, b),
                })
                .collect();
            (hash, descs)
        })
        .collect();
    Ok(Reconstruction {
        offset_into_first_range,
        terms: out_terms,
        fetches,
        file_size: size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(lengths: &[u32]) -> Arc<XorbMeta> {
        let mut ends = Vec::new();
        let mut at = 0;
        for &l in lengths {
            at += l + 8;
            ends.push(at);
        }
        Arc::new(XorbMeta {
            chunk_hashes: lengths
                .iter()
                .map(|&l| MerkleHash::from_bytes([l as u8; 32]))
                .collect(),
            record_ends: ends,
            chunk_lengths: lengths.to_vec(),
        })
    }

    fn setup() -> (MerkleHash, Vec<FileTerm>, HashMap<MerkleHash, Arc<XorbMeta>>) {
        let x = MerkleHash::from_bytes([7; 32]);
        let y = MerkleHash::from_bytes([9; 32]);
        let metas = [(x, meta(&[10, 20, 30, 40])), (y, meta(&[5, 5]))]
            .into_iter()
            .collect();
        // File: x[0..2) (30 bytes), y[0..2) (10), x[1..4) (90): 130 bytes.
        let terms = vec![
            FileTerm::new(x, 30, 0, 2),
            FileTerm::new(y, 10, 0, 2),
            FileTerm::new(x, 90, 1, 4),
        ];
        (x, terms, metas)
    }

    #[test]
    fn whole_file_merges_overlapping_ranges() {
        let (x, terms, metas) = setup();
        let r = plan(&MerkleHash::ZERO, &terms, &metas, None).unwrap();
        assert_eq!(r.file_size, 130);
        assert_eq!(r.terms.len(), 3);
        assert_eq!(r.offset_into_first_range, 0);
        let fx = &r.fetches[&x];
        assert_eq!(fx.len(), 1);
        assert_eq!(fx[0].chunks, IndexRange { start: 0, end: 4 });
        assert_eq!(
            fx[0].bytes,
            ByteRangeInclusive {
                start: 0,
                end: 10 + 20 + 30 + 40 + 32 - 1
            }
        );
    }

    #[test]
    fn ranges_trim_terms_to_chunks() {
        let (x, terms, metas) = setup();
        // Bytes 15..=35: chunk 1 of x (10..30) and y's first chunk (30..35) and y's second (35..40).
        let r = plan(&MerkleHash::ZERO, &terms, &metas, Some((15, 35))).unwrap();
        assert_eq!(r.offset_into_first_range, 5);
        assert_eq!(r.terms[0].range, IndexRange { start: 1, end: 2 });
        assert_eq!(r.terms[0].unpacked_length, 20);
        assert_eq!(r.terms[1].range, IndexRange { start: 0, end: 2 });
        assert_eq!(r.terms.len(), 2);
        assert_eq!(r.fetches[&x][0].bytes, ByteRangeInclusive { start: 18, end: 45 });
        // Last byte only.
        let r = plan(&MerkleHash::ZERO, &terms, &metas, Some((129, 1000))).unwrap();
        assert_eq!(r.terms.len(), 1);
        assert_eq!(r.terms[0].range, IndexRange { start: 3, end: 4 });
        assert_eq!(r.offset_into_first_range, 39);
    }

    #[test]
    fn range_past_end_is_unsatisfiable() {
        let (_, terms, metas) = setup();
        let e = plan(&MerkleHash::ZERO, &terms, &metas, Some((130, 140))).unwrap_err();
        assert!(matches!(e, Error::RangeNotSatisfiable { len: 130, .. }));
        assert!(plan(&MerkleHash::ZERO, &terms, &metas, Some((5, 4))).is_err());
    }
}
