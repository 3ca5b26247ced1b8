//! The Xet client: upload and download sessions over any Xet CAS server.
//!
//! Placeholder front door; filled in as the sessions land.

#![deny(missing_docs)]

pub mod auth;
pub mod cache;
mod cancel;
pub mod cas;
mod config;
mod error;
pub mod progress;

pub use auth::{Auth, CasToken, HubTokenRefresher, TokenRefresher};
pub use cancel::CancellationToken;
pub use cas::http::HttpCas;
pub use cas::{BoxFuture, Cas};
pub use config::{default_cache_root, CompressionPolicy, Config, RetryConfig};
pub use error::{Error, Result};
