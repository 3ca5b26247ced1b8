//! The 8-byte chunk header that opens every chunk record (XET-PROTOCOL.md §6.2).

use super::{CompressionScheme, CHUNK_HEADER_LEN, MAX_CHUNK_COMPRESSED_LEN, MAX_CHUNK_UNCOMPRESSED_LEN};
use crate::error::{Error, Result};

/// `XETBLOB`: the footer's first bytes (§6.5). A reader that meets them where a chunk
/// header should be has reached the footer; they can never open a valid header,
/// whose first byte is 0.
pub(crate) const FOOTER_IDENT: &[u8; 7] = b"XETBLOB";

/// A chunk record's header: `[version = 0][compressed_len: u24 LE][scheme]
/// [uncompressed_len: u24 LE]` (§6.2).
///
/// ```
/// use xet_format::xorb::{ChunkHeader, CompressionScheme};
/// let h = ChunkHeader { compressed_len: 11, scheme: CompressionScheme::None, uncompressed_len: 11 };
/// assert_eq!(h.to_bytes().unwrap(), [0, 11, 0, 0, 0, 11, 0, 0]);
/// assert_eq!(ChunkHeader::parse(&[0, 11, 0, 0, 0, 11, 0, 0]).unwrap(), h);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChunkHeader {
    /// Length of the payload that follows the header.
    pub compressed_len: u32,
    /// How the payload is compressed.
    pub scheme: CompressionScheme,
    /// Length of the chunk once decompressed (at most 131072).
    pub uncompressed_len: u32,
}

impl ChunkHeader {
    /// The only header version (§6.2); readers reject any other.
    pub const VERSION: u8 = 0;

    /// Parses the header at the start of `bytes` (which may go on with the payload),
    /// as the header of chunk 0 at byte 0 for error messages. See
    /// [`ChunkRecords`](super::ChunkRecords) to walk a run of records.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        Self::parse_at(bytes, 0, 0)
    }

    /// [`parse`](Self::parse) for chunk `index` whose header is at byte `offset` of
    /// the input.
    pub(crate) fn parse_at(bytes: &[u8], offset: u64, index: u64) -> Result<Self> {
        if bytes.len() < CHUNK_HEADER_LEN {
            return Err(Error::XorbTruncated {
                chunk_index: index,
                part: "header",
                offset,
                needed: CHUNK_HEADER_LEN as u64,
                remaining: bytes.len() as u64,
            });
        }
        if bytes.starts_with(FOOTER_IDENT) {
            return Err(Error::InvalidField {
                what: "xorb chunk header",
                offset,
                reason: format!(
                    "chunk {index}: found the footer identifier `XETBLOB`, but this input is a run of chunk records without footer"
                ),
            });
        }
        let u24 = |b: &[u8]| u32::from_le_bytes([b[0], b[1], b[2], 0]);
        let version = bytes[0];
        if version != Self::VERSION {
            return Err(Error::InvalidField {
                what: "xorb chunk header version",
                offset,
                reason: format!("chunk {index} has version {version}; only version 0 is defined (§6.2)"),
            });
        }
        let scheme = CompressionScheme::from_u8(bytes[4]).ok_or_else(|| Error::InvalidField {
            what: "xorb chunk compression scheme",
            offset: offset + 4,
            reason: format!(
                "chunk {index} uses scheme {}; only 0 (none), 1 (lz4) and 2 (bg4-lz4) are defined",
                bytes[4]
            ),
        })?;
        let header = ChunkHeader {
            compressed_len: u24(&bytes[1..4]),
            scheme,
            uncompressed_len: u24(&bytes[5..8]),
        };
        header.check(offset, index)?;
        Ok(header)
    }

    /// Checks the limits a reader enforces (§6.2): uncompressed length at most
    /// 131072, payload at most 262144 (xet-core's reader limit), and a payload stored
    /// as is exactly as long as the chunk.
    pub fn validate(&self) -> Result<()> {
        self.check(0, 0)
    }

    fn check(&self, offset: u64, index: u64) -> Result<()> {
        if self.uncompressed_len as usize > MAX_CHUNK_UNCOMPRESSED_LEN {
            return Err(Error::InvalidField {
                what: "xorb chunk uncompressed length",
                offset: offset + 5,
                reason: format!(
                    "chunk {index} declares {} bytes; a chunk holds at most {MAX_CHUNK_UNCOMPRESSED_LEN} (§6.2)",
                    self.uncompressed_len
                ),
            });
        }
        if self.compressed_len as usize > MAX_CHUNK_COMPRESSED_LEN {
            return Err(Error::InvalidField {
                what: "xorb chunk compressed length",
                offset: offset + 1,
                reason: format!(
                    "chunk {index} declares a {}-byte payload; readers accept at most {MAX_CHUNK_COMPRESSED_LEN} (§6.2)",
                    self.compressed_len
                ),
            });
        }
        if self.scheme == CompressionScheme::None && self.compressed_len != self.uncompressed_len {
            return Err(Error::InvalidField {
                what: "xorb chunk compressed length",
                offset: offset + 1,
                reason: format!(
                    "chunk {index} is stored uncompressed, so its payload must be its {} bytes, not {}",
                    self.uncompressed_len, self.compressed_len
                ),
            });
        }
        Ok(())
    }

    /// The 8 header bytes, after [`validate`](Self::validate).
    pub fn to_bytes(self) -> Result<[u8; 8]> {
        self.validate()?;
        Ok(self.to_bytes_unchecked())
    }

    /// The header bytes of a header known to be valid (lengths below 2^24).
    pub(crate) fn to_bytes_unchecked(self) -> [u8; 8] {
        let c = self.compressed_len.to_le_bytes();
        let u = self.uncompressed_len.to_le_bytes();
        [
            Self::VERSION,
            c[0],
            c[1],
            c[2],
            self.scheme.as_u8(),
            u[0],
            u[1],
            u[2],
        ]
    }

    /// Length of the whole record: header plus payload.
    pub fn record_len(&self) -> usize {
        CHUNK_HEADER_LEN + self.compressed_len as usize
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn hello_world_example() {
        // §6.2: `hello world` stored uncompressed is these 19 bytes.
        let want = b"\x00\x0b\x00\x00\x00\x0b\x00\x00hello world";
        let c = crate::xorb::compress_chunk(b"hello world", CompressionScheme::Lz4).unwrap();
        let mut rec = Vec::new();
        c.write_record(&mut rec);
        assert_eq!(rec, want);
        let h = ChunkHeader::parse(want).unwrap();
        assert_eq!(
            h,
            ChunkHeader {
                compressed_len: 11,
                scheme: CompressionScheme::None,
                uncompressed_len: 11
            }
        );
        assert_eq!(h.record_len(), 19);
    }

    #[test]
    fn typed_errors() {
        let ok = [0u8, 0x10, 0, 0, 1, 0x20, 0, 0];
        assert!(ChunkHeader::parse(&ok).is_ok());
        let e = ChunkHeader::parse_at(&ok[..3], 4096, 17).unwrap_err();
        assert_eq!(
            e.to_string(),
            "xorb truncated at byte 4096: chunk 17 header needs 8 bytes, 3 remain"
        );
        let mut v = ok;
        v[0] = 1;
        let e = ChunkHeader::parse_at(&v, 100, 2).unwrap_err();
        assert!(
            matches!(
                e,
                Error::InvalidField {
                    what: "xorb chunk header version",
                    offset: 100,
                    ..
                }
            ),
            "{e}"
        );
        let mut v = ok;
        v[4] = 3;
        let e = ChunkHeader::parse_at(&v, 100, 2).unwrap_err();
        assert!(matches!(
            e,
            Error::InvalidField {
                what: "xorb chunk compression scheme",
                offset: 104,
                ..
            }
        ));
        let mut v = ok;
        v[5..8].copy_from_slice(&[1, 0, 2]); // 131073
        let e = ChunkHeader::parse(&v).unwrap_err();
        assert!(matches!(
            e,
            Error::InvalidField {
                what: "xorb chunk uncompressed length",
                offset: 5,
                ..
            }
        ));
        assert!(e.to_string().contains("131073"));
        let mut v = ok;
        v[1..4].copy_from_slice(&[1, 0, 4]); // 262145
        assert!(matches!(
            ChunkHeader::parse(&v).unwrap_err(),
            Error::InvalidField {
                what: "xorb chunk compressed length",
                ..
            }
        ));
        // Stored as is, but the lengths disagree.
        let v = [0u8, 5, 0, 0, 0, 6, 0, 0];
        assert!(matches!(
            ChunkHeader::parse(&v).unwrap_err(),
            Error::InvalidField {
                what: "xorb chunk compressed length",
                ..
            }
        ));
        assert!(matches!(
            ChunkHeader::parse(b"XETBLOB\x01").unwrap_err(),
            Error::InvalidField {
                what: "xorb chunk header",
                ..
            }
        ));
        // Limits at the edge are fine.
        let h = ChunkHeader {
            compressed_len: MAX_CHUNK_COMPRESSED_LEN as u32,
            scheme: CompressionScheme::Lz4,
            uncompressed_len: MAX_CHUNK_UNCOMPRESSED_LEN as u32,
        };
        assert_eq!(ChunkHeader::parse(&h.to_bytes().unwrap()).unwrap(), h);
        assert!(ChunkHeader {
            compressed_len: 1 << 24,
            ..h
        }
        .to_bytes()
        .is_err());
    }

    proptest! {
        #[test]
        fn parse_never_panics_and_round_trips(bytes in proptest::collection::vec(any::<u8>(), 0..12)) {
            if let Ok(h) = ChunkHeader::parse(&bytes) {
                prop_assert_eq!(&h.to_bytes().unwrap()[..], &bytes[..8]);
            }
        }
    }
}
