//! [`serve`]: a [`MemoryCas`] over HTTP on loopback, speaking the routes the
//! official client uses (health, grants, `/v2/shards`, `/v2/reconstructions`,
//! global dedup, transfer URLs) plus a Hub-style token endpoint, for tests of
//! binaries (the CLI) and of other clients. No faults; `tests/it/mock.rs` injects
//! those.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use xet_format::MerkleHash;

use super::MemoryCas;
use crate::cas::Cas;
use crate::Error;

struct Ctx {
    cas: Arc<MemoryCas>,
    base: String,
    pending: Mutex<std::collections::HashMap<String, Bytes>>,
    tokens: AtomicU64,
}

/// Serves `cas` on `127.0.0.1:0` until the runtime stops; returns the base URL.
/// `GET /api/{type}s/{ns}/{name}/xet-{read|write}-token/{rev}` hands out
/// `{accessToken, exp, casUrl}` (any bearer token accepted).
pub async fn serve(cas: Arc<MemoryCas>) -> std::io::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let ctx = Arc::new(Ctx {
        cas,
        base: base.clone(),
        pending: Mutex::new(Default::default()),
        tokens: AtomicU64::new(0),
    });
    let app = axum::Router::new().fallback(handle).with_state(ctx);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(base)
}

fn err(e: Error) -> Response {
    match e {
        Error::NotFound { .. } => StatusCode::NOT_FOUND.into_response(),
        Error::RangeNotSatisfiable { .. } => StatusCode::RANGE_NOT_SATISFIABLE.into_response(),
        other => (StatusCode::BAD_REQUEST, other.to_string()).into_response(),
    }
}

async fn handle(State(ctx): State<Arc<Ctx>>, req: Request) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let headers = req.headers().clone();
    let Ok(body) = to_bytes(req.into_body(), 1 << 28).await else {
        return StatusCode::PAYLOAD_TOO_LARGE.into_response();
    };
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let hash = |s: &str| s.parse::<MerkleHash>().ok();
    let range = headers
        .get("range")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("bytes="))
        .map(str::to_string);
    match (method, segs.as_slice()) {
        (Method::GET, ["health"]) | (Method::POST, ["v1", "telemetry"]) => StatusCode::OK.into_response(),
        (Method::GET, ["api", _, _, _, kind, _]) if kind.starts_with("xet-") && kind.ends_with("-token") => {
            let n = ctx.tokens.fetch_add(1, Ordering::Relaxed);
            let exp = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs()
                + 3600;
            serde_json::json!({"accessToken": format!("tok-{n}"), "exp": exp, "casUrl": ctx.base})
                .to_string()
                .into_response()
        }
        (Method::POST, ["v1", "xorb-grants", _, h]) => {
            let Some(x) = hash(h) else {
                return StatusCode::BAD_REQUEST.into_response();
            };
            if ctx.cas.xorb(&x).is_some() {
                return StatusCode::OK.into_response();
            }
            let grant = serde_json::json!({"id": h, "method": "PUT", "url": format!("{}/uploads/{h}", ctx.base),
                "headers": {"if-none-match": "*"}});
            (StatusCode::CREATED, grant.to_string()).into_response()
        }
        (Method::PUT, ["uploads", h]) => {
            ctx.pending.lock().unwrap().insert(h.to_string(), body);
            StatusCode::OK.into_response()
        }
        (Method::POST, ["v1", "xorb-commits", _, h, "grant", _]) => {
            let (Some(x), Some(data)) = (hash(h), ctx.pending.lock().unwrap().remove(*h)) else {
                return StatusCode::BAD_REQUEST.into_response();
            };
            match ctx.cas.put_xorb(&x, data.into()).await {
                Ok(_) => StatusCode::OK.into_response(),
                Err(e) => err(e),
            }
        }
        (Method::POST, ["v1", "xorbs", _, h]) => {
            let Some(x) = hash(h) else {
                return StatusCode::BAD_REQUEST.into_response();
            };
            match ctx.cas.put_xorb(&x, body.into()).await {
                Ok(was) => serde_json::json!({ "was_inserted": was })
                    .to_string()
                    .into_response(),
                Err(e) => err(e),
            }
        }
        (Method::POST, ["v2", "shards"]) => {
            let line = match ctx.cas.put_shard(body).await {
                Ok(new) => format!("{{\"type\":\"result\",\"result\":{}}}\n", u8::from(new)),
                Err(e) => serde_json::json!({"type": "error", "message": e.to_string()}).to_string() + "\n",
            };
            ([("content-type", "application/x-ndjson")], line).into_response()
        }
        (Method::POST, ["v1", "shards"]) => match ctx.cas.put_shard(body).await {
            Ok(new) => serde_json::json!({ "result": u8::from(new) })
                .to_string()
                .into_response(),
            Err(e) => err(e),
        },
        (Method::GET, ["v2", "reconstructions", h]) => {
            let Some(f) = hash(h) else {
                return StatusCode::BAD_REQUEST.into_response();
            };
            let r = range
                .as_deref()
                .and_then(|r| r.split_once('-'))
                .and_then(|(a, z)| Some((a.parse().ok()?, z.parse().ok()?)));
            match ctx.cas.reconstruction(&f, r).await {
                Ok(mut rec) => {
                    for fs in rec.xorbs.values_mut() {
                        for x in fs {
                            x.url = x.url.replace("memory://", &format!("{}/fetch/", ctx.base));
                        }
                    }
                    serde_json::to_string(&rec).unwrap_or_default().into_response()
                }
                Err(e) => err(e),
            }
        }
        (Method::GET, ["fetch", h]) => {
            let Some(data) = hash(h).and_then(|x| ctx.cas.xorb(&x)) else {
                return StatusCode::NOT_FOUND.into_response();
            };
            ranged(range.as_deref().unwrap_or(""), data)
        }
        (Method::GET, ["v1", "chunks", _, h]) => {
            let Some(c) = hash(h) else {
                return StatusCode::BAD_REQUEST.into_response();
            };
            match ctx.cas.query_dedup(&c).await {
                Ok(Some(s)) => s.into_response(),
                Ok(None) => (StatusCode::NOT_FOUND, "Shard not found").into_response(),
                Err(e) => err(e),
            }
        }
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

/// A 206 answer for `spec` (`a-b[,c-d...]`), multipart when several ranges.
fn ranged(spec: &str, data: Bytes) -> Response {
    let ranges: Vec<(usize, usize)> = spec
        .split(',')
        .filter_map(|r| {
            let (a, b) = r.split_once('-')?;
            let (a, b): (usize, usize) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
            (a <= b && b < data.len()).then_some((a, b))
        })
        .collect();
    if ranges.is_empty() {
        return StatusCode::RANGE_NOT_SATISFIABLE.into_response();
    }
    let total = data.len();
    let mut r = if let [(a, b)] = ranges[..] {
        let mut r = Response::new(Body::from(data.slice(a..=b)));
        if let Ok(v) = HeaderValue::from_str(&format!("bytes {a}-{b}/{total}")) {
            r.headers_mut().insert("content-range", v);
        }
        r
    } else {
        let mut body = Vec::new();
        for &(a, b) in &ranges {
            body.extend_from_slice(
                format!("--XETRANGES\r\nContent-Range: bytes {a}-{b}/{total}\r\n\r\n").as_bytes(),
            );
            body.extend_from_slice(&data[a..=b]);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(b"--XETRANGES--\r\n");
        let mut r = Response::new(Body::from(body));
        r.headers_mut().insert(
            "content-type",
            HeaderValue::from_static("multipart/byteranges; boundary=XETRANGES"),
        );
        r
    };
    *r.status_mut() = StatusCode::PARTIAL_CONTENT;
    r
}
