//! HTTP byte ranges: parsing `Range` headers and building 206 responses, single
//! part or `multipart/byteranges` (XET-PROTOCOL.md §9.4).

use axum::body::{Body, Bytes};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::{Stream, StreamExt, TryStreamExt};
use xet_format::MerkleHash;
use xet_store::{Store, XorbRangeReader};

use crate::error::{Error, Result};

/// Parses `bytes=a-b[,c-d...]` (inclusive ends) into ranges, in the given order.
pub(crate) fn parse_byte_ranges(s: &str) -> Result<Vec<(u64, u64)>> {
    let bad = || {
        Error::BadRequest(format!(
            "malformed byte range {s:?}: expected bytes=START-END[,START-END...]"
        ))
    };
    let list = s.trim().strip_prefix("bytes=").ok_or_else(bad)?;
    let mut out = Vec::new();
    for part in list.split(',') {
        let (a, b) = part.trim().split_once('-').ok_or_else(bad)?;
        let a: u64 = a.parse().map_err(|_| bad())?;
        let b: u64 = b.parse().map_err(|_| bad())?;
        if b < a {
            return Err(bad());
        }
        out.push((a, b));
    }
    if out.is_empty() {
        return Err(bad());
    }
    Ok(out)
}

/// Parses the single range of a reconstruction request: `bytes=a-b`, or `bytes=a-`
/// (to the end).
pub(crate) fn parse_single_range(s: &str) -> Result<(u64, u64)> {
    if let Some(open) = s.trim().strip_prefix("bytes=").and_then(|r| r.strip_suffix('-')) {
        if let Ok(a) = open.parse() {
            return Ok((a, u64::MAX));
        }
    }
    match parse_byte_ranges(s)?.as_slice() {
        [one] => Ok(*one),
        _ => Err(Error::BadRequest(format!(
            "reconstructions take one byte range, got {s:?}"
        ))),
    }
}

/// `a-b,c-d` for signing and for `Range` headers.
pub(crate) fn ranges_to_string(ranges: impl Iterator<Item = (u64, u64)>) -> String {
    ranges
        .map(|(a, b)| format!("{a}-{b}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// A 206 answer with `ranges` (inclusive ends, already checked and clamped by
/// [`Store::check_xorb_ranges`]) of xorb `xorb`, whose chunk records are `total`
/// bytes: one range answers its bytes, several a `multipart/byteranges` body.
///
/// The bytes are streamed from the store a block at a time
/// ([`XorbRangeReader::MAX_BLOCK_BYTES`]), and multipart ranges are opened one
/// after the other, so a response holds one block in memory whatever its length.
/// `Content-Length` is exact (computed from the ranges before any byte is read); a
/// backend failure mid-body aborts the connection, so the client sees a short
/// body, never a wrong one. A client that disconnects drops the stream, and with
/// it the open file or S3 connection.
pub(crate) async fn partial_response(
    store: Store,
    xorb: MerkleHash,
    ranges: &[(u64, u64)],
    total: u64,
) -> Result<Response> {
    if let [(a, b)] = ranges {
        // Opened before answering, so a failure to open is a proper status.
        let reader = store.open_xorb_range(&xorb, *a, *b).await?;
        let len = reader.len();
        return Ok((
            StatusCode::PARTIAL_CONTENT,
            [
                (header::CONTENT_TYPE, "application/octet-stream".to_string()),
                (header::CONTENT_RANGE, format!("bytes {a}-{b}/{total}")),
                (header::CONTENT_LENGTH, len.to_string()),
            ],
            Body::from_stream(reader_stream(reader)),
        )
            .into_response());
    }
    let mut r = [0u8; 12];
    xet_store::random_bytes(&mut r);
    let boundary = xet_format::hash::hex(&r);
    let mut len = 0u64;
    let mut parts = Vec::with_capacity(ranges.len());
    for (i, &(a, b)) in ranges.iter().enumerate() {
        // Each delimiter but the first follows the previous part's CRLF (RFC 2046).
        let crlf = if i == 0 { "" } else { "\r\n" };
        let head = Bytes::from(format!(
            "{crlf}--{boundary}\r\nContent-Type: application/octet-stream\r\nContent-Range: bytes {a}-{b}/{total}\r\n\r\n"
        ));
        len += head.len() as u64 + (b - a + 1);
        parts.push((head, a, b));
    }
    let tail = Bytes::from(format!("\r\n--{boundary}--\r\n"));
    len += tail.len() as u64;
    let stream = futures_util::stream::iter(parts)
        .map(move |(head, a, b)| {
            let store = store.clone();
            let opened = async move { store.open_xorb_range(&xorb, a, b).await.map(reader_stream) };
            // The part's head, then its bytes, opened only once the head is sent.
            futures_util::stream::once(async move { Ok(head) })
                .chain(futures_util::stream::once(opened).try_flatten())
        })
        .flatten()
        .chain(futures_util::stream::once(async move { Ok(tail) }));
    Ok((
        StatusCode::PARTIAL_CONTENT,
        [
            (
                header::CONTENT_TYPE,
                format!("multipart/byteranges; boundary={boundary}"),
            ),
            (header::CONTENT_LENGTH, len.to_string()),
        ],
        Body::from_stream(
            stream.inspect_err(|e| tracing::warn!(error = %e, "xorb range read failed mid-response")),
        ),
    )
        .into_response())
}

/// A reader's blocks as a stream (ends after the last block or the first error).
fn reader_stream(
    reader: XorbRangeReader,
) -> impl Stream<Item = std::result::Result<Bytes, xet_store::Error>> + Send {
    futures_util::stream::try_unfold(reader, |mut r| async move {
        Ok(r.next_block().await?.map(|block| (block, r)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ranges() {
        assert_eq!(
            parse_byte_ranges("bytes=0-9,20-29").unwrap(),
            vec![(0, 9), (20, 29)]
        );
        assert_eq!(parse_single_range("bytes=5-").unwrap(), (5, u64::MAX));
        assert_eq!(parse_single_range("bytes=5-7").unwrap(), (5, 7));
        for bad in ["", "bytes=", "bytes=9-1", "items=0-1", "bytes=a-b", "bytes=0-1,"] {
            assert!(parse_byte_ranges(bad).is_err(), "{bad}");
        }
        assert!(parse_single_range("bytes=0-1,3-4").is_err());
    }
}

#[cfg(test)]
mod streaming_tests {
    use super::*;
    use xet_format::hash::chunk_hash;
    use xet_format::xorb::{CompressionPolicy, XorbBuilder};

    /// A store in a fresh temp dir holding one uncompressed xorb of `n` pseudo-random
    /// bytes in 64 KiB chunks; returns the store, the dir, the xorb hash and body.
    async fn store_with_xorb(n: usize) -> (Store, std::path::PathBuf, MerkleHash, Bytes) {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let data: Vec<u8> = (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let mut b = XorbBuilder::new(CompressionPolicy::None);
        for piece in data.chunks(65536) {
            b.add_chunk(chunk_hash(piece), piece).unwrap();
        }
        let xorb = b.finish();
        let mut r = [0u8; 8];
        xet_store::random_bytes(&mut r);
        let dir = std::env::temp_dir().join(format!("xet-server-range-{}", u64::from_le_bytes(r)));
        let store = Store::open(xet_store::StoreConfig::local(&dir)).await.unwrap();
        let body = Bytes::from(xorb.body);
        assert!(store.put_xorb(xorb.hash, body.clone()).await.unwrap());
        (store, dir, xorb.hash, body)
    }

    /// Collects a response body frame by frame: (frames' sizes, concatenation).
    async fn frames(resp: Response) -> (Vec<usize>, Vec<u8>) {
        let mut sizes = Vec::new();
        let mut all = Vec::new();
        let mut s = resp.into_body().into_data_stream();
        while let Some(f) = s.next().await {
            let f = f.unwrap();
            sizes.push(f.len());
            all.extend_from_slice(&f);
        }
        (sizes, all)
    }

    fn content_length(resp: &Response) -> usize {
        resp.headers()[header::CONTENT_LENGTH]
            .to_str()
            .unwrap()
            .parse()
            .unwrap()
    }

    /// The body of a range response is produced in pieces no larger than a block
    /// (plus, for multipart, the small part heads), so the memory a response holds
    /// does not grow with the range: a ~5 MiB range comes as 20+ pieces, never as
    /// one buffer. Bytes and `Content-Length` are exact.
    #[tokio::test]
    async fn range_bodies_stream_in_bounded_blocks() {
        let (store, dir, hash, body) = store_with_xorb(5 << 20).await;
        let total = body.len() as u64;
        let block = XorbRangeReader::MAX_BLOCK_BYTES;
        assert!(total as usize > 16 * block, "the range must span many blocks");

        // One range: the whole xorb, the end past it clamped as HTTP does.
        let ranges = store.check_xorb_ranges(&hash, &[(0, total + 100)]).await.unwrap();
        let resp = partial_response(store.clone(), hash, &ranges, total)
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::PARTIAL_CONTENT);
        assert_eq!(content_length(&resp), body.len());
        assert_eq!(
            resp.headers()[header::CONTENT_RANGE],
            format!("bytes 0-{}/{total}", total - 1).as_str()
        );
        let (sizes, bytes) = frames(resp).await;
        assert!(bytes == body, "single-range body differs from the xorb");
        assert!(
            sizes.iter().all(|&n| n <= block),
            "a frame is over a block: {sizes:?}"
        );
        assert!(sizes.len() >= body.len() / block, "{} frames", sizes.len());

        // Several ranges: multipart, each part streamed.
        let wanted = [(7, 3_000_000), (100, 100), (3_000_001, total - 1)];
        let ranges = store.check_xorb_ranges(&hash, &wanted).await.unwrap();
        let resp = partial_response(store.clone(), hash, &ranges, total)
            .await
            .unwrap();
        let ct = resp.headers()[header::CONTENT_TYPE].to_str().unwrap().to_string();
        let declared = content_length(&resp);
        let (sizes, bytes) = frames(resp).await;
        assert_eq!(bytes.len(), declared, "Content-Length is exact");
        assert!(sizes.iter().all(|&n| n <= block), "a frame is over a block");
        let boundary = ct.strip_prefix("multipart/byteranges; boundary=").unwrap();
        let text_parts: Vec<&[u8]> = split_multipart(&bytes, boundary);
        assert_eq!(text_parts.len(), 3);
        for (part, (a, b)) in text_parts.iter().zip(wanted) {
            let want = &body[a as usize..=b as usize];
            assert!(
                part.ends_with(want) && part.len() < want.len() + 200,
                "part {a}-{b}"
            );
            let head = String::from_utf8_lossy(&part[..part.len() - want.len()]).to_string();
            assert!(
                head.contains(&format!("Content-Range: bytes {a}-{b}/{total}")),
                "{head}"
            );
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// The parts (head + bytes) between the delimiters of a multipart body.
    fn split_multipart<'a>(body: &'a [u8], boundary: &str) -> Vec<&'a [u8]> {
        let delim = format!("--{boundary}");
        let d = delim.as_bytes();
        let mut starts = Vec::new();
        let mut i = 0;
        while i + d.len() <= body.len() {
            if &body[i..i + d.len()] == d {
                starts.push(i);
                i += d.len();
            } else {
                i += 1;
            }
        }
        starts
            .windows(2)
            .map(|w| {
                let part = &body[w[0] + d.len() + 2..w[1]];
                part.strip_suffix(b"\r\n").unwrap_or(part)
            })
            .collect()
    }
}
