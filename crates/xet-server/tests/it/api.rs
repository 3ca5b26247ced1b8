//! Raw HTTP tests of the CAS API: the happy paths the official client does not
//! reach (ranges, multi-range fetches, HEADs, batch, dedup answers), and every kind
//! of bad input getting a clear 4xx that changes nothing.

use xet_format::api::{crc64_nvme, XorbGrant};
use xet_format::shard::{ChunkLookup, FileTerm, Shard, ShardBuilder};
use xet_format::MerkleHash;
use xet_server::{AuthConfig, Scope};

use crate::support::{
    download, hand_upload, http, last_shard_event, put_hand_upload, put_hand_xorb, Rng, TestServer,
    USER_TOKEN,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_then_reconstruct_whole_and_ranges() {
    let server = TestServer::start().await;
    let (c, base, w) = (http(), server.url.clone(), server.bearer(Scope::Write));
    let u = hand_upload(Rng::new(3).bytes(1_000_000));
    put_hand_upload(&c, &base, &w, &u).await;
    let r = server.bearer(Scope::Read);
    assert_eq!(download(&c, &base, &r, &u.file_hash, None).await.unwrap(), u.data);
    for (a, b) in [
        (0, 0),
        (1, 65535),
        (65535, 65536),
        (100_000, 899_999),
        (999_999, 999_999),
        (500_000, 5_000_000),
    ] {
        let got = download(&c, &base, &r, &u.file_hash, Some((a, b))).await.unwrap();
        let end = (b as usize).min(u.data.len() - 1);
        assert!(got == u.data[a as usize..=end], "range {a}-{b}");
    }
    // Range past the end: 416; unknown file: 404; malformed hash: 400.
    let get = |path: String, range: Option<&str>| {
        let mut q = c.get(format!("{base}{path}")).header("authorization", &r);
        if let Some(range) = range {
            q = q.header("range", range);
        }
        q.send()
    };
    let f = u.file_hash;
    assert_eq!(
        get(format!("/v2/reconstructions/{f}"), Some("bytes=1000000-1000001"))
            .await
            .unwrap()
            .status(),
        416
    );
    assert_eq!(
        get(format!("/v1/reconstructions/{f}"), Some("bytes=2000000-"))
            .await
            .unwrap()
            .status(),
        416
    );
    assert_eq!(
        get(format!("/v2/reconstructions/{f}"), Some("bytes=9-1"))
            .await
            .unwrap()
            .status(),
        400
    );
    let unknown = MerkleHash::from_bytes([7; 32]);
    assert_eq!(
        get(format!("/v2/reconstructions/{unknown}"), None)
            .await
            .unwrap()
            .status(),
        404
    );
    assert_eq!(
        get(format!("/v1/reconstructions/{unknown}"), None)
            .await
            .unwrap()
            .status(),
        404
    );
    for bad in ["xyz", "00", &"g".repeat(64)] {
        let resp = get(format!("/v2/reconstructions/{bad}"), None).await.unwrap();
        assert_eq!(resp.status(), 400, "{bad}");
        assert!(resp.text().await.unwrap().contains("hash"));
    }

    // v1 reconstruction: one fetch_info covering each term, fetched with its range.
    let v1: xet_format::api::ReconstructionV1 = serde_json::from_slice(
        &get(format!("/v1/reconstructions/{f}"), None)
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap(),
    )
    .unwrap();
    let fi = &v1.fetch_info[&u.xorb_hash][0];
    let resp = c
        .get(&fi.url)
        .header(
            "range",
            format!("bytes={}-{}", fi.url_range.start, fi.url_range.end),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 206);
    assert_eq!(resp.bytes().await.unwrap(), u.xorb[..]);

    // HEADs and the batch form.
    let resp = c
        .head(format!("{base}/v1/files/{f}"))
        .header("authorization", &r)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-length"], "1000000");
    let resp = c
        .head(format!("{base}/v1/xorbs/default/{}", u.xorb_hash))
        .header("authorization", &r)
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.headers()["content-length"],
        u.xorb.len().to_string().as_str()
    );
    let resp = c
        .head(format!("{base}/v1/files/{unknown}"))
        .header("authorization", &r)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let resp = c
        .post(format!("{base}/v1/reconstructions"))
        .header("authorization", &r)
        .body(format!(r#"[{{"prefix":"default","hash":"{f}"}}]"#))
        .send()
        .await
        .unwrap();
    let batch: xet_format::api::BatchReconstructionV1 =
        serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
    assert_eq!(batch.files[&f], v1.terms);
    let resp = get(format!("/v1/reconstructions?file_id={f}&file_id={f}"), None)
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_urls_multi_range_and_tampering() {
    let server = TestServer::start().await;
    let (c, base, w) = (http(), server.url.clone(), server.bearer(Scope::Write));
    let u = hand_upload(Rng::new(4).bytes(300_000));
    put_hand_upload(&c, &base, &w, &u).await;
    // A second file made of chunks 0 and 3 of the first: two ranges of one xorb.
    let chunk = |i: usize| &u.data[i * 65536..((i + 1) * 65536).min(u.data.len())];
    let leaves: Vec<(MerkleHash, u64)> = [0, 3]
        .iter()
        .map(|&i| (xet_format::hash::chunk_hash(chunk(i)), chunk(i).len() as u64))
        .collect();
    let mut sb = ShardBuilder::new();
    let terms = vec![
        FileTerm::new(u.xorb_hash, 65536, 0, 1),
        FileTerm::new(u.xorb_hash, 65536, 3, 4),
    ];
    let f2 = sb.add_file_from_chunks(&leaves, terms, None).unwrap();
    let shard = sb.build().to_upload_bytes().unwrap();
    let resp = c
        .post(format!("{base}/v1/shards"))
        .header("authorization", &w)
        .body(shard)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    let r = server.bearer(Scope::Read);
    let got = download(&c, &base, &r, &f2, None).await.unwrap();
    assert!(got == [chunk(0), chunk(3)].concat());

    let rec: xet_format::api::ReconstructionV2 = serde_json::from_slice(
        &c.get(format!("{base}/v2/reconstructions/{f2}"))
            .header("authorization", &r)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap(),
    )
    .unwrap();
    let fetch = &rec.xorbs[&u.xorb_hash][0];
    assert_eq!(fetch.ranges.len(), 2);
    let ok_range = format!(
        "bytes={}-{}",
        fetch.ranges[0].bytes.start, fetch.ranges[0].bytes.end
    );
    let send = |url: String, range: String| c.get(url).header("range", range).send();
    // Outside the signed ranges, a modified URL, or another xorb: 403.
    assert_eq!(
        send(fetch.url.clone(), "bytes=0-300000".into())
            .await
            .unwrap()
            .status(),
        403
    );
    let tampered = fetch.url.replacen("ranges=0-", "ranges=1-", 1);
    assert_eq!(send(tampered, ok_range.clone()).await.unwrap().status(), 403);
    let other = fetch.url.replace(
        &u.xorb_hash.to_string(),
        &MerkleHash::from_bytes([1; 32]).to_string(),
    );
    assert_eq!(send(other, ok_range.clone()).await.unwrap().status(), 403);
    let no_sig = fetch.url.split("&sig=").next().unwrap().to_string();
    assert_eq!(send(no_sig, ok_range.clone()).await.unwrap().status(), 403);
    assert_eq!(send(fetch.url.clone(), ok_range).await.unwrap().status(), 206);

    // Expired URLs: a server whose URLs last 0 seconds.
    let mut auth = AuthConfig::new(vec![USER_TOKEN.into()]);
    auth.url_ttl = std::time::Duration::ZERO;
    let short = TestServer::start_with(auth).await;
    put_hand_upload(&c, &short.url, &short.bearer(Scope::Write), &u).await;
    let err = download(&c, &short.url, &short.bearer(Scope::Read), &u.file_hash, None)
        .await
        .unwrap_err();
    assert!(err.contains("403"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_xorbs_are_rejected_and_change_nothing() {
    let server = TestServer::start().await;
    let (c, base, w) = (http(), server.url.clone(), server.bearer(Scope::Write));
    let u = hand_upload(Rng::new(5).bytes(200_000));
    let post = |hash: String, body: Vec<u8>| {
        c.post(format!("{base}/v1/xorbs/default/{hash}"))
            .header("authorization", &w)
            .body(body)
            .send()
    };
    let wrong = MerkleHash::from_bytes([9; 32]).to_string();
    let mut corrupt = u.xorb.clone();
    corrupt[0] = 7; // chunk header version
    let mut flipped = u.xorb.clone();
    flipped[100] ^= 1; // payload byte: the chunk hash changes
    let cases: Vec<(&str, String, Vec<u8>, u16)> = vec![
        ("wrong hash", wrong.clone(), u.xorb.clone(), 400),
        ("corrupt header", u.xorb_hash.to_string(), corrupt, 400),
        ("flipped payload byte", u.xorb_hash.to_string(), flipped, 400),
        (
            "truncated",
            u.xorb_hash.to_string(),
            u.xorb[..u.xorb.len() - 10].to_vec(),
            400,
        ),
        ("empty", u.xorb_hash.to_string(), Vec::new(), 400),
        (
            "oversize",
            u.xorb_hash.to_string(),
            vec![0; xet_store::MAX_XORB_UPLOAD_BYTES + 1],
            413,
        ),
        ("malformed hash", "not-a-hash".into(), u.xorb.clone(), 400),
        ("bad prefix", "x".into(), u.xorb.clone(), 400),
    ];
    for (name, hash, body, status) in cases {
        let resp = post(hash, body).await.unwrap();
        assert_eq!(resp.status(), status, "{name}");
        let text = resp.text().await.unwrap();
        assert!(text.contains("error"), "{name}: {text}");
    }
    assert!(
        server.state.store().list_xorbs().await.unwrap().is_empty(),
        "a bad xorb was stored"
    );

    // Grant flow: wrong length / CRC refused, then the real upload, then 412 on repeat.
    let grant_req = |len: usize, crc: u64| {
        serde_json::json!({"length": len, "checksum": {"algo": "crc64nvme", "value": crc.to_string()}})
            .to_string()
    };
    let crc = xet_format::api::crc64_nvme(&u.xorb);
    let resp = c
        .post(format!("{base}/v1/xorb-grants/default/{}", u.xorb_hash))
        .header("authorization", &w)
        .body(grant_req(u.xorb.len(), crc))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let grant: xet_format::api::XorbGrant = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
    let put = |body: Vec<u8>| c.put(&grant.url).header("if-none-match", "*").body(body).send();
    let mut bad_crc = u.xorb.clone();
    bad_crc[50] ^= 0xff;
    assert_eq!(put(bad_crc).await.unwrap().status(), 400);
    assert_eq!(put(u.xorb[1..].to_vec()).await.unwrap().status(), 400);
    let commit = format!(
        "{base}/v1/xorb-commits/default/{}/grant/{}",
        u.xorb_hash, grant.id
    );
    let resp = c.post(&commit).header("authorization", &w).send().await.unwrap();
    assert_eq!(resp.status(), 400, "commit before upload");
    assert_eq!(put(u.xorb.clone()).await.unwrap().status(), 200);
    assert_eq!(put(u.xorb.clone()).await.unwrap().status(), 412);
    assert_eq!(
        c.post(&commit)
            .header("authorization", &w)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    // Granting a stored xorb: 200, empty body (skip the upload).
    let resp = c
        .post(format!("{base}/v1/xorb-grants/default/{}", u.xorb_hash))
        .header("authorization", &w)
        .body(grant_req(u.xorb.len(), crc))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.bytes().await.unwrap().is_empty());
    // A direct re-upload says it was not inserted.
    let resp = post(u.xorb_hash.to_string(), u.xorb.clone()).await.unwrap();
    assert_eq!(resp.text().await.unwrap(), r#"{"was_inserted":false}"#);
    // The wrong-hash body stays rejected even now that its real hash is stored.
    assert_eq!(post(wrong, u.xorb.clone()).await.unwrap().status(), 400);
    assert_eq!(
        server.state.store().list_xorbs().await.unwrap(),
        vec![u.xorb_hash]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shard_the_store_fails_to_write_is_retryable_and_then_lands() {
    let server = TestServer::start().await;
    let (c, base, w) = (http(), server.url.clone(), server.bearer(Scope::Write));
    let u = hand_upload(Rng::new(16).bytes(150_000));
    put_hand_xorb(&c, &base, &w, &u).await;
    // The store's temporary directory becomes a file: every write fails (ENOTDIR),
    // an internal error, not the client's fault.
    let tmp = server.dir.path().join("store").join("tmp");
    std::fs::remove_dir_all(&tmp).unwrap();
    std::fs::write(&tmp, b"not a directory").unwrap();
    let post_shard = |v: u8| {
        c.post(format!("{base}/v{v}/shards"))
            .header("authorization", &w)
            .body(u.shard.clone())
            .send()
    };
    assert_eq!(post_shard(1).await.unwrap().status(), 500);
    let text = post_shard(2).await.unwrap().text().await.unwrap();
    let last = last_shard_event(&text);
    assert!(
        matches!(
            last,
            xet_format::api::ShardUploadEvent::Error { retryable: true, .. }
        ),
        "{text}"
    );
    // Once the store is writable again, the retry lands.
    std::fs::remove_file(&tmp).unwrap();
    std::fs::create_dir(&tmp).unwrap();
    let text = post_shard(2).await.unwrap().text().await.unwrap();
    let last = last_shard_event(&text);
    assert!(
        matches!(
            last,
            xet_format::api::ShardUploadEvent::Result { result: Some(1) }
        ),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_shards_are_rejected_and_change_nothing() {
    let server = TestServer::start().await;
    let (c, base, w) = (http(), server.url.clone(), server.bearer(Scope::Write));
    let u = hand_upload(Rng::new(6).bytes(150_000));
    let post_shard = |v: u8, body: Vec<u8>| {
        c.post(format!("{base}/v{v}/shards"))
            .header("authorization", &w)
            .body(body)
            .send()
    };
    // The xorb is missing.
    let resp = post_shard(1, u.shard.clone()).await.unwrap();
    assert_eq!(resp.status(), 400);
    assert!(resp.text().await.unwrap().contains("upload the xorb"));
    // v2 answers 200 and reports the failure in its terminal event.
    let resp = post_shard(2, u.shard.clone()).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/x-ndjson");
    let text = resp.text().await.unwrap();
    let last = last_shard_event(&text);
    assert!(
        matches!(
            last,
            xet_format::api::ShardUploadEvent::Error { retryable: false, .. }
        ),
        "{text}"
    );

    put_hand_xorb(&c, &base, &w, &u).await;
    // Wrong verification hash.
    let mut shard = Shard::decode(&u.shard).unwrap();
    shard.files[0].verification = Some(vec![MerkleHash::from_bytes([3; 32])]);
    let resp = post_shard(1, shard.to_upload_bytes().unwrap()).await.unwrap();
    assert_eq!(resp.status(), 400);
    assert!(resp.text().await.unwrap().contains("verification"));
    // A term past the xorb's chunks, a CAS block lying about chunk hashes.
    let mut shard = Shard::decode(&u.shard).unwrap();
    shard.files[0].terms[0].chunk_end += 1;
    assert_eq!(
        post_shard(1, shard.to_upload_bytes().unwrap())
            .await
            .unwrap()
            .status(),
        400
    );
    let mut shard = Shard::decode(&u.shard).unwrap();
    shard.xorbs[0].chunks[0].hash = MerkleHash::from_bytes([4; 32]);
    assert_eq!(
        post_shard(1, shard.to_upload_bytes().unwrap())
            .await
            .unwrap()
            .status(),
        400
    );
    // Garbage and truncation.
    assert_eq!(
        post_shard(1, b"not a shard".to_vec()).await.unwrap().status(),
        400
    );
    assert_eq!(
        post_shard(1, u.shard[..u.shard.len() - 1].to_vec())
            .await
            .unwrap()
            .status(),
        400
    );
    assert_eq!(
        post_shard(1, vec![0; xet_store::MAX_SHARD_UPLOAD_BYTES + 1])
            .await
            .unwrap()
            .status(),
        413
    );
    assert!(
        server.state.store().list_files().await.unwrap().is_empty(),
        "a bad shard registered a file"
    );
    let r = server.bearer(Scope::Read);
    assert!(download(&c, &base, &r, &u.file_hash, None)
        .await
        .unwrap_err()
        .contains("404"));
    // No shard object and no dedup entry either (`Store` layout: `shards/`,
    // `dedup/`, `files/` under the store directory).
    let store_dir = server.dir.path().join("store");
    let objects = |sub: &str| std::fs::read_dir(store_dir.join(sub)).map_or(0, |d| d.count());
    for sub in ["shards", "dedup", "files"] {
        assert_eq!(objects(sub), 0, "a bad shard wrote under {sub}/");
    }
    let first = xet_format::hash::chunk_hash(&u.data[..65536]);
    let dedup = || {
        c.get(format!("{base}/v1/chunks/default/{first}"))
            .header("authorization", &r)
            .send()
    };
    assert_eq!(dedup().await.unwrap().status(), 404);

    // The good shard, on v2: progress then a result.
    let resp = post_shard(2, u.shard.clone()).await.unwrap();
    let text = resp.text().await.unwrap();
    assert!(text.starts_with(r#"{"type":"validating""#), "{text}");
    assert_eq!(text.lines().last().unwrap(), r#"{"type":"result","result":1}"#);
    assert_eq!(download(&c, &base, &r, &u.file_hash, None).await.unwrap(), u.data);
    // The checks above look where the good shard did write.
    for sub in ["shards", "dedup", "files"] {
        assert!(objects(sub) > 0, "the good shard wrote nothing under {sub}/");
    }
    assert_eq!(dedup().await.unwrap().status(), 200);
    let resp = post_shard(1, u.shard.clone()).await.unwrap();
    assert_eq!(resp.text().await.unwrap(), r#"{"result":0}"#);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn global_dedup_answers_keyed_shards() {
    let server = TestServer::start().await;
    let (c, base, w) = (http(), server.url.clone(), server.bearer(Scope::Write));
    let u = hand_upload(Rng::new(7).bytes(200_000));
    put_hand_upload(&c, &base, &w, &u).await;
    let first = xet_format::hash::chunk_hash(&u.data[..65536]);
    let r = server.bearer(Scope::Read);
    for prefix in ["default", "default-merkledb"] {
        let resp = c
            .get(format!("{base}/v1/chunks/{prefix}/{first}"))
            .header("authorization", &r)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let shard = Shard::decode(&resp.bytes().await.unwrap()).unwrap();
        assert!(shard.files.is_empty());
        assert_ne!(shard.hmac_key(), [0; 32], "chunk hashes must be keyed (§8.3)");
        assert!(
            shard.xorbs[0].chunks.iter().all(|ch| ch.hash != first),
            "a raw hash leaked"
        );
        assert_eq!(ChunkLookup::new(&shard).find(&first), Some((0, 0)));
    }
    // A chunk that is stored but not eligible, and an unknown one: 404.
    let second = xet_format::hash::chunk_hash(&u.data[65536..131072]);
    for h in [second, MerkleHash::from_bytes([5; 32])] {
        let resp = c
            .get(format!("{base}/v1/chunks/default/{h}"))
            .header("authorization", &r)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 404);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_scopes_expiry_and_token_endpoints() {
    let server = TestServer::start().await;
    let (c, base) = (http(), server.url.clone());
    let u = hand_upload(Rng::new(8).bytes(70_000));
    let xorb_url = format!("{base}/v1/xorbs/default/{}", u.xorb_hash);
    let post = |auth: Option<String>| {
        let mut q = c.post(&xorb_url).body(u.xorb.clone());
        if let Some(a) = auth {
            q = q.header("authorization", a);
        }
        q.send()
    };
    let read = server.bearer(Scope::Read);
    let expired = format!(
        "Bearer {}",
        server.state.auth().token_with_expiry(Scope::Write, 1)
    );
    let forged = server.bearer(Scope::Read).replace(".read.", ".write.");
    let other = format!("Bearer {}", AuthConfig::new(vec![]).issue_token(Scope::Write).0);
    assert_eq!(post(None).await.unwrap().status(), 401);
    assert_eq!(post(Some(read.clone())).await.unwrap().status(), 403);
    assert_eq!(post(Some(expired.clone())).await.unwrap().status(), 401);
    assert_eq!(post(Some(forged)).await.unwrap().status(), 401);
    assert_eq!(post(Some(other)).await.unwrap().status(), 401);
    assert_eq!(
        post(Some(format!("Bearer {USER_TOKEN}"))).await.unwrap().status(),
        401
    );
    for (path, status) in [("/v1/shards", 403), ("/v2/shards", 403)] {
        let resp = c
            .post(format!("{base}{path}"))
            .header("authorization", &read)
            .body(u.shard.clone())
            .send();
        assert_eq!(resp.await.unwrap().status(), status, "{path}");
    }
    let resp = c
        .post(format!("{base}/v1/xorb-grants/default/{}", u.xorb_hash))
        .header("authorization", &read)
        .body("{}")
        .send();
    assert_eq!(resp.await.unwrap().status(), 403);
    assert!(server.state.store().list_xorbs().await.unwrap().is_empty());
    let get = |path: &str, auth: &str| {
        c.get(format!("{base}{path}"))
            .header("authorization", auth)
            .send()
    };
    let f = MerkleHash::from_bytes([2; 32]);
    assert_eq!(
        get(&format!("/v2/reconstructions/{f}"), &expired)
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(
        get(&format!("/v2/reconstructions/{f}"), &read)
            .await
            .unwrap()
            .status(),
        404
    );

    // Token endpoints: write token for the user token, used to upload.
    let url = |kind: &str| format!("/api/models/me/repo/xet-{kind}-token/main");
    assert_eq!(get(&url("write"), "Bearer nope").await.unwrap().status(), 401);
    assert_eq!(
        c.get(format!("{base}{}", url("read")))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(
        get("/api/widgets/me/repo/xet-read-token/main", USER_TOKEN)
            .await
            .unwrap()
            .status(),
        404
    );
    let user = format!("Bearer {USER_TOKEN}");
    for (path, claim) in [
        (url("write"), "models/me/repo@main"),
        (
            "/api/datasets/org/data/xet-read-token/v1.0".to_string(),
            "datasets/org/data@v1.0",
        ),
        (
            "/api/spaces/solo/xet-read-token/main".to_string(),
            "spaces/solo@main",
        ),
        ("/api/buckets/org/b/xet-write-token".to_string(), "buckets/org/b"),
    ] {
        let resp = get(&path, &user).await.unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        assert!(resp.headers().contains_key("x-xet-access-token"));
        let t: xet_format::api::XetTokenResponse =
            serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
        assert_eq!(t.cas_url, base);
        assert!(t.exp > 1_700_000_000);
        // The token records what it was issued for (not used to narrow access:
        // single-tenant server, see `AuthConfig::issue_repo_token`).
        assert_eq!(
            xet_server::AuthConfig::token_repo(&t.access_token).as_deref(),
            Some(claim)
        );
    }
    let long = format!("/api/models/me/{}/xet-read-token/main", "r".repeat(600));
    assert_eq!(get(&long, &user).await.unwrap().status(), 400);
    let t: xet_format::api::XetTokenResponse =
        serde_json::from_slice(&get(&url("write"), &user).await.unwrap().bytes().await.unwrap()).unwrap();
    assert_eq!(
        post(Some(format!("Bearer {}", t.access_token)))
            .await
            .unwrap()
            .status(),
        200
    );
    let t: xet_format::api::XetTokenResponse =
        serde_json::from_slice(&get(&url("read"), &user).await.unwrap().bytes().await.unwrap()).unwrap();
    assert_eq!(
        post(Some(format!("Bearer {}", t.access_token)))
            .await
            .unwrap()
            .status(),
        403
    );
    // Health and telemetry.
    assert_eq!(
        c.get(format!("{base}/health")).send().await.unwrap().status(),
        200
    );
    let resp = c
        .post(format!("{base}/v1/telemetry"))
        .header("authorization", &read)
        .body("{}")
        .send();
    assert_eq!(resp.await.unwrap().status(), 200);
    assert_eq!(
        get("/v2/file-chunk-hashes/00", &read).await.unwrap().status(),
        400
    );
}

/// A large xorb range (32 MiB, one signed URL) downloads whole and exact, and a
/// client that hangs up after the first bytes leaves the server serving: the next
/// full download of the same range is still exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_range_fetch_and_client_disconnect() {
    let server = TestServer::start().await;
    let (c, base, w) = (http(), server.url.clone(), server.bearer(Scope::Write));
    let u = hand_upload(Rng::new(21).bytes(32 << 20));
    put_hand_upload(&c, &base, &w, &u).await;
    let r = server.bearer(Scope::Read);
    let rec: xet_format::api::ReconstructionV2 = serde_json::from_slice(
        &c.get(format!("{base}/v2/reconstructions/{}", u.file_hash))
            .header("authorization", &r)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap(),
    )
    .unwrap();
    let fetch = &rec.xorbs[&u.xorb_hash][0];
    assert_eq!(fetch.ranges.len(), 1);
    let (a, b) = (fetch.ranges[0].bytes.start, fetch.ranges[0].bytes.end);
    assert_eq!((a, b + 1), (0, u.xorb.len() as u64));
    let get = || c.get(&fetch.url).header("range", format!("bytes={a}-{b}")).send();

    // Hang up after the first piece.
    let mut resp = get().await.unwrap();
    assert_eq!(resp.status(), 206);
    assert_eq!(resp.content_length(), Some(u.xorb.len() as u64));
    assert!(!resp.chunk().await.unwrap().unwrap().is_empty());
    drop(resp);

    for _ in 0..2 {
        let resp = get().await.unwrap();
        assert_eq!(resp.status(), 206);
        assert_eq!(resp.content_length(), Some(u.xorb.len() as u64));
        let body = resp.bytes().await.unwrap();
        assert!(body == u.xorb, "the streamed range differs from the xorb");
    }
    assert_eq!(download(&c, &base, &r, &u.file_hash, None).await.unwrap(), u.data);
}

/// A grant (§10.7) for `body` under `hash`, asked with `bearer`.
async fn grant(c: &reqwest::Client, base: &str, bearer: &str, hash: &MerkleHash, body: &[u8]) -> XorbGrant {
    let req = serde_json::json!({
        "length": body.len(),
        "checksum": {"algo": "crc64nvme", "value": crc64_nvme(body).to_string()},
    });
    let resp = c
        .post(format!("{base}/v1/xorb-grants/default/{hash}"))
        .header("authorization", bearer)
        .body(req.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap()
}

/// `url` with query parameter `key` set to `value` (or removed when `None`).
fn with_param(url: &str, key: &str, value: Option<&str>) -> String {
    let (path, query) = url.split_once('?').unwrap();
    let params: Vec<String> = query
        .split('&')
        .filter_map(|p| match p.split_once('=') {
            Some((k, _)) if k == key => value.map(|v| format!("{k}={v}")),
            _ => Some(p.to_string()),
        })
        .collect();
    assert_ne!(params.join("&"), query, "{key} is not in {url}");
    format!("{path}?{}", params.join("&"))
}

/// The grant's upload URL is signed for the xorb, grant, length, CRC and expiry:
/// a PUT to an expired URL, or to one with any of them changed or the signature
/// altered or missing, gets 403 and stores nothing; the untouched URL then works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_urls_expired_or_tampered_get_403_and_store_nothing() {
    let server = TestServer::start().await;
    let (c, base, w) = (http(), server.url.clone(), server.bearer(Scope::Write));
    let u = hand_upload(Rng::new(9).bytes(100_000));
    let g = grant(&c, &base, &w, &u.xorb_hash, &u.xorb).await;
    let q = |k: &str| {
        g.url
            .split_once('?')
            .unwrap()
            .1
            .split('&')
            .find_map(|p| p.strip_prefix(&format!("{k}=")))
            .unwrap()
            .to_string()
    };
    let longer = [&u.xorb[..], b"x"].concat();
    let mut flipped = u.xorb.clone();
    flipped[10] ^= 1;
    let mut bad_sig = q("sig");
    bad_sig.replace_range(..1, if bad_sig.starts_with('0') { "1" } else { "0" });
    let later = (q("exp").parse::<u64>().unwrap() + 3600).to_string();
    let other_hash = MerkleHash::from_bytes([1; 32]).to_string();
    let cases: Vec<(&str, String, Vec<u8>)> = vec![
        (
            "len= raised for a longer body",
            with_param(&g.url, "len", Some(&longer.len().to_string())),
            longer,
        ),
        (
            "crc= changed for another body",
            with_param(&g.url, "crc", Some(&crc64_nvme(&flipped).to_string())),
            flipped,
        ),
        (
            "exp= extended",
            with_param(&g.url, "exp", Some(&later)),
            u.xorb.clone(),
        ),
        (
            "grant= changed",
            with_param(&g.url, "grant", Some(&"0".repeat(32))),
            u.xorb.clone(),
        ),
        (
            "sig= altered",
            with_param(&g.url, "sig", Some(&bad_sig)),
            u.xorb.clone(),
        ),
        ("sig= missing", with_param(&g.url, "sig", None), u.xorb.clone()),
        (
            "another xorb",
            g.url.replace(&u.xorb_hash.to_string(), &other_hash),
            u.xorb.clone(),
        ),
    ];
    for (name, url, body) in cases {
        let resp = c.put(&url).body(body).send().await.unwrap();
        assert_eq!(resp.status(), 403, "{name}");
        let text = resp.text().await.unwrap();
        assert!(text.contains("signature"), "{name}: {text}");
        assert!(
            server.state.store().list_xorbs().await.unwrap().is_empty(),
            "{name}: something was stored"
        );
    }
    let commit = format!("{base}/v1/xorb-commits/default/{}/grant/{}", u.xorb_hash, g.id);
    let resp = c.post(&commit).header("authorization", &w).send().await.unwrap();
    assert_eq!(resp.status(), 400, "commit after refused PUTs");
    // The URL as granted works.
    assert_eq!(
        c.put(&g.url).body(u.xorb.clone()).send().await.unwrap().status(),
        200
    );
    assert_eq!(
        server.state.store().list_xorbs().await.unwrap(),
        vec![u.xorb_hash]
    );

    // Expired: a server whose URLs last 0 seconds.
    let mut auth = AuthConfig::new(vec![USER_TOKEN.into()]);
    auth.url_ttl = std::time::Duration::ZERO;
    let short = TestServer::start_with(auth).await;
    let sw = short.bearer(Scope::Write);
    let g = grant(&c, &short.url, &sw, &u.xorb_hash, &u.xorb).await;
    let resp = c.put(&g.url).body(u.xorb.clone()).send().await.unwrap();
    assert_eq!(resp.status(), 403);
    assert!(resp.text().await.unwrap().contains("expired"));
    assert!(short.state.store().list_xorbs().await.unwrap().is_empty());
    let commit = format!(
        "{}/v1/xorb-commits/default/{}/grant/{}",
        short.url, u.xorb_hash, g.id
    );
    let resp = c.post(&commit).header("authorization", &sw).send().await.unwrap();
    assert_eq!(resp.status(), 400, "commit after an expired PUT");
}

/// A malformed hash in the path is a 400 naming the hash rule on every route that
/// takes one, before anything is looked up or stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_hashes_get_400_on_every_route() {
    let server = TestServer::start().await;
    let (c, base) = (http(), server.url.clone());
    let (r, w) = (server.bearer(Scope::Read), server.bearer(Scope::Write));
    let grant_req = r#"{"length":100,"checksum":{"algo":"crc64nvme","value":"1"}}"#;
    let id = "0".repeat(32);
    for bad in ["xyz", "00", &"g".repeat(64), &"0".repeat(65)] {
        let cases = [
            (
                "HEAD xorb",
                c.head(format!("{base}/v1/xorbs/default/{bad}"))
                    .header("authorization", &r),
            ),
            (
                "HEAD file",
                c.head(format!("{base}/v1/files/{bad}"))
                    .header("authorization", &r),
            ),
            (
                "dedup",
                c.get(format!("{base}/v1/chunks/default/{bad}"))
                    .header("authorization", &r),
            ),
            (
                "dedup merkledb",
                c.get(format!("{base}/v1/chunks/default-merkledb/{bad}"))
                    .header("authorization", &r),
            ),
            (
                "grant",
                c.post(format!("{base}/v1/xorb-grants/default/{bad}"))
                    .header("authorization", &w)
                    .body(grant_req),
            ),
            (
                "commit",
                c.post(format!("{base}/v1/xorb-commits/default/{bad}/grant/{id}"))
                    .header("authorization", &w),
            ),
            (
                "POST xorb",
                c.post(format!("{base}/v1/xorbs/default/{bad}"))
                    .header("authorization", &w)
                    .body(vec![0u8; 100]),
            ),
            (
                "v1 reconstruction",
                c.get(format!("{base}/v1/reconstructions/{bad}"))
                    .header("authorization", &r),
            ),
            (
                "v2 reconstruction",
                c.get(format!("{base}/v2/reconstructions/{bad}"))
                    .header("authorization", &r),
            ),
            (
                "batch",
                c.get(format!("{base}/v1/reconstructions?file_id={bad}"))
                    .header("authorization", &r),
            ),
            (
                "file-chunk-hashes",
                c.get(format!("{base}/v2/file-chunk-hashes/{bad}"))
                    .header("authorization", &r)
                    .header("x-range-dirty", "bytes=0-10"),
            ),
        ];
        for (name, req) in cases {
            let resp = req.send().await.unwrap();
            assert_eq!(resp.status(), 400, "{name} with {bad:?}");
            if !name.starts_with("HEAD") {
                let text = resp.text().await.unwrap();
                assert!(text.contains("64 lowercase hex"), "{name} with {bad:?}: {text}");
            }
        }
    }
    // A grant id that is not one of ours.
    let h = MerkleHash::from_bytes([3; 32]);
    for bad_id in ["zz", "0-0-0-0;x", &"0".repeat(200)] {
        let resp = c
            .post(format!("{base}/v1/xorb-commits/default/{h}/grant/{bad_id}"))
            .header("authorization", &w)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{bad_id}");
        assert!(resp.text().await.unwrap().contains("grant id"));
    }
    assert!(server.state.store().list_xorbs().await.unwrap().is_empty());
}

/// Telemetry (§10.2 #11) takes a JSON object: the official client's recorded
/// requests get 200; a body that is not JSON, or JSON but not an object, gets
/// 400; over 1 MiB gets 413.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telemetry_takes_json_objects() {
    let server = TestServer::start().await;
    let (c, base, r) = (http(), server.url.clone(), server.bearer(Scope::Read));
    let post = |body: Vec<u8>| {
        c.post(format!("{base}/v1/telemetry"))
            .header("authorization", &r)
            .body(body)
            .send()
    };
    let trace = crate::support::vectors_dir().join("http_trace_xorshift_100000");
    let tsv = std::fs::read_to_string(trace.join("requests.tsv")).unwrap();
    let recorded: Vec<String> = tsv
        .lines()
        .filter(|l| l.contains("\t/v1/telemetry\t"))
        .map(|l| {
            format!(
                "{:06}.req.bin",
                l.split('\t').next().unwrap().parse::<u32>().unwrap()
            )
        })
        .collect();
    assert_eq!(
        recorded.len(),
        2,
        "the trace has an upload and a download summary"
    );
    for name in recorded {
        let body = std::fs::read(trace.join(&name)).unwrap();
        assert_eq!(post(body).await.unwrap().status(), 200, "{name}");
    }
    for bad in [&b"not json"[..], b"", b"[1,2]", b"\"event\"", b"{\"a\":"] {
        let resp = post(bad.to_vec()).await.unwrap();
        assert_eq!(resp.status(), 400, "{:?}", String::from_utf8_lossy(bad));
        assert!(resp.text().await.unwrap().contains("telemetry"));
    }
    let mut big = b"{\"pad\":\"".to_vec();
    big.resize(1 << 20, b'x');
    big.extend_from_slice(b"\"}");
    assert_eq!(post(big).await.unwrap().status(), 413);
}

/// Every response carries an `X-Request-Id` (§10.1), a different one per request,
/// whatever its status.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_response_has_a_request_id() {
    let server = TestServer::start().await;
    let (c, base, r) = (http(), server.url.clone(), server.bearer(Scope::Read));
    let unknown = MerkleHash::from_bytes([8; 32]);
    let mut seen = std::collections::HashSet::new();
    for (req, status) in [
        (c.get(format!("{base}/health")), 200),
        (c.get(format!("{base}/health")), 200),
        (c.get(format!("{base}/no/such/route")), 404),
        (c.get(format!("{base}/v2/reconstructions/{unknown}")), 401),
        (
            c.get(format!("{base}/v2/reconstructions/{unknown}"))
                .header("authorization", &r),
            404,
        ),
        (
            c.head(format!("{base}/v1/files/xyz")).header("authorization", &r),
            400,
        ),
        (
            c.get(format!("{base}/v1/fetch/{unknown}?ranges=0-1&exp=1&sig=0")),
            403,
        ),
    ] {
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), status);
        let id = resp
            .headers()
            .get("x-request-id")
            .unwrap_or_else(|| panic!("no X-Request-Id on a {status}"))
            .to_str()
            .unwrap()
            .to_string();
        assert!(!id.is_empty());
        assert!(seen.insert(id), "X-Request-Id repeated");
    }
}

/// Over the S3 backend the grant's URL points into the bucket; a client that
/// stages more than it was granted (the test server, moto, does not check the
/// signed length, as some S3-compatible servers do not) is refused at commit
/// with a 4xx naming the grant, the staged object is deleted, and nothing becomes
/// visible; the exact bytes then commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_staged_upload_longer_than_granted_is_refused_at_commit() {
    let Some(store) = crate::support::s3_store("commit").await else {
        return;
    };
    let server = TestServer::start_on(
        store,
        AuthConfig::new(vec![USER_TOKEN.into()]),
        crate::support::TempDir::new("s3-commit"),
    )
    .await;
    let (c, base, w) = (http(), server.url.clone(), server.bearer(Scope::Write));
    let u = hand_upload(Rng::new(10).bytes(120_000));
    let g = grant(&c, &base, &w, &u.xorb_hash, &u.xorb).await;
    let endpoint = std::env::var("XET_TEST_S3_ENDPOINT").unwrap();
    assert!(g.url.starts_with(&endpoint), "{} is not in the bucket", g.url);
    assert!(
        g.url.contains("X-Amz-SignedHeaders=content-length%3Bhost"),
        "{}",
        g.url
    );
    let commit = format!("{base}/v1/xorb-commits/default/{}/grant/{}", u.xorb_hash, g.id);
    let head = || {
        c.head(format!("{base}/v1/xorbs/default/{}", u.xorb_hash))
            .header("authorization", &w)
            .send()
    };
    let longer = [&u.xorb[..], &[0u8; 4096][..]].concat();
    assert!(c
        .put(&g.url)
        .body(longer)
        .send()
        .await
        .unwrap()
        .status()
        .is_success());
    let resp = c.post(&commit).header("authorization", &w).send().await.unwrap();
    assert_eq!(resp.status(), 400);
    let text = resp.text().await.unwrap();
    assert!(text.contains("the grant was for"), "{text}");
    assert_eq!(head().await.unwrap().status(), 404);
    // The staged object is gone: committing again finds nothing uploaded.
    let resp = c.post(&commit).header("authorization", &w).send().await.unwrap();
    assert_eq!(resp.status(), 400);
    assert!(resp.text().await.unwrap().contains("was not uploaded"));

    let g = grant(&c, &base, &w, &u.xorb_hash, &u.xorb).await;
    assert!(c
        .put(&g.url)
        .body(u.xorb.clone())
        .send()
        .await
        .unwrap()
        .status()
        .is_success());
    let commit = format!("{base}/v1/xorb-commits/default/{}/grant/{}", u.xorb_hash, g.id);
    assert_eq!(
        c.post(&commit)
            .header("authorization", &w)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(head().await.unwrap().status(), 200);
}
