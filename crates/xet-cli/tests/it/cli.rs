//! `xet hash` and `xet chunk` on the protocol vectors, output formats and errors.

use crate::support::{vectors_dir, xet, xet_ok, TempDir};

fn vector_names() -> Vec<String> {
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(vectors_dir().join("index.json")).unwrap()).unwrap();
    index["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap().to_string())
        .collect()
}

fn vector(name: &str) -> (String, serde_json::Value) {
    let dir = vectors_dir();
    let json = serde_json::from_slice(&std::fs::read(dir.join(format!("{name}.json"))).unwrap()).unwrap();
    (dir.join(format!("{name}.input.bin")).display().to_string(), json)
}

#[test]
fn hash_text_lines_match_vectors() {
    for name in vector_names() {
        let (path, j) = vector(&name);
        let out = xet_ok(&["hash", &path]);
        let fields: Vec<&str> = out.split_whitespace().collect();
        assert_eq!(fields.len(), 4, "{out}");
        assert_eq!(fields[0], j["file_hash"].as_str().unwrap(), "{name}");
        assert_eq!(fields[1], j["input"]["size"].as_u64().unwrap().to_string());
        assert_eq!(fields[2], j["sha256"].as_str().unwrap());
        assert_eq!(fields[3], path);
    }
}

#[test]
fn hash_json_and_no_sha256() {
    let (path, j) = vector("xorshift_100000");
    let v: serde_json::Value = serde_json::from_str(&xet_ok(&["hash", "--json", &path, &path])).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 2);
    assert_eq!(v[0]["hash"], j["file_hash"]);
    assert_eq!(v[0]["sha256"], j["sha256"]);
    assert_eq!(v[1]["size"], 100000);
    let v: serde_json::Value =
        serde_json::from_str(&xet_ok(&["hash", "--json", "--no-sha256", &path])).unwrap();
    assert!(v[0]["sha256"].is_null());
}

#[test]
fn chunk_lists_match_vectors() {
    for name in vector_names() {
        let (path, j) = vector(&name);
        let out = xet_ok(&["chunk", &path]);
        let expected: Vec<String> = j["chunks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| format!("{} {} {}", c["offset"], c["length"], c["hash"].as_str().unwrap()))
            .collect();
        let got: Vec<&str> = out.lines().collect();
        assert_eq!(got, expected, "{name}");
        let json: serde_json::Value = serde_json::from_str(&xet_ok(&["chunk", "--json", &path])).unwrap();
        assert_eq!(json.as_array().unwrap().len(), expected.len());
    }
}

#[test]
fn missing_file_is_a_clear_error() {
    let dir = TempDir::new("cli");
    let missing = dir.path().join("nope.bin");
    let out = xet(&["hash", missing.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot open") && err.contains("nope.bin"), "{err}");
    let out = xet(&["hash", dir.path().to_str().unwrap()]);
    assert!(!out.status.success(), "hashing a directory must fail");
}
