//! [`LocalCas`]: the in-process CAS over an `xet-store` directory, the embedded
//! default of the CLI (no server, no network, no account).

use bytes::Bytes;
use xet_format::api::{ReconstructionV2, XorbMultiRangeFetch};
use xet_format::MerkleHash;
use xet_store::{ErrorKind, Store, StoreConfig};

use super::{BoxFuture, Cas, XorbBody};
use crate::{Error, Result};

/// A [`Cas`] that calls an `xet-store` [`Store`] directly: each method is one store
/// call, with the same validation a server applies (the store checks every xorb and
/// shard it is given).
///
/// Fetch "URLs" of its reconstructions are opaque `local:` names: the data is read
/// from the store by xorb hash and byte range, never through a URL.
#[derive(Clone, Debug)]
pub struct LocalCas {
    store: Store,
}

impl LocalCas {
    /// Wraps an open store.
    pub fn new(store: Store) -> Self {
        LocalCas { store }
    }

    /// Opens (creating if needed) the store in the local directory `dir`.
    pub async fn open(dir: impl Into<std::path::PathBuf>) -> Result<Self> {
        let store = Store::open(StoreConfig::local(dir.into()))
            .await
            .map_err(|e| store_error("open store", e))?;
        Ok(LocalCas { store })
    }

    /// The underlying store.
    pub fn store(&self) -> &Store {
        &self.store
    }
}

/// Maps a store error to the client's error, by what the caller can do about it
/// (the same statuses a server would answer with).
fn store_error(op: &str, e: xet_store::Error) -> Error {
    let message = e.to_string();
    match e.kind() {
        ErrorKind::NotFound => Error::NotFound {
            what: format!("{op}: {message}"),
        },
        ErrorKind::BadInput => Error::Rejected {
            op: op.into(),
            status: 400,
            message,
        },
        ErrorKind::TooLarge => Error::Rejected {
            op: op.into(),
            status: 413,
            message,
        },
        ErrorKind::RangeNotSatisfiable => Error::Rejected {
            op: op.into(),
            status: 416,
            message,
        },
        ErrorKind::Unavailable => Error::Server {
            op: op.into(),
            status: 503,
            message,
            retry_after: None,
        },
        _ => Error::Server {
            op: op.into(),
            status: 500,
            message,
            retry_after: None,
        },
    }
}

impl Cas for LocalCas {
    fn put_xorb<'a>(&'a self, hash: &'a MerkleHash, body: XorbBody) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            self.store
                .put_xorb(*hash, body.to_bytes())
                .await
                .map_err(|e| store_error("put xorb", e))
        })
    }

    fn put_shard(&self, body: Bytes) -> BoxFuture<'_, Result<bool>> {
        Box::pin(async move {
            self.store
                .put_shard(body)
                .await
                .map_err(|e| store_error("put shard", e))
        })
    }

    fn reconstruction<'a>(
        &'a self,
        file: &'a MerkleHash,
        range: Option<(u64, u64)>,
    ) -> BoxFuture<'a, Result<ReconstructionV2>> {
        Box::pin(async move {
            let rec = self
                .store
                .reconstruction(file, range)
                .await
                .map_err(|e| match e.kind() {
                    ErrorKind::RangeNotSatisfiable => Error::RangeNotSatisfiable {
                        file: *file,
                        start: range.map_or(0, |r| r.0),
                    },
                    _ => store_error(&format!("reconstruction of file {file}"), e),
                })?;
            let xorbs = rec
                .fetches
                .into_iter()
                .map(|(hash, ranges)| {
                    (
                        hash,
                        vec![XorbMultiRangeFetch {
                            url: format!("local:xorb/{hash}"),
                            ranges,
                        }],
                    )
                })
                .collect();
            Ok(ReconstructionV2 {
                offset_into_first_range: rec.offset_into_first_range,
                terms: rec.terms,
                xorbs,
            })
        })
    }

    fn fetch_ranges<'a>(
        &'a self,
        xorb: &'a MerkleHash,
        fetch: &'a XorbMultiRangeFetch,
    ) -> BoxFuture<'a, Result<Vec<Bytes>>> {
        Box::pin(async move {
            let ranges: Vec<(u64, u64)> = fetch
                .ranges
                .iter()
                .map(|r| (r.bytes.start, r.bytes.end))
                .collect();
            self.store
                .read_xorb_ranges(xorb, &ranges)
                .await
                .map_err(|e| store_error(&format!("read xorb {xorb}"), e))
        })
    }

    fn query_dedup<'a>(&'a self, chunk: &'a MerkleHash) -> BoxFuture<'a, Result<Option<Bytes>>> {
        Box::pin(async move {
            self.store
                .dedup_shard(chunk)
                .await
                .map_err(|e| store_error("global dedup query", e))
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn passes_the_conformance_suite() {
        let dir = tempfile::tempdir().unwrap();
        let cas = LocalCas::open(dir.path()).await.unwrap();
        crate::testing::conformance::run_all(Arc::new(cas)).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn data_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..300_000u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 11) as u8)
            .collect();
        let file = {
            let cas: Arc<dyn Cas> = Arc::new(LocalCas::open(dir.path()).await.unwrap());
            let config = crate::Config::with_cache_dir(dir.path().join("cache"));
            let up = crate::UploadSession::new(cas, config).unwrap();
            let f = up
                .upload_bytes("a", Bytes::from(data.clone()), crate::Sha256Source::Compute)
                .await
                .unwrap();
            up.finish().await.unwrap();
            f.file_hash
        };
        let cas: Arc<dyn Cas> = Arc::new(LocalCas::open(dir.path()).await.unwrap());
        let config = crate::Config::with_cache_dir(dir.path().join("cache2"));
        let down = crate::DownloadSession::new(cas, config).unwrap();
        assert_eq!(down.download_bytes(&file, None).await.unwrap(), data);
        assert_eq!(
            down.download_bytes(&file, Some((1000, 1999))).await.unwrap(),
            &data[1000..2000]
        );
    }
}
