//! The gear scan on four lanes at once (x86-64 with AVX2, detected at run time).
//!
//! The hash at a byte depends only on the 64 bytes ending there (the state is a u64
//! shifted once per byte), so a block of `4 × STRIP` bytes can be scanned as four
//! independent strips, one per 64-bit lane: lane 0 continues the caller's state, lanes
//! 1-3 start from the hash of the 64 bytes before their strip. The lanes advance two
//! bytes per step and are tested together; a match in lane `k` only ends the search once
//! the lanes before it have finished their strips without an earlier match, so the
//! result is the first match in buffer order, exactly as the scalar scan finds it.
//! About 20-25% less CPU than the scalar scan for the whole `xet hash` run, measured
//! (the bottleneck is assembling the four table entries into a vector).
//!
//! Safe code: the intrinsics are safe inside these `#[target_feature]` functions; only
//! the caller's check-then-call of [`scan`] needs `unsafe`.

use std::arch::x86_64::*;

use super::{scan_scalar, GEAR_TABLE};

/// Bytes per lane per block.
const STRIP: usize = 1024;
/// Bytes per block.
pub(super) const BLOCK: usize = 4 * STRIP;

/// The same contract as [`scan_scalar`]; for CPUs with AVX2.
#[target_feature(enable = "avx2")]
pub(super) fn scan(h: &mut u64, data: &[u8]) -> Option<usize> {
    let mut x = *h;
    let (blocks, tail) = data.as_chunks::<BLOCK>();
    for (n, block) in blocks.iter().enumerate() {
        match scan_block(x, block) {
            Block::Match { at, hash } => {
                *h = hash;
                return Some(n * BLOCK + at);
            }
            Block::End(state) => x = state,
        }
    }
    let base = blocks.len() * BLOCK;
    let found = scan_scalar(&mut x, tail).map(|at| base + at);
    *h = x;
    found
}

/// How a block's scan ended.
enum Block {
    /// The first match: index of the byte in the block, hash after it.
    Match { at: usize, hash: u64 },
    /// No match; the state after the block's last byte.
    End(u64),
}

/// The table entries of four bytes, lane 0 lowest.
#[target_feature(enable = "avx2")]
fn entries(b0: u8, b1: u8, b2: u8, b3: u8) -> __m256i {
    let t = |b: u8| GEAR_TABLE[b as usize] as i64;
    _mm256_set_epi64x(t(b3), t(b2), t(b1), t(b0))
}

/// Lane states at the start of the block's strips: `x` for lane 0, and the hash of the
/// 64 bytes before each other strip.
#[target_feature(enable = "avx2")]
fn start_states(x: u64, s0: &[u8; STRIP], s1: &[u8; STRIP], s2: &[u8; STRIP]) -> __m256i {
    let mut hv = _mm256_setzero_si256();
    let tails = s0[STRIP - 64..]
        .iter()
        .zip(&s1[STRIP - 64..])
        .zip(&s2[STRIP - 64..]);
    for ((&a, &b), &c) in tails {
        hv = _mm256_add_epi64(_mm256_slli_epi64::<1>(hv), entries(0, a, b, c));
    }
    // Lane 0 (the low two 32-bit elements) continues the caller's state.
    _mm256_blend_epi32::<0b0000_0011>(hv, _mm256_set1_epi64x(x as i64))
}

/// The first match in the block, or the state after it.
#[target_feature(enable = "avx2")]
fn scan_block(x: u64, block: &[u8; BLOCK]) -> Block {
    let (strips, _) = block.as_chunks::<STRIP>();
    let [s0, s1, s2, s3] = strips else {
        unreachable!("a block is four strips")
    };
    let zero = _mm256_setzero_si256();
    let mut hv = start_states(x, s0, s1, s2);
    let mut found = None;
    // Lanes whose matches can still be the first one in buffer order.
    let mut live: i32 = 0b1111;
    let pairs = s0
        .as_chunks::<2>()
        .0
        .iter()
        .zip(s1.as_chunks::<2>().0)
        .zip(s2.as_chunks::<2>().0)
        .zip(s3.as_chunks::<2>().0);
    for (step, (((a, b), c), d)) in pairs.enumerate() {
        let i = 2 * step;
        let h1 = _mm256_add_epi64(_mm256_slli_epi64::<1>(hv), entries(a[0], b[0], c[0], d[0]));
        let h2 = _mm256_add_epi64(_mm256_slli_epi64::<1>(h1), entries(a[1], b[1], c[1], d[1]));
        // A match: the top 16 bits are zero (MASK).
        let z1 = _mm256_cmpeq_epi64(_mm256_srli_epi64::<48>(h1), zero);
        let z2 = _mm256_cmpeq_epi64(_mm256_srli_epi64::<48>(h2), zero);
        let any = _mm256_movemask_pd(_mm256_castsi256_pd(_mm256_or_si256(z1, z2))) & live;
        if any != 0 {
            let lane = any.trailing_zeros() as usize;
            let first = _mm256_movemask_pd(_mm256_castsi256_pd(z1)) & (1 << lane) != 0;
            let v = if first { h1 } else { h2 };
            let hash = match lane {
                0 => _mm256_extract_epi64::<0>(v),
                1 => _mm256_extract_epi64::<1>(v),
                2 => _mm256_extract_epi64::<2>(v),
                _ => _mm256_extract_epi64::<3>(v),
            } as u64;
            let at = lane * STRIP + i + usize::from(!first);
            found = Some(Block::Match { at, hash });
            if lane == 0 {
                break;
            }
            live = (1 << lane) - 1;
        }
        hv = h2;
    }
    found.unwrap_or_else(|| Block::End(_mm256_extract_epi64::<3>(hv) as u64))
}
