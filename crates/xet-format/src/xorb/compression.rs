//! Chunk compression (XET-PROTOCOL.md §6.3, §6.4): the schemes a chunk header can
//! name, the policies a client can follow to pick them, and the per-chunk work.
//!
//! Compression is a pure function of a chunk's bytes and a scheme
//! ([`compress_chunk`]), so callers can run it on worker threads; choosing the scheme
//! ([`SchemeSelector`]) is a cheap sequential step that only the `auto` policy needs.

mod bg4;
mod lz4;

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

pub use bg4::{bg4_recommended, bg4_regroup, bg4_split};

use super::header::ChunkHeader;
use crate::chunker::MAX_CHUNK_SIZE;
use crate::error::{Error, Result};

/// The compression of one chunk's payload, as named in its header (§6.3).
#[repr(u8)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CompressionScheme {
    /// Stored as is.
    None = 0,
    /// One LZ4 frame of the chunk bytes.
    Lz4 = 1,
    /// One LZ4 frame of the chunk bytes after BG4 byte grouping (§6.4).
    ByteGrouping4Lz4 = 2,
}

impl CompressionScheme {
    /// All schemes, by header value.
    pub const ALL: [CompressionScheme; 3] = [
        CompressionScheme::None,
        CompressionScheme::Lz4,
        CompressionScheme::ByteGrouping4Lz4,
    ];

    /// The scheme a header byte names, or `None` for any other value (xet-core's
    /// internal `Auto = 99` is never serialized, so it is rejected too).
    pub const fn from_u8(value: u8) -> Option<Self> {
        match value {
            0 => Some(CompressionScheme::None),
            1 => Some(CompressionScheme::Lz4),
            2 => Some(CompressionScheme::ByteGrouping4Lz4),
            _ => None,
        }
    }

    /// The header byte.
    pub const fn as_u8(self) -> u8 {
        self as u8
    }

    /// The official client's name: `none`, `lz4` or `bg4-lz4`.
    pub const fn name(self) -> &'static str {
        match self {
            CompressionScheme::None => "none",
            CompressionScheme::Lz4 => "lz4",
            CompressionScheme::ByteGrouping4Lz4 => "bg4-lz4",
        }
    }
}

impl fmt::Display for CompressionScheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for CompressionScheme {
    type Err = Error;

    /// Parses `none`, `lz4` or `bg4-lz4` (any case, surrounding spaces ignored).
    fn from_str(s: &str) -> Result<Self> {
        let t = s.trim();
        CompressionScheme::ALL
            .into_iter()
            .find(|c| c.name().eq_ignore_ascii_case(t))
            .ok_or_else(|| unknown("compression scheme", s, "none, lz4, bg4-lz4"))
    }
}

fn unknown(what: &'static str, input: &str, expected: &'static str) -> Error {
    Error::UnknownName {
        what,
        input: input.chars().take(80).collect(),
        expected,
    }
}

/// How a client picks each chunk's scheme: one fixed scheme, or `auto`, the official
/// client's default (`HF_XET_XORB_COMPRESSION_POLICY`, §6.3).
///
/// Whatever the policy, a chunk that does not get strictly smaller is stored with
/// [`CompressionScheme::None`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum CompressionPolicy {
    /// Store every chunk as is.
    None,
    /// LZ4 every chunk.
    Lz4,
    /// BG4 then LZ4 every chunk.
    Bg4Lz4,
    /// The official client's heuristic: [`bg4_recommended`] decides between BG4-LZ4
    /// and LZ4 on the first chunk of each file within a xorb and then on every 32nd
    /// chunk of that file ([`COMPRESSION_SCHEME_RETEST_INTERVAL`]); the chunks in
    /// between follow that decision.
    #[default]
    Auto,
}

impl CompressionPolicy {
    /// All policies.
    pub const ALL: [CompressionPolicy; 4] = [
        CompressionPolicy::None,
        CompressionPolicy::Lz4,
        CompressionPolicy::Bg4Lz4,
        CompressionPolicy::Auto,
    ];

    /// The official name: `none`, `lz4`, `bg4-lz4` or `auto`.
    pub const fn name(self) -> &'static str {
        match self {
            CompressionPolicy::None => "none",
            CompressionPolicy::Lz4 => "lz4",
            CompressionPolicy::Bg4Lz4 => "bg4-lz4",
            CompressionPolicy::Auto => "auto",
        }
    }

    /// The scheme every chunk is tried with, or `None` for `auto`.
    pub const fn fixed_scheme(self) -> Option<CompressionScheme> {
        match self {
            CompressionPolicy::None => Some(CompressionScheme::None),
            CompressionPolicy::Lz4 => Some(CompressionScheme::Lz4),
            CompressionPolicy::Bg4Lz4 => Some(CompressionScheme::ByteGrouping4Lz4),
            CompressionPolicy::Auto => None,
        }
    }
}

impl fmt::Display for CompressionPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for CompressionPolicy {
    type Err = Error;

    /// Parses `none`, `lz4`, `bg4-lz4` or `auto` (any case, surrounding spaces
    /// ignored). An empty string means `auto`, as in the official client's setting.
    fn from_str(s: &str) -> Result<Self> {
        let t = s.trim();
        if t.is_empty() {
            return Ok(CompressionPolicy::Auto);
        }
        CompressionPolicy::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(t))
            .ok_or_else(|| unknown("compression policy", s, "auto, none, lz4, bg4-lz4"))
    }
}

/// How many chunks of a file the `auto` policy compresses with one decision before
/// deciding again (xet-core `xorb.compression_scheme_retest_interval`, default 32;
/// `index.json` of the vectors records it).
pub const COMPRESSION_SCHEME_RETEST_INTERVAL: usize = 32;

/// The scheme the `auto` policy picks when `data` opens a block: BG4-LZ4 if
/// [`bg4_recommended`], else LZ4.
pub fn predict_scheme(data: &[u8]) -> CompressionScheme {
    if bg4_recommended(data) {
        CompressionScheme::ByteGrouping4Lz4
    } else {
        CompressionScheme::Lz4
    }
}

/// Picks each chunk's scheme under a [`CompressionPolicy`], chunk by chunk in xorb
/// order, exactly as the official client does (§6.3).
///
/// Under `auto` a xorb is cut into blocks: each run of consecutive chunks from the
/// same file (a *file segment*; the xorb's first chunk always opens one) is split into
/// blocks of [`COMPRESSION_SCHEME_RETEST_INTERVAL`] chunks, and the scheme of a block
/// is [`predict_scheme`] of its first chunk. [`XorbBuilder`](super::XorbBuilder)
/// drives one internally; use one directly to choose schemes ahead of compressing
/// chunks in parallel (one selector per xorb).
#[derive(Debug, Clone)]
pub struct SchemeSelector {
    policy: CompressionPolicy,
    /// Chunks per block; `usize::MAX` when the interval is 0 (never retest).
    interval: usize,
    /// Chunks given out since the current file segment began.
    in_segment: usize,
    /// The next chunk opens a file segment.
    segment_pending: bool,
    /// The current block's decision.
    block_scheme: CompressionScheme,
}

impl SchemeSelector {
    /// A selector for a new xorb, with the official retest interval.
    pub fn new(policy: CompressionPolicy) -> Self {
        SchemeSelector {
            policy,
            interval: COMPRESSION_SCHEME_RETEST_INTERVAL,
            in_segment: 0,
            segment_pending: true,
            block_scheme: CompressionScheme::Lz4,
        }
    }

    /// Sets the retest interval; 0 means decide once per file segment (xet-core's
    /// meaning of 0).
    pub fn with_retest_interval(mut self, interval: usize) -> Self {
        self.interval = if interval == 0 { usize::MAX } else { interval };
        self
    }

    /// The policy followed.
    pub fn policy(&self) -> CompressionPolicy {
        self.policy
    }

    /// Marks that the next chunk is the first of another file. Calling it again
    /// before that chunk changes nothing, so a file that brings no new chunk costs
    /// nothing (xet-core records such empty segments and skips them).
    pub fn start_file(&mut self) {
        self.segment_pending = true;
    }

    /// The scheme for the next chunk, whose bytes are `data`; advances to the chunk
    /// after it.
    pub fn next_scheme(&mut self, data: &[u8]) -> CompressionScheme {
        self.advance(|| predict_scheme(data))
    }

    /// Advances past a chunk whose scheme the caller already chose: where a block
    /// begins, `requested` becomes the block's scheme.
    pub(crate) fn advance_with(&mut self, requested: CompressionScheme) {
        self.advance(|| requested);
    }

    fn advance(&mut self, decide: impl FnOnce() -> CompressionScheme) -> CompressionScheme {
        if let Some(s) = self.policy.fixed_scheme() {
            return s;
        }
        if self.segment_pending {
            self.segment_pending = false;
            self.in_segment = 0;
        }
        if self.in_segment.is_multiple_of(self.interval) {
            self.block_scheme = decide();
        }
        self.in_segment += 1;
        self.block_scheme
    }
}

/// One chunk compressed and ready to be written as a record: its header and payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompressedChunk<'a> {
    /// The scheme that was asked for. The header's scheme differs only when the
    /// chunk did not get smaller and is stored as [`CompressionScheme::None`].
    pub requested: CompressionScheme,
    /// The record's header.
    pub header: ChunkHeader,
    /// The payload; borrowed from the chunk when stored as is.
    pub payload: Cow<'a, [u8]>,
}

impl CompressedChunk<'_> {
    /// Length of the record: header plus payload.
    pub fn record_len(&self) -> usize {
        super::CHUNK_HEADER_LEN + self.payload.len()
    }

    /// Appends the record (header, then payload) to `out`.
    pub fn write_record(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.header.to_bytes_unchecked());
        out.extend_from_slice(&self.payload);
    }

    /// Detaches the payload from the chunk's bytes.
    pub fn into_owned(self) -> CompressedChunk<'static> {
        CompressedChunk {
            requested: self.requested,
            header: self.header,
            payload: Cow::Owned(self.payload.into_owned()),
        }
    }
}

/// Compresses one chunk with `scheme` (§6.3): LZ4 is one `lz4_flex` frame with
/// default settings, BG4-LZ4 is that of the byte-grouped chunk; if the result is not
/// strictly smaller than the chunk, the chunk is stored as is, as the official client
/// does. Safe to call from any thread.
///
/// Fails only if `data` is longer than a chunk may be (131072 bytes, §3).
///
/// ```
/// use xet_format::xorb::{compress_chunk, CompressionScheme};
/// let c = compress_chunk(&[7u8; 1000], CompressionScheme::Lz4).unwrap();
/// assert_eq!(c.header.scheme, CompressionScheme::Lz4);
/// assert!(c.payload.len() < 1000);
/// let c = compress_chunk(b"hello world", CompressionScheme::Lz4).unwrap();
/// assert_eq!(c.header.scheme, CompressionScheme::None); // LZ4 would not shrink it
/// ```
pub fn compress_chunk(data: &[u8], scheme: CompressionScheme) -> Result<CompressedChunk<'_>> {
    if data.len() > MAX_CHUNK_SIZE {
        return Err(Error::LimitExceeded {
            what: "chunk size",
            limit: MAX_CHUNK_SIZE as u64,
            actual: data.len() as u64,
        });
    }
    let compressed = match scheme {
        CompressionScheme::None => None,
        CompressionScheme::Lz4 => lz4::compress_frame_if_smaller(data),
        CompressionScheme::ByteGrouping4Lz4 => {
            let mut grouped = Vec::with_capacity(data.len());
            bg4_split(data, &mut grouped);
            lz4::compress_frame_if_smaller(&grouped)
        }
    };
    // Both lengths are at most 131072 here, so they fit the header's 24 bits.
    let uncompressed_len = data.len() as u32;
    Ok(match compressed {
        Some(c) if c.len() < data.len() => CompressedChunk {
            requested: scheme,
            header: ChunkHeader {
                compressed_len: c.len() as u32,
                scheme,
                uncompressed_len,
            },
            payload: Cow::Owned(c),
        },
        _ => CompressedChunk {
            requested: scheme,
            header: ChunkHeader {
                compressed_len: uncompressed_len,
                scheme: CompressionScheme::None,
                uncompressed_len,
            },
            payload: Cow::Borrowed(data),
        },
    })
}

/// Decodes `payload` of a chunk compressed with `scheme` into `out`, which must come
/// out exactly full. `scratch` is reused across calls for BG4's grouped bytes. On
/// error, returns the reason; the caller adds the chunk's position.
pub(crate) fn decompress_into(
    scheme: CompressionScheme,
    payload: &[u8],
    out: &mut [u8],
    scratch: &mut Vec<u8>,
) -> Result<(), String> {
    match scheme {
        CompressionScheme::None => {
            if payload.len() != out.len() {
                return Err(format!(
                    "uncompressed payload holds {} bytes, the chunk header declares {}",
                    payload.len(),
                    out.len()
                ));
            }
            out.copy_from_slice(payload);
            Ok(())
        }
        CompressionScheme::Lz4 => lz4::decompress_frame_into(payload, out),
        CompressionScheme::ByteGrouping4Lz4 => {
            scratch.clear();
            scratch.resize(out.len(), 0);
            lz4::decompress_frame_into(payload, scratch)?;
            bg4::bg4_regroup_into(scratch, out);
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn names_round_trip() {
        for p in CompressionPolicy::ALL {
            assert_eq!(p.to_string().parse::<CompressionPolicy>().unwrap(), p);
        }
        for s in CompressionScheme::ALL {
            assert_eq!(s.to_string().parse::<CompressionScheme>().unwrap(), s);
            assert_eq!(CompressionScheme::from_u8(s.as_u8()), Some(s));
        }
        assert_eq!(CompressionPolicy::default(), CompressionPolicy::Auto);
        assert_eq!(
            " BG4-LZ4 ".parse::<CompressionPolicy>().unwrap(),
            CompressionPolicy::Bg4Lz4
        );
        assert_eq!("".parse::<CompressionPolicy>().unwrap(), CompressionPolicy::Auto);
        let e = "zstd".parse::<CompressionPolicy>().unwrap_err();
        assert!(matches!(
            e,
            Error::UnknownName {
                what: "compression policy",
                ..
            }
        ));
        assert_eq!(
            e.to_string(),
            "unknown compression policy \"zstd\": expected one of auto, none, lz4, bg4-lz4"
        );
        assert!("auto".parse::<CompressionScheme>().is_err());
        assert_eq!(CompressionScheme::from_u8(3), None);
        assert_eq!(CompressionScheme::from_u8(99), None);
    }

    fn decode(c: &CompressedChunk<'_>) -> Vec<u8> {
        let mut out = vec![0u8; c.header.uncompressed_len as usize];
        decompress_into(c.header.scheme, &c.payload, &mut out, &mut Vec::new()).unwrap();
        out
    }

    #[test]
    fn falls_back_to_none_unless_strictly_smaller() {
        let random = crate::test_support::gen(5000, 1);
        for s in CompressionScheme::ALL {
            let c = compress_chunk(&random, s).unwrap();
            assert_eq!(c.header.scheme, CompressionScheme::None);
            assert_eq!(c.requested, s);
            assert!(matches!(c.payload, Cow::Borrowed(_)));
            let c = compress_chunk(b"", s).unwrap();
            assert_eq!(
                (c.header.scheme, c.header.compressed_len),
                (CompressionScheme::None, 0)
            );
        }
        let zeros = [0u8; 4096];
        let c = compress_chunk(&zeros, CompressionScheme::ByteGrouping4Lz4).unwrap();
        assert_eq!(c.header.scheme, CompressionScheme::ByteGrouping4Lz4);
        assert_eq!(decode(&c), zeros);
        assert!(matches!(
            compress_chunk(&vec![0; MAX_CHUNK_SIZE + 1], CompressionScheme::Lz4),
            Err(Error::LimitExceeded {
                what: "chunk size",
                ..
            })
        ));
    }

    #[test]
    fn selector_blocks_follow_files_and_interval() {
        // Under auto, record which chunks open a block (and so run the predictor).
        let mut s = SchemeSelector::new(CompressionPolicy::Auto).with_retest_interval(3);
        let mut opened = Vec::new();
        for i in 0..12 {
            if i == 5 || i == 9 {
                s.start_file();
                s.start_file(); // idempotent
            }
            s.advance(|| {
                opened.push(i);
                CompressionScheme::Lz4
            });
        }
        assert_eq!(opened, [0, 3, 5, 8, 9]);
        // Fixed policies ignore everything.
        let mut s = SchemeSelector::new(CompressionPolicy::Bg4Lz4);
        assert_eq!(s.next_scheme(b"abc"), CompressionScheme::ByteGrouping4Lz4);
        // Interval 0: only file starts.
        let mut s = SchemeSelector::new(CompressionPolicy::Auto).with_retest_interval(0);
        let mut zero_text = vec![0u8; 4096];
        zero_text[..40].copy_from_slice(&[0xFFu8; 40]);
        assert_eq!(s.next_scheme(&zero_text), CompressionScheme::Lz4);
        for _ in 0..100 {
            s.advance_with(CompressionScheme::ByteGrouping4Lz4);
        }
        assert_eq!(s.next_scheme(b""), CompressionScheme::Lz4);
    }

    proptest! {
        #[test]
        fn every_scheme_round_trips(
            len in 0usize..20_000,
            seed in any::<u64>(),
            compressible in any::<bool>(),
        ) {
            let data = if compressible {
                (0..len).map(|i| ((i as u64).wrapping_mul(seed) >> 13) as u8 & 0x0f).collect()
            } else {
                crate::test_support::gen(len, seed)
            };
            for s in CompressionScheme::ALL {
                let c = compress_chunk(&data, s).unwrap();
                prop_assert!(c.payload.len() <= data.len());
                prop_assert_eq!(c.header.compressed_len as usize, c.payload.len());
                prop_assert_eq!(decode(&c), data.clone());
            }
        }
    }
}
