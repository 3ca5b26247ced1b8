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
//!   chunks hash to `hash` (§4.4), as a [`XorbBody`] of pieces. Idempotent; returns
//!   whether it was new.
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

/// A serialized xorb body (chunk records, no footer) held as pieces in order.
///
/// An upload session builds bodies from headers, compressed payloads and, for
/// chunks stored as is (most model weights), slices of the read blocks themselves:
/// no copy of the data into one 64 MiB buffer (measured: that copy and its page
/// faults were a quarter of a 1 GiB upload's client CPU, and the copy held a second
/// xorb's worth of memory). HTTP sends the pieces as they are.
#[derive(Debug, Clone, Default)]
pub struct XorbBody {
    pieces: Vec<Bytes>,
    len: usize,
}

impl XorbBody {
    /// A body made of `pieces`, in order (empty pieces are dropped).
    pub fn new(pieces: Vec<Bytes>) -> Self {
        let pieces: Vec<Bytes> = pieces.into_iter().filter(|p| !p.is_empty()).collect();
        let len = pieces.iter().map(Bytes::len).sum();
        XorbBody { pieces, len }
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the body has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The pieces, in order.
    pub fn pieces(&self) -> &[Bytes] {
        &self.pieces
    }

    /// The body in one buffer (no copy if it is one piece already).
    pub fn to_bytes(&self) -> Bytes {
        match self.pieces.as_slice() {
            [] => Bytes::new(),
            [one] => one.clone(),
            many => {
                let mut all = Vec::with_capacity(self.len);
                for p in many {
                    all.extend_from_slice(p);
                }
                Bytes::from(all)
            }
        }
    }

    /// Its CRC-64/NVME (the checksum of xorb grant requests, §10.7).
    pub fn crc64(&self) -> u64 {
        let mut crc = xet_format::api::Crc64Nvme::new();
        for p in &self.pieces {
            crc.update(p);
        }
        crc.finish()
    }
}

impl From<Bytes> for XorbBody {
    fn from(b: Bytes) -> Self {
        XorbBody::new(vec![b])
    }
}

impl From<Vec<u8>> for XorbBody {
    fn from(v: Vec<u8>) -> Self {
        Bytes::from(v).into()
    }
}

pub mod http;
pub mod local;

/// A boxed, sendable future (see the module docs for why the trait uses them).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A CAS server, as the sessions see it. See the module docs for the contract.
pub trait Cas: Send + Sync + std::fmt::Debug {
    /// Stores a xorb; `Ok(true)` if it was new, `Ok(false)` if already present.
    fn put_xorb<'a>(&'a self, hash: &'a MerkleHash, body: XorbBody) -> BoxFuture<'a, Result<bool>>;

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
    fn put_xorb<'a>(&'a self, hash: &'a MerkleHash, body: XorbBody) -> BoxFuture<'a, Result<bool>> {
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
