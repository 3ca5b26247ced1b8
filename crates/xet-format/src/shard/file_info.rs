//! File Info section records (XET-PROTOCOL.md §7.3): a file's reconstruction terms,
//! their verification hashes and the optional SHA-256.

use super::{
    count_u32, le_u32, put_hash, put_u32, put_u64, rec_hash, Reader, Record, FILE_FLAG_METADATA_EXT,
    FILE_FLAG_VERIFICATION, RECORD_BYTES,
};
use crate::error::{Error, Result};
use crate::MerkleHash;

/// One term of a file reconstruction (`FileDataSequenceEntry`, §7.3): chunks
/// `[chunk_start, chunk_end)` of a xorb, `unpacked_bytes` long once decompressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileTerm {
    /// The xorb holding the chunks.
    pub xorb_hash: MerkleHash,
    /// Reserved `cas_flags`; 0 from every known writer. Kept as read so that a
    /// re-encoded shard says what it was given.
    pub cas_flags: u32,
    /// Uncompressed length of the term's chunks.
    pub unpacked_bytes: u32,
    /// First chunk index (inclusive).
    pub chunk_start: u32,
    /// End chunk index (exclusive).
    pub chunk_end: u32,
}

impl FileTerm {
    /// A term with reserved flags 0.
    pub fn new(xorb_hash: MerkleHash, unpacked_bytes: u32, chunk_start: u32, chunk_end: u32) -> Self {
        FileTerm {
            xorb_hash,
            cas_flags: 0,
            unpacked_bytes,
            chunk_start,
            chunk_end,
        }
    }

    /// Number of chunks the term covers (0 if the range is empty or reversed).
    pub fn num_chunks(&self) -> u32 {
        self.chunk_end.saturating_sub(self.chunk_start)
    }
}

/// One file block of the File Info section (`MDBFileInfo`, §7.3).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FileInfo {
    /// The file hash (Xet file ID).
    pub file_hash: MerkleHash,
    /// The reconstruction, in file order; contiguous and gap-free in a valid shard.
    pub terms: Vec<FileTerm>,
    /// One verification ("range") hash per term (§4.6), if the block carries them
    /// (flag `0x80000000`). Uploads must. The empty file has `Some(vec![])`: the
    /// official client sets the flag although no entry follows (§7.3).
    pub verification: Option<Vec<MerkleHash>>,
    /// The `FileMetadataExt` SHA-256 (flag `0x40000000`), in the byte order the shard
    /// stores: each 8-byte group of the digest reversed (§2); see
    /// [`MerkleHash::from_sha256_digest`].
    pub sha256: Option<MerkleHash>,
}

impl FileInfo {
    /// The file's size: Σ `unpacked_bytes` of its terms.
    pub fn size(&self) -> u64 {
        self.terms.iter().map(|t| u64::from(t.unpacked_bytes)).sum()
    }

    /// The `file_flags` this block is written with.
    pub fn flags(&self) -> u32 {
        let mut flags = 0;
        if self.verification.is_some() {
            flags |= FILE_FLAG_VERIFICATION;
        }
        if self.sha256.is_some() {
            flags |= FILE_FLAG_METADATA_EXT;
        }
        flags
    }

    /// The SHA-256 as a conventional digest (the order Git LFS pointers print).
    pub fn sha256_digest(&self) -> Option<[u8; 32]> {
        self.sha256.map(|h| h.to_sha256_digest())
    }

    /// Number of 48-byte records the block takes: header, terms, verification entries,
    /// metadata ext.
    pub fn record_count(&self) -> u64 {
        let terms = self.terms.len() as u64;
        1 + terms + if self.verification.is_some() { terms } else { 0 } + u64::from(self.sha256.is_some())
    }

    /// Encoded length of the block in bytes.
    pub fn encoded_len(&self) -> u64 {
        self.record_count() * RECORD_BYTES as u64
    }

    pub(super) fn write(&self, out: &mut Vec<u8>) -> Result<()> {
        let at = out.len();
        if self.file_hash == MerkleHash::BOOKEND {
            return Err(Error::invalid(
                "file hash",
                at,
                "the all-ff hash is the section bookend and cannot name a file",
            ));
        }
        let n = count_u32("terms in one file", self.terms.len())?;
        if let Some(v) = &self.verification {
            if v.len() != self.terms.len() {
                return Err(Error::invalid(
                    "file verification entries",
                    at,
                    format!(
                        "file {} has {} terms but {} verification hashes: there must be one per term",
                        self.file_hash,
                        self.terms.len(),
                        v.len()
                    ),
                ));
            }
        }
        put_hash(out, &self.file_hash);
        put_u32(out, self.flags());
        put_u32(out, n);
        put_u64(out, 0);
        for t in &self.terms {
            put_hash(out, &t.xorb_hash);
            put_u32(out, t.cas_flags);
            put_u32(out, t.unpacked_bytes);
            put_u32(out, t.chunk_start);
            put_u32(out, t.chunk_end);
        }
        for h in self.verification.iter().flatten() {
            put_hash(out, h);
            out.extend_from_slice(&[0; 16]);
        }
        if let Some(sha) = &self.sha256 {
            put_hash(out, sha);
            out.extend_from_slice(&[0; 16]);
        }
        Ok(())
    }

    /// Reads the rest of a file block whose header record `header` sat at byte `at`.
    pub(super) fn read(header: &Record, at: usize, r: &mut Reader<'_>) -> Result<FileInfo> {
        let file_hash = rec_hash(header);
        let flags = le_u32(header, 32);
        let unknown = flags & !(FILE_FLAG_VERIFICATION | FILE_FLAG_METADATA_EXT);
        if unknown != 0 {
            // An unknown flag may announce records we would not know to skip, so
            // guessing would misread everything after this block.
            return Err(Error::invalid(
                "file_flags",
                at + 32,
                format!(
                    "file {file_hash} has flags {flags:#010x} with unknown bits {unknown:#010x}: only \
                     0x80000000 (verification) and 0x40000000 (metadata ext) are defined"
                ),
            ));
        }
        let has_verification = flags & FILE_FLAG_VERIFICATION != 0;
        let has_sha256 = flags & FILE_FLAG_METADATA_EXT != 0;
        let n = le_u32(header, 36);
        // Reserved u64 at 40..48: xet-core ignores it on read (its own tests write a
        // non-zero value there), so do we.
        let following = u64::from(n) * if has_verification { 2 } else { 1 } + u64::from(has_sha256);
        r.need_records("File Info block", at, following)?;

        // `need_records` has checked that n records follow, so n fits in memory.
        let mut terms = Vec::with_capacity(n as usize);
        for _ in 0..n {
            let rec = r.record("file term")?;
            terms.push(FileTerm {
                xorb_hash: rec_hash(rec),
                cas_flags: le_u32(rec, 32),
                unpacked_bytes: le_u32(rec, 36),
                chunk_start: le_u32(rec, 40),
                chunk_end: le_u32(rec, 44),
            });
        }
        let verification = if has_verification {
            let mut v = Vec::with_capacity(n as usize);
            for _ in 0..n {
                // 16 reserved bytes follow the range hash; ignored like xet-core.
                v.push(rec_hash(r.record("file verification entry")?));
            }
            Some(v)
        } else {
            None
        };
        let sha256 = if has_sha256 {
            Some(rec_hash(r.record("file metadata ext")?))
        } else {
            None
        };
        Ok(FileInfo {
            file_hash,
            terms,
            verification,
            sha256,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(terms: usize, verification: bool, sha: bool) -> FileInfo {
        let terms: Vec<FileTerm> = (0..terms)
            .map(|i| {
                FileTerm::new(
                    MerkleHash::from_bytes([i as u8 + 1; 32]),
                    100,
                    i as u32,
                    i as u32 + 1,
                )
            })
            .collect();
        FileInfo {
            file_hash: MerkleHash::from_bytes([9; 32]),
            verification: verification.then(|| terms.iter().map(|t| t.xorb_hash).collect()),
            terms,
            sha256: sha.then(|| MerkleHash::from_bytes([7; 32])),
        }
    }

    fn round_trip(f: &FileInfo) -> FileInfo {
        let mut out = Vec::new();
        f.write(&mut out).unwrap();
        assert_eq!(out.len() as u64, f.encoded_len());
        let mut r = Reader { data: &out, pos: 0 };
        let header = r.record("header").unwrap();
        let back = FileInfo::read(header, 0, &mut r).unwrap();
        assert_eq!(r.pos, out.len());
        back
    }

    #[test]
    fn every_flag_combination_round_trips() {
        for terms in [0, 1, 3] {
            for v in [false, true] {
                for s in [false, true] {
                    let f = file(terms, v, s);
                    assert_eq!(round_trip(&f), f);
                    assert_eq!(
                        f.record_count(),
                        1 + terms as u64 * (1 + u64::from(v)) + u64::from(s)
                    );
                }
            }
        }
    }

    #[test]
    fn empty_file_quirk_flags() {
        // §7.3: the official client writes 0 terms with flags 0xC0000000.
        let f = FileInfo {
            file_hash: MerkleHash::ZERO,
            terms: vec![],
            verification: Some(vec![]),
            sha256: Some(MerkleHash::ZERO),
        };
        assert_eq!(f.flags(), 0xC000_0000);
        assert_eq!(f.size(), 0);
        assert_eq!(f.encoded_len(), 96);
        assert_eq!(round_trip(&f), f);
    }

    #[test]
    fn cas_flags_kept() {
        let mut f = file(2, true, false);
        f.terms[1].cas_flags = 0xdead_beef;
        assert_eq!(round_trip(&f), f);
    }

    #[test]
    fn write_rejects_unrepresentable_blocks() {
        let mut f = file(2, true, false);
        f.verification.as_mut().unwrap().pop();
        assert!(matches!(
            f.write(&mut Vec::new()),
            Err(Error::InvalidField {
                what: "file verification entries",
                ..
            })
        ));
        let mut f = file(1, false, false);
        f.file_hash = MerkleHash::BOOKEND;
        assert!(matches!(
            f.write(&mut Vec::new()),
            Err(Error::InvalidField {
                what: "file hash",
                ..
            })
        ));
    }

    #[test]
    fn unknown_flags_rejected() {
        let mut out = Vec::new();
        file(1, false, false).write(&mut out).unwrap();
        out[32] = 1;
        let mut r = Reader { data: &out, pos: 0 };
        let h = r.record("h").unwrap();
        assert!(matches!(
            FileInfo::read(h, 0, &mut r),
            Err(Error::InvalidField {
                what: "file_flags",
                offset: 32,
                ..
            })
        ));
    }

    #[test]
    fn lying_count_fails_before_allocating() {
        let mut out = Vec::new();
        file(1, true, true).write(&mut out).unwrap();
        out[36..40].copy_from_slice(&u32::MAX.to_le_bytes());
        let mut r = Reader { data: &out, pos: 0 };
        let h = r.record("h").unwrap();
        match FileInfo::read(h, 0, &mut r) {
            Err(Error::Truncated {
                what: "File Info block",
                offset: 0,
                needed,
                remaining,
            }) => {
                assert_eq!(needed, (2 * u64::from(u32::MAX) + 2) * 48);
                assert_eq!(remaining, out.len() as u64);
            }
            other => panic!("{other:?}"),
        }
    }
}
