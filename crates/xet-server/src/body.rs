//! Request bodies of xorb uploads, read into reused page-aligned buffers.
//!
//! A xorb body is up to 64 MiB. Collected the usual way (axum's `Bytes` extractor)
//! it lands in fresh memory, and on this project's VM the page faults of that copy
//! were two fifths of the server's CPU during an upload. A buffer from the pool was
//! faulted in by an earlier upload; it goes back to the pool when the last slice of
//! the body (held until the xorb is written) is dropped.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap};
use bytes::BytesMut;
use futures_util::StreamExt;
use xet_format::bufpool::{FillError, Filler, Pool};
use xet_format::AlignedBuf;

use crate::error::{Error, Result};

/// Bodies declaring at least this many bytes go into a pooled buffer.
const POOLED_BODY: usize = 1 << 20;

/// Idle buffers the pool keeps (the server's resident memory after a burst of
/// uploads grows by up to this many bodies).
pub(crate) const POOL_IDLE: usize = 4;

/// A pool of body buffers.
pub(crate) type BodyPool = Arc<Pool<AlignedBuf>>;

/// The whole body, refused with 413 once it exceeds `limit` (while reading, or by
/// its `Content-Length`, after reading `limit` bytes of it: see [`drain`]) and with
/// 400 if it ends short of its `Content-Length`.
async fn read(body: Body, headers: &HeaderMap, limit: usize, pool: &BodyPool) -> Result<Bytes> {
    let too_large = |n: String| {
        Error::PayloadTooLarge(format!(
            "request body of {n} bytes is over the limit of {limit} bytes (64 MiB xorbs, §6.1)"
        ))
    };
    let declared = match headers.get(header::CONTENT_LENGTH) {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or_else(|| Error::BadRequest("Content-Length is not a number".into()))?,
        ),
    };
    if let Some(n) = declared.filter(|&n| n > limit as u64) {
        drain(body, limit).await;
        return Err(too_large(n.to_string()));
    }
    let mut frames = body.into_data_stream();
    let read_error = |e: axum::Error| Error::BadRequest(format!("reading the request body: {e}"));
    match declared {
        Some(n) if n as usize >= POOLED_BODY => {
            let refused = |e: FillError| Error::BadRequest(format!("request {e}"));
            let mut body = Filler::new(pool, n as usize);
            while let Some(frame) = frames.next().await {
                body.push(&frame.map_err(read_error)?).map_err(refused)?;
            }
            Ok(Bytes::from_owner(body.finish().map_err(refused)?))
        }
        _ => {
            let mut buf = BytesMut::with_capacity(declared.unwrap_or(0) as usize);
            while let Some(frame) = frames.next().await {
                let frame = frame.map_err(read_error)?;
                if buf.len() + frame.len() > limit {
                    return Err(too_large(format!("more than {limit}")));
                }
                buf.extend_from_slice(&frame);
            }
            if let Some(n) = declared.filter(|&n| n != buf.len() as u64) {
                return Err(Error::BadRequest(format!(
                    "request body has {} bytes, its Content-Length said {n}",
                    buf.len()
                )));
            }
            Ok(buf.freeze())
        }
    }
}

/// `checked`'s value and the body read as [`read`] does, or, when the request was
/// refused before its body is used, `checked`'s error once the body is drained.
pub(crate) async fn read_checked<T>(
    checked: Result<T>,
    body: Body,
    headers: &HeaderMap,
    limit: usize,
    pool: &BodyPool,
) -> Result<(T, Bytes)> {
    match checked {
        Ok(v) => Ok((v, read(body, headers, limit, pool).await?)),
        Err(e) => {
            drain(body, limit).await;
            Err(e)
        }
    }
}

/// Reads and drops a body the request is refused before it is used, up to `limit`
/// bytes, so that the refusal reaches the client: a server that answers without
/// reading the body closes the connection under a client still sending it, which
/// then sees a reset instead of the answer.
async fn drain(body: Body, limit: usize) {
    let mut frames = body.into_data_stream();
    let mut seen = 0usize;
    while let Some(Ok(frame)) = frames.next().await {
        seen += frame.len();
        if seen > limit {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(len: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(l) = len {
            h.insert(header::CONTENT_LENGTH, l.parse().unwrap());
        }
        h
    }

    fn chunked(parts: Vec<Vec<u8>>) -> Body {
        let s =
            futures_util::stream::iter(parts.into_iter().map(|p| Ok::<_, std::io::Error>(Bytes::from(p))));
        Body::from_stream(s)
    }

    #[tokio::test]
    async fn large_bodies_go_through_the_pool_and_come_back() {
        let pool: BodyPool = Pool::new(POOL_IDLE);
        let data: Vec<u8> = (0..3 * POOLED_BODY + 17).map(|i| (i * 7) as u8).collect();
        let parts: Vec<Vec<u8>> = data.chunks(100_000).map(<[u8]>::to_vec).collect();
        let len = data.len().to_string();
        let got = read(chunked(parts.clone()), &headers(Some(&len)), 64 << 20, &pool)
            .await
            .unwrap();
        assert_eq!(&got[..], &data[..]);
        let ptr = got.as_ptr();
        drop(got);
        // The same buffer serves the next body.
        let again = read(chunked(parts), &headers(Some(&len)), 64 << 20, &pool)
            .await
            .unwrap();
        assert_eq!(again.as_ptr(), ptr);
        assert_eq!(&again[..], &data[..]);
    }

    #[tokio::test]
    async fn lengths_are_enforced() {
        let pool: BodyPool = Pool::new(POOL_IDLE);
        let big = vec![1u8; 2 * POOLED_BODY];
        // Declared over the limit: refused before reading.
        let e = read(chunked(vec![]), &headers(Some("100000000")), 64 << 20, &pool)
            .await
            .unwrap_err();
        assert!(matches!(e, Error::PayloadTooLarge(_)), "{e:?}");
        // Longer or shorter than declared (pooled and small paths).
        for (declared, body) in [
            (POOLED_BODY, big.clone()),
            (3 * POOLED_BODY, big.clone()),
            (10, vec![1u8; 11]),
            (12, vec![1u8; 11]),
        ] {
            let e = read(
                chunked(vec![body]),
                &headers(Some(&declared.to_string())),
                64 << 20,
                &pool,
            )
            .await
            .unwrap_err();
            assert!(matches!(e, Error::BadRequest(_)), "{declared}: {e:?}");
        }
        // No Content-Length: bounded while reading.
        let e = read(
            chunked(vec![big.clone(), big.clone()]),
            &headers(None),
            3 * POOLED_BODY,
            &pool,
        )
        .await
        .unwrap_err();
        assert!(matches!(e, Error::PayloadTooLarge(_)), "{e:?}");
        let ok = read(chunked(vec![big.clone()]), &headers(None), 3 * POOLED_BODY, &pool)
            .await
            .unwrap();
        assert_eq!(ok.len(), big.len());
        let e = read(chunked(vec![]), &headers(Some("x")), 10, &pool)
            .await
            .unwrap_err();
        assert!(matches!(e, Error::BadRequest(_)), "{e:?}");
    }
}
