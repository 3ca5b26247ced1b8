//! The protocol's hash functions (XET-PROTOCOL.md §4): chunk hash, the Merkle
//! aggregation behind xorb and file hashes, term verification hashes, the keyed chunk
//! hash of global-dedup shards, and SHA-256 of file contents.
//!
//! All but SHA-256 are BLAKE3 in keyed mode.

use std::fmt::Write as _;

use crate::MerkleHash;

/// Key of the chunk hash (`DATA_KEY`, §4.1).
pub const DATA_KEY: [u8; 32] = [
    102, 151, 245, 119, 91, 149, 80, 222, 49, 53, 203, 172, 165, 151, 24, 28, 157, 228, 33, 16, 155, 235, 43,
    88, 180, 208, 176, 75, 147, 173, 242, 41,
];

/// Key of Merkle internal nodes (`INTERNAL_NODE_KEY`, §4.1).
pub const INTERNAL_NODE_KEY: [u8; 32] = [
    1, 126, 197, 199, 165, 71, 41, 150, 253, 148, 102, 102, 180, 138, 2, 230, 93, 221, 83, 111, 55, 199, 109,
    210, 248, 99, 82, 230, 74, 83, 113, 63,
];

/// Key of term verification hashes (`VERIFICATION_KEY`, §4.1).
pub const VERIFICATION_KEY: [u8; 32] = [
    127, 24, 87, 214, 206, 86, 237, 102, 18, 127, 249, 19, 231, 165, 195, 243, 164, 205, 38, 213, 181, 219,
    73, 230, 65, 36, 152, 127, 40, 251, 148, 195,
];

/// Key of the final file-hash step: 32 zero bytes (§4.5).
pub const FILE_HASH_KEY: [u8; 32] = [0; 32];

/// Merkle grouping: a node has between 3 and 9 children, cut early where a child's
/// `w3 % 4 == 0` (mean branching 4). From xet-core `aggregated_hashes.rs` (§4.3).
const MERKLE_MAX_GROUP: usize = 9;
const MERKLE_MIN_GROUP: usize = 3;
const MERKLE_CUT_MODULUS: u64 = 4;

fn keyed(key: &[u8; 32], data: &[u8]) -> MerkleHash {
    MerkleHash::from_bytes(*blake3::keyed_hash(key, data).as_bytes())
}

/// Hash of one chunk's uncompressed bytes: `BLAKE3_keyed(DATA_KEY, bytes)` (§4.2).
pub fn chunk_hash(bytes: &[u8]) -> MerkleHash {
    keyed(&DATA_KEY, bytes)
}

/// A streaming chunk hasher, for chunks that arrive in pieces.
#[derive(Clone)]
pub struct ChunkHasher(blake3::Hasher);

impl ChunkHasher {
    /// A hasher for a new chunk.
    pub fn new() -> Self {
        ChunkHasher(blake3::Hasher::new_keyed(&DATA_KEY))
    }

    /// Feeds more bytes of the chunk.
    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    /// The chunk hash of everything fed; resets the hasher for the next chunk.
    pub fn finish_reset(&mut self) -> MerkleHash {
        let h = MerkleHash::from_bytes(*self.0.finalize().as_bytes());
        self.0.reset();
        h
    }
}

impl Default for ChunkHasher {
    fn default() -> Self {
        Self::new()
    }
}

/// `BLAKE3_keyed(INTERNAL_NODE_KEY, text)`: the hash of a Merkle node's text (§4.3).
pub fn internal_node_hash(text: &[u8]) -> MerkleHash {
    keyed(&INTERNAL_NODE_KEY, text)
}

/// A Merkle leaf or node: a hash and the number of bytes under it.
pub type HashedLength = (MerkleHash, u64);

fn node_of(group: &[HashedLength], text: &mut String) -> HashedLength {
    text.clear();
    let mut total = 0u64;
    for (h, len) in group {
        // Writing to a String cannot fail.
        let _ = writeln!(text, "{h} : {len}");
        total = total.wrapping_add(*len);
    }
    (internal_node_hash(text.as_bytes()), total)
}

/// Length of the group that starts `rest` (§4.3): everything if at most two nodes
/// remain; else up to and including the first node at index 2..9 whose `w3 % 4 == 0`;
/// else 9 (or all that remain).
fn group_len(rest: &[HashedLength]) -> usize {
    if rest.len() <= 2 {
        return rest.len();
    }
    let limit = rest.len().min(MERKLE_MAX_GROUP);
    (MERKLE_MIN_GROUP - 1..limit)
        .find(|&i| rest[i].0.w3().is_multiple_of(MERKLE_CUT_MODULUS))
        .map_or(limit, |i| i + 1)
}

/// The Merkle root ("aggregated hash") over `(hash, length)` leaves (§4.3): the xorb
/// hash when the leaves are a xorb's chunks. No leaves give [`MerkleHash::ZERO`]; one
/// leaf gives that leaf's hash.
pub fn merkle_root(leaves: &[HashedLength]) -> MerkleHash {
    match leaves {
        [] => return MerkleHash::ZERO,
        [(h, _)] => return *h,
        _ => {}
    }
    let mut text = String::with_capacity(MERKLE_MAX_GROUP * 90);
    let mut level: Vec<HashedLength> = Vec::with_capacity(leaves.len() / 3 + 1);
    let mut rest = leaves;
    while !rest.is_empty() {
        let n = group_len(rest);
        level.push(node_of(&rest[..n], &mut text));
        rest = &rest[n..];
    }
    while level.len() > 1 {
        let mut next = Vec::with_capacity(level.len() / 3 + 1);
        let mut rest = &level[..];
        while !rest.is_empty() {
            let n = group_len(rest);
            next.push(node_of(&rest[..n], &mut text));
            rest = &rest[n..];
        }
        level = next;
    }
    level[0].0
}

/// The xorb hash of a xorb's chunks, in xorb order (§4.4). Same as [`merkle_root`].
pub fn xorb_hash(chunks: &[HashedLength]) -> MerkleHash {
    merkle_root(chunks)
}

/// The file hash (Xet file ID) of a file's chunks, in file order (§4.5):
/// `BLAKE3_keyed(0^32, merkle_root(chunks))`; the empty file hashes to
/// [`MerkleHash::ZERO`] without the keyed step.
pub fn file_hash(chunks: &[HashedLength]) -> MerkleHash {
    if chunks.is_empty() {
        return MerkleHash::ZERO;
    }
    file_hash_from_root(&merkle_root(chunks))
}

/// The final keyed step of [`file_hash`], for callers that already have the root.
pub fn file_hash_from_root(root: &MerkleHash) -> MerkleHash {
    keyed(&FILE_HASH_KEY, root.as_bytes())
}

/// The verification hash of a term (§4.6): `BLAKE3_keyed(VERIFICATION_KEY, raw chunk
/// hashes concatenated)`, over the term's chunks in order.
pub fn verification_hash<'a>(chunk_hashes: impl IntoIterator<Item = &'a MerkleHash>) -> MerkleHash {
    let mut h = blake3::Hasher::new_keyed(&VERIFICATION_KEY);
    for c in chunk_hashes {
        h.update(c.as_bytes());
    }
    MerkleHash::from_bytes(*h.finalize().as_bytes())
}

/// The keyed chunk hash of global-dedup shards (§4.7, the spec's "HMAC"):
/// `BLAKE3_keyed(key, raw chunk hash)`. A zero key means "not keyed": callers should
/// then compare raw hashes (see [`keyed_chunk_hash_or_raw`]).
pub fn keyed_chunk_hash(key: &[u8; 32], chunk: &MerkleHash) -> MerkleHash {
    keyed(key, chunk.as_bytes())
}

/// [`keyed_chunk_hash`], or the chunk hash itself when `key` is all zeros (the shard
/// footer's convention for "chunk hashes not keyed", §7.6).
pub fn keyed_chunk_hash_or_raw(key: &[u8; 32], chunk: &MerkleHash) -> MerkleHash {
    if key == &[0u8; 32] {
        *chunk
    } else {
        keyed_chunk_hash(key, chunk)
    }
}

/// SHA-256 of `bytes` (the conventional digest, as in Git LFS pointers).
///
/// Uses the CPU's SHA instructions when it has them (the `sha2` crate detects them
/// at run time).
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).into()
}

/// A streaming SHA-256 of file contents.
#[derive(Clone, Default)]
pub struct Sha256Hasher(sha2::Sha256);

impl Sha256Hasher {
    /// A fresh hasher.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        use sha2::Digest;
        self.0.update(bytes);
    }

    /// The digest of everything fed.
    pub fn finish(self) -> [u8; 32] {
        use sha2::Digest;
        self.0.finalize().into()
    }
}

/// Lowercase hex of bytes in order (for SHA-256 digests; **not** for Xet hashes, whose
/// string form is [`MerkleHash`]'s `Display`).
pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::gen;

    fn h(s: &str) -> MerkleHash {
        s.parse().unwrap()
    }

    #[test]
    fn generator_check_values() {
        assert_eq!(hex(&gen(16, 1)), "1ddd6c894bcee4471d6579e0a8a6cfab");
        assert_eq!(hex(&gen(16, 7)), "ae2e8d727faffbd1aea69d62776ca4ed");
    }

    #[test]
    fn section5_primitives() {
        assert_eq!(
            chunk_hash(b""),
            h("e0f2cf784e7e5f10c34f84af150e9a5ff9664216debad915364d741049870f67")
        );
        let hello = chunk_hash(b"hello world");
        assert_eq!(
            hello,
            h("4e39378b9d359f118190557a1f44130219a54e5fcfa07bd96cf50b466fe651b1")
        );
        assert_eq!(xorb_hash(&[(hello, 11)]), hello);
        assert_eq!(
            file_hash(&[(hello, 11)]),
            h("f15edd43b7e85cfd25e2758ffe13b99fdd09dfa817e8d9f6548722a7a126db7f")
        );
        assert_eq!(
            verification_hash([&hello]),
            h("22ef2fdcff5cea306e42ad7e15ed8a0c5e789e7d2ec34658c10d2758946847da")
        );
        assert_eq!(file_hash(&[]), MerkleHash::ZERO);
        let key = chunk_hash(b"key").to_bytes();
        assert_eq!(
            keyed_chunk_hash(&key, &hello),
            h("da106634c7e557cb11bddc64f6c4e70df9ce6fcdb800797368bdff254c8ee153")
        );
        assert_eq!(keyed_chunk_hash_or_raw(&[0; 32], &hello), hello);
    }

    #[test]
    fn section5_merkle_vectors() {
        let leaves: Vec<HashedLength> = (0..40)
            .map(|i| {
                let len = 1000 + 7 * i;
                (chunk_hash(&gen(len, i as u64 + 1)), len as u64)
            })
            .collect();
        assert_eq!(leaves[0].0.to_string()[..12], *"aa8147958bcb");
        let table = [
            (
                2,
                "d1f7a325c3af864d5f58550ff6d66ab16fe3940e9a16c5e72be0fb03b2393085",
                "98da19d61539e942e7ae5ed1a7a2679d069406b5a5e53634c1e5d4a9f6e2e475",
            ),
            (
                3,
                "de81c15fa27c88922177aed006174e52b304e64a6471f3ab77744122b127fe5a",
                "1565a40da4b35ae4b6cebc3e59eb28d0950a5c28332a9b2e0cab460d27561cde",
            ),
            (
                4,
                "e2f421f441669dfc9e5e294da6c0a3c897651bf23a6895b9696f1384e263929b",
                "02bcc0fd691247a938afcdf1e7e5a50ba5564dc0922d7fa02632261322421e5d",
            ),
            (
                9,
                "9118a4a84a61c1de859f1cf1e5fee1293d2fd162a2d90b248cd7060d97ee915d",
                "a058aba0d2db92f66d2e433a9f55ff6e3a43263effe32e87e80ff1ad4f5eaa4a",
            ),
            (
                10,
                "7fe5a264d1cb3970ef32b780d62c8b0c06a329f442273aaf6d080197ce745518",
                "8a5875937a10295adc3bd44c2bec1ec9657a9d1020d49d006d10973efab5365a",
            ),
            (
                40,
                "d7223ece7f749fe6d7ad8f96d869ec5cf8e72edf98b2253e3d4e85aedd304f7b",
                "8b8f32ba47107036d6643dd8e1bc4f9e871326b56a45ad28a75b617c1acd27eb",
            ),
        ];
        for (n, xorb, file) in table {
            assert_eq!(xorb_hash(&leaves[..n]), h(xorb), "xorb hash of {n} leaves");
            assert_eq!(file_hash(&leaves[..n]), h(file), "file hash of {n} leaves");
        }
        let hashes: Vec<MerkleHash> = leaves.iter().map(|l| l.0).collect();
        assert_eq!(
            verification_hash(&hashes),
            h("21f08401ecfe67c6562e527667e5e746953f52fc8649be1229df8768709a243d")
        );
        assert_eq!(
            verification_hash(&hashes[3..7]),
            h("42d8901f9085444230cec54ca421ef2b5842051a55390cb8603da5eda3f3acf6")
        );
    }

    #[test]
    fn sha256_known_answer() {
        assert_eq!(
            hex(&sha256(b"hello world")),
            "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"
        );
        let mut s = Sha256Hasher::new();
        s.update(b"hello ");
        s.update(b"world");
        assert_eq!(s.finish(), sha256(b"hello world"));
    }
}
