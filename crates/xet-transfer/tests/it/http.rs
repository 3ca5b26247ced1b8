//! `HttpCas` against the mock: routes, fallbacks, retries and faults.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use xet_format::api::XorbMultiRangeFetch;
use xet_format::MerkleHash;
use xet_transfer::{Auth, Cas, CasToken, Config, Error, HttpCas, RetryConfig};

use crate::mock::{Fault, Mock};

fn fast_config() -> Config {
    Config {
        retry: RetryConfig {
            max_attempts: 4,
            base_delay: Duration::from_millis(20),
            max_delay: Duration::from_secs(3),
        },
        stall_timeout: Duration::from_millis(500),
        ..Config::default()
    }
}

fn h(n: u8) -> MerkleHash {
    MerkleHash::from_bytes([n; 32])
}

async fn cas(mock: &Mock) -> HttpCas {
    HttpCas::new(&mock.base, Auth::None, &fast_config()).unwrap()
}

#[tokio::test]
async fn xorb_upload_through_grants_then_exists() {
    let mock = Mock::start().await;
    let c = cas(&mock).await;
    let body = Bytes::from_static(b"xorb bytes");
    assert!(c.put_xorb(&h(1), body.clone().into()).await.unwrap());
    assert_eq!(mock.state.lock().unwrap().xorbs[&h(1).to_string()], body);
    assert!(!c.put_xorb(&h(1), body.into()).await.unwrap());
    assert_eq!(mock.count("POST /v1/xorb-grants"), 2);
    assert_eq!(mock.count("PUT /uploads"), 1);
    assert_eq!(mock.count("POST /v1/xorb-commits"), 1);
}

#[tokio::test]
async fn falls_back_to_v1_routes_on_older_servers() {
    let mock = Mock::start().await;
    mock.state.lock().unwrap().missing = vec!["grant", "v2shards", "v2recon"];
    let c = cas(&mock).await;
    assert!(c.put_xorb(&h(1), Bytes::from_static(b"x").into()).await.unwrap());
    assert!(c.put_xorb(&h(2), Bytes::from_static(b"y").into()).await.unwrap());
    // The missing grant route is asked once, then remembered.
    assert_eq!(mock.count("POST /v1/xorb-grants"), 1);
    assert_eq!(mock.count("POST /v1/xorbs"), 2);
    assert!(c.put_shard(Bytes::from_static(b"shard")).await.unwrap());
    assert_eq!(mock.count("POST /v1/shards"), 1);
    recon_fixture(&mock);
    let r = c.reconstruction(&h(9), None).await.unwrap();
    assert_eq!(r.terms.len(), 1);
    let ranges: usize = r.xorbs[&h(1)].iter().map(|f| f.ranges.len()).sum();
    assert_eq!(ranges, 2, "v1 fetch_info became ranges");
}

#[tokio::test]
async fn shard_upload_reads_ndjson_to_result() {
    let mock = Mock::start().await;
    let c = cas(&mock).await;
    assert!(c.put_shard(Bytes::from_static(b"shard")).await.unwrap());
    assert_eq!(mock.count("POST /v2/shards"), 1);
    assert_eq!(mock.state.lock().unwrap().shards.len(), 1);
}

#[tokio::test]
async fn a_shard_refused_in_the_event_stream_says_so() {
    let (_mock, c) = backed().await;
    let e = c.put_shard(Bytes::from_static(b"not a shard")).await.unwrap_err();
    assert!(matches!(e, Error::Rejected { status: 200, .. }), "{e:?}");
    let text = e.to_string();
    // The 200 came before the refusal: the message must not read as a contradiction.
    assert!(
        text.contains("error event in the 200 response's stream"),
        "{text}"
    );
}

fn recon_fixture(mock: &Mock) {
    let x = h(1).to_string();
    mock.state
        .lock()
        .unwrap()
        .xorbs
        .insert(x.clone(), Bytes::from_static(b"0123456789abcdef"));
    let json = format!(
        r#"{{"offset_into_first_range":0,"terms":[{{"hash":"{x}","unpacked_length":10,"range":{{"start":0,"end":2}}}}],
        "xorbs":{{"{x}":[{{"url":"{{url}}/fetch/{x}","ranges":[{{"chunks":{{"start":0,"end":1}},"bytes":{{"start":0,"end":3}}}},{{"chunks":{{"start":1,"end":2}},"bytes":{{"start":8,"end":11}}}}]}}]}}}}"#
    );
    mock.state.lock().unwrap().recon.insert(h(9).to_string(), json);
}

#[tokio::test]
async fn reconstruction_and_multirange_fetch() {
    let mock = Mock::start().await;
    recon_fixture(&mock);
    let c = cas(&mock).await;
    let r = c.reconstruction(&h(9), None).await.unwrap();
    let fetch: &XorbMultiRangeFetch = &r.xorbs[&h(1)][0];
    let parts = c.fetch_ranges(&h(1), fetch).await.unwrap();
    assert_eq!(
        parts,
        vec![Bytes::from_static(b"0123"), Bytes::from_static(b"89ab")]
    );
    match c.reconstruction(&h(8), None).await {
        Err(Error::NotFound { .. }) => {}
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn retries_5xx_and_429_with_retry_after() {
    let mock = Mock::start().await;
    recon_fixture(&mock);
    let c = cas(&mock).await;
    mock.fault("recon", Fault::Status(503));
    mock.fault("recon", Fault::Status(500));
    c.reconstruction(&h(9), None).await.unwrap();
    mock.fault("recon", Fault::TooMany(1));
    let t = Instant::now();
    c.reconstruction(&h(9), None).await.unwrap();
    assert!(t.elapsed() >= Duration::from_secs(1), "Retry-After honoured");
    // 4xx is final.
    mock.fault("xorb", Fault::Status(400));
    mock.state.lock().unwrap().missing = vec!["grant"];
    match c.put_xorb(&h(3), Bytes::from_static(b"z").into()).await {
        Err(Error::Rejected { status: 400, .. }) => {}
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn gives_up_clearly_after_the_retry_budget() {
    let mock = Mock::start().await;
    recon_fixture(&mock);
    let c = cas(&mock).await;
    for _ in 0..10 {
        mock.fault("recon", Fault::Status(502));
    }
    match c.reconstruction(&h(9), None).await {
        Err(e @ Error::Server { status: 502, .. }) => assert!(e.is_retryable()),
        other => panic!("{other:?}"),
    }
    assert_eq!(mock.count("GET /v2/reconstructions"), 4);
}

#[tokio::test]
async fn stall_watchdog_retries_then_fails_clearly() {
    let mock = Mock::start().await;
    recon_fixture(&mock);
    let c = cas(&mock).await;
    mock.fault("recon", Fault::Stall(Duration::from_secs(3)));
    let t = Instant::now();
    c.reconstruction(&h(9), None).await.unwrap();
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "the stalled attempt was abandoned"
    );
    for _ in 0..4 {
        mock.fault("fetch", Fault::Stall(Duration::from_secs(30)));
    }
    let r = c.reconstruction(&h(9), None).await.unwrap();
    let t = Instant::now();
    match c.fetch_ranges(&h(1), &r.xorbs[&h(1)][0]).await {
        Err(Error::Stalled { .. }) => {}
        other => panic!("{other:?}"),
    }
    assert!(t.elapsed() < Duration::from_secs(10), "never a hang");
}

#[tokio::test]
async fn truncated_range_is_detected_and_refetched() {
    let mock = Mock::start().await;
    recon_fixture(&mock);
    let c = cas(&mock).await;
    let r = c.reconstruction(&h(9), None).await.unwrap();
    let mut single = r.xorbs[&h(1)][0].clone();
    single.ranges.truncate(1);
    mock.fault("fetch", Fault::Truncate);
    let parts = c.fetch_ranges(&h(1), &single).await.unwrap();
    assert_eq!(parts, vec![Bytes::from_static(b"0123")]);
    assert_eq!(mock.count("GET /fetch"), 2);
    mock.fault("fetch", Fault::Truncate);
    let parts = c.fetch_ranges(&h(1), &r.xorbs[&h(1)][0]).await.unwrap();
    assert_eq!(parts[1], Bytes::from_static(b"89ab"));
}

#[tokio::test]
async fn expired_token_is_refreshed_mid_transfer() {
    let mock = Mock::start().await;
    recon_fixture(&mock);
    // The server accepts only the newest token: older ones have "expired".
    let (auth, issued) = rotating_tokens(&mock);
    let c = HttpCas::new(&mock.base, auth, &fast_config()).unwrap();
    c.reconstruction(&h(9), None).await.unwrap();
    assert_eq!(issued.load(Ordering::SeqCst), 1);
    // The server forgets the token (expiry): the next call gets 401, refreshes, succeeds.
    mock.state.lock().unwrap().tokens = vec!["someone-else".into()];
    assert!(c
        .put_xorb(&h(5), Bytes::from_static(b"data").into())
        .await
        .unwrap());
    assert_eq!(issued.load(Ordering::SeqCst), 2);
    // A static token that the server refuses is a clear error.
    let c2 = HttpCas::new(&mock.base, Auth::Static("bad".into()), &fast_config()).unwrap();
    match c2.reconstruction(&h(9), None).await {
        Err(Error::Unauthorized { status: 401, .. }) => {}
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn dedup_query_hit_and_miss() {
    let mock = Mock::start().await;
    mock.state
        .lock()
        .unwrap()
        .dedup
        .insert(h(4).to_string(), Bytes::from_static(b"shard!"));
    let c = cas(&mock).await;
    assert_eq!(
        c.query_dedup(&h(4)).await.unwrap(),
        Some(Bytes::from_static(b"shard!"))
    );
    assert_eq!(c.query_dedup(&h(5)).await.unwrap(), None);
    assert_eq!(mock.count("GET /v1/chunks/default/"), 2);
}

#[tokio::test]
async fn server_down_is_a_connection_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let c = HttpCas::new(&base, Auth::None, &fast_config()).unwrap();
    match c.reconstruction(&h(1), None).await {
        Err(e @ Error::Connection { .. }) => assert!(e.is_retryable()),
        other => panic!("{other:?}"),
    }
}

async fn backed() -> (Mock, Arc<HttpCas>) {
    let (mock, _) = Mock::with_backend().await;
    let c = Arc::new(HttpCas::new(&mock.base, Auth::None, &fast_config()).unwrap());
    (mock, c)
}

#[tokio::test]
async fn conformance_on_http_cas() {
    let (_mock, c) = backed().await;
    xet_transfer::testing::conformance::run_all(c).await;
}

#[tokio::test]
async fn sessions_over_http_survive_faults() {
    use xet_transfer::{DownloadSession, Sha256Source, UploadSession};
    let (mock, c) = backed().await;
    let d = crate::support::data(3 << 20, 21);
    // Mid-upload: the xorb commit fails twice (server restarting), the shard once.
    mock.fault("commit", Fault::Status(503));
    mock.fault("commit", Fault::Status(502));
    mock.fault("shard", Fault::Status(500));
    let s = UploadSession::new(c.clone(), fast_config()).unwrap();
    let f = s
        .upload_bytes("f", Bytes::from(d.clone()), Sha256Source::Compute)
        .await
        .unwrap();
    s.finish().await.unwrap();
    // Mid-download: a 503, a truncated range, a corrupt range, a stall.
    mock.fault("fetch", Fault::Status(503));
    mock.fault("fetch", Fault::Truncate);
    mock.fault("fetch", Fault::Stall(Duration::from_secs(5)));
    let dl = DownloadSession::new(c.clone(), fast_config()).unwrap();
    assert_eq!(dl.download_bytes(&f.file_hash, None).await.unwrap(), d);
    // An expired transfer URL (403) gets a fresh reconstruction.
    mock.fault("fetch", Fault::Status(403));
    assert_eq!(dl.download_bytes(&f.file_hash, None).await.unwrap(), d);
    // A corrupt body that still decodes is caught by the file hash and refetched.
    mock.fault("fetch", Fault::Corrupt);
    assert_eq!(dl.download_bytes(&f.file_hash, None).await.unwrap(), d);
    // Ranges go through the HTTP Range header of the reconstruction.
    assert_eq!(
        dl.download_bytes(&f.file_hash, Some((100, 2_000_000)))
            .await
            .unwrap(),
        d[100..=2_000_000]
    );
}

#[tokio::test]
async fn a_failed_xorb_upload_names_the_files_it_held() {
    use xet_transfer::{Sha256Source, UploadSession};
    let (mock, c) = backed().await;
    // The first xorb's commit is refused for good (the xorb holds both buffers).
    mock.fault("commit", Fault::Status(400));
    let s = UploadSession::new(c.clone(), fast_config()).unwrap();
    for (name, seed) in [("weights.bin", 1), ("config.json", 2)] {
        let d = Bytes::from(crate::support::data(200_000, seed));
        s.upload_bytes(name, d, Sha256Source::Skip).await.unwrap();
    }
    let e = s.finish().await.unwrap_err();
    assert!(matches!(e, Error::Rejected { status: 400, .. }), "{e:?}");
    let text = e.to_string();
    assert!(text.contains("(data of weights.bin, config.json)"), "{text}");
}

#[tokio::test]
async fn server_gone_mid_download_fails_clearly_without_output() {
    use xet_transfer::{DownloadSession, Sha256Source, UploadSession};
    let (mock, c) = backed().await;
    let d = crate::support::data(1 << 20, 22);
    let s = UploadSession::new(c.clone(), fast_config()).unwrap();
    let f = s
        .upload_bytes("f", Bytes::from(d), Sha256Source::Compute)
        .await
        .unwrap();
    s.finish().await.unwrap();
    for _ in 0..10 {
        mock.fault("fetch", Fault::Status(503));
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o");
    let dl = DownloadSession::new(c, fast_config()).unwrap();
    match dl.download_to_path(&f.file_hash, &out, None).await {
        Err(Error::Server { status: 503, .. }) => {}
        other => panic!("{other:?}"),
    }
    assert!(!out.exists());
}

/// A stall in the middle of a body (status, headers and half the bytes sent, then
/// nothing) is caught by the body watchdog, not only a stall before the headers:
/// once, the retry gets the answer; every time, the call gives up after the retry
/// budget with a clear `Stalled` error instead of hanging.
#[tokio::test]
async fn body_stall_watchdog_retries_then_fails_clearly() {
    let mock = Mock::start().await;
    recon_fixture(&mock);
    let c = cas(&mock).await;
    let stalled = || mock.state.lock().unwrap().stalled_bodies;
    // The stalls last far longer than the test: only the watchdog ends them.
    let long = Duration::from_secs(60);
    // A reconstruction (JSON) that stops half-way, once.
    mock.fault("recon", Fault::StallBody(long));
    let r = c.reconstruction(&h(9), None).await.unwrap();
    assert_eq!(r.terms.len(), 1);
    assert_eq!(stalled(), 1, "the first answer stopped mid-body");
    assert_eq!(mock.count("GET /v2/reconstructions"), 2, "one retry");
    // A multi-range fetch (multipart body) that stops half-way, once.
    mock.fault("fetch", Fault::StallBody(long));
    let parts = c.fetch_ranges(&h(1), &r.xorbs[&h(1)][0]).await.unwrap();
    assert_eq!(
        parts,
        vec![Bytes::from_static(b"0123"), Bytes::from_static(b"89ab")]
    );
    assert_eq!(stalled(), 2);
    assert_eq!(mock.count("GET /fetch"), 2);
    // Every attempt stops half-way: the budget (4 attempts) runs out, clearly.
    for _ in 0..4 {
        mock.fault("fetch", Fault::StallBody(long));
    }
    let t = Instant::now();
    match c.fetch_ranges(&h(1), &r.xorbs[&h(1)][0]).await {
        Err(e @ Error::Stalled { .. }) => {
            assert!(e.is_retryable());
            let msg = e.to_string();
            assert!(
                msg.contains(&format!("download of xorb {}", h(1))) && msg.contains("no progress for 1 s"),
                "{msg}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(stalled(), 6);
    assert_eq!(mock.count("GET /fetch"), 2 + 4);
    assert!(t.elapsed() < Duration::from_secs(30), "never a hang");
}

/// The same in sessions, on bodies large enough for the pooled-buffer path: a
/// shard upload whose NDJSON answer stops half-way, a range of several MiB that
/// stops half-way (both retried), then a download whose every attempt stalls,
/// which fails with `Stalled` and leaves no output.
#[tokio::test]
async fn body_stalls_in_sessions_are_retried_or_fail_without_output() {
    use xet_transfer::{DownloadSession, Sha256Source, UploadSession};
    let (mock, backend) = Mock::with_backend().await;
    let c = Arc::new(HttpCas::new(&mock.base, Auth::None, &fast_config()).unwrap());
    let stalled = || mock.state.lock().unwrap().stalled_bodies;
    let long = Duration::from_secs(60);
    let d = crate::support::data(3 << 20, 24);
    mock.fault("shard", Fault::StallBody(long));
    let s = UploadSession::new(c.clone(), fast_config()).unwrap();
    let f = s
        .upload_bytes("f", Bytes::from(d.clone()), Sha256Source::Compute)
        .await
        .unwrap();
    s.finish().await.unwrap();
    assert_eq!(stalled(), 1, "the shard answer stopped mid-body");
    assert_eq!(mock.count("POST /v2/shards"), 2, "the shard was sent again");
    assert!(backend
        .shards()
        .iter()
        .any(|sh| sh.files.iter().any(|fi| fi.file_hash == f.file_hash)));

    let dl = DownloadSession::new(c.clone(), fast_config()).unwrap();
    let fetches = mock.count("GET /fetch");
    mock.fault("fetch", Fault::StallBody(long));
    assert_eq!(dl.download_bytes(&f.file_hash, None).await.unwrap(), d);
    assert_eq!(stalled(), 2);
    let first = mock.count("GET /fetch") - fetches;
    assert!(
        first >= 2,
        "the stalled range was fetched again ({first} fetches)"
    );

    for _ in 0..fast_config().retry.max_attempts {
        mock.fault("fetch", Fault::StallBody(long));
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o");
    match dl.download_to_path(&f.file_hash, &out, None).await {
        Err(Error::Stalled { .. }) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(stalled(), 2 + fast_config().retry.max_attempts as usize);
    assert!(!out.exists(), "no output after a failed download");
}

/// A refresher issuing `tok0`, `tok1`, ...; the mock accepts only the newest (the
/// older ones have expired). Returns the auth and how many tokens were issued.
fn rotating_tokens(mock: &Mock) -> (Auth, Arc<AtomicU32>) {
    let issued = Arc::new(AtomicU32::new(0));
    let (st, iss) = (mock.state.clone(), issued.clone());
    let refresher = move || {
        let n = iss.fetch_add(1, Ordering::SeqCst);
        let tok = format!("tok{n}");
        st.lock().unwrap().tokens = vec![tok.clone()];
        async move {
            Ok(CasToken {
                token: tok,
                expires_at: Some(u64::MAX / 2),
                cas_url: None,
            })
        }
    };
    let auth = Auth::Refreshing {
        refresher: Arc::new(refresher),
        initial: None,
    };
    (auth, issued)
}

/// One upload session of a file of three xorbs, during which the token expires
/// after every xorb commit: the next xorb's grant, and at the end the shard, are
/// refused (401), the refresher supplies a new token each time, and the session
/// completes with every xorb and the shard stored; the file reads back identical.
#[tokio::test]
async fn token_expiring_during_one_upload_session_is_refreshed() {
    use xet_transfer::{CompressionPolicy, DownloadSession, Sha256Source, UploadSession};
    let (mock, backend) = Mock::with_backend().await;
    let (auth, issued) = rotating_tokens(&mock);
    mock.state.lock().unwrap().expire_tokens_after = Some(("commit", 3));
    let c = Arc::new(HttpCas::new(&mock.base, auth, &fast_config()).unwrap());
    // One xorb in flight at a time and no dedup queries: the requests after each
    // commit are the next grant (or the shard), so each expiry hits one of them.
    let config = Config {
        upload_concurrency: 1,
        upload_buffer_bytes: 1,
        global_dedup: false,
        compression: CompressionPolicy::None,
        ..fast_config()
    };
    // Xorbs hold at most 64 MiB: three of them.
    let d = crate::support::data(130 << 20, 25);
    let s = UploadSession::new(c.clone(), config).unwrap();
    let f = s
        .upload_bytes("big", Bytes::from(d.clone()), Sha256Source::Compute)
        .await
        .unwrap();
    let report = s.finish().await.unwrap();
    assert_eq!(report.xorbs_uploaded, 3);
    assert_eq!(report.shards_uploaded, 1);
    {
        let st = mock.state.lock().unwrap();
        assert_eq!(st.expire_tokens_after, None, "the token expired three times");
        let r = &st.refused;
        assert!(
            r.len() == 3
                && r[..2].iter().all(|q| q.starts_with("POST /v1/xorb-grants/"))
                && r[2] == "POST /v2/shards",
            "refused: {r:?}"
        );
    }
    assert_eq!(issued.load(Ordering::SeqCst), 4, "one token, then one per expiry");
    let shards = backend.shards();
    assert_eq!(shards.len(), 1);
    assert_eq!(shards[0].xorbs.len(), 3);
    for x in &shards[0].xorbs {
        assert!(
            backend.xorb(&x.xorb_hash).is_some(),
            "xorb {} not stored",
            x.xorb_hash
        );
    }
    assert!(shards[0].files.iter().any(|fi| fi.file_hash == f.file_hash));
    let dl = DownloadSession::new(c, fast_config()).unwrap();
    assert!(dl.download_bytes(&f.file_hash, None).await.unwrap() == d);
}

/// One download session during which the token expires: after the first file's
/// reconstruction, the next file's is refused and gets a fresh token; then, within
/// one file, the token expires at its reconstruction and its transfer URL at the
/// first fetch (403), so the new reconstruction it needs is refused, refreshed and
/// re-requested, and the file still arrives whole.
#[tokio::test]
async fn token_expiring_during_one_download_session_is_refreshed() {
    use xet_transfer::{DownloadSession, Sha256Source, UploadSession};
    let (mock, _backend) = Mock::with_backend().await;
    let plain = Arc::new(HttpCas::new(&mock.base, Auth::None, &fast_config()).unwrap());
    let files: Vec<Vec<u8>> = (0..3u64)
        .map(|i| crate::support::data((1 << 20) + i as usize * 1000, 40 + i))
        .collect();
    let s = UploadSession::new(plain, fast_config()).unwrap();
    let mut hashes = Vec::new();
    for (i, d) in files.iter().enumerate() {
        let f = s
            .upload_bytes(&format!("f{i}"), Bytes::from(d.clone()), Sha256Source::Compute)
            .await
            .unwrap();
        hashes.push(f.file_hash);
    }
    s.finish().await.unwrap();

    let (auth, issued) = rotating_tokens(&mock);
    mock.state.lock().unwrap().expire_tokens_after = Some(("recon", 1));
    let c = Arc::new(HttpCas::new(&mock.base, auth, &fast_config()).unwrap());
    let dl = DownloadSession::new(c, fast_config()).unwrap();
    for (h, d) in hashes.iter().zip(&files) {
        assert!(dl.download_bytes(h, None).await.unwrap() == *d);
    }
    assert_eq!(issued.load(Ordering::SeqCst), 2);
    let refused = mock.state.lock().unwrap().refused.clone();
    assert_eq!(refused, [format!("GET /v2/reconstructions/{}", hashes[1])]);

    mock.state.lock().unwrap().expire_tokens_after = Some(("recon", 1));
    mock.fault("fetch", Fault::Status(403));
    let recons = mock.count(&format!("GET /v2/reconstructions/{}", hashes[0]));
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o");
    dl.download_to_path(&hashes[0], &out, None).await.unwrap();
    assert!(std::fs::read(&out).unwrap() == files[0]);
    assert_eq!(issued.load(Ordering::SeqCst), 3);
    let refused = mock.state.lock().unwrap().refused.clone();
    assert_eq!(
        refused.last(),
        Some(&format!("GET /v2/reconstructions/{}", hashes[0]))
    );
    assert_eq!(refused.len(), 2);
    // Asked, asked again after the 403 (refused), asked again with the new token.
    assert_eq!(
        mock.count(&format!("GET /v2/reconstructions/{}", hashes[0])) - recons,
        3
    );
}
