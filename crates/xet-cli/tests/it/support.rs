//! Helpers shared by the integration tests.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Path of the `xet` binary under test.
pub fn xet_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_xet"))
}

/// Runs `xet` with `args`; panics with its stderr if it fails.
pub fn xet_ok(args: &[&str]) -> String {
    let out = xet(args);
    assert!(
        out.status.success(),
        "xet {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// Runs `xet` with `args`.
pub fn xet(args: &[&str]) -> Output {
    Command::new(xet_bin()).args(args).output().expect("running xet")
}

/// The shared protocol vectors: `$XET_VECTORS_DIR`, else `shared/vectors` in an
/// ancestor of this crate.
pub fn vectors_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("XET_VECTORS_DIR") {
        return PathBuf::from(d);
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .map(|a| a.join("shared").join("vectors"))
        .find(|c| c.join("index.json").is_file())
        .expect("protocol vectors not found: set XET_VECTORS_DIR")
}

/// A fresh temporary directory, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    /// Creates it under the system temp dir.
    pub fn new(tag: &str) -> Self {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let p = std::env::temp_dir().join(format!("xet-it-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("temp dir");
        TempDir(p)
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Deterministic pseudo-random bytes (xorshift64), for generated inputs.
pub struct Rng(u64);

impl Rng {
    /// Seeded generator (seed 0 is remapped).
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E3779B97F4A7C15) | 1)
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// `n` random bytes.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(n + 8);
        while v.len() < n {
            v.extend_from_slice(&self.next_u64().to_le_bytes());
        }
        v.truncate(n);
        v
    }
}

/// The Python interpreter that has the official client (`$XET_PYTHON`, else `python3`).
pub fn python() -> String {
    std::env::var("XET_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// Fails loudly (never skips) when the official client is missing.
pub fn require_official_client() {
    let out = Command::new(python())
        .args([
            "-c",
            "import hf_xet, importlib.metadata as m; print(m.version('hf-xet'))",
        ])
        .output()
        .expect("running python3");
    assert!(
        out.status.success(),
        "the official client is required for this test: pip install hf-xet==1.8.0 ({})",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = String::from_utf8_lossy(&out.stdout);
    assert_eq!(v.trim(), "1.8.0", "tests pin hf-xet 1.8.0");
}
