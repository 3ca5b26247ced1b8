//! Many clients at once: 16 concurrent uploaders (some racing on the same content)
//! and 16 concurrent downloaders, no error and no lost data.

use xet_server::Scope;

use crate::support::{download, hand_upload, http, put_hand_upload, Rng, TestServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_concurrent_uploads_and_downloads() {
    let server = TestServer::start().await;
    let base = server.url.clone();
    let (w, r) = (server.bearer(Scope::Write), server.bearer(Scope::Read));
    // 12 distinct files and 4 copies of one shared file: the copies race on the
    // same xorb, shard and file entries.
    let uploads: Vec<_> = (0..16u64)
        .map(|i| {
            let seed = if i >= 12 { 1000 } else { 100 + i };
            hand_upload(Rng::new(seed).bytes(300_000 + (seed as usize % 7) * 50_000))
        })
        .collect();
    let uploads = std::sync::Arc::new(uploads);
    let mut tasks = Vec::new();
    for i in 0..16 {
        let (uploads, base, w, r) = (uploads.clone(), base.clone(), w.clone(), r.clone());
        tasks.push(tokio::spawn(async move {
            let c = http();
            let u = &uploads[i];
            put_hand_upload(&c, &base, &w, u).await;
            // Download everything uploaded so far by anyone, concurrently with uploads.
            let got = download(&c, &base, &r, &u.file_hash, None).await.unwrap();
            assert!(got == u.data, "upload {i} read back wrong");
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    // Then 16 concurrent downloads of everything.
    let mut tasks = Vec::new();
    for i in 0..16 {
        let (uploads, base, r) = (uploads.clone(), base.clone(), r.clone());
        tasks.push(tokio::spawn(async move {
            let c = http();
            for j in 0..uploads.len() {
                let u = &uploads[(i + j) % uploads.len()];
                assert!(download(&c, &base, &r, &u.file_hash, None).await.unwrap() == u.data);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(server.state.store().list_files().await.unwrap().len(), 13);
    assert_eq!(server.state.store().list_xorbs().await.unwrap().len(), 13);
}
