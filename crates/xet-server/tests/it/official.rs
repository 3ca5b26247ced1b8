//! The official client (hf-xet 1.8.0) against our server over loopback: uploads,
//! then downloads byte-identical files, on its default routes and forced onto each
//! v1 route (CLIENT-WIRE.md); a repeated upload sends no xorb.

use std::path::PathBuf;

use xet_server::Stats;

use crate::support::{official, require_official_client, s3_store, Rng, TempDir, TestServer, USER_TOKEN};

fn corpus(dir: &std::path::Path, seed: u64) -> Vec<PathBuf> {
    let mut rng = Rng::new(seed);
    let mut files = Vec::new();
    for (name, data) in [
        ("big", rng.bytes(5 << 20)),
        ("medium", rng.bytes(100_000)),
        ("one-byte", rng.bytes(1)),
        ("text", b"hello xet ".repeat(50_000)),
    ] {
        let p = dir.join(name);
        std::fs::write(&p, data).unwrap();
        files.push(p);
    }
    files
}

/// Uploads `files` with the official client under `env`, downloads them back to new
/// paths and checks every byte.
async fn round_trip(server: &TestServer, home: &std::path::Path, env: &[(&str, &str)], files: &[PathBuf]) {
    let uploaded = official(&server.url, USER_TOKEN, home, env, files, &[]).await;
    assert_eq!(uploaded.len(), files.len());
    let downloads: Vec<(PathBuf, String, u64)> = files
        .iter()
        .zip(&uploaded)
        .map(|(p, (h, s))| (p.with_extension("down"), h.clone(), *s))
        .collect();
    official(&server.url, USER_TOKEN, home, env, &[], &downloads).await;
    for (src, (dst, _, _)) in files.iter().zip(&downloads) {
        assert!(
            std::fs::read(src).unwrap() == std::fs::read(dst).unwrap(),
            "{} differs after the round trip ({env:?})",
            src.display()
        );
        std::fs::remove_file(dst).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn default_routes_round_trip_and_second_upload_sends_no_xorb() {
    require_official_client();
    let server = TestServer::start().await;
    let dir = TempDir::new("official-default");
    let files = corpus(dir.path(), 1);
    let home = dir.path().join("home-a");
    round_trip(&server, &home, &[], &files).await;
    let s = server.state.stats();
    assert!(Stats::get(&s.xorb_grants) > 0, "the grant flow is the default");
    assert_eq!(Stats::get(&s.xorb_posts), 0);
    assert!(Stats::get(&s.shards_v2) > 0 && Stats::get(&s.shards_v1) == 0);
    assert!(Stats::get(&s.reconstructions_v2) > 0 && Stats::get(&s.reconstructions_v1) == 0);
    assert!(Stats::get(&s.fetches) > 0);

    // Again from a client with an empty cache: the global-dedup query must find
    // everything, so no xorb body reaches the server.
    let bodies = Stats::get(&s.xorb_bodies);
    assert!(bodies >= Stats::get(&s.xorb_grants) && bodies > 0, "{s:?}");
    let xorbs = server.state.store().list_xorbs().await.unwrap().len();
    let fresh_home = dir.path().join("home-b");
    official(&server.url, USER_TOKEN, &fresh_home, &[], &files[..1], &[]).await;
    assert!(Stats::get(&s.dedup_queries) > 0);
    assert_eq!(Stats::get(&s.xorb_bodies), bodies, "second upload sent a xorb");
    // And with the same cache as the first upload.
    official(&server.url, USER_TOKEN, &home, &[], &files, &[]).await;
    assert_eq!(Stats::get(&s.xorb_bodies), bodies, "third upload sent a xorb");
    assert_eq!(server.state.store().list_xorbs().await.unwrap().len(), xorbs);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn forced_v1_routes_round_trip() {
    require_official_client();
    let cases: [(&str, &[(&str, &str)]); 3] = [
        (
            "direct-xorb",
            &[("HF_XET_CLIENT_LEGACY_DIRECT_XORB_UPLOAD", "true")],
        ),
        ("shards-v1", &[("HF_XET_CLIENT_SHARD_API_VERSION", "1")]),
        (
            "reconstruction-v1",
            &[("HF_XET_CLIENT_RECONSTRUCTION_API_VERSION", "1")],
        ),
    ];
    for (i, (name, env)) in cases.into_iter().enumerate() {
        let server = TestServer::start().await;
        let dir = TempDir::new(name);
        let files = corpus(dir.path(), 10 + i as u64);
        round_trip(&server, &dir.path().join("home"), env, &files).await;
        let s = server.state.stats();
        match name {
            "direct-xorb" => {
                assert!(Stats::get(&s.xorb_posts) > 0, "{name}: no POST /v1/xorbs");
                assert_eq!(Stats::get(&s.xorb_grants), 0, "{name}");
            }
            "shards-v1" => {
                assert!(Stats::get(&s.shards_v1) > 0, "{name}: no POST /v1/shards");
                assert_eq!(Stats::get(&s.shards_v2), 0, "{name}");
            }
            _ => {
                assert!(
                    Stats::get(&s.reconstructions_v1) > 0,
                    "{name}: no v1 reconstruction"
                );
                assert_eq!(Stats::get(&s.reconstructions_v2), 0, "{name}");
            }
        }
    }
}

/// The same round trip with the objects in an S3-compatible server (`.ci/run` starts
/// one, `scripts/s3-server.sh`); under CI a missing endpoint fails the test.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s3_backend_round_trip() {
    require_official_client();
    let Some(store) = s3_store("official").await else {
        return;
    };
    let auth = xet_server::AuthConfig::new(vec![USER_TOKEN.into()]);
    let dir = TempDir::new("official-s3");
    let server = TestServer::start_on(store, auth, TempDir::new("s3-srv")).await;
    let files = corpus(dir.path(), 77);
    round_trip(&server, &dir.path().join("home"), &[], &files).await;
    // Grants point into the bucket: no xorb byte passed through the server.
    let s = server.state.stats();
    let grants = Stats::get(&s.xorb_grants);
    assert!(grants > 0 && Stats::get(&s.xorb_bodies) == 0, "{s:?}");
    official(
        &server.url,
        USER_TOKEN,
        &dir.path().join("home2"),
        &[],
        &files,
        &[],
    )
    .await;
    assert_eq!(
        Stats::get(&s.xorb_grants),
        grants,
        "second upload asked to upload a xorb"
    );
}

/// The official client forced onto every v1 route at once over the S3 backend:
/// direct `POST /v1/xorbs` (the body goes through the server into the bucket),
/// `POST /v1/shards`, v1 reconstructions whose fetch URLs read from the bucket.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn forced_v1_routes_round_trip_on_s3() {
    require_official_client();
    let Some(store) = s3_store("official-v1").await else {
        return;
    };
    let auth = xet_server::AuthConfig::new(vec![USER_TOKEN.into()]);
    let server = TestServer::start_on(store, auth, TempDir::new("s3-v1-srv")).await;
    let dir = TempDir::new("official-s3-v1");
    let files = corpus(dir.path(), 78);
    let env = [
        ("HF_XET_CLIENT_LEGACY_DIRECT_XORB_UPLOAD", "true"),
        ("HF_XET_CLIENT_SHARD_API_VERSION", "1"),
        ("HF_XET_CLIENT_RECONSTRUCTION_API_VERSION", "1"),
    ];
    round_trip(&server, &dir.path().join("home"), &env, &files).await;
    let s = server.state.stats();
    assert!(
        Stats::get(&s.xorb_posts) > 0 && Stats::get(&s.xorb_grants) == 0,
        "{s:?}"
    );
    assert!(
        Stats::get(&s.shards_v1) > 0 && Stats::get(&s.shards_v2) == 0,
        "{s:?}"
    );
    assert!(
        Stats::get(&s.reconstructions_v1) > 0 && Stats::get(&s.reconstructions_v2) == 0,
        "{s:?}"
    );
    assert!(Stats::get(&s.fetches) > 0, "{s:?}");
    // What was posted is in the bucket.
    let store = server.state.store();
    assert!(store.has_direct_uploads(), "not the S3 backend");
    let stored = store.list_xorbs().await.unwrap().len() as u64;
    assert!(
        stored > 0 && stored <= Stats::get(&s.xorb_posts),
        "{stored} xorbs, {s:?}"
    );
}

/// `/v2/shards` heartbeats (§10.3) every millisecond, so a shard validation that
/// takes longer than that (reading xorb footers, fsyncing the shard and its index
/// entries) sends progress lines again: the official client reads them and still
/// completes the upload.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn official_client_accepts_shard_heartbeats() {
    require_official_client();
    let server = TestServer::start_tuned(|c| c.shard_heartbeat = std::time::Duration::from_millis(1)).await;
    let dir = TempDir::new("official-heartbeat");
    let files = corpus(dir.path(), 4);
    round_trip(&server, &dir.path().join("home"), &[], &files).await;
    let s = server.state.stats();
    assert!(Stats::get(&s.shards_v2) > 0);
    // How many heartbeats went out depends on the machine's fsync speed, so it is
    // reported, not asserted (the unit test in routes.rs asserts them).
    eprintln!("heartbeat lines sent: {}", Stats::get(&s.shard_heartbeats));
}
