//! Test helpers for the xorb modules: the official vectors' xorbs.

use std::ops::Range;

use crate::hash::chunk_hash;
use crate::test_support::{read_vector, vector_json, vector_names};
use crate::MerkleHash;

/// One vector input and the xorb the official client forms for it alone.
pub(crate) struct VectorXorb {
    pub name: String,
    pub json: serde_json::Value,
    pub input: Vec<u8>,
    /// The xorb's chunks: the file's distinct chunks in order of first occurrence.
    pub chunks: Vec<(MerkleHash, Range<usize>)>,
}

impl VectorXorb {
    pub fn chunk_data(&self) -> impl Iterator<Item = &[u8]> {
        self.chunks.iter().map(|(_, r)| &self.input[r.clone()])
    }
}

/// Every vector that has a xorb (all but `empty`).
pub(crate) fn vector_xorbs() -> Vec<VectorXorb> {
    let mut out = Vec::new();
    for name in vector_names() {
        let json = vector_json(&format!("{name}.json"));
        if json["xorb"]["num_chunks"].as_u64().unwrap_or(0) == 0 {
            continue;
        }
        let input = read_vector(&format!("{name}.input.bin"));
        // The JSON's chunk boundaries, checked against our chunker.
        let mut file_chunks = Vec::new();
        for c in json["chunks"].as_array().unwrap() {
            let start = c["offset"].as_u64().unwrap() as usize;
            let end = start + c["length"].as_u64().unwrap() as usize;
            let hash: MerkleHash = c["hash"].as_str().unwrap().parse().unwrap();
            file_chunks.push((hash, start..end));
        }
        let ends: Vec<usize> = file_chunks.iter().map(|c| c.1.end).collect();
        assert_eq!(
            crate::chunker::chunk_boundaries(&input),
            ends,
            "{name} chunk boundaries"
        );
        let mut seen = std::collections::HashSet::new();
        let chunks: Vec<_> = file_chunks.into_iter().filter(|(h, _)| seen.insert(*h)).collect();
        let want: Vec<MerkleHash> = json["xorb"]["chunk_hashes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h.as_str().unwrap().parse().unwrap())
            .collect();
        assert_eq!(
            chunks.iter().map(|c| c.0).collect::<Vec<_>>(),
            want,
            "{name} distinct chunks"
        );
        for (h, r) in &chunks {
            assert_eq!(chunk_hash(&input[r.clone()]), *h);
        }
        out.push(VectorXorb {
            name,
            json,
            input,
            chunks,
        });
    }
    out
}
