//! What a client needs to re-upload a file after editing some byte ranges, without
//! the file's other chunks: `GET /v2/file-chunk-hashes` (XET-PROTOCOL.md §10.2 #9,
//! §10.4). The answer splits the file into *windows*, chunk-aligned spans around
//! the dirty ranges that the client re-chunks, and *gaps* between them, which the
//! client does not read again: each gap comes as a [`HashSubtree`], a partial Merkle
//! state of its chunks, and the client merges the states and its new chunks into
//! the new file hash (§4.3, §4.5).
//!
//! # What comes from reading xet-core
//!
//! The protocol documents name this route but not its subtree format, which is
//! internal to xet-core (`xet_core_structures/src/merklehash/merkle_hash_subtree.rs`
//! and `xet_client/src/cas_client/chunk_window_builder.rs`). Read there, written
//! here in our own code:
//! - the JSON shape: `{"nodes":[{"hash","size"}...],"levels":[[left,right]...],
//!   "at_start","at_end"}`, nodes flattened as every level's left side bottom-up,
//!   then every level's right side top-down;
//! - the per-level split: a left side is not merged unless the range starts the
//!   file, a right side unless it ends it; otherwise merging starts after the
//!   first, and stops after the last, "stable" boundary (three natural cuts, two
//!   gaps between 3 and 7 nodes) whatever the unseen neighbours are;
//! - the window rule: a window grows over the chunks touching dirty bytes, then
//!   over clean chunks until two consecutive ones have "stable" sizes
//!   (`2 * min <= size < max - min`, §3), where the re-chunked bytes fall back
//!   onto the old cut points;
//! - `gapVerification`: the verification hash of every term outside all windows.
//!
//! The server-side tests recompose the file hash from a response to check the
//! semantics independently of xet-core's merge code.

use xet_format::chunker::{MAX_CHUNK_SIZE, MIN_CHUNK_SIZE};
use xet_format::hash::{internal_node_hash, HashedLength};
use xet_format::MerkleHash;

/// Group bounds of the Merkle aggregation (§4.3): a group holds every node left
/// when at most two remain, else 3..=9 nodes; a node whose `w3 % 4 == 0` ends one.
const GROUP_MAX: usize = 9;

/// A partial Merkle state over a run of chunks (see the module docs): per level,
/// the nodes that could not be merged yet because their neighbours are unknown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashSubtree {
    /// Every level's left-side nodes, bottom-up, then every level's right-side
    /// nodes, top-down: the run in file order, each node a (hash, byte count).
    pub nodes: Vec<HashedLength>,
    /// Per level, bottom-up: (left-side count, right-side count).
    pub levels: Vec<(usize, usize)>,
    /// The run starts the file.
    pub at_start: bool,
    /// The run ends the file.
    pub at_end: bool,
}

impl HashSubtree {
    /// The state of `chunks` (file order); `at_start`/`at_end` say whether they
    /// begin/end the file.
    pub fn from_chunks(at_start: bool, chunks: &[HashedLength], at_end: bool) -> Self {
        let mut lefts: Vec<Vec<HashedLength>> = Vec::new();
        let mut rights: Vec<Vec<HashedLength>> = Vec::new();
        let mut current = chunks.to_vec();
        loop {
            // A level is at the file's start only if nothing was left over below.
            let start_here = at_start && lefts.iter().all(Vec::is_empty);
            let end_here = at_end && rights.iter().all(Vec::is_empty);
            let (prefix, suffix, promoted) = split_level(&current, start_here, end_here);
            lefts.push(current[..prefix].to_vec());
            rights.push(current[current.len() - suffix..].to_vec());
            match promoted.len() {
                0 => break,
                1 => {
                    lefts.push(promoted);
                    rights.push(Vec::new());
                    break;
                }
                _ => current = promoted,
            }
        }
        let levels = lefts
            .iter()
            .zip(&rights)
            .map(|(l, r)| (l.len(), r.len()))
            .collect();
        let mut nodes: Vec<HashedLength> = lefts.into_iter().flatten().collect();
        nodes.extend(rights.into_iter().rev().flatten());
        HashSubtree {
            nodes,
            levels,
            at_start,
            at_end,
        }
    }

    /// No chunks (the API sends `null` for such a gap).
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }
}

fn natural_cut(n: &HashedLength) -> bool {
    n.0.w3().is_multiple_of(4)
}

/// A gap between natural cuts that pins group boundaries whatever precedes or
/// follows (xet-core's `valid_gap`: more than 2, fewer than 8 nodes).
fn pinning_gap(g: usize) -> bool {
    g > 2 && g < GROUP_MAX - 1
}

/// First index that starts a group whatever nodes come before `nodes`.
fn stable_start(nodes: &[HashedLength]) -> Option<usize> {
    if nodes.len() < 3 {
        return None;
    }
    let (mut a, mut b): (Option<usize>, Option<usize>) = (None, None);
    for c in (0..nodes.len()).filter(|&i| natural_cut(&nodes[i])) {
        if let (Some(a), Some(b)) = (a, b) {
            if pinning_gap(b - a) && pinning_gap(c - b) {
                return Some(b + 1);
            }
        }
        (a, b) = (b, Some(c));
    }
    None
}

/// Last index that starts a group whatever nodes come after `nodes`.
fn stable_end(nodes: &[HashedLength]) -> Option<usize> {
    if nodes.len() < 3 {
        return None;
    }
    let (mut later, mut next): (Option<usize>, Option<usize>) = (None, None);
    for c in (0..nodes.len()).rev().filter(|&i| natural_cut(&nodes[i])) {
        if let (Some(n), Some(l)) = (next, later) {
            if pinning_gap(n - c) && pinning_gap(l - n) {
                return Some(n + 1);
            }
        }
        (later, next) = (next, Some(c));
    }
    None
}

/// Length of the group starting `rest` (§4.3).
fn group_len(rest: &[HashedLength]) -> usize {
    if rest.len() <= 2 {
        return rest.len();
    }
    let limit = rest.len().min(GROUP_MAX);
    (2..limit)
        .find(|&i| natural_cut(&rest[i]))
        .map_or(limit, |i| i + 1)
}

/// The parent of a group (§4.3): keyed BLAKE3 of `"{hash} : {len}\n"` lines.
fn parent(group: &[HashedLength]) -> HashedLength {
    let mut text = String::with_capacity(group.len() * 90);
    let mut len = 0u64;
    for (h, l) in group {
        text.push_str(&format!("{h} : {l}\n"));
        len = len.wrapping_add(*l);
    }
    (internal_node_hash(text.as_bytes()), len)
}

/// Splits one level into (left-side count, right-side count, merged parents of
/// the part between).
fn split_level(nodes: &[HashedLength], at_start: bool, at_end: bool) -> (usize, usize, Vec<HashedLength>) {
    let all = (nodes.len(), 0, Vec::new());
    if nodes.len() <= 1 {
        return all;
    }
    let Some(s) = (if at_start { Some(0) } else { stable_start(nodes) }) else {
        return all;
    };
    let Some(e) = (if at_end {
        Some(nodes.len())
    } else {
        stable_end(&nodes[s..]).map(|e| s + e)
    }) else {
        return all;
    };
    if s >= e {
        return all;
    }
    let mut promoted = Vec::with_capacity((e - s) / 2 + 1);
    let mut rest = &nodes[s..e];
    while !rest.is_empty() {
        let n = group_len(rest);
        promoted.push(parent(&rest[..n]));
        rest = &rest[n..];
    }
    (s, nodes.len() - e, promoted)
}

/// A chunk size the chunker re-synchronises on (xet-core's `is_stable_chunk_size`):
/// neither cut short by the minimum-size skip nor near the forced maximum (§3).
fn stable_chunk_size(size: u64) -> bool {
    size >= 2 * MIN_CHUNK_SIZE as u64 && size < (MAX_CHUNK_SIZE - MIN_CHUNK_SIZE) as u64
}

/// The answer to a file-chunk-hashes query (§10.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileChunkHashes {
    /// Chunks in the file.
    pub total_chunks: u64,
    /// The file's size.
    pub file_size: u64,
    /// Half-open, chunk-aligned byte spans the client re-chunks, in order.
    pub windows: Vec<(u64, u64)>,
    /// `windows.len() + 1` gap states: before the first window, between windows,
    /// after the last; `None` for an empty gap.
    pub hash_ranges: Vec<Option<HashSubtree>>,
    /// Verification hashes of the terms that overlap no window, in file order
    /// (empty if the file has none stored).
    pub gap_verification: Vec<MerkleHash>,
}

/// Builds [`FileChunkHashes`] from the file's chunks in order and its dirty ranges
/// (half-open, sorted, disjoint, within the file, non-empty). `terms` are the
/// byte sizes of the file's terms with their verification hashes, if stored.
pub(crate) fn build(
    chunks: &[HashedLength],
    dirty: &[(u64, u64)],
    terms: &[(u64, Option<MerkleHash>)],
) -> FileChunkHashes {
    let file_size: u64 = chunks.iter().map(|c| c.1).sum();
    let mut windows: Vec<(u64, u64)> = Vec::with_capacity(dirty.len());
    let mut hash_ranges = Vec::with_capacity(dirty.len() + 1);
    let mut gap: Vec<HashedLength> = Vec::new();
    let mut first_gap = true;
    let mut open = false;
    let mut prev_clean: Option<u64> = None;
    let mut d = 0usize; // the dirty range being handled
    let touches = |i: usize, a: u64, b: u64| i < dirty.len() && b > dirty[i].0 && a < dirty[i].1;
    let mut pos = 0u64;
    for &(hash, size) in chunks {
        let (a, b) = (pos, pos + size);
        pos = b;
        let hit = touches(d, a, b) || (open && touches(d + 1, a, b));
        if !open && !hit {
            gap.push((hash, size));
            continue;
        }
        if hit {
            if !open {
                let g = HashSubtree::from_chunks(first_gap, &gap, false);
                hash_ranges.push((!g.is_empty()).then_some(g));
                gap.clear();
                windows.push((a, b));
                open = true;
            } else {
                windows.last_mut().expect("a window is open").1 = b;
            }
            // Skip the dirty ranges this chunk reaches into: they join this window.
            while d + 1 < dirty.len() && b > dirty[d + 1].0 {
                d += 1;
            }
            prev_clean = None;
            continue;
        }
        // A clean chunk after the dirty bytes: the window grows until the chunker
        // is back on the old cut points (two stable-size chunks in a row).
        windows.last_mut().expect("a window is open").1 = b;
        let resynced = prev_clean.is_some_and(stable_chunk_size) && stable_chunk_size(size);
        prev_clean = Some(size);
        if resynced {
            open = false;
            first_gap = false;
            prev_clean = None;
            d += 1;
        }
    }
    let g = HashSubtree::from_chunks(first_gap, &gap, true);
    hash_ranges.push((!g.is_empty()).then_some(g));

    let mut gap_verification = Vec::new();
    if terms.iter().all(|t| t.1.is_some()) {
        let mut start = 0u64;
        let mut w = 0usize;
        for &(len, v) in terms {
            let end = start + len;
            while w < windows.len() && windows[w].1 <= start {
                w += 1;
            }
            if !(w < windows.len() && windows[w].0 < end) {
                gap_verification.extend(v);
            }
            start = end;
        }
    }
    FileChunkHashes {
        total_chunks: chunks.len() as u64,
        file_size,
        windows,
        hash_ranges,
        gap_verification,
    }
}

#[cfg(test)]
mod tests {
    use xet_format::hash::{chunk_hash, merkle_root};

    use super::*;

    fn leaves(n: usize, seed: u64) -> Vec<HashedLength> {
        (0..n as u64)
            .map(|i| (chunk_hash(&(seed * 1_000_003 + i).to_le_bytes()), 1000 + i))
            .collect()
    }

    /// A run that is the whole file collapses to the Merkle root, for every length
    /// (levels with empty sides below one top node).
    #[test]
    fn whole_runs_collapse_to_the_merkle_root() {
        for n in 1..200 {
            let l = leaves(n, 7);
            let t = HashSubtree::from_chunks(true, &l, true);
            let (top_l, top_r) = *t.levels.last().unwrap();
            assert_eq!((top_l, top_r), (1, 0), "n = {n}");
            assert!(t.levels[..t.levels.len() - 1].iter().all(|&s| s == (0, 0)));
            assert_eq!(t.nodes, vec![(merkle_root(&l), l.iter().map(|c| c.1).sum())]);
        }
        assert!(HashSubtree::from_chunks(false, &[], false).is_empty());
    }

    /// An inner run keeps unmerged sides and its nodes cover exactly its bytes.
    #[test]
    fn inner_runs_keep_their_sides() {
        let l = leaves(500, 3);
        let t = HashSubtree::from_chunks(false, &l, false);
        assert!(t.levels[0].0 > 0 && t.levels[0].1 > 0);
        assert_eq!(t.nodes.len(), t.levels.iter().map(|&(a, b)| a + b).sum::<usize>());
        let bytes: u64 = t.nodes.iter().map(|n| n.1).sum();
        assert_eq!(bytes, l.iter().map(|c| c.1).sum::<u64>());
        // Merged parents exist above the sides: the state is smaller than the run.
        assert!(t.levels.len() >= 2 && t.nodes.len() < l.len(), "{:?}", t.levels);
    }
}
