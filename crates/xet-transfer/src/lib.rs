//! The Xet client: upload and download sessions over any Xet CAS server.
//!
//! # Tour
//!
//! - [`Cas`]: the server boundary (five calls). [`HttpCas`] speaks the CAS HTTP
//!   API like the official client (grant uploads, `/v2` routes, fallbacks to the
//!   spec's v1 routes), with retries, a stall watchdog and token refresh ([`Auth`]).
//! - [`UploadSession`]: files and byte buffers in, chunked in parallel, deduplicated
//!   (session, shard cache, global query), packed into xorbs uploaded concurrently
//!   with bounded memory, registered by one shard in [`UploadSession::finish`].
//! - [`DownloadSession`]: whole files or byte ranges, fetched concurrently through
//!   the [`cache::ChunkCache`], verified, written atomically, resumable.
//! - [`Config`]: plain values; [`Config::from_env`] reads the official client's
//!   environment variables.
//!
//! ```
//! # #[cfg(feature = "testing")]
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use std::sync::Arc;
//! use xet_transfer::{testing::MemoryCas, Config, DownloadSession, Sha256Source, UploadSession};
//!
//! let cas = Arc::new(MemoryCas::new());
//! let dir = tempfile::tempdir().unwrap();
//! let config = Config::with_cache_dir(dir.path());
//! let up = UploadSession::new(cas.clone(), config.clone()).unwrap();
//! let file = up.upload_bytes("hello", b"hello world"[..].into(), Sha256Source::Compute).await.unwrap();
//! let report = up.finish().await.unwrap();
//! assert_eq!(file.file_hash.to_string(), "f15edd43b7e85cfd25e2758ffe13b99fdd09dfa817e8d9f6548722a7a126db7f");
//! assert_eq!(report.xorbs_uploaded, 1);
//!
//! let down = DownloadSession::new(cas, config).unwrap();
//! assert_eq!(down.download_bytes(&file.file_hash, None).await.unwrap(), b"hello world");
//! # });
//! ```
//!
//! # Limits
//!
//! The in-process `LocalCas` over `xet-store` is not here yet (the store is being
//! written). Section numbers in comments refer to `XET-PROTOCOL.md`.

#![deny(missing_docs)]

pub mod auth;
pub mod cache;
mod cancel;
pub mod cas;
mod config;
mod download;
mod error;
pub mod progress;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
mod upload;
mod writeback;

pub use auth::{Auth, CasToken, HubTokenRefresher, TokenRefresher};
pub use cancel::CancellationToken;
pub use cas::http::HttpCas;
pub use cas::local::LocalCas;
pub use cas::{BoxFuture, Cas, XorbBody};
pub use config::{default_cache_root, CompressionPolicy, Config, RetryConfig};
pub use download::{DownloadReport, DownloadSession};
pub use error::{Error, Result};
pub use upload::{FileUpload, Sha256Source, UploadReport, UploadSession};
