//! Builds `tests/c/e2e.c` with `cc -std=c11 -Wall -Wextra -Werror` against
//! `include/hf_xet.h` and the `libxet_ffi.so` cargo built for this test run, and runs it
//! against our CAS server on loopback, set up as `xet serve` sets it up (a local-directory
//! store, a user token, Hub-style token endpoints), with 2-second CAS tokens so the
//! program has to answer token requests during the transfers.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use xet_server::{AuthConfig, Server, ServerConfig};

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

#[test]
fn c_program_uploads_downloads_and_refreshes_tokens() {
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

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut auth = AuthConfig::new(vec!["user-secret".into()]);
    auth.token_ttl = Duration::from_secs(2);
    let config = ServerConfig::new(xet_store::StoreConfig::local(dir.path().join("data")), auth);
    let server = rt.block_on(Server::bind(config)).unwrap();
    let port = server.local_addr().port();
    rt.spawn(server.run());

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
        .args(["127.0.0.1", &port.to_string(), "user-secret", "me/repo"])
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
    eprintln!("{stdout}");
}
