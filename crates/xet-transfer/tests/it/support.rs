//! Shared helpers: the protocol vectors and data generators.

use std::path::PathBuf;

/// `$XET_VECTORS_DIR`, else `shared/vectors` beside the repository (or above it).
pub fn vectors_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("XET_VECTORS_DIR") {
        return PathBuf::from(d);
    }
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    for up in here.ancestors() {
        let cand = up.join("shared").join("vectors");
        if cand.is_dir() {
            return cand;
        }
    }
    panic!("protocol vectors not found: set XET_VECTORS_DIR or put shared/vectors beside the repository")
}

pub fn vector(name: &str) -> Vec<u8> {
    let p = vectors_dir().join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

pub fn vector_json(name: &str) -> serde_json::Value {
    serde_json::from_slice(&vector(name)).unwrap()
}

/// Deterministic pseudo-random bytes (xorshift64).
pub fn data(n: usize, seed: u64) -> Vec<u8> {
    let mut s = seed | 1;
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
