//! Interoperability with the official client (PyPI `hf-xet==1.8.0`) through one
//! CAS over HTTP (the MemoryCas-backed mock): it uploads, we download, and the
//! other way round, byte-identical. Requires python3 with hf_xet (fails loudly
//! otherwise, like the CLI's differential test); `XET_PYTHON` picks the interpreter.

use std::process::Command;
use std::sync::Arc;

use bytes::Bytes;
use xet_transfer::{Auth, Config, DownloadSession, HttpCas, Sha256Source, UploadSession};

use crate::mock::Mock;
use crate::support::data;

fn python() -> String {
    std::env::var("XET_PYTHON").unwrap_or_else(|_| "python3".into())
}

fn run_py(script: &str, args: &[&str]) -> String {
    let out = Command::new(python())
        .arg("-c")
        .arg(script)
        .args(args)
        .env("HF_XET_TELEMETRY_ENABLED", "false")
        .env(
            "HF_XET_CACHE",
            std::env::temp_dir().join(format!("xet-interop-{}", std::process::id())),
        )
        .output()
        .expect("running python3 (the official client hf-xet==1.8.0 is required)");
    assert!(
        out.status.success(),
        "official client failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

const UPLOAD: &str = r#"
import sys, hf_xet
endpoint, paths = sys.argv[1], sys.argv[2:]
infos = hf_xet.upload_files(paths, endpoint, ("token", 4000000000), None, None, "model")
for i in infos:
    print(i.hash, i.file_size)
"#;

const DOWNLOAD: &str = r#"
import sys, hf_xet
endpoint, rest = sys.argv[1], sys.argv[2:]
infos = [hf_xet.PyXetDownloadInfo(rest[i], rest[i+1], int(rest[i+2])) for i in range(0, len(rest), 3)]
hf_xet.download_files(infos, endpoint, ("token", 4000000000), None, None)
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_client_and_ours_read_each_others_uploads() {
    let (mock, _cas) = Mock::with_backend().await;
    let http = Arc::new(HttpCas::new(&mock.base, Auth::Static("token".into()), &Config::default()).unwrap());
    let dir = tempfile::tempdir().unwrap();
    let inputs: Vec<(String, Vec<u8>)> = vec![
        ("empty".into(), vec![]),
        ("tiny".into(), b"a".to_vec()),
        ("medium".into(), data(700_000, 31)),
        ("large".into(), data(5 << 20, 32)),
    ];
    // Theirs -> ours.
    let paths: Vec<String> = inputs
        .iter()
        .map(|(n, d)| {
            let p = dir.path().join(format!("theirs-{n}"));
            std::fs::write(&p, d).unwrap();
            p.display().to_string()
        })
        .collect();
    let mut args: Vec<String> = vec![mock.base.clone()];
    args.extend(paths);
    let base = mock.base.clone();
    let out = tokio::task::spawn_blocking(move || {
        run_py(UPLOAD, &args.iter().map(String::as_str).collect::<Vec<_>>())
    })
    .await
    .unwrap();
    let theirs: Vec<(String, u64)> = out
        .lines()
        .map(|l| {
            let mut it = l.split_whitespace();
            (
                it.next().unwrap().to_string(),
                it.next().unwrap().parse().unwrap(),
            )
        })
        .collect();
    assert_eq!(theirs.len(), inputs.len(), "{out}");
    let dl = DownloadSession::new(http.clone(), Config::default()).unwrap();
    for ((hash, size), (name, d)) in theirs.iter().zip(&inputs) {
        assert_eq!(*size, d.len() as u64, "{name}");
        let got = dl.download_bytes(&hash.parse().unwrap(), None).await.unwrap();
        assert!(got == *d, "{name}: our download of their upload differs");
    }
    // Ours -> theirs.
    let s = UploadSession::new(http.clone(), Config::default()).unwrap();
    let mut ours = Vec::new();
    for (name, d) in &inputs {
        let mut v = d.clone();
        v.extend_from_slice(b"ours");
        let f = s
            .upload_bytes(name.clone(), Bytes::from(v.clone()), Sha256Source::Compute)
            .await
            .unwrap();
        ours.push((f, v));
    }
    s.finish().await.unwrap();
    let mut args: Vec<String> = vec![base];
    for (i, (f, _)) in ours.iter().enumerate() {
        args.push(dir.path().join(format!("back-{i}")).display().to_string());
        args.push(f.file_hash.to_string());
        args.push(f.size.to_string());
    }
    tokio::task::spawn_blocking(move || {
        run_py(DOWNLOAD, &args.iter().map(String::as_str).collect::<Vec<_>>())
    })
    .await
    .unwrap();
    for (i, (_, v)) in ours.iter().enumerate() {
        let got = std::fs::read(dir.path().join(format!("back-{i}"))).unwrap();
        assert!(got == *v, "their download of our upload {i} differs");
    }
}
