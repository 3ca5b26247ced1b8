//! `xet upload`, `xet download` and `xet cache` against a CAS over HTTP on loopback
//! (`xet_transfer::testing::serve`, an in-memory CAS speaking the official
//! client's routes, or `xet serve` where its tokens or its request log matter),
//! with the caches in a temporary HF_XET_CACHE.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

use crate::support::{xet_bin, xet_ok, Rng, TempDir};

fn server() -> (tokio::runtime::Runtime, String) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let cas = Arc::new(xet_transfer::testing::MemoryCas::new());
    let base = rt.block_on(xet_transfer::testing::serve(cas)).unwrap();
    (rt, base)
}

fn xet_in(cache: &Path, args: &[&str]) -> Output {
    Command::new(xet_bin())
        .args(args)
        .env("HF_XET_CACHE", cache)
        .env("HF_TOKEN", "user-token")
        .output()
        .expect("running xet")
}

fn ok(cache: &Path, args: &[&str]) -> String {
    let out = xet_in(cache, args);
    assert!(
        out.status.success(),
        "xet {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn upload_then_download_whole_and_ranges() {
    let (_rt, base) = server();
    let dir = TempDir::new("xfer");
    let cache = dir.path().join("cache");
    let mut rng = Rng::new(7);
    let files = [
        ("empty", vec![]),
        ("tiny", b"a".to_vec()),
        ("big", rng.bytes(3 << 20)),
    ];
    let mut paths = Vec::new();
    for (n, d) in &files {
        let p = dir.path().join(n);
        std::fs::write(&p, d).unwrap();
        paths.push(p.display().to_string());
    }
    let mut args = vec!["upload", "--endpoint", &base];
    args.extend(paths.iter().map(String::as_str));
    let out = ok(&cache, &args);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    for (line, p) in lines.iter().zip(&paths) {
        // Same hash, size and SHA-256 as `xet hash`.
        assert_eq!(line.trim(), xet_ok(&["hash", p]).trim());
    }
    for (line, (n, d)) in lines.iter().zip(&files) {
        let f: Vec<&str> = line.split_whitespace().collect();
        let out = dir.path().join(format!("{n}.out"));
        let spec = format!("{}:{}", f[0], f[1]);
        ok(
            &cache,
            &[
                "download",
                &spec,
                "-o",
                out.to_str().unwrap(),
                "--endpoint",
                &base,
            ],
        );
        assert_eq!(&std::fs::read(&out).unwrap(), d, "{n}");
        if d.len() > 10 {
            let out = dir.path().join(format!("{n}.range"));
            ok(
                &cache,
                &[
                    "download",
                    f[0],
                    "-o",
                    out.to_str().unwrap(),
                    "--range",
                    "5-100000",
                    "--endpoint",
                    &base,
                ],
            );
            assert_eq!(std::fs::read(&out).unwrap(), d[5..=100_000]);
        }
    }
    // A wrong size is an error.
    let f: Vec<&str> = lines[2].split_whitespace().collect();
    let bad = format!("{}:{}", f[0], 5);
    let out = xet_in(
        &cache,
        &[
            "download",
            &bad,
            "-o",
            dir.path().join("x").to_str().unwrap(),
            "--endpoint",
            &base,
        ],
    );
    assert!(!out.status.success());
    assert!(
        !dir.path().join("x").exists(),
        "no file of the wrong size at the destination"
    );
    // The chunk cache was filled; stats see it; clear empties it.
    let stats: serde_json::Value = serde_json::from_str(&ok(&cache, &["cache", "stats", "--json"])).unwrap();
    let servers = stats["servers"].as_array().unwrap();
    assert_eq!(servers.len(), 1);
    assert!(servers[0]["chunk_bytes"].as_u64().unwrap() > 0);
    assert!(servers[0]["shard_entries"].as_u64().unwrap() >= 1);
    ok(&cache, &["cache", "clear"]);
    let stats: serde_json::Value = serde_json::from_str(&ok(&cache, &["cache", "stats", "--json"])).unwrap();
    assert_eq!(stats["servers"][0]["chunk_bytes"].as_u64(), Some(0));
}

/// Several files in one `xet upload` and one `xet download` (into a directory,
/// each under its hash). Off a terminal, neither draws anything on stderr.
#[test]
fn many_files_up_and_down_quietly() {
    let (_rt, base) = server();
    let dir = TempDir::new("xfer-many");
    let cache = dir.path().join("cache");
    let mut rng = Rng::new(9);
    let datas: Vec<Vec<u8>> = (0..7).map(|i| rng.bytes(100_000 * i + 1)).collect();
    let mut paths = Vec::new();
    for (i, d) in datas.iter().enumerate() {
        let p = dir.path().join(format!("f{i}"));
        std::fs::write(&p, d).unwrap();
        paths.push(p.display().to_string());
    }
    let mut args = vec!["upload", "--endpoint", &base];
    args.extend(paths.iter().map(String::as_str));
    let up = xet_in(&cache, &args);
    assert!(up.status.success(), "{}", String::from_utf8_lossy(&up.stderr));
    assert!(up.stderr.is_empty(), "{}", String::from_utf8_lossy(&up.stderr));
    let stdout = String::from_utf8(up.stdout).unwrap();
    let specs: Vec<String> = stdout
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            format!("{}:{}", f[0], f[1])
        })
        .collect();
    assert_eq!(specs.len(), datas.len());
    let out = dir.path().join("out");
    let mut args = vec!["download", "-o", out.to_str().unwrap(), "--endpoint", &base];
    args.extend(specs.iter().map(String::as_str));
    let down = xet_in(&cache, &args);
    assert!(down.status.success(), "{}", String::from_utf8_lossy(&down.stderr));
    assert!(
        down.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&down.stderr)
    );
    for (spec, d) in specs.iter().zip(&datas) {
        let hash = spec.split(':').next().unwrap();
        assert_eq!(&std::fs::read(out.join(hash)).unwrap(), d, "{spec}");
    }
    // --range is for one file; a wrong size among several fails the command.
    let mut args = vec![
        "download",
        "-o",
        out.to_str().unwrap(),
        "--endpoint",
        &base,
        "--range",
        "0-1",
    ];
    args.extend(specs.iter().map(String::as_str));
    assert!(!xet_in(&cache, &args).status.success());
    let bad = format!("{}:1", specs[3].split(':').next().unwrap());
    let args = [
        "download",
        "-o",
        out.to_str().unwrap(),
        "--endpoint",
        &base,
        &specs[0],
        &bad,
    ];
    let failed = xet_in(&cache, &args);
    assert!(!failed.status.success());
    assert!(
        String::from_utf8_lossy(&failed.stderr).contains("not the 1 given"),
        "{}",
        String::from_utf8_lossy(&failed.stderr)
    );
    let bad_out = out.join(specs[3].split(':').next().unwrap());
    std::fs::remove_file(&bad_out).unwrap();
    assert!(!xet_in(&cache, &args).status.success());
    assert!(!bad_out.exists(), "no file of the wrong size at the destination");
}

#[test]
fn upload_json_reports_dedup_and_hub_tokens_work() {
    let (_rt, base) = server();
    let dir = TempDir::new("xfer-json");
    let cache = dir.path().join("cache");
    let mut rng = Rng::new(8);
    let a = rng.bytes(4 << 20);
    let mut b = a.clone();
    b.splice(2_000_000..2_000_000, *b"edit");
    std::fs::write(dir.path().join("a"), &a).unwrap();
    std::fs::write(dir.path().join("b"), &b).unwrap();
    let pa = dir.path().join("a").display().to_string();
    let pb = dir.path().join("b").display().to_string();
    // Through the Hub-style token endpoint (--hub/--repo, HF_TOKEN).
    let out = ok(
        &cache,
        &[
            "upload",
            "--hub",
            &base,
            "--repo",
            "dataset/acme/data",
            "--json",
            &pa,
            &pb,
        ],
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["files"].as_array().unwrap().len(), 2);
    let deduped = v["deduped_bytes"].as_u64().unwrap();
    assert!(deduped > (b.len() as u64) * 19 / 20, "{out}");
    assert_eq!(v["shards_uploaded"].as_u64(), Some(1));
    let hash = v["files"][1]["hash"].as_str().unwrap();
    let out_path = dir.path().join("b.out");
    ok(
        &cache,
        &[
            "download",
            hash,
            "-o",
            out_path.to_str().unwrap(),
            "--hub",
            &base,
            "--repo",
            "dataset/acme/data",
        ],
    );
    assert_eq!(std::fs::read(&out_path).unwrap(), b);
}

#[test]
fn embedded_store_without_a_server() {
    // Neither --endpoint nor --hub: the in-process store under the cache directory.
    let dir = TempDir::new("xfer-none");
    let data: Vec<u8> = (0..400_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 9) as u8)
        .collect();
    let input = dir.path().join("a");
    std::fs::write(&input, &data).unwrap();
    let line = ok(dir.path(), &["upload", input.to_str().unwrap()]);
    let mut fields = line.split_whitespace();
    let (hash, size) = (
        fields.next().unwrap().to_string(),
        fields.next().unwrap().to_string(),
    );
    assert!(
        dir.path().join("local-store").is_dir(),
        "the embedded store lives in the cache dir"
    );
    let out = dir.path().join("out");
    ok(
        dir.path(),
        &["download", &format!("{hash}:{size}"), "-o", out.to_str().unwrap()],
    );
    assert_eq!(std::fs::read(&out).unwrap(), data);
    // --store puts it elsewhere; a hash it does not know is a clear error.
    let other = dir.path().join("other-store");
    let out = xet_in(
        dir.path(),
        &[
            "download",
            &hash,
            "-o",
            dir.path().join("o2").to_str().unwrap(),
            "--store",
            other.to_str().unwrap(),
        ],
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not found"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A server that is not there: a connection error, not a hang.
    let out = xet_in(
        dir.path(),
        &[
            "download",
            &"0".repeat(63),
            "-o",
            "x",
            "--endpoint",
            "http://127.0.0.1:9",
        ],
    );
    assert!(!out.status.success());
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                out.push(e.path());
            }
        }
    }
    out
}

/// Two `xet download` processes at once on one HF_XET_CACHE whose chunk cache is
/// capped below what they fetch together, so that both write, read and evict
/// entries while the other does: one fetches A and C, the other B and C (the
/// same file). Over several rounds every output is byte-identical, the cache
/// ends within its cap with no temporary file left, and a later download
/// through it still works.
#[test]
fn two_download_processes_share_one_small_cache() {
    let dir = TempDir::new("xfer-2proc");
    let (mut server, url, user) = crate::serve::start(&dir.path().join("server"), &[]);
    let mut rng = Rng::new(0x2c4c);
    let names = ["a", "b", "c"];
    let datas: Vec<Vec<u8>> = (0..3).map(|_| rng.bytes(1 << 20)).collect();
    let paths: Vec<String> = names
        .iter()
        .zip(&datas)
        .map(|(n, d)| {
            let p = dir.path().join(n);
            std::fs::write(&p, d).unwrap();
            p.display().to_string()
        })
        .collect();
    let repo = ["--hub", url.as_str(), "--repo", "model/acme/shared-cache"];
    // `xet` on `cache`; `upload` and `download` through the server.
    let run = |cache: &Path, args: &[&str]| -> Command {
        let mut c = Command::new(xet_bin());
        c.args(args);
        if matches!(args[0], "upload" | "download") {
            c.args(repo);
        }
        c.env("HF_XET_CACHE", cache)
            .env("HF_TOKEN", &user)
            // 2.5 MB: more than one file's entries, less than the three files'.
            .env("HF_XET_CHUNK_CACHE_SIZE_BYTES", CAP.to_string());
        c
    };
    const CAP: u64 = 2_500_000;
    let mut args = vec!["upload"];
    args.extend(paths.iter().map(String::as_str));
    let up = run(&dir.path().join("upload-cache"), &args).output().unwrap();
    assert!(up.status.success(), "{}", String::from_utf8_lossy(&up.stderr));
    let specs: Vec<String> = String::from_utf8(up.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            format!("{}:{}", f[0], f[1])
        })
        .collect();
    let hash = |i: usize| specs[i].split(':').next().unwrap().to_string();

    let cache = dir.path().join("shared-cache");
    let chunk_bytes = || -> u64 {
        let out = run(&cache, &["cache", "stats", "--json"]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let servers = v["servers"].as_array().unwrap();
        assert_eq!(servers.len(), 1, "{v}");
        servers[0]["chunk_bytes"].as_u64().unwrap()
    };
    for round in 0..3 {
        let jobs = [(0, 2), (1, 2)];
        let children: Vec<_> = jobs
            .iter()
            .enumerate()
            .map(|(p, &(i, j))| {
                let out = dir.path().join(format!("out-{round}-{p}"));
                let child = run(
                    &cache,
                    &["download", &specs[i], &specs[j], "-o", out.to_str().unwrap()],
                )
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
                (out, child)
            })
            .collect();
        for ((out, child), &(i, j)) in children.into_iter().zip(&jobs) {
            let done = child.wait_with_output().unwrap();
            assert!(
                done.status.success(),
                "round {round}: {}",
                String::from_utf8_lossy(&done.stderr)
            );
            for k in [i, j] {
                let got = std::fs::read(out.join(hash(k))).unwrap();
                assert!(got == datas[k], "round {round}: {} differs", names[k]);
            }
        }
        let bytes = chunk_bytes();
        assert!(
            bytes > 0 && bytes <= CAP,
            "round {round}: chunk cache holds {bytes} bytes, cap {CAP}"
        );
        let tmp: Vec<_> = files_under(&cache)
            .into_iter()
            .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(".tmp-"))
            .collect();
        assert!(tmp.is_empty(), "round {round}: left behind {tmp:?}");
    }
    // Afterwards the cache still serves a download (whatever it still holds).
    for k in 0..3 {
        let out = dir.path().join(format!("warm-{k}"));
        let done = run(&cache, &["download", &specs[k], "-o", out.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(done.status.success(), "{}", String::from_utf8_lossy(&done.stderr));
        assert!(std::fs::read(&out).unwrap() == datas[k], "warm {}", names[k]);
    }
    assert!(chunk_bytes() <= CAP);
    server.kill().unwrap();
    server.wait().unwrap();
}

/// The `(path, status)` of every request in a `xet serve` request log.
fn logged_requests(log: &Path) -> Vec<(String, u16)> {
    let text = std::fs::read_to_string(log).unwrap();
    text.lines()
        .filter_map(|l| {
            let path = l.split(" path=").nth(1)?.split(' ').next()?;
            let status = l.split(" status=").nth(1)?.split(' ').next()?;
            Some((path.to_string(), status.trim().parse().ok()?))
        })
        .collect()
}

/// `--rev` reaches the Hub-style token endpoint: through `xet serve` (its request
/// log), `xet upload` and `xet download` with `--hub URL --repo dataset/acme/revs
/// --rev refs/pr/3` get their write and read tokens from
/// `/api/datasets/acme/revs/xet-{write,read}-token/refs%2Fpr%2F3` (the revision as
/// one path segment, as huggingface_hub sends it), and from no other revision.
#[test]
fn hub_rev_goes_to_the_token_endpoint() {
    let dir = TempDir::new("xfer-rev");
    let log = dir.path().join("server.log");
    let (mut server, url, user) = crate::serve::start_logged(&dir.path().join("server"), &log);
    let data = Rng::new(0x4e7).bytes(300_000);
    let input = dir.path().join("in");
    std::fs::write(&input, &data).unwrap();
    let cache = dir.path().join("cache");
    let hub = [
        "--hub",
        url.as_str(),
        "--repo",
        "dataset/acme/revs",
        "--rev",
        "refs/pr/3",
    ];
    let run = |args: &[&str]| {
        let out = Command::new(xet_bin())
            .args(args)
            .args(hub)
            .env("HF_XET_CACHE", &cache)
            .env("HF_TOKEN", &user)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "xet {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let line = run(&["upload", input.to_str().unwrap()]);
    let f: Vec<&str> = line.split_whitespace().collect();
    let out = dir.path().join("out");
    run(&[
        "download",
        &format!("{}:{}", f[0], f[1]),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(std::fs::read(&out).unwrap() == data);
    server.kill().unwrap();
    server.wait().unwrap();

    let requests = logged_requests(&log);
    let tokens: Vec<&(String, u16)> = requests.iter().filter(|(p, _)| p.starts_with("/api/")).collect();
    for kind in ["write", "read"] {
        let want = format!("/api/datasets/acme/revs/xet-{kind}-token/refs%2Fpr%2F3");
        assert!(
            tokens.contains(&&(want.clone(), 200)),
            "no {want} answered 200 in {tokens:?}"
        );
    }
    assert!(
        tokens.iter().all(|(p, _)| p.ends_with("/refs%2Fpr%2F3")),
        "a token asked for another revision: {tokens:?}"
    );
    // The log does show the other requests: the upload and the download went
    // through the CAS routes after the token requests.
    assert!(
        requests.iter().any(|(p, s)| p.starts_with("/v1/") && *s == 200),
        "{requests:?}"
    );
}

/// `xet upload --endpoint URL --token TOKEN` (a CAS write token, as a Hub hands
/// out) uploads to `xet serve`; the same file downloads with a read token. Without
/// a token, or with a read token, the upload is refused: the token is what lets
/// it in.
#[test]
fn upload_with_endpoint_and_token() {
    let dir = TempDir::new("xfer-endpoint-token");
    let (mut server, url, user) = crate::serve::start(&dir.path().join("server"), &[]);
    let token = |kind: &str| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let header = rt.block_on(crate::serve::cas_token(&url, &user, kind));
        header.strip_prefix("Bearer ").unwrap().to_string()
    };
    let (write, read) = (token("write"), token("read"));
    let data = Rng::new(0xe4d).bytes(1 << 20);
    let input = dir.path().join("in");
    std::fs::write(&input, &data).unwrap();
    // HF_TOKEN is set (to the user token) but --endpoint never reads it.
    let refused = |t: Option<&str>| {
        let mut args = vec!["upload", input.to_str().unwrap(), "--endpoint", &url];
        if let Some(t) = t {
            args.extend(["--token", t]);
        }
        let out = xet_in(&dir.path().join("cache-refused"), &args);
        assert!(!out.status.success(), "uploaded with token {t:?}");
    };
    refused(None);
    refused(Some(&read));
    let cache = dir.path().join("cache");
    let line = ok(
        &cache,
        &[
            "upload",
            input.to_str().unwrap(),
            "--endpoint",
            &url,
            "--token",
            &write,
        ],
    );
    assert_eq!(line.trim(), xet_ok(&["hash", input.to_str().unwrap()]).trim());
    let f: Vec<&str> = line.split_whitespace().collect();
    let out = dir.path().join("out");
    ok(
        &dir.path().join("cache-2"),
        &[
            "download",
            &format!("{}:{}", f[0], f[1]),
            "-o",
            out.to_str().unwrap(),
            "--endpoint",
            &url,
            "--token",
            &read,
        ],
    );
    assert!(std::fs::read(&out).unwrap() == data);
    server.kill().unwrap();
    server.wait().unwrap();
}
