//! LZ4 *frame* format payloads (XET-PROTOCOL.md §6.3, §14 #2).
//!
//! Encoding goes through `lz4_flex::frame::FrameEncoder` with default settings, the
//! encoder and settings of the official client (`lz4_flex` 0.13.2), so our payloads
//! are byte-identical to its payloads. LZ4 output is encoder-specific: any other
//! encoder, or other settings, would give valid but different bytes (even the
//! block compressor called directly: below 64 KiB it hashes 4 bytes, the frame
//! encoder 5). The encoders are reused per thread: a fresh one per chunk allocated
//! and zeroed its table and buffers each time, fresh memory that was three quarters
//! of a 1 GiB upload's page faults.
//!
//! Decoding does not use `FrameDecoder`. That decoder copies every block through
//! buffers sized by the frame's declared maximum block size (up to 4 MiB, 8 MiB in
//! linked mode), so a hostile 16 KiB payload could make it allocate megabytes and
//! expand a block to 4 MiB before we could stop it. Here the frame is parsed from the
//! payload slice and each block is decompressed with `lz4_flex::block` straight into
//! the caller's buffer, which is exactly the chunk's declared size: a frame that
//! would produce one byte more fails at that byte, and nothing else is allocated.

use std::io::Write as _;

use lz4_flex::block::DecompressError;
use lz4_flex::frame::{BlockSize, FrameEncoder, FrameInfo};
use twox_hash::XxHash32;

/// First four bytes of every LZ4 frame (`04 22 4D 18` on the wire).
const FRAME_MAGIC: u32 = 0x184D_2204;
/// FLG bits (LZ4 frame format spec, "Frame Descriptor").
const FLG_VERSION_MASK: u8 = 0b1100_0000;
const FLG_VERSION_01: u8 = 0b0100_0000;
const FLG_INDEPENDENT_BLOCKS: u8 = 0b0010_0000;
const FLG_BLOCK_CHECKSUMS: u8 = 0b0001_0000;
const FLG_CONTENT_SIZE: u8 = 0b0000_1000;
const FLG_CONTENT_CHECKSUM: u8 = 0b0000_0100;
const FLG_RESERVED: u8 = 0b0000_0010;
const FLG_DICT_ID: u8 = 0b0000_0001;
/// BD: bits 6-4 hold the block-size code, the others are reserved.
const BD_RESERVED: u8 = 0b1000_1111;
/// Block size word: the high bit marks a block stored uncompressed.
const BLOCK_STORED: u32 = 0x8000_0000;
/// LZ4 match offsets are 16-bit, so linked blocks see at most 64 KiB back.
const WINDOW: usize = 64 * 1024;

/// Inputs up to this long go through a reused encoder; longer ones (never a chunk)
/// through a fresh one.
const REUSED_MAX: usize = 256 * 1024;

/// `FrameEncoder`s reused across calls on this thread, one per block size `Auto`
/// can pick for a chunk ([64 KiB, 256 KiB]), each writing into a reused buffer.
/// A thread that has compressed both sizes keeps about 1 MiB of encoder state
/// until it exits (tokio's blocking threads exit after 10 s idle).
type Reused = [Option<FrameEncoder<Vec<u8>>>; 2];

thread_local! {
    static ENCODERS: std::cell::RefCell<Reused> = const { std::cell::RefCell::new([None, None]) };
}

/// Compresses `data` into one LZ4 frame exactly as the official client does, or
/// `None` if the encoder fails (it writes to memory, so it should not; a caller then
/// stores the chunk uncompressed, which is always valid).
#[cfg(test)]
pub(crate) fn compress_frame(data: &[u8]) -> Option<Vec<u8>> {
    encode(data, false)
}

/// `data` as one LZ4 frame exactly as the official client writes it, if that frame
/// is shorter than `data`; `None` otherwise (the chunk is then stored as is) or if
/// the encoder fails (it writes to memory, so it should not).
pub(crate) fn compress_frame_if_smaller(data: &[u8]) -> Option<Vec<u8>> {
    encode(data, true)
}

fn encode(data: &[u8], only_smaller: bool) -> Option<Vec<u8>> {
    let keep = |f: &[u8]| !only_smaller || f.len() < data.len();
    if data.is_empty() || data.len() > REUSED_MAX {
        // A fresh encoder: empty input (a reused one would skip the header) and
        // inputs longer than any chunk.
        let mut enc = FrameEncoder::new(Vec::with_capacity(data.len() + 32));
        // One `write_all` of the whole input: lz4_flex picks the block size from the
        // length of the first write, as in the official client.
        enc.write_all(data).ok()?;
        let f = enc.finish().ok()?;
        return keep(&f).then_some(f);
    }
    // The block size `BlockSize::Auto` picks from the first write's length, set
    // explicitly: the frame header is the same, and a reused encoder keeps it.
    let (slot, size) = if data.len() <= 64 * 1024 {
        (0, BlockSize::Max64KB)
    } else {
        (1, BlockSize::Max256KB)
    };
    // Taken out of its slot while in use and put back only after a clean frame: an
    // encoder left mid-frame by an error or a panic is dropped, never reused.
    // `try_with`: while the thread's locals are being torn down there is no slot,
    // and a fresh encoder does the job (nothing is put back then).
    let mut enc = ENCODERS
        .try_with(|e| e.borrow_mut()[slot].take())
        .ok()
        .flatten()
        .unwrap_or_else(|| FrameEncoder::with_frame_info(FrameInfo::new().block_size(size), Vec::new()));
    enc.get_mut().clear();
    // A second frame from one encoder starts from a cleared table and no prefix
    // (`begin_frame`), as a fresh encoder does (tested).
    enc.write_all(data).ok()?;
    enc.try_finish().ok()?;
    let f = enc.get_ref();
    let out = keep(f).then(|| f.clone());
    let _ = ENCODERS.try_with(|e| e.borrow_mut()[slot] = Some(enc));
    out
}

/// A little cursor over the frame, for error messages with positions.
struct Frame<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Frame<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], String> {
        let rest = &self.buf[self.pos..];
        if rest.len() < n {
            return Err(format!(
                "LZ4 frame cut short at payload byte {}: {what} needs {n} bytes, {} remain",
                self.pos,
                rest.len()
            ));
        }
        self.pos += n;
        Ok(&rest[..n])
    }

    fn u8(&mut self, what: &str) -> Result<u8, String> {
        Ok(self.take(1, what)?[0])
    }

    fn u32(&mut self, what: &str) -> Result<u32, String> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
}

fn xxh32(data: &[u8]) -> u32 {
    XxHash32::oneshot(0, data)
}

/// Decompresses the single LZ4 frame `frame` into `out`, which must come out exactly
/// full (`out.len()` is the chunk's declared uncompressed length).
///
/// Accepts any standard frame (independent or linked blocks, block and content
/// checksums, which are verified, a content size, which must equal `out.len()`).
/// Rejects dictionary ids (no dictionary is defined), skippable and legacy frames,
/// and any byte after the frame's end: a payload is one frame (§6.3).
pub(crate) fn decompress_frame_into(frame: &[u8], out: &mut [u8]) -> Result<(), String> {
    let mut f = Frame { buf: frame, pos: 0 };
    let magic = f.u32("the magic number")?;
    if magic != FRAME_MAGIC {
        return Err(format!(
            "not an LZ4 frame: magic number {magic:#010x}, expected 0x184d2204"
        ));
    }
    let flg = f.u8("the FLG byte")?;
    let bd = f.u8("the BD byte")?;
    if flg & FLG_VERSION_MASK != FLG_VERSION_01 {
        return Err(format!("LZ4 frame version bits {:02b}, expected 01", flg >> 6));
    }
    if flg & FLG_RESERVED != 0 || bd & BD_RESERVED != 0 {
        return Err("LZ4 frame descriptor has reserved bits set".into());
    }
    if flg & FLG_DICT_ID != 0 {
        return Err("LZ4 frame needs a dictionary, which Xet never uses".into());
    }
    let max_block = match (bd >> 4) & 0b111 {
        4 => 64 << 10,
        5 => 256 << 10,
        6 => 1 << 20,
        7 => 4 << 20,
        code => {
            return Err(format!(
                "LZ4 frame block size code {code} is not defined (4 to 7 are)"
            ))
        }
    };
    let content_size = if flg & FLG_CONTENT_SIZE != 0 {
        let b = f.take(8, "the content size")?;
        let mut w = [0u8; 8];
        w.copy_from_slice(b);
        Some(u64::from_le_bytes(w))
    } else {
        None
    };
    let descriptor_end = f.pos;
    let hc = f.u8("the header checksum")?;
    let want_hc = (xxh32(&frame[4..descriptor_end]) >> 8) as u8;
    if hc != want_hc {
        return Err(format!(
            "LZ4 frame header checksum {hc:#04x}, computed {want_hc:#04x}"
        ));
    }
    if let Some(cs) = content_size {
        if cs != out.len() as u64 {
            return Err(format!(
                "LZ4 frame declares {cs} content bytes, the chunk header {}",
                out.len()
            ));
        }
    }
    let independent = flg & FLG_INDEPENDENT_BLOCKS != 0;
    let mut pos = 0usize;
    loop {
        let block_at = f.pos;
        let word = f.u32("a block size")?;
        if word == 0 {
            break; // end mark
        }
        let len = (word & !BLOCK_STORED) as usize;
        if len > max_block {
            return Err(format!(
                "LZ4 block at payload byte {block_at} holds {len} bytes, more than the frame's {max_block}-byte maximum"
            ));
        }
        let data = f.take(len, "a block")?;
        if flg & FLG_BLOCK_CHECKSUMS != 0 {
            let sum = f.u32("a block checksum")?;
            if sum != xxh32(data) {
                return Err(format!("LZ4 block at payload byte {block_at} fails its checksum"));
            }
        }
        let room = out.len() - pos;
        let produced = if word & BLOCK_STORED != 0 {
            if len > room {
                return Err(overflow(out.len()));
            }
            out[pos..pos + len].copy_from_slice(data);
            len
        } else {
            let (prev, rest) = out.split_at_mut(pos);
            let res = if independent {
                lz4_flex::block::decompress_into(data, rest)
            } else {
                let dict = &prev[prev.len().saturating_sub(WINDOW)..];
                lz4_flex::block::decompress_into_with_dict(data, rest, dict)
            };
            let n = res.map_err(|e| match e {
                DecompressError::OutputTooSmall { .. } => overflow(out.len()),
                e => format!("LZ4 block at payload byte {block_at} is corrupt: {e}"),
            })?;
            if n > max_block {
                return Err(format!(
                    "LZ4 block at payload byte {block_at} expands to {n} bytes, more than the frame's {max_block}-byte maximum"
                ));
            }
            n
        };
        pos += produced;
    }
    if flg & FLG_CONTENT_CHECKSUM != 0 {
        let sum = f.u32("the content checksum")?;
        if sum != xxh32(&out[..pos]) {
            return Err("LZ4 frame content fails its checksum".into());
        }
    }
    if f.pos != frame.len() {
        return Err(format!(
            "{} bytes follow the end of the LZ4 frame",
            frame.len() - f.pos
        ));
    }
    if pos != out.len() {
        return Err(format!(
            "LZ4 frame decompresses to {pos} bytes, the chunk header declares {}",
            out.len()
        ));
    }
    Ok(())
}

fn overflow(declared: usize) -> String {
    format!("LZ4 frame decompresses to more than the {declared} bytes the chunk header declares")
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;

    use lz4_flex::frame::{BlockMode, FrameDecoder};
    use proptest::prelude::*;

    use super::*;

    fn decode(frame: &[u8], n: usize) -> Result<Vec<u8>, String> {
        let mut out = vec![0u8; n];
        decompress_frame_into(frame, &mut out).map(|()| out)
    }

    fn encode_with(info: FrameInfo, data: &[u8], write_size: usize) -> Vec<u8> {
        let mut enc = FrameEncoder::with_frame_info(info, Vec::new());
        for piece in data.chunks(write_size.max(1)) {
            enc.write_all(piece).unwrap();
        }
        enc.finish().unwrap()
    }

    #[test]
    fn default_frame_layout_matches_the_vectors() {
        // §6.3: magic, FLG 0x60, BD 0x50 (256 KiB blocks for a 128 KiB chunk), HC 0xFB.
        let f = compress_frame(&[0u8; 131072]).unwrap();
        assert_eq!(&f[..7], &[0x04, 0x22, 0x4D, 0x18, 0x60, 0x50, 0xFB]);
        assert_eq!(&f[f.len() - 4..], &[0, 0, 0, 0]);
        assert_eq!(decode(&f, 131072).unwrap(), vec![0u8; 131072]);
    }

    #[test]
    fn accepts_every_standard_frame_flavour() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i / 7 % 251) as u8).collect();
        for mode in [BlockMode::Independent, BlockMode::Linked] {
            for bs in [
                BlockSize::Max64KB,
                BlockSize::Max256KB,
                BlockSize::Max1MB,
                BlockSize::Max4MB,
            ] {
                for (bc, cc, size) in [(false, false, false), (true, true, true), (true, false, false)] {
                    let info = FrameInfo::new()
                        .block_mode(mode)
                        .block_size(bs)
                        .block_checksums(bc)
                        .content_checksum(cc)
                        .content_size(size.then_some(data.len() as u64));
                    // Small writes make the encoder emit several blocks, linked ones
                    // referring back into earlier blocks.
                    let f = encode_with(info, &data, 10_000);
                    assert_eq!(
                        decode(&f, data.len()).unwrap(),
                        data,
                        "{mode:?} {bs:?} {bc} {cc} {size}"
                    );
                }
            }
        }
    }

    #[test]
    fn rejects_bad_frames() {
        let data = b"hello hello hello hello hello hello".repeat(10);
        let good = compress_frame(&data).unwrap();
        let n = data.len();
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (vec![], "cut short"),
            (b"\x02\x21\x4c\x18\0\0\0\0".to_vec(), "not an LZ4 frame"),
            (
                {
                    let mut f = good.clone();
                    f[4] ^= 0x02;
                    f
                },
                "reserved",
            ),
            (
                {
                    let mut f = good.clone();
                    f[4] = 0x80 | (f[4] & 0x3f);
                    f
                },
                "version",
            ),
            (
                {
                    let mut f = good.clone();
                    f[6] ^= 1;
                    f
                },
                "header checksum",
            ),
            (
                {
                    let mut f = good.clone();
                    f.push(0);
                    f
                },
                "follow the end",
            ),
            (good[..good.len() - 1].to_vec(), "cut short"),
        ];
        for (f, want) in cases {
            let e = decode(&f, n).unwrap_err();
            assert!(e.contains(want), "{e:?} should mention {want:?}");
        }
        // Declared length wrong either way.
        assert!(decode(&good, n + 1).unwrap_err().contains("decompresses to"));
        assert!(decode(&good, n - 1).unwrap_err().contains("more than the"));
        // Content size disagreeing with the chunk header.
        let f = encode_with(FrameInfo::new().content_size(Some(n as u64)), &data, n);
        assert!(decode(&f, n).is_ok());
        let mut bad = vec![0u8; n - 1];
        assert!(decompress_frame_into(&f, &mut bad)
            .unwrap_err()
            .contains("content bytes"));
        // Checksums are checked.
        let mut f = encode_with(FrameInfo::new().content_checksum(true), &data, n);
        let last = f.len() - 1;
        f[last] ^= 1;
        assert!(decode(&f, n).unwrap_err().contains("checksum"));
    }

    #[test]
    fn lying_block_cannot_expand_past_the_declared_length() {
        // A run of 4 MiB of zeros compresses to ~16 KiB; claiming 100 bytes must fail
        // at once, without producing (or allocating) the rest.
        let f = encode_with(
            FrameInfo::new().block_size(BlockSize::Max4MB),
            &vec![0u8; 4 << 20],
            4 << 20,
        );
        assert!(f.len() < 20_000);
        assert!(decode(&f, 100).unwrap_err().contains("more than the 100 bytes"));
    }

    /// What the official client writes: `FrameEncoder`, defaults, one write.
    fn official(data: &[u8]) -> Vec<u8> {
        let mut enc = FrameEncoder::new(Vec::new());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    #[test]
    fn frames_are_the_official_encoders_bytes() {
        let mut seed = 0;
        let mut noise = |n: usize| {
            seed += 1;
            crate::test_support::gen(n, seed)
        };
        let text = b"the quick brown fox jumps over the lazy dog; ".repeat(3000);
        let mut inputs: Vec<Vec<u8>> = vec![Vec::new(), vec![0], vec![0; 131072], noise(131072), noise(20)];
        // Around the 64 KiB block-size switch, compressible and not, one after the
        // other on one reused encoder; up to the 256 KiB reuse limit and past it (a
        // fresh encoder).
        for n in [
            1, 4, 11, 12, 13, 14, 15, 16, 100, 65534, 65535, 65536, 65537, 100_000, 131072, 262_143, 262_144,
            262_145, 300_000,
        ] {
            inputs.push(text[..n.min(text.len())].to_vec());
            inputs.push(noise(n));
            let mut mixed = noise(n);
            mixed[n / 2..].fill(7);
            inputs.push(mixed);
        }
        for data in &inputs {
            let want = official(data);
            assert_eq!(compress_frame(data).unwrap(), want, "length {}", data.len());
            let smaller = compress_frame_if_smaller(data);
            if want.len() < data.len() {
                assert_eq!(smaller.as_deref(), Some(&want[..]), "length {}", data.len());
            } else {
                assert_eq!(smaller, None, "length {}", data.len());
            }
        }
    }

    proptest! {
        #[test]
        fn agrees_with_the_official_encoder(data in proptest::collection::vec(0u8..8, 0..140_000), cut in 0usize..140_000) {
            // Runs of a small alphabet, then noise from `cut` on: both block kinds.
            let mut data = data;
            let cut = cut.min(data.len());
            for (i, b) in data[cut..].iter_mut().enumerate() {
                *b ^= (i as u32).wrapping_mul(2_654_435_761).rotate_left(7) as u8;
            }
            let (a, b) = (compress_frame(&data).unwrap(), official(&data));
            let at = a.iter().zip(&b).position(|(x, y)| x != y);
            prop_assert!(a == b, "len {} cut {} ours {} theirs {} first diff {:?}", data.len(), cut, a.len(), b.len(), at);
        }

        #[test]
        fn round_trip_and_agree_with_lz4_flex(data in proptest::collection::vec(0u8..4, 0..5000)) {
            let f = compress_frame(&data).unwrap();
            prop_assert_eq!(decode(&f, data.len()).unwrap(), data.clone());
            let mut theirs = Vec::new();
            FrameDecoder::new(&f[..]).read_to_end(&mut theirs).unwrap();
            prop_assert_eq!(theirs, data);
        }

        #[test]
        fn never_panics(frame in proptest::collection::vec(any::<u8>(), 0..200), n in 0usize..300) {
            let _ = decode(&frame, n);
            // Also behind a valid header, where the block parser is reached.
            let mut f = compress_frame(b"").unwrap();
            f.truncate(7);
            f.extend_from_slice(&frame);
            let _ = decode(&f, n);
        }
    }
}
