//! Helpers: a server in process on `127.0.0.1:0`, the official client driver, and
//! hand-built xorbs and shards for raw HTTP tests.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use xet_format::hash::{chunk_hash, HashedLength};
use xet_format::shard::{FileTerm, ShardBuilder};
use xet_format::xorb::{CompressionPolicy, XorbBuilder};
use xet_format::MerkleHash;
use xet_server::{AppState, AuthConfig, Scope, Server, ServerConfig};
use xet_store::StoreConfig;

pub const USER_TOKEN: &str = "test-user-token";

/// A fresh temporary directory, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let p = std::env::temp_dir().join(format!("xet-server-it-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("temp dir");
        TempDir(p)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Deterministic pseudo-random bytes (xorshift64).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E3779B97F4A7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(n + 8);
        while v.len() < n {
            v.extend_from_slice(&self.next_u64().to_le_bytes());
        }
        v.truncate(n);
        v
    }
}

/// A server running in this process on a free loopback port.
pub struct TestServer {
    pub url: String,
    pub state: AppState,
    pub dir: TempDir,
    task: tokio::task::JoinHandle<()>,
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(AuthConfig::new(vec![USER_TOKEN.into()])).await
    }

    pub async fn start_with(auth: AuthConfig) -> Self {
        let dir = TempDir::new("srv");
        let store = StoreConfig::local(dir.path().join("store"));
        Self::start_on(store, auth, dir).await
    }

    pub async fn start_on(store: StoreConfig, auth: AuthConfig, dir: TempDir) -> Self {
        Self::start_config(ServerConfig::new(store, auth), dir).await
    }

    /// A local-store server whose config `tune` adjusts first.
    pub async fn start_tuned(tune: impl FnOnce(&mut ServerConfig)) -> Self {
        let dir = TempDir::new("srv");
        let mut config = ServerConfig::new(
            StoreConfig::local(dir.path().join("store")),
            AuthConfig::new(vec![USER_TOKEN.into()]),
        );
        tune(&mut config);
        Self::start_config(config, dir).await
    }

    pub async fn start_config(config: ServerConfig, dir: TempDir) -> Self {
        let server = Server::bind(config).await.expect("bind");
        let url = server.url().to_string();
        let state = server.state().clone();
        let task = tokio::spawn(async move {
            server.run().await.expect("serve");
        });
        TestServer {
            url,
            state,
            dir,
            task,
        }
    }

    pub fn token(&self, scope: Scope) -> String {
        self.state.auth().issue_token(scope).0
    }

    pub fn bearer(&self, scope: Scope) -> String {
        format!("Bearer {}", self.token(scope))
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A fresh bucket on the S3-compatible server named by `XET_TEST_S3_ENDPOINT`
/// (`.ci/run` starts moto with `scripts/s3-server.sh`), as a store config. `None`,
/// with a loud notice, when the variable is unset; under CI that is a failure.
pub async fn s3_store(tag: &str) -> Option<StoreConfig> {
    let Ok(endpoint) = std::env::var("XET_TEST_S3_ENDPOINT") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "XET_TEST_S3_ENDPOINT is not set under CI: .ci/run must start scripts/s3-server.sh"
        );
        eprintln!("\n*** NOTICE: S3 test {tag} SKIPPED: set XET_TEST_S3_ENDPOINT (scripts/s3-server.sh start) ***\n");
        return None;
    };
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let bucket = format!("xet-server-it-{tag}-{}-{n}", std::process::id());
    // moto creates buckets without signatures; a real S3 would need them.
    let resp = reqwest::Client::new()
        .put(format!("{endpoint}/{bucket}"))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "creating bucket: {}", resp.status());
    Some(StoreConfig::S3(xet_store::S3Config {
        endpoint,
        bucket,
        region: "us-east-1".into(),
        access_key_id: "test".into(),
        secret_access_key: "test".into(),
        prefix: String::new(),
    }))
}

/// The shared protocol vectors: `$XET_VECTORS_DIR`, else `shared/vectors` in an
/// ancestor of this crate.
pub fn vectors_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("XET_VECTORS_DIR") {
        return PathBuf::from(d);
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .map(|a| a.join("shared").join("vectors"))
        .find(|c| c.join("index.json").is_file())
        .expect("protocol vectors not found: set XET_VECTORS_DIR")
}

/// The Python interpreter that has the official client (`$XET_PYTHON`, else `python3`).
pub fn python() -> String {
    std::env::var("XET_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// Fails loudly (never skips) when the official client is missing.
pub fn require_official_client() {
    let out = Command::new(python())
        .args([
            "-c",
            "import hf_xet, importlib.metadata as m; print(m.version('hf-xet'))",
        ])
        .output()
        .expect("running python3");
    assert!(
        out.status.success(),
        "the official client is required for this test: pip install hf-xet==1.8.0 ({})",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "1.8.0",
        "tests pin hf-xet 1.8.0"
    );
}

/// Runs `official_client.py` against `base`: uploads `upload`, then downloads
/// `download` (dest, file hash, size). `env` steers the client's routes. Its caches
/// live in `home`, so runs do not share a local shard cache unless they share `home`.
/// Returns the uploaded (hash, size) pairs.
pub async fn official(
    base: &str,
    user_token: &str,
    home: &Path,
    env: &[(&str, &str)],
    upload: &[PathBuf],
    download: &[(PathBuf, String, u64)],
) -> Vec<(String, u64)> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/official_client.py");
    let job = serde_json::json!({
        "base": base,
        "user_token": user_token,
        "upload": upload,
        "download": download,
    });
    let mut cmd = Command::new(python());
    cmd.arg(script)
        .arg(job.to_string())
        .env("HF_HOME", home)
        .env("HF_XET_CACHE", home.join("xet"));
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = tokio::task::spawn_blocking(move || cmd.output().expect("running the official client"))
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "official client failed ({env:?}): {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().last().expect("driver output");
    let v: serde_json::Value = serde_json::from_str(line).expect("driver JSON");
    v["uploaded"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p[0].as_str().unwrap().to_string(), p[1].as_u64().unwrap()))
        .collect()
}

/// A file uploaded by hand: one xorb holding its chunks, and the shard naming it.
pub struct HandUpload {
    pub data: Vec<u8>,
    pub xorb_hash: MerkleHash,
    pub xorb: Vec<u8>,
    pub shard: Vec<u8>,
    pub file_hash: MerkleHash,
}

/// Cuts `data` into fixed 64 KiB chunks (any cut is valid for the server), packs them
/// into one xorb and describes the file in an upload shard.
pub fn hand_upload(data: Vec<u8>) -> HandUpload {
    let mut b = XorbBuilder::new(CompressionPolicy::None);
    let mut leaves: Vec<HashedLength> = Vec::new();
    for piece in data.chunks(65536) {
        let h = chunk_hash(piece);
        assert!(b.add_chunk(h, piece).unwrap());
        leaves.push((h, piece.len() as u64));
    }
    let x = b.finish();
    let mut sb = ShardBuilder::new();
    let chunks: Vec<(MerkleHash, u32)> = leaves.iter().map(|&(h, l)| (h, l as u32)).collect();
    sb.add_xorb(x.hash, &chunks).unwrap();
    let term = FileTerm::new(x.hash, data.len() as u32, 0, leaves.len() as u32);
    let file_hash = sb
        .add_file_from_chunks(&leaves, vec![term], Some(xet_format::hash::sha256(&data)))
        .unwrap();
    let shard = sb.build().to_upload_bytes().unwrap();
    HandUpload {
        data,
        xorb_hash: x.hash,
        xorb: x.body,
        shard,
        file_hash,
    }
}

/// An HTTP client for raw requests.
pub fn http() -> reqwest::Client {
    reqwest::Client::new()
}

/// Splits a 206 body into its parts: one part, or the parts of a
/// `multipart/byteranges` body located through their `Content-Range` headers.
pub fn split_parts(content_type: &str, body: &[u8]) -> Vec<Vec<u8>> {
    let Some(boundary) = content_type.strip_prefix("multipart/byteranges; boundary=") else {
        return vec![body.to_vec()];
    };
    let delim = format!("--{boundary}\r\n");
    let text_find = |hay: &[u8], needle: &[u8], from: usize| {
        hay[from..]
            .windows(needle.len())
            .position(|w| w == needle)
            .map(|p| p + from)
    };
    let mut parts = Vec::new();
    let mut at = 0;
    while let Some(p) = text_find(body, delim.as_bytes(), at) {
        let head_end = text_find(body, b"\r\n\r\n", p).expect("part headers end") + 4;
        let head = std::str::from_utf8(&body[p..head_end]).unwrap();
        let range = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Range: bytes "))
            .expect("part Content-Range");
        let (a, rest) = range.split_once('-').unwrap();
        let b = rest.split_once('/').unwrap().0;
        let len = (b.parse::<usize>().unwrap() - a.parse::<usize>().unwrap()) + 1;
        parts.push(body[head_end..head_end + len].to_vec());
        at = head_end + len;
    }
    parts
}

/// Downloads a file (or an inclusive byte range of it) through the v2
/// reconstruction and its signed URLs, decoding and checking every term like a
/// client does (§9.5, §9.6).
pub async fn download(
    client: &reqwest::Client,
    base: &str,
    bearer: &str,
    file: &MerkleHash,
    range: Option<(u64, u64)>,
) -> Result<Vec<u8>, String> {
    use std::collections::HashMap;
    let mut req = client
        .get(format!("{base}/v2/reconstructions/{file}"))
        .header("authorization", bearer);
    if let Some((a, b)) = range {
        req = req.header("range", format!("bytes={a}-{b}"));
    }
    let resp = req.send().await.map_err(|e| e.to_string())?;
    if !resp.status().is_success() {
        return Err(format!("reconstruction: {}", resp.status()));
    }
    let body = resp.bytes().await.map_err(|e| e.to_string())?;
    let rec: xet_format::api::ReconstructionV2 = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
    let mut chunks: HashMap<(MerkleHash, u32), Vec<u8>> = HashMap::new();
    for (xorb, fetches) in &rec.xorbs {
        for f in fetches {
            let spec: Vec<String> = f
                .ranges
                .iter()
                .map(|r| format!("{}-{}", r.bytes.start, r.bytes.end))
                .collect();
            let resp = client
                .get(&f.url)
                .header("range", format!("bytes={}", spec.join(",")))
                .send()
                .await
                .map_err(|e| e.to_string())?;
            if resp.status().as_u16() != 206 {
                return Err(format!("fetch: {}", resp.status()));
            }
            let ct = resp
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap().to_string())
                .unwrap_or_default();
            let body = resp.bytes().await.map_err(|e| e.to_string())?;
            let parts = split_parts(&ct, &body);
            if parts.len() != f.ranges.len() {
                return Err(format!("{} parts for {} ranges", parts.len(), f.ranges.len()));
            }
            for (r, part) in f.ranges.iter().zip(parts) {
                let mut out = Vec::new();
                let headers =
                    xet_format::xorb::decode_chunk_run(&part, &mut out).map_err(|e| e.to_string())?;
                if headers.len() as u32 != r.chunks.end - r.chunks.start {
                    return Err("wrong chunk count in part".into());
                }
                let mut at = 0;
                for (i, h) in headers.iter().enumerate() {
                    let n = h.uncompressed_len as usize;
                    chunks.insert((*xorb, r.chunks.start + i as u32), out[at..at + n].to_vec());
                    at += n;
                }
            }
        }
    }
    let mut data = Vec::new();
    for t in &rec.terms {
        let start = data.len();
        for i in t.range.start..t.range.end {
            data.extend_from_slice(chunks.get(&(t.hash, i)).ok_or("missing chunk")?);
        }
        if data.len() - start != t.unpacked_length as usize {
            return Err("term length mismatch".into());
        }
    }
    let mut data = data.split_off(rec.offset_into_first_range as usize);
    if let Some((a, b)) = range {
        data.truncate((b - a + 1) as usize);
    }
    Ok(data)
}

/// Uploads a hand-built file's xorb through the direct v1 route; panics on failure.
pub async fn put_hand_xorb(client: &reqwest::Client, base: &str, bearer: &str, u: &HandUpload) {
    let r = client
        .post(format!("{base}/v1/xorbs/default/{}", u.xorb_hash))
        .header("authorization", bearer)
        .body(u.xorb.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
}

/// The terminal event of a `/v2/shards` answer (its last NDJSON line).
pub fn last_shard_event(text: &str) -> xet_format::api::ShardUploadEvent {
    serde_json::from_str(text.lines().last().expect("an event line")).expect("a shard event")
}

/// Uploads a hand-built file through the direct v1 routes; panics on failure.
pub async fn put_hand_upload(client: &reqwest::Client, base: &str, bearer: &str, u: &HandUpload) {
    put_hand_xorb(client, base, bearer, u).await;
    let r = client
        .post(format!("{base}/v1/shards"))
        .header("authorization", bearer)
        .body(u.shard.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
}
