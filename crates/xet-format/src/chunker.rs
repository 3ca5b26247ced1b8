//! Content-defined chunking with the gear rolling hash (XET-PROTOCOL.md §3).
//!
//! Boundaries depend only on the bytes, never on how they were split into buffers:
//! [`Chunker`] is the streaming form, [`chunk_boundaries`] the one-shot form over a
//! slice, and [`chunk_boundaries_parallel`] finds the same boundaries with several
//! threads.

#[cfg(target_arch = "x86_64")]
mod avx2;
mod gear_table;

use gear_table::GEAR_TABLE;

/// Target (mean) chunk size: 64 KiB (§1).
pub const TARGET_CHUNK_SIZE: usize = 64 * 1024;
/// Smallest chunk except the last of a file: target / 8 = 8 KiB (§1).
pub const MIN_CHUNK_SIZE: usize = TARGET_CHUNK_SIZE / 8;
/// Largest chunk: target × 2 = 128 KiB; a chunk is cut here if no boundary came (§1).
pub const MAX_CHUNK_SIZE: usize = TARGET_CHUNK_SIZE * 2;
/// A boundary follows a byte after which the top 16 bits of the hash are zero (§3.2):
/// `(target - 1) << leading_zeros(target - 1)` in xet-core.
const MASK: u64 = 0xFFFF_0000_0000_0000;
/// The hash at a byte depends only on the last 64 bytes (u64 state shifted once per
/// byte), so the first `MIN - 64 - 1` bytes of a chunk need not be hashed (§3.3).
const SKIP: usize = MIN_CHUNK_SIZE - 64 - 1;

/// Streaming gear-hash chunker.
///
/// Feed the stream in any pieces with [`next_boundary`](Self::next_boundary); call
/// [`finish`](Self::finish) at its end.
///
/// ```
/// use xet_format::chunker::{chunk_boundaries, Chunker};
/// let data: Vec<u8> = (0..300_000u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
/// let mut ends = Vec::new();
/// let (mut chunker, mut pos) = (Chunker::new(), 0);
/// for piece in data.chunks(10_000) {
///     let mut rest = piece;
///     while let Some(n) = chunker.next_boundary(rest) {
///         pos += n;
///         ends.push(pos);
///         rest = &rest[n..];
///     }
///     pos += rest.len();
/// }
/// if chunker.finish().is_some() {
///     ends.push(pos);
/// }
/// assert_eq!(ends, chunk_boundaries(&data));
/// ```
#[derive(Debug, Clone, Default)]
pub struct Chunker {
    /// Rolling hash; only meaningful once `len > SKIP`.
    h: u64,
    /// Bytes of the current, unfinished chunk seen so far.
    len: usize,
}

impl Chunker {
    /// A chunker at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes of the current chunk seen so far (not yet ended by a boundary).
    pub fn pending(&self) -> usize {
        self.len
    }

    /// Scans `data`, the next bytes of the stream. Returns `Some(n)` if the current
    /// chunk ends after `data[n - 1]` (the chunker then starts a new chunk; scan
    /// `data[n..]` next), or `None` if all of `data` belongs to the current chunk.
    #[inline]
    pub fn next_boundary(&mut self, data: &[u8]) -> Option<usize> {
        let mut i = 0;
        if self.len < SKIP {
            let n = (SKIP - self.len).min(data.len());
            self.len += n;
            i = n;
            if i == data.len() {
                return None;
            }
        }
        let mut h = self.h;
        // Hash without testing until the chunk would reach MIN_CHUNK_SIZE: a match
        // before that is ignored, and the hash is not reset (§3.2).
        if self.len < MIN_CHUNK_SIZE - 1 {
            let n = (MIN_CHUNK_SIZE - 1 - self.len).min(data.len() - i);
            for &b in &data[i..i + n] {
                h = (h << 1).wrapping_add(GEAR_TABLE[b as usize]);
            }
            self.len += n;
            i += n;
            if i == data.len() {
                self.h = h;
                return None;
            }
        }
        // Test every byte until the chunk reaches MAX_CHUNK_SIZE.
        let n = (MAX_CHUNK_SIZE - self.len).min(data.len() - i);
        if let Some(k) = scan(&mut h, &data[i..i + n]) {
            *self = Self::default();
            return Some(i + k + 1);
        }
        self.len += n;
        if self.len >= MAX_CHUNK_SIZE {
            *self = Self::default();
            return Some(i + n);
        }
        self.h = h;
        None
    }

    /// Ends the stream: returns the length of the final chunk if bytes are pending
    /// (the last chunk may be shorter than the minimum), and resets the chunker.
    pub fn finish(&mut self) -> Option<usize> {
        let len = std::mem::take(self).len;
        (len > 0).then_some(len)
    }
}

/// Index of the first byte of `data` after which the hash matches the mask; `h` is
/// the hash before `data[0]` on entry, and after the returned byte (or the last one).
#[inline(always)]
fn scan(h: &mut u64, data: &[u8]) -> Option<usize> {
    #[cfg(target_arch = "x86_64")]
    if data.len() >= avx2::BLOCK && std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: AVX2 is available (checked just above). The one `unsafe` outside
        // xet-ffi: the SIMD scan takes a fifth off the CPU time of hashing (measured,
        // BENCHMARKS.md), and the check makes the call sound.
        return unsafe { avx2::scan(h, data) };
    }
    scan_scalar(h, data)
}

/// [`scan`] without SIMD.
///
/// The rolling hash is a serial dependency (`h = 2h + T[b]`), so a byte-at-a-time loop
/// runs at the latency of that chain. Four bytes per step instead: with
/// `s_k = Σ_{j<k} T[b_j] << (k-1-j)`, computed off the chain, `h` after `k` bytes is
/// `(h << k) + s_k`, so the chain advances by one shift and one add per four bytes and
/// the four intermediate hashes are tested together (~30% faster, measured).
#[inline(always)]
fn scan_scalar(h: &mut u64, data: &[u8]) -> Option<usize> {
    let mut x = *h;
    let mut blocks = data.chunks_exact(4);
    let mut base = 0;
    for block in &mut blocks {
        let t0 = GEAR_TABLE[block[0] as usize];
        let t1 = GEAR_TABLE[block[1] as usize];
        let t2 = GEAR_TABLE[block[2] as usize];
        let t3 = GEAR_TABLE[block[3] as usize];
        let s2 = (t0 << 1).wrapping_add(t1);
        let s3 = (s2 << 1).wrapping_add(t2);
        let s4 = (s3 << 1).wrapping_add(t3);
        let hs = [
            (x << 1).wrapping_add(t0),
            (x << 2).wrapping_add(s2),
            (x << 3).wrapping_add(s3),
            (x << 4).wrapping_add(s4),
        ];
        // The top 16 bits of the smallest are zero iff some hash matches.
        if hs[0].min(hs[1]).min(hs[2].min(hs[3])) & MASK == 0 {
            let j = hs.iter().position(|v| v & MASK == 0).unwrap_or(3);
            *h = hs[j];
            return Some(base + j);
        }
        x = hs[3];
        base += 4;
    }
    for (j, &b) in blocks.remainder().iter().enumerate() {
        x = (x << 1).wrapping_add(GEAR_TABLE[b as usize]);
        if x & MASK == 0 {
            *h = x;
            return Some(base + j);
        }
    }
    *h = x;
    None
}

/// The end offsets (exclusive) of every chunk of `data`, in order; the last equals
/// `data.len()`. Empty input has no chunks.
pub fn chunk_boundaries(data: &[u8]) -> Vec<usize> {
    let mut ends = Vec::with_capacity(data.len() / TARGET_CHUNK_SIZE + 2);
    boundaries_from(data, 0, data.len(), &mut ends);
    ends
}

/// Pushes the boundaries of the chunks that start at `start` (a chunk start) until
/// one ends at or after `stop`; the input's end counts as a boundary.
fn boundaries_from(data: &[u8], start: usize, stop: usize, ends: &mut Vec<usize>) {
    let mut pos = start;
    let mut chunker = Chunker::new();
    while pos < stop {
        match chunker.next_boundary(&data[pos..]) {
            Some(n) => pos += n,
            None => pos = data.len(),
        }
        ends.push(pos);
    }
}

/// The next boundary after the chunk start `pos` (`pos < data.len()`).
fn next_end(data: &[u8], pos: usize) -> usize {
    match Chunker::new().next_boundary(&data[pos..]) {
        Some(n) => pos + n,
        None => data.len(),
    }
}

/// Same result as [`chunk_boundaries`], computed with up to `threads` threads.
///
/// The input is cut into segments; each thread chunks its segment as if a chunk
/// started there. Those guesses become right from the first boundary the true chunk
/// sequence shares with them (after that the sequences agree, since boundaries depend
/// only on the previous boundary and the bytes), which the merge finds by walking the
/// true sequence forward, usually within a chunk or two.
pub fn chunk_boundaries_parallel(data: &[u8], threads: usize) -> Vec<usize> {
    // Below a few chunks per thread the resynchronisation cost is not worth it.
    let threads = threads.clamp(1, (data.len() / (4 * MAX_CHUNK_SIZE)).max(1));
    if threads == 1 {
        return chunk_boundaries(data);
    }
    let seg = data.len().div_ceil(threads);
    let starts: Vec<usize> = (0..threads).map(|t| t * seg).collect();
    let guesses: Vec<Vec<usize>> = std::thread::scope(|s| {
        let handles: Vec<_> = starts
            .iter()
            .map(|&start| {
                let stop = (start + seg).min(data.len());
                s.spawn(move || {
                    let mut v = Vec::with_capacity(seg / TARGET_CHUNK_SIZE + 2);
                    boundaries_from(data, start, stop, &mut v);
                    v
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    let mut ends = Vec::with_capacity(data.len() / TARGET_CHUNK_SIZE + 2);
    let mut pos = 0;
    for (t, guess) in guesses.iter().enumerate() {
        if t == 0 {
            ends.extend_from_slice(guess);
            pos = *guess.last().unwrap_or(&0);
            continue;
        }
        let last = match guess.last() {
            Some(&l) => l,
            None => continue,
        };
        // Walk the true sequence until it lands on a guessed boundary or passes them.
        // A guess's chunk starts at `starts[t]`, which is where it begins too.
        while pos < last {
            if pos == starts[t] || guess.binary_search(&pos).is_ok() {
                let from = guess.partition_point(|&b| b <= pos);
                ends.extend_from_slice(&guess[from..]);
                pos = last;
                break;
            }
            pos = next_end(data, pos);
            ends.push(pos);
        }
    }
    while pos < data.len() {
        pos = next_end(data, pos);
        ends.push(pos);
    }
    ends
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The byte-by-byte rule of §3.2, without skip-ahead: the reference.
    fn naive(data: &[u8]) -> Vec<usize> {
        let (mut ends, mut start, mut h) = (Vec::new(), 0usize, 0u64);
        for (i, &b) in data.iter().enumerate() {
            h = (h << 1).wrapping_add(GEAR_TABLE[b as usize]);
            let size = i + 1 - start;
            if size < MIN_CHUNK_SIZE {
                continue;
            }
            if size >= MAX_CHUNK_SIZE || h & MASK == 0 {
                ends.push(i + 1);
                start = i + 1;
                h = 0;
            }
        }
        if start < data.len() {
            ends.push(data.len());
        }
        ends
    }

    fn streamed(data: &[u8], piece: usize) -> Vec<usize> {
        let (mut ends, mut pos, mut c) = (Vec::new(), 0, Chunker::new());
        for p in data.chunks(piece.max(1)) {
            let mut rest = p;
            while let Some(n) = c.next_boundary(rest) {
                pos += n;
                ends.push(pos);
                rest = &rest[n..];
            }
            pos += rest.len();
        }
        if c.finish().is_some() {
            ends.push(pos);
        }
        ends
    }

    pub(crate) fn pseudo(n: usize, seed: u64) -> Vec<u8> {
        let mut s = seed | 1;
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s >> 24) as u8
            })
            .collect()
    }

    #[test]
    fn edge_sizes() {
        assert!(chunk_boundaries(&[]).is_empty());
        assert_eq!(chunk_boundaries(&[0; 8191]), vec![8191]);
        assert_eq!(chunk_boundaries(&[0; 8192]), vec![8192]);
        assert_eq!(chunk_boundaries(&vec![0; 131072]), vec![131072]);
        assert_eq!(chunk_boundaries(&vec![0; 131073]), vec![131072, 131073]);
        assert_eq!(chunk_boundaries(&vec![0; 300_000]), vec![131072, 262144, 300_000]);
    }

    #[test]
    fn section5_gen_chunk_lengths() {
        let data = crate::test_support::gen(1_000_000, 1);
        let ends = chunk_boundaries(&data);
        let lens: Vec<usize> = std::iter::once(ends[0])
            .chain(ends.windows(2).map(|w| w[1] - w[0]))
            .collect();
        assert_eq!(
            lens,
            [
                40949, 20440, 131072, 15663, 34537, 101111, 70172, 74859, 89931, 36147, 16221, 11517, 62409,
                16600, 74206, 47280, 72016, 84870
            ]
        );
    }

    #[test]
    fn matches_naive_and_parallel_on_mixed_data() {
        let mut data = pseudo(3_000_000, 9);
        data.extend(std::iter::repeat_n(0u8, 700_000));
        data.extend(pseudo(1_500_000, 3));
        let reference = naive(&data);
        assert_eq!(chunk_boundaries(&data), reference);
        for t in [2, 3, 7, 16] {
            assert_eq!(chunk_boundaries_parallel(&data, t), reference, "{t} threads");
        }
        for piece in [1, 63, 4096, 77_777, 1 << 20] {
            assert_eq!(
                streamed(&data[..600_000], piece),
                naive(&data[..600_000]),
                "piece {piece}"
            );
        }
    }

    /// Gear hash of a window of 64 bytes or more: the state at its last byte whatever
    /// came before.
    fn window_hash(w: &[u8]) -> u64 {
        w.iter()
            .fold(0u64, |h, &b| (h << 1).wrapping_add(GEAR_TABLE[b as usize]))
    }

    /// `n` 64-byte windows whose hash matches the mask: planted in any data, each makes
    /// a match end at its last byte.
    fn matching_windows(n: usize, seed: u64) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut s = seed;
        while out.len() < n {
            s += 1;
            let mut w = pseudo(64, s);
            let prefix = window_hash(&w[..63]);
            if let Some(b) =
                (0..=255u8).find(|&b| ((prefix << 1).wrapping_add(GEAR_TABLE[b as usize])) & MASK == 0)
            {
                w[63] = b;
                assert_eq!(window_hash(&w) & MASK, 0);
                out.push(w);
            }
        }
        out
    }

    /// The SIMD scan (where the CPU has it) finds the same first match and leaves the same
    /// state as the scalar scan: matches planted in every lane, several per block in
    /// every order, at strip and block edges, and random ones.
    #[test]
    fn simd_scan_matches_scalar_scan() {
        #[cfg(target_arch = "x86_64")]
        {
            if !std::arch::is_x86_feature_detected!("avx2") {
                eprintln!("NOTICE: no AVX2 on this CPU; the scalar scan is the only one in use");
                return;
            }
            let windows = matching_windows(6, 77);
            let strip = avx2::BLOCK / 4;
            let block = avx2::BLOCK;
            let mut cases: Vec<Vec<usize>> = vec![
                vec![],
                vec![63],
                vec![100],
                vec![strip - 1],
                vec![strip],
                vec![strip + 100],
                vec![2 * strip + 5, strip + 900],
                vec![3 * strip + 7, 2 * strip + 8, strip + 9],
                vec![3 * strip + 1, 100],
                vec![strip + 1, strip + 2],
                vec![block - 1],
                vec![block - 2, block - 1],
                vec![block],
                vec![block + 3 * strip + 1000],
                vec![2 * block + 2 * strip + 10, 2 * block + strip + 1000],
            ];
            let mut s = 1u64;
            for _ in 0..300 {
                let k = (s % 4) as usize;
                let plants = (0..k)
                    .map(|_| {
                        s ^= s << 13;
                        s ^= s >> 7;
                        s ^= s << 17;
                        63 + (s as usize) % (3 * block)
                    })
                    .collect();
                cases.push(plants);
                s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
            }
            for (n, plants) in cases.iter().enumerate() {
                for len in [block, block + 1, 2 * block + 77, 3 * block + 1500] {
                    let mut data = pseudo(len, n as u64 + 1);
                    for (j, &end) in plants.iter().enumerate() {
                        if end < len {
                            let w = &windows[j % windows.len()];
                            data[end - 63..=end].copy_from_slice(w);
                        }
                    }
                    for start_state in [0u64, 0xFFFF_FFFF_FFFF_FFFF, 0x1234_5678_9ABC_DEF0] {
                        let (mut a, mut b) = (start_state, start_state);
                        let fast = unsafe { avx2::scan(&mut a, &data) };
                        let slow = scan_scalar(&mut b, &data);
                        assert_eq!(fast, slow, "case {n} {plants:?} len {len}");
                        assert_eq!(a, b, "state, case {n} {plants:?} len {len}");
                        // A plant stays whole unless a later one overlaps it.
                        let intact = plants.iter().enumerate().filter(|&(j, &e)| {
                            e < len
                                && plants[j + 1..]
                                    .iter()
                                    .all(|&f| f >= len || f + 64 <= e || e + 64 <= f)
                        });
                        if let Some(end) = intact.map(|(_, &e)| e).min() {
                            assert!(slow.is_some_and(|f| f <= end), "planted match at {end} missed");
                        }
                    }
                }
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn split_anywhere_same_chunks(
            len in 0usize..700_000,
            seed in any::<u64>(),
            zeros in 0usize..200_000,
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..12),
        ) {
            let mut data = pseudo(len, seed);
            let at = (seed as usize) % (data.len() + 1);
            data.splice(at..at, std::iter::repeat_n(0u8, zeros));
            let reference = naive(&data);
            prop_assert_eq!(&chunk_boundaries(&data), &reference);
            prop_assert_eq!(&chunk_boundaries_parallel(&data, 1 + (seed % 5) as usize), &reference);
            let mut cut_points: Vec<usize> = cuts.iter().map(|c| c.index(data.len() + 1)).collect();
            cut_points.sort_unstable();
            let (mut ends, mut pos, mut c, mut prev) = (Vec::new(), 0, Chunker::new(), 0);
            for cut in cut_points.into_iter().chain([data.len()]) {
                let mut rest = &data[prev..cut];
                prev = cut;
                while let Some(n) = c.next_boundary(rest) {
                    pos += n;
                    ends.push(pos);
                    rest = &rest[n..];
                }
                pos += rest.len();
            }
            if c.finish().is_some() { ends.push(pos); }
            prop_assert_eq!(ends, reference);
        }
    }
}
