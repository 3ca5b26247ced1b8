//! Xorbs (XET-PROTOCOL.md §6): the storage objects that hold chunks.
//!
//! A xorb body is a sequence of chunk records, `[8-byte header][payload]` each, with
//! no file header (§6.2); a stored xorb may end with a footer (§6.5). Clients upload
//! the body alone.
//!
//! - Writing: [`XorbBuilder`] collects chunks, compresses them under a
//!   [`CompressionPolicy`] (the official client's `auto` heuristic included, so the
//!   bytes match its uploads) and gives a [`SerializedXorb`]: hash, body, and the
//!   per-chunk offsets a shard needs. [`compress_chunk`] and [`SchemeSelector`] are
//!   the pieces, for callers that compress on several threads.
//! - Reading: [`ChunkRecords`] and [`decode_chunk_run`] for a run of records (a
//!   ranged download), [`decode_xorb`] for a whole xorb, [`validate_xorb`] for what
//!   a CAS server checks before storing an upload. [`XorbObjectInfo`] is the footer.
//!
//! ```
//! use xet_format::{hash::chunk_hash, xorb::*};
//! let mut b = XorbBuilder::new(CompressionPolicy::Lz4);
//! let chunk = vec![42u8; 5000];
//! assert!(b.add_chunk(chunk_hash(&chunk), &chunk).unwrap());
//! let xorb = b.finish();
//! assert!(xorb.body.len() < 100); // compressed
//! let summary = validate_xorb(&xorb.body, &xorb.hash).unwrap();
//! assert_eq!(summary.chunks, [(chunk_hash(&chunk), 5000)]);
//! ```
//!
//! Decoders take hostile input: any malformed byte gives an [`Error`](crate::Error)
//! naming the offset (and chunk), never a panic, and no chunk makes them produce or
//! allocate more than its declared uncompressed length, at most 131072 bytes.

mod builder;
mod compression;
mod footer;
mod header;
mod reader;
#[cfg(test)]
mod testing;

pub use builder::{SerializedXorb, XorbBuilder, XorbChunkInfo};
pub use compression::{
    bg4_recommended, bg4_regroup, bg4_split, compress_chunk, predict_scheme, CompressedChunk,
    CompressionPolicy, CompressionScheme, SchemeSelector, COMPRESSION_SCHEME_RETEST_INTERVAL,
};
pub use footer::{XorbObjectInfo, FOOTER_BUFFER_LEN, FOOTER_NONCE_LEN};
pub use header::ChunkHeader;
pub use reader::{
    decode_chunk_run, decode_xorb, validate_xorb, ChunkRecord, ChunkRecords, DecodedChunk,
    DecodedChunkRecords, DecodedXorb, XorbSummary,
};

/// Largest serialized xorb: 64 MiB (§1, §6.1; the server rejects larger).
pub const MAX_XORB_BYTES: usize = 64 * 1024 * 1024;

/// Most chunks in one xorb: 8192 (§1; spec deduplication page, xet-core
/// `MAX_XORB_CHUNKS`; §14 #13).
pub const MAX_XORB_CHUNKS: usize = 8192;

/// Length of a chunk header (§6.2).
pub const CHUNK_HEADER_LEN: usize = 8;

/// Largest uncompressed chunk a header may declare: the chunker's maximum, 131072
/// (§1, §6.2; xet-core readers enforce it strictly).
pub const MAX_CHUNK_UNCOMPRESSED_LEN: usize = crate::chunker::MAX_CHUNK_SIZE;

/// Largest payload a reader accepts: twice the maximum chunk, 262144 (xet-core
/// `xorb_chunk_format.rs` rejects more, §6.2). Writers never exceed the chunk's own
/// length, since a chunk that does not shrink is stored as is.
pub const MAX_CHUNK_COMPRESSED_LEN: usize = 2 * crate::chunker::MAX_CHUNK_SIZE;

/// Most bytes of chunk records [`validate_xorb`] accepts: 64 MiB plus one header per
/// chunk. The official client cuts xorbs on *uncompressed* size (§6.1, §14 #14), so
/// an incompressible xorb of 64 MiB of chunks serializes to 64 MiB plus 8 bytes per
/// chunk; a server must accept those.
pub const MAX_XORB_BYTES_ACCEPTED: usize = MAX_XORB_BYTES + CHUNK_HEADER_LEN * MAX_XORB_CHUNKS;
