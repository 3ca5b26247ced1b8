//! The crate's single error type.

use crate::MerkleHash;

/// Everything that can go wrong while parsing or producing Xet bytes.
///
/// Decoders treat their input as hostile: every malformed input maps to one of these
/// variants, never to a panic. Messages say what failed, where, and what it means.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A hash string is not 64 hexadecimal characters.
    #[error("invalid hash string {input:?}: {reason}")]
    InvalidHashString {
        /// The offending input (cut to 80 characters).
        input: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The input ends before a structure that must be there.
    #[error("{what} truncated at byte {offset}: needs {needed} bytes, {remaining} remain")]
    Truncated {
        /// The structure being read.
        what: &'static str,
        /// Byte offset of that structure in the input.
        offset: u64,
        /// Bytes it needs.
        needed: u64,
        /// Bytes left in the input.
        remaining: u64,
    },
    /// A magic number or identifier does not match.
    #[error("{what} at byte {offset} has the wrong magic bytes: this is not a Xet {what}")]
    BadMagic {
        /// The structure whose magic is wrong.
        what: &'static str,
        /// Byte offset of the magic.
        offset: u64,
    },
    /// A structure declares a version this implementation does not read.
    #[error("{what} version {version} is not supported (expected {expected})")]
    UnsupportedVersion {
        /// The versioned structure.
        what: &'static str,
        /// The version found.
        version: u64,
        /// The version(s) understood.
        expected: &'static str,
    },
    /// A field holds a value the format forbids.
    #[error("invalid {what} at byte {offset}: {reason}")]
    InvalidField {
        /// The field.
        what: &'static str,
        /// Byte offset of the field.
        offset: u64,
        /// Why it is invalid.
        reason: String,
    },
    /// A compressed chunk payload does not decompress to its declared size.
    #[error("chunk {chunk_index} at byte {offset} failed to decompress: {reason}")]
    Decompression {
        /// Index of the chunk in its xorb.
        chunk_index: u64,
        /// Byte offset of the chunk header.
        offset: u64,
        /// The decompressor's complaint.
        reason: String,
    },
    /// A size or count limit of the protocol would be exceeded.
    #[error("{what} exceeds the limit: {actual} > {limit}")]
    LimitExceeded {
        /// What is limited.
        what: &'static str,
        /// The limit.
        limit: u64,
        /// The value found or requested.
        actual: u64,
    },
    /// Content does not hash to the hash it claims.
    #[error("{what} hash mismatch: expected {expected}, computed {actual}")]
    HashMismatch {
        /// What was hashed.
        what: &'static str,
        /// The claimed hash.
        expected: MerkleHash,
        /// The computed hash.
        actual: MerkleHash,
    },
    /// A Git LFS pointer file is malformed.
    #[error("invalid Git LFS pointer: {reason}")]
    InvalidLfsPointer {
        /// What is wrong with it.
        reason: String,
    },
    /// A xorb's run of chunk records ends inside a record (XET-PROTOCOL.md §6.2). Kept
    /// apart from [`Error::Truncated`] so that the message names the chunk: a reader
    /// walks records sequentially, and the chunk index is what a user compares with a
    /// shard or a reconstruction term.
    #[error("xorb truncated at byte {offset}: chunk {chunk_index} {part} needs {needed} bytes, {remaining} remain")]
    XorbTruncated {
        /// Index of the chunk whose record is cut, counted from the start of the run.
        chunk_index: u64,
        /// The part of the record that is cut: `"header"` or `"payload"`.
        part: &'static str,
        /// Byte offset of that part.
        offset: u64,
        /// Bytes it needs.
        needed: u64,
        /// Bytes left in the input.
        remaining: u64,
    },
    /// A name (of a compression policy, for instance) is not one this crate knows.
    #[error("unknown {what} {input:?}: expected one of {expected}")]
    UnknownName {
        /// What was being named.
        what: &'static str,
        /// The offending input (cut to 80 characters).
        input: String,
        /// The accepted names.
        expected: &'static str,
    },
    /// A shard references a xorb the caller does not have (server-side shard checks,
    /// XET-PROTOCOL.md §7.4: every referenced xorb must be uploaded before the shard).
    #[error("{what} references xorb {xorb_hash}, which is not stored: upload the xorb before the shard")]
    UnknownXorb {
        /// What references it, e.g. `file <hash> term 3` or `CAS entry 0`.
        what: String,
        /// The missing xorb.
        xorb_hash: MerkleHash,
    },
    /// A shard's content is inconsistent, or does not match the xorbs it references:
    /// the semantic checks run on a decoded or built shard (XET-PROTOCOL.md §4.6, §7.3,
    /// §7.4), where a byte offset would mean nothing. A server answers it with 400.
    #[error("invalid shard content in {location}: {reason}")]
    InvalidShardContent {
        /// Where, e.g. `file <hash> term 2` or `xorb <hash> chunk 7`.
        location: String,
        /// What is wrong and what was expected.
        reason: String,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn truncated(what: &'static str, offset: usize, needed: usize, remaining: usize) -> Self {
        Error::Truncated {
            what,
            offset: offset as u64,
            needed: needed as u64,
            remaining: remaining as u64,
        }
    }

    pub(crate) fn invalid(what: &'static str, offset: usize, reason: impl Into<String>) -> Self {
        Error::InvalidField {
            what,
            offset: offset as u64,
            reason: reason.into(),
        }
    }
}
