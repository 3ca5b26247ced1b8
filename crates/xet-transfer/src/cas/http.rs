//! [`HttpCas`]: the CAS HTTP API (§10) as the official client speaks it
//! (CLIENT-WIRE.md), with its fallbacks to the spec's v1 routes for older servers.
//!
//! Routes, newest first, each falling back on 404/501 and remembering the answer:
//! xorbs through grant -> PUT -> commit, else `POST /v1/xorbs/default/{hash}`;
//! shards to `/v2/shards` (NDJSON), else `/v1/shards`; reconstructions from
//! `/v2/reconstructions`, else `/v1/reconstructions` converted to V2.
//!
//! Resilience: every call is retried with exponential backoff and jitter on
//! connection errors, 408/429/5xx (honouring `Retry-After`) and corrupt bodies; a
//! watchdog fails an attempt when no byte arrives for `stall_timeout`; a 401
//! refreshes the token and retries once at no cost to the retry budget.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use reqwest::header::{
    HeaderMap, HeaderValue, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, RANGE, RETRY_AFTER,
};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use xet_format::api::{
    GrantChecksum, ReconstructionV1, ReconstructionV2, ShardUploadEvent, UploadShardResponse,
    UploadXorbResponse, XorbGrant, XorbGrantRequest, XorbMultiRangeFetch,
};
use xet_format::{AlignedBuf, MerkleHash};

use crate::auth::{Auth, CasToken, TokenRefresher, TokenSource};
use crate::cas::{BoxFuture, Cas, XorbBody};
use crate::config::RetryConfig;
use crate::{Config, Error, Result};
use xet_format::bufpool::{FillError, Filler, Pool};

/// Prefix of xorb and dedup routes. The official client sends `default` for both
/// (CLIENT-WIRE.md; §14 item 11), and so do we.
const PREFIX: &str = "default";

/// Route versions detected so far (0 = not yet known).
const UNKNOWN: u8 = 0;
const NEW: u8 = 2;
const OLD: u8 = 1;

/// A CAS server over HTTP(S). Cheap to share (`Arc`); one connection pool.
pub struct HttpCas {
    endpoint: String,
    client: reqwest::Client,
    tokens: TokenSource,
    retry: RetryConfig,
    stall: Duration,
    session_id: String,
    xorb_route: AtomicU8,
    shard_route: AtomicU8,
    recon_route: AtomicU8,
    /// Buffers large bodies (xorb ranges, shards) are read into.
    buffers: Arc<Pool<AlignedBuf>>,
}

impl std::fmt::Debug for HttpCas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpCas")
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl HttpCas {
    /// A client for the CAS at `endpoint` (e.g. `http://127.0.0.1:8080`).
    pub fn new(endpoint: &str, auth: Auth, config: &Config) -> Result<Self> {
        let endpoint = endpoint.trim_end_matches('/').to_string();
        if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
            return Err(Error::Config(format!(
                "endpoint `{endpoint}` should start with http:// or https://"
            )));
        }
        let client = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_nodelay(true)
            .user_agent(
                config
                    .user_agent
                    .as_deref()
                    .unwrap_or(concat!("xet-rs/", env!("CARGO_PKG_VERSION"))),
            )
            .build()
            .map_err(|e| Error::Config(format!("HTTP client: {e}")))?;
        Ok(HttpCas {
            endpoint,
            client,
            tokens: TokenSource::new(auth, config.token_refresh_margin),
            retry: config.retry.clone(),
            stall: config.stall_timeout,
            session_id: session_id(),
            xorb_route: AtomicU8::new(UNKNOWN),
            shard_route: AtomicU8::new(UNKNOWN),
            recon_route: AtomicU8::new(UNKNOWN),
            // About the fetches a download has in flight at once.
            buffers: Pool::new(2),
        })
    }

    /// A client whose endpoint comes from the first token's `casUrl` (Hub style,
    /// §11.1): gets one token now, then refreshes through `refresher`.
    pub async fn from_refresher(
        refresher: std::sync::Arc<dyn TokenRefresher>,
        config: &Config,
    ) -> Result<Self> {
        let first: CasToken = refresher.refresh().await?;
        let endpoint = first
            .cas_url
            .clone()
            .ok_or_else(|| Error::Config("the token endpoint gave no casUrl".into()))?;
        HttpCas::new(
            &endpoint,
            Auth::Refreshing {
                refresher,
                initial: Some(first),
            },
            config,
        )
    }

    /// The CAS base URL.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.endpoint, path)
    }

    /// A transfer URL from the server, made absolute if the server sent a path.
    fn absolute(&self, url: &str) -> String {
        if url.starts_with("http://") || url.starts_with("https://") {
            url.to_string()
        } else {
            format!("{}/{}", self.endpoint, url.trim_start_matches('/'))
        }
    }

    /// One attempt: sends with the bearer token (if `auth`), refreshing and resending
    /// once on 401. Returns the response whatever its status, except 401s.
    async fn send(
        &self,
        op: &str,
        auth: bool,
        body_len: u64,
        build: &(dyn Fn() -> RequestBuilder + Send + Sync),
    ) -> Result<Response> {
        let mut refreshed = false;
        loop {
            let token = if auth { self.tokens.token().await? } else { None };
            let mut req = build().header("X-Xet-Session-Id", &self.session_id);
            if let Some(t) = &token {
                req = req.bearer_auth(t);
            }
            // Headers must come within the stall timeout plus the time to send the
            // body at a modest 256 KiB/s: a slow uplink is not a stall.
            let limit = self.stall + Duration::from_secs(body_len / (256 << 10));
            let resp = watched(op, limit, req.send()).await?;
            if resp.status() == StatusCode::UNAUTHORIZED
                && auth
                && !refreshed
                && self.tokens.invalidate(token.as_deref()).await
            {
                tracing::debug!(op, "401: refreshing the CAS token and retrying");
                refreshed = true;
                continue;
            }
            return Ok(resp);
        }
    }

    /// Reads the whole body under the stall watchdog, checking `Content-Length`.
    async fn body(&self, op: &str, mut resp: Response) -> Result<Bytes> {
        read_body(op, &mut resp, self.stall, &self.buffers).await
    }
}

/// Runs `attempt` until it succeeds, fails for good, or the attempts run out.
pub(crate) async fn retry_loop<T, F, Fut>(retry: &RetryConfig, op: &str, mut attempt: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let mut n = 0u32;
    loop {
        n += 1;
        match attempt().await {
            Ok(v) => return Ok(v),
            Err(e) if e.is_retryable() && n < retry.max_attempts => {
                let backoff = retry
                    .base_delay
                    .saturating_mul(1 << (n - 1).min(16))
                    .min(retry.max_delay);
                // Full jitter in [backoff/2, backoff): spreads clients that failed
                // together so they do not retry together.
                let jittered = backoff / 2 + backoff.mul_f64(jitter() * 0.5);
                let delay = e.retry_after().map_or(jittered, |ra| ra.min(retry.max_delay));
                tracing::warn!(op, attempt = n, ?delay, error = %e, "retrying");
                tokio::time::sleep(delay).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// A number in [0, 1) that differs between calls and processes.
fn jitter() -> f64 {
    use std::sync::atomic::AtomicU64;
    static STATE: AtomicU64 = AtomicU64::new(0);
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos() as u64;
    let mut x =
        STATE.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed) ^ seed ^ u64::from(std::process::id());
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    (x >> 11) as f64 / (1u64 << 53) as f64
}

fn session_id() -> String {
    format!(
        "{:016x}{:016x}",
        (jitter() * u64::MAX as f64) as u64,
        (jitter() * u64::MAX as f64) as u64
    )
}

/// Reads a body chunk by chunk; no chunk for `stall` -> [`Error::Stalled`]; fewer
/// bytes than `Content-Length` -> [`Error::Corrupt`] (truncated).
async fn read_body(
    op: &str,
    resp: &mut Response,
    stall: Duration,
    pool: &Arc<Pool<AlignedBuf>>,
) -> Result<Bytes> {
    let expected = resp
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let too_long = |n: u64| {
        Error::protocol(
            op,
            format!("the body has more than {n} bytes, more than any answer this client asks for"),
        )
    };
    match expected {
        Some(n) if n > MAX_BODY => Err(too_long(MAX_BODY)),
        // Large bodies (xorb ranges, shards) go into a reused page-aligned buffer:
        // no page faults once the pool is warm, and fast copies into files later.
        Some(n) if n >= POOLED_BODY => {
            let refused = |e: FillError| Error::corrupt(format!("{op}: {e}"));
            let mut body = Filler::new(pool, n as usize);
            while let Some(c) = watched(op, stall, resp.chunk()).await? {
                body.push(&c).map_err(refused)?;
            }
            Ok(Bytes::from_owner(body.finish().map_err(refused)?))
        }
        _ => {
            let limit = expected.unwrap_or(MAX_BODY);
            let mut buf = BytesMut::with_capacity(expected.unwrap_or(0).min(256 << 20) as usize);
            // A body cut short shows up as a transport error: retryable.
            while let Some(c) = watched(op, stall, resp.chunk()).await? {
                if (buf.len() + c.len()) as u64 > limit {
                    return Err(match expected {
                        Some(n) => {
                            Error::corrupt(format!("{op}: body is longer than its Content-Length {n}"))
                        }
                        None => too_long(MAX_BODY),
                    });
                }
                buf.extend_from_slice(&c);
            }
            if let Some(n) = expected {
                if buf.len() as u64 != n {
                    return Err(Error::corrupt(format!(
                        "{op}: body has {} bytes, Content-Length said {n}",
                        buf.len()
                    )));
                }
            }
            Ok(buf.freeze())
        }
    }
}

/// The largest body read: a reconstruction of a very large file, far above any
/// xorb range or shard (64 MiB each). A longer body is refused, not buffered.
const MAX_BODY: u64 = 1 << 30;
/// Bodies at least this large are read into pooled buffers.
const POOLED_BODY: u64 = 1 << 20;

/// Maps a non-success status to an error, reading the body for the message.
async fn status_error(op: &str, resp: Response) -> Error {
    let status = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let message = match tokio::time::timeout(Duration::from_secs(5), resp.text()).await {
        Ok(Ok(t)) => t.chars().take(500).collect::<String>().trim().to_string(),
        _ => String::new(),
    };
    let op = op.to_string();
    match status {
        401 | 403 => Error::Unauthorized { op, status, message },
        404 => Error::NotFound { what: op },
        408 | 429 | 500..=599 => Error::Server {
            op,
            status,
            message,
            retry_after,
        },
        _ => Error::Rejected { op, status, message },
    }
}

fn falls_back(status: StatusCode) -> bool {
    status == StatusCode::NOT_FOUND || status == StatusCode::NOT_IMPLEMENTED
}

/// The single or multipart (`multipart/byteranges`) body of a ranged GET, split
/// into the asked ranges (inclusive `(start, end)`), each checked for length.
fn split_ranges(
    op: &str,
    status: StatusCode,
    headers: &HeaderMap,
    body: Bytes,
    ranges: &[(u64, u64)],
) -> Result<Vec<Bytes>> {
    let want_len = |(s, e): (u64, u64)| (e - s + 1) as usize;
    let ctype = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if status == StatusCode::OK {
        // The server ignored Range and sent the whole object: cut it ourselves.
        return ranges
            .iter()
            .map(|&(s, e)| {
                body.get(s as usize..=e as usize)
                    .map(|b| body.slice_ref(b))
                    .ok_or_else(|| Error::corrupt(format!("{op}: object too short for bytes {s}-{e}")))
            })
            .collect();
    }
    if let Some(boundary) = ctype
        .strip_prefix("multipart/byteranges")
        .and_then(|rest| rest.split("boundary=").nth(1))
    {
        let boundary = boundary.trim_matches('"').split(';').next().unwrap_or("").trim();
        let parts = parse_multipart(&body, boundary)
            .ok_or_else(|| Error::corrupt(format!("{op}: malformed multipart/byteranges body")))?;
        return ranges
            .iter()
            .map(|&(s, e)| {
                parts
                    .iter()
                    .find(|(ps, pe, _)| *ps == s && *pe == e)
                    .map(|(_, _, b)| b.clone())
                    .ok_or_else(|| Error::corrupt(format!("{op}: multipart body lacks bytes {s}-{e}")))
            })
            .collect();
    }
    match ranges {
        [r] => {
            if body.len() != want_len(*r) {
                return Err(Error::corrupt(format!(
                    "{op}: got {} bytes for range {}-{}",
                    body.len(),
                    r.0,
                    r.1
                )));
            }
            if let Some((s, e)) = headers
                .get(CONTENT_RANGE)
                .and_then(|v| v.to_str().ok())
                .and_then(parse_content_range)
            {
                if (s, e) != *r {
                    return Err(Error::corrupt(format!(
                        "{op}: server sent bytes {s}-{e}, asked {}-{}",
                        r.0, r.1
                    )));
                }
            }
            Ok(vec![body])
        }
        _ => Err(Error::corrupt(format!(
            "{op}: several ranges asked, single-part answer"
        ))),
    }
}

/// `bytes S-E/T` -> `(S, E)`.
fn parse_content_range(v: &str) -> Option<(u64, u64)> {
    let v = v.trim().strip_prefix("bytes")?.trim();
    let (range, _) = v.split_once('/')?;
    let (s, e) = range.split_once('-')?;
    Some((s.trim().parse().ok()?, e.trim().parse().ok()?))
}

/// Parts of a `multipart/byteranges` body as `(start, end, bytes)`.
fn parse_multipart(body: &Bytes, boundary: &str) -> Option<Vec<(u64, u64, Bytes)>> {
    let delim = format!("--{boundary}");
    let find = |hay: &[u8], needle: &[u8], from: usize| -> Option<usize> {
        hay.get(from..)?
            .windows(needle.len())
            .position(|w| w == needle)
            .map(|p| p + from)
    };
    let mut parts = Vec::new();
    let mut pos = find(body, delim.as_bytes(), 0)?;
    loop {
        pos += delim.len();
        if body.get(pos..pos + 2) == Some(b"--") {
            return Some(parts);
        }
        let head_end = find(body, b"\r\n\r\n", pos)?;
        let head = std::str::from_utf8(&body[pos..head_end]).ok()?;
        let (s, e) = head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case("content-range")
                .then(|| parse_content_range(v))?
        })?;
        let data_start = head_end + 4;
        let data_end = data_start.checked_add(usize::try_from(e.checked_sub(s)? + 1).ok()?)?;
        if data_end > body.len() {
            return None;
        }
        parts.push((s, e, body.slice(data_start..data_end)));
        // The part must end exactly where its Content-Range says: a short part
        // (truncated by a proxy or a faulty server) would otherwise swallow the
        // delimiter and pass as data.
        let next = data_end + 2;
        if body.get(data_end..next) != Some(b"\r\n") || !body[next..].starts_with(delim.as_bytes()) {
            return None;
        }
        pos = next;
    }
}

impl Cas for HttpCas {
    fn put_xorb<'a>(&'a self, hash: &'a MerkleHash, body: XorbBody) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            let op = format!("upload xorb {hash}");
            // Checksummed once, off the async workers (64 MiB of CPU work).
            let b2 = body.clone();
            let crc = tokio::task::spawn_blocking(move || b2.crc64())
                .await
                .map_err(|e| Error::protocol(&op, format!("checksum task failed: {e}")))?;
            retry_loop(&self.retry, &op, || {
                self.put_xorb_once(&op, hash, body.clone(), crc)
            })
            .await
        })
    }

    fn put_shard(&self, body: Bytes) -> BoxFuture<'_, Result<bool>> {
        Box::pin(async move {
            let op = "upload shard".to_string();
            retry_loop(&self.retry, &op, || self.put_shard_once(&op, body.clone())).await
        })
    }

    fn reconstruction<'a>(
        &'a self,
        file: &'a MerkleHash,
        range: Option<(u64, u64)>,
    ) -> BoxFuture<'a, Result<ReconstructionV2>> {
        Box::pin(async move {
            let op = format!("reconstruction of file {file}");
            retry_loop(&self.retry, &op, || self.reconstruction_once(&op, file, range)).await
        })
    }

    fn fetch_ranges<'a>(
        &'a self,
        xorb: &'a MerkleHash,
        fetch: &'a XorbMultiRangeFetch,
    ) -> BoxFuture<'a, Result<Vec<Bytes>>> {
        Box::pin(async move {
            let op = format!("download of xorb {xorb}");
            retry_loop(&self.retry, &op, || self.fetch_once(&op, fetch)).await
        })
    }

    fn query_dedup<'a>(&'a self, chunk: &'a MerkleHash) -> BoxFuture<'a, Result<Option<Bytes>>> {
        Box::pin(async move {
            // One attempt only: dedup is an optimisation and xet-core treats any
            // failure here as "no match" (§8.2); the caller does the same.
            let op = format!("global dedup query for chunk {chunk}");
            let url = self.url(&format!("/v1/chunks/{PREFIX}/{chunk}"));
            let resp = self.send(&op, true, 0, &|| self.client.get(&url)).await?;
            match resp.status() {
                s if s.is_success() => Ok(Some(self.body(&op, resp).await?)),
                StatusCode::NOT_FOUND => Ok(None),
                _ => Err(status_error(&op, resp).await),
            }
        })
    }
}

impl HttpCas {
    async fn put_xorb_once(&self, op: &str, hash: &MerkleHash, body: XorbBody, crc: u64) -> Result<bool> {
        if self.xorb_route.load(Ordering::Relaxed) != OLD {
            let url = self.url(&format!("/v1/xorb-grants/{PREFIX}/{hash}"));
            let req = XorbGrantRequest {
                length: body.len() as u64,
                checksum: GrantChecksum {
                    algo: "crc64nvme".into(),
                    value: crc.to_string(),
                },
            };
            let json = serde_json::to_vec(&req).map_err(|e| Error::protocol(op, e.to_string()))?;
            let resp = self
                .send(op, true, 0, &|| {
                    self.client
                        .post(&url)
                        .header(CONTENT_TYPE, "application/json")
                        .body(json.clone())
                })
                .await?;
            let status = resp.status();
            if falls_back(status) {
                tracing::debug!("no xorb grants on this server: using POST /v1/xorbs");
                self.xorb_route.store(OLD, Ordering::Relaxed);
            } else if status == StatusCode::OK {
                // 200 with no grant: the xorb is already stored (CLIENT-WIRE.md).
                self.xorb_route.store(NEW, Ordering::Relaxed);
                return Ok(false);
            } else if status.is_success() {
                self.xorb_route.store(NEW, Ordering::Relaxed);
                let raw = self.body(op, resp).await?;
                let grant: XorbGrant = serde_json::from_slice(&raw)
                    .map_err(|e| Error::protocol(op, format!("bad grant: {e}")))?;
                return self.upload_granted(op, hash, grant, body).await;
            } else {
                return Err(status_error(op, resp).await);
            }
        }
        let url = self.url(&format!("/v1/xorbs/{PREFIX}/{hash}"));
        let len = body.len() as u64;
        let resp = self
            .send(op, true, len, &|| with_body(self.client.post(&url), &body))
            .await?;
        if !resp.status().is_success() {
            return Err(status_error(op, resp).await);
        }
        let raw = self.body(op, resp).await?;
        if raw.is_empty() {
            return Ok(true);
        }
        let r: UploadXorbResponse =
            serde_json::from_slice(&raw).map_err(|e| Error::protocol(op, format!("bad xorb answer: {e}")))?;
        Ok(r.was_inserted)
    }

    async fn upload_granted(
        &self,
        op: &str,
        hash: &MerkleHash,
        grant: XorbGrant,
        body: XorbBody,
    ) -> Result<bool> {
        let method = Method::from_bytes(grant.method.as_bytes())
            .map_err(|_| Error::protocol(op, format!("grant method `{}`", grant.method)))?;
        let url = self.absolute(&grant.url);
        let len = body.len() as u64;
        // The upload URL carries its own authorisation: no bearer token (§10.7).
        let resp = self
            .send(op, false, len, &|| {
                let mut r = with_body(self.client.request(method.clone(), &url), &body);
                for (k, v) in &grant.headers {
                    r = r.header(k.as_str(), v.as_str());
                }
                r
            })
            .await?;
        let status = resp.status();
        // 412: an earlier attempt already put these bytes (If-None-Match: *).
        if !status.is_success() && status != StatusCode::PRECONDITION_FAILED {
            return Err(status_error(op, resp).await);
        }
        let commit = self.url(&format!("/v1/xorb-commits/{PREFIX}/{hash}/grant/{}", grant.id));
        let resp = self.send(op, true, 0, &|| self.client.post(&commit)).await?;
        if !resp.status().is_success() {
            return Err(status_error(op, resp).await);
        }
        Ok(true)
    }

    async fn put_shard_once(&self, op: &str, body: Bytes) -> Result<bool> {
        let len = body.len() as u64;
        if self.shard_route.load(Ordering::Relaxed) != OLD {
            let url = self.url("/v2/shards");
            let resp = self
                .send(op, true, len, &|| self.client.post(&url).body(body.clone()))
                .await?;
            let status = resp.status();
            if falls_back(status) {
                tracing::debug!("no /v2/shards on this server: using /v1/shards");
                self.shard_route.store(OLD, Ordering::Relaxed);
            } else if status.is_success() {
                self.shard_route.store(NEW, Ordering::Relaxed);
                return self.read_shard_events(op, resp).await;
            } else {
                return Err(status_error(op, resp).await);
            }
        }
        let url = self.url("/v1/shards");
        let resp = self
            .send(op, true, len, &|| self.client.post(&url).body(body.clone()))
            .await?;
        if !resp.status().is_success() {
            return Err(status_error(op, resp).await);
        }
        let raw = self.body(op, resp).await?;
        let r: UploadShardResponse = serde_json::from_slice(&raw)
            .map_err(|e| Error::protocol(op, format!("bad shard answer: {e}")))?;
        Ok(r.result != 0)
    }

    /// Reads `/v2/shards` NDJSON to its terminal event (§10.3). Heartbeats keep the
    /// stall watchdog quiet while the server validates.
    async fn read_shard_events(&self, op: &str, mut resp: Response) -> Result<bool> {
        let mut line = Vec::new();
        loop {
            let chunk = match watched(op, self.stall, resp.chunk()).await? {
                None => {
                    return Err(Error::corrupt(format!(
                        "{op}: event stream ended without a result"
                    )));
                }
                Some(c) => c,
            };
            line.extend_from_slice(&chunk);
            while let Some(nl) = line.iter().position(|&b| b == b'\n') {
                let one: Vec<u8> = line.drain(..=nl).collect();
                let text = std::str::from_utf8(&one).unwrap_or("").trim();
                if text.is_empty() {
                    continue;
                }
                match serde_json::from_str::<ShardUploadEvent>(text) {
                    Ok(ShardUploadEvent::Result { result }) => return Ok(result != Some(0)),
                    Ok(ShardUploadEvent::Error { message, retryable }) => {
                        // The status line said 200 before the stream began; say where
                        // the failure came from, or "(HTTP 200)" reads as a contradiction.
                        let message = format!("{message} (an error event in the 200 response's stream)");
                        return Err(if retryable {
                            Error::Server {
                                op: op.to_string(),
                                status: 200,
                                message,
                                retry_after: None,
                            }
                        } else {
                            Error::Rejected {
                                op: op.to_string(),
                                status: 200,
                                message,
                            }
                        });
                    }
                    Ok(_) => {}
                    Err(e) => tracing::debug!(op, error = %e, "ignoring unknown shard event"),
                }
            }
            // §10.3: a line is at most 1 MiB; more is not a well-behaved server.
            if line.len() > 1 << 20 {
                return Err(Error::protocol(op, "event line longer than 1 MiB"));
            }
        }
    }

    async fn reconstruction_once(
        &self,
        op: &str,
        file: &MerkleHash,
        range: Option<(u64, u64)>,
    ) -> Result<ReconstructionV2> {
        let with_range = |r: RequestBuilder| match range {
            Some((s, e)) => r.header(RANGE, format!("bytes={s}-{e}")),
            None => r,
        };
        let map_status = |status: StatusCode| -> Option<Error> {
            match status {
                StatusCode::RANGE_NOT_SATISFIABLE => Some(match range {
                    Some((start, _)) => Error::RangeNotSatisfiable { file: *file, start },
                    // The official local server answers 416 for an unknown file.
                    None => Error::NotFound {
                        what: format!("file {file}"),
                    },
                }),
                StatusCode::NOT_FOUND => Some(Error::NotFound {
                    what: format!("file {file}"),
                }),
                _ => None,
            }
        };
        let route = self.recon_route.load(Ordering::Relaxed);
        if route != OLD {
            let url = self.url(&format!("/v2/reconstructions/{file}"));
            let resp = self
                .send(op, true, 0, &|| with_range(self.client.get(&url)))
                .await?;
            let status = resp.status();
            if status.is_success() {
                self.recon_route.store(NEW, Ordering::Relaxed);
                let raw = self.body(op, resp).await?;
                return serde_json::from_slice(&raw)
                    .map_err(|e| Error::protocol(op, format!("bad reconstruction: {e}")));
            }
            // A 404 from a server known to have V2 means the file is unknown.
            if !(status == StatusCode::NOT_IMPLEMENTED
                || (status == StatusCode::NOT_FOUND && route == UNKNOWN))
            {
                return Err(match map_status(status) {
                    Some(e) => e,
                    None => status_error(op, resp).await,
                });
            }
        }
        let url = self.url(&format!("/v1/reconstructions/{file}"));
        let resp = self
            .send(op, true, 0, &|| with_range(self.client.get(&url)))
            .await?;
        let status = resp.status();
        if status.is_success() {
            if route == UNKNOWN {
                tracing::debug!("no /v2/reconstructions on this server: using /v1");
                self.recon_route.store(OLD, Ordering::Relaxed);
            }
            let raw = self.body(op, resp).await?;
            let v1: ReconstructionV1 = serde_json::from_slice(&raw)
                .map_err(|e| Error::protocol(op, format!("bad reconstruction: {e}")))?;
            return Ok(v1.into());
        }
        Err(match map_status(status) {
            Some(e) => e,
            None => status_error(op, resp).await,
        })
    }

    async fn fetch_once(&self, op: &str, fetch: &XorbMultiRangeFetch) -> Result<Vec<Bytes>> {
        let ranges: Vec<(u64, u64)> = fetch
            .ranges
            .iter()
            .map(|r| (r.bytes.start, r.bytes.end))
            .collect();
        if ranges.iter().any(|&(s, e)| e < s) {
            return Err(Error::protocol(op, "reconstruction has an inverted byte range"));
        }
        if ranges.is_empty() {
            return Ok(Vec::new());
        }
        let header = format!(
            "bytes={}",
            ranges
                .iter()
                .map(|(s, e)| format!("{s}-{e}"))
                .collect::<Vec<_>>()
                .join(",")
        );
        let url = self.absolute(&fetch.url);
        let hv = HeaderValue::from_str(&header).map_err(|e| Error::protocol(op, e.to_string()))?;
        // Transfer URLs carry their own authorisation (§9.4): no bearer token.
        let resp = self
            .send(op, false, 0, &|| self.client.get(&url).header(RANGE, hv.clone()))
            .await?;
        let status = resp.status();
        if !status.is_success() {
            return Err(status_error(op, resp).await);
        }
        let headers = resp.headers().clone();
        let body = self.body(op, resp).await?;
        split_ranges(op, status, &headers, body, &ranges)
    }
}

/// `req` with `body` as its body: one buffer as is, several pieces streamed in
/// order with their total as `Content-Length` (no copy into one buffer).
fn with_body(req: RequestBuilder, body: &XorbBody) -> RequestBuilder {
    match body.pieces() {
        [] => req.body(Bytes::new()),
        [one] => req.body(one.clone()),
        pieces => {
            let pieces: Vec<Bytes> = pieces.to_vec();
            let stream = futures::stream::iter(pieces.into_iter().map(Ok::<Bytes, std::io::Error>));
            req.header(CONTENT_LENGTH, body.len())
                .body(reqwest::Body::wrap_stream(stream))
        }
    }
}

/// Awaits one step of an HTTP exchange under the stall watchdog: no answer within
/// `limit` is [`Error::Stalled`], a transport error is [`Error::Connection`] (both
/// retryable).
async fn watched<T>(
    op: &str,
    limit: Duration,
    step: impl std::future::Future<Output = reqwest::Result<T>>,
) -> Result<T> {
    match tokio::time::timeout(limit, step).await {
        Err(_) => Err(Error::Stalled {
            op: op.to_string(),
            // Rounded up: a sub-second watchdog must not read "no progress for 0 s".
            secs: limit.as_secs() + u64::from(limit.subsec_nanos() > 0),
        }),
        Ok(Err(e)) => Err(Error::Connection {
            op: op.to_string(),
            source: e.without_url(),
        }),
        Ok(Ok(v)) => Ok(v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipart_parts() {
        let body = Bytes::from_static(
            b"--XYZ\r\nContent-Type: application/octet-stream\r\nContent-Range: bytes 0-2/10\r\n\r\nabc\r\n--XYZ\r\nContent-Range: bytes 5-6/10\r\n\r\nfg\r\n--XYZ--\r\n",
        );
        let parts = parse_multipart(&body, "XYZ").unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!((parts[0].0, parts[0].1, &parts[0].2[..]), (0, 2, &b"abc"[..]));
        assert_eq!((parts[1].0, parts[1].1, &parts[1].2[..]), (5, 6, &b"fg"[..]));
        assert!(parse_multipart(
            &Bytes::from_static(b"--XYZ\r\nContent-Range: bytes 0-9/10\r\n\r\nab"),
            "XYZ"
        )
        .is_none());
    }

    #[test]
    fn content_range() {
        assert_eq!(parse_content_range("bytes 3-9/100"), Some((3, 9)));
        assert_eq!(parse_content_range("bytes 3-9/*"), Some((3, 9)));
        assert_eq!(parse_content_range("items 3-9/100"), None);
    }

    #[test]
    fn jitter_in_unit_interval() {
        for _ in 0..1000 {
            let j = jitter();
            assert!((0.0..1.0).contains(&j));
        }
    }
}
