//! [`MerkleHash`]: the 32-byte hash used for chunks, xorbs, files and verification
//! ranges, and its protocol string form (XET-PROTOCOL.md §2).

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// A 32-byte Xet hash, stored as its raw bytes (the BLAKE3 output as written into
/// shards and xorb footers).
///
/// Its string form is **not** a byte-wise hex dump: the 32 bytes are read as four
/// little-endian `u64` words and each is printed as 16 lowercase hex digits
/// (XET-PROTOCOL.md §2, spec "Converting Hashes to Strings"). That string form is what
/// appears in URLs, JSON and CLI output; [`Display`](fmt::Display), [`FromStr`] and serde
/// use it.
///
/// ```
/// use xet_format::MerkleHash;
/// let raw: [u8; 32] = std::array::from_fn(|i| i as u8);
/// let h = MerkleHash::from_bytes(raw);
/// assert_eq!(h.to_string(), "07060504030201000f0e0d0c0b0a090817161514131211101f1e1d1c1b1a1918");
/// assert_eq!(h.to_string().parse::<MerkleHash>().unwrap(), h);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct MerkleHash([u8; 32]);

impl MerkleHash {
    /// The all-zero hash: the hash of the empty file and of the empty xorb.
    pub const ZERO: MerkleHash = MerkleHash([0; 32]);
    /// The all-ones hash: the shard "bookend" marker, never a real hash.
    pub const BOOKEND: MerkleHash = MerkleHash([0xff; 32]);

    /// Wraps raw hash bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        MerkleHash(bytes)
    }

    /// Reads a hash from the first 32 bytes of `bytes`, or `None` if there are fewer.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        bytes.get(..32).map(|b| {
            let mut out = [0u8; 32];
            out.copy_from_slice(b);
            MerkleHash(out)
        })
    }

    /// The raw bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The raw bytes, by value.
    pub const fn to_bytes(self) -> [u8; 32] {
        self.0
    }

    /// The four little-endian `u64` words `w0..w3` (xet-core's in-memory form).
    pub fn words(&self) -> [u64; 4] {
        std::array::from_fn(|i| self.word(i))
    }

    fn word(&self, i: usize) -> u64 {
        let mut w = [0u8; 8];
        w.copy_from_slice(&self.0[i * 8..i * 8 + 8]);
        u64::from_le_bytes(w)
    }

    /// Builds a hash from its four words (inverse of [`words`](Self::words)).
    pub fn from_words(words: [u64; 4]) -> Self {
        let mut out = [0u8; 32];
        for (i, w) in words.iter().enumerate() {
            out[i * 8..i * 8 + 8].copy_from_slice(&w.to_le_bytes());
        }
        MerkleHash(out)
    }

    /// `w3` (bytes 24..32 as little-endian `u64`): the integer the global-dedup
    /// eligibility rule and the Merkle grouping rule test (XET-PROTOCOL.md §2).
    pub fn w3(&self) -> u64 {
        self.word(3)
    }

    /// `w0` (bytes 0..8 as little-endian `u64`): the "truncated hash" keying shard
    /// lookup tables (XET-PROTOCOL.md §7.5).
    pub fn w0(&self) -> u64 {
        self.word(0)
    }

    /// Whether a chunk with this hash is eligible for the global-dedup query by its
    /// hash alone: `w3 % 1024 == 0` (XET-PROTOCOL.md §8.2). The first chunk of every
    /// file is eligible too; that rule is the caller's.
    pub fn is_global_dedup_eligible(&self) -> bool {
        self.w3().is_multiple_of(1024)
    }

    /// Parses the 64-character string form.
    pub fn from_hex(s: &str) -> Result<Self> {
        let err = |reason| Error::InvalidHashString {
            input: s.chars().take(80).collect(),
            reason,
        };
        let b = s.as_bytes();
        if b.len() != 64 {
            return Err(err("expected 64 hexadecimal characters"));
        }
        let mut words = [0u64; 4];
        for (i, word) in words.iter_mut().enumerate() {
            let mut v = 0u64;
            for &c in &b[i * 16..i * 16 + 16] {
                let d = match c {
                    b'0'..=b'9' => c - b'0',
                    b'a'..=b'f' => c - b'a' + 10,
                    b'A'..=b'F' => c - b'A' + 10,
                    _ => return Err(err("contains a character that is not hexadecimal")),
                };
                v = (v << 4) | u64::from(d);
            }
            *word = v;
        }
        Ok(Self::from_words(words))
    }

    /// The 64-character string form (same as `to_string()`).
    pub fn to_hex(&self) -> String {
        self.to_string()
    }

    /// Converts a conventional SHA-256 digest to the byte order a shard's
    /// `FileMetadataExt` stores: each 8-byte group reversed, so that this hash's string
    /// form equals the conventional SHA-256 hex (XET-PROTOCOL.md §2, §14 #4).
    pub fn from_sha256_digest(digest: [u8; 32]) -> Self {
        let mut out = digest;
        for group in out.chunks_exact_mut(8) {
            group.reverse();
        }
        MerkleHash(out)
    }

    /// Inverse of [`from_sha256_digest`](Self::from_sha256_digest).
    pub fn to_sha256_digest(&self) -> [u8; 32] {
        let mut out = self.0;
        for group in out.chunks_exact_mut(8) {
            group.reverse();
        }
        out
    }
}

impl fmt::Display for MerkleHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut buf = [0u8; 64];
        for (i, w) in self.words().iter().enumerate() {
            for j in 0..16 {
                buf[i * 16 + j] = HEX[((w >> (60 - 4 * j)) & 0xf) as usize];
            }
        }
        // The buffer holds only ASCII hex digits.
        f.write_str(std::str::from_utf8(&buf).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for MerkleHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MerkleHash({self})")
    }
}

impl FromStr for MerkleHash {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::from_hex(s)
    }
}

impl From<[u8; 32]> for MerkleHash {
    fn from(b: [u8; 32]) -> Self {
        MerkleHash(b)
    }
}

impl AsRef<[u8]> for MerkleHash {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl serde::Serialize for MerkleHash {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for MerkleHash {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = MerkleHash;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a 64-character Xet hash string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> std::result::Result<MerkleHash, E> {
                MerkleHash::from_hex(v).map_err(E::custom)
            }
        }
        d.deserialize_str(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn spec_string_form_example() {
        let raw: [u8; 32] = std::array::from_fn(|i| i as u8);
        assert_eq!(
            MerkleHash::from_bytes(raw).to_string(),
            "07060504030201000f0e0d0c0b0a090817161514131211101f1e1d1c1b1a1918"
        );
    }

    #[test]
    fn rejects_bad_strings() {
        for s in [
            "",
            "00",
            &"g".repeat(64),
            &"0".repeat(63),
            &"0".repeat(65),
            &"é".repeat(32),
        ] {
            assert!(
                matches!(MerkleHash::from_hex(s), Err(Error::InvalidHashString { .. })),
                "{s:?}"
            );
        }
    }

    #[test]
    fn uppercase_accepted() {
        let h: MerkleHash = "A4D4ED80FCB2FE5177FC59321D3E6F90FAF23E35A48D58303114BF073F34178A"
            .parse()
            .unwrap();
        assert_eq!(
            h.to_string(),
            "a4d4ed80fcb2fe5177fc59321d3e6f90faf23e35a48d58303114bf073f34178a"
        );
    }

    #[test]
    fn sha256_group_reversal() {
        // XET-PROTOCOL.md §2: sha256("hello world") and the bytes stored in a shard.
        let digest = hex32("b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9");
        let stored = MerkleHash::from_sha256_digest(digest);
        assert_eq!(
            stored.as_bytes(),
            &hex32("083e4d93b9274db9faab7ddad7522ea5ee80537ae3ef84c4e9cdefe2acf78890")
        );
        assert_eq!(
            stored.to_string(),
            "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"
        );
        assert_eq!(stored.to_sha256_digest(), digest);
    }

    #[test]
    fn serde_uses_string_form() {
        let h = MerkleHash::from_bytes([7; 32]);
        let j = serde_json::to_string(&h).unwrap();
        assert_eq!(j, format!("\"{h}\""));
        assert_eq!(serde_json::from_str::<MerkleHash>(&j).unwrap(), h);
        assert!(serde_json::from_str::<MerkleHash>("\"xyz\"").is_err());
    }

    fn hex32(s: &str) -> [u8; 32] {
        std::array::from_fn(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
    }

    proptest! {
        #[test]
        fn string_round_trip(bytes in any::<[u8; 32]>()) {
            let h = MerkleHash::from_bytes(bytes);
            prop_assert_eq!(MerkleHash::from_hex(&h.to_string()).unwrap(), h);
            prop_assert_eq!(MerkleHash::from_words(h.words()), h);
        }

        #[test]
        fn parse_never_panics(s in ".{0,80}") {
            let _ = MerkleHash::from_hex(&s);
        }
    }
}
