//! `xet serve` as a process: it prints its URL and user token, the token endpoint
//! works with that token, and a server killed with SIGKILL in the middle of a stream
//! of uploads loses nothing it acknowledged and shows nothing half-written.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use xet_format::hash::{chunk_hash, HashedLength};
use xet_format::shard::{FileTerm, ShardBuilder};
use xet_format::xorb::{decode_chunk_run, validate_xorb, CompressionPolicy, XorbBuilder};
use xet_format::MerkleHash;
use xet_store::{Store, StoreConfig};

use crate::support::{xet_bin, Rng, TempDir};

/// An acknowledged upload: file hash and content.
type Acked = (MerkleHash, Vec<u8>);

/// Starts `xet serve` on a free port; returns the child, its URL and the user token
/// it printed (empty when `extra` gives `--user-token`).
pub(crate) fn start(data: &Path, extra: &[&str]) -> (Child, String, String) {
    let mut cmd = Command::new(xet_bin());
    cmd.args(["serve", "--addr", "127.0.0.1:0", "--data"])
        .arg(data)
        .args(extra)
        .env("RUST_LOG", "warn");
    let (child, url, token, _) = spawn(cmd, !extra.contains(&"--user-token"));
    (child, url, token)
}

/// `xet serve` as [`start`] does, logging every request (`xet_server` at debug:
/// method, path, status) into the file `log`.
pub(crate) fn start_logged(data: &Path, log: &Path) -> (Child, String, String) {
    let mut cmd = Command::new(xet_bin());
    cmd.args(["serve", "--addr", "127.0.0.1:0", "--data"])
        .arg(data)
        .env("RUST_LOG", "warn,xet_server=debug")
        .env("NO_COLOR", "1");
    let log = std::fs::File::create(log).expect("creating the server log");
    let (child, url, token, _) = spawn_with(cmd, true, log.into());
    (child, url, token)
}

/// Spawns a prepared `xet serve` command and reads its banner: returns the child,
/// the URL it printed, the generated user token it printed (`prints_token`; else
/// empty) and its `objects: ...` line.
pub(crate) fn spawn(cmd: Command, prints_token: bool) -> (Child, String, String, String) {
    spawn_with(cmd, prints_token, Stdio::null())
}

/// [`spawn`] with the server's stderr (its log) going to `stderr`.
fn spawn_with(mut cmd: Command, prints_token: bool, stderr: Stdio) -> (Child, String, String, String) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("starting xet serve");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().expect("xet serve printed nothing").unwrap();
    let url = first.rsplit(' ').next().unwrap().to_string();
    let data_line = lines.next().expect("data directory line").unwrap();
    assert!(data_line.starts_with("data directory: "), "{data_line}");
    let objects_line = lines.next().expect("objects line").unwrap();
    assert!(objects_line.starts_with("objects: "), "{objects_line}");
    let mut token = String::new();
    // A generated token is printed next; a given one never is.
    if prints_token {
        let line = lines.next().expect("user token line").unwrap();
        token = line.rsplit(' ').next().unwrap().to_string();
        assert!(line.starts_with("user token (kept in "), "{line}");
    }
    // Keep draining, so that later writes never hit a closed pipe.
    std::thread::spawn(move || for _ in lines {});
    (child, url, token, objects_line)
}

/// A CAS token of `kind` (`read` or `write`) from the server's Hub-style token
/// endpoint, as an `Authorization` header value (`Bearer ...`).
pub(crate) async fn cas_token(url: &str, user: &str, kind: &str) -> String {
    let resp = reqwest::Client::new()
        .get(format!("{url}/api/models/me/repo/xet-{kind}-token/main"))
        .header("authorization", format!("Bearer {user}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let v: serde_json::Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
    assert_eq!(v["casUrl"], url);
    format!("Bearer {}", v["accessToken"].as_str().unwrap())
}

/// One xorb with `data` in 64 KiB chunks and the upload shard naming the file.
fn hand_upload(data: &[u8]) -> (MerkleHash, Vec<u8>, Vec<u8>, MerkleHash) {
    let mut b = XorbBuilder::new(CompressionPolicy::None);
    let mut leaves: Vec<HashedLength> = Vec::new();
    for piece in data.chunks(65536) {
        let h = chunk_hash(piece);
        b.add_chunk(h, piece).unwrap();
        leaves.push((h, piece.len() as u64));
    }
    let x = b.finish();
    let mut sb = ShardBuilder::new();
    let chunks: Vec<(MerkleHash, u32)> = leaves.iter().map(|&(h, l)| (h, l as u32)).collect();
    sb.add_xorb(x.hash, &chunks).unwrap();
    let term = FileTerm::new(x.hash, data.len() as u32, 0, leaves.len() as u32);
    let file = sb.add_file_from_chunks(&leaves, vec![term], None).unwrap();
    (x.hash, x.body, sb.build().to_upload_bytes().unwrap(), file)
}

#[test]
fn serve_generates_and_keeps_a_user_token() {
    let dir = TempDir::new("serve-token");
    let (mut child, url, token) = start(dir.path(), &[]);
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    assert!(token.starts_with("xet_user_"), "no generated token printed");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        cas_token(&url, &token, "write").await;
        let resp = reqwest::Client::new()
            .get(format!("{url}/api/models/me/repo/xet-read-token/main"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401, "the token endpoint must need the user token");
    });
    child.kill().unwrap();
    child.wait().unwrap();
    // Same data dir: same token.
    let (mut child, _, again) = start(dir.path(), &[]);
    assert_eq!(again, token);
    child.kill().unwrap();
    child.wait().unwrap();
}

/// One upload by the routes the official client uses by default: grant, PUT to
/// the granted URL, commit, then `/v2/shards`, acknowledged only by the stream's
/// terminal `result` event. `None` on any failure (the server may be gone).
async fn upload_by_grant(
    c: &reqwest::Client,
    url: &str,
    w: &str,
    xh: &MerkleHash,
    xorb: Vec<u8>,
    shard: Vec<u8>,
) -> Option<()> {
    let req = serde_json::json!({
        "length": xorb.len(),
        "checksum": {"algo": "crc64nvme", "value": xet_format::api::crc64_nvme(&xorb).to_string()},
    });
    let r = c
        .post(format!("{url}/v1/xorb-grants/default/{xh}"))
        .header("authorization", w)
        .body(req.to_string())
        .send()
        .await
        .ok()?;
    if r.status() != 201 {
        return None;
    }
    let grant: xet_format::api::XorbGrant = serde_json::from_slice(&r.bytes().await.ok()?).ok()?;
    let mut put = c.put(&grant.url).body(xorb);
    for (k, v) in &grant.headers {
        put = put.header(k.as_str(), v.as_str());
    }
    if put.send().await.ok()?.status() != 200 {
        return None;
    }
    let r = c
        .post(format!("{url}/v1/xorb-commits/default/{xh}/grant/{}", grant.id))
        .header("authorization", w)
        .send()
        .await
        .ok()?;
    if r.status() != 200 {
        return None;
    }
    let r = c
        .post(format!("{url}/v2/shards"))
        .header("authorization", w)
        .body(shard)
        .send()
        .await
        .ok()?;
    if r.status() != 200 {
        return None;
    }
    let text = r.text().await.ok()?;
    let last: xet_format::api::ShardUploadEvent = serde_json::from_str(text.lines().last()?).ok()?;
    matches!(last, xet_format::api::ShardUploadEvent::Result { .. }).then_some(())
}

/// One upload by the direct v1 routes: `POST /v1/xorbs`, then `POST /v1/shards`.
async fn upload_direct(
    c: &reqwest::Client,
    url: &str,
    w: &str,
    xh: &MerkleHash,
    xorb: Vec<u8>,
    shard: Vec<u8>,
) -> Option<()> {
    let r = c
        .post(format!("{url}/v1/xorbs/default/{xh}"))
        .header("authorization", w)
        .body(xorb)
        .send()
        .await
        .ok()?;
    if r.status() != 200 {
        return None;
    }
    let r = c
        .post(format!("{url}/v1/shards"))
        .header("authorization", w)
        .body(shard)
        .send()
        .await
        .ok()?;
    (r.status() == 200).then_some(())
}

/// Four clients upload in a loop, alternating between the direct v1 routes and the
/// grant -> PUT -> commit + `/v2/shards` routes, while the server is killed with
/// SIGKILL; after a restart every acknowledged file is there byte for byte, and
/// every stored xorb and registered file is whole.
#[test]
fn sigkill_during_uploads_loses_nothing_acknowledged() {
    let dir = TempDir::new("serve-kill");
    let data = dir.path().join("data");
    let (mut child, url, _) = start(&data, &["--user-token", "u"]);
    let acked: Arc<Mutex<Vec<Acked>>> = Arc::default();
    // Acknowledged uploads by route: [direct v1, grant + v2].
    let by_route: Arc<Mutex<[usize; 2]>> = Arc::default();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let w = cas_token(&url, "u", "write").await;
        let mut tasks = Vec::new();
        for t in 0..4u64 {
            let (url, w, acked, by_route) = (url.clone(), w.clone(), acked.clone(), by_route.clone());
            tasks.push(tokio::spawn(async move {
                let c = reqwest::Client::new();
                for i in 0.. {
                    let body = Rng::new(t * 1_000_000 + i).bytes(1_500_000 + (i as usize % 5) * 100_000);
                    let (xh, xorb, shard, file) = hand_upload(&body);
                    // Tasks start on different routes, so both run from the start.
                    let route = ((t + i) % 2) as usize;
                    let ok = if route == 0 {
                        upload_direct(&c, &url, &w, &xh, xorb, shard).await
                    } else {
                        upload_by_grant(&c, &url, &w, &xh, xorb, shard).await
                    };
                    match ok {
                        Some(()) => {
                            acked.lock().unwrap().push((file, body));
                            by_route.lock().unwrap()[route] += 1;
                        }
                        None => break,
                    }
                }
            }));
        }
        // Let uploads flow, then kill without warning while they are in flight.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        for t in tasks {
            t.await.unwrap();
        }
    });
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() >= 4,
        "too few uploads before the kill ({})",
        acked.len()
    );
    let by_route = *by_route.lock().unwrap();
    assert!(
        by_route[0] >= 1 && by_route[1] >= 1,
        "both routes must be acknowledged before the kill (direct v1, grant + v2): {by_route:?}"
    );

    // Restart on the same data: everything acknowledged is there, byte for byte.
    let (mut child, url, _) = start(&data, &["--user-token", "u"]);
    rt.block_on(async {
        let r = cas_token(&url, "u", "read").await;
        let c = reqwest::Client::new();
        for (file, _) in &acked {
            let resp = c
                .get(format!("{url}/v2/reconstructions/{file}"))
                .header("authorization", &r)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200, "acknowledged file {file} lost");
        }
    });
    child.kill().unwrap();
    child.wait().unwrap();

    // And nothing visible is incomplete: every stored xorb validates against its
    // hash, every registered file reconstructs from stored chunks.
    rt.block_on(async {
        let store = Store::open(StoreConfig::local(data.join("store"))).await.unwrap();
        let xorbs = store.list_xorbs().await.unwrap();
        for x in &xorbs {
            let len = store.xorb_len(x).await.unwrap().unwrap();
            let body = store
                .read_xorb_ranges(x, &[(0, len - 1)])
                .await
                .unwrap()
                .remove(0);
            validate_xorb(&body, x).unwrap_or_else(|e| panic!("stored xorb {x} is damaged: {e}"));
        }
        let files = store.list_files().await.unwrap();
        assert!(files.len() >= acked.len());
        let expected: std::collections::HashMap<_, _> = acked.iter().cloned().collect();
        for f in &files {
            let rec = store.reconstruction(f, None).await.unwrap();
            let mut out = Vec::new();
            for t in &rec.terms {
                let d = &rec.fetches[&t.hash][0];
                let part = store
                    .read_xorb_ranges(&t.hash, &[(d.bytes.start, d.bytes.end)])
                    .await
                    .unwrap();
                decode_chunk_run(&part[0], &mut out).unwrap();
            }
            assert_eq!(out.len() as u64, rec.file_size);
            if let Some(data) = expected.get(f) {
                assert!(&out == data, "file {f} reads back wrong");
            }
        }
        eprintln!(
            "kill -9 test: {} uploads acknowledged ({} direct v1, {} grant + v2), {} files and {} xorbs on disk after restart",
            acked.len(),
            by_route[0],
            by_route[1],
            files.len(),
            xorbs.len()
        );
    });
    let leftovers = std::fs::read_dir(data.join("store/tmp")).unwrap().count();
    assert_eq!(leftovers, 0, "temp files survive a restart");
}
