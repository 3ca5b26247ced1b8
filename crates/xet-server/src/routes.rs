//! The HTTP handlers: CAS API v1 + v2 (XET-PROTOCOL.md §10.2), the grant flow and
//! signed transfer URLs the official client uses (CLIENT-WIRE.md, §10.7), and the
//! Hub's xet token endpoints (§11.1).

use std::collections::BTreeMap;
use std::convert::Infallible;

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, head, post, put};
use axum::{Json, Router};
use xet_format::api::{
    BatchReconstructionV1, CommitStage, FetchInfoV1, FileKey, ReconstructionV1, ReconstructionV2,
    ShardUploadEvent, UploadShardResponse, UploadXorbResponse, XetTokenResponse, XorbGrant, XorbGrantRequest,
    XorbMultiRangeFetch, XorbRangeDescriptor,
};
use xet_format::MerkleHash;
use xet_store::{Reconstruction, ShardProgress, MAX_XORB_UPLOAD_BYTES};

use crate::auth::Scope;
use crate::error::{Error, Result};
use crate::range::{parse_byte_ranges, parse_single_range, ranges_to_string};
use crate::{AppState, Stats};

/// Most ranges one signed fetch URL carries; more get another URL (§9.2: the
/// official server splits long URLs, at roughly 500 ranges).
const RANGES_PER_URL: usize = 256;

/// Longest `kind/namespace/name@revision` a CAS token records (Hub repository ids
/// are at most 96 characters; revisions are branch names or 40-hex commits). Keeps
/// tokens, sent in every request header, short.
const MAX_REPO_CLAIM_BYTES: usize = 512;

/// Longest grant id accepted in a commit path (ours are at most 95 characters).
const MAX_GRANT_ID_BYTES: usize = 128;

/// Largest telemetry body (§10.2 #11).
const MAX_TELEMETRY_BYTES: usize = 1 << 20;

pub(crate) fn router(state: AppState) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/v1/chunks/{prefix}/{hash}", get(dedup_query))
        .route("/v1/xorb-grants/{prefix}/{hash}", post(xorb_grant))
        .route("/v1/xorb-uploads/{hash}", put(xorb_upload))
        .route("/v1/xorb-commits/{prefix}/{hash}/grant/{id}", post(xorb_commit))
        .route("/v1/xorbs/{prefix}/{hash}", post(xorb_post).head(xorb_head))
        .route("/v1/shards", post(shard_v1))
        .route("/v2/shards", post(shard_v2))
        .route(
            "/v1/reconstructions",
            post(batch_reconstruction_post).get(batch_reconstruction_get),
        )
        .route("/v1/reconstructions/{file}", get(reconstruction_v1))
        .route("/v2/reconstructions/{file}", get(reconstruction_v2))
        .route("/v1/files/{file}", head(file_head))
        .route("/v2/file-chunk-hashes/{file}", get(file_chunk_hashes))
        .route("/v1/telemetry", post(telemetry))
        .route("/v1/fetch/{hash}", get(fetch))
        .route("/api/{*rest}", get(hub_token))
        .fallback(|| async { Error::NotFound("no such route".into()) })
        .layer(DefaultBodyLimit::max(MAX_XORB_UPLOAD_BYTES))
        .layer(axum::middleware::from_fn(log_request))
        .with_state(state)
}

/// One debug line per request (the query is left out: it carries URL signatures),
/// an `X-Request-Id` response header naming the request in the server's log
/// (§10.1: clients log it, so a user's report can be matched to the server's
/// lines; every log line of the request carries it), and axum's own body-limit
/// refusal turned into our error shape.
async fn log_request(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    use tracing::Instrument;
    let (method, path) = (req.method().clone(), req.uri().path().to_string());
    let request_id = random_id();
    let span = tracing::debug_span!("request", id = %request_id);
    let mut resp = next.run(req).instrument(span.clone()).await;
    if resp.status() == StatusCode::PAYLOAD_TOO_LARGE
        && resp
            .headers()
            .get(header::CONTENT_TYPE)
            .is_none_or(|v| v != "application/json")
    {
        resp = Error::PayloadTooLarge(format!(
            "request body over the limit of {MAX_XORB_UPLOAD_BYTES} bytes (64 MiB xorbs, §6.1)"
        ))
        .into_response();
    }
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        resp.headers_mut().insert(REQUEST_ID_HEADER, v);
    }
    span.in_scope(|| tracing::debug!(%method, %path, status = resp.status().as_u16(), "request"));
    resp
}

/// The response header naming a request (§10.1, xet-core `REQUEST_ID_HEADER`).
const REQUEST_ID_HEADER: &str = "x-request-id";

fn parse_hash(s: &str) -> Result<MerkleHash> {
    s.parse().map_err(|e| {
        Error::BadRequest(format!(
            "{e}: hashes in paths are 64 lowercase hex characters (§2)"
        ))
    })
}

fn check_prefix(prefix: &str) -> Result<()> {
    // The spec names `default-merkledb` for dedup and `default` for xorbs; the official
    // client sends `default` everywhere (CLIENT-WIRE.md, §14 #11). Accept both.
    match prefix {
        "default" | "default-merkledb" => Ok(()),
        _ => Err(Error::BadRequest(format!(
            "unknown prefix {prefix:?}: use \"default\""
        ))),
    }
}

fn auth(state: &AppState, headers: &HeaderMap, need: Scope) -> Result<()> {
    let value = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    state.auth.check(value, need).map_err(Error::from)
}

/// The URL clients reach this server at: the configured one, else `http://{Host}`.
fn base_url(state: &AppState, headers: &HeaderMap) -> String {
    if let Some(u) = &state.public_url {
        return u.trim_end_matches('/').to_string();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    format!("http://{host}")
}

fn query_param<'a>(query: &'a Option<String>, key: &str) -> Option<&'a str> {
    query
        .as_deref()?
        .split('&')
        .find_map(|p| p.strip_prefix(key)?.strip_prefix('='))
}

fn random_id() -> String {
    let mut b = [0u8; 16];
    xet_store::random_bytes(&mut b);
    xet_format::hash::hex(&b)
}

async fn health() -> &'static str {
    "ok"
}

async fn dedup_query(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((prefix, hash)): Path<(String, String)>,
) -> Result<Response> {
    auth(&state, &headers, Scope::Read)?;
    check_prefix(&prefix)?;
    let chunk = parse_hash(&hash)?;
    Stats::bump(&state.stats.dedup_queries);
    match state.store.dedup_shard(&chunk).await? {
        Some(shard) => Ok(([(header::CONTENT_TYPE, "application/octet-stream")], shard).into_response()),
        None => Err(Error::NotFound(format!("no shard indexes chunk {chunk}"))),
    }
}

/// Grant flow step 1 (§10.7): an upload URL signed for this xorb, length and CRC.
async fn xorb_grant(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((prefix, hash)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response> {
    auth(&state, &headers, Scope::Write)?;
    check_prefix(&prefix)?;
    let xorb = parse_hash(&hash)?;
    let req: XorbGrantRequest =
        serde_json::from_slice(&body).map_err(|e| Error::BadRequest(format!("grant request body: {e}")))?;
    if req.checksum.algo != "crc64nvme" {
        return Err(Error::BadRequest(format!(
            "checksum algorithm {:?} is not supported: use crc64nvme",
            req.checksum.algo
        )));
    }
    let crc: u64 = req
        .checksum
        .value
        .parse()
        .map_err(|_| Error::BadRequest("checksum value must be a decimal u64".into()))?;
    if req.length > MAX_XORB_UPLOAD_BYTES as u64 {
        return Err(Error::PayloadTooLarge(format!(
            "xorb of {} bytes is over the limit of {MAX_XORB_UPLOAD_BYTES}",
            req.length
        )));
    }
    // Already stored: 200 with an empty body tells the client to skip the upload.
    if state.store.xorb_len(&xorb).await?.is_some() {
        return Ok(StatusCode::OK.into_response());
    }
    Stats::bump(&state.stats.xorb_grants);
    // With an S3 backend the client PUTs straight to the bucket (bytes never pass
    // through here), to a URL signed for exactly `length` bytes; the commit then
    // checks the length and CRC recorded in the grant id, and validates. Otherwise
    // the PUT comes to us.
    let grant = match state
        .store
        .presign_xorb_upload(&xorb, req.length, crc, state.auth.url_ttl.as_secs())?
    {
        Some(staged) => XorbGrant {
            url: staged.url,
            id: staged.id,
            method: "PUT".into(),
            headers: Default::default(),
        },
        None => {
            let id = random_id();
            let query = state.auth.sign_upload(&hash, &id, req.length, crc);
            XorbGrant {
                url: format!("{}/v1/xorb-uploads/{hash}?{query}", base_url(&state, &headers)),
                id,
                method: "PUT".into(),
                headers: [("if-none-match".to_string(), "*".to_string())].into(),
            }
        }
    };
    Ok((StatusCode::CREATED, Json(grant)).into_response())
}

/// Grant flow step 2: the PUT to the signed URL (no `Authorization`: the URL carries
/// it). The body is checked against the granted length and CRC, then validated and
/// stored like a direct upload, so it is never visible unvalidated.
async fn xorb_upload(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(hash): Path<String>,
    RawQuery(query): RawQuery,
    body: Body,
) -> Result<Response> {
    let q = |k: &str| query_param(&query, k).unwrap_or("");
    let checked = state
        .auth
        .verify_upload(&hash, q("grant"), q("len"), q("crc"), q("exp"), q("sig"))
        .map_err(Error::from)
        .and_then(|()| parse_hash(&hash));
    let (xorb, body) =
        crate::body::read_checked(checked, body, &headers, MAX_XORB_UPLOAD_BYTES, &state.bodies).await?;
    Stats::bump(&state.stats.xorb_bodies);
    if q("len") != body.len().to_string() {
        return Err(Error::BadRequest(format!(
            "body is {} bytes, the grant was for {}",
            body.len(),
            q("len")
        )));
    }
    let crc = xet_format::api::crc64_nvme(&body);
    if q("crc") != crc.to_string() {
        return Err(Error::BadRequest(format!(
            "body CRC-64/NVME is {crc}, the grant was for {}",
            q("crc")
        )));
    }
    let inserted = state.store.put_xorb(xorb, body).await?;
    if !inserted && headers.get(header::IF_NONE_MATCH).is_some_and(|v| v == "*") {
        return Err(Error::PreconditionFailed(format!("xorb {xorb} already exists")));
    }
    Ok(StatusCode::OK.into_response())
}

/// Grant flow step 3. Local store: the xorb is visible once its PUT succeeded, and
/// the commit confirms it is stored. S3: the commit checks the staged object
/// against the grant (length first, before reading it; then CRC and content) and
/// publishes it, see [`xet_store::Store::commit_staged_xorb`].
async fn xorb_commit(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((prefix, hash, id)): Path<(String, String, String)>,
) -> Result<Response> {
    auth(&state, &headers, Scope::Write)?;
    check_prefix(&prefix)?;
    let xorb = parse_hash(&hash)?;
    // Ids are ours: 32 hex (local) or the store's `[0-9a-f-]` form (S3).
    if id.is_empty()
        || id.len() > MAX_GRANT_ID_BYTES
        || !id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
    {
        return Err(Error::BadRequest(
            "grant id is not one this server issued: use the id of the grant answer".into(),
        ));
    }
    if state.store.has_direct_uploads() {
        match state.store.commit_staged_xorb(xorb, &id).await {
            Ok(_) => return Ok(StatusCode::OK.into_response()),
            // Nothing staged: fine if the xorb is stored already (a repeated commit).
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e.into()),
        }
    }
    match state.store.xorb_len(&xorb).await? {
        Some(_) => Ok(StatusCode::OK.into_response()),
        None => Err(Error::BadRequest(format!(
            "xorb {xorb} was not uploaded: PUT it to the granted URL before committing"
        ))),
    }
}

async fn xorb_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((prefix, hash)): Path<(String, String)>,
    body: Body,
) -> Result<Json<UploadXorbResponse>> {
    let checked = auth(&state, &headers, Scope::Write)
        .and_then(|()| check_prefix(&prefix))
        .and_then(|()| parse_hash(&hash));
    let (xorb, body) =
        crate::body::read_checked(checked, body, &headers, MAX_XORB_UPLOAD_BYTES, &state.bodies).await?;
    Stats::bump(&state.stats.xorb_bodies);
    Stats::bump(&state.stats.xorb_posts);
    let was_inserted = state.store.put_xorb(xorb, body).await?;
    Ok(Json(UploadXorbResponse { was_inserted }))
}

async fn xorb_head(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((prefix, hash)): Path<(String, String)>,
) -> Result<Response> {
    auth(&state, &headers, Scope::Read)?;
    check_prefix(&prefix)?;
    let xorb = parse_hash(&hash)?;
    let len = state
        .store
        .xorb_len(&xorb)
        .await?
        .ok_or(xet_store::Error::NotFound {
            what: "xorb",
            hash: xorb,
        })?;
    Ok(([(header::CONTENT_LENGTH, len.to_string())], Body::empty()).into_response())
}

async fn shard_v1(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<UploadShardResponse>> {
    auth(&state, &headers, Scope::Write)?;
    Stats::bump(&state.stats.shards_v1);
    let inserted = state.store.put_shard(body).await?;
    Ok(Json(UploadShardResponse {
        result: u8::from(inserted),
    }))
}

/// `/v2/shards`: 200 at once, then NDJSON progress and a terminal `result` or
/// `error` event (§10.3).
async fn shard_v2(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Result<Response> {
    auth(&state, &headers, Scope::Write)?;
    Stats::bump(&state.stats.shards_v2);
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<ShardUploadEvent>();
    let store = state.store.clone();
    tokio::spawn(async move {
        let progress_tx = tx.clone();
        let res = store
            .put_shard_with_progress(body, move |p| {
                let ev = match p {
                    ShardProgress::Validating { verified, total } => {
                        ShardUploadEvent::Validating { verified, total }
                    }
                    ShardProgress::Uploading => ShardUploadEvent::Committing {
                        stage: CommitStage::Uploading,
                    },
                    _ => ShardUploadEvent::Committing {
                        stage: CommitStage::Syncing,
                    },
                };
                let _ = progress_tx.send(ev);
            })
            .await;
        let last = match res {
            Ok(inserted) => ShardUploadEvent::Result {
                result: Some(u8::from(inserted)),
            },
            Err(e) => {
                tracing::debug!(error = %e, "shard upload refused");
                ShardUploadEvent::Error {
                    // What a status would say on the v1 route: 4xx is for good, a
                    // 5xx (internal or unavailable) is worth another try, and the
                    // official client retries 5xx.
                    retryable: !e.is_client_error(),
                    message: if e.is_client_error() {
                        e.to_string()
                    } else {
                        tracing::error!(error = %e, "shard upload failed");
                        "internal server error; see the server log".into()
                    },
                }
            }
        };
        let _ = tx.send(last);
    });
    let stats = state.stats.clone();
    let stream = ndjson_with_heartbeats(rx, state.shard_heartbeat, move || {
        Stats::bump(&stats.shard_heartbeats)
    });
    Ok((
        [
            (header::CONTENT_TYPE, "application/x-ndjson"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

/// The `/v2/shards` body: each event as one NDJSON line, ending after the terminal
/// `result`/`error`. When no event came for `every` (a long validation, a slow
/// backend), the last progress event is sent again (§10.3), so that clients and
/// proxies with read timeouts see a live stream; before any progress, that is
/// `validating 0/0`. `on_heartbeat` runs once per heartbeat line.
fn ndjson_with_heartbeats(
    rx: tokio::sync::mpsc::UnboundedReceiver<ShardUploadEvent>,
    every: std::time::Duration,
    on_heartbeat: impl Fn() + Send + 'static,
) -> impl futures_util::Stream<Item = std::result::Result<Bytes, Infallible>> + Send {
    struct Beat<F> {
        rx: tokio::sync::mpsc::UnboundedReceiver<ShardUploadEvent>,
        last: ShardUploadEvent,
        done: bool,
        every: std::time::Duration,
        on_heartbeat: F,
    }
    let start = Beat {
        rx,
        last: ShardUploadEvent::Validating {
            verified: 0,
            total: 0,
        },
        done: false,
        every,
        on_heartbeat,
    };
    futures_util::stream::unfold(start, |mut st| async move {
        if st.done {
            return None;
        }
        let ev = match tokio::time::timeout(st.every, st.rx.recv()).await {
            Ok(Some(ev)) => ev,
            // The task ended without a terminal event (it always sends one, unless
            // it panicked): end the stream, which clients treat as a failure.
            Ok(None) => return None,
            Err(_) => {
                (st.on_heartbeat)();
                st.last.clone()
            }
        };
        match ev {
            ShardUploadEvent::Result { .. } | ShardUploadEvent::Error { .. } => st.done = true,
            _ => st.last = ev.clone(),
        }
        let mut line = serde_json::to_vec(&ev).expect("events serialize");
        line.push(b'\n');
        Some((Ok(Bytes::from(line)), st))
    })
}

fn range_header(headers: &HeaderMap) -> Result<Option<(u64, u64)>> {
    match headers.get(header::RANGE) {
        None => Ok(None),
        Some(v) => {
            let s = v
                .to_str()
                .map_err(|_| Error::BadRequest("Range header is not ASCII".into()))?;
            parse_single_range(s).map(Some)
        }
    }
}

/// One signed URL per group of ranges of a xorb.
fn signed_fetches(
    state: &AppState,
    base: &str,
    xorb: &MerkleHash,
    ranges: &[XorbRangeDescriptor],
) -> Vec<XorbMultiRangeFetch> {
    let hash = xorb.to_string();
    ranges
        .chunks(RANGES_PER_URL)
        .map(|group| {
            let spec = ranges_to_string(group.iter().map(|r| (r.bytes.start, r.bytes.end)));
            XorbMultiRangeFetch {
                url: format!("{base}/v1/fetch/{hash}?{}", state.auth.sign_fetch(&hash, &spec)),
                ranges: group.to_vec(),
            }
        })
        .collect()
}

fn v1_fetch_info(
    state: &AppState,
    base: &str,
    fetches: &BTreeMap<MerkleHash, Vec<XorbRangeDescriptor>>,
) -> BTreeMap<MerkleHash, Vec<FetchInfoV1>> {
    fetches
        .iter()
        .map(|(xorb, ranges)| {
            let infos = ranges
                .iter()
                .map(|r| {
                    let f = signed_fetches(state, base, xorb, std::slice::from_ref(r)).remove(0);
                    FetchInfoV1 {
                        range: r.chunks,
                        url: f.url,
                        url_range: r.bytes,
                    }
                })
                .collect();
            (*xorb, infos)
        })
        .collect()
}

async fn reconstruct(state: &AppState, headers: &HeaderMap, file: &str) -> Result<Reconstruction> {
    auth(state, headers, Scope::Read)?;
    let file = parse_hash(file)?;
    let range = range_header(headers)?;
    Ok(state.store.reconstruction(&file, range).await?)
}

async fn reconstruction_v2(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(file): Path<String>,
) -> Result<Json<ReconstructionV2>> {
    let r = reconstruct(&state, &headers, &file).await?;
    Stats::bump(&state.stats.reconstructions_v2);
    let base = base_url(&state, &headers);
    let xorbs = r
        .fetches
        .iter()
        .map(|(x, ranges)| (*x, signed_fetches(&state, &base, x, ranges)))
        .collect();
    Ok(Json(ReconstructionV2 {
        offset_into_first_range: r.offset_into_first_range,
        terms: r.terms,
        xorbs,
    }))
}

async fn reconstruction_v1(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(file): Path<String>,
) -> Result<Json<ReconstructionV1>> {
    let r = reconstruct(&state, &headers, &file).await?;
    Stats::bump(&state.stats.reconstructions_v1);
    let base = base_url(&state, &headers);
    Ok(Json(ReconstructionV1 {
        offset_into_first_range: r.offset_into_first_range,
        fetch_info: v1_fetch_info(&state, &base, &r.fetches),
        terms: r.terms,
    }))
}

async fn batch(
    state: &AppState,
    headers: &HeaderMap,
    files: Vec<MerkleHash>,
) -> Result<Json<BatchReconstructionV1>> {
    auth(state, headers, Scope::Read)?;
    Stats::bump(&state.stats.reconstructions_v1);
    let base = base_url(state, headers);
    let mut out = BatchReconstructionV1 {
        files: BTreeMap::new(),
        fetch_info: BTreeMap::new(),
    };
    for f in files {
        if out.files.contains_key(&f) {
            continue;
        }
        let r = state.store.reconstruction(&f, None).await?;
        for (x, infos) in v1_fetch_info(state, &base, &r.fetches) {
            out.fetch_info.entry(x).or_default().extend(infos);
        }
        out.files.insert(f, r.terms);
    }
    Ok(Json(out))
}

async fn batch_reconstruction_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<BatchReconstructionV1>> {
    let keys: Vec<FileKey> =
        serde_json::from_slice(&body).map_err(|e| Error::BadRequest(format!("batch request body: {e}")))?;
    batch(&state, &headers, keys.into_iter().map(|k| k.hash).collect()).await
}

/// xet-core's form of the batch query: `GET ?file_id=..&file_id=..` (§10.2 #6).
async fn batch_reconstruction_get(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Json<BatchReconstructionV1>> {
    let files = query
        .as_deref()
        .unwrap_or("")
        .split('&')
        .filter_map(|p| p.strip_prefix("file_id="))
        .map(parse_hash)
        .collect::<Result<Vec<_>>>()?;
    if files.is_empty() {
        return Err(Error::BadRequest("no file_id given".into()));
    }
    batch(&state, &headers, files).await
}

async fn file_head(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(file): Path<String>,
) -> Result<Response> {
    auth(&state, &headers, Scope::Read)?;
    let f = parse_hash(&file)?;
    let size = state
        .store
        .file_size(&f)
        .await?
        .ok_or(xet_store::Error::NotFound {
            what: "file",
            hash: f,
        })?;
    Ok(([(header::CONTENT_LENGTH, size.to_string())], Body::empty()).into_response())
}

/// `GET /v2/file-chunk-hashes/{file}` (§10.2 #9, §10.4): what a client needs to
/// re-upload the file after editing the byte ranges in `X-Range-Dirty`.
async fn file_chunk_hashes(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(file): Path<String>,
) -> Result<Json<FileChunkHashesJson>> {
    auth(&state, &headers, Scope::Read)?;
    let f = parse_hash(&file)?;
    let dirty = headers
        .get("x-range-dirty")
        .ok_or_else(|| {
            Error::BadRequest("missing X-Range-Dirty header: send bytes=START-END[,START-END...]".into())
        })?
        .to_str()
        .map_err(|_| Error::BadRequest("X-Range-Dirty header is not ASCII".into()))?;
    // Inclusive ends on the wire; half-open in the store.
    let ranges: Vec<(u64, u64)> = parse_byte_ranges(dirty)?
        .into_iter()
        .map(|(a, b)| (a, b.saturating_add(1)))
        .collect();
    let r = state.store.file_chunk_hashes(&f, &ranges).await?;
    Ok(Json(FileChunkHashesJson {
        total_chunks: r.total_chunks,
        file_size: r.file_size,
        windows: r
            .windows
            .iter()
            .map(|&(a, b)| ChunkWindowJson {
                dirty_byte_range: [a, b],
            })
            .collect(),
        hash_ranges: r
            .hash_ranges
            .into_iter()
            .map(|g| {
                g.map(|g| SubtreeJson {
                    nodes: g
                        .nodes
                        .iter()
                        .map(|(h, size)| SubtreeNodeJson {
                            hash: h.to_string(),
                            size: *size,
                        })
                        .collect(),
                    levels: g.levels,
                    at_start: g.at_start,
                    at_end: g.at_end,
                })
            })
            .collect(),
        gap_verification: r.gap_verification.iter().map(|h| h.to_string()).collect(),
    }))
}

/// The §10.4 answer on the wire: camelCase, except inside the subtrees, whose
/// field names and layout follow xet-core's serialization of its
/// `MerkleHashSubtree` (see `xet_store::HashSubtree`).
#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct FileChunkHashesJson {
    total_chunks: u64,
    file_size: u64,
    windows: Vec<ChunkWindowJson>,
    hash_ranges: Vec<Option<SubtreeJson>>,
    gap_verification: Vec<String>,
}

#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct ChunkWindowJson {
    /// Half-open `[start, end)`.
    dirty_byte_range: [u64; 2],
}

#[derive(Debug, serde::Serialize)]
struct SubtreeJson {
    nodes: Vec<SubtreeNodeJson>,
    levels: Vec<(usize, usize)>,
    at_start: bool,
    at_end: bool,
}

#[derive(Debug, serde::Serialize)]
struct SubtreeNodeJson {
    hash: String,
    size: u64,
}

async fn telemetry(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Result<StatusCode> {
    auth(&state, &headers, Scope::Read)?;
    if body.len() > MAX_TELEMETRY_BYTES {
        return Err(Error::PayloadTooLarge("telemetry over 1 MiB".into()));
    }
    // §10.2 #11: the body is a JSON object (its fields vary between client
    // versions, so only the shape is checked). serde_json bounds nesting depth.
    match serde_json::from_slice::<serde_json::Value>(&body) {
        Ok(serde_json::Value::Object(_)) => {}
        Ok(_) => return Err(Error::BadRequest("telemetry body must be a JSON object".into())),
        Err(e) => return Err(Error::BadRequest(format!("telemetry body is not JSON: {e}"))),
    }
    tracing::trace!(bytes = body.len(), "telemetry received");
    Ok(StatusCode::OK)
}

/// A signed transfer URL (§9.4): the ranges in `Range` must each lie within a signed
/// range; one range answers its bytes, several a `multipart/byteranges` body.
async fn fetch(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(hash): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response> {
    let q = |k: &str| query_param(&query, k).unwrap_or("");
    state.auth.verify_fetch(&hash, q("ranges"), q("exp"), q("sig"))?;
    Stats::bump(&state.stats.fetches);
    let xorb = parse_hash(&hash)?;
    let signed = parse_byte_ranges(&format!("bytes={}", q("ranges")))?;
    let wanted = match headers.get(header::RANGE) {
        Some(v) => parse_byte_ranges(
            v.to_str()
                .map_err(|_| Error::BadRequest("Range header is not ASCII".into()))?,
        )?,
        None => signed.clone(),
    };
    for &(s, e) in &wanted {
        if !signed.iter().any(|&(a, b)| a <= s && e <= b) {
            return Err(Error::Forbidden(format!(
                "bytes {s}-{e} are outside the ranges this URL is signed for"
            )));
        }
    }
    let total = state
        .store
        .xorb_len(&xorb)
        .await?
        .ok_or(xet_store::Error::NotFound {
            what: "xorb",
            hash: xorb,
        })?;
    let wanted = state.store.check_xorb_ranges(&xorb, &wanted).await?;
    crate::range::partial_response(state.store.clone(), xorb, &wanted, total).await
}

/// The Hub's token endpoints (§11.1):
/// `/api/{models|datasets|spaces}/{repo...}/xet-{read|write}-token/{rev...}`, and
/// `/api/buckets/{repo...}/xet-{read|write}-token` without revision.
async fn hub_token(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(rest): Path<String>,
) -> Result<Response> {
    let segs: Vec<&str> = rest.split('/').collect();
    let kind = segs[0];
    if !matches!(kind, "models" | "datasets" | "spaces" | "buckets") {
        return Err(Error::NotFound(format!("no route /api/{rest}")));
    }
    let (at, scope) = segs
        .iter()
        .enumerate()
        .find_map(|(i, s)| match *s {
            "xet-read-token" => Some((i, Scope::Read)),
            "xet-write-token" => Some((i, Scope::Write)),
            _ => None,
        })
        .ok_or_else(|| Error::NotFound(format!("no route /api/{rest}")))?;
    if !(2..=3).contains(&at) || (kind != "buckets" && at + 1 >= segs.len()) {
        return Err(Error::NotFound(format!(
            "expected /api/{kind}/{{namespace}}/{{name}}/xet-{{read|write}}-token/{{revision}}"
        )));
    }
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match token {
        Some(t) if state.auth.is_user_token(t) => {}
        Some(_) => return Err(Error::Unauthorized("invalid user token".into())),
        None if state.auth.open => {}
        None => {
            return Err(Error::Unauthorized(
                "missing user token: send Authorization: Bearer <the token xet serve printed>".into(),
            ))
        }
    }
    // The repository and revision go into the token as a claim; see
    // `AuthConfig::issue_repo_token` for why they do not narrow its access.
    let name = &segs[1..at];
    let revision = segs.get(at + 1..).map(|r| r.join("/")).unwrap_or_default();
    let repo = if revision.is_empty() {
        format!("{kind}/{}", name.join("/"))
    } else {
        format!("{kind}/{}@{revision}", name.join("/"))
    };
    if repo.len() > MAX_REPO_CLAIM_BYTES {
        return Err(Error::BadRequest(format!(
            "repository id and revision are over {MAX_REPO_CLAIM_BYTES} bytes"
        )));
    }
    let (access_token, exp) = state.auth.issue_repo_token(scope, &repo);
    let cas_url = base_url(&state, &headers);
    let mut resp = Json(XetTokenResponse {
        access_token: access_token.clone(),
        exp,
        cas_url: cas_url.clone(),
    })
    .into_response();
    // huggingface_hub reads these headers rather than the body (§11.1 [OBS]).
    let h = resp.headers_mut();
    for (name, value) in [
        ("x-xet-cas-url", cas_url),
        ("x-xet-access-token", access_token),
        ("x-xet-token-expiration", exp.to_string()),
    ] {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(name, v);
        }
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use futures_util::StreamExt;

    use super::*;

    /// A stall longer than the heartbeat interval re-sends the last progress event
    /// (before any: `validating 0/0`) until the terminal event, which ends the
    /// stream; each heartbeat is counted.
    #[tokio::test]
    async fn stalls_send_heartbeats_before_the_result() {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let beats = Arc::new(AtomicU64::new(0));
        let b = beats.clone();
        let stream = ndjson_with_heartbeats(rx, Duration::from_millis(100), move || {
            b.fetch_add(1, Ordering::Relaxed);
        });
        let progress = ShardUploadEvent::Validating {
            verified: 1,
            total: 2,
        };
        let producer = tokio::spawn(async move {
            // Silent for 3.5 intervals, progress, silent again, then the result.
            tokio::time::sleep(Duration::from_millis(350)).await;
            tx.send(progress).unwrap();
            tokio::time::sleep(Duration::from_millis(350)).await;
            tx.send(ShardUploadEvent::Result { result: Some(1) }).unwrap();
            // Anything after the terminal event is not sent.
            let _ = tx.send(ShardUploadEvent::Validating {
                verified: 9,
                total: 9,
            });
        });
        let lines: Vec<ShardUploadEvent> = stream
            .map(|l| {
                let l = l.unwrap();
                assert_eq!(l.last(), Some(&b'\n'));
                serde_json::from_slice(&l).unwrap()
            })
            .collect()
            .await;
        producer.await.unwrap();
        let zero = ShardUploadEvent::Validating {
            verified: 0,
            total: 0,
        };
        let one = ShardUploadEvent::Validating {
            verified: 1,
            total: 2,
        };
        let at = lines
            .iter()
            .position(|e| *e == one)
            .expect("the real progress event");
        assert!(at >= 1, "no heartbeat during the first stall: {lines:?}");
        assert!(lines[..at].iter().all(|e| *e == zero), "{lines:?}");
        let n = lines.len();
        assert_eq!(lines[n - 1], ShardUploadEvent::Result { result: Some(1) });
        assert!(n - 1 - at >= 2, "no heartbeat during the second stall: {lines:?}");
        assert!(lines[at..n - 1].iter().all(|e| *e == one), "{lines:?}");
        // Every line but the real progress and the result was a heartbeat.
        assert_eq!(beats.load(Ordering::Relaxed) as usize, n - 2);
    }
}
