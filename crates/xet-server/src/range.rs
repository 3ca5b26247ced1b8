//! HTTP byte ranges: parsing `Range` headers and building 206 responses, single
//! part or `multipart/byteranges` (XET-PROTOCOL.md §9.4).

use std::convert::Infallible;

use axum::body::{Body, Bytes};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

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

/// A 206 answer with `parts[i]` holding `ranges[i]` of an object of `total` bytes.
pub(crate) fn partial_response(ranges: &[(u64, u64)], parts: Vec<Bytes>, total: u64) -> Response {
    if let ([(a, _)], [part]) = (ranges, parts.as_slice()) {
        let end = a + part.len() as u64 - 1;
        return (
            StatusCode::PARTIAL_CONTENT,
            [
                (header::CONTENT_TYPE, "application/octet-stream".to_string()),
                (header::CONTENT_RANGE, format!("bytes {a}-{end}/{total}")),
            ],
            part.clone(),
        )
            .into_response();
    }
    let mut b = [0u8; 12];
    xet_store::random_bytes(&mut b);
    let boundary = xet_format::hash::hex(&b);
    let mut chunks: Vec<Bytes> = Vec::with_capacity(parts.len() * 2 + 1);
    let mut len = 0usize;
    for (i, ((a, _), part)) in ranges.iter().zip(parts).enumerate() {
        let end = a + part.len() as u64 - 1;
        // Each delimiter but the first follows the previous part's CRLF (RFC 2046).
        let crlf = if i == 0 { "" } else { "\r\n" };
        let head = Bytes::from(format!(
            "{crlf}--{boundary}\r\nContent-Type: application/octet-stream\r\nContent-Range: bytes {a}-{end}/{total}\r\n\r\n"
        ));
        len += head.len() + part.len();
        chunks.push(head);
        chunks.push(part);
    }
    let tail = Bytes::from(format!("\r\n--{boundary}--\r\n"));
    len += tail.len();
    chunks.push(tail);
    let stream = futures_util::stream::iter(chunks.into_iter().map(Ok::<_, Infallible>));
    (
        StatusCode::PARTIAL_CONTENT,
        [
            (
                header::CONTENT_TYPE,
                format!("multipart/byteranges; boundary={boundary}"),
            ),
            (header::CONTENT_LENGTH, len.to_string()),
        ],
        Body::from_stream(stream),
    )
        .into_response()
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
