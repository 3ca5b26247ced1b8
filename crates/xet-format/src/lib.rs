//! Bytes and hashes of the Xet storage protocol (spec v1.1), byte-exact with the
//! official client. Nothing else: synchronous, no I/O of its own, no async runtime,
//! no HTTP, no environment.
//!
//! # Tour
//!
//! - [`MerkleHash`]: the 32-byte hash and its protocol string form.
//! - [`chunker`]: gear-hash content-defined chunking (streaming, one-shot, parallel).
//! - [`hash`]: chunk hashes, the Merkle aggregation (xorb and file hashes), term
//!   verification hashes, keyed chunk hashes, SHA-256.
//! - [`FileHasher`], [`digest_slice`], [`digest_reader`], [`digest_read_at`]: a whole
//!   file's chunks, file hash, size and SHA-256 in one pass, on one or more threads.
//! - [`xorb`]: chunk records with None / LZ4 / BG4+LZ4 compression, the
//!   [`xorb::XorbBuilder`] with the official `auto` policy, the footer, and the
//!   hardened readers a server ([`xorb::validate_xorb`]) and a downloader
//!   ([`xorb::ChunkRecords`]) use.
//! - [`shard`]: shards in upload and full form, the client's [`shard::ShardBuilder`],
//!   the server's checks and keyed global-dedup responses.
//! - [`lfs_pointer`]: Git LFS pointer files.
//! - [`api`]: serde types of the CAS HTTP API's JSON bodies, shared by server and
//!   client.
//!
//! ```
//! let d = xet_format::digest_slice(b"hello world", true, 1);
//! assert_eq!(d.file_hash.to_string(), "f15edd43b7e85cfd25e2758ffe13b99fdd09dfa817e8d9f6548722a7a126db7f");
//! assert_eq!(d.chunks.len(), 1);
//! ```
//!
//! # Limits
//!
//! Decoders treat their input as hostile: malformed bytes give an [`Error`], never a
//! panic, and no decoder allocates more than its input justifies. Section numbers in
//! comments refer to `XET-PROTOCOL.md`, the project's protocol fact sheet.

#![deny(missing_docs)]

pub mod api;
pub mod bufpool;
pub mod chunker;
mod digest;
mod error;
pub mod hash;
pub mod lfs_pointer;
mod merkle_hash;
pub mod shard;
#[cfg(test)]
mod test_support;
pub mod xorb;

pub use digest::{digest_read_at, digest_reader, digest_slice, AlignedBuf, FileDigest, FileHasher, ReadAt};
pub use error::{Error, Result};
pub use merkle_hash::MerkleHash;
