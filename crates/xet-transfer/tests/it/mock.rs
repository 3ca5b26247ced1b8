//! A tiny CAS over axum that answers like the official local server (the shapes of
//! `vectors/http_trace_xorshift_100000`) and injects faults on demand.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::header::CONTENT_LENGTH;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::StreamExt;
use xet_transfer::testing::MemoryCas;
use xet_transfer::Cas;

/// A fault to inject into the next matching request.
#[derive(Debug, Clone)]
#[allow(dead_code)] // `Corrupt` is used by the download tests.
pub enum Fault {
    /// Answer this status with no body.
    Status(u16),
    /// 429 with `Retry-After: secs`.
    TooMany(u64),
    /// Wait this long before answering (normally).
    Stall(Duration),
    /// Answer a ranged GET with fewer bytes than asked.
    Truncate,
    /// Flip a byte of a ranged GET's answer.
    Corrupt,
    /// Send the status, the headers (with the full `Content-Length`) and the first
    /// half of the body, then nothing for this long, then the rest: a stall in the
    /// middle of a body, which only the body watchdog can catch.
    StallBody(Duration),
}

#[derive(Default)]
pub struct MockState {
    pub xorbs: HashMap<String, Bytes>,
    pub shards: Vec<Bytes>,
    pub dedup: HashMap<String, Bytes>,
    /// Reconstructions by file hash (JSON, V2 shape, `{url}` replaced by the base).
    pub recon: HashMap<String, String>,
    /// Faults by route key (`grant`, `put`, `commit`, `xorb`, `shard`, `recon`, `fetch`, `chunk`).
    pub faults: HashMap<&'static str, VecDeque<Fault>>,
    /// Routes that answer 404 as if the server were older (`grant`, `v2shards`, `v2recon`).
    pub missing: Vec<&'static str>,
    /// Accepted bearer tokens; empty = no auth.
    pub tokens: Vec<String>,
    /// Every request as `METHOD path`.
    pub log: Vec<String>,
    /// When set, a real (in-memory) CAS answers instead of the canned state.
    pub backend: Option<Arc<MemoryCas>>,
    /// `(route, n)`: each of the next `n` requests of `route` (a fault key) that pass
    /// the token check is answered, but every token issued so far expires with it:
    /// later requests need one that a refresher puts into `tokens` afterwards.
    pub expire_tokens_after: Option<(&'static str, usize)>,
    /// Requests refused for their token (401), as `METHOD path`.
    pub refused: Vec<String>,
    /// Bodies a `StallBody` fault cut off after their first half.
    pub stalled_bodies: usize,
}

#[derive(Clone)]
pub struct Mock {
    pub state: Arc<Mutex<MockState>>,
    pub base: String,
}

impl Mock {
    pub async fn start() -> Mock {
        let state = Arc::new(Mutex::new(MockState::default()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let base = format!("http://{addr}");
        let app = axum::Router::new()
            .fallback(handle)
            .with_state((state.clone(), base.clone()));
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Mock { state, base }
    }

    /// A mock whose answers come from a `MemoryCas`: a full CAS over HTTP.
    pub async fn with_backend() -> (Mock, Arc<MemoryCas>) {
        let m = Mock::start().await;
        let cas = Arc::new(MemoryCas::new());
        m.state.lock().unwrap().backend = Some(cas.clone());
        (m, cas)
    }

    pub fn fault(&self, route: &'static str, f: Fault) {
        self.state
            .lock()
            .unwrap()
            .faults
            .entry(route)
            .or_default()
            .push_back(f);
    }

    pub fn count(&self, prefix: &str) -> usize {
        self.state
            .lock()
            .unwrap()
            .log
            .iter()
            .filter(|l| l.starts_with(prefix))
            .count()
    }
}

type S = (Arc<Mutex<MockState>>, String);

async fn handle(State((state, base)): State<S>, req: Request) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let query = req.uri().query().map(str::to_string);
    let headers = req.headers().clone();
    let body = to_bytes(req.into_body(), 1 << 28).await.unwrap_or_default();
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let route: &'static str = match (method.clone(), segs.as_slice()) {
        (Method::POST, ["v1", "xorb-grants", _, _]) => "grant",
        (Method::PUT, ["uploads", _]) => "put",
        (Method::POST, ["v1", "xorb-commits", ..]) => "commit",
        (Method::POST, ["v1", "xorbs", _, _]) => "xorb",
        (Method::POST, ["v2", "shards"]) => "v2shards",
        (Method::POST, ["v1", "shards"]) => "shard",
        (Method::GET, ["v2", "reconstructions", _]) => "v2recon",
        (Method::GET, ["v1", "reconstructions", _]) => "recon",
        (Method::GET, ["fetch", _]) => "fetch",
        (Method::GET, ["v1", "chunks", _, _]) => "chunk",
        (Method::GET, ["health"]) | (Method::POST, ["v1", "telemetry"]) => "health",
        _ => "other",
    };
    let fault = {
        let mut s = state.lock().unwrap();
        s.log.push(format!("{method} {path}"));
        if s.missing.contains(&route) {
            return StatusCode::NOT_FOUND.into_response();
        }
        // Transfer URLs (put, fetch) are authorised by the URL itself.
        if !s.tokens.is_empty() && !matches!(route, "put" | "fetch") {
            let ok = headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .is_some_and(|t| s.tokens.iter().any(|k| k == t));
            if !ok {
                s.refused.push(format!("{method} {path}"));
                return (StatusCode::UNAUTHORIZED, "token expired").into_response();
            }
        }
        let key = match route {
            "v2shards" => "shard",
            "v2recon" => "recon",
            r => r,
        };
        if let Some((r, n)) = s.expire_tokens_after {
            if r == key {
                s.expire_tokens_after = (n > 1).then_some((r, n - 1));
                // Non-empty (empty means no auth) and held by no client.
                s.tokens = vec!["<expired>".into()];
            }
        }
        s.faults.get_mut(key).and_then(VecDeque::pop_front)
    };
    let mut post = None;
    let mut stall_body = None;
    match fault {
        Some(Fault::Status(code)) => return StatusCode::from_u16(code).unwrap().into_response(),
        Some(Fault::TooMany(secs)) => {
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", secs.to_string())],
                "slow down",
            )
                .into_response()
        }
        Some(Fault::Stall(d)) => tokio::time::sleep(d).await,
        Some(Fault::StallBody(d)) => stall_body = Some(d),
        Some(f) => post = Some(f),
        None => {}
    }
    let resp = answer(&state, &base, route, &segs, &headers, body, query, post).await;
    match stall_body {
        Some(d) => stall_midway(state, resp, d).await,
        None => resp,
    }
}

/// `resp` with its body sent in two halves, `d` apart.
async fn stall_midway(state: Arc<Mutex<MockState>>, resp: Response, d: Duration) -> Response {
    let (mut parts, body) = resp.into_parts();
    let body = to_bytes(body, usize::MAX).await.unwrap();
    let (first, rest) = (body.slice(..body.len() / 2), body.slice(body.len() / 2..));
    // The full length is announced, so the client waits for the rest.
    parts
        .headers
        .insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
    let second = async move {
        // Polled once the first half has gone out.
        state.lock().unwrap().stalled_bodies += 1;
        tokio::time::sleep(d).await;
        Ok::<Bytes, std::io::Error>(rest)
    };
    let stream = futures::stream::once(async move { Ok(first) }).chain(futures::stream::once(second));
    Response::from_parts(parts, Body::from_stream(stream))
}

#[allow(clippy::too_many_arguments)]
async fn answer(
    state: &Arc<Mutex<MockState>>,
    base: &str,
    route: &'static str,
    segs: &[&str],
    headers: &HeaderMap,
    body: Bytes,
    query: Option<String>,
    post: Option<Fault>,
) -> Response {
    if route == "health" {
        return StatusCode::OK.into_response();
    }
    let backend = state.lock().unwrap().backend.clone();
    if let Some(b) = backend {
        return backend_answer(state, &b, base, route, segs, headers, body, post).await;
    }
    let mut s = state.lock().unwrap();
    match (route, segs) {
        ("grant", [_, _, _, hash]) => {
            if s.xorbs.contains_key(*hash) {
                return StatusCode::OK.into_response();
            }
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(v["checksum"]["algo"], "crc64nvme");
            let id = format!("{hash}-{}", v["length"]);
            let grant = serde_json::json!({
                "id": id, "method": "PUT", "url": format!("{base}/uploads/{hash}"),
                "headers": {"if-none-match": "*"}
            });
            (StatusCode::CREATED, grant.to_string()).into_response()
        }
        ("put", [_, hash]) => {
            if headers.get("if-none-match").is_none() {
                return StatusCode::BAD_REQUEST.into_response();
            }
            if headers.get("authorization").is_some() {
                return (StatusCode::BAD_REQUEST, "no bearer token on transfer URLs").into_response();
            }
            s.xorbs.insert(format!("pending-{hash}"), body);
            StatusCode::OK.into_response()
        }
        ("commit", [_, _, _, hash, "grant", _]) => match s.xorbs.remove(&format!("pending-{hash}")) {
            Some(b) => {
                s.xorbs.insert(hash.to_string(), b);
                StatusCode::OK.into_response()
            }
            None => StatusCode::BAD_REQUEST.into_response(),
        },
        ("xorb", [_, _, _, hash]) => {
            let was = s.xorbs.insert(hash.to_string(), body).is_none();
            serde_json::json!({ "was_inserted": was })
                .to_string()
                .into_response()
        }
        ("v2shards", _) => {
            s.shards.push(body);
            let events = "{\"type\":\"validating\",\"verified\":0,\"total\":1}\n{\"type\":\"committing\",\"stage\":\"uploading\"}\n{\"type\":\"result\"}\n";
            ([("content-type", "application/x-ndjson")], events).into_response()
        }
        ("shard", _) => {
            s.shards.push(body);
            "{\"result\":1}".into_response()
        }
        ("v2recon", [_, _, hash]) | ("recon", [_, _, hash]) => {
            let Some(json) = s.recon.get(*hash) else {
                return StatusCode::NOT_FOUND.into_response();
            };
            let v2: serde_json::Value = serde_json::from_str(&json.replace("{url}", base)).unwrap();
            if route == "v2recon" {
                return v2.to_string().into_response();
            }
            // V1 shape: one fetch_info per range.
            let mut fetch_info = serde_json::Map::new();
            for (xorb, fetches) in v2["xorbs"].as_object().unwrap() {
                let mut infos = vec![];
                for f in fetches.as_array().unwrap() {
                    for r in f["ranges"].as_array().unwrap() {
                        infos.push(serde_json::json!({"range": r["chunks"], "url": f["url"], "url_range": r["bytes"]}));
                    }
                }
                fetch_info.insert(xorb.clone(), infos.into());
            }
            serde_json::json!({"offset_into_first_range": v2["offset_into_first_range"], "terms": v2["terms"], "fetch_info": fetch_info})
                .to_string()
                .into_response()
        }
        ("fetch", [_, hash]) => {
            let _ = query;
            let Some(data) = s.xorbs.get(*hash).cloned() else {
                return StatusCode::NOT_FOUND.into_response();
            };
            drop(s);
            ranged(headers, data, post)
        }
        ("chunk", [_, _, _, hash]) => match s.dedup.get(*hash) {
            Some(b) => b.clone().into_response(),
            None => (StatusCode::NOT_FOUND, "Shard not found").into_response(),
        },
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

fn ranged(headers: &HeaderMap, data: Bytes, fault: Option<Fault>) -> Response {
    let spec = headers.get("range").and_then(|v| v.to_str().ok()).unwrap_or("");
    let ranges: Vec<(usize, usize)> = spec
        .trim_start_matches("bytes=")
        .split(',')
        .filter_map(|r| {
            let (a, b) = r.split_once('-')?;
            Some((a.trim().parse().ok()?, b.trim().parse().ok()?))
        })
        .collect();
    let mut parts: Vec<Vec<u8>> = ranges
        .iter()
        .map(|&(a, b)| data[a.min(data.len())..(b + 1).min(data.len())].to_vec())
        .collect();
    match fault {
        Some(Fault::Truncate) => {
            if let Some(p) = parts.last_mut() {
                p.truncate(p.len() / 2);
            }
        }
        Some(Fault::Corrupt) => {
            if let Some(p) = parts.first_mut() {
                let i = p.len() / 2;
                p[i] ^= 0x55;
            }
        }
        _ => {}
    }
    if parts.len() == 1 {
        let (a, b) = ranges[0];
        let mut r = Response::new(Body::from(parts.pop().unwrap()));
        *r.status_mut() = StatusCode::PARTIAL_CONTENT;
        r.headers_mut().insert(
            "content-range",
            HeaderValue::from_str(&format!("bytes {a}-{b}/{}", data.len())).unwrap(),
        );
        return r;
    }
    let mut body = Vec::new();
    for (p, &(a, b)) in parts.iter().zip(&ranges) {
        body.extend_from_slice(
            format!("--BOUNDARY\r\nContent-Type: application/octet-stream\r\nContent-Range: bytes {a}-{b}/{}\r\n\r\n", data.len())
                .as_bytes(),
        );
        body.extend_from_slice(p);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"--BOUNDARY--\r\n");
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = StatusCode::PARTIAL_CONTENT;
    r.headers_mut().insert(
        "content-type",
        HeaderValue::from_static("multipart/byteranges; boundary=BOUNDARY"),
    );
    r
}

fn err_response(e: xet_transfer::Error) -> Response {
    match e {
        xet_transfer::Error::NotFound { .. } => StatusCode::NOT_FOUND.into_response(),
        xet_transfer::Error::RangeNotSatisfiable { .. } => StatusCode::RANGE_NOT_SATISFIABLE.into_response(),
        other => (StatusCode::BAD_REQUEST, other.to_string()).into_response(),
    }
}

#[allow(clippy::too_many_arguments)]
async fn backend_answer(
    state: &Arc<Mutex<MockState>>,
    b: &Arc<MemoryCas>,
    base: &str,
    route: &str,
    segs: &[&str],
    headers: &HeaderMap,
    body: Bytes,
    post: Option<Fault>,
) -> Response {
    let hash = |s: &str| s.parse::<xet_format::MerkleHash>().unwrap();
    match (route, segs) {
        ("grant", [_, _, _, h]) => {
            if b.xorb(&hash(h)).is_some() {
                return StatusCode::OK.into_response();
            }
            let grant = serde_json::json!({
                "id": "g1", "method": "PUT", "url": format!("{base}/uploads/{h}"),
                "headers": {"if-none-match": "*"}
            });
            (StatusCode::CREATED, grant.to_string()).into_response()
        }
        ("put", [_, h]) => {
            state.lock().unwrap().xorbs.insert(format!("pending-{h}"), body);
            StatusCode::OK.into_response()
        }
        ("commit", [_, _, _, h, "grant", _]) => {
            let Some(data) = state.lock().unwrap().xorbs.remove(&format!("pending-{h}")) else {
                return StatusCode::BAD_REQUEST.into_response();
            };
            match b.put_xorb(&hash(h), data.into()).await {
                Ok(_) => StatusCode::OK.into_response(),
                Err(e) => err_response(e),
            }
        }
        ("xorb", [_, _, _, h]) => match b.put_xorb(&hash(h), body.into()).await {
            Ok(was) => serde_json::json!({ "was_inserted": was })
                .to_string()
                .into_response(),
            Err(e) => err_response(e),
        },
        ("v2shards", _) => {
            let line = match b.put_shard(body).await {
                Ok(new) => format!("{{\"type\":\"result\",\"result\":{}}}\n", u8::from(new)),
                Err(e) => serde_json::json!({"type": "error", "message": e.to_string()}).to_string() + "\n",
            };
            ([("content-type", "application/x-ndjson")], line).into_response()
        }
        ("shard", _) => match b.put_shard(body).await {
            Ok(new) => serde_json::json!({ "result": u8::from(new) })
                .to_string()
                .into_response(),
            Err(e) => err_response(e),
        },
        ("v2recon", [_, _, h]) => {
            let range = headers
                .get("range")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("bytes="))
                .and_then(|v| v.split_once('-'))
                .map(|(a, z)| (a.parse().unwrap(), z.parse().unwrap()));
            match b.reconstruction(&hash(h), range).await {
                Ok(mut r) => {
                    for fs in r.xorbs.values_mut() {
                        for f in fs {
                            f.url = f.url.replace("memory://", &format!("{base}/fetch/"));
                        }
                    }
                    serde_json::to_string(&r).unwrap().into_response()
                }
                Err(e) => err_response(e),
            }
        }
        ("fetch", [_, h]) => match b.xorb(&hash(h)) {
            Some(data) => ranged(headers, data, post),
            None => StatusCode::NOT_FOUND.into_response(),
        },
        ("chunk", [_, _, _, h]) => match b.query_dedup(&hash(h)).await {
            Ok(Some(shard)) => shard.into_response(),
            Ok(None) => (StatusCode::NOT_FOUND, "Shard not found").into_response(),
            Err(e) => err_response(e),
        },
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}
