//! [`ShardBuilder`]: how a client assembles the shard it uploads (XET-PROTOCOL.md §7,
//! §13.1), byte-identical to the official client for the same content.

use std::collections::BTreeMap;

use super::{
    FileInfo, FileTerm, Shard, XorbInfo, CHUNK_LOOKUP_ROW_BYTES, FILE_LOOKUP_ROW_BYTES, FOOTER_BYTES,
    HEADER_BYTES, MAX_SHARD_BYTES, RECORD_BYTES, XORB_LOOKUP_ROW_BYTES,
};
use crate::error::{Error, Result};
use crate::hash::{file_hash, verification_hash, HashedLength};
use crate::MerkleHash;

/// Collects files and new xorbs for one shard.
///
/// Files and xorbs are deduplicated by hash (the first one added wins; a file hash
/// names its content, so a repeat carries nothing new — huggingface.js skips repeats,
/// §7.3) and [`build`](Self::build) orders them the way the official client does: by
/// hash, comparing the words `w0..w3` as `u64` (xet-core keeps them in a `BTreeMap`
/// of its `[u64; 4]` hash type, and its upload body is its full shard cut short, §7.1).
/// That order is what makes [`Shard::to_upload_bytes`] byte-identical with hf-xet.
///
/// Xorbs get `num_bytes_on_disk` 0: the spec says "serialized xorb length", but the
/// official client writes 0 in every shard and its server accepts that (§7.4, §14 #9),
/// so 0 is what byte-exactness with it needs.
///
/// Keep a shard within [`MAX_SHARD_BYTES`]: check
/// [`full_len_after_file`](Self::full_len_after_file) /
/// [`full_len_after_xorb`](Self::full_len_after_xorb) before adding, and start a new
/// shard when they exceed it (xet-core measures the full form, lookup tables included;
/// the upload form is smaller).
#[derive(Debug, Clone, Default)]
pub struct ShardBuilder {
    files: BTreeMap<[u64; 4], FileInfo>,
    xorbs: BTreeMap<[u64; 4], XorbInfo>,
    file_records: u64,
    cas_records: u64,
    num_chunks: u64,
}

impl ShardBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a new xorb from its `(chunk hash, length)` list in xorb order. Checks that
    /// `xorb_hash` is the Merkle root of that list (§4.4): a wrong hash here would name
    /// a xorb no one can find. Returns `false` if the xorb was already there.
    pub fn add_xorb(&mut self, xorb_hash: MerkleHash, chunks: &[(MerkleHash, u32)]) -> Result<bool> {
        if self.contains_xorb(&xorb_hash) {
            return Ok(false);
        }
        let leaves: Vec<HashedLength> = chunks.iter().map(|&(h, l)| (h, u64::from(l))).collect();
        let actual = crate::hash::xorb_hash(&leaves);
        if actual != xorb_hash {
            return Err(Error::HashMismatch {
                what: "xorb (Merkle root of its chunk list)",
                expected: xorb_hash,
                actual,
            });
        }
        Ok(self.add_xorb_info(XorbInfo::from_chunks(xorb_hash, chunks)?))
    }

    /// Adds a xorb block as given (no checks). Returns `false` if one with its hash
    /// was already there.
    pub fn add_xorb_info(&mut self, info: XorbInfo) -> bool {
        let key = info.xorb_hash.words();
        if self.xorbs.contains_key(&key) {
            return false;
        }
        self.cas_records += info.record_count();
        self.num_chunks += info.chunks.len() as u64;
        self.xorbs.insert(key, info);
        true
    }

    /// Adds a file whose terms all point into xorbs already added to this builder; the
    /// verification hashes are computed from those xorbs' chunk hashes (§4.6). Each
    /// term's range must lie within its xorb and its `unpacked_bytes` must equal the
    /// chunks' total length. `sha256` is the conventional digest (see
    /// [`add_file_with_verification`](Self::add_file_with_verification) on the
    /// empty-file quirk). Returns `false` if the file was already there.
    pub fn add_file(
        &mut self,
        file_hash: MerkleHash,
        terms: Vec<FileTerm>,
        sha256: Option<[u8; 32]>,
    ) -> Result<bool> {
        if self.contains_file(&file_hash) {
            return Ok(false);
        }
        let mut verification = Vec::with_capacity(terms.len());
        for (i, t) in terms.iter().enumerate() {
            let location = || format!("file {file_hash} term {i}");
            let xorb = self
                .xorbs
                .get(&t.xorb_hash.words())
                .ok_or_else(|| Error::UnknownXorb {
                    what: location(),
                    xorb_hash: t.xorb_hash,
                })?;
            let chunks = term_chunks(&xorb.chunks, t, location)?;
            let len: u64 = chunks.iter().map(|c| u64::from(c.len)).sum();
            check_term_len(t, len, location)?;
            verification.push(verification_hash(chunks.iter().map(|c| &c.hash)));
        }
        self.add_file_with_verification(file_hash, terms, verification, sha256)
    }

    /// Adds a file given by the hashes and lengths of its own chunks, in file order,
    /// and its terms: the file hash (§4.5) and each term's verification hash (over the
    /// file's chunks that term covers, which are the xorb's chunks it names) are
    /// computed here, so terms may point into any xorb, e.g. one learned from a
    /// global-dedup response. Checks that the terms cover exactly the file's chunks and
    /// that each term's `unpacked_bytes` is its chunks' total length. Returns the file
    /// hash.
    pub fn add_file_from_chunks(
        &mut self,
        file_chunks: &[HashedLength],
        terms: Vec<FileTerm>,
        sha256: Option<[u8; 32]>,
    ) -> Result<MerkleHash> {
        let hash = file_hash(file_chunks);
        let mut verification = Vec::with_capacity(terms.len());
        let mut rest = file_chunks;
        for (i, t) in terms.iter().enumerate() {
            let location = || format!("file {hash} term {i}");
            if t.chunk_start >= t.chunk_end {
                return Err(empty_range(t, location));
            }
            let n = t.num_chunks() as usize;
            if n > rest.len() {
                return Err(Error::InvalidShardContent {
                    location: location(),
                    reason: format!(
                        "the term covers {n} chunks but only {} of the file's {} chunks are left",
                        rest.len(),
                        file_chunks.len()
                    ),
                });
            }
            let (covered, tail) = rest.split_at(n);
            rest = tail;
            check_term_len(t, covered.iter().map(|c| c.1).sum(), location)?;
            verification.push(verification_hash(covered.iter().map(|c| &c.0)));
        }
        if !rest.is_empty() {
            return Err(Error::InvalidShardContent {
                location: format!("file {hash}"),
                reason: format!(
                    "the terms leave the last {} of its {} chunks uncovered",
                    rest.len(),
                    file_chunks.len()
                ),
            });
        }
        self.add_file_with_verification(hash, terms, verification, sha256)?;
        Ok(hash)
    }

    /// Adds a file with the verification hashes given (one per term). `sha256` is the
    /// conventional digest; it is stored group-reversed (§2). For a 0-byte file the
    /// official client's path upload passes an all-zero digest and its bytes upload the
    /// real SHA-256 of "" (§7.3); pass whichever you mean to match. Returns `false` if
    /// the file was already there.
    pub fn add_file_with_verification(
        &mut self,
        file_hash: MerkleHash,
        terms: Vec<FileTerm>,
        verification: Vec<MerkleHash>,
        sha256: Option<[u8; 32]>,
    ) -> Result<bool> {
        if verification.len() != terms.len() {
            return Err(Error::InvalidShardContent {
                location: format!("file {file_hash}"),
                reason: format!(
                    "{} terms but {} verification hashes: there must be one per term",
                    terms.len(),
                    verification.len()
                ),
            });
        }
        Ok(self.add_file_info(FileInfo {
            file_hash,
            terms,
            verification: Some(verification),
            sha256: sha256.map(MerkleHash::from_sha256_digest),
        }))
    }

    /// Adds a file block as given (no checks). Returns `false` if one with its hash was
    /// already there.
    pub fn add_file_info(&mut self, info: FileInfo) -> bool {
        let key = info.file_hash.words();
        if self.files.contains_key(&key) {
            return false;
        }
        self.file_records += info.record_count();
        self.files.insert(key, info);
        true
    }

    /// Whether a file with this hash was added.
    pub fn contains_file(&self, file_hash: &MerkleHash) -> bool {
        self.files.contains_key(&file_hash.words())
    }

    /// Whether a xorb with this hash was added.
    pub fn contains_xorb(&self, xorb_hash: &MerkleHash) -> bool {
        self.xorbs.contains_key(&xorb_hash.words())
    }

    /// The chunks of a xorb added to this builder.
    pub fn xorb(&self, xorb_hash: &MerkleHash) -> Option<&XorbInfo> {
        self.xorbs.get(&xorb_hash.words())
    }

    /// Number of distinct files added.
    pub fn num_files(&self) -> usize {
        self.files.len()
    }

    /// Number of distinct xorbs added.
    pub fn num_xorbs(&self) -> usize {
        self.xorbs.len()
    }

    /// Whether nothing was added (then there is nothing to upload).
    pub fn is_empty(&self) -> bool {
        self.files.is_empty() && self.xorbs.is_empty()
    }

    /// Size of the upload form ([`Shard::to_upload_bytes`]) of what was added so far.
    pub fn upload_len(&self) -> u64 {
        HEADER_BYTES as u64 + (self.file_records + self.cas_records + 2) * RECORD_BYTES as u64
    }

    /// Size of the full form with lookup tables: the size the official client keeps
    /// within [`MAX_SHARD_BYTES`].
    pub fn full_len(&self) -> u64 {
        self.upload_len()
            + FOOTER_BYTES as u64
            + self.files.len() as u64 * FILE_LOOKUP_ROW_BYTES as u64
            + self.xorbs.len() as u64 * XORB_LOOKUP_ROW_BYTES as u64
            + self.num_chunks * CHUNK_LOOKUP_ROW_BYTES as u64
    }

    /// [`full_len`](Self::full_len) once a file with `num_terms` terms (with
    /// verification, and a SHA-256 if `with_sha256`) is added.
    pub fn full_len_after_file(&self, num_terms: usize, with_sha256: bool) -> u64 {
        let records = 1 + 2 * num_terms as u64 + u64::from(with_sha256);
        self.full_len() + records * RECORD_BYTES as u64 + FILE_LOOKUP_ROW_BYTES as u64
    }

    /// [`full_len`](Self::full_len) once a xorb of `num_chunks` chunks is added.
    pub fn full_len_after_xorb(&self, num_chunks: usize) -> u64 {
        let n = num_chunks as u64;
        self.full_len()
            + (1 + n) * RECORD_BYTES as u64
            + XORB_LOOKUP_ROW_BYTES as u64
            + n * CHUNK_LOOKUP_ROW_BYTES as u64
    }

    /// Whether what was added fits in one shard ([`full_len`](Self::full_len) ≤
    /// [`MAX_SHARD_BYTES`]).
    pub fn fits(&self) -> bool {
        self.full_len() <= MAX_SHARD_BYTES
    }

    /// The shard: files and xorbs in the official client's order, no footer.
    pub fn build(self) -> Shard {
        Shard::new(
            self.files.into_values().collect(),
            self.xorbs.into_values().collect(),
        )
    }
}

/// The chunks of `chunks` that term `t` covers, or why it cannot cover them.
pub(super) fn term_chunks<'a, T>(
    chunks: &'a [T],
    t: &FileTerm,
    location: impl Fn() -> String,
) -> Result<&'a [T]> {
    if t.chunk_start >= t.chunk_end {
        return Err(empty_range(t, location));
    }
    chunks
        .get(t.chunk_start as usize..t.chunk_end as usize)
        .ok_or_else(|| Error::InvalidShardContent {
            location: location(),
            reason: format!(
                "chunk range [{}, {}) is outside xorb {}, which has {} chunks",
                t.chunk_start,
                t.chunk_end,
                t.xorb_hash,
                chunks.len()
            ),
        })
}

fn empty_range(t: &FileTerm, location: impl Fn() -> String) -> Error {
    Error::InvalidShardContent {
        location: location(),
        reason: format!(
            "chunk range [{}, {}) is empty: a term covers at least one chunk",
            t.chunk_start, t.chunk_end
        ),
    }
}

/// Checks a term's `unpacked_bytes` against the length of its chunks.
pub(super) fn check_term_len(t: &FileTerm, actual: u64, location: impl Fn() -> String) -> Result<()> {
    if u64::from(t.unpacked_bytes) != actual {
        return Err(Error::InvalidShardContent {
            location: location(),
            reason: format!(
                "unpacked_bytes is {} but chunks [{}, {}) of xorb {} hold {actual} bytes",
                t.unpacked_bytes, t.chunk_start, t.chunk_end, t.xorb_hash
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::{chunk_hash, xorb_hash};

    fn chunks(seed: u8, n: usize) -> Vec<(MerkleHash, u32)> {
        (0..n)
            .map(|i| (chunk_hash(&[seed, i as u8]), 100 + i as u32))
            .collect()
    }

    fn leaves(c: &[(MerkleHash, u32)]) -> Vec<HashedLength> {
        c.iter().map(|&(h, l)| (h, u64::from(l))).collect()
    }

    #[test]
    fn add_xorb_checks_the_root_and_dedupes() {
        let c = chunks(1, 5);
        let x = xorb_hash(&leaves(&c));
        let mut b = ShardBuilder::new();
        assert!(b.add_xorb(x, &c).unwrap());
        assert!(!b.add_xorb(x, &c).unwrap());
        assert_eq!(b.num_xorbs(), 1);
        assert!(matches!(
            b.add_xorb(MerkleHash::ZERO, &c),
            Err(Error::HashMismatch { .. })
        ));
        assert_eq!(b.xorb(&x).unwrap().num_bytes_on_disk, 0);
    }

    #[test]
    fn three_ways_to_add_a_file_agree() {
        let c = chunks(2, 6);
        let x = xorb_hash(&leaves(&c));
        // The file is chunks 0..4 then 1..3 again, as two terms.
        let file: Vec<(MerkleHash, u32)> = c[0..4].iter().chain(&c[1..3]).copied().collect();
        let fh = file_hash(&leaves(&file));
        let len = |r: std::ops::Range<usize>| c[r].iter().map(|x| x.1).sum::<u32>();
        let terms = vec![
            FileTerm::new(x, len(0..4), 0, 4),
            FileTerm::new(x, len(1..3), 1, 3),
        ];

        let mut a = ShardBuilder::new();
        a.add_xorb(x, &c).unwrap();
        assert!(a.add_file(fh, terms.clone(), Some([5; 32])).unwrap());
        let mut b = ShardBuilder::new();
        b.add_xorb(x, &c).unwrap();
        assert_eq!(
            b.add_file_from_chunks(&leaves(&file), terms.clone(), Some([5; 32]))
                .unwrap(),
            fh
        );
        assert_eq!(a.clone().build(), b.build());

        let expected: Vec<MerkleHash> = vec![
            verification_hash(c[0..4].iter().map(|x| &x.0)),
            verification_hash(c[1..3].iter().map(|x| &x.0)),
        ];
        let shard = a.build();
        assert_eq!(shard.files[0].verification.as_deref(), Some(&expected[..]));
        assert_eq!(shard.files[0].sha256_digest(), Some([5; 32]));
        assert_eq!(shard.files[0].size(), u64::from(len(0..4) + len(1..3)));
    }

    #[test]
    fn bad_terms_are_refused() {
        let c = chunks(3, 3);
        let x = xorb_hash(&leaves(&c));
        let mut b = ShardBuilder::new();
        b.add_xorb(x, &c).unwrap();
        let f = MerkleHash::from_bytes([1; 32]);
        let t = |bytes, s, e| vec![FileTerm::new(x, bytes, s, e)];
        assert!(matches!(
            b.add_file(f, t(100, 0, 4), None),
            Err(Error::InvalidShardContent { .. })
        ));
        assert!(matches!(
            b.add_file(f, t(0, 1, 1), None),
            Err(Error::InvalidShardContent { .. })
        ));
        assert!(matches!(
            b.add_file(f, t(99, 0, 1), None),
            Err(Error::InvalidShardContent { .. })
        ));
        let other = vec![FileTerm::new(MerkleHash::from_bytes([2; 32]), 1, 0, 1)];
        assert!(matches!(
            b.add_file(f, other, None),
            Err(Error::UnknownXorb { .. })
        ));
        // From chunks: too few terms, too many chunks, wrong length.
        let l = leaves(&c);
        assert!(b.add_file_from_chunks(&l, t(100, 0, 1), None).is_err());
        assert!(b.add_file_from_chunks(&l[..1], t(201, 0, 2), None).is_err());
        assert!(b.add_file_from_chunks(&l, t(300, 0, 3), None).is_err());
        assert!(b
            .add_file_with_verification(f, t(100, 0, 1), vec![], None)
            .is_err());
        assert_eq!(b.num_files(), 0);
    }

    #[test]
    fn empty_file_block() {
        let mut b = ShardBuilder::new();
        assert_eq!(
            b.add_file_from_chunks(&[], vec![], Some([0; 32])).unwrap(),
            MerkleHash::ZERO
        );
        let s = b.build();
        assert_eq!(s.files[0].flags(), 0xC000_0000);
        assert_eq!(s.to_upload_bytes().unwrap().len(), 240); // §7.3
    }

    #[test]
    fn sizes_predict_the_encodings() {
        let mut b = ShardBuilder::new();
        assert!(b.is_empty());
        let mut expected_full = b.full_len();
        for seed in 0..4u8 {
            let c = chunks(seed, 1 + seed as usize);
            let x = xorb_hash(&leaves(&c));
            assert_eq!(b.full_len_after_xorb(c.len()), {
                b.add_xorb(x, &c).unwrap();
                b.full_len()
            });
            let terms = vec![FileTerm::new(x, c.iter().map(|x| x.1).sum(), 0, c.len() as u32)];
            let after = b.full_len_after_file(1, seed % 2 == 0);
            b.add_file_from_chunks(&leaves(&c), terms, (seed % 2 == 0).then_some([seed; 32]))
                .unwrap();
            assert_eq!(after, b.full_len());
            assert!(b.full_len() > expected_full);
            expected_full = b.full_len();
        }
        assert!(b.fits());
        let (up, full) = (b.upload_len(), b.full_len());
        let s = b.build();
        assert_eq!(s.to_upload_bytes().unwrap().len() as u64, up);
        assert_eq!(s.upload_len(), up);
        assert_eq!(s.to_full_bytes(&Default::default()).unwrap().len() as u64, full);
        assert_eq!(s.full_len(true), full);
    }

    #[test]
    fn build_sorts_by_words_not_bytes() {
        // Byte order and word order disagree for these two: w0 = 0x0100 vs 0x0001.
        let mut lo = [0u8; 32];
        lo[0] = 1; // w0 = 1
        let mut hi = [0u8; 32];
        hi[1] = 1; // w0 = 256, but smaller as bytes
        let mut b = ShardBuilder::new();
        for h in [hi, lo] {
            b.add_file_info(FileInfo {
                file_hash: MerkleHash::from_bytes(h),
                terms: vec![],
                verification: Some(vec![]),
                sha256: None,
            });
        }
        let s = b.build();
        assert_eq!(s.files[0].file_hash.as_bytes(), &lo);
        assert_eq!(s.files[1].file_hash.as_bytes(), &hi);
    }
}
