//! The storage engine behind a Xet CAS: it accepts xorbs and shards only once they
//! are proven sound, keeps them durably, and answers reconstruction, byte-range and
//! global-dedup queries. No HTTP here: `xet-server` puts the CAS API on top, and
//! `xet-transfer`'s in-process `LocalCas` calls it directly.
//!
//! # Tour
//!
//! - [`Store`]: open with a [`StoreConfig`], then [`Store::put_xorb`],
//!   [`Store::put_shard`], [`Store::reconstruction`], [`Store::open_xorb_range`] (streamed byte ranges),
//!   [`Store::dedup_shard`], [`Store::file_size`].
//! - [`Reconstruction`]: terms and per-xorb chunk/byte ranges, without URLs (the
//!   HTTP layer signs those).
//! - [`FileChunkHashes`] and [`HashSubtree`]: what a client re-uploading an edited
//!   file needs ([`Store::file_chunk_hashes`]).
//! - [`Error`] with [`Error::kind`]: one class per HTTP status.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let dir = std::env::temp_dir().join(format!("xet-store-doctest-{}", std::process::id()));
//! let store = xet_store::Store::open(xet_store::StoreConfig::local(&dir)).await.unwrap();
//! let unknown = xet_format::MerkleHash::from_bytes([1; 32]);
//! assert!(store.reconstruction(&unknown, None).await.unwrap_err().is_not_found());
//! # std::fs::remove_dir_all(&dir).unwrap();
//! # });
//! ```
//!
//! # Guarantees and limits
//!
//! Objects are written atomically and in dependency order (xorbs, then the shard,
//! then its files and dedup entries), so a crash at any point never leaves a file
//! that is visible but not downloadable, and everything acknowledged is durable.
//! Validation uses `xet-format`'s decoders, which treat input as hostile. Section
//! numbers in comments refer to `XET-PROTOCOL.md`.

#![deny(missing_docs)]

mod backend;
mod chunk_hashes;
mod error;
mod reconstruction;
mod store;

pub use backend::S3Config;
pub use chunk_hashes::{FileChunkHashes, HashSubtree};
pub use error::{Error, ErrorKind, Result};
pub use reconstruction::{Reconstruction, XorbMeta};
pub use store::{
    ShardProgress, StagedUpload, Store, StoreConfig, XorbRangeReader, MAX_SHARD_UPLOAD_BYTES,
    MAX_XORB_UPLOAD_BYTES, STAGED_UPLOAD_GRACE,
};

/// Fills `buf` with random bytes from the OS (temp names, keys, ids).
pub fn random_bytes(buf: &mut [u8]) {
    getrandom::getrandom(buf).expect("the OS random source is unavailable");
}
