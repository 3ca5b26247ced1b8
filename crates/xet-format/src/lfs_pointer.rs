//! Git LFS pointer files (git-lfs `docs/spec.md`, spec v1; XET-PROTOCOL.md §12.1):
//! what Xet-backed Hub repositories still keep in git for each large file.
//!
//! ```
//! use xet_format::lfs_pointer::LfsPointer;
//! let text = "version https://git-lfs.github.com/spec/v1\n\
//!             oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\n\
//!             size 12345\n";
//! let p = LfsPointer::parse(text.as_bytes()).unwrap();
//! assert_eq!(p.size, 12345);
//! assert_eq!(p.to_string(), text);
//! ```
//!
//! Parsing is strict about the canonical form the spec asks writers to produce, since
//! the pointer's git blob id depends on every byte: `\n` line ends (no `\r`), one space
//! after each key, `version` first, the other keys in ascending order without repeats,
//! lowercase hex, a plain decimal size. git-lfs itself is more forgiving on input (it
//! trims whitespace and accepts `\r\n`), but it marks such pointers non-canonical.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// The version URL every writer uses (spec v1).
pub const SPEC_V1: &str = "https://git-lfs.github.com/spec/v1";
/// The pre-release version URL; the spec says git-lfs reads it (and writes
/// [`SPEC_V1`] instead).
pub const SPEC_V1_HAWSER: &str = "https://hawser.github.com/spec/v1";
/// Blobs of this many bytes or more are never pointers (git-lfs `BlobSizeCutoff`,
/// which it compares with `>=`).
pub const MAX_POINTER_BYTES: usize = 1024;

/// A parsed Git LFS pointer: the file's SHA-256 and size, and any other keys it had.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LfsPointer {
    /// SHA-256 of the file contents (the conventional digest, printed in order).
    pub oid_sha256: [u8; 32],
    /// File size in bytes. git-lfs reads it as an `i64`, so a pointer holds at most
    /// `i64::MAX`.
    pub size: u64,
    /// Keys other than `version`, `oid` and `size` (e.g. git-lfs's
    /// `ext-<n>-<name>` extensions), sorted by key: the spec requires tools that
    /// regenerate pointers to keep keys they do not know.
    extensions: Vec<(String, String)>,
}

impl LfsPointer {
    /// A pointer with no extension keys.
    pub fn new(oid_sha256: [u8; 32], size: u64) -> Self {
        LfsPointer {
            oid_sha256,
            size,
            extensions: Vec::new(),
        }
    }

    /// Parses a pointer file (see the module docs for what is accepted).
    pub fn parse(bytes: &[u8]) -> Result<LfsPointer> {
        if bytes.len() >= MAX_POINTER_BYTES {
            return Err(bad(format!(
                "{} bytes: git-lfs treats blobs of {MAX_POINTER_BYTES} bytes or more as file contents",
                bytes.len()
            )));
        }
        let text = std::str::from_utf8(bytes).map_err(|e| bad(format!("not UTF-8: {e}")))?;
        if text.is_empty() {
            // git-lfs reads an empty blob as the pointer to the empty object; here it
            // is simply an empty file, not a pointer to download.
            return Err(bad("empty input"));
        }
        let body = text
            .strip_suffix('\n')
            .ok_or_else(|| bad("the last line does not end with \\n"))?;

        let mut oid = None;
        let mut size = None;
        let mut extensions = Vec::new();
        let mut previous: Option<&str> = None;
        for (i, line) in body.split('\n').enumerate() {
            let n = i + 1;
            if line.contains('\r') {
                return Err(bad(format!("line {n} contains \\r: lines end with \\n alone")));
            }
            let (key, value) = line
                .split_once(' ')
                .ok_or_else(|| bad(format!("line {n} {line:?} is not `key value`")))?;
            check_key(key, n)?;
            if value.is_empty() || value.starts_with(' ') {
                return Err(bad(format!(
                    "line {n}: key {key:?} must be followed by exactly one space and a value"
                )));
            }
            if i == 0 {
                if key != "version" {
                    return Err(bad(format!("the first key is {key:?}, not \"version\"")));
                }
                if value != SPEC_V1 && value != SPEC_V1_HAWSER {
                    return Err(bad(format!("unknown version {value:?} (expected {SPEC_V1:?})")));
                }
                continue;
            }
            if let Some(p) = previous {
                if key <= p {
                    return Err(bad(format!(
                        "key {key:?} on line {n} comes after {p:?}: keys after version are sorted and unique"
                    )));
                }
            }
            previous = Some(key);
            match key {
                "version" => return Err(bad(format!("line {n} repeats \"version\""))),
                "oid" => oid = Some(parse_oid(value)?),
                "size" => size = Some(parse_size(value)?),
                _ => extensions.push((key.to_string(), value.to_string())),
            }
        }
        Ok(LfsPointer {
            oid_sha256: oid.ok_or_else(|| bad("no \"oid\" line"))?,
            size: size.ok_or_else(|| bad("no \"size\" line"))?,
            extensions,
        })
    }

    /// Keys other than `version`, `oid` and `size`, with their values, sorted by key.
    pub fn extensions(&self) -> &[(String, String)] {
        &self.extensions
    }

    /// Adds (or replaces) a key that is not `version`, `oid` or `size`. The key must
    /// use only `[a-z0-9.-]`; the value must be non-empty, without `\r`, `\n` or a
    /// leading space.
    pub fn with_extension(mut self, key: &str, value: &str) -> Result<Self> {
        check_key(key, 0)?;
        if matches!(key, "version" | "oid" | "size") {
            return Err(bad(format!("{key:?} is not an extension key")));
        }
        if value.is_empty() || value.starts_with(' ') || value.contains(['\r', '\n']) {
            return Err(bad(format!(
                "value {value:?} of key {key:?} cannot be written on one line"
            )));
        }
        match self.extensions.binary_search_by(|(k, _)| k.as_str().cmp(key)) {
            Ok(i) => self.extensions[i].1 = value.to_string(),
            Err(i) => self.extensions.insert(i, (key.to_string(), value.to_string())),
        }
        Ok(self)
    }

    /// The oid as 64 lowercase hex digits (the SHA-256 in conventional order).
    pub fn oid_hex(&self) -> String {
        crate::hash::hex(&self.oid_sha256)
    }
}

impl fmt::Display for LfsPointer {
    /// The canonical pointer text: `version`, then the other keys in order, each line
    /// ending in `\n`. Without extensions:
    /// `version https://git-lfs.github.com/spec/v1\noid sha256:<hex>\nsize <n>\n`.
    /// (git-lfs writes an empty blob for a size-0 pointer; this always writes the
    /// three lines.)
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "version {SPEC_V1}")?;
        let oid = format!("sha256:{}", self.oid_hex());
        let size = self.size.to_string();
        let mut lines: Vec<(&str, &str)> = vec![("oid", &oid), ("size", &size)];
        lines.extend(self.extensions.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        lines.sort_by(|a, b| a.0.cmp(b.0));
        for (k, v) in lines {
            writeln!(f, "{k} {v}")?;
        }
        Ok(())
    }
}

impl FromStr for LfsPointer {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s.as_bytes())
    }
}

fn bad(reason: impl Into<String>) -> Error {
    Error::InvalidLfsPointer {
        reason: reason.into(),
    }
}

/// Keys use only `[a-z] [0-9] . -` (spec).
fn check_key(key: &str, line: usize) -> Result<()> {
    if key.is_empty()
        || !key
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
    {
        let at = if line == 0 {
            String::new()
        } else {
            format!(" on line {line}")
        };
        return Err(bad(format!("key {key:?}{at} may only use a-z, 0-9, '.' and '-'")));
    }
    Ok(())
}

fn parse_oid(value: &str) -> Result<[u8; 32]> {
    let hex = value.strip_prefix("sha256:").ok_or_else(|| {
        bad(format!(
            "oid {value:?} is not `sha256:<hex>` (sha256 is the only oid type)"
        ))
    })?;
    let b = hex.as_bytes();
    if b.len() != 64 || !b.iter().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c)) {
        return Err(bad(format!("oid {hex:?} is not 64 lowercase hexadecimal digits")));
    }
    let nibble = |c: u8| {
        if c.is_ascii_digit() {
            c - b'0'
        } else {
            c - b'a' + 10
        }
    };
    Ok(std::array::from_fn(|i| {
        (nibble(b[2 * i]) << 4) | nibble(b[2 * i + 1])
    }))
}

fn parse_size(value: &str) -> Result<u64> {
    let canonical = !value.is_empty()
        && value.bytes().all(|c| c.is_ascii_digit())
        && (value == "0" || !value.starts_with('0'));
    if !canonical {
        return Err(bad(format!("size {value:?} is not a plain decimal number")));
    }
    match value.parse::<i64>() {
        Ok(n) => Ok(n as u64),
        Err(_) => Err(bad(format!("size {value} does not fit git-lfs's i64"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const OID: &str = "4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393";

    fn text(lines: &[&str]) -> String {
        lines.iter().map(|l| format!("{l}\n")).collect()
    }

    fn canonical(size: &str) -> String {
        text(&[
            &format!("version {SPEC_V1}"),
            &format!("oid sha256:{OID}"),
            &format!("size {size}"),
        ])
    }

    #[test]
    fn spec_example() {
        let t = canonical("12345");
        let p = LfsPointer::parse(t.as_bytes()).unwrap();
        assert_eq!(p.oid_hex(), OID);
        assert_eq!(p.size, 12345);
        assert!(p.extensions().is_empty());
        assert_eq!(p.to_string(), t);
        assert_eq!(t.parse::<LfsPointer>().unwrap(), p);
        assert_eq!(LfsPointer::new(p.oid_sha256, 12345), p);
    }

    #[test]
    fn hello_world_pointer() {
        // §2: sha256("hello world").
        let p = LfsPointer::new(crate::hash::sha256(b"hello world"), 11);
        assert_eq!(
            p.to_string(),
            "version https://git-lfs.github.com/spec/v1\n\
             oid sha256:b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9\n\
             size 11\n"
        );
    }

    #[test]
    fn legacy_version_is_read_and_rewritten() {
        let t = text(&[
            &format!("version {SPEC_V1_HAWSER}"),
            &format!("oid sha256:{OID}"),
            "size 1",
        ]);
        let p = LfsPointer::parse(t.as_bytes()).unwrap();
        assert_eq!(p.to_string(), canonical("1"));
    }

    #[test]
    fn extensions_are_kept_in_order() {
        let ext = format!("ext-0-foo sha256:{OID}");
        let t = text(&[
            &format!("version {SPEC_V1}"),
            &ext,
            &format!("oid sha256:{OID}"),
            "size 7",
            "x-hub yes please",
        ]);
        let p = LfsPointer::parse(t.as_bytes()).unwrap();
        assert_eq!(p.extensions().len(), 2);
        assert_eq!(p.extensions()[1], ("x-hub".to_string(), "yes please".to_string()));
        assert_eq!(p.to_string(), t);
        let q = LfsPointer::new(p.oid_sha256, 7)
            .with_extension("x-hub", "no")
            .unwrap()
            .with_extension("ext-0-foo", &format!("sha256:{OID}"))
            .unwrap()
            .with_extension("x-hub", "yes please")
            .unwrap();
        assert_eq!(q, p);
        assert!(LfsPointer::new([0; 32], 1).with_extension("Oid", "x").is_err());
        assert!(LfsPointer::new([0; 32], 1).with_extension("size", "x").is_err());
        assert!(LfsPointer::new([0; 32], 1).with_extension("a", "x\ny").is_err());
    }

    #[test]
    fn rejects() {
        let v = format!("version {SPEC_V1}");
        let o = format!("oid sha256:{OID}");
        let long = format!("x {}", "a".repeat(1000));
        let cases: Vec<(&str, String)> = vec![
            ("empty", String::new()),
            ("missing oid", text(&[&v, "size 1"])),
            ("missing size", text(&[&v, &o])),
            ("missing version", text(&[&o, "size 1"])),
            ("wrong order", text(&[&v, "size 1", &o])),
            ("repeated key", text(&[&v, &o, &o, "size 1"])),
            ("repeated version", text(&[&v, &o, "size 1", &v])),
            (
                "unknown version",
                text(&["version https://git-lfs.github.com/spec/v2", &o, "size 1"]),
            ),
            ("bad oid type", text(&[&v, &format!("oid sha1:{OID}"), "size 1"])),
            (
                "uppercase oid",
                text(&[&v, &format!("oid sha256:{}", OID.to_uppercase()), "size 1"]),
            ),
            (
                "short oid",
                text(&[&v, &format!("oid sha256:{}", &OID[1..]), "size 1"]),
            ),
            ("size overflow", text(&[&v, &o, "size 99999999999999999999"])),
            ("size beyond i64", text(&[&v, &o, "size 9223372036854775808"])),
            ("negative size", text(&[&v, &o, "size -1"])),
            ("plus size", text(&[&v, &o, "size +1"])),
            ("leading zero", text(&[&v, &o, "size 01"])),
            ("crlf", canonical("1").replace('\n', "\r\n")),
            ("no final newline", canonical("1").trim_end().to_string()),
            ("blank line", text(&[&v, "", &o, "size 1"])),
            ("two spaces", text(&[&v, &o.replace(' ', "  "), "size 1"])),
            ("uppercase key", text(&[&v, &o, "size 1", "X-a b"])),
            ("too big", text(&[&v, &o, "size 1", &long])),
            ("no value", text(&[&v, &o, "size 1", "zzz"])),
        ];
        for (what, t) in cases {
            match LfsPointer::parse(t.as_bytes()) {
                Err(Error::InvalidLfsPointer { .. }) => {}
                other => panic!("{what}: {other:?}"),
            }
        }
        assert!(LfsPointer::parse(&[0xff, b'\n']).is_err());
        // The size limit is git-lfs's: 1023 bytes may be a pointer, 1024 may not.
        let pad = |n: usize| {
            let base = canonical("1");
            let extra = n - base.len() - 3;
            format!("{base}x {}\n", "a".repeat(extra))
        };
        assert!(LfsPointer::parse(pad(1023).as_bytes()).is_ok());
        assert!(LfsPointer::parse(pad(1024).as_bytes()).is_err());
    }

    #[test]
    fn largest_size() {
        let t = canonical(&i64::MAX.to_string());
        assert_eq!(LfsPointer::parse(t.as_bytes()).unwrap().size, i64::MAX as u64);
        assert_eq!(LfsPointer::parse(canonical("0").as_bytes()).unwrap().size, 0);
    }

    proptest! {
        #[test]
        fn round_trip(oid in any::<[u8; 32]>(), size in 0..=i64::MAX as u64) {
            let p = LfsPointer::new(oid, size);
            let t = p.to_string();
            prop_assert_eq!(LfsPointer::parse(t.as_bytes()).unwrap(), p);
        }

        #[test]
        fn never_panics_and_reparses(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            if let Ok(p) = LfsPointer::parse(&bytes) {
                prop_assert_eq!(LfsPointer::parse(p.to_string().as_bytes()).unwrap(), p);
            }
        }

        #[test]
        fn mutated_pointers(pos in any::<prop::sample::Index>(), b in any::<u8>()) {
            let mut t = canonical("12345").into_bytes();
            let i = pos.index(t.len());
            t[i] = b;
            if let Ok(p) = LfsPointer::parse(&t) {
                prop_assert_eq!(LfsPointer::parse(p.to_string().as_bytes()).unwrap(), p);
            }
        }
    }
}
