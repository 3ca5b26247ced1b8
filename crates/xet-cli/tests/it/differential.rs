//! Differential test: our `xet hash` against the official client's `hash_files`
//! (PyPI `hf-xet==1.8.0`) on many generated inputs, and against Python's hashlib for
//! SHA-256.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use crate::support::{python, require_official_client, xet_ok, Rng, TempDir};

/// Writes the generated corpus: edge sizes, random sizes and contents from 0 to
/// several MiB, zeros, repetitive text, low-entropy data, and edited copies (bytes
/// inserted, deleted, overwritten) of a base file.
fn corpus(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut rng = Rng::new(20261125);
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    for size in [
        0usize, 1, 2, 63, 64, 65, 8191, 8192, 8193, 65536, 131071, 131072, 131073, 262144, 300_000,
    ] {
        files.push((format!("random-{size}"), rng.bytes(size)));
        files.push((format!("zeros-{size}"), vec![0; size]));
    }
    for i in 0..24 {
        let size = rng.below(6 << 20) as usize;
        files.push((format!("random-sized-{i}-{size}"), rng.bytes(size)));
    }
    let line = b"The quick brown fox jumps over the lazy dog.\n";
    for size in [1000usize, 100_000, 3 << 20] {
        files.push((
            format!("text-{size}"),
            line.iter().copied().cycle().take(size).collect(),
        ));
    }
    for size in [50_000usize, 2 << 20] {
        // Low entropy: bytes from a 4-letter alphabet, so gear matches are rarer/odd.
        let v: Vec<u8> = rng
            .bytes(size)
            .iter()
            .map(|b| b"ACGT"[(b & 3) as usize])
            .collect();
        files.push((format!("dna-{size}"), v));
    }
    // Alternating runs of random data and zeros (forced max-size cuts mid-file).
    let mut runs = Vec::new();
    for _ in 0..12 {
        let n = rng.below(400_000) as usize;
        runs.extend(rng.bytes(n));
        let z = rng.below(300_000) as usize;
        runs.extend(std::iter::repeat_n(0u8, z));
    }
    files.push(("runs".into(), runs));
    let base = rng.bytes(5 << 20);
    files.push(("base".into(), base.clone()));
    for i in 0..10 {
        let mut v = base.clone();
        let at = rng.below(v.len() as u64) as usize;
        match i % 3 {
            0 => {
                let n = 1 + rng.below(100) as usize;
                let ins = rng.bytes(n);
                v.splice(at..at, ins);
            }
            1 => {
                let n = (1 + rng.below(5000) as usize).min(v.len() - at);
                v.drain(at..at + n);
            }
            _ => {
                let n = (1 + rng.below(64) as usize).min(v.len() - at);
                let new = rng.bytes(n);
                v[at..at + n].copy_from_slice(&new);
            }
        }
        files.push((format!("base-edit-{i}"), v));
    }
    files
        .into_iter()
        .map(|(name, data)| {
            let p = dir.join(name);
            std::fs::write(&p, data).expect("write corpus file");
            p
        })
        .collect()
}

#[derive(serde::Deserialize)]
struct Ours {
    path: String,
    hash: String,
    size: u64,
    sha256: Option<String>,
}

#[test]
fn xet_hash_matches_official_client_and_hashlib() {
    require_official_client();
    let dir = TempDir::new("diff");
    let files = corpus(dir.path());
    let mut args = vec!["hash", "--json"];
    let paths: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
    args.extend(paths.iter().map(String::as_str));
    let ours: Vec<Ours> = serde_json::from_str(&xet_ok(&args)).expect("xet hash --json output");
    assert_eq!(ours.len(), files.len());

    let script = r#"
import hashlib, json, sys, hf_xet
paths = sys.argv[1:]
infos = hf_xet.hash_files(paths)
out = {}
for p, info in zip(paths, infos):
    out[p] = {"hash": info.hash, "size": info.file_size, "sha256": hashlib.sha256(open(p, "rb").read()).hexdigest()}
print(json.dumps(out))
"#;
    let out = Command::new(python())
        .arg("-c")
        .arg(script)
        .args(&paths)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "official client failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let theirs: BTreeMap<String, serde_json::Value> =
        serde_json::from_slice(&out.stdout).expect("oracle json");

    let mut mismatches = Vec::new();
    for o in &ours {
        let t = &theirs[&o.path];
        if o.hash != t["hash"].as_str().unwrap() || o.size != t["size"].as_u64().unwrap() {
            mismatches.push(format!(
                "{}: ours {} {}, official {} {}",
                o.path, o.hash, o.size, t["hash"], t["size"]
            ));
        }
        assert_eq!(o.sha256.as_deref(), t["sha256"].as_str(), "sha256 of {}", o.path);
    }
    assert!(
        mismatches.is_empty(),
        "file hash mismatches:\n{}",
        mismatches.join("\n")
    );
}
