//! Process-wide state behind the handles: operations, pending token requests, and the
//! strings and buffers handed to the host, so unknown handles and double frees are
//! detected instead of corrupting memory.

use std::collections::{HashMap, HashSet};
use std::ffi::{c_char, CString};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};

use tokio::sync::oneshot;
use xet_transfer::{CancellationToken, CasToken};

/// What a token request is answered with.
pub(crate) type TokenAnswer = Result<CasToken, String>;

#[derive(Default)]
struct State {
    ops: HashMap<u64, CancellationToken>,
    /// Pending token requests: the operation asking, and where its answer goes.
    token_requests: HashMap<u64, (u64, oneshot::Sender<TokenAnswer>)>,
    strings: HashSet<usize>,
    buffers: HashMap<usize, usize>,
}

fn state() -> MutexGuard<'static, State> {
    static STATE: OnceLock<Mutex<State>> = OnceLock::new();
    // A panic while holding the lock cannot leave the maps inconsistent (every
    // update is a single insert or remove), so a poisoned lock is still usable.
    STATE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner())
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A fresh id for an operation or a token request (never 0, never reused).
pub(crate) fn next_id() -> u64 {
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

/// Registers a running operation.
pub(crate) fn add_op(op: u64, cancel: CancellationToken) {
    state().ops.insert(op, cancel);
}

/// Forgets a finished operation and any token request of it still pending (the
/// ABI: after `done`, the operation's ids are unknown).
pub(crate) fn remove_op(op: u64) {
    let mut st = state();
    st.ops.remove(&op);
    st.token_requests.retain(|_, (o, _)| *o != op);
}

/// Cancels a running operation; false if it is unknown (finished or never started).
pub(crate) fn cancel_op(op: u64) -> bool {
    match state().ops.get(&op) {
        Some(c) => {
            c.cancel();
            true
        }
        None => false,
    }
}

/// Registers a token request of operation `op` and returns the receiver of its
/// answer.
pub(crate) fn add_token_request(id: u64, op: u64) -> oneshot::Receiver<TokenAnswer> {
    let (tx, rx) = oneshot::channel();
    state().token_requests.insert(id, (op, tx));
    rx
}

/// Answers a token request; false if it is unknown (answered already or timed out).
pub(crate) fn answer_token_request(id: u64, answer: TokenAnswer) -> bool {
    let Some((_, tx)) = state().token_requests.remove(&id) else {
        return false;
    };
    // The waiting operation may have been cancelled meanwhile: nobody to tell then.
    let _ = tx.send(answer);
    true
}

/// Drops a token request nobody will wait for any more (answered, timed out,
/// cancelled, or its future dropped); a no-op if it is gone already.
pub(crate) fn forget_token_request(id: u64) {
    state().token_requests.remove(&id);
}

/// Hands a string to the host (free with `hf_xet_string_free`). Interior NULs, which
/// C cannot represent, are replaced.
pub(crate) fn give_string(s: impl Into<String>) -> *mut c_char {
    let s: String = s.into();
    let c = CString::new(s.replace('\0', "\u{FFFD}")).unwrap_or_default();
    let p = c.into_raw();
    state().strings.insert(p as usize);
    p
}

/// Takes back a string given with [`give_string`]; false if `p` is not one (or was
/// freed already).
pub(crate) fn free_string(p: *mut c_char) -> bool {
    if !state().strings.remove(&(p as usize)) {
        return false;
    }
    // SAFETY: `p` came from `CString::into_raw` in `give_string` and was still
    // registered, so it is live and owned by us again now.
    drop(unsafe { CString::from_raw(p) });
    true
}

/// Alignment of host buffers: enough for any scalar the ABI reads from them (the host
/// may fill one with `uint64_t` sizes or pointer arrays, which Rust reads as such).
const BUFFER_ALIGN: usize = 16;

/// Allocates `len` zeroed bytes for the host, 16-byte aligned; null if `len` is 0 or
/// memory is short.
pub(crate) fn alloc_buffer(len: usize) -> *mut u8 {
    let Ok(layout) = std::alloc::Layout::from_size_align(len, BUFFER_ALIGN) else {
        return std::ptr::null_mut();
    };
    if len == 0 {
        return std::ptr::null_mut();
    }
    // SAFETY: the layout has a non-zero size.
    let p = unsafe { std::alloc::alloc_zeroed(layout) };
    if !p.is_null() {
        state().buffers.insert(p as usize, len);
    }
    p
}

/// Frees a buffer from [`alloc_buffer`]; false if `p` is not one (or was freed).
pub(crate) fn free_buffer(p: *mut u8) -> bool {
    let Some(len) = state().buffers.remove(&(p as usize)) else {
        return false;
    };
    // SAFETY: `p` was allocated by `alloc_buffer` with this size and alignment (the
    // layout was valid then) and was still registered until just now, so this is its
    // only release.
    unsafe {
        std::alloc::dealloc(
            p,
            std::alloc::Layout::from_size_align_unchecked(len, BUFFER_ALIGN),
        )
    };
    true
}
