//! `xet serve` killed (SIGKILL) and restarted on the same port and data directory
//! while our `xet upload` or `xet download` is running. The command either
//! completes, having ridden out the restart on its retries, with the right bytes
//! (checked by our download and the official client's), or fails with a non-zero
//! exit and a message that says what failed; never a success with wrong data, and
//! never a partial file under the output name.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::interop::{assert_same, official, ours, parse_upload_lines, Server};
use crate::support::{require_official_client, xet_bin, Rng, TempDir};

/// How long the server stays down before it is started again: longer than the
/// first retry delays (0.25-0.5 s, then 0.5-1 s), so the client really meets a dead
/// server, and well inside the default retry budget (5 attempts, at least 3.75 s
/// of backoff in all).
const DOWNTIME: Duration = Duration::from_millis(1500);

/// A bound on any one wait here (never reached unless something hangs).
const PATIENCE: Duration = Duration::from_secs(300);

/// 96 MiB of random data: two xorbs (at most 64 MiB each), so an upload is still
/// busy when its first xorb lands and a download still fetching once it has
/// planned its file.
const SIZE: usize = 96 << 20;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Files under `dir`, recursively (0 if it does not exist yet).
fn files_under(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| {
            let p = e.path();
            if p.is_dir() {
                files_under(&p)
            } else {
                1
            }
        })
        .sum()
}

/// Our `xet` running in the background, its output going to files (a pipe nobody
/// reads could fill and block it).
struct Running {
    child: Child,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl Running {
    /// Starts `xet args` with its own HF_XET_CACHE under `dir`, the server's user
    /// token in HF_TOKEN and `env`.
    fn start(server: &Server, dir: &Path, tag: &str, args: &[&str], env: &[(&str, &str)]) -> Running {
        let stdout = dir.join(format!("{tag}.stdout"));
        let stderr = dir.join(format!("{tag}.stderr"));
        let child = Command::new(xet_bin())
            .args(args)
            .env("HF_XET_CACHE", dir.join(format!("{tag}-cache")))
            .env("HF_TOKEN", &server.user)
            .envs(env.iter().copied())
            .stdout(Stdio::from(File::create(&stdout).unwrap()))
            .stderr(Stdio::from(File::create(&stderr).unwrap()))
            .spawn()
            .expect("starting xet");
        Running {
            child,
            stdout,
            stderr,
        }
    }

    fn running(&mut self) -> bool {
        self.child.try_wait().expect("polling xet").is_none()
    }

    /// Waits for the end (within [`PATIENCE`]); its status, stdout and stderr.
    fn finish(mut self) -> (ExitStatus, String, String) {
        let t = Instant::now();
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if t.elapsed() > PATIENCE {
                let _ = self.child.kill();
                panic!("xet still running after {PATIENCE:?}: a hang");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let read = |p: &Path| std::fs::read_to_string(p).unwrap();
        (status, read(&self.stdout), read(&self.stderr))
    }
}

/// Waits until `ready()` (the transfer is under way), then kills the server while
/// `client` is still running, keeps it down for [`DOWNTIME`] and starts it again on
/// the same port and data directory.
fn restart_under(server: &mut Server, data: &Path, client: &mut Running, ready: impl Fn() -> bool) {
    let t = Instant::now();
    while !ready() {
        assert!(
            client.running(),
            "the client finished before the transfer could be interrupted"
        );
        assert!(t.elapsed() < PATIENCE, "the transfer never got under way");
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(
        client.running(),
        "the client finished before the server was killed"
    );
    server.kill();
    std::thread::sleep(DOWNTIME);
    let port: u16 = server.url.rsplit(':').next().unwrap().parse().unwrap();
    let again = Server::on_port(data, port);
    assert_eq!(again.user, server.user, "same data directory, same user token");
    *server = again;
}

/// A failure must say what failed: our error line, naming the operation and why,
/// and a non-zero exit. Returns the error line.
fn assert_clear_failure(status: ExitStatus, stdout: &str, stderr: &str, what: &str) -> String {
    assert_eq!(status.code(), Some(1), "{what}: {status}\n{stderr}");
    let line = stderr
        .lines()
        .find(|l| l.starts_with("xet: error: "))
        .unwrap_or_else(|| panic!("{what} failed without an error line: {stderr}"))
        .to_string();
    assert!(
        ["connection failed", "server error", "no progress"]
            .iter()
            .any(|why| line.contains(why)),
        "{what}: unclear error: {line}"
    );
    assert!(stdout.trim().is_empty(), "{what} failed but printed {stdout}");
    line
}

/// How the client is configured: the default retry budget, or one attempt only (no
/// retries: it must fail, and clearly).
#[derive(Clone, Copy, PartialEq)]
enum Budget {
    Default,
    NoRetries,
}

impl Budget {
    fn env(self) -> Vec<(&'static str, &'static str)> {
        match self {
            Budget::Default => vec![],
            Budget::NoRetries => vec![("HF_XET_CLIENT_RETRY_MAX_ATTEMPTS", "1")],
        }
    }
}

/// Checks how a transfer across the restart ended: with the default budget it
/// must have met the dead server (a `retrying` warning) and may succeed; without
/// retries it must fail. A failure must be clear. Returns whether it succeeded.
fn judge(budget: Budget, status: ExitStatus, stdout: &str, stderr: &str, what: &str) -> bool {
    let retries = stderr.lines().filter(|l| l.contains("retrying")).count();
    if budget == Budget::Default {
        assert!(retries > 0, "the {what} never met the dead server: {stderr}");
    }
    if status.success() {
        assert!(
            budget == Budget::Default,
            "{what} without retries survived a dead server"
        );
        eprintln!("{what} rode out the restart ({retries} retries)");
        return true;
    }
    let line = assert_clear_failure(status, stdout, stderr, what);
    eprintln!("{what} failed clearly across the restart ({retries} retries): {line}");
    false
}

/// `xet upload --hub` of a 96 MiB file, one xorb upload at a time and the smallest
/// upload buffer (so the upload stays busy); the server is killed once the first
/// xorb is in its store. The upload then either succeeds, and the file downloads
/// byte-identical through our client and the official client, or fails clearly,
/// and then uploading again succeeds and downloads identical. Returns whether the
/// interrupted upload succeeded.
fn upload_across_a_restart(budget: Budget) -> bool {
    require_official_client();
    let dir = TempDir::new("restart-upload");
    let data = dir.path().join("server");
    let mut server = Server::on_port(&data, free_port());
    let content = Rng::new(0x5e57a27).bytes(SIZE);
    let file = dir.path().join("big");
    std::fs::write(&file, &content).unwrap();
    let url = server.url.clone();
    let args = [
        "upload",
        file.to_str().unwrap(),
        "--hub",
        &url,
        "--repo",
        "model/acme/restart",
    ];
    let mut env = vec![
        ("HF_XET_MAX_CONCURRENT_UPLOADS", "1"),
        ("HF_XET_UPLOAD_BUFFER_BYTES", "1"),
    ];
    env.extend(budget.env());
    let mut client = Running::start(&server, dir.path(), "upload", &args, &env);
    let xorbs = data.join("store/xorbs");
    restart_under(&mut server, &data, &mut client, || files_under(&xorbs) >= 1);
    let (status, stdout, stderr) = client.finish();
    let survived = judge(budget, status, &stdout, &stderr, "upload");
    let (hash, size) = if survived {
        parse_upload_lines(&stdout).remove(0)
    } else {
        parse_upload_lines(&ours(&server, &dir.path().join("again-cache"), &args)).remove(0)
    };
    assert_eq!(size, SIZE as u64);

    let mine = dir.path().join("big.ours");
    let spec = format!("{hash}:{size}");
    ours(
        &server,
        &dir.path().join("download-cache"),
        &[
            "download",
            &spec,
            "-o",
            mine.to_str().unwrap(),
            "--hub",
            &url,
            "--repo",
            "model/acme/restart",
        ],
    );
    assert_same(&std::fs::read(&mine).unwrap(), &content, "our download");
    std::fs::remove_file(&mine).unwrap();
    let theirs = dir.path().join("big.official");
    official(
        &server,
        &dir.path().join("official-home"),
        json!({"download": [[theirs, hash, size]]}),
    );
    assert_same(
        &std::fs::read(&theirs).unwrap(),
        &content,
        "the official client's download",
    );
    survived
}

/// `xet download --hub` of a 96 MiB file, one range fetch at a time; the server is
/// killed once the download has planned the file (its `.xetpart` exists). The
/// download either completes byte-identical or fails clearly with nothing at the
/// output path, and then downloading again completes byte-identical. Returns
/// whether the interrupted download succeeded.
fn download_across_a_restart(budget: Budget) -> bool {
    let dir = TempDir::new("restart-download");
    let data = dir.path().join("server");
    let mut server = Server::on_port(&data, free_port());
    let content = Rng::new(0xd0e57a27).bytes(SIZE);
    let file = dir.path().join("big");
    std::fs::write(&file, &content).unwrap();
    let url = server.url.clone();
    let repo = ["--hub", url.as_str(), "--repo", "model/acme/restart"];
    let mut args = vec!["upload", file.to_str().unwrap()];
    args.extend(repo);
    let (hash, size) = parse_upload_lines(&ours(&server, &dir.path().join("up-cache"), &args)).remove(0);

    let out = dir.path().join("big.down");
    let part = dir.path().join("big.down.xetpart");
    let spec = format!("{hash}:{size}");
    let mut args = vec!["download", &spec, "-o", out.to_str().unwrap()];
    args.extend(repo);
    let mut env = vec![("HF_XET_MAX_CONCURRENT_DOWNLOADS", "1")];
    env.extend(budget.env());
    let mut client = Running::start(&server, dir.path(), "download", &args, &env);
    restart_under(&mut server, &data, &mut client, || part.exists());
    let (status, stdout, stderr) = client.finish();
    let survived = judge(budget, status, &stdout, &stderr, "download");
    if survived {
        assert_same(&std::fs::read(&out).unwrap(), &content, "the download");
    } else {
        assert!(!out.exists(), "a failed download left a file at the output path");
        // Resumes from whatever the first attempt journaled.
        ours(&server, &dir.path().join("again-cache"), &args);
        assert_same(&std::fs::read(&out).unwrap(), &content, "the second download");
    }
    assert!(!part.exists(), "the partial file outlived a complete download");
    survived
}

/// With the default retry budget: succeeds (the likely outcome) or fails clearly.
#[test]
fn upload_rides_out_a_server_restart_or_fails_clearly() {
    upload_across_a_restart(Budget::Default);
}

/// Without retries the same restart must fail the upload, clearly.
#[test]
fn upload_without_retries_fails_clearly_across_a_server_restart() {
    assert!(!upload_across_a_restart(Budget::NoRetries));
}

/// With the default retry budget: succeeds (the likely outcome) or fails clearly.
#[test]
fn download_rides_out_a_server_restart_or_fails_clearly() {
    download_across_a_restart(Budget::Default);
}

/// Without retries the same restart must fail the download, clearly, leaving
/// nothing at the output path.
#[test]
fn download_without_retries_fails_clearly_across_a_server_restart() {
    assert!(!download_across_a_restart(Budget::NoRetries));
}
