//! Every exported function, called as a C host would: raw pointers, `extern "C"`
//! callbacks recording what arrives (and on which thread), against our CAS server on
//! loopback and against the embedded store.

use std::ffi::{c_char, c_void, CStr, CString};
use std::ptr::{null, null_mut};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use xet_ffi::*;
use xet_server::{AuthConfig, Scope, Server, ServerConfig};

// ---------------------------------------------------------------- the host side

#[derive(Debug, Clone)]
enum Event {
    Progress {
        op: u64,
        item: i64,
        processed: u64,
        total: u64,
        thread: ThreadId,
    },
    TokenRequest {
        op: u64,
        id: u64,
        thread: ThreadId,
    },
    Done {
        op: u64,
        code: i32,
        payload: String,
        thread: ThreadId,
    },
    /// A progress callback called `hf_xet_cancel` (see `on_progress_cancel`).
    CancelledFromCallback {
        op: u64,
        item: i64,
        processed: u64,
        total: u64,
        code: i32,
        thread: ThreadId,
    },
}

#[derive(Default)]
struct Host {
    events: Mutex<Vec<Event>>,
    cond: Condvar,
}

impl Host {
    /// A host that lives for the rest of the process: the library may call back until
    /// `done`, even after a failed assertion has ended the test.
    fn new() -> Arc<Host> {
        let h = Arc::new(Host::default());
        std::mem::forget(h.clone());
        h
    }

    fn ptr(self: &Arc<Host>) -> *mut c_void {
        Arc::as_ptr(self) as *mut c_void
    }

    fn push(&self, e: Event) {
        self.events.lock().unwrap().push(e);
        self.cond.notify_all();
    }

    /// Waits until `pick` finds something among the events.
    fn wait_for<T>(&self, what: &str, mut pick: impl FnMut(&[Event]) -> Option<T>) -> T {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut events = self.events.lock().unwrap();
        loop {
            if let Some(t) = pick(&events) {
                return t;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "timed out waiting for {what}; events: {events:?}"
            );
            events = self.cond.wait_timeout(events, left).unwrap().0;
        }
    }

    fn done(&self, op: u64) -> (i32, String) {
        self.wait_for("done", |ev| {
            ev.iter().find_map(|e| match e {
                Event::Done {
                    op: o, code, payload, ..
                } if *o == op => Some((*code, payload.clone())),
                _ => None,
            })
        })
    }

    fn token_request(&self, op: u64, nth: usize) -> u64 {
        self.wait_for("token request", |ev| {
            ev.iter()
                .filter_map(|e| match e {
                    Event::TokenRequest { op: o, id, .. } if *o == op => Some(*id),
                    _ => None,
                })
                .nth(nth)
        })
    }

    fn count(&self, f: impl Fn(&Event) -> bool) -> usize {
        self.events.lock().unwrap().iter().filter(|e| f(e)).count()
    }

    fn threads(&self) -> Vec<ThreadId> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .map(|e| match e {
                Event::Progress { thread, .. }
                | Event::TokenRequest { thread, .. }
                | Event::Done { thread, .. }
                | Event::CancelledFromCallback { thread, .. } => *thread,
            })
            .collect()
    }
}

unsafe fn host<'a>(user_data: *mut c_void) -> &'a Host {
    &*(user_data as *const Host)
}

unsafe extern "C" fn on_progress(
    ud: *mut c_void,
    op: u64,
    item: i64,
    processed: u64,
    total: u64,
    _t: u64,
    _d: u64,
) {
    host(ud).push(Event::Progress {
        op,
        item,
        processed,
        total,
        thread: std::thread::current().id(),
    });
}

/// Records progress like `on_progress`, and at the first report short of its total
/// (so with work still to do) cancels the operation from the library's thread.
unsafe extern "C" fn on_progress_cancel(
    ud: *mut c_void,
    op: u64,
    item: i64,
    processed: u64,
    total: u64,
    t: u64,
    d: u64,
) {
    on_progress(ud, op, item, processed, total, t, d);
    let h = host(ud);
    let already = h.count(|e| matches!(e, Event::CancelledFromCallback { op: o, .. } if *o == op)) > 0;
    if !already && processed < total {
        let code = hf_xet_cancel(op);
        h.push(Event::CancelledFromCallback {
            op,
            item,
            processed,
            total,
            code,
            thread: std::thread::current().id(),
        });
    }
}

unsafe extern "C" fn on_token(ud: *mut c_void, op: u64, id: u64) {
    host(ud).push(Event::TokenRequest {
        op,
        id,
        thread: std::thread::current().id(),
    });
}

unsafe extern "C" fn on_done(ud: *mut c_void, op: u64, code: i32, payload: *mut c_char) {
    assert!(!payload.is_null());
    let text = CStr::from_ptr(payload).to_string_lossy().into_owned();
    assert_eq!(hf_xet_string_free(payload), HF_XET_OK);
    host(ud).push(Event::Done {
        op,
        code,
        payload: text,
        thread: std::thread::current().id(),
    });
}

fn c(s: &str) -> CString {
    CString::new(s).unwrap()
}

fn last_error() -> String {
    let p = hf_xet_last_error_message();
    assert!(!p.is_null(), "no last error message");
    let s = unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned();
    assert_eq!(hf_xet_string_free(p), HF_XET_OK);
    s
}

// ---------------------------------------------------------------- server and data

struct TestServer {
    url: String,
    auth: Arc<AuthConfig>,
    _rt: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

fn server() -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let auth = AuthConfig::new(vec!["user-token".into()]);
    let config = ServerConfig::new(xet_store::StoreConfig::local(dir.path().join("data")), auth);
    let server = rt.block_on(Server::bind(config)).unwrap();
    let url = server.url().to_string();
    let auth = Arc::new(server.state().auth().clone());
    rt.spawn(server.run());
    TestServer {
        url,
        auth,
        _rt: rt,
        _dir: dir,
    }
}

fn data(n: usize, seed: u64) -> Vec<u8> {
    let mut s = seed | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 32) as u8
        })
        .collect()
}

fn expected(d: &[u8]) -> (String, String) {
    let digest = xet_format::digest_slice(d, true, 1);
    (
        digest.file_hash.to_string(),
        xet_format::hash::hex(&digest.sha256.unwrap()),
    )
}

fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

// ---------------------------------------------------------------- calls

fn upload_files(host: &Arc<Host>, options: &str, paths: &[&std::path::Path], token: bool) -> (i32, u64) {
    let opts = c(options);
    let cs: Vec<CString> = paths.iter().map(|p| c(p.to_str().unwrap())).collect();
    let ptrs: Vec<*const c_char> = cs.iter().map(|c| c.as_ptr()).collect();
    let mut op = 0;
    let code = unsafe {
        hf_xet_upload_files(
            opts.as_ptr(),
            ptrs.as_ptr(),
            ptrs.len(),
            Some(on_progress),
            if token { Some(on_token) } else { None },
            Some(on_done),
            host.ptr(),
            &mut op,
        )
    };
    (code, op)
}

fn upload_bytes(host: &Arc<Host>, options: &str, bufs: &[&[u8]], token: bool) -> (i32, u64) {
    let opts = c(options);
    let ptrs: Vec<*const u8> = bufs.iter().map(|b| b.as_ptr()).collect();
    let lens: Vec<usize> = bufs.iter().map(|b| b.len()).collect();
    let mut op = 0;
    let code = unsafe {
        hf_xet_upload_bytes(
            opts.as_ptr(),
            ptrs.as_ptr(),
            lens.as_ptr(),
            bufs.len(),
            Some(on_progress),
            if token { Some(on_token) } else { None },
            Some(on_done),
            host.ptr(),
            &mut op,
        )
    };
    (code, op)
}

fn download(
    host: &Arc<Host>,
    options: &str,
    files: &[(&str, u64, &std::path::Path)],
    ranges: Option<&[(u64, u64)]>,
    token: bool,
) -> (i32, u64) {
    let opts = c(options);
    let hashes: Vec<CString> = files.iter().map(|f| c(f.0)).collect();
    let hp: Vec<*const c_char> = hashes.iter().map(|c| c.as_ptr()).collect();
    let sizes: Vec<u64> = files.iter().map(|f| f.1).collect();
    let dests: Vec<CString> = files.iter().map(|f| c(f.2.to_str().unwrap())).collect();
    let dp: Vec<*const c_char> = dests.iter().map(|c| c.as_ptr()).collect();
    let starts: Option<Vec<u64>> = ranges.map(|r| r.iter().map(|r| r.0).collect());
    let ends: Option<Vec<u64>> = ranges.map(|r| r.iter().map(|r| r.1).collect());
    let mut op = 0;
    let code = unsafe {
        hf_xet_download_files(
            opts.as_ptr(),
            hp.as_ptr(),
            sizes.as_ptr(),
            dp.as_ptr(),
            starts.as_ref().map_or(null(), |v| v.as_ptr()),
            ends.as_ref().map_or(null(), |v| v.as_ptr()),
            files.len(),
            Some(on_progress),
            if token { Some(on_token) } else { None },
            Some(on_done),
            host.ptr(),
            &mut op,
        )
    };
    (code, op)
}

fn options(url: &str, token: &str, cache: &std::path::Path) -> String {
    serde_json::json!({"endpoint": url, "token": token, "cacheDir": cache}).to_string()
}

// ---------------------------------------------------------------- tests

#[test]
fn version_init_and_last_error() {
    let v = unsafe { CStr::from_ptr(hf_xet_version()) }.to_str().unwrap();
    assert_eq!(v, env!("CARGO_PKG_VERSION"));
    assert_eq!(unsafe { hf_xet_init(null()) }, HF_XET_OK);
    let dir = tempfile::tempdir().unwrap();
    let o = c(&serde_json::json!({"hfHome": dir.path()}).to_string());
    assert_eq!(unsafe { hf_xet_init(o.as_ptr()) }, HF_XET_OK);
    assert!(hf_xet_last_error_message().is_null());
    let bad = c("{\"logLevel\": 3}");
    assert_eq!(unsafe { hf_xet_init(bad.as_ptr()) }, HF_XET_ERR_INVALID_ARGUMENT);
    assert!(last_error().contains("logLevel"));
    assert!(hf_xet_last_error_message().is_null(), "reading clears it");
    let not_json = c("{");
    assert_eq!(
        unsafe { hf_xet_init(not_json.as_ptr()) },
        HF_XET_ERR_INVALID_ARGUMENT
    );
    let _ = last_error();
}

#[test]
fn upload_files_then_download_whole_and_ranges_over_http() {
    let srv = server();
    let cache = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let (a, b) = (data(300_000, 1), Vec::new());
    let (pa, pb) = (files.path().join("a.bin"), files.path().join("empty"));
    std::fs::write(&pa, &a).unwrap();
    std::fs::write(&pb, &b).unwrap();
    let (write, _) = srv.auth.issue_token(Scope::Write);
    let h = Host::new();
    let (code, op) = upload_files(&h, &options(&srv.url, &write, cache.path()), &[&pa, &pb], false);
    assert_eq!(code, HF_XET_OK);
    assert_ne!(op, 0);
    let (code, payload) = h.done(op);
    assert_eq!(code, HF_XET_OK, "{payload}");
    let r = json(&payload);
    let (ha, sa) = expected(&a);
    let (hb, _) = expected(&b);
    assert_eq!(r["files"][0]["hash"], ha.as_str());
    assert_eq!(r["files"][0]["sha256"], sa.as_str());
    assert_eq!(r["files"][0]["size"], 300_000);
    assert_eq!(r["files"][1]["hash"], hb.as_str());
    assert_eq!(r["files"][1]["size"], 0);
    assert!(r["xorbsUploaded"].as_u64().unwrap() >= 1);
    // Progress for the first file and for the totals, from threads other than ours.
    assert!(h.count(|e| matches!(e, Event::Progress { op: o, item: 0, processed: 300_000, total: 300_000, .. } if *o == op)) > 0);
    assert!(
        h.count(|e| matches!(e, Event::Progress { op: o, item: -1, processed: 300_000, .. } if *o == op)) > 0
    );
    let first_total = h.events.lock().unwrap().iter().find_map(|e| match e {
        Event::Progress { item: -1, total, .. } => Some(*total),
        _ => None,
    });
    assert_eq!(first_total, Some(300_000), "totals known from the first report");
    let me = std::thread::current().id();
    assert!(
        h.threads().iter().all(|t| *t != me),
        "callbacks ran on the calling thread"
    );
    assert_eq!(h.count(|e| matches!(e, Event::Done { .. })), 1);
    assert_eq!(
        hf_xet_cancel(op),
        HF_XET_ERR_UNKNOWN_HANDLE,
        "finished ops are unknown"
    );

    let (read, _) = srv.auth.issue_token(Scope::Read);
    let out = tempfile::tempdir().unwrap();
    let (oa, ob, oc) = (out.path().join("a"), out.path().join("b"), out.path().join("c"));
    let h2 = Host::new();
    let (code, op) = download(
        &h2,
        &options(&srv.url, &read, cache.path()),
        &[(&ha, 300_000, &oa), (&hb, 0, &ob), (&ha, u64::MAX, &oc)],
        Some(&[(u64::MAX, 0), (u64::MAX, 0), (1000, 199_999)]),
        false,
    );
    assert_eq!(code, HF_XET_OK);
    let (code, payload) = h2.done(op);
    assert_eq!(code, HF_XET_OK, "{payload}");
    assert_eq!(std::fs::read(&oa).unwrap(), a);
    assert_eq!(std::fs::read(&ob).unwrap(), b);
    assert_eq!(std::fs::read(&oc).unwrap(), &a[1000..200_000]);
    let r = json(&payload);
    assert_eq!(r["files"][2]["size"], 199_000);
    assert_eq!(r["files"][0]["verified"], true);
    assert!(h2.count(|e| matches!(e, Event::Progress { item: 2, .. })) > 0);

    // A wrong size is reported, not silently accepted.
    let h3 = Host::new();
    let od = out.path().join("d");
    let (code, op) = download(
        &h3,
        &options(&srv.url, &read, cache.path()),
        &[(&ha, 12, &od)],
        None,
        false,
    );
    assert_eq!(code, HF_XET_OK);
    let (code, msg) = h3.done(op);
    assert_eq!(code, HF_XET_ERR_CORRUPT, "{msg}");
    assert!(msg.contains("not the 12 given"), "{msg}");
    let left: Vec<_> = std::fs::read_dir(out.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('d'))
        .collect();
    assert!(left.is_empty(), "nothing at or beside the destination: {left:?}");
}

#[test]
fn upload_bytes_and_download_with_the_embedded_store() {
    let cache = tempfile::tempdir().unwrap();
    let opts = serde_json::json!({"cacheDir": cache.path(), "sha256": false}).to_string();
    let (a, b) = (data(150_000, 7), b"tiny".to_vec());
    let h = Host::new();
    let (code, op) = upload_bytes(&h, &opts, &[&a, &b], false);
    assert_eq!(code, HF_XET_OK);
    let (code, payload) = h.done(op);
    assert_eq!(code, HF_XET_OK, "{payload}");
    let r = json(&payload);
    assert_eq!(r["files"][0]["hash"], expected(&a).0.as_str());
    assert_eq!(r["files"][1]["hash"], expected(&b).0.as_str());
    assert!(r["files"][0]["sha256"].is_null(), "sha256: false skips it");
    assert!(cache.path().join("local-store").is_dir());

    let out = tempfile::tempdir().unwrap();
    let o = out.path().join("a");
    let h2 = Host::new();
    let ha = expected(&a).0;
    let (code, op) = download(&h2, &opts, &[(&ha, 150_000, &o)], None, false);
    assert_eq!(code, HF_XET_OK);
    assert_eq!(h2.done(op).0, HF_XET_OK);
    assert_eq!(std::fs::read(&o).unwrap(), a);

    // An unknown file.
    let h3 = Host::new();
    let unknown = "1".repeat(64);
    let (code, op) = download(
        &h3,
        &opts,
        &[(&unknown, u64::MAX, &out.path().join("x"))],
        None,
        false,
    );
    assert_eq!(code, HF_XET_OK);
    assert_eq!(h3.done(op).0, HF_XET_ERR_NOT_FOUND);
    assert!(!out.path().join("x").exists());
}

#[test]
fn token_refresh_round_trip_answered_from_another_thread() {
    let srv = server();
    let cache = tempfile::tempdir().unwrap();
    // The first token expired an hour ago: the library must ask for a new one.
    let stale = srv.auth.token_with_expiry(Scope::Write, 1_000_000);
    let opts = serde_json::json!({"endpoint": srv.url, "token": stale, "tokenExpiry": 1_000_000u64, "cacheDir": cache.path()})
        .to_string();
    let d = data(200_000, 3);
    let h = Host::new();
    let (code, op) = upload_bytes(&h, &opts, &[&d], true);
    assert_eq!(code, HF_XET_OK);
    let id = h.token_request(op, 0);
    let auth = srv.auth.clone();
    std::thread::spawn(move || {
        let (fresh, exp) = auth.issue_token(Scope::Write);
        // A token that is not UTF-8 is refused and the request stays pending.
        let bad = [b't', 0xc3, 0x28, 0];
        assert_eq!(
            unsafe { hf_xet_token_reply(id, bad.as_ptr().cast(), exp) },
            HF_XET_ERR_INVALID_ARGUMENT
        );
        let m = last_error();
        assert!(m.contains("token") && m.contains("UTF-8"), "{m}");
        let t = c(&fresh);
        assert_eq!(unsafe { hf_xet_token_reply(id, t.as_ptr(), exp) }, HF_XET_OK);
        assert_eq!(
            unsafe { hf_xet_token_reply(id, t.as_ptr(), exp) },
            HF_XET_ERR_UNKNOWN_HANDLE,
            "answered twice"
        );
    })
    .join()
    .unwrap();
    let (code, payload) = h.done(op);
    assert_eq!(code, HF_XET_OK, "{payload}");
    assert_eq!(json(&payload)["files"][0]["hash"], expected(&d).0.as_str());
}

#[test]
fn token_error_fails_the_operation_with_auth() {
    let srv = server();
    let cache = tempfile::tempdir().unwrap();
    let opts = serde_json::json!({"endpoint": srv.url, "cacheDir": cache.path()}).to_string();
    let h = Host::new();
    let (code, op) = upload_bytes(&h, &opts, &[b"abc"], true);
    assert_eq!(code, HF_XET_OK);
    let id = h.token_request(op, 0);
    let m = c("user is logged out");
    assert_eq!(unsafe { hf_xet_token_error(id, m.as_ptr()) }, HF_XET_OK);
    let (code, msg) = h.done(op);
    assert_eq!(code, HF_XET_ERR_AUTH);
    assert!(msg.contains("user is logged out"), "{msg}");
}

#[test]
fn unanswered_token_request_times_out() {
    let srv = server();
    let cache = tempfile::tempdir().unwrap();
    let opts =
        serde_json::json!({"endpoint": srv.url, "cacheDir": cache.path(), "tokenTimeoutSecs": 1, "retryAttempts": 1})
            .to_string();
    let h = Host::new();
    let (code, op) = upload_bytes(&h, &opts, &[b"abc"], true);
    assert_eq!(code, HF_XET_OK);
    let id = h.token_request(op, 0);
    let (code, msg) = h.done(op);
    assert_eq!(code, HF_XET_ERR_AUTH, "{msg}");
    let t = c("late");
    assert_eq!(
        unsafe { hf_xet_token_reply(id, t.as_ptr(), 0) },
        HF_XET_ERR_UNKNOWN_HANDLE
    );
}

#[test]
fn cancel_one_operation_while_another_completes() {
    let srv = server();
    let cache = tempfile::tempdir().unwrap();
    // This one waits for a token forever (until cancelled)...
    let waiting = serde_json::json!({"endpoint": srv.url, "cacheDir": cache.path(), "tokenTimeoutSecs": 600})
        .to_string();
    let h = Host::new();
    let (code, stuck) = upload_bytes(&h, &waiting, &[b"never sent"], true);
    assert_eq!(code, HF_XET_OK);
    let pending = h.token_request(stuck, 0);
    // ...while this one goes through.
    let (write, _) = srv.auth.issue_token(Scope::Write);
    let (code, fine) = upload_bytes(&h, &options(&srv.url, &write, cache.path()), &[b"sent"], false);
    assert_eq!(code, HF_XET_OK);
    assert_eq!(hf_xet_cancel(stuck), HF_XET_OK);
    assert_eq!(h.done(stuck).0, HF_XET_ERR_CANCELLED);
    assert_eq!(h.done(fine).0, HF_XET_OK);
    assert_eq!(hf_xet_cancel(stuck), HF_XET_ERR_UNKNOWN_HANDLE);
    // The request it was waiting on went with it: a late answer is refused.
    let late = c("late");
    assert_eq!(
        unsafe { hf_xet_token_reply(pending, late.as_ptr(), 0) },
        HF_XET_ERR_UNKNOWN_HANDLE
    );
    assert_eq!(
        unsafe { hf_xet_token_error(pending, late.as_ptr()) },
        HF_XET_ERR_UNKNOWN_HANDLE
    );
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        h.count(|e| matches!(e, Event::Done { .. })),
        2,
        "exactly one done per operation"
    );
}

#[test]
fn cancel_in_the_middle_of_an_upload() {
    let srv = server();
    let cache = tempfile::tempdir().unwrap();
    let (write, _) = srv.auth.issue_token(Scope::Write);
    // 8 MiB: read in 2 MiB blocks, so progress is reported several times before the end.
    let d = data(8 << 20, 21);
    let opts = c(&options(&srv.url, &write, cache.path()));
    let h = Host::new();
    let mut op = 0;
    let code = unsafe {
        hf_xet_upload_bytes(
            opts.as_ptr(),
            [d.as_ptr()].as_ptr(),
            [d.len()].as_ptr(),
            1,
            Some(on_progress_cancel),
            None,
            Some(on_done),
            h.ptr(),
            &mut op,
        )
    };
    assert_eq!(code, HF_XET_OK);
    let (code, msg) = h.done(op);
    assert_eq!(code, HF_XET_ERR_CANCELLED, "{msg}");
    let cancels: Vec<(u64, u64, i32)> = h
        .events
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            Event::CancelledFromCallback {
                processed,
                total,
                code,
                ..
            } => Some((*processed, *total, *code)),
            _ => None,
        })
        .collect();
    let (processed, total, code) = cancels[0];
    assert_eq!(code, HF_XET_OK, "hf_xet_cancel from the progress callback");
    assert!(processed < total && total == 8 << 20, "{processed}/{total}");
    // The upload stopped there: no shard registered the file.
    let (read, _) = srv.auth.issue_token(Scope::Read);
    let out = tempfile::tempdir().unwrap();
    let h2 = Host::new();
    let (code, op) = download(
        &h2,
        &options(&srv.url, &read, cache.path()),
        &[(&expected(&d).0, u64::MAX, &out.path().join("o"))],
        None,
        false,
    );
    assert_eq!(code, HF_XET_OK);
    assert_eq!(h2.done(op).0, HF_XET_ERR_NOT_FOUND);
}

#[test]
fn cancel_in_the_middle_of_a_download() {
    let srv = server();
    let cache = tempfile::tempdir().unwrap();
    let (write, _) = srv.auth.issue_token(Scope::Write);
    let (a, b) = (data(300_000, 22), data(200_000, 23));
    let h = Host::new();
    let (code, op) = upload_bytes(&h, &options(&srv.url, &write, cache.path()), &[&a, &b], false);
    assert_eq!(code, HF_XET_OK);
    let (code, payload) = h.done(op);
    assert_eq!(code, HF_XET_OK, "{payload}");
    let (ha, hb) = (expected(&a).0, expected(&b).0);
    // Two files: the first report (part of the first file, 300 000 of the 500 000
    // bytes) cancels, so the second file is never started.
    let (read, _) = srv.auth.issue_token(Scope::Read);
    let out = tempfile::tempdir().unwrap();
    let (oa, ob) = (out.path().join("a"), out.path().join("b"));
    let opts = c(&options(&srv.url, &read, cache.path()));
    let (hs, ds): (Vec<CString>, Vec<CString>) = (
        vec![c(&ha), c(&hb)],
        vec![c(oa.to_str().unwrap()), c(ob.to_str().unwrap())],
    );
    let hp: Vec<*const c_char> = hs.iter().map(|s| s.as_ptr()).collect();
    let dp: Vec<*const c_char> = ds.iter().map(|s| s.as_ptr()).collect();
    let sizes = [300_000u64, 200_000];
    let h2 = Host::new();
    let mut op = 0;
    let code = unsafe {
        hf_xet_download_files(
            opts.as_ptr(),
            hp.as_ptr(),
            sizes.as_ptr(),
            dp.as_ptr(),
            null(),
            null(),
            2,
            Some(on_progress_cancel),
            None,
            Some(on_done),
            h2.ptr(),
            &mut op,
        )
    };
    assert_eq!(code, HF_XET_OK);
    let (code, msg) = h2.done(op);
    assert_eq!(code, HF_XET_ERR_CANCELLED, "{msg}");
    let first_cancel = h2.events.lock().unwrap().iter().find_map(|e| match e {
        Event::CancelledFromCallback {
            item,
            processed,
            total,
            code,
            ..
        } => Some((*item, *processed, *total, *code)),
        _ => None,
    });
    assert_eq!(
        first_cancel,
        Some((-1, 300_000, 500_000, HF_XET_OK)),
        "cancelled at the first file's last bytes"
    );
    // The first file was cancelled before its rename, the second never begun.
    assert!(!oa.exists() && !ob.exists());
    assert_eq!(
        h2.count(|e| matches!(e, Event::Progress { item: 1, .. })),
        0,
        "no progress on the second file"
    );
}

#[test]
fn unreachable_server_is_a_network_error() {
    let cache = tempfile::tempdir().unwrap();
    let opts = serde_json::json!({"endpoint": "http://127.0.0.1:9", "token": "t", "cacheDir": cache.path(), "retryAttempts": 1})
        .to_string();
    let h = Host::new();
    let (code, op) = upload_bytes(&h, &opts, &[b"x"], false);
    assert_eq!(code, HF_XET_OK);
    assert_eq!(h.done(op).0, HF_XET_ERR_NETWORK);
}

#[test]
fn misuse_gives_error_codes_and_no_callbacks() {
    let h = Host::new();
    let opts = c("{}");
    let path = c("/nonexistent");
    let paths = [path.as_ptr()];
    let mut op = 0u64;
    let start = |opts: *const c_char,
                 paths: *const *const c_char,
                 n: usize,
                 done: HfXetDoneFn,
                 out: *mut u64| unsafe {
        hf_xet_upload_files(opts, paths, n, None, None, done, h.ptr(), out)
    };
    assert_eq!(
        start(opts.as_ptr(), paths.as_ptr(), 1, None, &mut op),
        HF_XET_ERR_INVALID_ARGUMENT
    );
    assert!(last_error().contains("done"));
    assert_eq!(
        start(opts.as_ptr(), paths.as_ptr(), 1, Some(on_done), null_mut()),
        HF_XET_ERR_INVALID_ARGUMENT
    );
    assert_eq!(
        start(opts.as_ptr(), null(), 1, Some(on_done), &mut op),
        HF_XET_ERR_INVALID_ARGUMENT
    );
    let bad_utf8 = [0xffu8, 0xfe, 0];
    let bad = [bad_utf8.as_ptr() as *const c_char];
    assert_eq!(
        start(opts.as_ptr(), bad.as_ptr(), 1, Some(on_done), &mut op),
        HF_XET_ERR_INVALID_ARGUMENT
    );
    assert!(last_error().contains("UTF-8"));
    let null_path = [null::<c_char>()];
    assert_eq!(
        start(opts.as_ptr(), null_path.as_ptr(), 1, Some(on_done), &mut op),
        HF_XET_ERR_INVALID_ARGUMENT
    );
    for o in [
        "{",
        "[]",
        "{\"endpoint\": 3}",
        "{\"nope\": 1}",
        "{\"endpoint\": \"ftp://x\"}",
        "{\"repoType\": \"car\"}",
    ] {
        let o = c(o);
        assert_eq!(
            start(o.as_ptr(), paths.as_ptr(), 1, Some(on_done), &mut op),
            HF_XET_ERR_INVALID_ARGUMENT,
            "{o:?}"
        );
    }
    let bad_utf8_opts = [b'{', 0xff, b'}', 0];
    assert_eq!(
        start(
            bad_utf8_opts.as_ptr() as *const c_char,
            paths.as_ptr(),
            1,
            Some(on_done),
            &mut op
        ),
        HF_XET_ERR_INVALID_ARGUMENT
    );
    // Buffers: NULL with a length, lengths NULL.
    let mut op2 = 0;
    let nb = [null::<u8>()];
    let lens = [5usize];
    let code = unsafe {
        hf_xet_upload_bytes(
            opts.as_ptr(),
            nb.as_ptr(),
            lens.as_ptr(),
            1,
            None,
            None,
            Some(on_done),
            h.ptr(),
            &mut op2,
        )
    };
    assert_eq!(code, HF_XET_ERR_INVALID_ARGUMENT);
    let bufs = [b"abc".as_ptr()];
    let code = unsafe {
        hf_xet_upload_bytes(
            opts.as_ptr(),
            bufs.as_ptr(),
            null(),
            1,
            None,
            None,
            Some(on_done),
            h.ptr(),
            &mut op2,
        )
    };
    assert_eq!(code, HF_XET_ERR_INVALID_ARGUMENT);
    // Downloads: bad hash, inverted range, half the range arrays, empty destination.
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("o");
    let good = "a".repeat(64);
    assert_eq!(
        download(&h, "{}", &[("xyz", 1, &dest)], None, false).0,
        HF_XET_ERR_INVALID_ARGUMENT
    );
    assert!(last_error().contains("xyz"));
    assert_eq!(
        download(&h, "{}", &[(&good, 1, &dest)], Some(&[(10, 5)]), false).0,
        HF_XET_ERR_INVALID_ARGUMENT
    );
    assert_eq!(
        download(&h, "{}", &[(&good, 1, std::path::Path::new(""))], None, false).0,
        HF_XET_ERR_INVALID_ARGUMENT
    );
    let (hs, d) = (c(&good), c(dest.to_str().unwrap()));
    let (hp, dp, sizes, starts) = ([hs.as_ptr()], [d.as_ptr()], [1u64], [0u64]);
    let code = unsafe {
        hf_xet_download_files(
            null(),
            hp.as_ptr(),
            sizes.as_ptr(),
            dp.as_ptr(),
            starts.as_ptr(),
            null(),
            1,
            None,
            None,
            Some(on_done),
            h.ptr(),
            &mut op2,
        )
    };
    assert_eq!(code, HF_XET_ERR_INVALID_ARGUMENT);
    // Invalid UTF-8 in hashes[i] and dest_paths[i].
    let bad_utf8 = [b'a', 0xff, b'b', 0];
    let good_hash = c(&good);
    let good_dest = c(dest.to_str().unwrap());
    for (which, hash, dest_p) in [
        (
            "hashes[0]",
            bad_utf8.as_ptr().cast::<c_char>(),
            good_dest.as_ptr(),
        ),
        (
            "dest_paths[0]",
            good_hash.as_ptr(),
            bad_utf8.as_ptr().cast::<c_char>(),
        ),
    ] {
        let code = unsafe {
            hf_xet_download_files(
                null(),
                [hash].as_ptr(),
                [1u64].as_ptr(),
                [dest_p].as_ptr(),
                null(),
                null(),
                1,
                None,
                None,
                Some(on_done),
                h.ptr(),
                &mut op2,
            )
        };
        assert_eq!(code, HF_XET_ERR_INVALID_ARGUMENT, "{which}");
        let m = last_error();
        assert!(m.contains(which) && m.contains("UTF-8"), "{which}: {m}");
    }
    // Invalid UTF-8 in a token or a refusal message.
    assert_eq!(
        unsafe { hf_xet_token_reply(424242, bad_utf8.as_ptr().cast(), 0) },
        HF_XET_ERR_INVALID_ARGUMENT
    );
    assert!(last_error().contains("token is not valid UTF-8"));
    assert_eq!(
        unsafe { hf_xet_token_error(424242, bad_utf8.as_ptr().cast()) },
        HF_XET_ERR_INVALID_ARGUMENT
    );
    assert!(last_error().contains("message is not valid UTF-8"));
    // Handles.
    assert_eq!(hf_xet_cancel(0), HF_XET_ERR_UNKNOWN_HANDLE);
    assert_eq!(hf_xet_cancel(u64::MAX), HF_XET_ERR_UNKNOWN_HANDLE);
    let t = c("t");
    assert_eq!(
        unsafe { hf_xet_token_reply(424242, t.as_ptr(), 0) },
        HF_XET_ERR_UNKNOWN_HANDLE
    );
    assert_eq!(
        unsafe { hf_xet_token_reply(424242, null(), 0) },
        HF_XET_ERR_INVALID_ARGUMENT
    );
    assert_eq!(
        unsafe { hf_xet_token_error(424242, null()) },
        HF_XET_ERR_UNKNOWN_HANDLE
    );
    // Strings: ours only, once.
    assert_eq!(
        hf_xet_string_free(null_mut()),
        HF_XET_OK,
        "free(NULL) does nothing"
    );
    let foreign = c("not from the library").into_raw();
    assert_eq!(hf_xet_string_free(foreign), HF_XET_ERR_UNKNOWN_HANDLE);
    drop(unsafe { CString::from_raw(foreign) });
    assert_eq!(hf_xet_cancel(7_000_000), HF_XET_ERR_UNKNOWN_HANDLE);
    let msg = hf_xet_last_error_message();
    assert_eq!(hf_xet_string_free(msg), HF_XET_OK);
    assert_eq!(hf_xet_string_free(msg), HF_XET_ERR_UNKNOWN_HANDLE, "double free");
    // Buffers: alloc, fill, free once.
    assert!(hf_xet_buffer_alloc(0).is_null());
    let b = hf_xet_buffer_alloc(1000);
    assert!(!b.is_null());
    assert_eq!(b as usize % 16, 0, "aligned for any scalar array");
    unsafe { std::slice::from_raw_parts_mut(b, 1000).fill(7) };
    assert_eq!(hf_xet_buffer_free(b), HF_XET_OK);
    assert_eq!(hf_xet_buffer_free(b), HF_XET_ERR_UNKNOWN_HANDLE, "double free");
    assert_eq!(
        hf_xet_buffer_free(null_mut()),
        HF_XET_OK,
        "free(NULL) does nothing"
    );
    let mut local = [0u8; 4];
    assert_eq!(hf_xet_buffer_free(local.as_mut_ptr()), HF_XET_ERR_UNKNOWN_HANDLE);
    // A failed start never calls back.
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(h.count(|_| true), 0);
}

#[test]
fn buffers_from_the_library_can_be_uploaded() {
    let cache = tempfile::tempdir().unwrap();
    let opts = serde_json::json!({"cacheDir": cache.path()}).to_string();
    let d = data(70_000, 5);
    let b = hf_xet_buffer_alloc(d.len());
    unsafe { std::slice::from_raw_parts_mut(b, d.len()).copy_from_slice(&d) };
    let h = Host::new();
    let view = unsafe { std::slice::from_raw_parts(b, d.len()) };
    let (code, op) = upload_bytes(&h, &opts, &[view], false);
    // The library copied the bytes: the host may free them at once.
    assert_eq!(hf_xet_buffer_free(b), HF_XET_OK);
    assert_eq!(code, HF_XET_OK);
    let (code, payload) = h.done(op);
    assert_eq!(code, HF_XET_OK, "{payload}");
    assert_eq!(json(&payload)["files"][0]["hash"], expected(&d).0.as_str());
}

#[test]
fn user_agent_from_options_reaches_the_server() {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = vec![0u8; 8192];
        let n = s.read(&mut buf).unwrap();
        let _ = s.write_all(
            b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
        );
        String::from_utf8_lossy(&buf[..n]).to_lowercase()
    });
    let cache = tempfile::tempdir().unwrap();
    let opts =
        serde_json::json!({"endpoint": url, "token": "t", "cacheDir": cache.path(), "retryAttempts": 1,
        "userAgent": "dart-hf-xet/9.9"})
        .to_string();
    let h = Host::new();
    let (code, op) = upload_bytes(&h, &opts, &[&data(10_000, 1)], false);
    assert_eq!(code, HF_XET_OK);
    let request = seen.join().unwrap();
    assert!(request.contains("user-agent: dart-hf-xet/9.9"), "{request}");
    assert_ne!(h.done(op).0, HF_XET_OK);
}
