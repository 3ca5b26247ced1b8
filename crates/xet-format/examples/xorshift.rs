//! Writes the official vector set's pseudo-random stream (xorshift64 from seed 42,
//! see shared/vectors/README.md) to stdout: `cargo run --release --example xorshift -- BYTES`.
//! The benchmark file of BENCHMARKS.md is its first 2^30 bytes.

use std::io::Write;

fn main() -> std::io::Result<()> {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| {
            eprintln!("usage: xorshift BYTES");
            std::process::exit(2)
        });
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
    let mut s: u64 = 42;
    let mut left = n;
    let mut buf = Vec::with_capacity(1 << 16);
    while left > 0 {
        buf.clear();
        while buf.len() < (1 << 16) {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            buf.extend_from_slice(&s.to_le_bytes());
        }
        let take = left.min(buf.len() as u64) as usize;
        out.write_all(&buf[..take])?;
        left -= take as u64;
    }
    out.flush()
}
