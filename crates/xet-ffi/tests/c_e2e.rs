//! Builds `tests/c/e2e.c` with `cc -std=c11 -Wall -Wextra -Werror` against
//! `include/hf_xet.h` and the `libxet_ffi.so` cargo built for this test run, and runs it
//! against the real `xet serve` process on loopback (a local-directory store, a given
//! user token, Hub-style token endpoints) with 2-second CAS tokens, so the program has
//! to answer token requests during the transfers.
//!
//! `xet` is the `xet-cli` package's binary, which this crate does not depend on: the
//! test asks the cargo running it to build that binary into the same target
//! directory and profile (`cargo build -p xet-cli --bin xet`; a no-op when it is
//! fresh, as under `cargo test --workspace`). Cargo releases its build lock before
//! running tests, so the nested build does not wait on the outer one.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

const USER_TOKEN: &str = "user-secret";

/// The directory holding the cdylib built with this test (`target/<profile>/deps`).
fn lib_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap().to_path_buf();
    assert!(
        deps.join("libxet_ffi.so").exists(),
        "libxet_ffi.so not found next to the test binary in {}",
        deps.display()
    );
    deps
}

/// Builds `xet` with the cargo, target directory, target triple and profile of this
/// test binary (`<target>[/<triple>]/<profile dir>/deps/c_e2e-…`) and returns its path.
fn xet_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binary outside target/<profile>/deps");
    let profile = profile_dir.file_name().unwrap().to_str().unwrap().to_string();
    let above = profile_dir.parent().unwrap();
    // Cargo marks the root of a target directory with CACHEDIR.TAG; a directory
    // without it between the root and the profile is a `--target` triple.
    let (target_dir, triple) = if above.join("CACHEDIR.TAG").exists() {
        (above.to_path_buf(), None)
    } else {
        let triple = above.file_name().unwrap().to_str().unwrap().to_string();
        (above.parent().unwrap().to_path_buf(), Some(triple))
    };
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut cmd = Command::new(env!("CARGO"));
    cmd.arg("build")
        .arg("--manifest-path")
        .arg(workspace.join("Cargo.toml"))
        .args(["-p", "xet-cli", "--bin", "xet", "--target-dir"])
        .arg(&target_dir);
    match profile.as_str() {
        "debug" => cmd.args(["--profile", "dev"]),
        "release" => cmd.arg("--release"),
        other => cmd.args(["--profile", other]),
    };
    if let Some(t) = &triple {
        cmd.args(["--target", t]);
    }
    // What cargo set for this test process describes xet-ffi, not the build: build
    // scripts that track such variables (ring's tracks CARGO_MANIFEST_DIR) would see
    // them changed and rebuild, so the nested cargo gets the caller's environment.
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        let set_by_cargo = k == "OUT_DIR"
            || k.starts_with("CARGO_PKG_")
            || [
                "CARGO_MANIFEST_DIR",
                "CARGO_MANIFEST_PATH",
                "CARGO_CRATE_NAME",
                "CARGO_BIN_NAME",
                "CARGO_PRIMARY_PACKAGE",
                "CARGO_TARGET_TMPDIR",
                "CARGO_RUSTC_CURRENT_DIR",
            ]
            .contains(&k.as_str());
        if set_by_cargo {
            cmd.env_remove(k);
        }
    }
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {} to build xet: {e}", env!("CARGO")));
    assert!(
        out.status.success(),
        "cargo build -p xet-cli failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let bin = profile_dir.join("xet");
    assert!(
        bin.is_file(),
        "cargo built xet-cli but {} is missing",
        bin.display()
    );
    bin
}

/// A running `xet serve`, killed when dropped.
struct XetServe {
    child: Child,
    url: String,
}

impl Drop for XetServe {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `xet serve` on a free loopback port with `--token-ttl 2`; panics, with the
/// server's stderr, if it does not come up.
fn start_xet_serve(xet: &Path, dir: &Path) -> XetServe {
    let log = dir.join("serve.log");
    let mut cmd = Command::new(xet);
    cmd.arg("serve")
        .arg("--data")
        .arg(dir.join("data"))
        .args([
            "--addr",
            "127.0.0.1:0",
            "--user-token",
            USER_TOKEN,
            "--token-ttl",
            "2",
        ])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap());
    // The flags above are the whole configuration: none from the environment.
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("XET_SERVE_") {
            cmd.env_remove(k);
        }
    }
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("starting {} serve: {e}", xet.display()));
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().and_then(|l| l.ok()).unwrap_or_default();
    let Some(url) = first.strip_prefix("xet CAS server listening on ") else {
        let _ = child.kill();
        let status = child.wait().unwrap();
        panic!(
            "xet serve did not start ({status}); stdout: {first:?}; stderr:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    };
    let url = url.trim().to_string();
    // Keep draining, so that later writes never hit a closed pipe.
    std::thread::spawn(move || for _ in lines {});
    XetServe { child, url }
}

#[test]
fn c_program_uploads_downloads_and_refreshes_tokens_against_xet_serve() {
    let dir = tempfile::tempdir().unwrap();
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let exe = dir.path().join("e2e");
    let lib = lib_dir();
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let out = Command::new(&cc)
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-O1"])
        .arg("-I")
        .arg(crate_dir.join("../../include"))
        .arg(crate_dir.join("tests/c/e2e.c"))
        .arg("-L")
        .arg(&lib)
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .args(["-lxet_ffi", "-lpthread", "-o"])
        .arg(&exe)
        .output()
        .unwrap_or_else(|e| panic!("running {cc}: {e}"));
    assert!(
        out.status.success(),
        "cc failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let server = start_xet_serve(&xet_binary(), dir.path());
    let port = server
        .url
        .strip_prefix("http://127.0.0.1:")
        .and_then(|p| p.trim_end_matches('/').parse::<u16>().ok())
        .unwrap_or_else(|| panic!("unexpected server URL {}", server.url));

    let input = dir.path().join("input.bin");
    let mut s = 99u64;
    let data: Vec<u8> = (0..1_500_000)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as u8
        })
        .collect();
    std::fs::write(&input, &data).unwrap();
    let output = dir.path().join("output.bin");
    let run = Command::new(&exe)
        .args(["127.0.0.1", &port.to_string(), USER_TOKEN, "me/repo"])
        .arg(dir.path().join("cache"))
        .arg(&input)
        .arg(&output)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        run.status.success(),
        "e2e failed ({}):\n{stdout}\n{stderr}",
        run.status
    );
    assert_eq!(std::fs::read(&output).unwrap(), data);
    assert!(stdout.contains("identical"), "{stdout}");
    let requests: u64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("token requests answered: "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no token count in:\n{stdout}"));
    assert!(
        requests >= 2,
        "expected token refreshes, got {requests}:\n{stdout}"
    );
    drop(server);
    eprintln!("{stdout}");
}
