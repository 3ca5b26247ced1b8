//! Helpers shared by the unit tests: data generators and the protocol vectors.

use std::path::PathBuf;

/// XET-PROTOCOL.md §5's generator: xorshift64*, 8 little-endian bytes per step.
pub(crate) fn gen(n: usize, seed: u64) -> Vec<u8> {
    let mut s = seed;
    let mut out = Vec::with_capacity(n + 8);
    while out.len() < n {
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        out.extend_from_slice(&s.wrapping_mul(0x2545F4914F6CDD1D).to_le_bytes());
    }
    out.truncate(n);
    out
}

/// The official vector set's generator (`shared/vectors/README.md`): xorshift64 from 42.
pub(crate) fn xorshift_stream(n: usize) -> Vec<u8> {
    let mut s: u64 = 42;
    let mut out = Vec::with_capacity(n + 8);
    while out.len() < n {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        out.extend_from_slice(&s.to_le_bytes());
    }
    out.truncate(n);
    out
}

/// The directory of the shared protocol vectors: `$XET_VECTORS_DIR`, else
/// `../shared/vectors` next to the repository.
pub(crate) fn vectors_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("XET_VECTORS_DIR") {
        return PathBuf::from(d);
    }
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    for up in here.ancestors() {
        let cand = up.join("shared").join("vectors");
        if cand.join("index.json").is_file() {
            return cand;
        }
    }
    panic!("protocol vectors not found: set XET_VECTORS_DIR or put shared/vectors beside the repository")
}

/// Reads a vector file.
pub(crate) fn read_vector(name: &str) -> Vec<u8> {
    let p = vectors_dir().join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("reading vector {}: {e}", p.display()))
}

/// Parses a vector JSON file.
pub(crate) fn vector_json(name: &str) -> serde_json::Value {
    serde_json::from_slice(&read_vector(name)).unwrap_or_else(|e| panic!("parsing {name}: {e}"))
}

/// Names of every vector listed in `index.json`.
pub(crate) fn vector_names() -> Vec<String> {
    vector_json("index.json")["vectors"]
        .as_array()
        .expect("index.json vectors")
        .iter()
        .map(|v| v["name"].as_str().expect("vector name").to_string())
        .collect()
}

/// Byte-wise hex decoding (vector files use it for raw bytes).
pub(crate) fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).expect("hex"))
        .collect()
}

#[test]
fn xorshift_stream_check_value() {
    assert_eq!(
        crate::hash::hex(&xorshift_stream(32)),
        "aa4a51950a000000bf0202f8fdaa0aa07a49d1d19c39138b68f5df5ffe883b28"
    );
}
