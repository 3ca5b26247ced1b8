//! The boundary between the sessions and a CAS server.
//!
//! [`Cas`] is deliberately minimal: the five calls the upload and download
//! protocols need (§13). Implementations: [`HttpCas`](crate::HttpCas) (any server
//! speaking the CAS HTTP API, §10) and, behind the `testing` feature,
//! [`MemoryCas`](crate::testing::MemoryCas). The in-process `LocalCas` over an
//! `xet-store` directory plugs in here too (each method maps to one `Store` call).
//!
//! # Why boxed futures
//!
//! The sessions hold an `Arc<dyn Cas>` so that one binary can switch between a
//! remote and an embedded server at run time, and wrappers (retry, fault
//! injection in tests) can stack. `async fn` in traits is not object-safe, so each
//! method returns a [`BoxFuture`]; one allocation per CAS call is noise next to a
//! network round trip.
//!
//! # Contract
//!
//! - `put_xorb(hash, body)`: body = serialized xorb without footer (§6.2) whose
//!   chunks hash to `hash` (§4.4). Idempotent; returns whether it was new.
//! - `put_shard(body)`: body = upload shard without footer (§7.1). Every xorb it
//!   references must have been put before (§10.6). Idempotent.
//! - `reconstruction(file, range)`: V2 reconstruction (§9.2), `range` inclusive.
//!   Unknown file -> [`Error::NotFound`]; range past the end ->
//!   [`Error::RangeNotSatisfiable`].
//! - `fetch_ranges(xorb, fetch)`: the raw xorb bytes of each of `fetch.ranges`, in
//!   order, exactly `bytes.end - bytes.start + 1` bytes each.
//! - `query_dedup(chunk)`: a shard listing xorbs that hold `chunk` (§8.3), `None`
//!   if the server knows no such chunk.
//!
//! Every implementation passes [`conformance`](crate::testing::conformance).

use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;
use xet_format::api::{ReconstructionV2, XorbMultiRangeFetch};
use xet_format::MerkleHash;

use crate::Result;

pub mod http;
pub mod local;

/// A boxed, sendable future (see the module docs for why the trait uses them).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A CAS server, as the sessions see it. See the module docs for the contract.
pub trait Cas: Send + Sync + std::fmt::Debug {
    /// Stores a xorb; `Ok(true)` if it was new, `Ok(false)` if already present.
    fn put_xorb<'a>(&'a self, hash: &'a MerkleHash, body: Bytes) -> BoxFuture<'a, Result<bool>>;

    /// Registers an upload shard; `Ok(true)` if it was new.
    fn put_shard(&self, body: Bytes) -> BoxFuture<'_, Result<bool>>;

    /// The reconstruction of `file`, or of the inclusive byte range `range` of it.
    fn reconstruction<'a>(
        &'a self,
        file: &'a MerkleHash,
        range: Option<(u64, u64)>,
    ) -> BoxFuture<'a, Result<ReconstructionV2>>;

    /// The raw bytes of each range of `fetch` (one entry of the reconstruction's
    /// `xorbs[xorb]`), in order.
    fn fetch_ranges<'a>(
        &'a self,
        xorb: &'a MerkleHash,
        fetch: &'a XorbMultiRangeFetch,
    ) -> BoxFuture<'a, Result<Vec<Bytes>>>;

    /// The global-dedup shard for `chunk`, if the server has one.
    fn query_dedup<'a>(&'a self, chunk: &'a MerkleHash) -> BoxFuture<'a, Result<Option<Bytes>>>;
}

impl<T: Cas + ?Sized> Cas for std::sync::Arc<T> {
    fn put_xorb<'a>(&'a self, hash: &'a MerkleHash, body: Bytes) -> BoxFuture<'a, Result<bool>> {
        (**self).put_xorb(hash, body)
    }
    fn put_shard(&self, body: Bytes) -> BoxFuture<'_, Result<bool>> {
        (**self).put_shard(body)
    }
    fn reconstruction<'a>(
        &'a self,
        file: &'a MerkleHash,
        range: Option<(u64, u64)>,
    ) -> BoxFuture<'a, Result<ReconstructionV2>> {
        (**self).reconstruction(file, range)
    }
    fn fetch_ranges<'a>(
        &'a self,
        xorb: &'a MerkleHash,
        fetch: &'a XorbMultiRangeFetch,
    ) -> BoxFuture<'a, Result<Vec<Bytes>>> {
        (**self).fetch_ranges(xorb, fetch)
    }
    fn query_dedup<'a>(&'a self, chunk: &'a MerkleHash) -> BoxFuture<'a, Result<Option<Bytes>>> {
        (**self).query_dedup(chunk)
    }
}
