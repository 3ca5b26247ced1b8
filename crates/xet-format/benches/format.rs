//! Micro-benchmarks of the format primitives: chunker, hashes, whole-file digest, xorb
//! encode/decode.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

fn data(n: usize) -> Vec<u8> {
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

fn chunker(c: &mut Criterion) {
    let d = data(64 << 20);
    let mut g = c.benchmark_group("chunker");
    g.throughput(Throughput::Bytes(d.len() as u64));
    g.sample_size(10);
    g.bench_function("boundaries/1-thread", |b| {
        b.iter(|| xet_format::chunker::chunk_boundaries(&d))
    });
    g.bench_function("boundaries/2-threads", |b| {
        b.iter(|| xet_format::chunker::chunk_boundaries_parallel(&d, 2))
    });
    g.finish();
}

fn hashes(c: &mut Criterion) {
    let d = data(64 << 20);
    let mut g = c.benchmark_group("hash");
    g.throughput(Throughput::Bytes(d.len() as u64));
    g.sample_size(10);
    g.bench_function("chunk_hash/64KiB-pieces", |b| {
        b.iter(|| d.chunks(65536).map(xet_format::hash::chunk_hash).count())
    });
    g.bench_function("sha256", |b| b.iter(|| xet_format::hash::sha256(&d)));
    g.finish();
}

fn digest(c: &mut Criterion) {
    let d = data(64 << 20);
    let mut g = c.benchmark_group("digest");
    g.throughput(Throughput::Bytes(d.len() as u64));
    g.sample_size(10);
    for threads in [1, 2] {
        g.bench_with_input(BenchmarkId::new("slice+sha256", threads), &threads, |b, &t| {
            b.iter(|| xet_format::digest_slice(&d, true, t))
        });
    }
    g.bench_function("reader+sha256", |b| {
        b.iter(|| xet_format::digest_reader(&d[..], true).unwrap())
    });
    g.bench_function("reader", |b| {
        b.iter(|| xet_format::digest_reader(&d[..], false).unwrap())
    });
    g.finish();
}

/// 64 MiB of mixed content, in quarters: pseudo-random bytes (incompressible), text,
/// bf16-like numbers (one random byte, one from a few exponents: BG4's case), and a
/// sparse file (mostly zeros).
fn mixed(n: usize) -> Vec<u8> {
    let q = n / 4;
    let mut d = data(q);
    d.extend(
        b"The quick brown fox jumps over the lazy dog.\n"
            .iter()
            .cycle()
            .take(q),
    );
    d.extend(data(q).chunks(2).flat_map(|p| [p[0], 0x3c + (p[1] & 3)]));
    d.extend((0..n - 3 * q).map(|i| if i % 4096 < 64 { i as u8 } else { 0 }));
    d
}

fn xorbs(c: &mut Criterion) {
    use xet_format::xorb::{decode_chunk_run, validate_xorb, CompressionPolicy, XorbBuilder};
    let d = mixed(64 << 20);
    let ends = xet_format::chunker::chunk_boundaries(&d);
    let chunks: Vec<(xet_format::MerkleHash, &[u8])> = std::iter::once(0)
        .chain(ends.iter().copied())
        .zip(ends.iter().copied())
        .map(|(s, e)| (xet_format::hash::chunk_hash(&d[s..e]), &d[s..e]))
        .collect();
    let build = |policy| {
        let mut out = Vec::new();
        let mut b = XorbBuilder::new(policy);
        for &(h, c) in &chunks {
            if !b.add_chunk(h, c).unwrap() {
                out.push(std::mem::replace(&mut b, XorbBuilder::new(policy)).finish());
                assert!(b.add_chunk(h, c).unwrap());
            }
        }
        out.push(b.finish());
        out
    };
    let mut g = c.benchmark_group("xorb");
    g.throughput(Throughput::Bytes(d.len() as u64));
    g.sample_size(10);
    for policy in [
        CompressionPolicy::Lz4,
        CompressionPolicy::Bg4Lz4,
        CompressionPolicy::Auto,
    ] {
        g.bench_with_input(BenchmarkId::new("encode", policy), &policy, |b, &p| {
            b.iter(|| build(p))
        });
        let built = build(policy);
        g.bench_with_input(BenchmarkId::new("decode_chunk_run", policy), &built, |b, xs| {
            let mut out = Vec::with_capacity(d.len());
            b.iter(|| {
                out.clear();
                for x in xs {
                    decode_chunk_run(&x.body, &mut out).unwrap();
                }
            })
        });
        g.bench_with_input(BenchmarkId::new("validate", policy), &built, |b, xs| {
            b.iter(|| {
                xs.iter()
                    .map(|x| validate_xorb(&x.body, &x.hash).unwrap().raw_len)
                    .sum::<u64>()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, chunker, hashes, digest, xorbs);
criterion_main!(benches);
