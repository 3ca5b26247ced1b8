//! Upload sessions against the in-memory CAS: vectors byte for byte, dedup levels,
//! many files, memory bounds.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use xet_format::chunker::chunk_boundaries;
use xet_format::hash::chunk_hash;
use xet_format::shard::FullOptions;
use xet_format::MerkleHash;
use xet_transfer::cache::ShardCache;
use xet_transfer::testing::{conformance, MemoryCas};
use xet_transfer::{Cas, CompressionPolicy, Config, DownloadSession, Sha256Source, UploadSession};

use crate::support::{data, vector, vector_json};

fn no_cache() -> Config {
    Config::default()
}

#[tokio::test]
async fn conformance_on_memory_cas() {
    conformance::run_all(Arc::new(MemoryCas::new())).await;
}

/// Our upload of each vector input sends exactly the official client's xorb body
/// (`auto` policy) and upload shard.
#[tokio::test]
async fn vectors_upload_byte_identical() {
    let index = vector_json("index.json");
    let names: Vec<String> = index["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            v.as_str()
                .map(str::to_string)
                .unwrap_or_else(|| v["name"].as_str().unwrap().to_string())
        })
        .collect();
    assert!(names.len() >= 5, "{names:?}");
    for name in names {
        let meta = vector_json(&format!("{name}.json"));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(format!("{name}.input.bin"));
        std::fs::write(&path, vector(&format!("{name}.input.bin"))).unwrap();
        let cas = Arc::new(MemoryCas::new());
        let config = Config {
            compression: CompressionPolicy::Auto,
            ..no_cache()
        };
        let s = UploadSession::new(cas.clone(), config).unwrap();
        let f = s.upload_file(&path, Sha256Source::Compute).await.unwrap();
        let report = s.finish().await.unwrap();
        assert_eq!(
            f.file_hash.to_string(),
            meta["file_hash"].as_str().unwrap(),
            "{name}"
        );
        let shards = cas.shards();
        assert_eq!(shards.len(), 1, "{name}");
        assert_eq!(
            shards[0].to_upload_bytes().unwrap(),
            vector(&format!("{name}.shard.upload.bin")),
            "{name}: upload shard"
        );
        if meta["xorb"].is_object() {
            let auto = &meta["xorb"]["serialized"]["auto"];
            let full = vector(auto["file"].as_str().unwrap());
            let end = auto["footer_start"].as_u64().unwrap() as usize;
            let xh = meta["xorb"]["hash"].as_str().unwrap().parse().unwrap();
            assert_eq!(cas.xorb(&xh).unwrap(), full[..end], "{name}: xorb body");
            assert_eq!(report.xorbs_uploaded, 1, "{name}");
        } else {
            assert_eq!(report.xorbs_uploaded, 0, "{name}");
        }
        // And it comes back.
        let out = dir.path().join("out");
        let dl = DownloadSession::new(cas.clone(), no_cache()).unwrap();
        dl.download_to_path(&f.file_hash, &out, None).await.unwrap();
        assert_eq!(
            std::fs::read(&out).unwrap(),
            vector(&format!("{name}.input.bin")),
            "{name}"
        );
    }
}

#[tokio::test]
async fn many_files_one_session_share_xorbs_and_one_shard() {
    let cas = Arc::new(MemoryCas::new());
    let s = Arc::new(UploadSession::new(cas.clone(), no_cache()).unwrap());
    let inputs: Vec<Vec<u8>> = (0..12)
        .map(|i| data(i * 37_000 + (i % 3), i as u64 + 5))
        .collect();
    let mut handles = Vec::new();
    for (i, d) in inputs.iter().enumerate() {
        let s = s.clone();
        let d = Bytes::from(d.clone());
        handles.push(tokio::spawn(async move {
            s.upload_bytes(format!("f{i}"), d, Sha256Source::Compute)
                .await
                .unwrap()
        }));
    }
    let mut files = Vec::new();
    for h in handles {
        files.push(h.await.unwrap());
    }
    let report = Arc::try_unwrap(s).unwrap().finish().await.unwrap();
    assert_eq!(report.files.len(), 12);
    assert_eq!(report.shards_uploaded, 1);
    assert_eq!(report.xorbs_uploaded, 1, "small files share one xorb");
    let dl = DownloadSession::new(cas.clone(), no_cache()).unwrap();
    for (f, d) in files.iter().zip(&inputs) {
        assert_eq!(f.size, d.len() as u64);
        assert_eq!(f.sha256, Some(xet_format::hash::sha256(d)));
        assert_eq!(&dl.download_bytes(&f.file_hash, None).await.unwrap(), d);
    }
}

/// A copy with a few inserted bytes, uploaded in the same session, sends < 5% again.
#[tokio::test]
async fn session_dedup_of_an_edited_copy() {
    let cas = Arc::new(MemoryCas::new());
    let original = data(8 << 20, 77);
    let mut edited = original.clone();
    edited.splice(3_000_000..3_000_000, b"a few inserted bytes".iter().copied());
    let s = UploadSession::new(cas.clone(), no_cache()).unwrap();
    s.upload_bytes("orig", Bytes::from(original.clone()), Sha256Source::Compute)
        .await
        .unwrap();
    let before = cas.calls.xorb_bytes.load(Ordering::Relaxed);
    let e = s
        .upload_bytes("edit", Bytes::from(edited.clone()), Sha256Source::Compute)
        .await
        .unwrap();
    let report = s.finish().await.unwrap();
    let sent = cas.calls.xorb_bytes.load(Ordering::Relaxed) - before;
    assert!(
        e.new_bytes * 20 < edited.len() as u64,
        "new bytes {}",
        e.new_bytes
    );
    assert!(e.deduped_bytes > edited.len() as u64 * 19 / 20);
    assert!(
        report.xorb_bytes_uploaded < (original.len() + original.len() / 20) as u64,
        "sent {sent}"
    );
    let dl = DownloadSession::new(cas, no_cache()).unwrap();
    assert_eq!(dl.download_bytes(&e.file_hash, None).await.unwrap(), edited);
}

/// Second session, same machine: the shard cache finds the chunks without asking
/// the server.
#[tokio::test]
async fn shard_cache_dedup_across_sessions() {
    let cas = Arc::new(MemoryCas::new());
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        global_dedup: false,
        ..Config::with_cache_dir(dir.path())
    };
    let original = data(4 << 20, 78);
    let mut edited = original.clone();
    edited.splice(1_000_000..1_000_000, *b"xyz");
    let s = UploadSession::new(cas.clone(), config.clone()).unwrap();
    s.upload_bytes("orig", Bytes::from(original), Sha256Source::Compute)
        .await
        .unwrap();
    s.finish().await.unwrap();
    let before = cas.calls.xorb_bytes.load(Ordering::Relaxed);
    let s = UploadSession::new(cas.clone(), config).unwrap();
    let e = s
        .upload_bytes("edit", Bytes::from(edited.clone()), Sha256Source::Compute)
        .await
        .unwrap();
    let report = s.finish().await.unwrap();
    assert_eq!(report.dedup_queries, 0);
    assert!(
        e.new_bytes * 20 < edited.len() as u64,
        "new bytes {}",
        e.new_bytes
    );
    // What the server received, not only what the session reports.
    let sent = cas.calls.xorb_bytes.load(Ordering::Relaxed) - before;
    assert!(sent * 20 < edited.len() as u64, "xorb bytes sent {sent}");
    assert_eq!(report.xorb_bytes_uploaded, sent);
    let dl = DownloadSession::new(cas, Config::default()).unwrap();
    assert_eq!(dl.download_bytes(&e.file_hash, None).await.unwrap(), edited);
}

/// How a test rewrites the shard a first session left in the cache.
enum Cached {
    /// Full form with these footer options (creation time, key expiry).
    Footer(FullOptions),
    /// Upload form as stored, its file dated this long ago.
    StoredAgo(Duration),
}

/// Uploads `original` with the shard cache in `dir`, rewrites the cached shard as
/// `cached`, then uploads `edited` in a second session (no global dedup). Returns
/// the second upload's new bytes and the shards left in the cache once the second
/// session has loaded it.
async fn second_session_after(config: Config, cached: Cached) -> (u64, u64) {
    let cas = Arc::new(MemoryCas::new());
    let original = data(4 << 20, 81);
    let mut edited = original.clone();
    edited.splice(1_000_000..1_000_000, *b"xyz");
    let s = UploadSession::new(cas.clone(), config.clone()).unwrap();
    s.upload_bytes("orig", Bytes::from(original), Sha256Source::Compute)
        .await
        .unwrap();
    s.finish().await.unwrap();

    let dir = config.shard_cache_dir().unwrap();
    let cache = ShardCache::open(&dir, config.shard_cache_size).unwrap();
    let shards = cache.load(SystemTime::now());
    assert_eq!(shards.len(), 1);
    match cached {
        Cached::Footer(options) => {
            cache.clear().unwrap();
            cache.put(&shards[0].to_full_bytes(&options).unwrap()).unwrap();
        }
        Cached::StoredAgo(ago) => {
            for e in std::fs::read_dir(&dir).unwrap() {
                std::fs::File::options()
                    .append(true)
                    .open(e.unwrap().path())
                    .unwrap()
                    .set_modified(SystemTime::now() - ago)
                    .unwrap();
            }
        }
    }

    let s = UploadSession::new(cas.clone(), config).unwrap();
    let left = cache.stats().entries;
    let e = s
        .upload_bytes("edit", Bytes::from(edited.clone()), Sha256Source::Compute)
        .await
        .unwrap();
    s.finish().await.unwrap();
    let dl = DownloadSession::new(cas, Config::default()).unwrap();
    assert_eq!(dl.download_bytes(&e.file_hash, None).await.unwrap(), edited);
    (e.new_bytes, left)
}

/// §8.3 step 5 and xet-core's 3-week local expiry: a cached shard past its key
/// expiry or older than the maximum age is not used for dedup and is deleted; a
/// fresh one is used. Times come from the footer, else from the file's mtime.
#[tokio::test]
async fn expired_cached_shards_are_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let config = |sub: &str| Config {
        global_dedup: false,
        ..Config::with_cache_dir(dir.path().join(sub))
    };
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let day = 86_400;
    let len = 4u64 << 20;
    let used = |(new_bytes, left): (u64, u64)| new_bytes * 20 < len && left == 1;
    let dropped = |(new_bytes, left): (u64, u64)| new_bytes > len && left == 0;

    let expired = Cached::Footer(FullOptions {
        creation_timestamp: now - 3600,
        key_expiry: now - 60,
        ..FullOptions::default()
    });
    let r = second_session_after(config("expired"), expired).await;
    assert!(dropped(r), "key expiry passed: {r:?}");

    let fresh = Cached::Footer(FullOptions {
        creation_timestamp: now - 3600,
        key_expiry: now + 3600,
        ..FullOptions::default()
    });
    let r = second_session_after(config("fresh"), fresh).await;
    assert!(used(r), "fresh: {r:?}");

    let created_long_ago = Cached::Footer(FullOptions {
        creation_timestamp: now - 22 * day,
        ..FullOptions::default()
    });
    let r = second_session_after(config("created"), created_long_ago).await;
    assert!(dropped(r), "created 22 days ago: {r:?}");

    let stored = || Cached::StoredAgo(Duration::from_secs(22 * day));
    let r = second_session_after(config("stored"), stored()).await;
    assert!(dropped(r), "stored 22 days ago: {r:?}");

    let longer = Config {
        shard_cache_max_age: Duration::from_secs(30 * day),
        ..config("stored-30")
    };
    let r = second_session_after(longer, stored()).await;
    assert!(used(r), "stored 22 days ago, kept 30: {r:?}");
}

/// No cache: the global-dedup query (keyed answer, §8.3) finds the first chunk's
/// xorb and the rest of the file follows from that shard.
#[tokio::test]
async fn global_dedup_with_keyed_answers() {
    let cas = Arc::new(MemoryCas::with_dedup_key([42; 32]));
    let original = data(4 << 20, 79);
    let mut edited = original.clone();
    edited.splice(2_000_000..2_000_000, *b"inserted");
    let s = UploadSession::new(cas.clone(), no_cache()).unwrap();
    s.upload_bytes("orig", Bytes::from(original), Sha256Source::Compute)
        .await
        .unwrap();
    s.finish().await.unwrap();
    let before = cas.calls.xorb_bytes.load(Ordering::Relaxed);
    let s = UploadSession::new(cas.clone(), no_cache()).unwrap();
    let e = s
        .upload_bytes("edit", Bytes::from(edited.clone()), Sha256Source::Compute)
        .await
        .unwrap();
    let report = s.finish().await.unwrap();
    assert!(report.dedup_query_hits >= 1, "{report:?}");
    assert!(
        e.new_bytes * 20 < edited.len() as u64,
        "new bytes {}",
        e.new_bytes
    );
    // What the server received, not only what the session reports.
    let sent = cas.calls.xorb_bytes.load(Ordering::Relaxed) - before;
    assert!(sent * 20 < edited.len() as u64, "xorb bytes sent {sent}");
    assert_eq!(report.xorb_bytes_uploaded, sent);
    let dl = DownloadSession::new(cas, no_cache()).unwrap();
    assert_eq!(dl.download_bytes(&e.file_hash, None).await.unwrap(), edited);
}

/// §8.2 eligibility, computed here from the spec's words rather than with the
/// library's helper: bytes 24..32 of the hash as a little-endian u64, `% 1024 == 0`.
fn w3_eligible(h: &MerkleHash) -> bool {
    u64::from_le_bytes(h.as_bytes()[24..32].try_into().unwrap()) % 1024 == 0
}

/// The chunks the chunker cuts `data` into.
fn chunks_of(data: &[u8]) -> Vec<Vec<u8>> {
    let mut start = 0;
    chunk_boundaries(data)
        .into_iter()
        .map(|end| {
            let c = data[start..end].to_vec();
            start = end;
            c
        })
        .collect()
}

/// Copies of the chunk `template` (which ended at a boundary the chunker found)
/// whose hashes are `%1024`-eligible: the first 8 bytes replaced by a counter
/// until the hash is. The chunker neither hashes nor tests a chunk's first
/// bytes, so each copy is still cut exactly where `template` was; the caller
/// checks that anyway.
fn forge_eligible(template: &[u8], n: usize) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut c = template.to_vec();
    for counter in 0u64.. {
        c[..8].copy_from_slice(&counter.to_le_bytes());
        if w3_eligible(&chunk_hash(&c)) {
            out.push(c.clone());
            if out.len() == n {
                break;
            }
        }
    }
    out
}

/// §8.2: the client asks the server only about eligible chunks (the first of each
/// file, or `w3 % 1024 == 0`) that no local level knows, at most one per
/// `global_dedup_spacing` chunks of a file. Files are built chunk by chunk so
/// that eligible chunks sit at chosen places, some closer than the spacing.
#[tokio::test]
async fn global_dedup_queries_eligible_chunks_with_spacing() {
    const SPACING: usize = 4;
    // Pieces that the chunker cuts as they are: every chunk of random data but
    // its last. Fillers are the ineligible ones; the smallest makes a cheap
    // template for eligible ones.
    let mut pieces = chunks_of(&data(16 << 20, 91));
    pieces.pop();
    let template = pieces.iter().min_by_key(|c| c.len()).unwrap().clone();
    let mut fillers = pieces
        .into_iter()
        .filter(|c| c != &template && !w3_eligible(&chunk_hash(c)));
    let mut eligible = forge_eligible(&template, 9).into_iter();

    // File A: 60 chunks (about 4 MB, several read batches), eligible ones at
    // these places; chunk 0 is an ineligible one (first-of-file rule only).
    let a_eligible = [2, 5, 7, 9, 13, 30, 32, 45];
    let a: Vec<Vec<u8>> = (0..60)
        .map(|i| {
            if a_eligible.contains(&i) {
                eligible.next().unwrap()
            } else {
                fillers.next().unwrap()
            }
        })
        .collect();
    // File B starts with A's chunk 5 (known from this session: not asked about
    // even though it is B's first chunk), then has a new eligible chunk at 3:
    // spacing counts within a file, from the last query made.
    let b: Vec<Vec<u8>> = (0..8)
        .map(|i| match i {
            0 => a[5].clone(),
            3 => eligible.next().unwrap(),
            _ => fillers.next().unwrap(),
        })
        .collect();
    let hashes = |f: &[Vec<u8>]| f.iter().map(|c| chunk_hash(c)).collect::<Vec<_>>();
    let (ha, hb) = (hashes(&a), hashes(&b));
    let (ba, bb) = (a.concat(), b.concat());
    for (file, pieces) in [(&ba, &a), (&bb, &b)] {
        assert_eq!(chunks_of(file), *pieces, "the files chunk as built");
    }
    assert!(
        !w3_eligible(&ha[0]),
        "A's first chunk is eligible only as the first"
    );

    let cas = Arc::new(MemoryCas::new());
    let config = Config {
        global_dedup_spacing: SPACING,
        ..no_cache()
    };
    let s = UploadSession::new(cas.clone(), config).unwrap();
    s.upload_bytes("a", Bytes::from(ba.clone()), Sha256Source::Skip)
        .await
        .unwrap();
    let asked_a = cas.dedup_queries();
    s.upload_bytes("b", Bytes::from(bb.clone()), Sha256Source::Skip)
        .await
        .unwrap();
    let asked_b = cas.dedup_queries()[asked_a.len()..].to_vec();
    let report = s.finish().await.unwrap();

    // The rules, checked on what was asked: each query names an eligible chunk
    // of its file, and two queries of a file are at least SPACING chunks apart.
    for (file, asked) in [(&ha, &asked_a), (&hb, &asked_b)] {
        let mut last: Option<usize> = None;
        for h in asked {
            let at = file.iter().position(|c| c == h).expect("a chunk of the file");
            assert!(at == 0 || w3_eligible(h), "chunk {at} ({h}) is not eligible");
            if let Some(l) = last {
                assert!(at >= l + SPACING, "chunks {l} and {at} both asked about");
            }
            last = Some(at);
        }
    }
    // And exactly the chunks the rules pick: greedy from the start of each file.
    assert_eq!(asked_a, [0, 5, 9, 13, 30, 45].map(|i| ha[i]).to_vec(), "file A");
    assert_eq!(asked_b, vec![hb[3]], "file B");
    assert_eq!(report.dedup_queries, 7);
    assert_eq!(cas.calls.query_dedup.load(Ordering::Relaxed), 7);

    let dl = DownloadSession::new(cas, no_cache()).unwrap();
    let files = &report.files;
    assert_eq!(dl.download_bytes(&files[0].file_hash, None).await.unwrap(), ba);
    assert_eq!(dl.download_bytes(&files[1].file_hash, None).await.unwrap(), bb);
}

#[tokio::test]
async fn sha256_skip_and_given() {
    let cas = Arc::new(MemoryCas::new());
    let s = UploadSession::new(cas.clone(), no_cache()).unwrap();
    let a = s
        .upload_bytes("a", Bytes::from_static(b"aaaa"), Sha256Source::Skip)
        .await
        .unwrap();
    let b = s
        .upload_bytes("b", Bytes::from_static(b"bbbb"), Sha256Source::Given([3; 32]))
        .await
        .unwrap();
    s.finish().await.unwrap();
    assert_eq!(a.sha256, None);
    assert_eq!(b.sha256, Some([3; 32]));
    let shard = &cas.shards()[0];
    let fa = shard.files.iter().find(|f| f.file_hash == a.file_hash).unwrap();
    assert!(fa.sha256.is_none());
}

/// Memory stays bounded: a budget smaller than the data still completes, with
/// several xorbs.
#[tokio::test]
async fn large_upload_cuts_xorbs_within_limits() {
    let cas = Arc::new(MemoryCas::new());
    let config = Config {
        compression: CompressionPolicy::None,
        upload_buffer_bytes: 1,
        ..no_cache()
    };
    let big = data(150 << 20, 80);
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("big");
    std::fs::write(&p, &big).unwrap();
    let s = UploadSession::new(cas.clone(), config).unwrap();
    let f = s.upload_file(&p, Sha256Source::Compute).await.unwrap();
    let report = s.finish().await.unwrap();
    assert_eq!(report.xorbs_uploaded, 3);
    for shard in cas.shards() {
        for x in &shard.xorbs {
            let body = cas.xorb(&x.xorb_hash).unwrap();
            assert!(body.len() <= 64 << 20);
            assert!(x.chunks.len() <= 8192);
        }
    }
    let out = dir.path().join("out");
    DownloadSession::new(cas.clone() as Arc<dyn Cas>, no_cache())
        .unwrap()
        .download_to_path(&f.file_hash, &out, None)
        .await
        .unwrap();
    assert!(std::fs::read(&out).unwrap() == big);
}

#[tokio::test]
async fn progress_reports_per_file_and_totals() {
    use std::sync::Mutex;
    use xet_transfer::progress::ProgressUpdate;
    let seen: Arc<Mutex<Vec<ProgressUpdate>>> = Arc::default();
    let sink = {
        let seen = seen.clone();
        move |u: ProgressUpdate| seen.lock().unwrap().push(u)
    };
    let cas = Arc::new(MemoryCas::new());
    let d = data(20 << 20, 90);
    let s = UploadSession::new(cas.clone(), no_cache())
        .unwrap()
        .with_progress(Arc::new(sink));
    s.upload_bytes("a", Bytes::from(d.clone()), Sha256Source::Compute)
        .await
        .unwrap();
    s.upload_bytes("b", Bytes::from(d.clone()), Sha256Source::Compute)
        .await
        .unwrap();
    s.finish().await.unwrap();
    let seen = seen.lock().unwrap();
    let last_file_b = seen
        .iter()
        .rev()
        .find_map(|u| match u {
            ProgressUpdate::File {
                name,
                processed,
                deduped,
                ..
            } if name == "b" => Some((*processed, *deduped)),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        last_file_b,
        (d.len() as u64, d.len() as u64),
        "the copy is all dedup"
    );
    // Per file, its share of the xorb bytes sent: all of it for "a", none for its
    // copy "b"; the shares add up to the session's total.
    let last_transferred = |file: &str| {
        seen.iter()
            .rev()
            .find_map(|u| match u {
                ProgressUpdate::File {
                    name, transferred, ..
                } if name == file => Some(*transferred),
                _ => None,
            })
            .unwrap()
    };
    let total_transferred = seen
        .iter()
        .filter_map(|u| match u {
            ProgressUpdate::Total { transferred, .. } => Some(*transferred),
            _ => None,
        })
        .max()
        .unwrap();
    assert!(total_transferred >= d.len() as u64);
    assert_eq!(last_transferred("a"), total_transferred);
    assert_eq!(last_transferred("b"), 0);
    match seen.last().unwrap() {
        ProgressUpdate::Total {
            processed,
            transferred,
            ..
        } => {
            assert_eq!(*processed, 2 * d.len() as u64);
            assert!(*transferred >= d.len() as u64);
        }
        other => panic!("{other:?}"),
    }
}
