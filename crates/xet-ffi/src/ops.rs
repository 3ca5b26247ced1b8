//! Operations: options, the runtime, and the sessions behind each exported call.

use std::ffi::c_void;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use serde::Deserialize;
use xet_format::MerkleHash;
use xet_transfer::progress::{ProgressSink, ProgressUpdate};
use xet_transfer::{
    Auth, BoxFuture, CancellationToken, Cas, CasToken, Config, DownloadSession, HttpCas, LocalCas,
    Sha256Source, TokenRefresher, UploadSession,
};

use crate::registry;
use crate::{FfiError, HfXetDoneFn, HfXetProgressFn, HfXetTokenRequestFn, HF_XET_ERR_INTERNAL, HF_XET_OK};

/// Defaults set by `hf_xet_init`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct InitOptions {
    hf_home: Option<String>,
    cache_dir: Option<String>,
    user_agent: Option<String>,
}

fn defaults() -> &'static Mutex<InitOptions> {
    static DEFAULTS: OnceLock<Mutex<InitOptions>> = OnceLock::new();
    DEFAULTS.get_or_init(Default::default)
}

fn runtime() -> Result<&'static tokio::runtime::Runtime, FfiError> {
    static RUNTIME: OnceLock<Result<tokio::runtime::Runtime, String>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("hf-xet")
                .enable_all()
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| FfiError {
            code: HF_XET_ERR_INTERNAL,
            message: format!("cannot start the worker runtime: {e}"),
        })
}

/// `hf_xet_init`.
pub(crate) fn init(json: Option<&str>) -> Result<(), FfiError> {
    let options: InitOptions = match json {
        None => InitOptions::default(),
        Some(j) => serde_json::from_str(j).map_err(|e| FfiError::invalid(format!("init options: {e}")))?,
    };
    runtime()?;
    *defaults().lock().unwrap_or_else(|p| p.into_inner()) = options;
    Ok(())
}

/// Per-operation options (ABI.md).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct SessionOptions {
    endpoint: Option<String>,
    token: Option<String>,
    token_expiry: Option<u64>,
    hf_home: Option<String>,
    cache_dir: Option<String>,
    repo_type: Option<String>,
    sha256: Option<bool>,
    refresh_token: Option<bool>,
    token_timeout_secs: Option<u64>,
    retry_attempts: Option<u32>,
    user_agent: Option<String>,
}

impl SessionOptions {
    pub(crate) fn parse(json: Option<&str>) -> Result<Self, FfiError> {
        let o: SessionOptions = match json {
            None => SessionOptions::default(),
            Some(j) => serde_json::from_str(j).map_err(|e| FfiError::invalid(format!("options: {e}")))?,
        };
        if let Some(t) = &o.repo_type {
            if !matches!(t.as_str(), "model" | "dataset" | "space") {
                return Err(FfiError::invalid(format!(
                    "options: repoType `{t}` is not model, dataset or space"
                )));
            }
        }
        if let Some(e) = &o.endpoint {
            if !(e.starts_with("http://") || e.starts_with("https://")) {
                return Err(FfiError::invalid(format!(
                    "options: endpoint `{e}` should start with http:// or https://"
                )));
            }
        }
        if o.retry_attempts == Some(0) {
            return Err(FfiError::invalid("options: retryAttempts must be at least 1"));
        }
        if o.token_timeout_secs == Some(0) {
            return Err(FfiError::invalid("options: tokenTimeoutSecs must be at least 1"));
        }
        Ok(o)
    }

    /// The `User-Agent`: options, then `hf_xet_init`, then the library's own.
    fn user_agent(&self) -> Option<String> {
        self.user_agent.clone().or_else(|| {
            defaults()
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .user_agent
                .clone()
        })
    }

    /// The cache root: options, then `hf_xet_init`, then the environment (read only).
    fn cache_root(&self) -> Option<PathBuf> {
        let d = defaults().lock().unwrap_or_else(|p| p.into_inner()).clone();
        let xet = |home: &String| PathBuf::from(home).join("xet");
        self.cache_dir
            .as_ref()
            .map(PathBuf::from)
            .or_else(|| self.hf_home.as_ref().map(xet))
            .or_else(|| d.cache_dir.as_ref().map(PathBuf::from))
            .or_else(|| d.hf_home.as_ref().map(xet))
    }
}

/// The host's callbacks and its opaque pointer.
#[derive(Clone, Copy)]
pub(crate) struct Callbacks {
    progress: HfXetProgressFn,
    token_request: HfXetTokenRequestFn,
    done: unsafe extern "C" fn(*mut c_void, u64, i32, *mut std::ffi::c_char),
    user_data: UserData,
}

/// The host's `user_data`: passed back untouched from whatever thread runs the
/// callback, as the ABI says; the host is responsible for what it points to.
#[derive(Clone, Copy)]
struct UserData(*mut c_void);
// SAFETY: never dereferenced here, only handed back to the host's callbacks, which the
// ABI declares callable from any thread.
unsafe impl Send for UserData {}
// SAFETY: as above.
unsafe impl Sync for UserData {}

impl Callbacks {
    pub(crate) fn new(
        progress: HfXetProgressFn,
        token_request: HfXetTokenRequestFn,
        done: HfXetDoneFn,
        user_data: *mut c_void,
    ) -> Result<Self, FfiError> {
        let done = done.ok_or_else(|| FfiError::invalid("done callback is NULL"))?;
        Ok(Callbacks {
            progress,
            token_request,
            done,
            user_data: UserData(user_data),
        })
    }

    /// The host's pointer (a method, so closures capture the whole `Send` wrapper).
    fn user_data(&self) -> *mut c_void {
        self.user_data.0
    }

    fn progress(
        &self,
        op: u64,
        item: i64,
        processed: u64,
        total: Option<u64>,
        transferred: u64,
        deduped: u64,
    ) {
        if let Some(f) = self.progress {
            // SAFETY: a host callback with the documented signature.
            unsafe {
                f(
                    self.user_data(),
                    op,
                    item,
                    processed,
                    total.unwrap_or(u64::MAX),
                    transferred,
                    deduped,
                )
            }
        }
    }
}

/// One file of a download request.
#[derive(Debug, Clone)]
pub(crate) struct DownloadItem {
    pub(crate) hash: MerkleHash,
    pub(crate) size: Option<u64>,
    pub(crate) dest: PathBuf,
    pub(crate) range: Option<(u64, u64)>,
}

/// What an operation does.
pub(crate) enum Request {
    UploadFiles {
        options: SessionOptions,
        paths: Vec<String>,
    },
    UploadBytes {
        options: SessionOptions,
        buffers: Vec<Vec<u8>>,
    },
    Download {
        options: SessionOptions,
        files: Vec<DownloadItem>,
    },
}

/// Starts `request` on the runtime; `*out_op` is set before anything can call back.
pub(crate) fn start(out_op: *mut u64, cb: Callbacks, request: Request) -> Result<(), FfiError> {
    if out_op.is_null() {
        return Err(FfiError::invalid("out_op is NULL"));
    }
    let rt = runtime()?;
    let op = registry::next_id();
    // SAFETY: checked non-null; the caller passes a writable u64.
    unsafe { out_op.write(op) };
    let cancel = CancellationToken::new();
    registry::add_op(op, cancel.clone());
    // The sessions' futures are not all provably `Send` (closures over borrowed
    // state), so each operation is driven by `block_on` on a blocking-pool thread; the
    // sessions' own tasks still run on the runtime's workers.
    let handle = rt.handle().clone();
    let work = rt.spawn_blocking(move || handle.block_on(run(op, cb, request, cancel)));
    rt.spawn(async move {
        // A panic in the work must still produce the one `done` call.
        let outcome = match work.await {
            Ok(r) => r,
            Err(e) => Err(FfiError {
                code: HF_XET_ERR_INTERNAL,
                message: match e.try_into_panic() {
                    Ok(p) => format!("internal error (panic): {}", crate::panic_message(&*p)),
                    Err(e) => format!("internal error: {e}"),
                },
            }),
        };
        registry::remove_op(op);
        let (code, payload) = match outcome {
            Ok(json) => (HF_XET_OK, json),
            Err(e) => (e.code, e.message),
        };
        let payload = registry::give_string(payload);
        // SAFETY: the host's `done` callback with the documented signature.
        unsafe { (cb.done)(cb.user_data(), op, code, payload) };
    });
    Ok(())
}

async fn run(
    op: u64,
    cb: Callbacks,
    request: Request,
    cancel: CancellationToken,
) -> Result<String, FfiError> {
    let work = async {
        match request {
            Request::UploadFiles { options, paths } => {
                let items = paths.into_iter().map(UploadItem::File).collect();
                upload(op, cb, &options, items, cancel.clone()).await
            }
            Request::UploadBytes { options, buffers } => {
                let items = buffers.into_iter().map(UploadItem::Bytes).collect();
                upload(op, cb, &options, items, cancel.clone()).await
            }
            Request::Download { options, files } => download(op, cb, &options, files, cancel.clone()).await,
        }
    };
    tokio::select! {
        biased;
        _ = cancel.cancelled() => Err(FfiError {
            code: crate::HF_XET_ERR_CANCELLED,
            message: "operation cancelled".into(),
        }),
        r = work => r,
    }
}

/// Asks the host for tokens through `token_request` and waits for its answer.
struct HostRefresher {
    op: u64,
    cb: Callbacks,
    timeout: Duration,
    /// The operation's cancellation: a wait for the host ends with it.
    cancel: CancellationToken,
    /// The host's refusal, once given: later requests fail with it at once, so a host
    /// that cannot get a token ends the operation instead of being asked again.
    refused: Mutex<Option<String>>,
}

impl TokenRefresher for HostRefresher {
    fn refresh(&self) -> BoxFuture<'_, xet_transfer::Result<CasToken>> {
        Box::pin(async move {
            let Some(ask) = self.cb.token_request else {
                return Err(token_error("no token_request callback was given", false));
            };
            if let Some(message) = self.refused.lock().unwrap_or_else(|p| p.into_inner()).clone() {
                return Err(token_error(&message, false));
            }
            let id = registry::next_id();
            let answer = registry::add_token_request(id, self.op);
            // However this wait ends (answer, timeout, cancellation, or the future
            // dropped by the session), the request leaves the registry, so a late
            // reply gets HF_XET_ERR_UNKNOWN_HANDLE.
            let _forget = ForgetTokenRequest(id);
            // SAFETY: the host's callback with the documented signature; it must not block.
            unsafe { ask(self.cb.user_data(), self.op, id) };
            let answer = tokio::time::timeout(self.timeout, self.cancel.run(async { Ok(answer.await) }));
            match answer.await {
                Ok(Ok(Ok(Ok(token)))) => Ok(token),
                Ok(Ok(Ok(Err(message)))) => {
                    *self.refused.lock().unwrap_or_else(|p| p.into_inner()) = Some(message.clone());
                    Err(token_error(&message, false))
                }
                Ok(Ok(Err(_))) => Err(token_error("the token request was dropped", false)),
                Ok(Err(e)) => Err(e),
                Err(_) => Err(token_error(
                    &format!(
                        "no answer to token request {id} within {} s",
                        self.timeout.as_secs()
                    ),
                    false,
                )),
            }
        })
    }
}

/// Removes a token request from the registry when dropped.
struct ForgetTokenRequest(u64);

impl Drop for ForgetTokenRequest {
    fn drop(&mut self) {
        registry::forget_token_request(self.0);
    }
}

fn token_error(message: &str, retryable: bool) -> xet_transfer::Error {
    xet_transfer::Error::Token {
        message: message.to_string(),
        retryable,
    }
}

/// The CAS for `options` and the config (cache directory per server, as the CLI does).
async fn connect(
    op: u64,
    cb: Callbacks,
    options: &SessionOptions,
    cancel: &CancellationToken,
) -> Result<(Arc<dyn Cas>, Config), FfiError> {
    let mut config = Config::from_env()?;
    if let Some(root) = options.cache_root() {
        config.cache_dir = Some(root);
    }
    if options.sha256 == Some(false) {
        config.compute_sha256 = false;
    }
    if let Some(n) = options.retry_attempts {
        config.retry.max_attempts = n;
    }
    config.user_agent = options.user_agent();
    let root = config.cache_dir.clone();
    let Some(endpoint) = &options.endpoint else {
        // No endpoint: the embedded store the CLI uses, under the cache root.
        let root = root.ok_or_else(|| {
            FfiError::invalid("no cache directory for the embedded store: pass cacheDir or hfHome")
        })?;
        let cas = LocalCas::open(root.join("local-store")).await?;
        config.cache_dir = Some(root.join("local"));
        return Ok((Arc::new(cas), config));
    };
    let refresh = options.refresh_token.unwrap_or(cb.token_request.is_some());
    if refresh && cb.token_request.is_none() {
        return Err(FfiError::invalid(
            "refreshToken is true but token_request is NULL",
        ));
    }
    let initial = options.token.as_ref().map(|t| CasToken {
        token: t.clone(),
        expires_at: options.token_expiry.filter(|&e| e != 0),
        cas_url: None,
    });
    let auth = match (refresh, initial) {
        (true, initial) => Auth::Refreshing {
            refresher: Arc::new(HostRefresher {
                op,
                cb,
                timeout: Duration::from_secs(options.token_timeout_secs.unwrap_or(60)),
                cancel: cancel.clone(),
                refused: Mutex::new(None),
            }),
            initial,
        },
        (false, Some(t)) => Auth::Static(t.token),
        (false, None) => Auth::None,
    };
    let cas = HttpCas::new(endpoint, auth, &config)?;
    config.cache_dir = root.map(|r| r.join(endpoint_tag(cas.endpoint())));
    Ok((Arc::new(cas), config))
}

/// The endpoint as a directory name (each server gets its own caches, as in the CLI).
fn endpoint_tag(url: &str) -> String {
    url.trim_end_matches('/')
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

enum UploadItem {
    File(String),
    Bytes(Vec<u8>),
}

/// Forwards a session's progress to the host's callback.
struct Forward {
    op: u64,
    cb: Callbacks,
    /// The request's total size, known up front (the session learns it file by file).
    total: Option<u64>,
}

impl ProgressSink for Forward {
    fn update(&self, update: ProgressUpdate) {
        match update {
            ProgressUpdate::File {
                index,
                processed,
                total,
                deduped,
                transferred,
                ..
            } => self
                .cb
                .progress(self.op, index as i64, processed, total, transferred, deduped),
            ProgressUpdate::Total {
                processed,
                total,
                transferred,
                deduped,
            } => self
                .cb
                .progress(self.op, -1, processed, self.total.or(total), transferred, deduped),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn upload(
    op: u64,
    cb: Callbacks,
    options: &SessionOptions,
    items: Vec<UploadItem>,
    cancel: CancellationToken,
) -> Result<String, FfiError> {
    let (cas, config) = connect(op, cb, options, &cancel).await?;
    // The totals are known before the first byte is read: the hosts' progress bars need them.
    let total = items
        .iter()
        .map(|item| match item {
            UploadItem::File(path) => std::fs::metadata(path).ok().map(|m| m.len()),
            UploadItem::Bytes(data) => Some(data.len() as u64),
        })
        .sum::<Option<u64>>();
    let session = UploadSession::new(cas, config)?
        .with_progress(Arc::new(Forward { op, cb, total }))
        .with_cancellation(cancel);
    // Files are added in order so their indices in progress reports match the request.
    for (i, item) in items.into_iter().enumerate() {
        match item {
            UploadItem::File(path) => {
                session.upload_file(&path, Sha256Source::Compute).await?;
            }
            UploadItem::Bytes(data) => {
                session
                    .upload_bytes(&format!("buffer {i}"), data.into(), Sha256Source::Compute)
                    .await?;
            }
        }
    }
    let report = session.finish().await?;
    let files: Vec<serde_json::Value> = report
        .files
        .iter()
        .map(|f| {
            serde_json::json!({
                "hash": f.file_hash.to_string(),
                "size": f.size,
                "sha256": f.sha256.map(|s| hex(&s)),
                "dedupedBytes": f.deduped_bytes,
                "newBytes": f.new_bytes,
            })
        })
        .collect();
    Ok(serde_json::json!({
        "files": files,
        "totalBytes": report.total_bytes,
        "dedupedBytes": report.deduped_bytes,
        "newBytes": report.new_bytes,
        "xorbsUploaded": report.xorbs_uploaded,
        "xorbBytesUploaded": report.xorb_bytes_uploaded,
        "shardsUploaded": report.shards_uploaded,
    })
    .to_string())
}

/// Totals over the files of one download operation.
#[derive(Default)]
struct DownloadTotals {
    processed: Vec<AtomicU64>,
    transferred: Vec<AtomicU64>,
}

/// Progress of one file of a download, reported as the item and as the totals.
struct FileProgress {
    op: u64,
    cb: Callbacks,
    index: usize,
    totals: Arc<DownloadTotals>,
    total_bytes: Option<u64>,
}

impl ProgressSink for FileProgress {
    fn update(&self, update: ProgressUpdate) {
        if let ProgressUpdate::Total {
            processed,
            total,
            transferred,
            ..
        } = update
        {
            self.totals.processed[self.index].store(processed, Ordering::Relaxed);
            self.totals.transferred[self.index].store(transferred, Ordering::Relaxed);
            self.cb
                .progress(self.op, self.index as i64, processed, total, 0, 0);
            let sum = |v: &[AtomicU64]| v.iter().map(|a| a.load(Ordering::Relaxed)).sum::<u64>();
            self.cb.progress(
                self.op,
                -1,
                sum(&self.totals.processed),
                self.total_bytes,
                sum(&self.totals.transferred),
                0,
            );
        }
    }
}

async fn download(
    op: u64,
    cb: Callbacks,
    options: &SessionOptions,
    files: Vec<DownloadItem>,
    cancel: CancellationToken,
) -> Result<String, FfiError> {
    let (cas, config) = connect(op, cb, options, &cancel).await?;
    let totals = Arc::new(DownloadTotals {
        processed: files.iter().map(|_| AtomicU64::new(0)).collect(),
        transferred: files.iter().map(|_| AtomicU64::new(0)).collect(),
    });
    // The total is known when every file's size (or range) is.
    let total_bytes = files
        .iter()
        .map(|f| match f.range {
            Some((s, e)) => Some(e - s + 1),
            None => f.size,
        })
        .sum::<Option<u64>>();
    let mut out = Vec::with_capacity(files.len());
    for (index, f) in files.iter().enumerate() {
        let session = DownloadSession::new(cas.clone(), config.clone())?
            .with_progress(Arc::new(FileProgress {
                op,
                cb,
                index,
                totals: totals.clone(),
                total_bytes,
            }))
            .with_cancellation(cancel.clone());
        // The session checks the size before writing anything (HF_XET_ERR_CORRUPT).
        let report = session
            .download_to_path_sized(&f.hash, f.size, &f.dest, f.range)
            .await?;
        out.push(serde_json::json!({
            "path": f.dest.to_string_lossy(),
            "hash": f.hash.to_string(),
            "size": report.bytes,
            "fetchedBytes": report.fetched_bytes,
            "cacheHits": report.cache_hits,
            "resumedBytes": report.resumed_bytes,
            "verified": report.verified,
        }));
    }
    Ok(serde_json::json!({ "files": out }).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    static ASKED: AtomicU64 = AtomicU64::new(0);

    unsafe extern "C" fn ask(_: *mut c_void, _: u64, id: u64) {
        ASKED.store(id, Ordering::SeqCst);
    }

    unsafe extern "C" fn done(_: *mut c_void, _: u64, _: i32, _: *mut std::ffi::c_char) {}

    fn refresher(cancel: CancellationToken) -> HostRefresher {
        HostRefresher {
            op: 1,
            cb: Callbacks::new(None, Some(ask), Some(done), std::ptr::null_mut()).unwrap(),
            timeout: Duration::from_secs(600),
            cancel,
            refused: Mutex::new(None),
        }
    }

    /// The id of a token request the refresher has asked for and is waiting on.
    async fn pending(fut: &mut BoxFuture<'_, xet_transfer::Result<CasToken>>) -> u64 {
        ASKED.store(0, Ordering::SeqCst);
        let waited = tokio::time::timeout(Duration::from_millis(50), fut).await;
        assert!(waited.is_err(), "no answer was given, so it still waits");
        let id = ASKED.load(Ordering::SeqCst);
        assert_ne!(id, 0, "the host was asked");
        id
    }

    #[test]
    fn a_token_wait_that_ends_without_an_answer_forgets_its_request() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        rt.block_on(async {
            // The session drops the wait (a request timeout, a cancelled task).
            let r = refresher(CancellationToken::new());
            let mut fut = r.refresh();
            let id = pending(&mut fut).await;
            drop(fut);
            assert!(
                !registry::answer_token_request(id, Err("late".into())),
                "a dropped wait left request {id} in the registry"
            );
            // The operation is cancelled while the wait runs.
            let cancel = CancellationToken::new();
            let r = refresher(cancel.clone());
            let mut fut = r.refresh();
            let id = pending(&mut fut).await;
            cancel.cancel();
            assert!(matches!(fut.await, Err(xet_transfer::Error::Cancelled)));
            assert!(!registry::answer_token_request(id, Err("late".into())));
        });
    }
}
