//! BG4 byte grouping (XET-PROTOCOL.md §6.4) and the official client's predictor of
//! when it pays off (§6.3).
//!
//! Grouping puts byte `i` of a chunk into group `i % 4` and concatenates the four
//! groups. Numeric arrays (model weights) then compress better, because the bytes
//! that hold exponents or high-order bits sit together.

/// Length of group `k` (0..4) of an `n`-byte chunk: `⌊n/4⌋`, plus one for the first
/// `n % 4` groups, which take the leftover bytes (§6.4).
fn group_len(n: usize, k: usize) -> usize {
    n / 4 + usize::from(k < n % 4)
}

/// Appends the byte-grouped form of `data` to `out`: bytes `0, 4, 8, …`, then
/// `1, 5, 9, …`, then `2, …`, then `3, …` (§6.4). Its length is `data.len()`.
///
/// ```
/// let mut out = Vec::new();
/// xet_format::xorb::bg4_split(b"ABCDabcd1", &mut out);
/// assert_eq!(out, b"Aa1BbCcDd");
/// ```
pub fn bg4_split(data: &[u8], out: &mut Vec<u8>) {
    let n = data.len();
    let start = out.len();
    out.resize(start + n, 0);
    let (g0, rest) = out[start..].split_at_mut(group_len(n, 0));
    let (g1, rest) = rest.split_at_mut(group_len(n, 1));
    let (g2, g3) = rest.split_at_mut(group_len(n, 2));
    // Same shape as in `bg4_regroup_into`: equal-length sequences, iterated by value.
    let last = n / 4;
    let (body, tail) = data.split_at(4 * last);
    for ((((q, a), b), c), d) in body
        .chunks_exact(4)
        .zip(&mut g0[..last])
        .zip(&mut g1[..last])
        .zip(&mut g2[..last])
        .zip(&mut g3[..last])
    {
        let w = u32::from_le_bytes([q[0], q[1], q[2], q[3]]);
        *a = w as u8;
        *b = (w >> 8) as u8;
        *c = (w >> 16) as u8;
        *d = (w >> 24) as u8;
    }
    for (g, &byte) in [g0, g1, g2].into_iter().zip(tail) {
        g[last] = byte;
    }
}

/// Appends the inverse of [`bg4_split`] of `grouped` to `out`: the original chunk
/// bytes, `grouped.len()` of them.
///
/// ```
/// let mut out = Vec::new();
/// xet_format::xorb::bg4_regroup(b"Aa1BbCcDd", &mut out);
/// assert_eq!(out, b"ABCDabcd1");
/// ```
pub fn bg4_regroup(grouped: &[u8], out: &mut Vec<u8>) {
    let start = out.len();
    out.resize(start + grouped.len(), 0);
    bg4_regroup_into(grouped, &mut out[start..]);
}

/// [`bg4_regroup`] into a slice of exactly `grouped.len()` bytes.
pub(crate) fn bg4_regroup_into(grouped: &[u8], out: &mut [u8]) {
    let n = grouped.len();
    debug_assert_eq!(out.len(), n);
    let (g0, rest) = grouped.split_at(group_len(n, 0));
    let (g1, rest) = rest.split_at(group_len(n, 1));
    let (g2, g3) = rest.split_at(group_len(n, 2));
    // Cut every group to the full quads so that all five sequences visibly have the
    // same length, and iterate the quads by value: both let the compiler vectorise
    // the loop (about 3x faster than with a borrowed iterator on x86-64). This is the
    // hot part of BG4 decoding after LZ4.
    let last = n / 4;
    let (body, tail) = out.split_at_mut(4 * last);
    for ((((q, &a), &b), &c), &d) in body
        .chunks_exact_mut(4)
        .zip(&g0[..last])
        .zip(&g1[..last])
        .zip(&g2[..last])
        .zip(&g3[..last])
    {
        q.copy_from_slice(&u32::from_le_bytes([a, b, c, d]).to_le_bytes());
    }
    for (slot, g) in tail.iter_mut().zip([g0, g1, g2]) {
        *slot = g[last];
    }
}

/// Number of one bits of every byte value; a table is faster than `count_ones` on
/// targets built without the `popcnt` instruction (the x86-64 baseline).
const POPCOUNT: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = (i as u8).count_ones() as u8;
        i += 1;
    }
    t
};

/// Max KL divergence above which the official client picks BG4 (xet-core
/// `bg4_prediction.rs`, chosen there by logistic regression on model files).
const BG4_KL_THRESHOLD: f64 = 0.02;

/// Whether the official client's predictor recommends BG4-LZ4 over plain LZ4 for
/// `data` (XET-PROTOCOL.md §6.3).
///
/// It histograms the popcount (0..=8) of the bytes at each position modulo 4, then
/// computes each position's KL divergence from the pooled histogram (whose bins start
/// at 1) and recommends BG4 iff the largest exceeds 0.02. The arithmetic follows
/// xet-core step by step, in `f64`, so that the `auto` policy makes the same choices
/// and produces the same bytes. One consequence worth knowing: a position with an
/// empty bin contributes `0 · ln 0 = NaN`, which `f64::max` ignores, so such a
/// position never triggers BG4 (text has no zero bytes, so text never picks BG4).
pub fn bg4_recommended(data: &[u8]) -> bool {
    let mut hist = [[0u32; 9]; 4];
    let quads = data.chunks_exact(4);
    let tail = quads.remainder();
    for q in quads {
        for (h, &b) in hist.iter_mut().zip(q) {
            h[POPCOUNT[b as usize] as usize] += 1;
        }
    }
    for (h, &b) in hist.iter_mut().zip(tail) {
        h[POPCOUNT[b as usize] as usize] += 1;
    }
    max_kl_divergence(&hist) > BG4_KL_THRESHOLD
}

/// The predictor's statistic over per-position popcount histograms; NaN terms (a
/// position with an empty bin, or no bytes at all) drop out through `f64::max`.
fn max_kl_divergence(hist: &[[u32; 9]; 4]) -> f64 {
    let mut pooled = [1u32; 9];
    let mut totals = [0u32; 4];
    for (h, total) in hist.iter().zip(totals.iter_mut()) {
        for (j, &c) in h.iter().enumerate() {
            pooled[j] += c;
            *total += c;
        }
    }
    // The pooled total leaves out the nine initial ones, as xet-core does.
    let pooled_total: u32 = totals.iter().sum();
    let mut max_kl = 0f64;
    for (h, &total) in hist.iter().zip(&totals) {
        let mut kl = 0f64;
        for (&c, &pc) in h.iter().zip(&pooled) {
            let p = c as f64 / total as f64;
            let q = pc as f64 / pooled_total as f64;
            kl += p * (p / q).ln();
        }
        max_kl = max_kl.max(kl);
    }
    max_kl
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// The §6.4 example: `[A1 A2 A3 A4 B1 B2 B3 B4 C1]` groups to
    /// `[A1 B1 C1 A2 B2 A3 B3 A4 B4]`.
    #[test]
    fn spec_example() {
        let data = [0xA1, 0xA2, 0xA3, 0xA4, 0xB1, 0xB2, 0xB3, 0xB4, 0xC1];
        let mut grouped = Vec::new();
        bg4_split(&data, &mut grouped);
        assert_eq!(grouped, [0xA1, 0xB1, 0xC1, 0xA2, 0xB2, 0xA3, 0xB3, 0xA4, 0xB4]);
        let mut back = Vec::new();
        bg4_regroup(&grouped, &mut back);
        assert_eq!(back, data);
    }

    #[test]
    fn lengths_not_multiple_of_four() {
        for (data, want) in [
            (&b""[..], &b""[..]),
            (b"a", b"a"),
            (b"ab", b"ab"),
            (b"abc", b"abc"),
            (b"abcd", b"abcd"),
            (b"abcde", b"aebcd"),
            (b"abcdef", b"aebfcd"),
            (b"abcdefg", b"aebfcgd"),
            (b"abcdefgh", b"aebfcgdh"),
            (b"abcdefghijk", b"aeibfjcgkdh"),
        ] {
            let mut g = vec![0xEE]; // appends after what is already there
            bg4_split(data, &mut g);
            assert_eq!(&g[1..], want, "split {:?}", std::str::from_utf8(data));
            let mut back = vec![0xEE];
            bg4_regroup(&g[1..], &mut back);
            assert_eq!(&back[1..], data);
        }
    }

    /// The straightforward definition, to check the fast loops against.
    fn split_reference(data: &[u8]) -> Vec<u8> {
        (0..4)
            .flat_map(|k| data.iter().skip(k).step_by(4).copied())
            .collect()
    }

    proptest! {
        #[test]
        fn split_matches_definition_and_round_trips(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            let mut g = Vec::new();
            bg4_split(&data, &mut g);
            prop_assert_eq!(&g, &split_reference(&data));
            let mut back = Vec::new();
            bg4_regroup(&g, &mut back);
            prop_assert_eq!(back, data);
        }
    }

    #[test]
    fn predictor_text_zeros_and_random_pick_lz4() {
        // Text: no zero bytes, so every position has an empty bin (NaN, ignored).
        let text = b"The quick brown fox jumps over the lazy dog.\n".repeat(3000);
        assert!(!bg4_recommended(&text));
        // All zeros: only bin 0 is used anywhere.
        assert!(!bg4_recommended(&[0u8; 131072]));
        // Uniform random bytes: all positions look alike, KL ~ 0.
        assert!(!bg4_recommended(&crate::test_support::gen(131072, 3)));
        // Too short to fill any histogram, and empty.
        assert!(!bg4_recommended(b"abc"));
        assert!(!bg4_recommended(b""));
    }

    #[test]
    fn predictor_picks_bg4_when_one_position_differs() {
        // Position 3 always holds 0xFF (popcount 8), the others are random: every
        // bin of positions 0..3 is populated, and they differ from the pooled
        // histogram (which is heavy in bin 8) by far more than 0.02.
        let mut data = crate::test_support::gen(131072, 9);
        for q in data.chunks_exact_mut(4) {
            q[3] = 0xFF;
        }
        assert!(bg4_recommended(&data));
    }

    fn histograms(data: &[u8]) -> [[u32; 9]; 4] {
        let mut h = [[0u32; 9]; 4];
        for (i, &b) in data.iter().enumerate() {
            h[i % 4][b.count_ones() as usize] += 1;
        }
        h
    }

    #[test]
    fn kl_arithmetic_by_hand() {
        // Positions 1..3 have empty bins (NaN, ignored); position 0 is spread evenly
        // over all 9 bins with 1 count each. Pooled: bin j = 1 + 1 (+ 3 in bin 0).
        let mut h = [[0u32; 9]; 4];
        h[0] = [1; 9];
        h[1][0] = 1;
        h[2][0] = 1;
        h[3][0] = 1;
        let total = 12f64;
        let q: Vec<f64> = (0..9)
            .map(|j| if j == 0 { 5.0 / total } else { 2.0 / total })
            .collect();
        let want: f64 = q.iter().map(|&q| (1.0 / 9.0) * ((1.0 / 9.0) / q).ln()).sum();
        assert_eq!(max_kl_divergence(&h), want.max(0.0));
        // All positions NaN: the statistic stays 0.
        assert_eq!(max_kl_divergence(&[[0; 9]; 4]), 0.0);
    }

    proptest! {
        #[test]
        fn predictor_histograms_match_reference(data in proptest::collection::vec(any::<u8>(), 0..200)) {
            // Same decision as computing the histograms the obvious way.
            let want = max_kl_divergence(&histograms(&data)) > BG4_KL_THRESHOLD;
            prop_assert_eq!(bg4_recommended(&data), want);
        }
    }
}
