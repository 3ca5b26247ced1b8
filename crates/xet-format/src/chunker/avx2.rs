//! The gear scan on four lanes at once (x86-64 with AVX2, detected at run time).
//!
//! The hash at a byte depends only on the 64 bytes ending there (the state is a u64
//! shifted once per byte), so a block of `4 × STRIP` bytes can be scanned as four
//! independent strips, one per 64-bit lane: lane 0 continues the caller's state, lanes
//! 1-3 start from the hash of the 64 bytes before their strip. The lanes advance two
//! bytes per step and are tested together; a match in lane `k` only ends the search once
//! the lanes before it have finished their strips without an earlier match, so the
//! result is the first match in buffer order, exactly as the scalar scan finds it.
//! About 25% faster than the scalar scan on the machines this was measured on (the
//! bottleneck is assembling the four table entries into a vector).

use std::arch::x86_64::*;

use super::{scan_scalar, GEAR_TABLE};

/// Bytes per lane per block.
const STRIP: usize = 1024;
/// Bytes per block.
pub(super) const BLOCK: usize = 4 * STRIP;

/// The same contract as [`scan_scalar`].
///
/// # Safety
/// The CPU must support AVX2.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn scan(h: &mut u64, data: &[u8]) -> Option<usize> {
    let mut x = *h;
    let mut pos = 0;
    while data.len() - pos >= BLOCK {
        let block: &[u8; BLOCK] = data[pos..pos + BLOCK].try_into().expect("BLOCK bytes");
        match scan_block(x, block) {
            Block::Match { at, hash } => {
                *h = hash;
                return Some(pos + at);
            }
            Block::End(state) => x = state,
        }
        pos += BLOCK;
    }
    let found = scan_scalar(&mut x, &data[pos..]).map(|at| pos + at);
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

/// The four table entries for byte `i` of each strip, lane 0 lowest.
#[inline(always)]
unsafe fn entries(block: &[u8; BLOCK], i: usize) -> __m256i {
    debug_assert!(i < STRIP);
    // SAFETY: i < STRIP, so every index is below 4 × STRIP = BLOCK (the bounds checks
    // cost a fifth of the loop when left in).
    let t = |j: usize| GEAR_TABLE[*block.get_unchecked(j) as usize] as i64;
    _mm256_set_epi64x(t(3 * STRIP + i), t(2 * STRIP + i), t(STRIP + i), t(i))
}

/// Lane states at the start of the block's strips: `x` for lane 0, and the hash of the
/// 64 bytes before each other strip.
#[inline(always)]
unsafe fn start_states(x: u64, block: &[u8; BLOCK]) -> __m256i {
    let t = |j: usize| GEAR_TABLE[block[j] as usize] as i64;
    let mut hv = _mm256_setzero_si256();
    for i in STRIP - 64..STRIP {
        let tv = _mm256_set_epi64x(t(2 * STRIP + i), t(STRIP + i), t(i), 0);
        hv = _mm256_add_epi64(_mm256_slli_epi64(hv, 1), tv);
    }
    _mm256_blend_epi32::<0b0000_0011>(hv, _mm256_set1_epi64x(x as i64))
}

/// The first match in the block, or the state after it.
#[inline(always)]
unsafe fn scan_block(x: u64, block: &[u8; BLOCK]) -> Block {
    let zero = _mm256_setzero_si256();
    let mut hv = start_states(x, block);
    let mut found = None;
    // Lanes whose matches can still be the first one in buffer order.
    let mut live: i32 = 0b1111;
    let mut i = 0;
    while i < STRIP {
        let h1 = _mm256_add_epi64(_mm256_slli_epi64(hv, 1), entries(block, i));
        let h2 = _mm256_add_epi64(_mm256_slli_epi64(h1, 1), entries(block, i + 1));
        // A match: the top 16 bits are zero (MASK).
        let z1 = _mm256_cmpeq_epi64(_mm256_srli_epi64(h1, 48), zero);
        let z2 = _mm256_cmpeq_epi64(_mm256_srli_epi64(h2, 48), zero);
        let any = _mm256_movemask_pd(_mm256_castsi256_pd(_mm256_or_si256(z1, z2))) & live;
        if any != 0 {
            let m1 = _mm256_movemask_pd(_mm256_castsi256_pd(z1)) & live;
            let lane = any.trailing_zeros() as usize;
            let mut l = [0u64; 4];
            let (at, v) = if m1 & (1 << lane) != 0 {
                _mm256_storeu_si256(l.as_mut_ptr().cast(), h1);
                (lane * STRIP + i, l[lane])
            } else {
                _mm256_storeu_si256(l.as_mut_ptr().cast(), h2);
                (lane * STRIP + i + 1, l[lane])
            };
            found = Some(Block::Match { at, hash: v });
            if lane == 0 {
                break;
            }
            live = (1 << lane) - 1;
        }
        hv = h2;
        i += 2;
    }
    found.unwrap_or_else(|| Block::End(_mm256_extract_epi64::<3>(hv) as u64))
}
