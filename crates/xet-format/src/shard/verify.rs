//! What a CAS server checks and derives when a shard is uploaded: content rules
//! (XET-PROTOCOL.md §7.3, §7.4), terms against stored xorbs (§4.6), and the chunks it
//! indexes for global dedup (§8.2).

use std::collections::{HashMap, HashSet};

use super::builder::{check_term_len, term_chunks};
use super::{Shard, XorbInfo, CHUNK_FLAG_GLOBAL_DEDUP};
use crate::error::{Error, Result};
use crate::hash::{file_hash, verification_hash, HashedLength};
use crate::MerkleHash;

/// What a server knows about a stored xorb: its chunk hashes in order and, if it has
/// them, their uncompressed lengths (both are in a stored xorb's footer, §6.5).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StoredXorb {
    /// Chunk hashes, in xorb order.
    pub chunk_hashes: Vec<MerkleHash>,
    /// Uncompressed chunk lengths, same order; `None` skips the length checks.
    pub chunk_lengths: Option<Vec<u32>>,
}

impl From<&XorbInfo> for StoredXorb {
    /// The hashes and lengths a CAS Info block lists.
    fn from(x: &XorbInfo) -> Self {
        StoredXorb {
            chunk_hashes: x.chunk_hashes(),
            chunk_lengths: Some(x.chunks.iter().map(|c| c.len).collect()),
        }
    }
}

impl Shard {
    /// Checks the rules an uploaded shard must follow, without looking at any stored
    /// xorb: every file carries one verification hash per term (§7.3 MUST; the
    /// official client's empty file has the flag and zero entries), every term covers a
    /// non-empty chunk range with at least one byte, no hash is the bookend, and every
    /// CAS Info block is self-consistent (at least one chunk, no empty chunk, offsets
    /// the running sum of lengths from 0, `num_bytes_in_cas` their total).
    pub fn validate_for_upload(&self) -> Result<()> {
        for f in &self.files {
            let file = || format!("file {}", f.file_hash);
            if f.file_hash == MerkleHash::BOOKEND {
                return Err(content(
                    file(),
                    "the all-ff hash is the section bookend, not a file hash",
                ));
            }
            match &f.verification {
                None => {
                    return Err(content(
                        file(),
                        "no verification entries: uploaded shards must carry one per term (§7.3)",
                    ))
                }
                Some(v) if v.len() != f.terms.len() => {
                    return Err(content(
                        file(),
                        format!("{} terms but {} verification hashes", f.terms.len(), v.len()),
                    ))
                }
                Some(_) => {}
            }
            for (i, t) in f.terms.iter().enumerate() {
                let location = || format!("file {} term {i}", f.file_hash);
                if t.chunk_start >= t.chunk_end {
                    return Err(content(
                        location(),
                        format!("chunk range [{}, {}) is empty", t.chunk_start, t.chunk_end),
                    ));
                }
                if t.unpacked_bytes == 0 {
                    return Err(content(
                        location(),
                        "unpacked_bytes is 0, but every chunk holds bytes",
                    ));
                }
            }
        }
        for x in &self.xorbs {
            let xorb = || format!("xorb {}", x.xorb_hash);
            if x.xorb_hash == MerkleHash::BOOKEND {
                return Err(content(
                    xorb(),
                    "the all-ff hash is the section bookend, not a xorb hash",
                ));
            }
            if x.chunks.is_empty() {
                return Err(content(xorb(), "the block lists no chunks"));
            }
            let mut start: u64 = 0;
            for (j, c) in x.chunks.iter().enumerate() {
                let chunk = || format!("xorb {} chunk {j}", x.xorb_hash);
                if c.len == 0 {
                    return Err(content(chunk(), "chunk length is 0"));
                }
                if u64::from(c.uncompressed_start) != start {
                    return Err(content(
                        chunk(),
                        format!(
                            "uncompressed start is {} but the chunks before it hold {start} bytes",
                            c.uncompressed_start
                        ),
                    ));
                }
                start += u64::from(c.len);
            }
            if u64::from(x.num_bytes_in_cas) != start {
                return Err(content(
                    xorb(),
                    format!(
                        "num_bytes_in_cas is {} but its chunks hold {start} bytes",
                        x.num_bytes_in_cas
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Checks every file's terms against the xorbs they reference, as a server must
    /// before registering the files (§4.6, §10.2 #4): `lookup` returns what is stored
    /// for a xorb hash (`None`: not uploaded, an [`Error::UnknownXorb`]). It is called
    /// once per distinct xorb.
    ///
    /// For each term: its chunk range lies within the xorb and is not empty, and its
    /// verification hash equals the hash of the stored chunk hashes it covers. Where
    /// `lookup` gives lengths, each term's `unpacked_bytes` must equal its chunks'
    /// total, and a file all of whose terms have lengths must hash (§4.5) to its file
    /// hash — the terms are then known to reconstruct exactly the file they name.
    pub fn verify_terms(&self, mut lookup: impl FnMut(&MerkleHash) -> Option<StoredXorb>) -> Result<()> {
        let mut cache: HashMap<MerkleHash, Option<StoredXorb>> = HashMap::new();
        for f in &self.files {
            let verification = f.verification.as_deref().ok_or_else(|| {
                content(
                    format!("file {}", f.file_hash),
                    "no verification entries: the terms cannot be verified (§7.3)",
                )
            })?;
            // The file's own chunk list, while every term has lengths.
            let mut leaves: Option<Vec<HashedLength>> = Some(Vec::new());
            for (i, t) in f.terms.iter().enumerate() {
                let location = || format!("file {} term {i}", f.file_hash);
                let stored = cache.entry(t.xorb_hash).or_insert_with(|| lookup(&t.xorb_hash));
                let stored = stored.as_ref().ok_or_else(|| Error::UnknownXorb {
                    what: location(),
                    xorb_hash: t.xorb_hash,
                })?;
                let hashes = term_chunks(&stored.chunk_hashes, t, location)?;
                let expected = verification.get(i).ok_or_else(|| {
                    content(
                        location(),
                        format!(
                            "{} terms but {} verification hashes",
                            f.terms.len(),
                            verification.len()
                        ),
                    )
                })?;
                let actual = verification_hash(hashes);
                if actual != *expected {
                    return Err(content(
                        location(),
                        format!(
                            "verification hash {expected} does not match {actual}, the hash of chunks [{}, {}) \
                             of xorb {}",
                            t.chunk_start, t.chunk_end, t.xorb_hash
                        ),
                    ));
                }
                match stored
                    .chunk_lengths
                    .as_deref()
                    .and_then(|l| l.get(t.chunk_start as usize..t.chunk_end as usize))
                {
                    Some(lengths) => {
                        check_term_len(t, lengths.iter().map(|&l| u64::from(l)).sum(), location)?;
                        if let Some(leaves) = &mut leaves {
                            leaves.extend(hashes.iter().zip(lengths).map(|(&h, &l)| (h, u64::from(l))));
                        }
                    }
                    None => leaves = None,
                }
            }
            if let Some(leaves) = leaves {
                let actual = file_hash(&leaves);
                if actual != f.file_hash {
                    return Err(content(
                        format!("file {}", f.file_hash),
                        format!(
                            "its terms' chunks hash to file hash {actual}, not to the file hash it claims"
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Checks every CAS Info block against the stored xorb of that hash: it must exist
    /// (an [`Error::UnknownXorb`] otherwise, §7.4 "every xorb ... must already be
    /// uploaded") and list exactly its chunk hashes, and lengths where `lookup` gives
    /// them. Other servers' dedup queries trust these entries, so a client must not be
    /// able to make them up.
    pub fn verify_xorbs(&self, mut lookup: impl FnMut(&MerkleHash) -> Option<StoredXorb>) -> Result<()> {
        for (i, x) in self.xorbs.iter().enumerate() {
            let stored = lookup(&x.xorb_hash).ok_or_else(|| Error::UnknownXorb {
                what: format!("CAS Info block {i}"),
                xorb_hash: x.xorb_hash,
            })?;
            if stored.chunk_hashes.len() != x.chunks.len() {
                return Err(content(
                    format!("xorb {}", x.xorb_hash),
                    format!(
                        "the shard lists {} chunks, the stored xorb has {}",
                        x.chunks.len(),
                        stored.chunk_hashes.len()
                    ),
                ));
            }
            for (j, (c, h)) in x.chunks.iter().zip(&stored.chunk_hashes).enumerate() {
                let location = || format!("xorb {} chunk {j}", x.xorb_hash);
                if c.hash != *h {
                    return Err(content(
                        location(),
                        format!("the shard lists hash {}, the stored xorb has {h}", c.hash),
                    ));
                }
                if let Some(&len) = stored.chunk_lengths.as_ref().and_then(|l| l.get(j)) {
                    if c.len != len {
                        return Err(content(
                            location(),
                            format!("the shard lists length {}, the stored xorb has {len}", c.len),
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// The chunk hashes a server indexes for global dedup when it registers this shard
    /// (§8.2; xet-core `MDBMinimalShard::global_dedup_eligible_chunks`): in the CAS Info
    /// section, the chunk each file starts with (its first term's first chunk, when
    /// that xorb is listed here), every chunk whose hash has `w3 % 1024 == 0`, and
    /// every chunk flagged [`CHUNK_FLAG_GLOBAL_DEDUP`]. In section order, each hash
    /// once (xet-core returns a set).
    pub fn global_dedup_eligible_chunks(&self) -> Vec<MerkleHash> {
        let starts = self.file_start_chunks();
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for x in &self.xorbs {
            let file_starts = starts.get(&x.xorb_hash);
            for (j, c) in x.chunks.iter().enumerate() {
                let eligible = c.flags & CHUNK_FLAG_GLOBAL_DEDUP != 0
                    || c.hash.is_global_dedup_eligible()
                    || file_starts.is_some_and(|s| s.contains(&j));
                if eligible && seen.insert(c.hash) {
                    out.push(c.hash);
                }
            }
        }
        out
    }

    /// A copy with [`CHUNK_FLAG_GLOBAL_DEDUP`] set on each CAS chunk entry that starts
    /// a file of this shard (its first term's first chunk), other flags kept: what the
    /// reference server does before storing an upload (xet-core
    /// `MDBMinimalShard::serialize`; §7.4, checked against the vectors). With
    /// [`FullOptions::server_stored`](super::FullOptions::server_stored) and
    /// [`dedup_files`](Shard::dedup_files) this reproduces `NAME.shard.stored.bin`.
    pub fn with_global_dedup_flags(&self) -> Shard {
        let starts = self.file_start_chunks();
        let mut out = self.clone();
        for x in &mut out.xorbs {
            if let Some(s) = starts.get(&x.xorb_hash) {
                for &j in s {
                    if let Some(c) = x.chunks.get_mut(j) {
                        c.flags |= CHUNK_FLAG_GLOBAL_DEDUP;
                    }
                }
            }
        }
        out
    }

    /// xorb hash → indices of the chunks that start a file (first term's first chunk).
    fn file_start_chunks(&self) -> HashMap<MerkleHash, HashSet<usize>> {
        let mut starts: HashMap<MerkleHash, HashSet<usize>> = HashMap::new();
        for t in self.files.iter().filter_map(|f| f.terms.first()) {
            starts
                .entry(t.xorb_hash)
                .or_default()
                .insert(t.chunk_start as usize);
        }
        starts
    }
}

fn content(location: String, reason: impl Into<String>) -> Error {
    Error::InvalidShardContent {
        location,
        reason: reason.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::{chunk_hash, xorb_hash};
    use crate::shard::{FileTerm, ShardBuilder};

    /// Two xorbs; file A = x1[0..3] + x2[0..1], file B = x1[1..3].
    fn fixture() -> (Shard, HashMap<MerkleHash, StoredXorb>) {
        let c1: Vec<(MerkleHash, u32)> = (0..3).map(|i| (chunk_hash(&[1, i]), 10 + u32::from(i))).collect();
        let c2: Vec<(MerkleHash, u32)> = vec![(chunk_hash(b"x2"), 7)];
        let leaves = |c: &[(MerkleHash, u32)]| c.iter().map(|&(h, l)| (h, u64::from(l))).collect::<Vec<_>>();
        let (x1, x2) = (xorb_hash(&leaves(&c1)), xorb_hash(&leaves(&c2)));
        let mut b = ShardBuilder::new();
        b.add_xorb(x1, &c1).unwrap();
        b.add_xorb(x2, &c2).unwrap();
        let a: Vec<(MerkleHash, u32)> = c1.iter().chain(&c2).copied().collect();
        b.add_file_from_chunks(
            &leaves(&a),
            vec![FileTerm::new(x1, 33, 0, 3), FileTerm::new(x2, 7, 0, 1)],
            None,
        )
        .unwrap();
        b.add_file_from_chunks(&leaves(&c1[1..]), vec![FileTerm::new(x1, 23, 1, 3)], None)
            .unwrap();
        let mut shard = b.build();
        // The builder sorts by hash; put file A and x1 first for the tests below.
        shard.files.sort_by_key(|f| std::cmp::Reverse(f.terms.len()));
        shard.xorbs.sort_by_key(|x| std::cmp::Reverse(x.chunks.len()));
        let stored = shard
            .xorbs
            .iter()
            .map(|x| (x.xorb_hash, StoredXorb::from(x)))
            .collect();
        (shard, stored)
    }

    #[test]
    fn a_good_shard_passes() {
        let (shard, stored) = fixture();
        shard.validate_for_upload().unwrap();
        let mut calls = 0;
        shard
            .verify_terms(|h| {
                calls += 1;
                stored.get(h).cloned()
            })
            .unwrap();
        assert_eq!(calls, 2, "one lookup per distinct xorb");
        shard.verify_xorbs(|h| stored.get(h).cloned()).unwrap();
        // Without lengths the length and file-hash checks are skipped.
        shard
            .verify_terms(|h| {
                stored.get(h).map(|s| StoredXorb {
                    chunk_lengths: None,
                    ..s.clone()
                })
            })
            .unwrap();
    }

    #[test]
    fn verify_terms_catches_lies() {
        let (shard, stored) = fixture();
        let get = |h: &MerkleHash| stored.get(h).cloned();

        let mut s = shard.clone();
        s.files[0].verification.as_mut().unwrap()[1] = MerkleHash::ZERO;
        assert!(matches!(
            s.verify_terms(get),
            Err(Error::InvalidShardContent { .. })
        ));

        let mut s = shard.clone();
        s.files[0].terms[0].chunk_end = 4;
        assert!(matches!(
            s.verify_terms(get),
            Err(Error::InvalidShardContent { .. })
        ));

        let mut s = shard.clone();
        s.files[0].terms[0].unpacked_bytes += 1;
        assert!(matches!(
            s.verify_terms(get),
            Err(Error::InvalidShardContent { .. })
        ));

        let mut s = shard.clone();
        s.files[0].file_hash = MerkleHash::from_bytes([1; 32]);
        assert!(matches!(
            s.verify_terms(get),
            Err(Error::InvalidShardContent { .. })
        ));

        let mut s = shard.clone();
        s.files[1].verification = None;
        assert!(matches!(
            s.verify_terms(get),
            Err(Error::InvalidShardContent { .. })
        ));

        let missing = shard.xorbs[1].xorb_hash;
        match shard.verify_terms(|h| if *h == missing { None } else { get(h) }) {
            Err(Error::UnknownXorb { xorb_hash, .. }) => assert_eq!(xorb_hash, missing),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn verify_xorbs_catches_lies() {
        let (shard, stored) = fixture();
        let get = |h: &MerkleHash| stored.get(h).cloned();
        let mut s = shard.clone();
        s.xorbs[0].chunks[2].hash = MerkleHash::ZERO;
        assert!(s.verify_xorbs(get).is_err());
        let mut s = shard.clone();
        s.xorbs[0].chunks[2].len += 1;
        assert!(s.verify_xorbs(get).is_err());
        let mut s = shard.clone();
        s.xorbs[0].chunks.pop();
        assert!(s.verify_xorbs(get).is_err());
        assert!(matches!(
            shard.verify_xorbs(|_| None),
            Err(Error::UnknownXorb { .. })
        ));
    }

    #[test]
    fn validate_for_upload_rules() {
        let (shard, _) = fixture();
        let broken: [fn(&mut Shard); 9] = [
            |s| s.files[0].verification = None,
            |s| s.files[0].terms[0].chunk_end = 0,
            |s| s.files[0].terms[0].unpacked_bytes = 0,
            |s| s.files[0].file_hash = MerkleHash::BOOKEND,
            |s| s.xorbs[0].xorb_hash = MerkleHash::BOOKEND,
            |s| s.xorbs[0].chunks.clear(),
            |s| s.xorbs[0].chunks[1].uncompressed_start += 1,
            |s| s.xorbs[0].chunks[1].len = 0,
            |s| s.xorbs[0].num_bytes_in_cas += 1,
        ];
        for (i, f) in broken.iter().enumerate() {
            let mut s = shard.clone();
            f(&mut s);
            assert!(
                matches!(s.validate_for_upload(), Err(Error::InvalidShardContent { .. })),
                "case {i}"
            );
        }
    }

    #[test]
    fn eligible_chunks_and_flags() {
        let (shard, _) = fixture();
        // File A starts at x1 chunk 0, file B at x1 chunk 1.
        let xi = 0;
        let mut expected = vec![shard.xorbs[xi].chunks[0].hash, shard.xorbs[xi].chunks[1].hash];
        let eligible = shard.global_dedup_eligible_chunks();
        let by_hash: Vec<MerkleHash> = shard
            .xorbs
            .iter()
            .flat_map(|x| &x.chunks)
            .filter(|c| c.hash.is_global_dedup_eligible())
            .map(|c| c.hash)
            .collect();
        expected.extend(by_hash);
        let mut sorted = eligible.clone();
        sorted.sort();
        expected.sort();
        expected.dedup();
        assert_eq!(sorted, expected);

        let flagged = shard.with_global_dedup_flags();
        let flags: Vec<u32> = flagged.xorbs[xi].chunks.iter().map(|c| c.flags).collect();
        assert_eq!(flags, [CHUNK_FLAG_GLOBAL_DEDUP, CHUNK_FLAG_GLOBAL_DEDUP, 0]);
        // A flag alone makes a chunk eligible.
        let mut s = shard.clone();
        s.files.clear();
        assert!(s
            .global_dedup_eligible_chunks()
            .iter()
            .all(|h| h.is_global_dedup_eligible()));
        s.xorbs[xi].chunks[2].flags = CHUNK_FLAG_GLOBAL_DEDUP;
        assert!(s
            .global_dedup_eligible_chunks()
            .contains(&s.xorbs[xi].chunks[2].hash));
    }
}
