//! Micro-benchmarks of the format primitives: chunker, hashes, whole-file digest.

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

criterion_group!(benches, chunker, hashes, digest);
criterion_main!(benches);
